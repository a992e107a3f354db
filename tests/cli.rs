//! The `rtcam` binary as a user runs it: help, bad options, start, serve, stop on SIGTERM.

mod common;

use std::process::Command;

use rtcam::client::http::{self, Url};

use common::process::RtcamProcess;

const BIN: &str = env!("CARGO_BIN_EXE_rtcam");

#[test]
fn help_lists_the_options() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--listen",
        "--rtc-port",
        "--source",
        "--size",
        "--fps",
        "--bitrate",
        "--max-viewers",
    ] {
        assert!(help.contains(opt), "--help mentions {opt}");
    }
}

#[test]
fn bad_options_fail_with_a_message() {
    let out = Command::new(BIN)
        .args(["--size", "123x45"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("123x45"));

    let out = Command::new(BIN)
        .args([
            "--source",
            "/dev/video9",
            "--listen",
            "127.0.0.1:0",
            "--rtc-port",
            "0",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an unusable source is an error, not a silent fallback"
    );
}

#[test]
fn runs_serves_the_page_and_stops_cleanly_on_sigterm() {
    let mut rtcam = RtcamProcess::start_on_loopback(BIN, &["--size", "320x240"]);
    assert!(rtcam.url.starts_with("http://127.0.0.1:"), "{}", rtcam.url);
    let page = http::request(&Url::parse(&rtcam.url).unwrap(), "GET", &[], &[]).unwrap();
    assert_eq!(page.status, 200);

    let status = rtcam.terminate().expect("rtcam exits after SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
    let log = rtcam.log();
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:?}");
}
