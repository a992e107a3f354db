//! Rolling measurements for `status`: frame rate and bitrate actually sent, and latency
//! percentiles over recent frames.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Frames and bytes over the last `window`.
pub(super) struct StreamMeter {
    window: Duration,
    frames: VecDeque<(Instant, usize)>,
    bytes_in_window: usize,
}

impl StreamMeter {
    pub(super) fn new(window: Duration) -> StreamMeter {
        StreamMeter {
            window,
            frames: VecDeque::new(),
            bytes_in_window: 0,
        }
    }

    pub(super) fn record(&mut self, now: Instant, bytes: usize) {
        self.frames.push_back((now, bytes));
        self.bytes_in_window += bytes;
        self.expire(now);
    }

    /// (frames per second, kbit/s) over the window ending at `now`.
    pub(super) fn rates(&mut self, now: Instant) -> (f64, f64) {
        self.expire(now);
        let secs = self.window.as_secs_f64();
        let fps = self.frames.len() as f64 / secs;
        let kbps = self.bytes_in_window as f64 * 8.0 / 1000.0 / secs;
        (round2(fps), round2(kbps))
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, bytes)) = self.frames.front() {
            if now.saturating_duration_since(at) <= self.window {
                break;
            }
            self.frames.pop_front();
            self.bytes_in_window -= bytes;
        }
    }
}

/// The last `capacity` samples of a duration; reports the median.
pub(crate) struct LatencyWindow {
    capacity: usize,
    samples: VecDeque<Duration>,
}

impl LatencyWindow {
    pub(crate) fn new(capacity: usize) -> LatencyWindow {
        LatencyWindow {
            capacity,
            samples: VecDeque::with_capacity(capacity),
        }
    }

    pub(crate) fn record(&mut self, sample: Duration) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Median in milliseconds; 0 with no samples.
    pub(crate) fn median_ms(&self) -> f64 {
        let mut v: Vec<Duration> = self.samples.iter().copied().collect();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_unstable();
        round2(v[v.len() / 2].as_secs_f64() * 1000.0)
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_cover_only_the_window() {
        let t0 = Instant::now();
        let mut m = StreamMeter::new(Duration::from_secs(2));
        for i in 0..120 {
            // 30 fps, 6250 bytes a frame = 1500 kbit/s
            m.record(t0 + Duration::from_millis(i * 1000 / 30), 6250);
        }
        let (fps, kbps) = m.rates(t0 + Duration::from_millis(3990));
        assert!((29.0..=31.0).contains(&fps), "{fps}");
        assert!((1450.0..=1550.0).contains(&kbps), "{kbps}");
        assert_eq!(m.rates(t0 + Duration::from_secs(10)), (0.0, 0.0));
    }

    #[test]
    fn median_of_recent_samples() {
        let mut w = LatencyWindow::new(3);
        assert_eq!(w.median_ms(), 0.0);
        for ms in [100, 1, 2, 3] {
            w.record(Duration::from_millis(ms));
        }
        assert_eq!(w.median_ms(), 2.0, "the oldest sample fell out");
    }
}
