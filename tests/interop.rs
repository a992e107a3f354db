//! WebRTC stacks this project did not write, as WHEP players of the real server on loopback:
//! aiortc (Python) offers, decodes, talks on the control channel and leaves (tests/interop/).
//! Their offers differ from a browser's (aiortc's data channel comes in the legacy
//! `DTLS/SCTP 5000` form; it does not trickle), which is what this guards: an upgrade of str0m
//! or a change to the answer that only browsers survive.
//!
//! The players run from the venv `tests/run` makes (tests/interop/.venv, from
//! requirements.txt); `RTCAM_INTEROP_PYTHON` names another interpreter with aiortc.

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
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no report from the aiortc player: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
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
