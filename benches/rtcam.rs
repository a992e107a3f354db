//! `cargo bench`: the numbers in the README, measured on this machine.
//!
//! Encode cost per frame; then the release binary streaming 1280x720 at 30 fps and
//! 1500 kbit/s on loopback: capture-to-wire, fan-out CPU (1 vs 8 viewers, viewers in another
//! process), peak memory with 4 viewers, and in headless Chromium the time to first frame and
//! glass-to-glass latency. Timings are reported, never asserted.
//!
//! RTCAM_BENCH_SECONDS shortens or lengthens the fan-out runs (default 30 s each).
//! RTCAM_SKIP_BROWSER=1 leaves out the Chromium part (in CI, RTCAM_CI or CI set, that and a
//! failed browser benchmark stop the run instead).
//! Camera formats (conversion per frame, capture+convert+encode CPU per format, with a
//! synthetic camera since CI has none) run first; RTCAM_BENCH_ONLY=camera runs only those,
//! RTCAM_BENCH_CAMERA_SECONDS sets their CPU runs' length (default 10 s each).

#[path = "../tests/common/process.rs"]
mod process;

#[path = "support/camera_formats.rs"]
mod camera_formats;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rtcam::bench::{bench_encode, bench_encode_threads};
use rtcam::client::http::{self, Url};
use serde_json::{Value, json};

use process::RtcamProcess;

const RTCAM: &str = env!("CARGO_BIN_EXE_rtcam");
const CLIENT: &str = env!("CARGO_BIN_EXE_rtcam-client");
const STREAM: [&str; 6] = ["--size", "1280x720", "--fps", "30", "--bitrate", "1500"];

fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported (there is one suite).
    let mut results = serde_json::Map::new();
    machine(&mut results);
    camera_formats::run(&mut results);
    if std::env::var("RTCAM_BENCH_ONLY").is_ok_and(|v| v == "camera") {
        return;
    }

    println!("== encode cost per frame (OpenH264, 1 thread, moving test pattern, 1500 kbit/s)");
    let mut encode = serde_json::Map::new();
    for (w, h) in [(640, 480), (1280, 720), (1920, 1080)] {
        match bench_encode(w, h, 300) {
            Ok(b) => {
                println!("{w}x{h}: {b:?}");
                encode.insert(format!("{w}x{h}"), json!(format!("{b:?}")));
            }
            Err(e) => println!("{w}x{h}: failed: {e}"),
        }
    }
    // Threads cut each picture into slices encoded in parallel (the board presets use this):
    // time per frame and the bitrate the slices cost, same picture and rate control.
    for threads in [2, 4] {
        match bench_encode_threads(1280, 720, 300, threads) {
            Ok(b) => {
                println!("1280x720, {threads} threads: {b:?}");
                encode.insert(format!("1280x720-{threads}t"), json!(format!("{b:?}")));
            }
            Err(e) => println!("1280x720, {threads} threads: failed: {e}"),
        }
    }
    results.insert("encode".into(), Value::Object(encode));

    println!("\n== capture-to-wire (1 viewer, 10 s)");
    let server = Rtcam::start(&STREAM);
    run_client(&server.whep(), 1, 10.0);
    let status = server.status();
    let wire = status["capture_to_wire_ms_p50"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let enc = status["encode_ms_p50"].as_f64().unwrap_or(f64::NAN);
    println!(
        "handed to encoder -> last packet sent, p50: {wire:.2} ms (encode p50 {enc:.2} ms, \
         so {:.2} ms beyond encoding)",
        wire - enc
    );
    results.insert(
        "capture_to_wire".into(),
        json!({"p50_ms": wire, "encode_p50_ms": enc, "beyond_encode_ms": wire - enc}),
    );
    drop(server);

    let seconds: f64 = std::env::var("RTCAM_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30.0);
    println!("\n== fan-out: rtcam CPU with 1 vs 8 viewers ({seconds} s per run, runs alternate)");
    // Alternating runs, medians: this machine is shared and a single run is noisy.
    let mut one = Vec::new();
    let mut eight = Vec::new();
    for _ in 0..2 {
        one.push(fan_out_cpu(1, seconds));
        eight.push(fan_out_cpu(8, seconds));
    }
    let (one, eight) = (median_cpu(&mut one), median_cpu(&mut eight));
    let ratio = eight.total / one.total;
    let per_viewer_ms = (eight.event_loop - one.event_loop) / 7.0 * 1000.0;
    println!(
        "1 viewer: {:.3} CPU-s/s (encoder {:.3}, event loop {:.3}); 8 viewers: {:.3} (encoder \
         {:.3}, event loop {:.3}); ratio {ratio:.3}; each extra viewer {per_viewer_ms:.1} ms CPU/s",
        one.total, one.encoder, one.event_loop, eight.total, eight.encoder, eight.event_loop
    );
    results.insert(
        "fan_out".into(),
        json!({"cpu_1": one.total, "cpu_8": eight.total, "ratio": ratio,
               "loop_1": one.event_loop, "loop_8": eight.event_loop,
               "encoder_1": one.encoder, "encoder_8": eight.encoder,
               "per_viewer_ms_per_s": per_viewer_ms, "seconds": seconds}),
    );

    println!("\n== memory: peak RSS with 4 viewers at 1280x720 (20 s)");
    let server = Rtcam::start(&STREAM);
    run_client(&server.whep(), 4, 20.0);
    let hwm = server.proc_status("VmHWM");
    println!("peak RSS: {:.1} MiB", hwm as f64 / 1024.0);
    results.insert("peak_rss_mib".into(), json!(hwm as f64 / 1024.0));
    drop(server);

    if std::env::var("RTCAM_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        rtcam::bench::skip("browser benchmarks: RTCAM_SKIP_BROWSER=1");
    } else {
        println!("\n== Chromium: time to first frame (20 joins) and glass-to-glass (20 s)");
        let server = Rtcam::start(&STREAM);
        match browser_bench(&server.url) {
            Ok(v) => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                results.insert("browser".into(), v);
            }
            Err(e) if rtcam::bench::skips_fail() => panic!("browser benchmark failed: {e}"),
            Err(e) => println!("browser benchmark failed: {e}"),
        }
    }

    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-results.json");
    let text = serde_json::to_string_pretty(&Value::Object(results)).unwrap_or_default();
    match std::fs::write(&out, text) {
        Ok(()) => println!("\nresults: {}", out.display()),
        Err(e) => println!("\ncannot write {}: {e}", out.display()),
    }
}

fn machine(results: &mut serde_json::Map<String, Value>) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cpu}, {cores} cores");
    results.insert("machine".into(), json!({"cpu": cpu, "cores": cores}));
}

/// The release binary at 1280x720, 30 fps, 1500 kbit/s, stopped when dropped.
struct Rtcam {
    process: RtcamProcess,
    url: String,
}

impl Rtcam {
    fn start(extra: &[&str]) -> Rtcam {
        let process = RtcamProcess::start_on_loopback(RTCAM, extra);
        // Let the encoder settle before measuring.
        std::thread::sleep(Duration::from_secs(1));
        Rtcam {
            url: process.url.clone(),
            process,
        }
    }

    fn whep(&self) -> String {
        format!("{}whep", self.url)
    }

    fn status(&self) -> Value {
        let url = Url::parse(&format!("{}api/status", self.url)).expect("status URL");
        http::request(&url, "GET", &[], &[])
            .ok()
            .and_then(|r| serde_json::from_slice(&r.body).ok())
            .unwrap_or(Value::Null)
    }

    /// User+system CPU seconds used so far, per thread name.
    fn thread_cpu(&self) -> Vec<(String, f64)> {
        let hz = clock_ticks_per_second();
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.process.pid()));
        let mut out = Vec::new();
        for task in tasks.into_iter().flatten().flatten() {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
            // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
            let after = stat.rsplit(')').next().unwrap_or("");
            let fields: Vec<&str> = after.split_whitespace().collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            out.push((name.trim().to_string(), (ticks(11) + ticks(12)) / hz));
        }
        out
    }

    /// A `/proc/<pid>/status` field in kB.
    fn proc_status(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Runs `rtcam-client` (a separate process) with `viewers` non-decoding viewers.
fn spawn_client(whep: &str, viewers: usize, seconds: f64) -> Child {
    Command::new(CLIENT)
        .args([whep, "--no-decode", "--viewers", &viewers.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("rtcam-client starts")
}

fn run_client(whep: &str, viewers: usize, seconds: f64) {
    let out = spawn_client(whep, viewers, seconds)
        .wait_with_output()
        .expect("rtcam-client runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let frames: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["frames"].as_u64().unwrap_or(0))
        .collect();
    println!("  viewers got frames: {frames:?}");
}

/// CPU-seconds per second of wall time.
#[derive(Clone, Copy, Debug)]
struct CpuUse {
    total: f64,
    encoder: f64,
    event_loop: f64,
}

fn median_cpu(runs: &mut [CpuUse]) -> CpuUse {
    runs.sort_by(|a, b| a.total.total_cmp(&b.total));
    runs[runs.len() / 2]
}

/// rtcam's CPU use while `viewers` watch, after they connected.
fn fan_out_cpu(viewers: usize, seconds: f64) -> CpuUse {
    let server = Rtcam::start(&STREAM);
    let warmup = 3.0;
    let mut client = spawn_client(&server.whep(), viewers, warmup + seconds + 2.0);
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let before = server.thread_cpu();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let after = server.thread_cpu();
    let status = server.status();
    let _ = client.wait();
    let used = |name: Option<&str>| {
        let sum = |v: &[(String, f64)]| -> f64 {
            v.iter()
                .filter(|(n, _)| name.is_none_or(|want| n == want))
                .map(|(_, s)| s)
                .sum()
        };
        (sum(&after) - sum(&before)) / seconds
    };
    let cpu = CpuUse {
        total: used(None),
        encoder: used(Some("rtcam-encode")),
        event_loop: used(Some("rtcam-loop")),
    };
    println!(
        "  {viewers} viewer(s): {:.3} CPU-s/s (encoder {:.3}, loop {:.3}); connected {}, fps {}, \
         skipped {}",
        cpu.total,
        cpu.encoder,
        cpu.event_loop,
        status["viewers_connected"],
        status["fps_measured"],
        status["frames_skipped"]
    );
    cpu
}

fn browser_bench(page: &str) -> Result<Value, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("npm: {e}"))?;
        if !ok.success() {
            return Err("npm ci failed".into());
        }
    }
    let out = Command::new("node")
        .arg(dir.join("bench.mjs"))
        .args([page, "--joins", "20", "--seconds", "20"])
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bench.mjs failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no JSON in bench.mjs output: {text}"))
}
