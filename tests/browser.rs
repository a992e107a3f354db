//! A real browser as the viewer: the rtcam binary serves its page to headless Chromium, which
//! connects over WHEP (trickling its candidates by PATCH), decodes the H.264 stream, talks on the
//! control channel, restarts ICE on the same session and reconnects
//! (`tests/browser/page-test.mjs`), and steers the simulated pan/tilt/zoom camera with the
//! page's own controls (`tests/browser/control-test.mjs`). playwright-core drives the system's
//! Chromium. Screenshots are left in `tests/browser/artifacts/`.
//!
//! Needs Chromium, Node.js and npm: `apt-get install chromium nodejs npm`; the test runs
//! `npm ci` in `tests/browser` itself when `node_modules` is missing (`tests/run` installs all
//! of it). `RTCAM_SKIP_BROWSER=1` skips it, except in CI (`RTCAM_CI` or `CI` set), where a skip
//! fails; `CHROMIUM_PATH` points at another Chromium.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::process::{RtcamProcess, page_url};

/// Generous: the machine is shared and slow at times.
const NPM_TIMEOUT: Duration = Duration::from_secs(300);
/// The page tests wait up to 60 s for each of their steps.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);

/// One browser test at a time: each runs rtcam, its encoder and Chromium, and the machine may
/// have two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const INSTALL_HINT: &str = "install with `apt-get install chromium nodejs npm`, then \
     `cd tests/browser && npm ci` (or set RTCAM_SKIP_BROWSER=1 to skip this test)";

/// Kills the child when dropped, so no node outlives a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Runs `program --version`; None when it cannot be started.
fn version_of(program: &str) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Waits for a child with a deadline; kills it on timeout.
fn wait_with_timeout(child: &mut KillOnDrop, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        match child.0.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.0.kill();
                panic!("{what} did not finish within {} s", timeout.as_secs());
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// Installs playwright-core from the lock file unless it is there already.
fn ensure_node_modules(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return;
    }
    if version_of("npm").is_none() {
        panic!("npm is not installed (needed once, to install playwright-core): {INSTALL_HINT}");
    }
    eprintln!("browser test: running `npm ci` in {}", dir.display());
    let mut npm = KillOnDrop(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            // playwright-core downloads nothing itself; this keeps it that way.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run npm: {e}; {INSTALL_HINT}")),
    );
    let status = wait_with_timeout(&mut npm, NPM_TIMEOUT, "npm ci");
    assert!(
        status.success(),
        "`npm ci` in {} failed ({status})",
        dir.display()
    );
}

#[test]
fn log_line_gives_the_page_url() {
    assert_eq!(
        page_url("INFO  rtcam: streaming: open http://127.0.0.1:4321/ in a browser").as_deref(),
        Some("http://127.0.0.1:4321/")
    );
    assert_eq!(page_url("WHEP endpoint: http://127.0.0.1:4321/whep"), None);
}

/// Chromium, Node.js and playwright-core, or None when the test is to be skipped.
fn browser_setup() -> Option<(PathBuf, PathBuf)> {
    if std::env::var("RTCAM_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        rtcam::bench::skip("browser test: RTCAM_SKIP_BROWSER=1");
        return None;
    }
    let chromium = chromium_path();
    assert!(
        chromium.exists(),
        "Chromium not found at {} (CHROMIUM_PATH overrides): {INSTALL_HINT}",
        chromium.display()
    );
    assert!(
        version_of("node").is_some(),
        "Node.js (`node`) is not installed: {INSTALL_HINT}"
    );
    let dir = browser_dir();
    ensure_node_modules(&dir);
    Some((chromium, dir))
}

/// Runs `node <script> <args>` in `dir` and returns the JSON object it printed last, with a
/// report (its output and rtcam's log) for failure messages. Panics with that report when the
/// script fails or says `"ok": false`.
fn run_node(
    chromium: &Path,
    dir: &Path,
    script: &str,
    args: &[&str],
    rtcam: &RtcamProcess,
) -> (Value, String) {
    let mut node = KillOnDrop(
        Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .current_dir(dir)
            .env("CHROMIUM_PATH", chromium)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts"),
    );
    // Read both pipes on threads so neither can fill up and stall node.
    let stdout = node.0.stdout.take().expect("piped stdout");
    let stderr = node.0.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let err_reader = thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let status = wait_with_timeout(&mut node, NODE_TIMEOUT, &format!("node {script}"));
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();

    let report = format!(
        "{script} stdout:\n{}\n{script} stderr:\n{}\nrtcam log:\n{}",
        out.join("\n"),
        err.join("\n"),
        rtcam.log().join("\n")
    );
    let result: Value = out
        .iter()
        .rev()
        .find_map(|line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .filter(Value::is_object)
        })
        .unwrap_or_else(|| panic!("{script} printed no JSON result ({status})\n{report}"));
    assert!(
        status.success() && result["ok"] == Value::Bool(true),
        "{script} failed ({status}): {}\n{report}",
        result["error"]
    );
    (result, report)
}

#[test]
fn page_plays_the_stream_in_headless_chromium() {
    let Some((chromium, dir)) = browser_setup() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rtcam =
        RtcamProcess::start_on_loopback(env!("CARGO_BIN_EXE_rtcam"), &["--size", "640x480"]);
    let url = rtcam.url.clone();
    let (result, report) = run_node(&chromium, &dir, "page-test.mjs", &[&url], &rtcam);

    assert_eq!(result["connected"], Value::Bool(true), "{report}");
    let frames = result["framesDecoded"].as_u64().unwrap_or(0);
    assert!(frames >= 30, "only {frames} frames decoded\n{report}");
    let codec = result["codec"].as_str().unwrap_or("");
    assert!(
        codec.eq_ignore_ascii_case("video/H264"),
        "codec {codec:?}, expected video/H264\n{report}"
    );
    assert!(
        result["pingRtt"].is_number(),
        "no control-channel ping answered: {}\n{report}",
        result["pingRtt"]
    );
    assert!(
        result["stamp"]["seq"].is_number(),
        "no frame stamp read\n{report}"
    );
    let trickled = &result["trickled"];
    assert!(
        trickled["patches"].as_u64() >= Some(1),
        "the page trickled nothing: {trickled}\n{report}"
    );
    let restart = &result["iceRestart"];
    assert!(
        restart["etagAfter"].is_string() && restart["etagAfter"] != restart["etagBefore"],
        "no new ETag after the ICE restart: {restart}\n{report}"
    );
    assert_eq!(
        restart["connectionSeq"], result["connectionSeq"],
        "the ICE restart made a new connection\n{report}"
    );
    let reconnect = &result["reconnect"];
    assert!(
        reconnect["reconnects"].as_u64() >= Some(1)
            && reconnect["framesDecoded"].as_u64() >= Some(10),
        "no frames after reconnecting: {reconnect}\n{report}"
    );
    eprintln!("browser test: {result}");
}

/// A config file in the temp dir, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(text: &str) -> TempConfig {
        let path =
            std::env::temp_dir().join(format!("rtcam-browser-test-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the config file");
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn page_steers_the_simulated_camera() {
    let Some((chromium, dir)) = browser_setup() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The pattern stands still unless steered, so a shifted picture proves the pan.
    let config = TempConfig::new("[video]\ntest_pattern_drift = false\n");
    let config_path = config.0.to_str().expect("temp path is UTF-8");
    let rtcam = RtcamProcess::start_on_loopback(
        env!("CARGO_BIN_EXE_rtcam"),
        &["--config", config_path, "--size", "640x480"],
    );
    let token = rtcam.control_token();
    let url = rtcam.url.clone();
    let (result, report) = run_node(&chromium, &dir, "control-test.mjs", &[&url, &token], &rtcam);

    // control-test.mjs checks all of this itself; restated here so the requirements read in
    // one place.
    assert_eq!(result["viewer"]["claim"], "forbidden", "{report}");
    assert_eq!(result["viewer"]["padMoves"], 0, "{report}");
    let pan = &result["pan"];
    assert!(
        pan["after"].as_f64() > pan["before"].as_f64(),
        "holding pan-right did not pan: {pan}\n{report}"
    );
    assert_eq!(
        pan["after"], pan["settled"],
        "pan moved after the release\n{report}"
    );
    assert!(
        pan["stops"]
            .as_array()
            .and_then(|s| s.last())
            .is_some_and(|r| r == "command"),
        "the release did not stop the camera with ptz.stop: {pan}\n{report}"
    );
    // The shift is found to the pixel in practice; H.264 may blur it by a pixel or two.
    let picture = &result["picture"];
    let (found, expected, width) = (
        picture["found_shift_px"].as_i64().unwrap_or(-1),
        picture["expected_shift_px"].as_i64().unwrap_or(0),
        picture["width"].as_i64().unwrap_or(0),
    );
    let off = (found - expected).rem_euclid(width.max(1));
    assert!(
        expected > 0 && found >= 0 && off.min(width - off) <= 3,
        "the picture did not shift by the panned amount: {picture}\n{report}"
    );
    eprintln!("control test: {result}");
}
