//! The commands: one match arm each, with their arguments checked. Reference with examples:
//! `PROTOCOL.md` beside this file.

use std::time::Instant;

use serde_json::{Value, json};

use super::plane::{ControlPlane, Device, StreamChange};
use super::protocol::{ErrorCode, Failure, Request};
use super::ptz::{AxisName, PerAxis, StopReason};
use crate::hub::ViewerId;
use crate::source::ControlError;

impl ControlPlane {
    pub(super) fn run(
        &mut self,
        now: Instant,
        viewer: ViewerId,
        req: &Request,
        device: &mut dyn Device,
    ) -> Result<Value, Failure> {
        match req.cmd.as_str() {
            "ping" => Ok(match req.args.get("t") {
                Some(t) => json!({ "t": t }),
                None => json!({}),
            }),
            "status" => serde_json::to_value(device.status())
                .map_err(|e| Failure::new(ErrorCode::Internal, e.to_string())),
            "keyframe" => {
                device.request_keyframe(viewer);
                Ok(json!({}))
            }
            "control.claim" => {
                let force = boolean(req, "force")?.unwrap_or(false);
                self.claim(now, viewer, force)
            }
            "control.release" => self.release_by(now, viewer),
            "ptz.get" => {
                self.ptz_ref()?;
                Ok(self.ptz_state())
            }
            "ptz.move" => {
                self.check_steering(viewer)?;
                let velocity = axes(req, true)?;
                self.ptz_mut()?.start_move(now, velocity);
                Ok(self.ptz_state())
            }
            "ptz.goto" => {
                self.check_steering(viewer)?;
                let target = axes(req, false)?;
                self.ptz_mut()?.goto(now, target);
                Ok(self.ptz_state())
            }
            "ptz.stop" => {
                self.check_steering(viewer)?;
                self.ptz_mut()?.stop(now, StopReason::Command);
                Ok(self.ptz_state())
            }
            "ptz.home" => {
                self.check_steering(viewer)?;
                self.ptz_mut()?.home(now);
                Ok(self.ptz_state())
            }
            "controls.list" => {
                let controls = camera_controls(device)?.list().map_err(control_failure)?;
                Ok(json!({ "controls": controls }))
            }
            "controls.get" => {
                let name = string(req, "name")?;
                let value = camera_controls(device)?
                    .get(name)
                    .map_err(control_failure)?;
                Ok(json!({"name": name, "value": value}))
            }
            "controls.set" => {
                self.check_steering(viewer)?;
                let name = string(req, "name")?;
                let value = integer(req, "value")?;
                let applied = camera_controls(device)?
                    .set(name, value)
                    .map_err(control_failure)?;
                if self.ptz_on_camera_controls()
                    && let Some(axis) = ptz_axis_of(name)
                {
                    self.ptz_mut()?.sync(now, axis, applied as f64);
                }
                self.announce(json!({"camera": {"name": name, "value": applied}}));
                Ok(json!({"name": name, "value": applied}))
            }
            "stream.set" => {
                self.check_steering(viewer)?;
                let change = stream_change(req)?;
                let settings = device.change_stream(&change)?;
                self.announce(json!({ "stream": settings }));
                serde_json::to_value(settings)
                    .map_err(|e| Failure::new(ErrorCode::Internal, e.to_string()))
            }
            other => Err(Failure::new(
                ErrorCode::UnknownCommand,
                format!("no such command: {}", truncate(other, 64)),
            )),
        }
    }
}

fn camera_controls(
    device: &mut dyn Device,
) -> Result<std::sync::Arc<dyn crate::source::CameraControls>, Failure> {
    device
        .camera_controls()
        .ok_or_else(|| Failure::new(ErrorCode::Unsupported, "this source has no camera controls"))
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

/// `pan`, `tilt`, `zoom` (at least one). Velocities must be in -1..1; positions are clamped
/// to the axis limits later.
fn axes(req: &Request, velocity: bool) -> Result<PerAxis, Failure> {
    let get = |name: &str| -> Result<Option<f64>, Failure> {
        let Some(v) = number(req, name)? else {
            return Ok(None);
        };
        if velocity && !(-1.0..=1.0).contains(&v) {
            return Err(bad_args(format!(
                "{name} must be from -1 to 1 (0 stops), got {v}"
            )));
        }
        Ok(Some(v))
    };
    let axes = PerAxis {
        pan: get("pan")?,
        tilt: get("tilt")?,
        zoom: get("zoom")?,
    };
    if axes.pan.is_none() && axes.tilt.is_none() && axes.zoom.is_none() {
        return Err(bad_args("give at least one of pan, tilt, zoom"));
    }
    Ok(axes)
}

fn stream_change(req: &Request) -> Result<StreamChange, Failure> {
    let whole = |name: &str| -> Result<Option<u32>, Failure> {
        match req.args.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| bad_args(format!("{name} must be a whole number"))),
        }
    };
    let change = StreamChange {
        bitrate_kbps: whole("bitrate_kbps")?,
        fps: whole("fps")?,
        size: match req.args.get("size") {
            None => None,
            Some(Value::String(s)) => Some(s.parse().map_err(bad_args)?),
            Some(_) => return Err(bad_args("size must be a string like \"1280x720\"")),
        },
    };
    if let Some(b) = change.bitrate_kbps
        && !(50..=50_000).contains(&b)
    {
        return Err(bad_args("bitrate_kbps must be from 50 to 50000"));
    }
    if let Some(f) = change.fps
        && !(1..=120).contains(&f)
    {
        return Err(bad_args("fps must be from 1 to 120"));
    }
    if change == StreamChange::default() {
        return Err(bad_args("give at least one of bitrate_kbps, fps, size"));
    }
    Ok(change)
}

fn number(req: &Request, name: &str) -> Result<Option<f64>, Failure> {
    match req.args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| bad_args(format!("{name} must be a number"))),
    }
}

fn integer(req: &Request, name: &str) -> Result<i64, Failure> {
    match req.args.get(name) {
        Some(Value::Bool(b)) => Ok(i64::from(*b)),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| bad_args(format!("{name} must be a whole number"))),
        None => Err(bad_args(format!("{name} is missing"))),
    }
}

fn boolean(req: &Request, name: &str) -> Result<Option<bool>, Failure> {
    match req.args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad_args(format!("{name} must be true or false"))),
    }
}

fn string<'a>(req: &'a Request, name: &str) -> Result<&'a str, Failure> {
    match req.args.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad_args(format!("{name} must be a string"))),
        None => Err(bad_args(format!("{name} is missing"))),
    }
}

fn bad_args(message: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::BadArgs, message)
}

/// Keeps echoed client input short in error messages.
fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
