//! WebRTC stacks this project did not write, as WHEP players of the real server on loopback
//! (tests/interop/): aiortc (Python) offers, decodes, talks on the control channel and leaves;
//! pion (Go: the stack go2rtc, and so Frigate and Home Assistant, and MediaMTX pull WHEP with)
//! plays in go2rtc's shape (audio and video recvonly, candidates in the offer) and restarts ICE
//! by PATCH. Their offers differ from a browser's (aiortc's data channel comes in the legacy
//! `DTLS/SCTP 5000` form; neither trickles), which is what this guards: an upgrade of str0m or
//! a change to the answer that only browsers survive.
//!
//! `tests/run` makes the players: aiortc in tests/interop/.venv (from requirements.txt;
//! `RTCAM_INTEROP_PYTHON` names another interpreter with aiortc), pion-whep in target/interop
//! (tests/interop/pion/build.sh; `RTCAM_INTEROP_PION` names another build).

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use common::{CONTROL_TOKEN, config, start, whep_url};

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RTCAM_INTEROP_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/.venv/bin/python");
    venv.exists().then_some(venv)
}

fn pion() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RTCAM_INTEROP_PION") {
        return Some(PathBuf::from(p));
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop/pion-whep");
    built.exists().then_some(built)
}

/// The player's one-line JSON report (its last line that parses).
fn report_of(out: &std::process::Output, who: &str) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no report from the {who} player: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

#[test]
fn pion_plays_as_go2rtc_does_and_restarts_ice_by_patch() {
    let Some(pion) = pion() else {
        rtcam::bench::skip(
            "no target/interop/pion-whep (tests/run builds it): pion interop not tested",
        );
        return;
    };
    let server = start(config());
    let url = whep_url(&server);

    // go2rtc's shape: audio and video recvonly. The audio is refused with port 0.
    let out = Command::new(&pion)
        .args(["-restart=false", "-units", "30", &url, CONTROL_TOKEN])
        .output()
        .expect("pion-whep runs");
    let report = report_of(&out, "pion");
    assert_eq!(report["ok"], Value::Bool(true), "{report}");
    assert_eq!(report["status"], 201, "{report}");
    assert!(
        report["answer_audio"]
            .as_str()
            .is_some_and(|m| m.starts_with("m=audio 0 ")),
        "{report}"
    );
    assert!(report["units"].as_u64().unwrap_or(0) >= 30, "{report}");
    // The first access unit a viewer gets is an IDR with its parameter sets.
    assert!(report["idrs"].as_u64().unwrap_or(0) >= 1, "{report}");
    assert!(report["sps"].as_u64().unwrap_or(0) >= 1, "{report}");
    assert_eq!(report["delete"], 200, "{report}");
    eprintln!("pion (go2rtc's offer): {report}");

    // An ICE restart by PATCH (video only: pion 3.1 cannot restart with a refused m-line).
    let out = Command::new(&pion)
        .args(["-audio=false", "-units", "30", &url, CONTROL_TOKEN])
        .output()
        .expect("pion-whep runs");
    let report = report_of(&out, "pion");
    assert_eq!(report["ok"], Value::Bool(true), "{report}");
    assert_eq!(report["restart_status"], 200, "{report}");
    assert_eq!(report["etag_changed"], Value::Bool(true), "{report}");
    assert!(
        report["units_after_restart"].as_u64().unwrap_or(0) >= 30,
        "{report}"
    );
    assert_eq!(report["delete"], 200, "{report}");
    eprintln!("pion (ICE restart): {report}");
    server.stop().expect("stops");
}

#[test]
fn aiortc_plays_and_talks_on_the_control_channel() {
    let Some(python) = python() else {
        rtcam::bench::skip(
            "no tests/interop/.venv (tests/run makes it): aiortc interop not tested",
        );
        return;
    };
    let server = start(config());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/aiortc_whep.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([&whep_url(&server), CONTROL_TOKEN, "--frames", "30"])
        .output()
        .expect("python runs");
    let report = report_of(&out, "aiortc");
    assert_eq!(report["ok"], Value::Bool(true), "{report}");
    assert_eq!(report["status"], 201, "{report}");
    assert!(report["frames"].as_u64().unwrap_or(0) >= 30, "{report}");
    assert_eq!(report["size"], serde_json::json!([320, 240]), "{report}");
    assert_eq!(report["ping"]["ok"], Value::Bool(true), "{report}");
    assert_eq!(report["ping"]["result"]["t"], "aiortc", "{report}");
    assert_eq!(report["delete"], 200, "{report}");
    eprintln!("aiortc: {report}");
    server.stop().expect("stops");
}
