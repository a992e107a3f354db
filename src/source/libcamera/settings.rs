//! The camera controls of a libcamera camera reached through a helper process. The helpers
//! take their settings as command-line flags (`rpicam-vid --shutter …`) or a capture script
//! (`cam --script`), once, when they start; so rtcam keeps the values here, and a change starts
//! the helper anew with them (`generation` tells the capture thread). Viewers stay connected:
//! the stream pauses for the restart, it does not end.
//!
//! Names and units follow rtcam's V4L2 controls where there is one (`brightness`,
//! `horizontal_flip`); libcamera's fractional values are scaled to integers (gain and
//! contrast in hundredths: 100 = 1.0).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::source::{CameraControls, ControlError, ControlInfo, ControlKind};

/// What a helper can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capabilities {
    /// `rpicam-vid` (Raspberry Pi OS): exposure, white balance, image tuning, flips.
    Rpicam { autofocus: bool },
    /// libcamera's `cam`: the controls its capture script passes on (any pipeline handler).
    Cam,
}

pub(crate) const AWB_MODES: [&str; 7] = [
    "auto",
    "incandescent",
    "tungsten",
    "fluorescent",
    "indoor",
    "daylight",
    "cloudy",
];
pub(crate) const AF_MODES: [&str; 4] = ["default", "manual", "auto", "continuous"];

fn control(
    name: &str,
    label: &str,
    kind: ControlKind,
    range: (i64, i64),
    default: i64,
) -> ControlInfo {
    ControlInfo {
        name: name.into(),
        label: format!("{label} (restarts the camera)"),
        kind,
        min: range.0,
        max: range.1,
        step: 1,
        default,
        value: None,
        menu: Vec::new(),
        writable: true,
    }
}

fn menu(name: &str, label: &str, entries: &[(i64, &str)], default: i64) -> ControlInfo {
    let mut c = control(name, label, ControlKind::Menu, (0, 0), default);
    c.menu = entries
        .iter()
        .map(|(i, t)| (*i, (*t).to_string()))
        .collect();
    c.min = entries.iter().map(|e| e.0).min().unwrap_or(0);
    c.max = entries.iter().map(|e| e.0).max().unwrap_or(0);
    c
}

fn indexed(names: &[&'static str]) -> Vec<(i64, &'static str)> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (i as i64, *n))
        .collect()
}

/// Every control a helper with `caps` takes, with its range and default.
pub(crate) fn table(caps: Capabilities) -> Vec<ControlInfo> {
    use ControlKind::{Boolean, Button, Integer};
    let tuning = [
        control(
            "brightness",
            "Brightness, -100..100",
            Integer,
            (-100, 100),
            0,
        ),
        control("contrast", "Contrast, 100 = normal", Integer, (0, 400), 100),
        control(
            "saturation",
            "Saturation, 100 = normal",
            Integer,
            (0, 400),
            100,
        ),
    ];
    match caps {
        Capabilities::Cam => tuning.to_vec(),
        Capabilities::Rpicam { autofocus } => {
            let mut list = vec![
                menu(
                    "auto_exposure",
                    "Exposure",
                    &[(0, "auto"), (1, "manual")],
                    0,
                ),
                control(
                    "exposure_time_us",
                    "Exposure time, µs (manual)",
                    Integer,
                    (100, 1_000_000),
                    10_000,
                ),
                control(
                    "gain",
                    "Analogue gain, 100 = 1.0 (manual)",
                    Integer,
                    (100, 1600),
                    100,
                ),
                menu(
                    "white_balance_mode",
                    "White balance",
                    &indexed(&AWB_MODES),
                    0,
                ),
            ];
            list.extend(tuning);
            list.extend([
                control(
                    "sharpness",
                    "Sharpness, 100 = normal",
                    Integer,
                    (0, 400),
                    100,
                ),
                control("horizontal_flip", "Horizontal flip", Boolean, (0, 1), 0),
                control("vertical_flip", "Vertical flip", Boolean, (0, 1), 0),
                menu("rotate", "Rotation", &[(0, "0"), (180, "180")], 0),
            ]);
            if autofocus {
                list.extend([
                    menu("focus_mode", "Autofocus mode", &indexed(&AF_MODES), 3),
                    control(
                        "focus_trigger",
                        "Autofocus: focus now (auto mode)",
                        Button,
                        (0, 0),
                        0,
                    ),
                    control(
                        "lens_position",
                        "Lens position, 1/100 dioptre (manual focus)",
                        Integer,
                        (0, 1500),
                        100,
                    ),
                ]);
            }
            list
        }
    }
}

/// The controls of one libcamera camera; shared by every helper started for it.
pub(crate) struct LibcameraControls {
    table: Vec<ControlInfo>,
    /// Values set differently from the default.
    values: Mutex<BTreeMap<String, i64>>,
    /// Counts changes (and focus triggers); the capture thread restarts the helper when it moves.
    generation: AtomicU64,
}

impl LibcameraControls {
    pub(crate) fn new(caps: Capabilities) -> LibcameraControls {
        LibcameraControls {
            table: table(caps),
            values: Mutex::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The value of every control (set or default), for building a helper's flags.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, i64> {
        let set = self.values.lock().map(|v| v.clone()).unwrap_or_default();
        self.table
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    set.get(&c.name).copied().unwrap_or(c.default),
                )
            })
            .collect()
    }

    fn info(&self, name: &str) -> Result<&ControlInfo, ControlError> {
        self.table
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ControlError::Unknown(name.to_string()))
    }
}

impl CameraControls for LibcameraControls {
    fn list(&self) -> Result<Vec<ControlInfo>, ControlError> {
        let values = self.snapshot();
        Ok(self
            .table
            .iter()
            .map(|c| ControlInfo {
                value: values.get(&c.name).copied(),
                ..c.clone()
            })
            .collect())
    }

    fn get(&self, name: &str) -> Result<i64, ControlError> {
        let info = self.info(name)?;
        if info.kind == ControlKind::Button {
            return Ok(0);
        }
        Ok(self.snapshot().get(name).copied().unwrap_or(info.default))
    }

    fn set(&self, name: &str, value: i64) -> Result<i64, ControlError> {
        let info = self.info(name)?;
        info.check(value)?;
        if info.kind == ControlKind::Button {
            log::info!("camera control {name}: restarting the camera helper to apply it");
            self.generation.fetch_add(1, Ordering::AcqRel);
            return Ok(0);
        }
        let mut values = self
            .values
            .lock()
            .map_err(|_| ControlError::Device("control state poisoned".into()))?;
        let before = values.get(name).copied().unwrap_or(info.default);
        values.insert(name.to_string(), value);
        drop(values);
        if before != value {
            log::info!("camera control {name} = {value}: restarting the camera helper to apply it");
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_kept_and_moves_the_generation_a_repeat_does_not() {
        let controls = LibcameraControls::new(Capabilities::Rpicam { autofocus: false });
        assert_eq!(controls.get("brightness"), Ok(0));
        let g = controls.generation();
        assert_eq!(controls.set("brightness", 40), Ok(40));
        assert_eq!(controls.get("brightness"), Ok(40));
        assert_eq!(controls.generation(), g + 1, "the helper restarts");
        assert_eq!(controls.set("brightness", 40), Ok(40));
        assert_eq!(controls.generation(), g + 1, "same value: no restart");
        assert_eq!(
            controls.snapshot()["contrast"],
            100,
            "defaults fill the rest"
        );
    }

    #[test]
    fn ranges_menus_and_unknown_names_are_refused() {
        let controls = LibcameraControls::new(Capabilities::Rpicam { autofocus: false });
        assert!(matches!(
            controls.set("brightness", 101),
            Err(ControlError::OutOfRange { .. })
        ));
        assert!(matches!(
            controls.set("rotate", 90),
            Err(ControlError::OutOfRange { .. })
        ));
        assert!(
            matches!(controls.set("focus_mode", 1), Err(ControlError::Unknown(_))),
            "no AF on this camera"
        );
        assert_eq!(controls.generation(), 0);
    }

    #[test]
    fn autofocus_cameras_get_focus_controls_and_a_trigger_restarts() {
        let controls = LibcameraControls::new(Capabilities::Rpicam { autofocus: true });
        let names: Vec<String> = controls
            .list()
            .expect("list")
            .into_iter()
            .map(|c| c.name)
            .collect();
        for want in [
            "focus_mode",
            "focus_trigger",
            "lens_position",
            "auto_exposure",
            "white_balance_mode",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        assert_eq!(controls.set("focus_trigger", 1), Ok(0));
        assert_eq!(controls.generation(), 1);
        let cam: Vec<String> = LibcameraControls::new(Capabilities::Cam)
            .list()
            .expect("list")
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(cam, ["brightness", "contrast", "saturation"]);
    }
}
