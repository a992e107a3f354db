//! The rtcam binary as a child process, the way a user runs it: started with arguments, its
//! page URL read from its log, stopped with SIGTERM (then killed) when dropped. Shared by the
//! CLI and browser tests and by `cargo bench`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Generous: the machine is shared and slow at times.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RtcamProcess {
    child: Child,
    /// The page URL rtcam logged (`http://host:port/`).
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
    state_dir: std::path::PathBuf,
}

impl RtcamProcess {
    /// The test pattern on loopback, ports picked by the OS, plus `extra` arguments.
    pub fn start_on_loopback(binary: &str, extra: &[&str]) -> RtcamProcess {
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--rtc-port",
            "0",
            "--source",
            "test",
        ];
        args.extend_from_slice(extra);
        RtcamProcess::start(binary, &args)
    }

    /// Starts `binary` with `args` at RUST_LOG=info and waits for the URL it logs. Its state
    /// (the generated control token) goes to a fresh directory of its own.
    pub fn start(binary: &str, args: &[&str]) -> RtcamProcess {
        RtcamProcess::start_with_env(binary, args, &[])
    }

    /// As `start`, with extra environment variables.
    pub fn start_with_env(binary: &str, args: &[&str], env: &[(&str, &str)]) -> RtcamProcess {
        let state_dir = std::env::temp_dir().join(format!(
            "rtcam-test-state-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&state_dir);
        let mut child = Command::new(binary)
            .args(args)
            .env("RUST_LOG", "info")
            .env("STATE_DIRECTORY", &state_dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rtcam starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let writer = Arc::clone(&log);
        // Keeps draining the log for as long as rtcam runs: a full pipe would stall it.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = page_url(&line) {
                    let _ = tx.send(url);
                }
                if let Ok(mut log) = writer.lock() {
                    log.push(line);
                }
            }
        });
        let mut process = RtcamProcess {
            child,
            url: String::new(),
            log,
            state_dir,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => process.url = url,
            Err(_) => panic!(
                "rtcam did not log its URL within {} s (exit status: {:?}); its log:\n{}",
                START_TIMEOUT.as_secs(),
                process.child.try_wait().ok().flatten(),
                process.log().join("\n")
            ),
        }
        process
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The control token it generated at start (kept in its state directory).
    pub fn control_token(&self) -> String {
        let path = self.state_dir.join("control-token");
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Its log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit. None if it did not exit in time.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for RtcamProcess {
    fn drop(&mut self) {
        if self.terminate().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// `... streaming: open http://127.0.0.1:PORT/ in a browser` → the URL.
pub fn page_url(line: &str) -> Option<String> {
    let start = line.find("open http")? + "open ".len();
    let rest = &line[start..];
    let end = rest.find(" in a browser")?;
    Some(rest[..end].trim().to_string())
}
