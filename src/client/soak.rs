//! `rtcam-client --cycles N --rtcam-pid PID`: the soak benchmark (`benches/soak`). N WHEP
//! join/leave cycles against a running rtcam, one after another: POST an offer, get connected
//! and one decoded picture, DELETE the resource. Reports failures, time per cycle and what the
//! rtcam process holds (resident memory, open files, threads, from /proc) before, after a
//! warm-up and at the end: a leak per viewer shows as growth over a thousand of them.

use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::{ClientEvent, ClientOptions, WhepClient, bearer_headers};

pub struct SoakOptions {
    pub url: String,
    pub token: Option<String>,
    pub cycles: usize,
    /// The rtcam process to watch; None: no process figures.
    pub pid: Option<u32>,
    /// Cycles before the "warm" reading: the first viewers grow buffers and pools that later
    /// ones reuse, which is not a leak.
    pub warmup: usize,
    /// Time limit for one cycle.
    pub cycle_timeout: Duration,
}

/// What a process holds, from /proc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProcStats {
    pub rss_kib: u64,
    pub fds: usize,
    pub threads: u64,
}

/// Reads `VmRSS` and `Threads` from /proc/PID/status and counts /proc/PID/fd.
pub fn proc_stats(pid: u32) -> io::Result<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    parse_status(&status, fds).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS or Threads"),
        )
    })
}

fn parse_status(status: &str, fds: usize) -> Option<ProcStats> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(ProcStats {
        rss_kib: field("VmRSS:")?,
        fds,
        threads: field("Threads:")?,
    })
}

/// One join/leave cycle: Ok with its duration, Err with what went wrong.
fn cycle(o: &SoakOptions) -> Result<Duration, String> {
    let started = Instant::now();
    let options = ClientOptions {
        headers: bearer_headers(o.token.as_deref()),
        // Like a browser viewer: the control channel is part of every join.
        ..ClientOptions::default()
    };
    let mut client = WhepClient::connect(&o.url, options).map_err(|e| format!("POST: {e}"))?;
    let mut connected = false;
    let seen = client.poll_until(o.cycle_timeout, |e| match e {
        ClientEvent::Connected => {
            connected = true;
            false
        }
        ClientEvent::Frame(f) => f.picture.is_some(),
        ClientEvent::Disconnected => true,
        _ => false,
    });
    let outcome = match seen {
        Ok(events) if events.last() == Some(&ClientEvent::Disconnected) => {
            Err("disconnected before a picture".to_string())
        }
        Ok(_) if !connected => Err("a picture without Connected".to_string()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("no decoded picture: {e}")),
    };
    // DELETE whatever happened, so one failure does not leave a viewer behind.
    let deleted = client.delete();
    outcome?;
    match deleted {
        Ok(200) => Ok(started.elapsed()),
        Ok(status) => Err(format!("DELETE answered {status}")),
        Err(e) => Err(format!("DELETE: {e}")),
    }
}

/// Runs the cycles; the report is one JSON object. Progress goes to stderr every 100 cycles.
pub fn run(o: &SoakOptions) -> Value {
    let stats = || o.pid.map(|p| proc_stats(p).map_err(|e| e.to_string()));
    let start_stats = stats();
    let mut warm_stats = None;
    let started = Instant::now();
    let mut times = Vec::with_capacity(o.cycles);
    let mut failures = 0usize;
    let mut first_errors: Vec<String> = Vec::new();
    for i in 0..o.cycles {
        if i == o.warmup {
            warm_stats = stats();
        }
        match cycle(o) {
            Ok(t) => times.push(t.as_secs_f64()),
            Err(e) => {
                failures += 1;
                if first_errors.len() < 5 {
                    first_errors.push(format!("cycle {i}: {e}"));
                }
            }
        }
        if (i + 1) % 100 == 0 {
            eprintln!(
                "soak: {} cycles, {failures} failed, {:.1} s, rtcam {}",
                i + 1,
                started.elapsed().as_secs_f64(),
                stats().map_or("-".into(), |s| format!("{s:?}"))
            );
        }
    }
    let total = started.elapsed().as_secs_f64();
    // A moment for the last viewer's teardown, so the end reading is not mid-cleanup.
    std::thread::sleep(Duration::from_secs(1));
    let end_stats = stats();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        (!times.is_empty()).then(|| {
            let t = times[((times.len() - 1) as f64 * p).round() as usize];
            (t * 10_000.0).round() / 10.0
        })
    };
    let show = |s: &Option<Result<ProcStats, String>>| match s {
        None => Value::Null,
        Some(Ok(s)) => json!(s),
        Some(Err(e)) => json!({ "error": e }),
    };
    json!({
        "cycles": o.cycles,
        "failures": failures,
        "first_errors": first_errors,
        "seconds": (total * 10.0).round() / 10.0,
        "cycle_ms_mean": (!times.is_empty())
            .then(|| (times.iter().sum::<f64>() / times.len() as f64 * 10_000.0).round() / 10.0),
        "cycle_ms_p50": pct(0.5),
        "cycle_ms_p95": pct(0.95),
        "cycle_ms_max": pct(1.0),
        "rtcam_start": show(&start_stats),
        "rtcam_after_warmup": show(&warm_stats),
        "warmup_cycles": o.warmup.min(o.cycles),
        "rtcam_end": show(&end_stats),
    })
}

/// `run`'s report in a few lines for people.
pub fn summary(r: &Value) -> String {
    let mut out = format!(
        "failures: {} of {} cycles; per cycle: mean {} ms, p50 {}, p95 {}, max {} ms",
        r["failures"],
        r["cycles"],
        r["cycle_ms_mean"],
        r["cycle_ms_p50"],
        r["cycle_ms_p95"],
        r["cycle_ms_max"]
    );
    for (name, key) in [
        ("RSS KiB", "rss_kib"),
        ("fds", "fds"),
        ("threads", "threads"),
    ] {
        let at = |k: &str| r[k][key].as_i64();
        let (start, warm, end) = (at("rtcam_start"), at("rtcam_after_warmup"), at("rtcam_end"));
        let show = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        let drift = warm
            .zip(end)
            .map_or("-".to_string(), |(w, e)| format!("{:+}", e - w));
        out.push_str(&format!(
            "\n{name}: start {}, after {} warm-up cycles {}, end {} (after warm-up: {drift})",
            show(start),
            r["warmup_cycles"],
            show(warm),
            show(end)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_is_read() {
        let status = "Name:\trtcam\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t7\n";
        assert_eq!(
            parse_status(status, 9),
            Some(ProcStats {
                rss_kib: 12345,
                fds: 9,
                threads: 7
            })
        );
        assert_eq!(parse_status("Name:\tzombie\nThreads:\t1\n", 0), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let s = proc_stats(std::process::id()).expect("our own /proc entry");
        assert!(s.rss_kib > 0 && s.fds >= 3 && s.threads >= 1, "{s:?}");
    }
}
