//! Command dispatch: one match arm per command. New commands (pan/tilt, camera controls,
//! roles) plug in here and act through `Device`.

use serde_json::{Value, json};

use super::protocol::{ErrorCode, Failure, Request, Response, parse};
use super::status::Status;
use crate::hub::ViewerId;

/// What commands act on. The runtime implements it over the hub and the encoder.
pub trait Device {
    fn status(&mut self) -> Status;
    /// Asks for an IDR on the viewer's behalf (limited like PLI).
    fn request_keyframe(&mut self, viewer: ViewerId);
}

/// Answers one control message from `viewer`. Always produces a response: malformed input
/// and unknown commands get an error, and the channel stays open.
pub fn dispatch(viewer: ViewerId, data: &[u8], device: &mut dyn Device) -> Response {
    let request = match parse(data) {
        Ok(r) => r,
        Err((id, failure)) => {
            return Response {
                id,
                outcome: Err(failure),
            };
        }
    };
    Response {
        id: Some(request.id),
        outcome: run(viewer, &request, device),
    }
}

fn run(viewer: ViewerId, req: &Request, device: &mut dyn Device) -> Result<Value, Failure> {
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
        other => Err(Failure::new(
            ErrorCode::UnknownCommand,
            format!("no such command: {}", truncate(other, 64)),
        )),
    }
}

/// Keeps echoed client input short in error messages.
fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The response to a message that was too large to read.
pub fn too_large(len: usize, max: usize) -> Response {
    Response {
        id: None,
        outcome: Err(Failure::new(
            ErrorCode::TooLarge,
            format!("message of {len} bytes is over the {max}-byte limit"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct FakeDevice {
        keyframes: Vec<ViewerId>,
    }

    impl Device for FakeDevice {
        fn status(&mut self) -> Status {
            Status {
                width: 640,
                height: 480,
                viewers: 2,
                ..Status::default()
            }
        }
        fn request_keyframe(&mut self, viewer: ViewerId) {
            self.keyframes.push(viewer);
        }
    }

    fn call(msg: &str, device: &mut FakeDevice) -> Value {
        let response = dispatch(ViewerId(9), msg.as_bytes(), device);
        serde_json::from_str(&response.to_json()).unwrap()
    }

    #[test]
    fn ping_echoes_t() {
        let mut d = FakeDevice::default();
        assert_eq!(
            call(r#"{"id":1,"cmd":"ping","t":1234.5}"#, &mut d),
            json!({"id": 1, "ok": true, "result": {"t": 1234.5}})
        );
        assert_eq!(
            call(r#"{"id":2,"cmd":"ping"}"#, &mut d),
            json!({"id": 2, "ok": true, "result": {}})
        );
    }

    #[test]
    fn status_reports_the_device() {
        let mut d = FakeDevice::default();
        let v = call(r#"{"id":3,"cmd":"status"}"#, &mut d);
        assert_eq!(v["ok"], json!(true));
        assert_eq!(v["result"]["width"], json!(640));
        assert_eq!(v["result"]["viewers"], json!(2));
    }

    #[test]
    fn keyframe_asks_on_behalf_of_the_viewer() {
        let mut d = FakeDevice::default();
        let v = call(r#"{"id":4,"cmd":"keyframe"}"#, &mut d);
        assert_eq!(v["ok"], json!(true));
        assert_eq!(d.keyframes, vec![ViewerId(9)]);
    }

    #[test]
    fn unknown_and_malformed_commands_get_errors_with_the_id() {
        let mut d = FakeDevice::default();
        let v = call(r#"{"id":5,"cmd":"self_destruct"}"#, &mut d);
        assert_eq!(v["id"], json!(5));
        assert_eq!(v["error"]["code"], json!("unknown_command"));
        let v = call("not json", &mut d);
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["error"]["code"], json!("bad_json"));
    }

    #[test]
    fn long_command_names_are_not_echoed_whole() {
        let mut d = FakeDevice::default();
        let name = "x".repeat(10_000);
        let v = call(&format!(r#"{{"id":6,"cmd":"{name}"}}"#), &mut d);
        assert!(v["error"]["message"].as_str().unwrap().len() < 200);
    }
}
