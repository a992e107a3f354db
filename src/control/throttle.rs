//! Slows down token guessing: an address that sent too many wrong tokens has its next
//! attempts refused unchecked for a while, the while doubling with each wrong token after that.
//!
//! Sans-IO: time comes in with every call. Keyed by the client's address, an IPv6 client by
//! its /64 (one host usually holds the whole /64, so a guesser cannot step through addresses).
//! The table is capped: when full, the address whose last wrong token is oldest is forgotten.
//!
//! Only attempts that present a token are throttled: a request without one (open viewing, the
//! page) guesses nothing. A correct token, once allowed to be checked, forgets the address.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ThrottleConfig {
    /// Wrong tokens allowed before the first penalty (a person with a typo gets a few tries).
    pub free_failures: u32,
    /// The first penalty; each wrong token after it doubles the penalty up to `max_penalty`.
    pub first_penalty: Duration,
    pub max_penalty: Duration,
    /// An address that sent no wrong token for this long starts afresh.
    pub quiet: Duration,
    /// Addresses remembered at most.
    pub capacity: usize,
    /// While attempts keep being refused, a summary is logged at most this often.
    pub report_every: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 5,
            first_penalty: Duration::from_secs(1),
            max_penalty: Duration::from_secs(60),
            quiet: Duration::from_secs(600),
            capacity: 1024,
            report_every: Duration::from_secs(60),
        }
    }
}

/// Whether an attempt may have its token checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Check,
    /// Refused unchecked; the penalty ends after `retry_after`.
    Refuse {
        retry_after: Duration,
    },
}

/// Where attempts come from: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source(IpAddr);

impl Source {
    /// Counted as the connection and viewer limits count clients (IPv6 by /64).
    pub(crate) fn of(ip: IpAddr) -> Source {
        Source(crate::hub::client_key(ip))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

struct Entry {
    /// Wrong tokens since the last correct one (or since the address was quiet).
    failures: u32,
    penalty: Duration,
    /// Attempts are refused until then.
    until: Option<Instant>,
    last_failure: Instant,
    /// The refusals under way, for the log.
    burst: Option<Burst>,
}

/// Attempts refused one after the other: logged when the first comes, then summed up at
/// most every `report_every` and when an attempt is let through again.
struct Burst {
    /// Refusals since `logged`, not in the log yet.
    unlogged: u64,
    logged: Instant,
}

pub(crate) struct AuthThrottle {
    config: ThrottleConfig,
    table: HashMap<Source, Entry>,
    log: VecDeque<String>,
}

impl AuthThrottle {
    pub(crate) fn new(config: ThrottleConfig) -> AuthThrottle {
        AuthThrottle {
            config,
            table: HashMap::new(),
            log: VecDeque::new(),
        }
    }

    /// Before a token is checked: may it be?
    pub(crate) fn attempt(&mut self, now: Instant, source: Source) -> Attempt {
        self.forget_if_quiet(now, source);
        let every = self.config.report_every;
        let Some(e) = self.table.get_mut(&source) else {
            return Attempt::Check;
        };
        let Some(until) = e.until.filter(|&until| until > now) else {
            let line = end_burst(source, e, now);
            self.log.extend(line);
            return Attempt::Check;
        };
        match &mut e.burst {
            None => {
                e.burst = Some(Burst {
                    unlogged: 0,
                    logged: now,
                });
                self.log.push_back(format!(
                    "{source}: {} wrong tokens in a row; its attempts are refused unchecked \
                     for {} s",
                    e.failures,
                    e.penalty.as_secs_f64().ceil()
                ));
            }
            Some(burst) => {
                burst.unlogged += 1;
                if now >= burst.logged + every {
                    self.log.push_back(summary(source, burst, now));
                    burst.unlogged = 0;
                    burst.logged = now;
                }
            }
        }
        Attempt::Refuse {
            retry_after: until - now,
        }
    }

    /// A token was checked and is wrong. True for the first of a burst: worth a log line (the
    /// others are counted, and the refusals that follow are logged here).
    pub(crate) fn failed(&mut self, now: Instant, source: Source) -> bool {
        self.forget_if_quiet(now, source);
        if !self.table.contains_key(&source) {
            self.make_room(now);
        }
        let config = self.config;
        let e = self.table.entry(source).or_insert(Entry {
            failures: 0,
            penalty: Duration::ZERO,
            until: None,
            last_failure: now,
            burst: None,
        });
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        if e.failures >= config.free_failures {
            e.penalty = if e.penalty.is_zero() {
                config.first_penalty
            } else {
                (e.penalty * 2).min(config.max_penalty)
            };
            e.until = Some(now + e.penalty);
        }
        e.failures == 1
    }

    /// A token was checked and is right: the address starts afresh.
    pub(crate) fn succeeded(&mut self, now: Instant, source: Source) {
        if let Some(mut e) = self.table.remove(&source) {
            let line = end_burst(source, &mut e, now);
            self.log.extend(line);
        }
    }

    /// The next line for the log, if any.
    pub(crate) fn poll_log(&mut self) -> Option<String> {
        self.log.pop_front()
    }

    fn forget_if_quiet(&mut self, now: Instant, source: Source) {
        let quiet = self.config.quiet;
        if let Some(e) = self.table.get(&source)
            && is_quiet(e, now, quiet)
        {
            self.succeeded(now, source);
        }
    }

    /// Keeps the table under its capacity: the quiet go first, then the longest without a
    /// wrong token.
    fn make_room(&mut self, now: Instant) {
        if self.table.len() < self.config.capacity {
            return;
        }
        let quiet = self.config.quiet;
        self.table.retain(|_, e| !is_quiet(e, now, quiet));
        while self.table.len() >= self.config.capacity.max(1) {
            let Some(oldest) = self
                .table
                .iter()
                .min_by_key(|(_, e)| e.last_failure)
                .map(|(s, _)| *s)
            else {
                return;
            };
            self.table.remove(&oldest);
        }
    }
}

fn is_quiet(e: &Entry, now: Instant, quiet: Duration) -> bool {
    let penalty_over = e.until.is_none_or(|until| until <= now);
    penalty_over && now.saturating_duration_since(e.last_failure) >= quiet
}

/// The refusals are over: the ones not logged yet, summed up.
fn end_burst(source: Source, e: &mut Entry, now: Instant) -> Option<String> {
    let burst = e.burst.take()?;
    (burst.unlogged > 0).then(|| summary(source, &burst, now))
}

fn summary(source: Source, burst: &Burst, now: Instant) -> String {
    let over = now
        .saturating_duration_since(burst.logged)
        .as_secs_f64()
        .ceil();
    format!(
        "{source}: {} more attempt(s) refused unchecked over {over} s",
        burst.unlogged
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source::of(text.parse().unwrap())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The penalty a wrong token at `now` starts: how long attempts are refused after it.
    fn penalty_after_failure(t: &mut AuthThrottle, now: Instant, a: Source) -> Option<Duration> {
        t.failed(now, a);
        match t.attempt(now, a) {
            Attempt::Refuse { retry_after } => Some(retry_after),
            Attempt::Check => None,
        }
    }

    #[test]
    fn five_free_failures_then_refusals_with_a_doubling_penalty() {
        let t0 = Instant::now();
        let mut t = AuthThrottle::new(ThrottleConfig::default());
        let a = source("192.0.2.7");
        for i in 1..5 {
            assert_eq!(t.attempt(t0, a), Attempt::Check, "attempt {i}");
            assert_eq!(penalty_after_failure(&mut t, t0, a), None, "failure {i}");
        }
        assert_eq!(penalty_after_failure(&mut t, t0, a), Some(secs(1)));
        // Within the penalty: refused unchecked, told how long is left.
        assert_eq!(
            t.attempt(t0 + ms(400), a),
            Attempt::Refuse {
                retry_after: ms(600)
            }
        );
        // Each wrong token after the penalty doubles it: 2, 4, ... up to 60 s.
        let mut now = t0 + secs(1);
        let mut penalties = Vec::new();
        for _ in 0..8 {
            assert_eq!(t.attempt(now, a), Attempt::Check);
            let penalty = penalty_after_failure(&mut t, now, a).expect("a penalty each time");
            penalties.push(penalty.as_secs());
            assert!(matches!(
                t.attempt(now + penalty - ms(1), a),
                Attempt::Refuse { .. }
            ));
            now += penalty;
        }
        assert_eq!(penalties, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_right_token_after_the_penalty_starts_afresh() {
        let t0 = Instant::now();
        let mut t = AuthThrottle::new(ThrottleConfig::default());
        let a = source("192.0.2.7");
        for _ in 0..6 {
            t.failed(t0, a);
        }
        assert!(matches!(t.attempt(t0, a), Attempt::Refuse { .. }));
        let after = t0 + secs(3);
        assert_eq!(t.attempt(after, a), Attempt::Check);
        t.succeeded(after, a);
        // Five free ones again.
        for _ in 0..4 {
            assert_eq!(penalty_after_failure(&mut t, after, a), None);
        }
        assert_eq!(penalty_after_failure(&mut t, after, a), Some(secs(1)));
    }

    #[test]
    fn quiet_addresses_are_forgotten() {
        let t0 = Instant::now();
        let mut t = AuthThrottle::new(ThrottleConfig::default());
        let a = source("192.0.2.7");
        for _ in 0..5 {
            t.failed(t0, a);
        }
        let later = t0 + secs(600);
        assert_eq!(t.attempt(later, a), Attempt::Check);
        assert!(
            t.failed(later, a),
            "counted afresh: the first of a new burst"
        );
    }

    #[test]
    fn addresses_are_throttled_apart_and_ipv6_by_its_64() {
        let t0 = Instant::now();
        let mut t = AuthThrottle::new(ThrottleConfig::default());
        for _ in 0..5 {
            t.failed(t0, source("2001:db8:1:2::1"));
        }
        // Another host of the same /64 is the same source; another /64 or IPv4 is not.
        assert!(matches!(
            t.attempt(t0, source("2001:db8:1:2:ffff::9")),
            Attempt::Refuse { .. }
        ));
        assert_eq!(t.attempt(t0, source("2001:db8:1:3::1")), Attempt::Check);
        assert_eq!(t.attempt(t0, source("192.0.2.1")), Attempt::Check);
        // An IPv4 client on a dual-stack socket is its IPv4 address.
        for _ in 0..5 {
            t.failed(t0, source("192.0.2.9"));
        }
        assert!(matches!(
            t.attempt(t0, source("::ffff:192.0.2.9")),
            Attempt::Refuse { .. }
        ));
        assert_eq!(source("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn the_table_is_capped_and_forgets_the_oldest() {
        let t0 = Instant::now();
        let mut t = AuthThrottle::new(ThrottleConfig {
            capacity: 3,
            ..ThrottleConfig::default()
        });
        let addresses: Vec<Source> = (1..=4).map(|i| source(&format!("10.0.0.{i}"))).collect();
        for (i, &a) in addresses.iter().enumerate() {
            for _ in 0..5 {
                t.failed(t0 + ms(i as u64), a);
            }
        }
        assert!(t.table.len() <= 3);
        let now = t0 + ms(4);
        assert_eq!(
            t.attempt(now, addresses[0]),
            Attempt::Check,
            "the oldest was forgotten"
        );
        assert!(matches!(
            t.attempt(now, addresses[3]),
            Attempt::Refuse { .. }
        ));
    }

    #[test]
    fn refusals_are_logged_once_per_burst_and_summed_up() {
        let t0 = Instant::now();
        let mut t = AuthThrottle::new(ThrottleConfig {
            first_penalty: secs(60),
            ..ThrottleConfig::default()
        });
        let a = source("192.0.2.7");
        let first: Vec<bool> = (0..5).map(|_| t.failed(t0, a)).collect();
        assert_eq!(
            first,
            [true, false, false, false, false],
            "one line per burst"
        );
        // A thousand refusals in 50 s: one line at the first.
        for i in 0..1000 {
            t.attempt(t0 + ms(i * 50), a);
        }
        let lines: Vec<String> = std::iter::from_fn(|| t.poll_log()).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("192.0.2.7: 5 wrong tokens in a row"),
            "{lines:?}"
        );
        // Past a minute, one summary while they go on.
        assert!(matches!(
            t.attempt(t0 + secs(59), a),
            Attempt::Refuse { .. }
        ));
        assert!(t.poll_log().is_none());
        // When the burst ends, the rest are summed up in one line.
        assert_eq!(t.attempt(t0 + secs(61), a), Attempt::Check);
        let lines: Vec<String> = std::iter::from_fn(|| t.poll_log()).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("1000 more attempt(s) refused"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_long_burst_is_summed_up_once_a_minute() {
        let t0 = Instant::now();
        let mut t = AuthThrottle::new(ThrottleConfig {
            first_penalty: secs(600),
            max_penalty: secs(600),
            ..ThrottleConfig::default()
        });
        let a = source("192.0.2.7");
        for _ in 0..5 {
            t.failed(t0, a);
        }
        // One attempt a second for five minutes: the first line, then one a minute.
        for i in 0..300 {
            t.attempt(t0 + secs(i), a);
        }
        let lines: Vec<String> = std::iter::from_fn(|| t.poll_log()).collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(
            lines[1].starts_with("192.0.2.7: 60 more attempt(s)"),
            "{lines:?}"
        );
    }
}
