//! Opening a libcamera camera as the stream's source: `--source libcamera[:N]`, and the CSI
//! camera `--source auto` prefers. Supervised like a V4L2 camera: a helper that fails shows
//! "no signal" and is started again with back-off, with the same controls.

use std::sync::Arc;

use crate::config::Config;
use crate::source::libcamera::LibcameraSource;
use crate::source::libcamera::helpers::{Helper, LibcameraCamera};
use crate::source::libcamera::settings::LibcameraControls;
use crate::source::supervised::{Opener, Supervised};
use crate::source::v4l2::negotiate::Wanted;
use crate::source::{CameraStatus, FrameSource, SourceInfo};

/// `--source libcamera:N`. No helper program is an error (nothing to retry); a camera that is
/// not listed or does not stream yet is waited for, showing "no signal".
pub(super) fn open(config: &Config, index: u32) -> Result<Box<dyn FrameSource>, String> {
    let helper = Helper::find().map_err(|e| format!("--source libcamera:{index}: {e}"))?;
    let label = format!("libcamera:{index}");
    let wanted = super::camera::wanted(config);
    let listed = helper.list();
    let camera = listed
        .as_ref()
        .ok()
        .and_then(|cameras| cameras.iter().find(|c| c.index == index).cloned());
    let controls = Arc::new(LibcameraControls::new(helper.capabilities(camera.as_ref())));
    let status = Arc::new(CameraStatus::new());
    let model = camera
        .as_ref()
        .map_or_else(|| label.clone(), |c| c.model.clone());
    let opener = reopener(
        &helper,
        index,
        &model,
        wanted,
        status.clone(),
        controls.clone(),
    );
    let opened = match (&listed, &camera) {
        (Err(why), _) => Err(why.clone()),
        (Ok(cameras), None) => Err(format!(
            "{} lists no camera {index} ({} found)",
            helper.name(),
            cameras.len()
        )),
        (Ok(_), Some(c)) => LibcameraSource::open(
            &helper,
            index,
            &c.model,
            &wanted,
            status.clone(),
            controls.clone(),
        ),
    };
    match opened {
        Ok(source) => {
            log::info!("camera {}: {}", source.info().name, status.format());
            Ok(Box::new(Supervised::new(Box::new(source), label, opener)))
        }
        Err(why) => {
            let info = SourceInfo {
                kind: "libcamera",
                name: label.clone(),
                width: wanted.width,
                height: wanted.height,
                fps: wanted.fps,
            };
            Ok(Box::new(
                Supervised::waiting(info, label, &why, opener).with_controls(controls),
            ))
        }
    }
}

/// `--source auto`, first choice: the first libcamera camera that is not a USB camera (those
/// go through V4L2) and streams. None (the reason logged) when there is none.
pub(super) fn open_auto(config: &Config) -> Option<Box<dyn FrameSource>> {
    let helper = match Helper::find() {
        Ok(helper) => helper,
        Err(why) => {
            log::debug!("source auto: no libcamera camera: {why}");
            return None;
        }
    };
    let cameras = match helper.list() {
        Ok(cameras) => cameras,
        Err(why) => {
            log::info!("source auto: listing libcamera cameras failed: {why}");
            return None;
        }
    };
    let wanted = super::camera::wanted(config);
    for camera in cameras.iter().filter(|c| !c.is_usb()) {
        match open_listed(&helper, camera, &wanted) {
            Ok(source) => return Some(source),
            Err(why) => log::info!("source auto: libcamera:{} passed over: {why}", camera.index),
        }
    }
    log::debug!("source auto: no libcamera camera streams");
    None
}

fn open_listed(
    helper: &Helper,
    camera: &LibcameraCamera,
    wanted: &Wanted,
) -> Result<Box<dyn FrameSource>, String> {
    let controls = Arc::new(LibcameraControls::new(helper.capabilities(Some(camera))));
    let status = Arc::new(CameraStatus::new());
    let source = LibcameraSource::open(
        helper,
        camera.index,
        &camera.model,
        wanted,
        status.clone(),
        controls.clone(),
    )?;
    log::info!(
        "source auto: using camera {} ({})",
        source.info().name,
        status.format()
    );
    let opener = reopener(
        helper,
        camera.index,
        &camera.model,
        *wanted,
        status,
        controls,
    );
    Ok(Box::new(Supervised::new(
        Box::new(source),
        format!("libcamera:{}", camera.index),
        opener,
    )))
}

fn reopener(
    helper: &Helper,
    index: u32,
    model: &str,
    wanted: Wanted,
    status: Arc<CameraStatus>,
    controls: Arc<LibcameraControls>,
) -> Opener {
    let helper = helper.clone();
    let model = model.to_string();
    Box::new(move || {
        LibcameraSource::open(
            &helper,
            index,
            &model,
            &wanted,
            status.clone(),
            controls.clone(),
        )
        .map(|source| Box::new(source) as Box<dyn FrameSource>)
    })
}
