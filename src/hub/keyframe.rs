//! When to ask the encoder for an IDR: coalesced across viewers, rate-limited per viewer.
//!
//! Joins are never delayed (a new viewer's first picture waits on this IDR). Requests from
//! PLI/FIR or the `keyframe` command are limited twice: each viewer is heard at most once per
//! `per_viewer_interval`, and such IDRs are at least `min_interval` apart across all viewers, so
//! no viewer (or group of viewers) can turn the stream into all-IDR. While one request is
//! outstanding, every further request is folded into it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::ViewerId;

#[derive(Clone, Debug, PartialEq)]
pub struct KeyframeConfig {
    /// A viewer's PLI/FIR (or `keyframe` command) is honoured at most this often.
    pub per_viewer_interval: Duration,
    /// IDRs asked for by PLI/FIR are at least this far apart, whoever asks.
    pub min_interval: Duration,
    /// An asked-for IDR that has not come through after this long is asked for again
    /// (the encoder may have dropped the frame), while some viewer still waits for one.
    pub retry_after: Duration,
}

impl Default for KeyframeConfig {
    fn default() -> Self {
        KeyframeConfig {
            per_viewer_interval: Duration::from_secs(1),
            min_interval: Duration::from_millis(500),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Counters for `status` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyframeCounters {
    /// Requests sent to the encoder.
    pub requested: u64,
    /// Requests folded into one already outstanding.
    pub coalesced: u64,
    /// PLI/FIR ignored because the same viewer asked too recently.
    pub rate_limited: u64,
}

#[derive(Debug)]
pub(crate) struct KeyframePolicy {
    config: KeyframeConfig,
    /// A request went to the encoder at this time and no IDR has come through since.
    outstanding_since: Option<Instant>,
    /// A PLI-driven request held back until `min_interval` after the last IDR.
    deferred_until: Option<Instant>,
    last_keyframe: Option<Instant>,
    last_heard: HashMap<ViewerId, Instant>,
    /// The encoder must be asked (taken by `poll_request`).
    ask: bool,
    counters: KeyframeCounters,
}

impl std::ops::Add for KeyframeCounters {
    type Output = KeyframeCounters;

    fn add(self, other: KeyframeCounters) -> KeyframeCounters {
        KeyframeCounters {
            requested: self.requested + other.requested,
            coalesced: self.coalesced + other.coalesced,
            rate_limited: self.rate_limited + other.rate_limited,
        }
    }
}

impl KeyframePolicy {
    pub(crate) fn new(config: KeyframeConfig) -> Self {
        KeyframePolicy {
            config,
            outstanding_since: None,
            deferred_until: None,
            last_keyframe: None,
            last_heard: HashMap::new(),
            ask: false,
            counters: KeyframeCounters::default(),
        }
    }

    /// A viewer became connected and needs its first IDR now.
    pub(crate) fn on_join(&mut self, now: Instant) {
        self.request(now);
    }

    /// A viewer asked for a keyframe (PLI, FIR or the `keyframe` command).
    pub(crate) fn on_viewer_request(&mut self, viewer: ViewerId, now: Instant) {
        if let Some(&heard) = self.last_heard.get(&viewer)
            && now < heard + self.config.per_viewer_interval
        {
            self.counters.rate_limited += 1;
            return;
        }
        self.last_heard.insert(viewer, now);

        if self.outstanding_since.is_some() {
            self.counters.coalesced += 1;
            return;
        }
        match self.last_keyframe {
            Some(last) if now < last + self.config.min_interval => {
                let at = last + self.config.min_interval;
                if self.deferred_until.is_some() {
                    self.counters.coalesced += 1;
                }
                self.deferred_until = Some(self.deferred_until.map_or(at, |d| d.min(at)));
            }
            _ => self.request(now),
        }
    }

    /// An IDR went out to the viewers.
    pub(crate) fn on_keyframe(&mut self, now: Instant) {
        self.outstanding_since = None;
        self.deferred_until = None;
        self.last_keyframe = Some(now);
    }

    pub(crate) fn on_viewer_left(&mut self, viewer: ViewerId) {
        self.last_heard.remove(&viewer);
    }

    /// `anyone_waiting`: some connected viewer has not had its first IDR yet.
    pub(crate) fn handle_timeout(&mut self, now: Instant, anyone_waiting: bool) {
        if self.deferred_until.is_some_and(|at| at <= now) {
            self.deferred_until = None;
            self.request(now);
        }
        if let Some(since) = self.outstanding_since
            && now >= since + self.config.retry_after
        {
            if anyone_waiting {
                self.outstanding_since = Some(now);
                self.ask = true;
                self.counters.requested += 1;
            } else {
                self.outstanding_since = None;
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let retry = self.outstanding_since.map(|s| s + self.config.retry_after);
        match (self.deferred_until, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True once per request that must go to the encoder.
    pub(crate) fn poll_request(&mut self) -> bool {
        std::mem::take(&mut self.ask)
    }

    pub(crate) fn counters(&self) -> KeyframeCounters {
        self.counters
    }

    fn request(&mut self, now: Instant) {
        if self.outstanding_since.is_some() {
            self.counters.coalesced += 1;
            return;
        }
        self.outstanding_since = Some(now);
        self.deferred_until = None;
        self.ask = true;
        self.counters.requested += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ViewerId = ViewerId(1);
    const B: ViewerId = ViewerId(2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn many_joins_at_once_ask_for_one_idr() {
        let t0 = Instant::now();
        let mut p = KeyframePolicy::new(KeyframeConfig::default());
        for i in 0..10 {
            p.on_join(t0 + ms(i));
        }
        assert!(p.poll_request());
        assert!(!p.poll_request());
        assert_eq!(p.counters().requested, 1);
        assert_eq!(p.counters().coalesced, 9);

        // The IDR arrives; the next join asks again at once.
        p.on_keyframe(t0 + ms(40));
        p.on_join(t0 + ms(50));
        assert!(p.poll_request());
    }

    #[test]
    fn a_viewer_spamming_pli_gets_one_idr_per_interval() {
        let t0 = Instant::now();
        let mut p = KeyframePolicy::new(KeyframeConfig::default());
        let mut asked = 0;
        // 10 s of a PLI every 20 ms, with each requested IDR arriving 40 ms later.
        let mut idr_due = None;
        for step in 0..500 {
            let now = t0 + ms(step * 20);
            if idr_due.is_some_and(|d| d <= now) {
                p.on_keyframe(now);
                idr_due = None;
            }
            p.on_viewer_request(A, now);
            p.handle_timeout(now, false);
            if p.poll_request() {
                asked += 1;
                idr_due = Some(now + ms(40));
            }
        }
        assert!((10..=11).contains(&asked), "asked {asked} times in 10 s");
        assert!(p.counters().rate_limited > 400);
    }

    #[test]
    fn pli_right_after_an_idr_is_deferred_not_dropped() {
        let t0 = Instant::now();
        let mut p = KeyframePolicy::new(KeyframeConfig::default());
        p.on_keyframe(t0);
        p.on_viewer_request(A, t0 + ms(100));
        assert!(!p.poll_request(), "too soon after the last IDR");
        assert_eq!(p.poll_timeout(), Some(t0 + ms(500)));
        p.on_viewer_request(B, t0 + ms(200));
        assert_eq!(p.poll_timeout(), Some(t0 + ms(500)));
        p.handle_timeout(t0 + ms(500), false);
        assert!(p.poll_request());
        assert!(!p.poll_request());
    }

    #[test]
    fn periodic_idr_satisfies_a_deferred_request() {
        let t0 = Instant::now();
        let mut p = KeyframePolicy::new(KeyframeConfig::default());
        p.on_keyframe(t0);
        p.on_viewer_request(A, t0 + ms(100));
        p.on_keyframe(t0 + ms(300));
        p.handle_timeout(t0 + ms(600), false);
        assert!(!p.poll_request());
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn lost_idr_is_asked_again_only_while_someone_waits() {
        let t0 = Instant::now();
        let mut p = KeyframePolicy::new(KeyframeConfig::default());
        p.on_join(t0);
        assert!(p.poll_request());
        p.handle_timeout(t0 + ms(1000), true);
        assert!(p.poll_request(), "retry while a viewer waits");
        p.handle_timeout(t0 + ms(2000), false);
        assert!(!p.poll_request());
        assert_eq!(p.poll_timeout(), None);
    }
}
