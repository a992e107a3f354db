//! Pan/tilt/zoom through the camera's own absolute-position controls.

use std::sync::Arc;
use std::time::Duration;

use super::{Actuator, ActuatorError};
use crate::control::ptz::{AXES, AxisLimits, AxisName, PerAxis, PtzLimits};
use crate::source::{CameraControls, ControlInfo};

/// The control behind each axis.
fn control_name(axis: AxisName) -> &'static str {
    match axis {
        AxisName::Pan => "pan_absolute",
        AxisName::Tilt => "tilt_absolute",
        AxisName::Zoom => "zoom_absolute",
    }
}

pub(crate) struct CameraActuator {
    controls: Arc<dyn CameraControls>,
    limits: PtzLimits,
    /// min and step per axis, to round positions onto values the driver accepts.
    grid: [(i64, i64); 3],
    last: [Option<i64>; 3],
}

impl CameraActuator {
    /// None if the camera has none of the absolute pan/tilt/zoom controls.
    /// `full_sweep`: how long a full-speed move takes from one end of an axis to the other.
    pub(crate) fn new(
        controls: Arc<dyn CameraControls>,
        full_sweep: Duration,
    ) -> Option<CameraActuator> {
        let list = controls.list().ok()?;
        let find = |a: AxisName| -> Option<&ControlInfo> {
            list.iter()
                .find(|c| c.name == control_name(a) && c.writable && c.max > c.min)
        };
        let mut limits = PtzLimits::default();
        let mut grid = [(0, 1); 3];
        for (i, a) in AXES.into_iter().enumerate() {
            let Some(c) = find(a) else { continue };
            let axis = AxisLimits {
                min: c.min as f64,
                max: c.max as f64,
                home: c.default as f64,
                max_speed: (c.max - c.min) as f64 / full_sweep.as_secs_f64().max(0.1),
                // UVC defines pan and tilt in arc-seconds; zoom's scale is the camera's own.
                unit: if a == AxisName::Zoom {
                    "camera"
                } else {
                    "arcsec"
                },
            };
            match a {
                AxisName::Pan => limits.pan = Some(axis),
                AxisName::Tilt => limits.tilt = Some(axis),
                AxisName::Zoom => limits.zoom = Some(axis),
            }
            grid[i] = (c.min, c.step.max(1));
        }
        (!limits.is_empty()).then_some(CameraActuator {
            controls,
            limits,
            grid,
            last: [None; 3],
        })
    }
}

impl Actuator for CameraActuator {
    fn limits(&self) -> PtzLimits {
        self.limits
    }

    fn move_to(&mut self, position: &PerAxis) -> Result<(), ActuatorError> {
        for (i, a) in AXES.into_iter().enumerate() {
            let (Some(p), Some(l)) = (position.get(a), self.limits.axis(a)) else {
                continue;
            };
            let (min, step) = self.grid[i];
            let value = (min + ((p - min as f64) / step as f64).round() as i64 * step)
                .clamp(l.min as i64, l.max as i64);
            if self.last[i] == Some(value) {
                continue;
            }
            self.controls
                .set(control_name(a), value)
                .map_err(|e| ActuatorError(e.to_string()))?;
            self.last[i] = Some(value);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let axes: Vec<&str> = AXES
            .into_iter()
            .filter(|&a| self.limits.axis(a).is_some())
            .map(control_name)
            .collect();
        format!("camera controls ({})", axes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pattern::SimulatedCamera;

    #[test]
    fn drives_the_simulated_camera_on_its_step_grid() {
        let camera = Arc::new(SimulatedCamera::default());
        let mut a = CameraActuator::new(camera.clone(), Duration::from_secs(4)).unwrap();
        let l = a.limits();
        assert_eq!(l.pan.map(|p| (p.min, p.max)), Some((-648000.0, 648000.0)));
        assert_eq!(l.pan.unwrap().max_speed, 1296000.0 / 4.0);
        assert!(l.zoom.is_some() && l.tilt.is_some());
        a.move_to(&PerAxis {
            pan: Some(10_000.0),
            tilt: None,
            zoom: Some(150.4),
        })
        .unwrap();
        let v = camera.view();
        assert_eq!(v.pan, 10_800, "rounded to the 3600 arc-second step");
        assert_eq!(v.zoom, 150);
        assert_eq!(v.tilt, 0, "axes not given are left alone");
    }

    #[test]
    fn a_camera_without_ptz_controls_gives_no_actuator() {
        struct NoPtz;
        impl CameraControls for NoPtz {
            fn list(&self) -> Result<Vec<ControlInfo>, crate::source::ControlError> {
                Ok(Vec::new())
            }
            fn get(&self, n: &str) -> Result<i64, crate::source::ControlError> {
                Err(crate::source::ControlError::Unknown(n.into()))
            }
            fn set(&self, n: &str, _: i64) -> Result<i64, crate::source::ControlError> {
                Err(crate::source::ControlError::Unknown(n.into()))
            }
        }
        assert!(CameraActuator::new(Arc::new(NoPtz), Duration::from_secs(4)).is_none());
    }
}
