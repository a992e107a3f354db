//! A real browser as the viewer: the rtcam binary serves its page to headless Chromium, which
//! connects over WHEP, decodes the H.264 stream, talks on the control channel and reconnects.
//! The browser side is `tests/browser/page-test.mjs` (playwright-core driving the system's
//! Chromium).
//!
//! Needs Chromium, Node.js and npm: `apt-get install chromium nodejs npm`; the test runs
//! `npm ci` in `tests/browser` itself when `node_modules` is missing. `RTCAM_SKIP_BROWSER=1`
//! skips it; `CHROMIUM_PATH` points at another Chromium.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::process::{RtcamProcess, page_url};

/// Generous: the machine is shared and slow at times.
const NPM_TIMEOUT: Duration = Duration::from_secs(300);
/// The page test waits up to 60 s for each of its steps.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);

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
        page_url(
            "[2025-01-01T00:00:00Z INFO  rtcam] streaming: open http://127.0.0.1:4321/ in a browser"
        )
        .as_deref(),
        Some("http://127.0.0.1:4321/")
    );
    assert_eq!(page_url("WHEP endpoint: http://127.0.0.1:4321/whep"), None);
}

#[test]
fn page_plays_the_stream_in_headless_chromium() {
    if std::env::var("RTCAM_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("browser test skipped: RTCAM_SKIP_BROWSER=1");
        return;
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

    let rtcam =
        RtcamProcess::start_on_loopback(env!("CARGO_BIN_EXE_rtcam"), &["--size", "640x480"]);
    let url = rtcam.url.clone();

    let mut node = KillOnDrop(
        Command::new("node")
            .arg(dir.join("page-test.mjs"))
            .arg(&url)
            .current_dir(&dir)
            .env("CHROMIUM_PATH", &chromium)
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
    let status = wait_with_timeout(
        &mut node,
        NODE_TIMEOUT,
        "the page test (node page-test.mjs)",
    );
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();

    let report = || {
        format!(
            "page test stdout:\n{}\npage test stderr:\n{}\nrtcam log:\n{}",
            out.join("\n"),
            err.join("\n"),
            rtcam.log().join("\n")
        )
    };
    let result: Value = out
        .iter()
        .rev()
        .find_map(|line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .filter(Value::is_object)
        })
        .unwrap_or_else(|| {
            panic!(
                "the page test printed no JSON result ({status})\n{}",
                report()
            )
        });
    assert!(
        status.success() && result["ok"] == Value::Bool(true),
        "the page test failed ({status}): {}\n{}",
        result["error"],
        report()
    );

    assert_eq!(result["connected"], Value::Bool(true), "{}", report());
    let frames = result["framesDecoded"].as_u64().unwrap_or(0);
    assert!(frames >= 30, "only {frames} frames decoded\n{}", report());
    let codec = result["codec"].as_str().unwrap_or("");
    assert!(
        codec.eq_ignore_ascii_case("video/H264"),
        "codec {codec:?}, expected video/H264\n{}",
        report()
    );
    assert!(
        result["pingRtt"].is_number(),
        "no control-channel ping answered: {}\n{}",
        result["pingRtt"],
        report()
    );
    assert!(
        result["stamp"]["seq"].is_number(),
        "no frame stamp read\n{}",
        report()
    );
    let reconnect = &result["reconnect"];
    assert!(
        reconnect["reconnects"].as_u64() >= Some(1)
            && reconnect["framesDecoded"].as_u64() >= Some(10),
        "no frames after reconnecting: {reconnect}\n{}",
        report()
    );
    eprintln!("browser test: {result}");
}
