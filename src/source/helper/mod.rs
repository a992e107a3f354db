//! A camera behind a helper process: a program built against the system's camera stack
//! (`rpicam-vid`, libcamera's `cam`) writes raw frames of a fixed size to a pipe, and rtcam reads
//! them. rtcam itself stays a static binary that links no C++ library whose ABI changes between
//! distribution releases.
//!
//! A reader thread cuts the pipe into frames (`frames::read_frame`) and turns each into the
//! caller's picture type; the capture thread waits for them with a timeout. Every way a helper
//! can go wrong is an error for the caller (the supervisor then shows "no signal" and starts a
//! new helper), never a panic or a stuck thread: it exits (the error says how, with the last
//! lines it wrote on stderr), it hangs (no frame within the timeout), or it writes something
//! that is not whole frames (the stream ends mid-frame).
//!
//! The helper runs in its own process group, so stopping it also stops anything it started.
//! Frames carry the time they were read from the pipe: these helpers do not pass the sensor's
//! timestamp along with the pixels, and a pipe adds well under a frame interval.

pub(crate) mod frames;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use self::frames::{FrameRead, read_frame};

/// How many of the helper's last stderr lines an error quotes.
const STDERR_LINES: usize = 4;
/// Frames read ahead of the consumer. Small: a slow encoder should see fresh pictures, and a
/// full queue makes the helper wait (it then drops frames itself).
const QUEUE: usize = 2;

/// Turns one raw frame from the pipe into the caller's picture.
pub(crate) type Decode<T> = Box<dyn FnMut(&[u8]) -> Result<T, String> + Send>;

/// One picture and when its last byte was read.
pub(crate) struct HelperFrame<T> {
    pub picture: T,
    pub read_at: Instant,
}

pub(crate) struct HelperProcess<T> {
    child: Child,
    frames: Receiver<Result<HelperFrame<T>, String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// The program's name, for messages.
    name: String,
}

impl<T: Send + 'static> HelperProcess<T> {
    /// Starts `argv` with its stdout as the frame pipe (`frame_len` bytes per frame).
    pub(crate) fn spawn(
        argv: &[String],
        frame_len: usize,
        decode: Decode<T>,
    ) -> Result<HelperProcess<T>, String> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| "no helper program given".to_string())?;
        if frame_len == 0 {
            return Err("frames of 0 bytes".into());
        }
        let name = program.rsplit('/').next().unwrap_or(program).to_string();
        // spawn() reports a missing program itself, except where exec's failure cannot reach
        // the parent (posix_spawn under qemu-user: the child just exits 127); a path is checked
        // first so the error is the same everywhere.
        if program.contains('/') && !std::path::Path::new(program).is_file() {
            return Err(format!("cannot start {program}: no such file"));
        }
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            kill_group(&mut child);
            return Err(format!("{name}: no pipes to the helper"));
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        spawn_stderr_reader(&name, stderr, tail.clone())?;
        let (tx, rx) = sync_channel(QUEUE);
        let reader = std::thread::Builder::new()
            .name(format!("{name}-frames"))
            .spawn(move || read_frames(stdout, frame_len, decode, tx));
        if let Err(e) = reader {
            kill_group(&mut child);
            return Err(format!("{name}: cannot start the frame reader: {e}"));
        }
        Ok(HelperProcess {
            child,
            frames: rx,
            stderr: tail,
            name,
        })
    }

    /// Waits up to `timeout` for the next frame.
    pub(crate) fn next(&mut self, timeout: Duration) -> Result<HelperFrame<T>, String> {
        match self.frames.recv_timeout(timeout) {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(why)) => Err(self.failure(&why)),
            Err(RecvTimeoutError::Disconnected) => Err(self.failure("its output ended")),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "{}: no frame within {:.1} s{}",
                self.name,
                timeout.as_secs_f64(),
                self.stderr_text()
            )),
        }
    }

    /// `why`, with how the helper ended (if it did) and what it said last.
    fn failure(&mut self, why: &str) -> String {
        // The pipe closes as the process exits; give it a moment to be reaped.
        let mut status = None;
        for _ in 0..20 {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let ended = status.map_or_else(|| "still running".to_string(), |s| s.to_string());
        // Let the stderr reader catch up with the last lines.
        std::thread::sleep(Duration::from_millis(20));
        format!("{}: {why} ({ended}){}", self.name, self.stderr_text())
    }

    fn stderr_text(&self) -> String {
        let lines = self.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            let lines: Vec<String> = lines.into_iter().collect();
            format!("; it said: {}", lines.join(" | "))
        }
    }
}

impl<T> Drop for HelperProcess<T> {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Stops the helper and everything it started, and reaps it.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group `spawn` created for
        // this child (process_group(0) makes its pid the group id); no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn read_frames<T>(
    mut stdout: std::process::ChildStdout,
    frame_len: usize,
    mut decode: Decode<T>,
    tx: SyncSender<Result<HelperFrame<T>, String>>,
) {
    let mut buf = vec![0u8; frame_len];
    loop {
        let item = match read_frame(&mut stdout, &mut buf) {
            Ok(FrameRead::Frame) => {
                let read_at = Instant::now();
                decode(&buf).map(|picture| HelperFrame { picture, read_at })
            }
            Ok(FrameRead::End) => return,
            Err(why) => Err(why),
        };
        let failed = item.is_err();
        // The consumer went away (the helper is being stopped): nothing left to do.
        if tx.send(item).is_err() || failed {
            return;
        }
    }
}

fn spawn_stderr_reader(
    name: &str,
    stderr: std::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> Result<(), String> {
    let label = name.to_string();
    std::thread::Builder::new()
        .name(format!("{name}-stderr"))
        .spawn(move || {
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { return };
                let line = String::from_utf8_lossy(&line).trim().to_string();
                if line.is_empty() {
                    continue;
                }
                log::debug!("{label}: {line}");
                if let Ok(mut tail) = tail.lock() {
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        })
        .map(|_| ())
        .map_err(|e| format!("{name}: cannot start the stderr reader: {e}"))
}

#[cfg(test)]
mod tests;
