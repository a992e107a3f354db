//! The binary under systemd's notify protocol, against a test socket standing in for systemd:
//! READY=1 once it serves, WATCHDOG=1 from the running loop, STOPPING=1 on SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rtcam::client::http::{self, Url};

use common::process::RtcamProcess;

const BIN: &str = env!("CARGO_BIN_EXE_rtcam");
/// A small test pattern on loopback, ports picked by the OS, no config file.
const ARGS: &[&str] = &[
    "--listen",
    "127.0.0.1:0",
    "--rtc-port",
    "0",
    "--source",
    "test",
    "--size",
    "160x120",
    "--config",
    "/dev/null",
];

/// A stand-in for systemd's notify socket in a fresh folder.
struct FakeSystemd {
    socket: UnixDatagram,
    dir: PathBuf,
}

impl FakeSystemd {
    /// `name` keeps tests that run at once apart.
    fn new(name: &str) -> FakeSystemd {
        let dir =
            std::env::temp_dir().join(format!("rtcam-notify-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = UnixDatagram::bind(dir.join("notify")).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        FakeSystemd { socket, dir }
    }

    fn path(&self) -> String {
        self.dir.join("notify").to_str().unwrap().to_string()
    }

    /// Messages until `done` says stop, or None after a generous wait.
    fn until(&self, mut done: impl FnMut(&str) -> bool) -> Option<Vec<String>> {
        let deadline = Instant::now() + common::WAIT;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                let stop = done(&message);
                seen.push(message);
                if stop {
                    return Some(seen);
                }
            }
        }
        None
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn ready_once_serving_watchdog_while_running_stopping_on_sigterm() {
    let systemd = FakeSystemd::new("ready");
    let path = systemd.path();
    let mut rtcam = RtcamProcess::start_with_env(
        BIN,
        ARGS,
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "600000")],
    );

    let seen = systemd
        .until(|m| m.starts_with("READY=1"))
        .expect("READY=1 arrives");
    let ready = seen.last().unwrap();
    // The status names the page; the listener answers at once, so READY came after it was up.
    let url = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=streaming on "))
        .unwrap_or_else(|| panic!("no status in {ready:?}"));
    assert_eq!(url, rtcam.url);
    let health = Url::parse(&format!("{url}healthz")).unwrap();
    let reply = http::request(&health, "GET", &[], &[]).expect("the listener answers");
    assert!(matches!(reply.status, 200 | 503), "{}", reply.status);

    // The loop keeps pinging: two more after READY (0.3 s apart, but only their arrival counts).
    let mut pings = 0;
    systemd
        .until(|m| {
            pings += usize::from(m == "WATCHDOG=1");
            pings >= 2
        })
        .expect("WATCHDOG=1 keeps coming");

    assert!(rtcam.terminate().is_some_and(|s| s.success()));
    systemd
        .until(|m| m == "STOPPING=1")
        .expect("STOPPING=1 on SIGTERM");
}

#[test]
fn no_watchdog_pings_for_another_process() {
    // WATCHDOG_PID names someone else (the variables were inherited): READY=1 still, no pings.
    let systemd = FakeSystemd::new("pid");
    let path = systemd.path();
    let mut rtcam = RtcamProcess::start_with_env(
        BIN,
        ARGS,
        &[
            ("NOTIFY_SOCKET", &path),
            ("WATCHDOG_USEC", "200000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    systemd
        .until(|m| m.starts_with("READY=1"))
        .expect("READY=1 arrives");
    // An HTTP answer means the loop's executor has run, and the watchdog task, were there one,
    // is spawned on it before the HTTP server: its first ping would be out by now.
    let health = Url::parse(&format!("{}healthz", rtcam.url)).unwrap();
    http::request(&health, "GET", &[], &[]).expect("the listener answers");
    assert!(rtcam.terminate().is_some_and(|s| s.success()));
    let seen = systemd
        .until(|m| m == "STOPPING=1")
        .expect("STOPPING=1 on SIGTERM");
    assert!(!seen.iter().any(|m| m == "WATCHDOG=1"), "{seen:?}");
}
