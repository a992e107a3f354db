//! The control plane with simulated time and a fake device: roles, claiming, dead-man stops,
//! limits, rate limits, events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::control::protocol::StreamChange;
use crate::control::ptz::AxisLimits;
use crate::source::pattern::SimulatedCamera;

const CTRL: ViewerId = ViewerId(1);
const CTRL2: ViewerId = ViewerId(2);
const VIEWER: ViewerId = ViewerId(3);

/// What the shell and the streamer would do with the plane's calls, done at once.
struct FakeDevice {
    camera: Arc<SimulatedCamera>,
    keyframes: Vec<ViewerId>,
    stream: StreamSettings,
}

impl Default for FakeDevice {
    fn default() -> Self {
        FakeDevice {
            camera: Arc::default(),
            keyframes: Vec::new(),
            stream: StreamSettings {
                width: 1280,
                height: 720,
                fps: 30,
                bitrate_kbps: 1500,
            },
        }
    }
}

impl FakeDevice {
    fn status(&self) -> Status {
        Status {
            width: self.stream.width,
            viewers: 3,
            ..Status::default()
        }
    }

    fn change_stream(&mut self, change: StreamChange) -> StreamSettings {
        if let Some(b) = change.bitrate_kbps {
            self.stream.bitrate_kbps = b;
        }
        if let Some(s) = change.size {
            (self.stream.width, self.stream.height) = (s.width, s.height);
        }
        self.stream
    }
}

fn limits() -> PtzLimits {
    PtzLimits {
        pan: Some(AxisLimits {
            min: -90.0,
            max: 90.0,
            home: 0.0,
            max_speed: 60.0,
            unit: "degrees",
        }),
        tilt: Some(AxisLimits {
            min: -30.0,
            max: 30.0,
            home: 0.0,
            max_speed: 30.0,
            unit: "degrees",
        }),
        zoom: None,
    }
}

/// A plane with two control-role viewers and one view-role viewer, all channels open.
struct Rig {
    plane: ControlPlane,
    device: FakeDevice,
    now: Instant,
    next_id: u32,
    /// Everything sent, per viewer.
    inbox: Vec<(ViewerId, Value)>,
    moves: Vec<PerAxis>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(ControlConfig::default(), Some(limits()))
    }

    fn with(config: ControlConfig, ptz: Option<PtzLimits>) -> Rig {
        let device = FakeDevice::default();
        let mut plane = ControlPlane::new(ControlConfig { ptz, ..config }, device.stream);
        let now = Instant::now();
        for (id, role) in [
            (CTRL, Role::Control),
            (CTRL2, Role::Control),
            (VIEWER, Role::View),
        ] {
            plane.viewer_joined(id, role);
            plane.channel_opened(now, id);
        }
        let mut rig = Rig {
            plane,
            device,
            now,
            next_id: 1,
            inbox: Vec::new(),
            moves: Vec::new(),
        };
        rig.collect();
        rig
    }

    /// Takes the plane's outputs, answering its calls as the shell would.
    fn collect(&mut self) {
        while let Some(o) = self.plane.poll_output() {
            match o {
                PlaneOutput::Send { viewer, text } => {
                    self.inbox
                        .push((viewer, serde_json::from_str(&text).unwrap()));
                }
                PlaneOutput::MovePtz(p) => self.moves.push(p),
                PlaneOutput::Keyframe(viewer) => self.device.keyframes.push(viewer),
                PlaneOutput::Controls { op, request } => {
                    let result = request.apply(Some(self.device.camera.as_ref()));
                    self.plane.controls_done(self.now, op, result);
                }
                PlaneOutput::ChangeStream { op, change } => {
                    let settings = self.device.change_stream(change);
                    self.plane.stream_changed(self.now, op, Ok(settings));
                }
                PlaneOutput::NeedStatus => {
                    let status = self.device.status();
                    self.plane.status(self.now, &status);
                }
            }
        }
    }

    /// Sends a command and returns its response.
    fn call(&mut self, viewer: ViewerId, cmd: &str, args: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = args.as_object().cloned().unwrap_or_default();
        msg.insert("id".into(), id.into());
        msg.insert("cmd".into(), cmd.into());
        let text = Value::Object(msg).to_string();
        self.plane.handle_message(self.now, viewer, text.as_bytes());
        self.collect();
        self.inbox
            .iter()
            .rev()
            .find(|(v, m)| *v == viewer && m["id"] == json!(id))
            .map(|(_, m)| m.clone())
            .expect("every command is answered")
    }

    fn error(&mut self, viewer: ViewerId, cmd: &str, args: Value) -> String {
        let r = self.call(viewer, cmd, args);
        assert_eq!(r["ok"], json!(false), "{cmd} should fail: {r}");
        r["error"]["code"].as_str().unwrap().to_string()
    }

    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.plane.poll_timeout() {
            if at > end {
                break;
            }
            self.now = at.max(self.now);
            self.plane.handle_timeout(self.now);
            self.collect();
        }
        self.now = end;
    }

    fn pan(&mut self) -> f64 {
        let r = self.call(CTRL, "ptz.get", json!({}));
        r["result"]["position"]["pan"].as_f64().unwrap()
    }

    fn events_for(&self, viewer: ViewerId) -> Vec<&Value> {
        self.inbox
            .iter()
            .filter(|(v, m)| *v == viewer && m.get("event").is_some())
            .map(|(_, m)| m)
            .collect()
    }
}

#[test]
fn only_control_role_viewers_can_claim_and_steer() {
    let mut r = Rig::new();
    assert_eq!(r.error(VIEWER, "control.claim", json!({})), "forbidden");
    assert_eq!(r.error(VIEWER, "ptz.move", json!({"pan": 1})), "forbidden");
    assert_eq!(
        r.error(CTRL, "ptz.move", json!({"pan": 1})),
        "not_controller"
    );
    // Reading is for everyone.
    assert_eq!(r.call(VIEWER, "ptz.get", json!({}))["ok"], json!(true));
    assert_eq!(
        r.call(VIEWER, "controls.list", json!({}))["ok"],
        json!(true)
    );
    assert_eq!(
        r.error(
            VIEWER,
            "controls.set",
            json!({"name": "brightness", "value": 1})
        ),
        "forbidden"
    );
}

#[test]
fn one_controller_at_a_time_and_force_takes_over() {
    let mut r = Rig::new();
    assert_eq!(r.call(CTRL, "control.claim", json!({}))["ok"], json!(true));
    assert_eq!(r.plane.controller(), Some(CTRL));
    assert_eq!(r.error(CTRL2, "control.claim", json!({})), "busy");
    assert_eq!(
        r.error(CTRL2, "ptz.move", json!({"pan": 1})),
        "not_controller"
    );
    assert_eq!(
        r.error(CTRL2, "control.release", json!({})),
        "not_controller"
    );

    // The first controller is moving when the second forces: the move stops.
    r.call(CTRL, "ptz.move", json!({"pan": 1}));
    let taken = r.call(CTRL2, "control.claim", json!({"force": true}));
    assert_eq!(taken["result"]["controller"]["by_you"], json!(true));
    assert_eq!(r.plane.controller(), Some(CTRL2));
    let before = r.pan();
    r.advance(Duration::from_millis(300));
    assert_eq!(r.pan(), before, "a forced takeover stops the old move");
    assert_eq!(
        r.error(CTRL, "ptz.move", json!({"pan": 1})),
        "not_controller"
    );

    // Everyone is told who holds control; each sees whether it is them.
    let last = |r: &Rig, v| {
        r.events_for(v)
            .into_iter()
            .rev()
            .find(|e| e.get("controller").is_some())
            .cloned()
            .unwrap()
    };
    assert_eq!(last(&r, CTRL)["controller"]["by_you"], json!(false));
    assert_eq!(last(&r, CTRL2)["controller"]["by_you"], json!(true));
    assert_eq!(last(&r, VIEWER)["controller"]["held"], json!(true));
    assert!(
        last(&r, VIEWER)["controller"]["by"]
            .as_str()
            .unwrap()
            .starts_with("viewer ")
    );

    assert_eq!(
        r.call(CTRL2, "control.release", json!({}))["ok"],
        json!(true)
    );
    assert_eq!(r.plane.controller(), None);
    assert_eq!(r.call(CTRL, "control.claim", json!({}))["ok"], json!(true));
}

#[test]
fn a_move_stops_after_500_ms_without_ptz_move() {
    let mut r = Rig::new();
    r.call(CTRL, "control.claim", json!({}));
    r.call(CTRL, "ptz.move", json!({"pan": 1}));
    r.advance(Duration::from_secs(3));
    let pan = r.pan();
    assert!(
        (pan - 30.0).abs() < 0.01,
        "500 ms at 60 deg/s, then stop: {pan}"
    );
    let stop = r
        .events_for(VIEWER)
        .into_iter()
        .find(|e| e["ptz"]["stopped"].is_string())
        .cloned()
        .unwrap();
    assert_eq!(stop["ptz"]["stopped"], json!("deadman"));
    // The actuator got positions along the way, last one where it stopped.
    assert!(r.moves.len() >= 5);
    assert_eq!(r.moves.last().unwrap().pan, Some(pan));
}

#[test]
fn repeated_ptz_move_keeps_moving() {
    let mut r = Rig::new();
    r.call(CTRL, "control.claim", json!({}));
    for _ in 0..10 {
        r.call(CTRL, "ptz.move", json!({"pan": 0.5}));
        r.advance(Duration::from_millis(200));
    }
    let pan = r.pan();
    assert!((pan - 60.0).abs() < 0.01, "2 s at 30 deg/s: {pan}");
}

#[test]
fn the_controllers_channel_closing_or_leaving_stops_the_motor_and_frees_control() {
    for how in ["channel", "disconnect"] {
        let mut r = Rig::new();
        r.call(CTRL, "control.claim", json!({}));
        r.call(CTRL, "ptz.move", json!({"tilt": -1}));
        r.advance(Duration::from_millis(100));
        match how {
            "channel" => r.plane.channel_closed(r.now, CTRL),
            _ => r.plane.viewer_left(r.now, CTRL),
        }
        r.collect();
        let tilt = r.call(VIEWER, "ptz.get", json!({}))["result"]["position"]["tilt"]
            .as_f64()
            .unwrap();
        r.advance(Duration::from_millis(400));
        let later = r.call(VIEWER, "ptz.get", json!({}))["result"]["position"]["tilt"]
            .as_f64()
            .unwrap();
        assert_eq!(tilt, later, "{how}: no motion after the controller went");
        assert!(
            (tilt + 3.0).abs() < 0.01,
            "{how}: 100 ms at 30 deg/s: {tilt}"
        );
        assert_eq!(r.plane.controller(), None, "{how}");
        assert_eq!(
            r.call(CTRL2, "control.claim", json!({}))["ok"],
            json!(true),
            "{how}"
        );
    }
}

#[test]
fn positions_are_clamped_and_bad_arguments_refused() {
    let mut r = Rig::new();
    r.call(CTRL, "control.claim", json!({}));
    let g = r.call(CTRL, "ptz.goto", json!({"pan": 500, "tilt": -500}));
    assert_eq!(g["result"]["position"], json!({"pan": 90.0, "tilt": -30.0}));
    assert_eq!(r.error(CTRL, "ptz.move", json!({"pan": 2})), "bad_args");
    assert_eq!(
        r.error(CTRL, "ptz.move", json!({"pan": "left"})),
        "bad_args"
    );
    assert_eq!(r.error(CTRL, "ptz.move", json!({})), "bad_args");
    assert_eq!(
        r.call(CTRL, "ptz.home", json!({}))["result"]["position"],
        json!({"pan": 0.0, "tilt": 0.0})
    );
    assert_eq!(r.call(CTRL, "ptz.stop", json!({}))["ok"], json!(true));
}

#[test]
fn commands_are_rate_limited_per_viewer() {
    let config = ControlConfig {
        commands_per_s: 5.0,
        burst: 5.0,
        ..ControlConfig::default()
    };
    let mut r = Rig::with(config, Some(limits()));
    let codes: Vec<Value> = (0..8)
        .map(|_| r.call(VIEWER, "ping", json!({}))["ok"].clone())
        .collect();
    assert_eq!(codes.iter().filter(|ok| **ok == json!(true)).count(), 5);
    assert_eq!(r.error(VIEWER, "ping", json!({})), "rate_limited");
    // Other viewers have their own budget.
    assert_eq!(r.call(CTRL, "ping", json!({}))["ok"], json!(true));
    r.advance(Duration::from_secs(1));
    assert_eq!(r.call(VIEWER, "ping", json!({}))["ok"], json!(true));
}

#[test]
fn camera_controls_and_stream_settings_through_commands() {
    let mut r = Rig::new();
    let list = r.call(VIEWER, "controls.list", json!({}));
    assert!(
        list["result"]["controls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "brightness")
    );
    r.call(CTRL, "control.claim", json!({}));
    let set = r.call(
        CTRL,
        "controls.set",
        json!({"name": "brightness", "value": 200}),
    );
    assert_eq!(set["result"], json!({"name": "brightness", "value": 200}));
    assert_eq!(
        r.call(VIEWER, "controls.get", json!({"name": "brightness"}))["result"]["value"],
        json!(200)
    );
    assert_eq!(
        r.error(
            CTRL,
            "controls.set",
            json!({"name": "brightness", "value": 999})
        ),
        "out_of_range"
    );
    assert_eq!(
        r.error(
            CTRL,
            "controls.set",
            json!({"name": "warp_drive", "value": 1})
        ),
        "unknown_control"
    );
    assert_eq!(
        r.error(CTRL, "controls.set", json!({"name": "brightness"})),
        "bad_args"
    );
    assert!(
        r.events_for(VIEWER)
            .iter()
            .any(|e| e["camera"]["value"] == json!(200))
    );

    let s = r.call(
        CTRL,
        "stream.set",
        json!({"bitrate_kbps": 800, "size": "640x480"}),
    );
    assert_eq!(s["result"]["bitrate_kbps"], json!(800));
    assert_eq!(s["result"]["width"], json!(640));
    assert_eq!(
        r.error(CTRL, "stream.set", json!({"size": "641x480"})),
        "bad_args"
    );
    assert_eq!(r.error(CTRL, "stream.set", json!({"fps": 0})), "bad_args");
    assert_eq!(r.error(CTRL, "stream.set", json!({})), "bad_args");
    assert!(
        r.events_for(VIEWER)
            .iter()
            .any(|e| e["stream"]["width"] == json!(640))
    );
}

#[test]
fn without_an_actuator_ptz_commands_say_unsupported() {
    let mut r = Rig::with(ControlConfig::default(), None);
    r.call(CTRL, "control.claim", json!({}));
    assert_eq!(r.error(CTRL, "ptz.move", json!({"pan": 1})), "unsupported");
    assert_eq!(r.error(VIEWER, "ptz.get", json!({})), "unsupported");
}

#[test]
fn status_events_go_out_once_a_second_to_open_channels() {
    let mut r = Rig::new();
    r.plane.channel_closed(r.now, VIEWER);
    r.advance(Duration::from_millis(3500));
    let status = |v| {
        r.events_for(v)
            .iter()
            .filter(|e| e["event"] == json!("status"))
            .count()
    };
    assert!((3..=4).contains(&status(CTRL)), "{}", status(CTRL));
    assert_eq!(status(VIEWER), 0, "closed channels get nothing");
    let e = r
        .events_for(CTRL)
        .into_iter()
        .find(|e| e["event"] == json!("status"))
        .cloned()
        .unwrap();
    assert_eq!(e["viewers"], json!(3));
    assert!(e.get("cpu_load").is_some() && e.get("soc_temp_c").is_some());
}

#[test]
fn the_greeting_tells_a_new_channel_everything_it_needs() {
    let r = Rig::new();
    let hello = r
        .events_for(VIEWER)
        .into_iter()
        .find(|e| e.get("you").is_some())
        .cloned()
        .unwrap();
    assert_eq!(hello["you"]["role"], json!("view"));
    assert_eq!(hello["controller"]["held"], json!(false));
    assert_eq!(hello["ptz"]["limits"]["pan"]["unit"], json!("degrees"));
    assert_eq!(hello["stream"]["width"], json!(1280));
    let controls = hello["camera"]["controls"].as_array().unwrap();
    assert!(controls.iter().any(|c| c["name"] == json!("brightness")));
}

#[test]
fn malformed_messages_and_keyframe_requests() {
    let mut r = Rig::new();
    r.plane.handle_message(r.now, VIEWER, b"{nope");
    r.collect();
    let last = r.inbox.last().unwrap().1.clone();
    assert_eq!(last["error"]["code"], json!("bad_json"));
    assert_eq!(r.call(VIEWER, "keyframe", json!({}))["ok"], json!(true));
    assert_eq!(r.device.keyframes, vec![VIEWER]);
    assert_eq!(r.error(VIEWER, "launch", json!({})), "unknown_command");
}
