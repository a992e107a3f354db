//! The whole core with simulated time: real str0m viewers in memory, and a fake shell that does
//! at once what the streamer asks (a camera simulated in memory, restarts finished when the
//! test says). No sockets, no threads, no clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::control::ControlConfig;
use crate::control::ptz::PtzLimits;
use crate::hub::peer::{Peer, encoded};
use crate::source::CameraControls;
use crate::source::pattern::SimulatedCamera;

const STREAMER_ADDR: &str = "10.0.0.1:5000";
const STEP: Duration = Duration::from_millis(5);

fn running(width: u32, height: u32, fps: u32) -> Running {
    Running::new(
        SourceInfo {
            kind: "test",
            name: "simulated".into(),
            width,
            height,
            fps,
        },
        1500,
    )
}

/// The streamer, its viewers, and what a shell would have done with its outputs.
struct Rig {
    streamer: Streamer,
    peers: Vec<Peer>,
    now: Instant,
    timeout: Instant,
    /// The camera the actuator commands reach.
    camera: Arc<SimulatedCamera>,
    encoder: Vec<EncoderCommand>,
    moves: Vec<PerAxis>,
    replies: Vec<(CallId, Reply)>,
    readings_given: usize,
    next_call: u64,
    next_request: u32,
}

impl Rig {
    fn new() -> Rig {
        let now = Instant::now();
        let camera = Arc::new(SimulatedCamera::default());
        let limits = ptz_limits(&camera);
        let config = StreamerConfig {
            hub: HubConfig {
                candidates: vec![STREAMER_ADDR.parse().unwrap()],
                ..HubConfig::default()
            },
            control: ControlConfig {
                ptz: Some(limits),
                ptz_on_camera_controls: true,
                ..ControlConfig::default()
            },
            rate: RateLimits::default(),
        };
        Rig {
            streamer: Streamer::new(config, running(1280, 720, 30), now).unwrap(),
            peers: Vec::new(),
            now,
            timeout: now,
            camera,
            encoder: Vec::new(),
            moves: Vec::new(),
            replies: Vec::new(),
            readings_given: 0,
            next_call: 1,
            next_request: 1,
        }
    }

    fn call(&mut self, call: Call) -> Reply {
        let id = CallId(self.next_call);
        self.next_call += 1;
        self.streamer.handle_input(self.now, Input::Call(id, call));
        self.pump();
        let at = self
            .replies
            .iter()
            .position(|(c, _)| *c == id)
            .expect("every call is answered");
        self.replies.remove(at).1
    }

    /// A viewer offers; returns its id once connected with its channel open.
    fn join(&mut self, n: u8, role: Role) -> ViewerId {
        let (mut peer, sdp, pending) = Peer::h264(n, self.now);
        let viewer = peer.id;
        let client = peer.addr.ip();
        let call = Call::Offer {
            viewer,
            client,
            sdp,
            role,
        };
        let Reply::Offer(Ok(Answered {
            viewer: id,
            sdp: answer,
            ..
        })) = self.call(call)
        else {
            panic!("offer refused");
        };
        assert_eq!(id, viewer);
        peer.accept(pending, &answer);
        self.peers.push(peer);
        for _ in 0..400 {
            if self.peer(viewer).connected && self.peer(viewer).channel_open {
                return viewer;
            }
            self.advance(STEP);
        }
        panic!("viewer {n} did not connect");
    }

    fn peer(&mut self, id: ViewerId) -> &mut Peer {
        self.peers.iter_mut().find(|p| p.id == id).unwrap()
    }

    /// Sends a command on the viewer's channel; returns its request id.
    fn send(&mut self, viewer: ViewerId, cmd: &str, args: Value) -> u32 {
        let id = self.next_request;
        self.next_request += 1;
        let mut msg = args.as_object().cloned().unwrap_or_default();
        msg.insert("id".into(), id.into());
        msg.insert("cmd".into(), cmd.into());
        self.peer(viewer)
            .send_control(&Value::Object(msg).to_string());
        self.pump();
        id
    }

    /// The answer to request `id`, if it came.
    fn answer(&mut self, viewer: ViewerId, id: u32) -> Option<Value> {
        self.messages(viewer)
            .into_iter()
            .find(|m| m.get("id") == Some(&json!(id)))
    }

    /// Sends a command and waits (in simulated time) for its answer.
    fn command(&mut self, viewer: ViewerId, cmd: &str, args: Value) -> Value {
        let id = self.send(viewer, cmd, args);
        for _ in 0..200 {
            if let Some(answer) = self.answer(viewer, id) {
                return answer;
            }
            self.advance(STEP);
        }
        panic!("{cmd} was not answered");
    }

    fn messages(&mut self, viewer: ViewerId) -> Vec<Value> {
        self.peer(viewer)
            .messages
            .iter()
            .map(|m| serde_json::from_str(m).unwrap())
            .collect()
    }

    fn events(&mut self, viewer: ViewerId) -> Vec<Value> {
        self.messages(viewer)
            .into_iter()
            .filter(|m| m.get("event").is_some())
            .collect()
    }

    /// Carries every output out, and datagrams both ways, until everyone is quiet.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut to_streamer = Vec::new();
            for peer in &mut self.peers {
                peer.drain(&mut to_streamer);
            }
            for (source, destination, contents) in &to_streamer {
                let input = Input::Datagram {
                    proto: str0m::net::Protocol::Udp,
                    source: *source,
                    destination: *destination,
                    contents,
                };
                self.streamer.handle_input(self.now, input);
            }
            let mut delivered = 0;
            loop {
                match self.streamer.poll_output() {
                    Output::Transmit(t) => {
                        delivered += 1;
                        let peer = self.peers.iter_mut().find(|p| p.addr == t.destination);
                        if let Some(peer) = peer {
                            peer.receive(self.now, &t);
                        }
                    }
                    Output::Encoder(command) => self.encoder.push(command),
                    Output::Actuator(ActuatorCommand::MovePtz(position)) => {
                        self.moves.push(position);
                    }
                    Output::Actuator(ActuatorCommand::Controls { op, request }) => {
                        let result = request.apply(Some(self.camera.as_ref()));
                        self.streamer
                            .handle_input(self.now, Input::Controls(op, result));
                    }
                    Output::Reply(id, reply) => self.replies.push((id, reply)),
                    Output::ReadingsWanted => {
                        self.readings_given += 1;
                        let readings = Readings {
                            cpu_load: Some(0.25),
                            ..Readings::default()
                        };
                        self.streamer
                            .handle_input(self.now, Input::Readings(readings));
                    }
                    Output::Timeout(at) => {
                        self.timeout = at;
                        break;
                    }
                }
            }
            if to_streamer.is_empty() && delivered == 0 {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// Advances simulated time, firing every due timeout on the way.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now = (self.now + STEP).min(end);
            let now = self.now;
            if self.timeout <= now {
                self.streamer.handle_input(now, Input::Timeout);
            }
            for peer in &mut self.peers {
                peer.tick(now);
            }
            self.pump();
        }
    }

    /// One frame interval with an access unit, as the encoder would hand it in.
    fn frame(&mut self, seq: u64, keyframe: bool) {
        let unit = encoded(seq, keyframe, self.now);
        self.streamer
            .handle_input(self.now, Input::AccessUnit(&unit));
        self.pump();
        self.advance(Duration::from_millis(33));
    }

    fn keyframes_asked(&self) -> usize {
        self.encoder
            .iter()
            .filter(|c| **c == EncoderCommand::Keyframe(Encoding::Main))
            .count()
    }
}

/// The simulated camera's pan/tilt/zoom as an actuator would report them.
fn ptz_limits(camera: &SimulatedCamera) -> PtzLimits {
    let list = camera.list().unwrap();
    let axis = |name: &str, unit: &'static str| {
        list.iter().find(|c| c.name == name).map(|c| AxisLimits {
            min: c.min as f64,
            max: c.max as f64,
            home: c.default as f64,
            max_speed: (c.max - c.min) as f64 / 4.0,
            unit,
        })
    };
    PtzLimits {
        pan: axis("pan_absolute", "arcsec"),
        tilt: axis("tilt_absolute", "arcsec"),
        zoom: axis("zoom_absolute", "camera"),
    }
}

#[test]
fn a_viewers_whole_session_in_memory() {
    let mut r = Rig::new();

    // Joins: answered, connected, greeted with what the page needs; an IDR is asked for.
    let v = r.join(1, Role::Control);
    assert_eq!(r.streamer.viewers(), vec![v]);
    let hello = r
        .events(v)
        .into_iter()
        .find(|e| e.get("you").is_some())
        .expect("a greeting");
    assert_eq!(hello["you"]["role"], json!("control"));
    assert_eq!(hello["stream"]["width"], json!(1280));
    assert!(
        hello["camera"]["controls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == json!("pan_absolute")),
        "the greeting lists the camera's controls: {hello}"
    );
    assert_eq!(r.keyframes_asked(), 1, "joining asks for one IDR");

    // Pictures reach it, from the IDR on.
    r.frame(1, true);
    r.frame(2, false);
    assert_eq!(r.peer(v).frames.len(), 2);

    // Claims control and pans: the actuator follows within the limits.
    let claim = r.command(v, "control.claim", json!({}));
    assert_eq!(claim["result"]["controller"]["by_you"], json!(true));
    assert_eq!(r.streamer.controller(), Some(v));
    let moving = r.command(v, "ptz.move", json!({"pan": 1}));
    assert_eq!(moving["result"]["moving"], json!(true));
    r.advance(Duration::from_millis(300));
    let pan_while_moving = r.moves.last().and_then(|p| p.pan).expect("moves went out");
    assert!(pan_while_moving > 0.0);

    // Goes silent: the dead-man stop halts the motor 500 ms after the last ptz.move.
    r.advance(Duration::from_millis(1000));
    let stopped = r
        .events(v)
        .into_iter()
        .find(|e| e["ptz"]["stopped"].is_string())
        .expect("a stop event");
    assert_eq!(stopped["ptz"]["stopped"], json!("deadman"));
    let moves_after_stop = r.moves.len();
    let pan = r.moves.last().and_then(|p| p.pan).unwrap();
    r.advance(Duration::from_millis(500));
    assert_eq!(r.moves.len(), moves_after_stop, "no motion after the stop");
    // 500 ms at full speed (a quarter of the range per second).
    let full_speed = (648000.0 * 2.0) / 4.0;
    assert!(
        (pan - full_speed * 0.5).abs() < 1.0,
        "moved exactly until the dead-man deadline: {pan}"
    );

    // Changes the stream size: the pipeline restarts off the loop; the command is answered
    // when it is back, and later commands wait their turn.
    let set = r.send(v, "stream.set", json!({"size": "640x480"}));
    let ping = r.send(v, "ping", json!({"t": 1}));
    r.advance(Duration::from_millis(200));
    let restart = EncoderCommand::Restart(StreamSettings {
        width: 640,
        height: 480,
        fps: 30,
        bitrate_kbps: 1500,
    });
    assert_eq!(r.encoder.last(), Some(&restart));
    assert!(r.answer(v, set).is_none(), "answered only once restarted");
    assert!(r.answer(v, ping).is_none(), "answers keep their order");
    // Packets still flow while the pipeline restarts: the last frame and the channel.
    r.frame(3, false);
    assert_eq!(r.peer(v).frames.len(), 3);

    r.streamer.handle_input(
        r.now,
        Input::Restarted {
            running: running(640, 480, 30),
            failure: None,
        },
    );
    r.pump();
    r.advance(Duration::from_millis(50));
    let set_answer = r.answer(v, set).expect("stream.set answered");
    assert_eq!(set_answer["result"]["width"], json!(640));
    let order: Vec<u32> = r
        .messages(v)
        .iter()
        .filter_map(|m| m["id"].as_u64().map(|id| id as u32))
        .filter(|id| [set, ping].contains(id))
        .collect();
    assert_eq!(order, vec![set, ping], "answers in the order asked");
    assert!(
        r.events(v)
            .iter()
            .any(|e| e["stream"]["width"] == json!(640)),
        "everyone is told the new size"
    );

    // Status over HTTP reflects it, with the shell's readings.
    let Reply::Status(status) = r.call(Call::Status) else {
        panic!("status");
    };
    assert_eq!((status.width, status.height), (640, 480));
    assert_eq!((status.viewers, status.viewers_connected), (1, 1));
    assert_eq!(status.cpu_load, Some(0.25));

    // Leaves: the session ends, control is free again.
    assert_eq!(r.call(Call::Delete(v)), Reply::Deleted(true));
    assert!(r.streamer.viewers().is_empty());
    assert_eq!(r.streamer.controller(), None);
    assert_eq!(r.call(Call::Delete(v)), Reply::Deleted(false));
}

#[test]
fn other_viewers_are_served_while_the_stream_restarts() {
    let mut r = Rig::new();
    let controller = r.join(1, Role::Control);
    let watcher = r.join(2, Role::View);
    r.frame(1, true);
    r.command(controller, "control.claim", json!({}));
    let set = r.send(controller, "stream.set", json!({"fps": 15}));
    r.advance(Duration::from_millis(100));
    assert!(matches!(
        r.encoder.last(),
        Some(EncoderCommand::Restart(StreamSettings { fps: 15, .. }))
    ));

    // The watcher's commands are answered meanwhile; a second restart is refused, not queued
    // behind the first.
    let pong = r.command(watcher, "ping", json!({"t": "x"}));
    assert_eq!(pong["result"], json!({"t": "x"}));
    let forced = r.command(watcher, "status", json!({}));
    assert_eq!(forced["ok"], json!(true));
    let second = r.join(3, Role::Control);
    r.command(second, "control.claim", json!({"force": true}));
    let refused = r.command(second, "stream.set", json!({"fps": 10}));
    assert_eq!(refused["error"]["code"], json!("unavailable"));
    assert!(r.answer(controller, set).is_none());

    // The restart fails: the old settings are back and the command says why.
    r.streamer.handle_input(
        r.now,
        Input::Restarted {
            running: running(1280, 720, 30),
            failure: Some("the camera has no 15 fps".into()),
        },
    );
    r.pump();
    r.advance(Duration::from_millis(50));
    let failed = r.answer(controller, set).expect("answered");
    assert_eq!(failed["error"]["code"], json!("device_error"));
    assert_eq!(r.streamer.running().settings.fps, 30);
}

#[test]
fn a_bitrate_change_needs_no_restart_and_health_follows_the_readings() {
    let mut r = Rig::new();
    let v = r.join(1, Role::Control);
    r.command(v, "control.claim", json!({}));
    let set = r.command(v, "stream.set", json!({"bitrate_kbps": 600}));
    assert_eq!(set["result"]["bitrate_kbps"], json!(600));
    assert_eq!(
        r.encoder.last(),
        Some(&EncoderCommand::Bitrate(Encoding::Main, 600))
    );
    assert!(
        !r.encoder
            .iter()
            .any(|c| matches!(c, EncoderCommand::Restart(_)))
    );

    // No frame since the pipeline started, 5 s ago (the readings say so): unhealthy.
    r.advance(Duration::from_secs(5));
    let Reply::Health(health) = r.call(Call::Health) else {
        panic!("health");
    };
    assert!(health.unwrap_err().contains("no frame from the source"));
    // Status events went out once a second, each after a reading.
    let status_events = r
        .events(v)
        .iter()
        .filter(|e| e["event"] == json!("status"))
        .count();
    assert!((4..=6).contains(&status_events), "{status_events}");
    assert!(r.readings_given >= status_events);
}

#[test]
fn the_answer_announces_the_level_the_encoder_writes() {
    for (width, height, expected) in [(1280, 720, "42e01f"), (1920, 1080, "42e028")] {
        let now = Instant::now();
        let config = StreamerConfig {
            hub: HubConfig {
                candidates: vec![STREAMER_ADDR.parse().unwrap()],
                ..HubConfig::default()
            },
            control: ControlConfig::default(),
            rate: RateLimits::default(),
        };
        let mut streamer = Streamer::new(config, running(width, height, 30), now).unwrap();
        let (peer, sdp, _pending) = Peer::h264(1, now);
        let call = Call::Offer {
            viewer: peer.id,
            client: peer.addr.ip(),
            sdp,
            role: Role::View,
        };
        streamer.handle_input(now, Input::Call(CallId(1), call));
        let answer = loop {
            match streamer.poll_output() {
                Output::Reply(_, Reply::Offer(Ok(answered))) => break answered.sdp,
                Output::Timeout(_) => panic!("no answer"),
                _ => {}
            }
        };
        assert!(
            answer.contains(&format!("profile-level-id={expected}")),
            "{width}x{height}: {answer}"
        );
    }
}
