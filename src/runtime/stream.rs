//! The stream being served: the pipeline that makes it and what is measured of it, for
//! `status`, `/api/status` and `/healthz`.

use std::time::{Duration, Instant};

use super::meter::{LatencyWindow, StreamMeter};
use crate::control::Status;
use crate::encode::Pipeline;
use crate::hub::HubCounters;

/// The source or the encoder are considered stuck after this long without a frame.
const STALL: Duration = Duration::from_secs(3);

pub struct Stream {
    pub pipeline: Pipeline,
    max_viewers: usize,
    started: Instant,
    /// Frames and bytes handed to the viewers.
    sent: StreamMeter,
    /// Frame handed to the encoder → its last packet on the socket.
    to_wire: LatencyWindow,
}

impl Stream {
    pub fn new(pipeline: Pipeline, max_viewers: usize, started: Instant) -> Stream {
        Stream {
            pipeline,
            max_viewers,
            started,
            sent: StreamMeter::new(Duration::from_secs(2)),
            to_wire: LatencyWindow::new(120),
        }
    }

    pub fn frame_sent(&mut self, now: Instant, bytes: usize) {
        self.sent.record(now, bytes);
    }

    pub fn frame_on_wire(&mut self, handed_to_encoder: Instant, now: Instant) {
        self.to_wire
            .record(now.saturating_duration_since(handed_to_encoder));
    }

    pub fn status(&mut self, viewers: HubCounters, now: Instant) -> Status {
        let p = self.pipeline.stats();
        let settings = self.pipeline.settings();
        let source = self.pipeline.source_info();
        let (fps_measured, bitrate_measured_kbps) = self.sent.rates(now);
        let uptime = now.saturating_duration_since(self.started).as_secs_f64();
        Status {
            source: source.kind.to_string(),
            source_name: source.name.clone(),
            width: settings.width,
            height: settings.height,
            fps: settings.fps,
            fps_measured,
            bitrate_kbps: settings.bitrate_kbps,
            bitrate_measured_kbps,
            viewers: viewers.viewers,
            viewers_connected: viewers.connected,
            max_viewers: self.max_viewers,
            uptime_s: (uptime * 10.0).round() / 10.0,
            frames_captured: p.frames_captured,
            frames_encoded: p.frames_encoded,
            frames_dropped: p.frames_dropped,
            frames_skipped: p.frames_skipped,
            keyframes: p.keyframes,
            encode_ms_p50: p.encode_us_p50.map_or(0.0, |us| us as f64 / 1000.0),
            capture_to_wire_ms_p50: self.to_wire.median_ms(),
        }
    }

    /// Ok while the source and the encoder both produce frames.
    pub fn health(&self, now: Instant) -> Result<(), String> {
        let p = self.pipeline.stats();
        let stale = |last: Option<Instant>| {
            let since = last.unwrap_or(self.started);
            now.saturating_duration_since(since) > STALL
        };
        if stale(p.last_capture) {
            return Err("no frame from the source for over 3 s".into());
        }
        if stale(p.last_encode) {
            return Err("no frame from the encoder for over 3 s".into());
        }
        Ok(())
    }
}
