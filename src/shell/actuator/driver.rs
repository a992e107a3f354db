//! The pan/tilt/zoom actuator the configuration chose, as the actuator thread drives it.

use std::sync::Arc;
use std::time::Duration;

use super::camera::CameraActuator;
use super::servo::ServoActuator;
use super::{Actuator, ActuatorError};
use crate::config::{ActuatorKind, PtzConfig, ServoConfig};
use crate::control::ptz::{PerAxis, PtzLimits};
use crate::source::CameraControls;

pub(crate) struct PtzDriver {
    kind: ActuatorKind,
    full_sweep: Duration,
    actuator: Option<Box<dyn Actuator>>,
    /// The last move failed (logged once until a move works again).
    failing: bool,
}

impl PtzDriver {
    /// `controls`: the current source's camera controls.
    pub(crate) fn new(
        config: &PtzConfig,
        controls: Option<Arc<dyn CameraControls>>,
    ) -> Result<PtzDriver, String> {
        let full_sweep = Duration::from_secs_f64(config.full_sweep_s);
        let camera = |c: Option<Arc<dyn CameraControls>>| {
            c.and_then(|c| CameraActuator::new(c, full_sweep))
                .map(|a| Box::new(a) as Box<dyn Actuator>)
        };
        let actuator = match config.actuator {
            ActuatorKind::None => None,
            ActuatorKind::Auto => camera(controls),
            ActuatorKind::Camera => Some(camera(controls).ok_or(
                "[ptz] actuator = \"camera\", but the camera has no pan/tilt/zoom controls",
            )?),
            ActuatorKind::Servo => {
                let settings = servo_settings(config)?;
                let servo =
                    ServoActuator::new(settings).map_err(|e| format!("[ptz.servo]: {e}"))?;
                Some(Box::new(servo) as Box<dyn Actuator>)
            }
        };
        match &actuator {
            Some(a) => log::info!("pan/tilt/zoom: {}", a.describe()),
            None => log::info!("pan/tilt/zoom: none"),
        }
        Ok(PtzDriver {
            kind: config.actuator,
            full_sweep,
            actuator,
            failing: false,
        })
    }

    pub(crate) fn limits(&self) -> Option<PtzLimits> {
        self.actuator.as_ref().map(|a| a.limits())
    }

    /// The axes are the camera's own controls (setting those directly moves the PTZ too).
    pub(crate) fn on_camera_controls(&self) -> bool {
        matches!(self.kind, ActuatorKind::Auto | ActuatorKind::Camera) && self.actuator.is_some()
    }

    pub(crate) fn move_to(&mut self, position: &PerAxis) {
        let Some(a) = &mut self.actuator else { return };
        match a.move_to(position) {
            Ok(()) if self.failing => {
                log::info!("pan/tilt/zoom works again");
                self.failing = false;
            }
            Ok(()) => {}
            Err(ActuatorError(e)) if !self.failing => {
                log::warn!("pan/tilt/zoom: {e}");
                self.failing = true;
            }
            Err(_) => {}
        }
    }

    /// The source was reopened: a camera actuator follows its new controls.
    pub(crate) fn camera_changed(&mut self, controls: Option<Arc<dyn CameraControls>>) {
        if self.on_camera_controls()
            && let Some(a) = controls.and_then(|c| CameraActuator::new(c, self.full_sweep))
        {
            self.actuator = Some(Box::new(a));
        }
    }
}

fn servo_settings(config: &PtzConfig) -> Result<&ServoConfig, String> {
    let s = &config.servo;
    if s.pan.is_none() && s.tilt.is_none() {
        return Err(
            "[ptz] actuator = \"servo\" needs [ptz.servo.pan] and/or [ptz.servo.tilt]".into(),
        );
    }
    Ok(s)
}
