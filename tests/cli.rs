//! The `rtcam` binary as a user runs it: help, bad options, start, serve, stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rtcam::client::http::{self, Url};

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

/// Starts the binary and returns it with the page URL it logged.
fn run(args: &[&str]) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("rtcam logs the URL to open");
        if let Some(at) = line.find("open http://") {
            let url = line[at + 5..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            break url;
        }
    };
    (child, url, rx)
}

#[test]
fn runs_serves_the_page_and_stops_cleanly_on_sigterm() {
    let (mut child, url, logs) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--rtc-port",
        "0",
        "--source",
        "test",
        "--size",
        "320x240",
    ]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let page = http::request(&Url::parse(&url).unwrap(), "GET", &[], &[]).unwrap();
    assert_eq!(page.status, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.expect("rtcam exits after SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
    let all: Vec<String> = logs.try_iter().collect();
    assert!(all.iter().any(|l| l.contains("stopped")), "{all:?}");
}
