//! The pipeline the shell runs: starting it as the configuration says, and restarting it with
//! new settings on a worker thread, so that the event loop keeps serving viewers while a
//! camera closes and reopens.

use std::sync::Arc;

use smol::channel::{Receiver, bounded};

use crate::config::{Config, SourceSpec};
use crate::control::StreamSettings;
use crate::encode::limits::Size;
use crate::encode::{AccessUnit, Pipeline};
use crate::source::FrameSource;
use crate::source::pattern::{SimulatedCamera, TestPattern};
use crate::streamer::Running;

/// Access units waiting for the event loop. A few: the loop normally takes each at once; if it
/// stalls longer than this, units drop (and the encoder makes an IDR) rather than queue delay.
const FRAME_QUEUE: usize = 4;

/// Opens the frame source a configuration names. The test pattern's simulated camera is
/// passed in so its pan/tilt/zoom survive restarts.
pub(crate) type SourceOpener =
    dyn Fn(&Config, &Arc<SimulatedCamera>) -> Result<Box<dyn FrameSource>, String> + Send + Sync;

/// Starts pipelines: the configuration they start from, kept for restarts.
pub(crate) struct Starter {
    config: Config,
    /// The test pattern's pan/tilt/zoom controls, kept across restarts at another size.
    camera: Arc<SimulatedCamera>,
    open: Box<SourceOpener>,
}

/// A started pipeline and the access units it sends.
pub(crate) struct Started {
    pub(crate) pipeline: Pipeline,
    pub(crate) units: Receiver<AccessUnit>,
}

impl Started {
    pub(crate) fn running(&self) -> Running {
        let passthrough = self.pipeline.passthrough();
        Running {
            low: self
                .pipeline
                .low_size()
                .filter(|_| !passthrough)
                .map(|(width, height)| Size { width, height }),
            layers: if passthrough {
                1
            } else {
                self.pipeline.settings().temporal_layers as u8
            },
            adaptive: !passthrough,
            encoder: if passthrough {
                "passthrough".to_owned()
            } else {
                self.pipeline.encoder_name().to_owned()
            },
            ..Running::new(
                self.pipeline.source_info().clone(),
                self.pipeline.settings().bitrate_kbps,
            )
        }
    }
}

/// How a restart ended: a pipeline runs again either way, with the new settings, or with the
/// old ones and the reason the new ones failed.
pub(crate) struct Restarted {
    pub(crate) started: Started,
    pub(crate) failure: Option<String>,
    pub(crate) starter: Starter,
}

impl Starter {
    pub(crate) fn new(config: &Config) -> Starter {
        Starter::with_opener(config, Box::new(open_source))
    }

    pub(crate) fn with_opener(config: &Config, open: Box<SourceOpener>) -> Starter {
        Starter {
            config: config.clone(),
            camera: Arc::new(SimulatedCamera::default()),
            open,
        }
    }

    pub(crate) fn start(&self) -> Result<Started, String> {
        let source = (self.open)(&self.config, &self.camera)?;
        let (tx, units) = bounded(FRAME_QUEUE);
        let pipeline = Pipeline::start(source, self.config.encoder_settings(), tx)
            .map_err(|e| format!("cannot start the encoder: {e}"))?;
        Ok(Started { pipeline, units })
    }

    /// Stops `old` and starts with `settings`; if that fails, starts with the old settings
    /// again. Blocks for as long as the camera takes: run it off the event loop (whose receiver
    /// of `old`'s units drains the last of them meanwhile). Err only when not even the old
    /// settings start again.
    pub(crate) fn restart(
        mut self,
        old: Pipeline,
        settings: StreamSettings,
    ) -> Result<Restarted, String> {
        let mut next = self.config.clone();
        next.video.size = Size {
            width: settings.width,
            height: settings.height,
        };
        next.video.fps = settings.fps;
        next.video.bitrate_kbps = settings.bitrate_kbps;
        // The old pipeline lets go of the camera before the new one opens it.
        drop(old);
        let previous = std::mem::replace(&mut self.config, next);
        match self.start() {
            Ok(started) => {
                log::info!(
                    "stream restarted at {} {} fps",
                    self.config.video.size,
                    self.config.video.fps
                );
                Ok(Restarted {
                    started,
                    failure: None,
                    starter: self,
                })
            }
            Err(why) => {
                log::warn!("stream change failed ({why}); restoring the previous settings");
                self.config = previous;
                let started = self.start()?;
                Ok(Restarted {
                    started,
                    failure: Some(why),
                    starter: self,
                })
            }
        }
    }
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
        SourceSpec::Auto => super::libcamera::open_auto(config)
            .or_else(|| super::camera::open_auto(config))
            .map_or_else(pattern, Ok),
        SourceSpec::Device(path) => super::camera::open_device(config, path),
        SourceSpec::Libcamera(index) => super::libcamera::open(config, *index),
    }
}
