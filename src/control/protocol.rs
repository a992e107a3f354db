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

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: u32,
    pub cmd: String,
    /// Every member of the request object other than `id` and `cmd`.
    pub args: Map<String, Value>,
}

/// Error codes a client can rely on. New commands add codes here, never reuse one for
/// another meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
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
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// One response, ready to serialize.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Option<u32>,
    pub outcome: Result<Value, Failure>,
}

impl Response {
    pub fn to_json(&self) -> String {
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
pub fn parse(data: &[u8]) -> Result<Request, (Option<u32>, Failure)> {
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
    Ok(Request { id, cmd, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_keeps_its_arguments() {
        let r = parse(br#"{"id": 7, "cmd": "ping", "t": 12.5, "x": [1]}"#).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.cmd, "ping");
        assert_eq!(r.args.get("t"), Some(&json!(12.5)));
        assert_eq!(r.args.len(), 2);
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
