//! The stream as the core sees it: what it runs with, what was sent, and the status and health
//! built from that and from the shell's readings.

use std::time::{Duration, Instant};

use super::meter::StreamMeter;
use crate::control::{Status, StreamSettings};
use crate::encode::PipelineStats;
use crate::encode::limits::Size;
use crate::hub::HubCounters;
use crate::hub::link::LinkReport;
use crate::source::{CameraReading, SourceInfo};

/// The source or the encoder are considered stuck after this long without a frame.
const STALL: Duration = Duration::from_secs(3);

/// What the pipeline runs with: its source, the stream's settings and its encodings.
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    pub source: SourceInfo,
    pub settings: StreamSettings,
    /// The low encoding's picture size, None when the stream has none (a small picture).
    pub low: Option<Size>,
    /// Temporal layers of the encodings (1: none to drop).
    pub layers: u8,
    /// False when the bitrate cannot be changed (a camera's own H.264, passed through).
    pub adaptive: bool,
    /// What encodes: `software (OpenH264)`, `v4l2m2m:/dev/video11 (bcm2835-codec-encode)`,
    /// or `passthrough` for a camera's own H.264.
    pub encoder: String,
}

/// What only the shell can read, handed in when the streamer asks (`Output::ReadingsWanted`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readings {
    /// The pipeline's counters (they start again with each pipeline).
    pub pipeline: PipelineStats,
    /// The camera behind the source, if it is one.
    pub camera: Option<CameraReading>,
    /// The 1-minute load average per CPU, where the OS tells.
    pub cpu_load: Option<f64>,
    pub soc_temp_c: Option<f64>,
    /// Median time from a frame entering the encoder to its last packet on the socket.
    pub capture_to_wire_ms_p50: f64,
}

pub(super) struct StreamState {
    running: Running,
    max_viewers: usize,
    started: Instant,
    /// When the current pipeline started: frames are expected from then on.
    pipeline_since: Instant,
    /// Frames and bytes handed to the viewers.
    sent: StreamMeter,
    auth_failures: u64,
    auth_throttled: u64,
}

impl StreamState {
    pub(super) fn new(running: Running, now: Instant, max_viewers: usize) -> StreamState {
        StreamState {
            running,
            max_viewers,
            started: now,
            pipeline_since: now,
            sent: StreamMeter::new(Duration::from_secs(2)),
            auth_failures: 0,
            auth_throttled: 0,
        }
    }

    pub(super) fn running(&self) -> &Running {
        &self.running
    }

    pub(super) fn sent(&mut self, now: Instant, bytes: usize) {
        self.sent.record(now, bytes);
    }

    pub(super) fn set_bitrate(&mut self, kbps: u32) {
        self.running.settings.bitrate_kbps = kbps;
    }

    /// No frames are expected until the new pipeline runs; health counts from now.
    pub(super) fn restart_began(&mut self, now: Instant) {
        self.pipeline_since = now;
    }

    pub(super) fn restarted(&mut self, now: Instant, running: Running) {
        self.running = running;
        self.pipeline_since = now;
    }

    pub(super) fn auth_failed(&mut self) {
        self.auth_failures += 1;
    }

    pub(super) fn auth_throttled(&mut self) {
        self.auth_throttled += 1;
    }

    pub(super) fn status(
        &mut self,
        now: Instant,
        viewers: HubCounters,
        links: Vec<LinkReport>,
        r: &Readings,
    ) -> Status {
        let p = &r.pipeline;
        let settings = self.running.settings;
        let (fps_measured, bitrate_measured_kbps) = self.sent.rates(now);
        let uptime = now.saturating_duration_since(self.started).as_secs_f64();
        let camera = r.camera.as_ref();
        Status {
            source: self.running.source.kind.to_string(),
            source_name: self.running.source.name.clone(),
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
            encoder: self.running.encoder.clone(),
            encode_ms_p50: p.encode_us_p50.map_or(0.0, |us| us as f64 / 1000.0),
            capture_to_wire_ms_p50: r.capture_to_wire_ms_p50,
            cpu_load: r.cpu_load,
            soc_temp_c: r.soc_temp_c,
            auth_failures: self.auth_failures,
            auth_throttled: self.auth_throttled,
            camera_format: camera.map(|c| c.format.clone()),
            camera_state: camera.map(|c| c.state),
            camera_frames_dropped: camera.map_or(0, |c| c.frames_dropped),
            camera_frames_broken: camera.map_or(0, |c| c.frames_broken),
            idr_on_request: camera.and_then(|c| c.idr_on_request),
            links,
            low_frames_encoded: p.low_frames_encoded,
            low_encode_ms_p50: p.low_encode_us_p50.map_or(0.0, |us| us as f64 / 1000.0),
            camera_dmabuf: p.camera_dmabuf,
            camera_copied: p.camera_copied,
        }
    }

    /// Ok while the source and the encoder both produce frames.
    pub(super) fn health(&self, now: Instant, r: &Readings) -> Result<(), String> {
        let stale = |last: Option<Instant>| {
            let since = last.unwrap_or(self.pipeline_since).max(self.pipeline_since);
            now.saturating_duration_since(since) > STALL
        };
        if stale(r.pipeline.last_capture) {
            return Err("no frame from the source for over 3 s".into());
        }
        if stale(r.pipeline.last_encode) {
            return Err("no frame from the encoder for over 3 s".into());
        }
        Ok(())
    }
}
