//! What each command does. Reference with examples: `PROTOCOL.md` beside this file.

use std::time::Instant;

use serde_json::{Value, json};

use super::plane::{ControlCall, ControlPlane, PlaneOutput, Step, Waiting};
use super::protocol::{Command, ErrorCode, Failure};
use super::ptz::{AxisName, Ptz, StopReason};
use crate::hub::ViewerId;
use crate::source::{ControlError, ControlReply, ControlRequest};

impl ControlPlane {
    /// Runs one command of `viewer`'s, whose request id is `id`.
    pub(super) fn run(
        &mut self,
        now: Instant,
        viewer: ViewerId,
        id: u32,
        command: Command,
    ) -> Step {
        if command.steers()
            && let Err(refused) = self.check_steering(viewer)
        {
            return Step::Done(Err(refused));
        }
        let done = |outcome| Step::Done(outcome);
        match command {
            Command::Ping { t } => done(Ok(match t {
                Some(t) => json!({ "t": t }),
                None => json!({}),
            })),
            Command::Status => {
                self.ask_status();
                Step::Wait(Waiting::Status { id })
            }
            Command::Keyframe => {
                self.push(PlaneOutput::Keyframe(viewer));
                done(Ok(json!({})))
            }
            Command::Claim { force } => done(self.claim(now, viewer, force)),
            Command::Release => done(self.release_by(now, viewer)),
            Command::PtzGet => done(self.with_ptz(|_| {})),
            Command::PtzMove(velocity) => done(self.with_ptz(|p| p.start_move(now, velocity))),
            Command::PtzGoto(target) => done(self.with_ptz(|p| p.goto(now, target))),
            Command::PtzStop => done(self.with_ptz(|p| p.stop(now, StopReason::Command))),
            Command::PtzHome => done(self.with_ptz(|p| p.home(now))),
            Command::ControlsList => {
                self.call_controls(id, ControlRequest::List, ControlCall::List)
            }
            Command::ControlsGet { name } => self.call_controls(
                id,
                ControlRequest::Get { name: name.clone() },
                ControlCall::Get(name),
            ),
            Command::ControlsSet { name, value } => self.call_controls(
                id,
                ControlRequest::Set {
                    name: name.clone(),
                    value,
                },
                ControlCall::Set(name),
            ),
            Command::StreamSet(change) => {
                let op = self.op();
                self.push(PlaneOutput::ChangeStream { op, change });
                Step::Wait(Waiting::Stream { op, id })
            }
        }
    }

    /// A pan/tilt/zoom command: its action, then the state after it as the result.
    fn with_ptz(&mut self, action: impl FnOnce(&mut Ptz)) -> Result<Value, Failure> {
        action(self.ptz_mut()?);
        Ok(self.ptz_state())
    }

    fn call_controls(&mut self, id: u32, request: ControlRequest, call: ControlCall) -> Step {
        let op = self.op();
        self.push(PlaneOutput::Controls { op, request });
        Step::Wait(Waiting::Controls { op, id, call })
    }

    /// The answer to a camera-control command once the camera has answered.
    pub(super) fn control_call_done(
        &mut self,
        now: Instant,
        call: ControlCall,
        result: Result<ControlReply, ControlError>,
    ) -> Result<Value, Failure> {
        let reply = result.map_err(control_failure)?;
        match (call, reply) {
            (ControlCall::List, ControlReply::List(controls)) => {
                Ok(json!({ "controls": controls }))
            }
            (ControlCall::Get(name), ControlReply::Value(value)) => {
                Ok(json!({"name": name, "value": value}))
            }
            (ControlCall::Set(name), ControlReply::Value(applied)) => {
                if self.ptz_on_camera_controls()
                    && let Some(axis) = ptz_axis_of(&name)
                {
                    self.ptz_mut()?.sync(now, axis, applied as f64);
                }
                self.announce(json!({"camera": {"name": name, "value": applied}}));
                Ok(json!({"name": name, "value": applied}))
            }
            (_, reply) => Err(Failure::new(
                ErrorCode::Internal,
                format!("the camera gave an unexpected answer: {}", reply.kind()),
            )),
        }
    }
}

fn control_failure(e: ControlError) -> Failure {
    let code = match &e {
        ControlError::Unknown(_) => ErrorCode::UnknownControl,
        ControlError::OutOfRange { .. } => ErrorCode::OutOfRange,
        ControlError::ReadOnly(_) => ErrorCode::ReadOnly,
        ControlError::Unsupported(_) => ErrorCode::Unsupported,
        ControlError::Unavailable(_) => ErrorCode::Unavailable,
        ControlError::Device(_) => ErrorCode::DeviceError,
    };
    Failure::new(code, e.to_string())
}

/// The camera control that is also a pan/tilt/zoom axis.
fn ptz_axis_of(control: &str) -> Option<AxisName> {
    match control {
        "pan_absolute" => Some(AxisName::Pan),
        "tilt_absolute" => Some(AxisName::Tilt),
        "zoom_absolute" => Some(AxisName::Zoom),
        _ => None,
    }
}
