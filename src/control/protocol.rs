//! Wire format of the `control` channel. Text messages, one JSON object each.
//!
//! Request:  `{"id": <u32>, "cmd": "<name>", ...args}`
//! Success:  `{"id": <same>, "ok": true, "result": {...}}`
//! Failure:  `{"id": <same or null>, "ok": false, "error": {"code": "<snake_case>", "message": "..."}}`
//!
//! `id` is null in a failure only when the request had no usable id (malformed JSON).
//!
//! Events from the device carry `"event"` instead of `"id"`: `{"event": "status", ...}` once
//! a second and `{"event": "control", ...}` when control, pan/tilt/zoom, a camera control or
//! the stream settings change. The full reference is `src/control/PROTOCOL.md`.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::ptz::PerAxis;
use crate::encode::limits::{self, Size, range_text};

/// One request, its arguments checked and typed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub id: u32,
    pub command: Command,
}

/// Every command of `PROTOCOL.md`, with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// `t` is echoed back as it came.
    Ping {
        t: Option<Value>,
    },
    Status,
    Keyframe,
    Claim {
        force: bool,
    },
    Release,
    PtzGet,
    /// Velocities in -1..1 per axis given.
    PtzMove(PerAxis),
    /// Absolute positions per axis given (clamped to the limits later).
    PtzGoto(PerAxis),
    PtzStop,
    PtzHome,
    ControlsList,
    ControlsGet {
        name: String,
    },
    ControlsSet {
        name: String,
        value: i64,
    },
    StreamSet(StreamChange),
}

impl Command {
    /// Commands that move or change the device: they need the control role and control.
    pub(crate) fn steers(&self) -> bool {
        matches!(
            self,
            Command::PtzMove(_)
                | Command::PtzGoto(_)
                | Command::PtzStop
                | Command::PtzHome
                | Command::ControlsSet { .. }
                | Command::StreamSet(_)
        )
    }
}

/// The stream's settings a viewer sees and may change: the `stream.set` result and the
/// `stream` member of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

/// `stream.set`: what to change; at least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamChange {
    pub bitrate_kbps: Option<u32>,
    pub fps: Option<u32>,
    pub size: Option<Size>,
}

/// Error codes a client can rely on. New commands add codes here, never reuse one for
/// another meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    /// Not valid JSON, not UTF-8, or not a JSON object.
    BadJson,
    /// JSON, but `id` or `cmd` is missing or of the wrong type.
    BadRequest,
    UnknownCommand,
    /// An argument is missing, of the wrong type, or out of range.
    BadArgs,
    /// The message is larger than the device accepts.
    TooLarge,
    /// Too many commands from this viewer; slow down.
    RateLimited,
    /// The viewer's role does not allow this command (it joined without the control token).
    Forbidden,
    /// A steering command from a viewer that does not hold control (`control.claim` first).
    NotController,
    /// `control.claim` while another viewer holds control (`force: true` takes it).
    Busy,
    /// The device cannot do this (no pan/tilt/zoom, no camera controls, a control type).
    Unsupported,
    /// No camera control by that name.
    UnknownControl,
    /// A value outside the control's range, step or menu.
    OutOfRange,
    /// The control is read-only, or inactive right now.
    ReadOnly,
    /// The camera is not there right now (unplugged, reopening).
    Unavailable,
    /// The camera driver refused or failed.
    DeviceError,
    /// The device failed to carry out a valid command.
    Internal,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// One response, ready to serialize.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    pub id: Option<u32>,
    pub outcome: Result<Value, Failure>,
}

impl Response {
    pub(crate) fn to_json(&self) -> String {
        let value = match &self.outcome {
            Ok(result) => json!({"id": self.id, "ok": true, "result": result}),
            Err(f) => json!({
                "id": self.id,
                "ok": false,
                "error": {"code": f.code, "message": f.message},
            }),
        };
        value.to_string()
    }
}

/// Parses one message. On failure returns the request id when it could be read, so the
/// client can match the error to its request.
pub(crate) fn parse(data: &[u8]) -> Result<Request, (Option<u32>, Failure)> {
    let text = std::str::from_utf8(data).map_err(|_| {
        (
            None,
            Failure::new(ErrorCode::BadJson, "message is not UTF-8 text"),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            None,
            Failure::new(ErrorCode::BadJson, format!("invalid JSON: {e}")),
        )
    })?;
    let Value::Object(mut args) = value else {
        return Err((
            None,
            Failure::new(ErrorCode::BadJson, "expected a JSON object"),
        ));
    };

    let id = match args.remove("id") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    let Some(id) = id else {
        return Err((
            None,
            Failure::new(
                ErrorCode::BadRequest,
                "\"id\" must be an integer from 0 to 4294967295",
            ),
        ));
    };
    let cmd = match args.remove("cmd") {
        Some(Value::String(cmd)) => cmd,
        _ => {
            return Err((
                Some(id),
                Failure::new(ErrorCode::BadRequest, "\"cmd\" must be a string"),
            ));
        }
    };
    let command = Args(args).command(&cmd).map_err(|f| (Some(id), f))?;
    Ok(Request { id, command })
}

/// The request id of a message, if it has a readable one (for answers to messages that are
/// refused unread, e.g. rate-limited).
pub(crate) fn parse_id(data: &[u8]) -> Option<u32> {
    match parse(data) {
        Ok(request) => Some(request.id),
        Err((id, _)) => id,
    }
}

/// The members of a request other than `id` and `cmd`, read as each command needs them.
/// Members a command does not know are ignored, so clients may add their own.
struct Args(Map<String, Value>);

impl Args {
    fn command(mut self, cmd: &str) -> Result<Command, Failure> {
        Ok(match cmd {
            "ping" => Command::Ping {
                t: self.0.remove("t"),
            },
            "status" => Command::Status,
            "keyframe" => Command::Keyframe,
            "control.claim" => Command::Claim {
                force: self.boolean("force")?.unwrap_or(false),
            },
            "control.release" => Command::Release,
            "ptz.get" => Command::PtzGet,
            "ptz.move" => Command::PtzMove(self.axes(true)?),
            "ptz.goto" => Command::PtzGoto(self.axes(false)?),
            "ptz.stop" => Command::PtzStop,
            "ptz.home" => Command::PtzHome,
            "controls.list" => Command::ControlsList,
            "controls.get" => Command::ControlsGet {
                name: self.string("name")?,
            },
            "controls.set" => Command::ControlsSet {
                name: self.string("name")?,
                value: self.integer("value")?,
            },
            "stream.set" => Command::StreamSet(self.stream_change()?),
            other => {
                return Err(Failure::new(
                    ErrorCode::UnknownCommand,
                    format!("no such command: {}", truncate(other, 64)),
                ));
            }
        })
    }

    /// `pan`, `tilt`, `zoom` (at least one). Velocities must be in -1..1; positions are
    /// clamped to the axis limits later.
    fn axes(&self, velocity: bool) -> Result<PerAxis, Failure> {
        let get = |name: &str| -> Result<Option<f64>, Failure> {
            let Some(v) = self.number(name)? else {
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

    fn stream_change(&self) -> Result<StreamChange, Failure> {
        let change = StreamChange {
            bitrate_kbps: self.whole("bitrate_kbps")?,
            fps: self.whole("fps")?,
            size: match self.0.get("size") {
                None => None,
                Some(Value::String(s)) => Some(s.parse().map_err(bad_args)?),
                Some(_) => return Err(bad_args("size must be a string like \"1280x720\"")),
            },
        };
        if let Some(b) = change.bitrate_kbps
            && !limits::BITRATE_KBPS.contains(&b)
        {
            return Err(bad_args(format!(
                "bitrate_kbps must be {}",
                range_text(&limits::BITRATE_KBPS)
            )));
        }
        if let Some(f) = change.fps
            && !limits::FPS.contains(&f)
        {
            return Err(bad_args(format!(
                "fps must be {}",
                range_text(&limits::FPS)
            )));
        }
        if change == StreamChange::default() {
            return Err(bad_args("give at least one of bitrate_kbps, fps, size"));
        }
        Ok(change)
    }

    fn number(&self, name: &str) -> Result<Option<f64>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| bad_args(format!("{name} must be a number"))),
        }
    }

    fn whole(&self, name: &str) -> Result<Option<u32>, Failure> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| bad_args(format!("{name} must be a whole number"))),
        }
    }

    fn integer(&self, name: &str) -> Result<i64, Failure> {
        match self.0.get(name) {
            Some(Value::Bool(b)) => Ok(i64::from(*b)),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| bad_args(format!("{name} must be a whole number"))),
            None => Err(bad_args(format!("{name} is missing"))),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(bad_args(format!("{name} must be true or false"))),
        }
    }

    fn string(&mut self, name: &str) -> Result<String, Failure> {
        match self.0.remove(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(bad_args(format!("{name} must be a string"))),
            None => Err(bad_args(format!("{name} is missing"))),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_typed_commands() {
        let r = parse(br#"{"id": 7, "cmd": "ping", "t": 12.5, "x": [1]}"#).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(
            r.command,
            Command::Ping {
                t: Some(json!(12.5))
            }
        );
        let r = parse(br#"{"id": 8, "cmd": "ptz.move", "pan": -0.5, "zoom": null}"#).unwrap();
        assert_eq!(
            r.command,
            Command::PtzMove(PerAxis {
                pan: Some(-0.5),
                ..PerAxis::default()
            })
        );
        let r = parse(br#"{"id": 9, "cmd": "controls.set", "name": "led", "value": true}"#);
        assert_eq!(
            r.unwrap().command,
            Command::ControlsSet {
                name: "led".into(),
                value: 1
            }
        );
        let r = parse(br#"{"id": 10, "cmd": "stream.set", "size": "640x480", "fps": 15}"#);
        assert_eq!(
            r.unwrap().command,
            Command::StreamSet(StreamChange {
                fps: Some(15),
                size: Some(Size {
                    width: 640,
                    height: 480
                }),
                bitrate_kbps: None,
            })
        );
    }

    #[test]
    fn bad_arguments_are_named_and_keep_the_id() {
        let cases: [(&[u8], &str); 9] = [
            (
                br#"{"id":1,"cmd":"ptz.move","pan":2}"#,
                "pan must be from -1 to 1",
            ),
            (br#"{"id":1,"cmd":"ptz.goto"}"#, "at least one of pan"),
            (
                br#"{"id":1,"cmd":"ptz.goto","tilt":"up"}"#,
                "tilt must be a number",
            ),
            (
                br#"{"id":1,"cmd":"controls.set","name":"x"}"#,
                "value is missing",
            ),
            (
                br#"{"id":1,"cmd":"controls.get","name":3}"#,
                "name must be a string",
            ),
            (
                br#"{"id":1,"cmd":"control.claim","force":1}"#,
                "force must be true or false",
            ),
            (
                br#"{"id":1,"cmd":"stream.set","fps":0}"#,
                "fps must be from 1 to 120",
            ),
            (
                br#"{"id":1,"cmd":"stream.set","size":"huge"}"#,
                "WIDTHxHEIGHT",
            ),
            (
                br#"{"id":1,"cmd":"stream.set"}"#,
                "at least one of bitrate_kbps",
            ),
        ];
        for (input, says) in cases {
            let (id, failure) = parse(input).unwrap_err();
            assert_eq!((id, failure.code), (Some(1), ErrorCode::BadArgs));
            assert!(failure.message.contains(says), "{}", failure.message);
        }
        let (id, failure) = parse(br#"{"id":2,"cmd":"warp"}"#).unwrap_err();
        assert_eq!((id, failure.code), (Some(2), ErrorCode::UnknownCommand));
    }

    #[test]
    fn malformed_messages_get_a_code() {
        let cases: [(&[u8], Option<u32>, ErrorCode); 8] = [
            (b"{", None, ErrorCode::BadJson),
            (b"\xff\xfe", None, ErrorCode::BadJson),
            (b"[1,2]", None, ErrorCode::BadJson),
            (br#"{"cmd":"ping"}"#, None, ErrorCode::BadRequest),
            (br#"{"id":-1,"cmd":"ping"}"#, None, ErrorCode::BadRequest),
            (
                br#"{"id":4294967296,"cmd":"ping"}"#,
                None,
                ErrorCode::BadRequest,
            ),
            (br#"{"id":"1","cmd":"ping"}"#, None, ErrorCode::BadRequest),
            (br#"{"id":3,"cmd":5}"#, Some(3), ErrorCode::BadRequest),
        ];
        for (input, id, code) in cases {
            let (got_id, failure) = parse(input).unwrap_err();
            assert_eq!(
                (got_id, failure.code),
                (id, code),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn responses_have_the_documented_shape() {
        let ok = Response {
            id: Some(1),
            outcome: Ok(json!({"t": 5})),
        };
        let v: Value = serde_json::from_str(&ok.to_json()).unwrap();
        assert_eq!(v, json!({"id": 1, "ok": true, "result": {"t": 5}}));

        let err = Response {
            id: None,
            outcome: Err(Failure::new(
                ErrorCode::UnknownCommand,
                "no such command: x",
            )),
        };
        let v: Value = serde_json::from_str(&err.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"id": null, "ok": false,
                   "error": {"code": "unknown_command", "message": "no such command: x"}})
        );
    }
}
