//! The test pattern as a pan/tilt/zoom camera: the controls a UVC PTZ camera has, in the same
//! units (`pan_absolute`/`tilt_absolute` in arc-seconds, `zoom_absolute` in percent), plus
//! `brightness`. The pattern reads them for every frame, so the picture visibly pans, tilts,
//! zooms and brightens, and everything that drives a real camera's controls can be tested
//! without one.

use std::sync::Mutex;

use crate::source::controls::{CameraControls, ControlError, ControlInfo, ControlKind};

/// Arc-seconds per full turn: the whole background width.
pub(crate) const ARCSEC_PER_TURN: i64 = 360 * 3600;

/// (name, label, min, max, step, default)
const CONTROLS: [(&str, &str, i64, i64, i64, i64); 4] = [
    (
        "pan_absolute",
        "Pan, Absolute",
        -180 * 3600,
        180 * 3600,
        3600,
        0,
    ),
    (
        "tilt_absolute",
        "Tilt, Absolute",
        -90 * 3600,
        90 * 3600,
        3600,
        0,
    ),
    ("zoom_absolute", "Zoom, Absolute", 100, 400, 1, 100),
    ("brightness", "Brightness", 0, 255, 1, 128),
];

/// Where the simulated camera points, as its controls say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub pan: i64,
    pub tilt: i64,
    pub zoom: i64,
    pub brightness: i64,
}

impl Default for View {
    fn default() -> Self {
        View {
            pan: CONTROLS[0].5,
            tilt: CONTROLS[1].5,
            zoom: CONTROLS[2].5,
            brightness: CONTROLS[3].5,
        }
    }
}

impl View {
    fn slot(&mut self, name: &str) -> Option<&mut i64> {
        match name {
            "pan_absolute" => Some(&mut self.pan),
            "tilt_absolute" => Some(&mut self.tilt),
            "zoom_absolute" => Some(&mut self.zoom),
            "brightness" => Some(&mut self.brightness),
            _ => None,
        }
    }
}

/// The controls, shared between the pattern (capture thread) and whoever sets them.
#[derive(Debug, Default)]
pub(crate) struct SimulatedCamera {
    view: Mutex<View>,
}

impl SimulatedCamera {
    pub(crate) fn view(&self) -> View {
        self.view.lock().map(|v| *v).unwrap_or_default()
    }

    fn info(&self, name: &str) -> Result<ControlInfo, ControlError> {
        let mut view = self.view();
        let (name, label, min, max, step, default) = CONTROLS
            .iter()
            .copied()
            .find(|c| c.0 == name)
            .ok_or_else(|| ControlError::Unknown(name.to_string()))?;
        Ok(ControlInfo {
            name: name.to_string(),
            label: label.to_string(),
            kind: ControlKind::Integer,
            min,
            max,
            step,
            default,
            value: view.slot(name).map(|v| *v),
            menu: Vec::new(),
            writable: true,
        })
    }
}

impl CameraControls for SimulatedCamera {
    fn list(&self) -> Result<Vec<ControlInfo>, ControlError> {
        CONTROLS.iter().map(|c| self.info(c.0)).collect()
    }

    fn get(&self, name: &str) -> Result<i64, ControlError> {
        let mut view = self.view();
        view.slot(name)
            .map(|v| *v)
            .ok_or_else(|| ControlError::Unknown(name.to_string()))
    }

    fn set(&self, name: &str, value: i64) -> Result<i64, ControlError> {
        self.info(name)?.check(value)?;
        let mut view = self
            .view
            .lock()
            .map_err(|_| ControlError::Unavailable("controls poisoned".into()))?;
        if let Some(slot) = view.slot(name) {
            *slot = value;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_behave_like_a_ptz_webcam() {
        let cam = SimulatedCamera::default();
        let names: Vec<String> = cam.list().unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "pan_absolute",
                "tilt_absolute",
                "zoom_absolute",
                "brightness"
            ]
        );
        assert_eq!(cam.set("pan_absolute", 36000), Ok(36000));
        assert_eq!(cam.get("pan_absolute"), Ok(36000));
        assert_eq!(cam.view().pan, 36000);
        assert!(matches!(
            cam.set("pan_absolute", 36001),
            Err(ControlError::OutOfRange { .. })
        ));
        assert!(matches!(
            cam.set("zoom_absolute", 99),
            Err(ControlError::OutOfRange { .. })
        ));
        assert!(matches!(cam.get("exposure"), Err(ControlError::Unknown(_))));
        assert_eq!(cam.view().zoom, 100, "refused values change nothing");
    }
}
