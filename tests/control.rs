//! The control plane over a real data channel: every command, the error codes a client can
//! meet, roles and tokens, events, snapshots. The server runs in-process on loopback with the
//! test pattern as a simulated pan/tilt/zoom camera.

mod common;

use std::time::Duration;

use rtcam::client::http::{self, HttpResponse, Url};
use rtcam::client::{ClientError, ClientEvent, ClientOptions, WhepClient};
use rtcam::shell::Server;
use serde_json::{Value, json};

use common::{CONTROL_TOKEN, WAIT, config, start, whep_url};

const VIEW_TOKEN: &str = "test-view-token-abcdefghijklmnop";

fn client(server: &Server, token: Option<&str>) -> Result<WhepClient, ClientError> {
    let headers = token
        .map(|t| vec![("Authorization".to_string(), format!("Bearer {t}"))])
        .unwrap_or_default();
    WhepClient::connect(
        &whep_url(server),
        ClientOptions {
            decode: false,
            headers,
            ..ClientOptions::default()
        },
    )
}

/// Connected with the channel open; returns the device's first `control` event too.
fn open(server: &Server, token: Option<&str>) -> (WhepClient, Value) {
    let mut c = client(server, token).expect("offer accepted");
    let mut hello = None;
    c.poll_until(WAIT, |e| {
        if let ClientEvent::Control(text) = e
            && let Ok(v) = serde_json::from_str::<Value>(text)
            && v["event"] == json!("control")
            && v.get("you").is_some()
        {
            hello = Some(v);
        }
        hello.is_some()
    })
    .expect("the device greets the channel");
    (c, hello.unwrap_or_default())
}

fn ok(c: &mut WhepClient, cmd: &str, args: Value) -> Value {
    let r = c.command(cmd, args, WAIT).expect("answered");
    assert_eq!(r["ok"], json!(true), "{cmd}: {r}");
    r["result"].clone()
}

fn code(c: &mut WhepClient, cmd: &str, args: Value) -> String {
    let r = c.command(cmd, args, WAIT).expect("answered");
    assert_eq!(r["ok"], json!(false), "{cmd} should fail: {r}");
    r["error"]["code"].as_str().unwrap_or_default().to_string()
}

fn get(server: &Server, path: &str, token: Option<&str>) -> HttpResponse {
    let url = Url::parse(&format!("http://{}{path}", server.http_addr)).unwrap();
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http::request(&url, "GET", &headers, &[]).unwrap()
}

fn pan(c: &mut WhepClient) -> f64 {
    ok(c, "ptz.get", json!({}))["position"]["pan"]
        .as_f64()
        .unwrap()
}

#[test]
fn the_controller_steers_the_simulated_camera() {
    let server = start(config());
    let (mut c, hello) = open(&server, Some(CONTROL_TOKEN));
    assert_eq!(hello["you"]["role"], json!("control"));
    assert_eq!(hello["controller"]["held"], json!(false));
    let limits = &hello["ptz"]["limits"];
    assert_eq!(
        limits["pan"]["max"],
        json!(648000.0),
        "the pattern's pan_absolute range"
    );

    ok(&mut c, "control.claim", json!({}));
    // Hold pan right for a second (the page repeats ptz.move while the button is held).
    for _ in 0..5 {
        ok(&mut c, "ptz.move", json!({"pan": 1}));
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(&mut c, "ptz.stop", json!({}));
    let moved = pan(&mut c);
    assert!(
        moved > 100_000.0,
        "a second at full speed (a quarter turn in 1 s) got {moved}"
    );
    let cam = ok(&mut c, "controls.get", json!({"name": "pan_absolute"}))["value"]
        .as_f64()
        .unwrap();
    assert!(
        (cam - moved).abs() <= 3600.0,
        "the camera control follows: {cam} vs {moved}"
    );

    let at = ok(&mut c, "ptz.goto", json!({"pan": -36000, "zoom": 9999}))["position"].clone();
    assert_eq!(at["pan"], json!(-36000.0));
    assert_eq!(at["zoom"], json!(400.0), "clamped to the camera's range");
    let home = ok(&mut c, "ptz.home", json!({}))["position"].clone();
    assert_eq!(home["pan"], json!(0.0));
    ok(&mut c, "control.release", json!({}));
    assert_eq!(
        code(&mut c, "ptz.move", json!({"pan": 1})),
        "not_controller"
    );
    server.stop().unwrap();
}

#[test]
fn silence_stops_a_move_over_the_real_channel() {
    let server = start(config());
    let (mut c, _) = open(&server, Some(CONTROL_TOKEN));
    ok(&mut c, "control.claim", json!({}));
    ok(&mut c, "ptz.move", json!({"tilt": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    let first = ok(&mut c, "ptz.get", json!({}));
    std::thread::sleep(Duration::from_millis(500));
    let second = ok(&mut c, "ptz.get", json!({}));
    assert_eq!(
        first["moving"],
        json!(false),
        "stopped by the dead-man timer"
    );
    assert_eq!(first["position"], second["position"]);
    assert!(
        first["position"]["tilt"].as_f64().unwrap() > 0.0,
        "it did move first"
    );
    server.stop().unwrap();
}

#[test]
fn roles_and_claims_between_viewers() {
    let mut cfg = config();
    cfg.auth.view_token = Some(VIEW_TOKEN.into());
    let server = start(cfg);
    let (mut a, _) = open(&server, Some(CONTROL_TOKEN));
    let (mut b, _) = open(&server, Some(CONTROL_TOKEN));
    let (mut v, hello) = open(&server, Some(VIEW_TOKEN));
    assert_eq!(hello["you"]["role"], json!("view"));
    let (mut anon, _) = open(&server, None);

    assert_eq!(code(&mut v, "control.claim", json!({})), "forbidden");
    assert_eq!(
        code(&mut anon, "control.claim", json!({"force": true})),
        "forbidden"
    );
    assert_eq!(
        code(&mut v, "stream.set", json!({"bitrate_kbps": 300})),
        "forbidden"
    );
    ok(&mut a, "control.claim", json!({}));
    assert_eq!(code(&mut b, "control.claim", json!({})), "busy");
    assert_eq!(
        code(
            &mut b,
            "controls.set",
            json!({"name": "brightness", "value": 10})
        ),
        "not_controller"
    );
    let taken = ok(&mut b, "control.claim", json!({"force": true}));
    assert_eq!(taken["controller"]["by_you"], json!(true));
    assert_eq!(code(&mut a, "ptz.home", json!({})), "not_controller");
    // Read-only commands work for everyone.
    ok(&mut v, "ptz.get", json!({}));
    ok(&mut anon, "controls.list", json!({}));

    // When the controller leaves, control is free again.
    assert_eq!(b.delete().unwrap(), 200);
    let mut claimed = false;
    for _ in 0..50 {
        if a.command("control.claim", json!({}), WAIT).unwrap()["ok"] == json!(true) {
            claimed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(claimed, "control is free once its holder left");
    server.stop().unwrap();
}

#[test]
fn camera_controls_stream_settings_and_their_errors() {
    let server = start(config());
    let (mut c, _) = open(&server, Some(CONTROL_TOKEN));
    let list = ok(&mut c, "controls.list", json!({}));
    let names: Vec<&str> = list["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "pan_absolute",
            "tilt_absolute",
            "zoom_absolute",
            "brightness"
        ]
    );
    ok(&mut c, "control.claim", json!({}));
    assert_eq!(
        ok(
            &mut c,
            "controls.set",
            json!({"name": "brightness", "value": 180})
        ),
        json!({"name": "brightness", "value": 180})
    );
    assert_eq!(
        ok(&mut c, "controls.get", json!({"name": "brightness"}))["value"],
        json!(180)
    );
    assert_eq!(
        code(
            &mut c,
            "controls.set",
            json!({"name": "brightness", "value": 300})
        ),
        "out_of_range"
    );
    assert_eq!(
        code(&mut c, "controls.get", json!({"name": "focus"})),
        "unknown_control"
    );
    assert_eq!(
        code(
            &mut c,
            "controls.set",
            json!({"name": "brightness", "value": "max"})
        ),
        "bad_args"
    );

    let s = ok(&mut c, "stream.set", json!({"bitrate_kbps": 250}));
    assert_eq!(s["bitrate_kbps"], json!(250));
    assert_eq!(ok(&mut c, "status", json!({}))["bitrate_kbps"], json!(250));

    // A new size: the encoder restarts, the viewer stays and gets an IDR at the new size.
    let s = ok(&mut c, "stream.set", json!({"size": "160x120"}));
    assert_eq!(
        (s["width"].clone(), s["height"].clone()),
        (json!(160), json!(120))
    );
    let events = c
        .poll_until(
            WAIT,
            |e| matches!(e, ClientEvent::Frame(f) if f.keyframe && f.bytes > 0),
        )
        .expect("frames keep coming after the restart");
    assert!(!events.contains(&ClientEvent::Disconnected));
    assert_eq!(ok(&mut c, "status", json!({}))["width"], json!(160));
    assert_eq!(
        code(&mut c, "stream.set", json!({"size": "huge"})),
        "bad_args"
    );
    server.stop().unwrap();
}

#[test]
fn protocol_errors_have_their_codes() {
    let mut cfg = config();
    cfg.control.commands_per_s = 5.0;
    cfg.control.burst = 10;
    let server = start(cfg);
    let (mut c, _) = open(&server, None);
    c.send_control("{oops").unwrap();
    assert_eq!(
        c.await_response(None, WAIT).unwrap()["error"]["code"],
        json!("bad_json")
    );
    c.send_control(r#"{"id": 5}"#).unwrap();
    assert_eq!(
        c.await_response(Some(5), WAIT).unwrap()["error"]["code"],
        json!("bad_request")
    );
    assert_eq!(code(&mut c, "warp", json!({})), "unknown_command");
    c.send_control(&format!(
        r#"{{"id":6,"cmd":"ping","pad":"{}"}}"#,
        "x".repeat(20_000)
    ))
    .unwrap();
    assert_eq!(
        c.await_response(None, WAIT).unwrap()["error"]["code"],
        json!("too_large")
    );
    // Flood: more than the burst at once.
    let mut limited = false;
    for _ in 0..30 {
        let r = c.command("ping", json!({}), WAIT).unwrap();
        if r["error"]["code"] == json!("rate_limited") {
            limited = true;
            break;
        }
    }
    assert!(limited, "a flood of commands is rate-limited");
    server.stop().unwrap();

    let mut cfg = config();
    cfg.ptz.actuator = rtcam::config::ActuatorKind::None;
    let server = start(cfg);
    let (mut c, hello) = open(&server, Some(CONTROL_TOKEN));
    assert_eq!(hello["ptz"], Value::Null);
    ok(&mut c, "control.claim", json!({}));
    assert_eq!(code(&mut c, "ptz.move", json!({"pan": 0.5})), "unsupported");
    server.stop().unwrap();
}

#[test]
fn status_events_arrive_once_a_second() {
    let server = start(config());
    let (mut c, _) = open(&server, None);
    let mut status = Vec::new();
    c.poll_until(WAIT, |e| {
        if let ClientEvent::Control(t) = e
            && let Ok(v) = serde_json::from_str::<Value>(t)
            && v["event"] == json!("status")
        {
            status.push(v);
        }
        status.len() >= 3
    })
    .unwrap();
    let e = &status[2];
    assert!(e["fps"].is_number() && e["bitrate_kbps"].is_number(), "{e}");
    assert_eq!(e["viewers"], json!(1));
    assert!(
        e.get("cpu_load").is_some() && e.get("soc_temp_c").is_some(),
        "{e}"
    );
    server.stop().unwrap();
}

#[test]
fn tokens_decide_who_may_watch_and_steer() {
    let mut cfg = config();
    cfg.auth.view_open = false;
    cfg.auth.view_token = Some(VIEW_TOKEN.into());
    let server = start(cfg);

    match client(&server, None) {
        Err(ClientError::Refused(401, _)) => {}
        other => panic!("expected 401 without a token: {:?}", other.map(|_| ())),
    }
    match client(&server, Some("not-the-right-token-at-all")) {
        Err(ClientError::Refused(401, why)) => assert!(!why.contains("not-the-right")),
        other => panic!("expected 401 for a wrong token: {:?}", other.map(|_| ())),
    }
    let r = get(&server, "/api/status", None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        get(&server, "/snapshot.jpg", Some("wrong-token-0123456789")).status,
        401
    );

    let status: Value =
        serde_json::from_slice(&get(&server, "/api/status", Some(VIEW_TOKEN)).body).unwrap();
    assert_eq!(status["auth_failures"], json!(4));

    let (mut v, hello) = open(&server, Some(VIEW_TOKEN));
    assert_eq!(hello["you"]["role"], json!("view"));
    assert_eq!(code(&mut v, "control.claim", json!({})), "forbidden");
    let (mut c, _) = open(&server, Some(CONTROL_TOKEN));
    ok(&mut c, "control.claim", json!({}));

    // The page and health stay public: the page reads its token from the URL fragment.
    assert_eq!(get(&server, "/", None).status, 200);
    assert_eq!(get(&server, "/healthz", None).status, 200);
    server.stop().unwrap();
}

#[test]
fn a_snapshot_is_a_jpeg_of_the_current_picture() {
    let server = start(config());
    let r = get(&server, "/snapshot.jpg", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(&r.body[..2], &[0xFF, 0xD8]);
    let sof = r
        .body
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    let h = u16::from_be_bytes([r.body[sof + 5], r.body[sof + 6]]);
    let w = u16::from_be_bytes([r.body[sof + 7], r.body[sof + 8]]);
    assert_eq!((w, h), (320, 240));
    server.stop().unwrap();
}
