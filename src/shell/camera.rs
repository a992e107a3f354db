//! Opening a V4L2 camera as the stream's source: `--source /dev/videoN` or the first camera
//! that streams for `--source auto`, wrapped so that a camera that fails or is unplugged shows
//! "no signal" and is reopened with back-off.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::source::supervised::{Opener, Supervised};
use crate::source::v4l2::controls::V4l2Controls;
use crate::source::v4l2::negotiate::Wanted;
use crate::source::v4l2::{V4l2Source, open_first_streaming};
use crate::source::{CameraStatus, FrameSource, SourceInfo};

/// What the configuration asks of a camera.
pub(super) fn wanted(config: &Config) -> Wanted {
    let v = &config.video;
    Wanted {
        width: v.size.width,
        height: v.size.height,
        fps: v.fps,
        format: v.format.pixel_format(),
    }
}

/// `--source DEVICE`. A device that is not there (yet) is waited for, showing "no signal":
/// a camera may be plugged in after rtcam starts. A device that is there but cannot stream
/// what was asked (e.g. `--format` it lacks) is an error.
pub(super) fn open_device(config: &Config, path: &Path) -> Result<Box<dyn FrameSource>, String> {
    let wanted = wanted(config);
    let status = Arc::new(CameraStatus::new());
    let controls = Arc::new(V4l2Controls::new(path));
    let opener = reopener(path, wanted, status.clone(), controls.clone());
    match V4l2Source::open(path, &wanted, status, controls.clone()) {
        Ok(source) => {
            log::info!(
                "camera {}: {}",
                source.info().name,
                source.format_description()
            );
            Ok(Box::new(Supervised::new(
                Box::new(source),
                path.display().to_string(),
                opener,
            )))
        }
        Err(why) if !path.exists() => {
            let info = SourceInfo {
                kind: "v4l2",
                name: path.display().to_string(),
                width: wanted.width,
                height: wanted.height,
                fps: wanted.fps,
            };
            Ok(Box::new(
                Supervised::waiting(info, path.display().to_string(), &why, opener)
                    .with_controls(controls),
            ))
        }
        Err(why) => Err(format!("cannot open the camera: {why}")),
    }
}

/// `--source auto`: the first capture device that delivers a frame, supervised; None (with
/// the reasons logged) when there is none, so the caller falls back to the test pattern.
pub(super) fn open_auto(config: &Config) -> Option<Box<dyn FrameSource>> {
    let wanted = wanted(config);
    match open_first_streaming(&wanted) {
        Ok(source) => {
            let path: PathBuf = source.path().to_path_buf();
            log::info!(
                "source auto: using camera {} ({}), the first that streams",
                source.info().name,
                source.format_description()
            );
            let status = source.camera_status().unwrap_or_default();
            let controls = source.v4l2_controls();
            let opener = reopener(&path, wanted, status, controls);
            Some(Box::new(Supervised::new(
                Box::new(source),
                path.display().to_string(),
                opener,
            )))
        }
        Err(passed_over) if passed_over.is_empty() => {
            log::info!("source auto: no video capture device found; using the test pattern");
            None
        }
        Err(passed_over) => {
            let reasons: Vec<String> = passed_over
                .iter()
                .map(|(path, why)| format!("{}: {why}", path.display()))
                .collect();
            log::info!(
                "source auto: no camera streams ({}); using the test pattern",
                reasons.join("; ")
            );
            None
        }
    }
}

fn reopener(
    path: &Path,
    wanted: Wanted,
    status: Arc<CameraStatus>,
    controls: Arc<V4l2Controls>,
) -> Opener {
    let path = path.to_path_buf();
    Box::new(move || {
        V4l2Source::open(&path, &wanted, status.clone(), controls.clone())
            .map(|source| Box::new(source) as Box<dyn FrameSource>)
    })
}
