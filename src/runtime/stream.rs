//! The stream being served: its source and encoder (the pipeline), the settings it runs with,
//! and what is measured of it, for `status`, `/api/status` and `/healthz`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::channel::{Receiver, bounded};

use super::host;
use super::meter::{LatencyWindow, StreamMeter};
use crate::config::{Config, SourceSpec};
use crate::control::{Status, StreamChange, StreamSettings};
use crate::encode::{EncodedFrame, Pipeline};
use crate::hub::HubCounters;
use crate::source::FrameSource;
use crate::source::pattern::{SimulatedCamera, TestPattern};

/// The source or the encoder are considered stuck after this long without a frame.
const STALL: Duration = Duration::from_secs(3);

/// Encoded frames waiting for the event loop. A few frames: the loop normally takes each at
/// once; if it stalls longer than this, frames drop (and the encoder makes an IDR) rather than
/// queue up delay.
const FRAME_QUEUE: usize = 4;

pub struct Stream {
    pub pipeline: Pipeline,
    pub frames: Receiver<EncodedFrame>,
    config: Config,
    /// The test pattern's pan/tilt/zoom controls, kept across restarts at another size.
    camera: Arc<SimulatedCamera>,
    started: Instant,
    /// Frames and bytes handed to the viewers.
    sent: StreamMeter,
    /// Frame handed to the encoder → its last packet on the socket.
    to_wire: LatencyWindow,
    /// Counts restarts: a new source may come with new camera controls.
    pub generation: u64,
    pub auth_failures: u64,
}

impl Stream {
    pub fn start(config: &Config, started: Instant) -> Result<Stream, String> {
        let camera = Arc::new(SimulatedCamera::default());
        let (pipeline, frames) = start_pipeline(config, &camera)?;
        Ok(Stream {
            pipeline,
            frames,
            config: config.clone(),
            camera,
            started,
            sent: StreamMeter::new(Duration::from_secs(2)),
            to_wire: LatencyWindow::new(120),
            generation: 0,
            auth_failures: 0,
        })
    }

    pub fn settings(&self) -> StreamSettings {
        let s = self.pipeline.settings();
        StreamSettings {
            width: s.width,
            height: s.height,
            fps: s.fps,
            bitrate_kbps: s.bitrate_kbps,
        }
    }

    /// Applies `stream.set`. A bitrate change goes to the running encoder; a size or rate
    /// change restarts source and encoder (viewers stay connected; the first new frame is an
    /// IDR). If the new settings fail, the old ones are restored.
    pub fn change(&mut self, change: &StreamChange) -> Result<StreamSettings, String> {
        let mut next = self.config.clone();
        if let Some(b) = change.bitrate_kbps {
            next.video.bitrate_kbps = b;
        }
        if let Some(f) = change.fps {
            next.video.fps = f;
        }
        if let Some(s) = change.size {
            next.video.size = s;
        }
        let restart =
            next.video.size != self.config.video.size || next.video.fps != self.config.video.fps;
        if !restart {
            self.pipeline.set_bitrate(next.video.bitrate_kbps);
            self.config = next;
            return Ok(self.settings());
        }
        // The old pipeline lets go of the camera before the new one opens it.
        self.pipeline.stop();
        match start_pipeline(&next, &self.camera) {
            Ok((pipeline, frames)) => {
                log::info!(
                    "stream restarted at {} {} fps",
                    next.video.size,
                    next.video.fps
                );
                (self.pipeline, self.frames) = (pipeline, frames);
                self.config = next;
            }
            Err(e) => {
                log::warn!("stream change failed ({e}); restoring the previous settings");
                let (pipeline, frames) = start_pipeline(&self.config, &self.camera)?;
                (self.pipeline, self.frames) = (pipeline, frames);
                self.generation += 1;
                return Err(e);
            }
        }
        self.generation += 1;
        Ok(self.settings())
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
        let camera = self.pipeline.camera_status();
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
            max_viewers: self.config.server.max_viewers,
            uptime_s: (uptime * 10.0).round() / 10.0,
            frames_captured: p.frames_captured,
            frames_encoded: p.frames_encoded,
            frames_dropped: p.frames_dropped,
            frames_skipped: p.frames_skipped,
            keyframes: p.keyframes,
            encode_ms_p50: p.encode_us_p50.map_or(0.0, |us| us as f64 / 1000.0),
            capture_to_wire_ms_p50: self.to_wire.median_ms(),
            cpu_load: host::cpu_load(),
            soc_temp_c: host::soc_temp_c(),
            auth_failures: self.auth_failures,
            camera_format: camera.as_ref().map(|c| c.format()),
            camera_state: camera.as_ref().map(|c| c.state()),
            camera_frames_dropped: camera.as_ref().map_or(0, |c| c.dropped()),
            camera_frames_broken: camera.as_ref().map_or(0, |c| c.broken()),
            idr_on_request: camera.as_ref().and_then(|c| c.idr_on_request()),
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

fn start_pipeline(
    config: &Config,
    camera: &Arc<SimulatedCamera>,
) -> Result<(Pipeline, Receiver<EncodedFrame>), String> {
    let source = open_source(config, camera)?;
    let (tx, rx) = bounded(FRAME_QUEUE);
    let pipeline = Pipeline::start(source, config.encoder_settings(), tx)
        .map_err(|e| format!("cannot start the encoder: {e}"))?;
    Ok((pipeline, rx))
}

fn open_source(
    config: &Config,
    camera: &Arc<SimulatedCamera>,
) -> Result<Box<dyn FrameSource>, String> {
    let v = &config.video;
    let pattern = || {
        TestPattern::new(v.size.width, v.size.height, v.fps)
            .map(|p| {
                Box::new(
                    p.with_camera(camera.clone())
                        .with_drift(v.test_pattern_drift),
                ) as Box<dyn FrameSource>
            })
            .map_err(|err| format!("cannot open the frame source: {err}"))
    };
    match &v.source {
        SourceSpec::Test => pattern(),
        SourceSpec::Auto => super::camera::open_auto(config).map_or_else(pattern, Ok),
        SourceSpec::Device(path) => super::camera::open_device(config, path),
    }
}
