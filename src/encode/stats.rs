//! Pipeline counters: written by the capture and encoder threads, read as a snapshot by anyone.
//!
//! Plain atomics so that counting costs the data path nothing and reading never blocks it; only
//! the window of recent encode times sits behind a mutex, touched once per encoded frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::m2m::CameraRead;

/// A snapshot of what the pipeline has done since it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineStats {
    /// Frames the source delivered.
    pub frames_captured: u64,
    /// Frames the encoder turned into access units (sent or not).
    pub frames_encoded: u64,
    /// Frames lost on the way: `dropped_in_mailbox + dropped_channel_full`.
    pub frames_dropped: u64,
    /// Raw frames replaced by a newer one before the encoder got to them (encoder too slow).
    pub dropped_in_mailbox: u64,
    /// Encoded frames dropped because the output channel was full (consumer too slow).
    pub dropped_channel_full: u64,
    /// Frames the rate control skipped to hold the bitrate.
    pub frames_skipped: u64,
    /// IDR access units produced.
    pub keyframes: u64,
    /// Frames the encoder refused or failed on.
    pub encode_errors: u64,
    pub last_capture: Option<Instant>,
    pub last_encode: Option<Instant>,
    /// Median encode time over the last `ENCODE_WINDOW` frames, in microseconds.
    pub encode_us_p50: Option<u64>,
    /// The low encoding (see `Encoding::Low`): frames encoded and median encode time, the
    /// downscale included.
    pub low_frames_encoded: u64,
    pub low_encode_us_p50: Option<u64>,
    /// Camera pictures the board's encoder took in the camera's own format: read by the
    /// device from the camera's buffer (dma-buf, no copy), or copied as they were (no
    /// conversion). Both 0 when pictures are converted to I420 first.
    pub camera_dmabuf: u64,
    pub camera_copied: u64,
}

/// How many recent encode times the median is taken over.
pub(crate) const ENCODE_WINDOW: usize = 100;

pub(super) struct Counters {
    /// Reference point for the `last_*` times, which are stored as nanoseconds after it plus
    /// one (so zero can mean "never").
    origin: Instant,
    captured: AtomicU64,
    encoded: AtomicU64,
    dropped_in_mailbox: AtomicU64,
    dropped_channel_full: AtomicU64,
    skipped: AtomicU64,
    keyframes: AtomicU64,
    errors: AtomicU64,
    camera_dmabuf: AtomicU64,
    camera_copied: AtomicU64,
    last_capture: AtomicU64,
    last_encode: AtomicU64,
    encode_times: Mutex<RecentTimes>,
}

impl Counters {
    pub(super) fn new() -> Self {
        Counters {
            origin: Instant::now(),
            captured: AtomicU64::new(0),
            encoded: AtomicU64::new(0),
            dropped_in_mailbox: AtomicU64::new(0),
            dropped_channel_full: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            keyframes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            camera_dmabuf: AtomicU64::new(0),
            camera_copied: AtomicU64::new(0),
            last_capture: AtomicU64::new(0),
            last_encode: AtomicU64::new(0),
            encode_times: Mutex::new(RecentTimes::default()),
        }
    }

    pub(super) fn captured(&self, at: Instant) {
        self.captured.fetch_add(1, Ordering::Relaxed);
        self.last_capture
            .store(self.encode_instant(at), Ordering::Relaxed);
    }

    pub(super) fn dropped_in_mailbox(&self) {
        self.dropped_in_mailbox.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn dropped_channel_full(&self) {
        self.dropped_channel_full.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn camera_read(&self, read: CameraRead) {
        let counter = match read {
            CameraRead::Dmabuf => &self.camera_dmabuf,
            CameraRead::Copied => &self.camera_copied,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn encoded(&self, at: Instant, took: Duration, keyframe: bool) {
        self.encoded.fetch_add(1, Ordering::Relaxed);
        if keyframe {
            self.keyframes.fetch_add(1, Ordering::Relaxed);
        }
        self.last_encode
            .store(self.encode_instant(at), Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.encode_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(micros);
    }

    pub(super) fn snapshot(&self) -> PipelineStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let dropped_in_mailbox = get(&self.dropped_in_mailbox);
        let dropped_channel_full = get(&self.dropped_channel_full);
        PipelineStats {
            frames_captured: get(&self.captured),
            frames_encoded: get(&self.encoded),
            frames_dropped: dropped_in_mailbox + dropped_channel_full,
            dropped_in_mailbox,
            dropped_channel_full,
            frames_skipped: get(&self.skipped),
            keyframes: get(&self.keyframes),
            encode_errors: get(&self.errors),
            last_capture: self.decode_instant(get(&self.last_capture)),
            last_encode: self.decode_instant(get(&self.last_encode)),
            encode_us_p50: self
                .encode_times
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .median(),
            low_frames_encoded: 0,
            low_encode_us_p50: None,
            camera_dmabuf: get(&self.camera_dmabuf),
            camera_copied: get(&self.camera_copied),
        }
    }

    fn encode_instant(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
    }

    fn decode_instant(&self, stored: u64) -> Option<Instant> {
        let nanos = stored.checked_sub(1)?;
        Some(self.origin + Duration::from_nanos(nanos))
    }
}

/// The last `ENCODE_WINDOW` values, oldest overwritten first.
#[derive(Default)]
struct RecentTimes {
    values: Vec<u64>,
    next: usize,
}

impl RecentTimes {
    fn push(&mut self, value: u64) {
        if self.values.len() < ENCODE_WINDOW {
            self.values.push(value);
        } else {
            self.values[self.next] = value;
        }
        self.next = (self.next + 1) % ENCODE_WINDOW;
    }

    fn median(&self) -> Option<u64> {
        if self.values.is_empty() {
            return None;
        }
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        Some(sorted[sorted.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_covers_only_the_recent_window() {
        let mut times = RecentTimes::default();
        assert_eq!(times.median(), None);
        for _ in 0..ENCODE_WINDOW {
            times.push(1000);
        }
        assert_eq!(times.median(), Some(1000));
        // Replace more than half of the window with faster frames.
        for _ in 0..ENCODE_WINDOW / 2 + 1 {
            times.push(10);
        }
        assert_eq!(times.median(), Some(10));
        assert_eq!(times.values.len(), ENCODE_WINDOW);
    }

    #[test]
    fn snapshot_adds_up_drops_and_keeps_instants() {
        let counters = Counters::new();
        let empty = counters.snapshot();
        assert_eq!((empty.last_capture, empty.last_encode), (None, None));
        let at = Instant::now();
        counters.captured(at);
        counters.dropped_in_mailbox();
        counters.dropped_channel_full();
        counters.dropped_channel_full();
        counters.encoded(at, Duration::from_micros(1500), true);
        let stats = counters.snapshot();
        assert_eq!(stats.frames_dropped, 3);
        assert_eq!(
            (stats.frames_captured, stats.frames_encoded, stats.keyframes),
            (1, 1, 1)
        );
        assert_eq!(stats.encode_us_p50, Some(1500));
        assert_eq!(stats.last_capture, Some(at));
    }
}
