//! The device's moving parts and its camera controls, driven by the shell: the motion core
//! (`control::ptz`) computes absolute positions in the actuator's units; an actuator applies
//! them.
//!
//! - `camera`: the camera's own `pan_absolute`/`tilt_absolute`/`zoom_absolute` controls (UVC
//!   PTZ webcams, and the test pattern, which simulates them);
//! - `servo`: hobby servos on Linux sysfs PWM channels;
//! - `driver`: the one the configuration chose;
//! - `worker`: the thread all of it runs on, so a slow USB control transfer never holds up
//!   the event loop.

mod camera;
mod driver;
mod servo;
mod worker;

use std::fmt;

use crate::control::ptz::{PerAxis, PtzLimits};

pub(crate) use driver::PtzDriver;
pub(crate) use worker::{Actuated, ActuatorWorker};

pub(crate) trait Actuator: Send {
    /// The axes it has, in its units, with their speeds.
    fn limits(&self) -> PtzLimits;
    /// Moves the axes given (and only those) to these positions, already within the limits.
    fn move_to(&mut self, position: &PerAxis) -> Result<(), ActuatorError>;
    /// For logs: what it is.
    fn describe(&self) -> String;
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActuatorError(pub(crate) String);

impl fmt::Display for ActuatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ActuatorError {}
