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
fn version_and_usage_errors() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("rtcam {}\n", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        &["--fps", "0"][..],
        &["--no-such-flag"],
        &["devices", "--jsn"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: bad usage exits 2");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.contains("--help"),
            "{err}"
        );
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

    let state = std::env::temp_dir().join(format!("rtcam-cli-state-{}", std::process::id()));
    // A device that is not there is waited for (hot-plug, tests/camera.rs); one that is there
    // but is no camera is an error. `timeout` keeps a regression from hanging the suite.
    let out = Command::new("timeout")
        .env("STATE_DIRECTORY", &state)
        .args([
            "20",
            BIN,
            "--source",
            "/dev/null",
            "--listen",
            "127.0.0.1:0",
            "--rtc-port",
            "0",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&state);
    assert!(
        out.status.code() == Some(1),
        "a device that cannot stream is an error, not a silent fallback: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
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

#[test]
fn print_config_shows_the_effective_settings() {
    let out = Command::new(BIN)
        .args([
            "--config",
            "/dev/null",
            "--board",
            "generic-usb",
            "--fps",
            "12",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[video]") && text.contains("fps = 12"),
        "{text}"
    );
    assert!(text.contains("listen = \"[::]:8080\""), "{text}");
}

#[test]
fn a_bad_config_file_stops_rtcam_with_the_line_and_key() {
    let dir = std::env::temp_dir().join(format!("rtcam-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rtcam.toml");
    std::fs::write(
        &path,
        "[server]\nmax_viewers = 4\n\n[video]\nframerate = 30\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config", path.to_str().unwrap(), "--print-config"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rtcam.toml:5") && err.contains("framerate"),
        "{err}"
    );
}

#[test]
fn the_packaged_config_is_valid_and_picks_the_board() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/rtcam.toml");
    let out = Command::new(BIN)
        .args(["--config", path, "--print-config"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    // `auto` is resolved to a preset (generic-usb on a machine without a device tree).
    let board = rtcam::shell::cli::detect_board().0;
    assert!(
        text.starts_with(&format!("board = \"{board}\"\n")),
        "{text}"
    );
}
