//! `rtcam-client`: N WHEP viewers in one process, for load, benchmarks and smoke tests.
//! Prints one JSON line per viewer when done; exits non-zero if a viewer got no frames.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use rtcam::client::expect::{self, Expect, ExpectOptions};
use rtcam::client::{ClientEvent, ClientOptions, WhepClient};
use serde_json::json;

#[derive(Parser)]
#[command(name = "rtcam-client", about = "WHEP test viewer(s) for rtcam")]
struct Args {
    /// WHEP endpoint.
    #[arg(default_value = "http://127.0.0.1:8080/whep")]
    url: String,
    /// Viewers to run at once.
    #[arg(long, default_value_t = 1)]
    viewers: usize,
    /// How long to watch.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Don't decode (cheap viewers for load tests).
    #[arg(long)]
    no_decode: bool,
    /// Instead of statistics: check that the pictures are camera frames (vivid's colour bars,
    /// no test-pattern stamp, changing) or rtcam's "no signal" placeholder; exit non-zero if
    /// not. One viewer; --seconds is the time limit.
    #[arg(long, value_name = "camera|no-signal")]
    expect: Option<String>,
    /// Pictures to judge with --expect.
    #[arg(long, default_value_t = 12)]
    pictures: usize,
    /// With --expect: first wait until /api/status says this camera_state.
    #[arg(long, value_name = "STATE")]
    wait_state: Option<String>,
    /// With --expect: claim control, set this camera control, check it reads back.
    #[arg(long, value_name = "NAME=VALUE")]
    set_control: Option<String>,
    /// Bearer token (a control token for --set-control).
    #[arg(long)]
    token: Option<String>,
    /// Stop watching (and report) as soon as this file exists, for scripts that cannot know
    /// the duration in advance.
    #[arg(long, value_name = "PATH")]
    stop_file: Option<std::path::PathBuf>,
}

fn expect_mode(args: &Args, expect: &str) -> ExitCode {
    let expect = match expect {
        "camera" => Expect::Camera,
        "no-signal" => Expect::NoSignal,
        other => {
            eprintln!("rtcam-client: --expect {other}: expected camera or no-signal");
            return ExitCode::from(2);
        }
    };
    let set_control = match args.set_control.as_deref().map(|s| s.split_once('=')) {
        None => None,
        Some(Some((name, value))) => match value.trim().parse() {
            Ok(v) => Some((name.trim().to_string(), v)),
            Err(_) => {
                eprintln!("rtcam-client: --set-control {name}={value}: not a whole number");
                return ExitCode::from(2);
            }
        },
        Some(None) => {
            eprintln!("rtcam-client: --set-control: expected NAME=VALUE");
            return ExitCode::from(2);
        }
    };
    let options = ExpectOptions {
        url: args.url.clone(),
        token: args.token.clone(),
        expect,
        pictures: args.pictures,
        timeout: Duration::from_secs_f64(args.seconds.max(1.0)),
        wait_state: args.wait_state.clone(),
        set_control,
    };
    match expect::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{}", json!({"check": "result", "ok": false, "error": e}));
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(expect) = &args.expect {
        return expect_mode(&args, expect);
    }
    let duration = Duration::from_secs_f64(args.seconds.max(0.1));
    let handles: Vec<_> = (0..args.viewers)
        .map(|i| {
            let url = args.url.clone();
            let decode = !args.no_decode;
            let stop_file = args.stop_file.clone();
            std::thread::spawn(move || watch(i, &url, decode, duration, stop_file))
        })
        .collect();
    let mut ok = true;
    for h in handles {
        let report = h
            .join()
            .unwrap_or_else(|_| json!({"error": "viewer thread panicked"}));
        ok &= report["frames"].as_u64().unwrap_or(0) > 0;
        println!("{report}");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn watch(
    index: usize,
    url: &str,
    decode: bool,
    duration: Duration,
    stop_file: Option<std::path::PathBuf>,
) -> serde_json::Value {
    let posted = Instant::now();
    let options = ClientOptions {
        decode,
        ..ClientOptions::default()
    };
    let mut client = match WhepClient::connect(url, options) {
        Ok(c) => c,
        Err(e) => return json!({"viewer": index, "error": e.to_string()}),
    };
    let (mut frames, mut keyframes, mut decoded, mut stamped, mut bytes) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut first_frame_ms = None;
    let mut latencies_ms = Vec::new();
    let end = posted + duration;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if stop_file.as_ref().is_some_and(|f| f.exists()) {
            break;
        }
        let left = left.min(Duration::from_millis(500));
        match client.poll(left) {
            Ok(Some(ClientEvent::Frame(f))) => {
                frames += 1;
                bytes += f.bytes as u64;
                keyframes += f.keyframe as u64;
                first_frame_ms.get_or_insert(posted.elapsed().as_secs_f64() * 1000.0);
                if let Some(p) = f.picture {
                    decoded += 1;
                    if let Some(s) = p.stamp {
                        stamped += 1;
                        let now_us = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_micros() as u64);
                        latencies_ms.push(now_us.saturating_sub(s.capture_us) as f64 / 1000.0);
                    }
                }
            }
            Ok(Some(ClientEvent::Disconnected)) => break,
            Ok(_) => {}
            Err(e) => return json!({"viewer": index, "error": e.to_string(), "frames": frames}),
        }
    }
    let _ = client.delete();
    latencies_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        (!latencies_ms.is_empty())
            .then(|| latencies_ms[((latencies_ms.len() - 1) as f64 * p).round() as usize])
    };
    json!({
        "viewer": index,
        "frames": frames,
        "keyframes": keyframes,
        "decoded": decoded,
        "stamped": stamped,
        "decode_errors": client.decode_errors,
        "bytes": bytes,
        "first_frame_ms": first_frame_ms,
        "capture_to_decode_ms_p50": pct(0.5),
        "capture_to_decode_ms_p95": pct(0.95),
    })
}
