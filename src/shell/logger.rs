//! The logger: `RUST_LOG` filtering and one line per record on standard error.
//!
//! `RUST_LOG` is a comma-separated list of `level` and `target=level` (`target` alone means
//! `target=trace`); levels are `off`, `error`, `warn`, `info`, `debug`, `trace`, in any case.
//! A record's level is checked against the directive whose target is the longest prefix of the
//! record's target (its module path, e.g. `str0m::ice_::agent`); records no directive names
//! get the bare `level`, else `info`. So `RUST_LOG=rtcam=debug,str0m=debug` shows those two at
//! debug and everything else at info. Invalid parts are reported once and ignored.
//!
//! str0m logs through `tracing`; its `log` feature turns those events into `log` records when
//! no tracing subscriber is set (we set none), so they arrive here and are filtered the same.
//!
//! Lines are `LEVEL target: message`, without timestamps: under systemd, journald stamps every
//! line itself (`journalctl -o short-precise` shows microseconds), and a second stamp would
//! only repeat it. This replaces env_logger, which cost about 15 KiB of the stripped aarch64
//! binary for features rtcam does not use (colours, timestamp formatting, `/regex` filters).

use std::fmt::Write as _;
use std::io::Write as _;

use log::{LevelFilter, Log, Metadata, Record};

/// What records pass: per-target levels, longest target first, and the level for the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    targets: Vec<(String, LevelFilter)>,
    default: LevelFilter,
}

impl Filter {
    /// Parses a `RUST_LOG` value; the second value lists the parts that were ignored.
    pub fn parse(spec: &str) -> (Filter, Vec<String>) {
        let mut filter = Filter {
            targets: Vec::new(),
            default: LevelFilter::Info,
        };
        let mut ignored = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((target, level)) => match (target.trim(), level_of(level)) {
                    ("", _) | (_, None) => ignored.push(part.to_string()),
                    (target, Some(level)) => filter.set(target, level),
                },
                None => match level_of(part) {
                    Some(level) => filter.default = level,
                    // A bare word that is no level names a target: everything from it.
                    None if part.chars().all(is_target_char) => {
                        filter.set(part, LevelFilter::Trace)
                    }
                    None => ignored.push(part.to_string()),
                },
            }
        }
        // Longest first, so the first match is the most specific.
        filter
            .targets
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        (filter, ignored)
    }

    fn set(&mut self, target: &str, level: LevelFilter) {
        match self.targets.iter_mut().find(|(t, _)| t == target) {
            Some(entry) => entry.1 = level,
            None => self.targets.push((target.to_string(), level)),
        }
    }

    /// The level records of `target` must be at or above.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(prefix, _)| target.starts_with(prefix.as_str()))
            .map_or(self.default, |(_, level)| *level)
    }

    /// The most verbose level any target gets (for `log::set_max_level`).
    pub fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, Ord::max)
    }
}

fn level_of(word: &str) -> Option<LevelFilter> {
    let word = word.trim();
    [
        LevelFilter::Off,
        LevelFilter::Error,
        LevelFilter::Warn,
        LevelFilter::Info,
        LevelFilter::Debug,
        LevelFilter::Trace,
    ]
    .into_iter()
    .find(|level| level.as_str().eq_ignore_ascii_case(word))
}

fn is_target_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-'
}

struct Logger {
    filter: Filter,
    /// Tests: through `eprint!`, which the test harness captures per test.
    capture: bool,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.filter.level_for(metadata.target())
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // One write per line, so lines from different threads never interleave.
        let mut line = String::with_capacity(128);
        let _ = writeln!(
            line,
            "{:<5} {}: {}",
            record.level().as_str(),
            record.target(),
            record.args()
        );
        if self.capture {
            eprint!("{line}");
        } else {
            // A log line that cannot be written is dropped, never a reason to panic.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger with the filter from `RUST_LOG` (default `info`). Once per process;
/// later calls do nothing.
pub fn init() {
    install(false);
}

/// As `init`, with output through the test harness's capture (for tests).
pub fn init_for_tests() {
    install(true);
}

fn install(capture: bool) {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let (filter, ignored) = Filter::parse(&spec);
    let max = filter.max_level();
    let logger = Box::new(Logger { filter, capture });
    if log::set_logger(Box::leak(logger)).is_ok() {
        log::set_max_level(max);
        for part in ignored {
            log::warn!("RUST_LOG: ignoring {part:?} (expected LEVEL or TARGET=LEVEL)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(spec: &str) -> Filter {
        let (filter, ignored) = Filter::parse(spec);
        assert!(ignored.is_empty(), "{spec:?}: ignored {ignored:?}");
        filter
    }

    #[test]
    fn default_is_info() {
        for spec in ["", " ", ","] {
            let f = filter(spec);
            assert_eq!(f.level_for("rtcam"), LevelFilter::Info);
            assert_eq!(f.level_for("str0m::ice_"), LevelFilter::Info);
            assert_eq!(f.max_level(), LevelFilter::Info);
        }
    }

    #[test]
    fn a_bare_level_applies_to_everything() {
        let f = filter("debug");
        assert_eq!(f.level_for("rtcam::hub"), LevelFilter::Debug);
        assert_eq!(f.level_for("str0m"), LevelFilter::Debug);
        assert_eq!(filter("WARN").level_for("x"), LevelFilter::Warn);
        assert_eq!(filter("off").max_level(), LevelFilter::Off);
    }

    #[test]
    fn targets_with_levels_and_the_rest_at_info() {
        let f = filter("rtcam=debug,str0m=trace");
        assert_eq!(f.level_for("rtcam"), LevelFilter::Debug);
        assert_eq!(f.level_for("rtcam::net::http"), LevelFilter::Debug);
        assert_eq!(f.level_for("str0m::dtls"), LevelFilter::Trace);
        assert_eq!(f.level_for("quinn_udp"), LevelFilter::Info);
        assert_eq!(f.max_level(), LevelFilter::Trace);
    }

    #[test]
    fn the_longest_matching_target_wins() {
        let f = filter("warn,str0m=debug,str0m::ice_=trace,str0m::ice_::agent=error");
        assert_eq!(f.level_for("str0m::ice_::agent"), LevelFilter::Error);
        assert_eq!(f.level_for("str0m::ice_::pair"), LevelFilter::Trace);
        assert_eq!(f.level_for("str0m::rtp"), LevelFilter::Debug);
        assert_eq!(f.level_for("rtcam"), LevelFilter::Warn);
    }

    #[test]
    fn the_last_of_the_same_target_wins_and_a_bare_target_means_trace() {
        let f = filter("rtcam=debug, rtcam = error ,str0m");
        assert_eq!(f.level_for("rtcam"), LevelFilter::Error);
        assert_eq!(f.level_for("str0m::sctp"), LevelFilter::Trace);
    }

    #[test]
    fn bad_parts_are_ignored_and_reported() {
        let (f, ignored) = Filter::parse("rtcam=loud,=debug,str0m=debug,a b");
        assert_eq!(ignored, ["rtcam=loud", "=debug", "a b"]);
        assert_eq!(f.level_for("rtcam"), LevelFilter::Info);
        assert_eq!(f.level_for("str0m"), LevelFilter::Debug);
    }
}
