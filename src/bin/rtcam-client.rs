//! `rtcam-client`: N WHEP viewers in one process, for load, benchmarks and smoke tests.
//! Prints one JSON line per viewer when done; exits non-zero if a viewer got no frames.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let duration = Duration::from_secs_f64(args.seconds.max(0.1));
    let handles: Vec<_> = (0..args.viewers)
        .map(|i| {
            let url = args.url.clone();
            let decode = !args.no_decode;
            std::thread::spawn(move || watch(i, &url, decode, duration))
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

fn watch(index: usize, url: &str, decode: bool, duration: Duration) -> serde_json::Value {
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
