//! `rtcam-client`: N WHEP viewers in one process, for load, benchmarks and smoke tests.
//! Prints one JSON line per viewer when done; exits non-zero if a viewer got no frames or was
//! disconnected before the end. Other modes: `--expect` (what the pictures show),
//! `--expect-sequence` (one viewer through a fault) and `--cycles` (the soak benchmark).

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtcam::client::expect::{self, Expect, ExpectOptions};
use rtcam::client::follow::{self, FollowOptions};
use rtcam::client::soak::{self, SoakOptions};
use rtcam::client::timeline::Timeline;
use rtcam::client::{ClientEvent, ClientOptions, WhepClient, bearer_headers};
use rtcam::shell::args::{self, Arg, Parser, UsageError};
use serde_json::json;

const USAGE: &str = "Usage: rtcam-client [OPTIONS] [URL]";
const DEFAULT_URL: &str = "http://127.0.0.1:8080/whep";
const HELP_OPTIONS: &[(&str, &str)] = &[
    ("--viewers <VIEWERS>", "Viewers to run at once [default: 1]"),
    ("--seconds <SECONDS>", "How long to watch [default: 10]"),
    ("--no-decode", "Don't decode (cheap viewers for load tests)"),
    (
        "--expect <camera|no-signal>",
        "Instead of statistics: check that the pictures are camera frames (vivid's colour \
         bars, no test-pattern stamp, changing) or rtcam's \"no signal\" placeholder; exit \
         non-zero if not. One viewer; --seconds is the time limit",
    ),
    (
        "--expect-sequence <KIND,KIND,...>",
        "One viewer, one connection, through a fault: the pictures must show these kinds \
         (camera, no-signal) in this order, each for --pictures pictures, with no disconnect \
         and an IDR first after every no-signal phase. Prints a line as each phase is reached, \
         then the verdict with the timeline; exits non-zero if any of it fails. --seconds is \
         the time limit",
    ),
    (
        "--pictures <PICTURES>",
        "Pictures to judge with --expect, or per phase of --expect-sequence [default: 12]",
    ),
    (
        "--cycles <N>",
        "Soak: N join/leave cycles one after another (POST, connected and one decoded \
         picture, DELETE); reports failures, time per cycle and, with --rtcam-pid, the rtcam \
         process's memory, open files and threads at the start, after --warmup cycles and at \
         the end. --seconds is the time limit of one cycle. Exits non-zero if a cycle failed",
    ),
    (
        "--rtcam-pid <PID>",
        "With --cycles: the rtcam process to read from /proc",
    ),
    (
        "--warmup <N>",
        "With --cycles: cycles before the warm reading [default: 20]",
    ),
    (
        "--wait-state <STATE>",
        "With --expect: first wait until /api/status says this camera_state",
    ),
    (
        "--set-control <NAME=VALUE>",
        "With --expect: claim control, set this camera control, check it reads back",
    ),
    (
        "--token <TOKEN>",
        "Bearer token, sent with every request (POST, DELETE, status); a control token for \
         --set-control",
    ),
    (
        "--stop-file <PATH>",
        "Stop watching (and report) as soon as this file exists, for scripts that cannot know \
         the duration in advance",
    ),
    (
        "--timeline",
        "Add each viewer's frame-by-frame record to its JSON line: `start_unix_ms` (when the \
         offer was posted) and `timeline` (arrival ms since then, bytes, keyframe, contiguous, \
         decoded, width, height of every frame)",
    ),
    (
        "--trickle",
        "Offer without candidates and send them by WHEP PATCH (trickle ICE), as browsers do",
    ),
    (
        "--follow-network",
        "When the local address towards the server changes (a network switch), restart ICE \
         by WHEP PATCH instead of losing the stream; the report lists the restarts",
    ),
    ("-h, --help", "Print help"),
];

struct Args {
    /// WHEP endpoint.
    url: String,
    /// Viewers to run at once.
    viewers: usize,
    /// How long to watch.
    seconds: f64,
    /// Don't decode (cheap viewers for load tests).
    no_decode: bool,
    /// Instead of statistics: check that the pictures are camera frames or rtcam's "no
    /// signal" placeholder. One viewer; --seconds is the time limit.
    expect: Option<String>,
    /// Kinds of picture one viewer must see in order (--expect-sequence).
    expect_sequence: Option<String>,
    /// Pictures to judge with --expect, or per phase of --expect-sequence.
    pictures: usize,
    /// Soak: join/leave cycles.
    cycles: Option<usize>,
    /// With --cycles: the rtcam process to read from /proc.
    rtcam_pid: Option<u32>,
    /// With --cycles: cycles before the warm reading.
    warmup: usize,
    /// With --expect: first wait until /api/status says this camera_state.
    wait_state: Option<String>,
    /// With --expect: claim control, set this camera control, check it reads back.
    set_control: Option<String>,
    /// Bearer token (a control token for --set-control).
    token: Option<String>,
    /// Stop watching (and report) as soon as this file exists.
    stop_file: Option<std::path::PathBuf>,
    /// Add every frame's arrival, size and decoding to the report.
    timeline: bool,
    follow_network: bool,
    trickle: bool,
}

/// Why there are no `Args`: the help was asked for, or the command line is bad.
enum ArgsExit {
    Help,
    Usage(UsageError),
}

impl From<UsageError> for ArgsExit {
    fn from(e: UsageError) -> ArgsExit {
        ArgsExit::Usage(e)
    }
}

impl Args {
    fn parse(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Args, ArgsExit> {
        let mut parsed = Args {
            url: DEFAULT_URL.into(),
            viewers: 1,
            seconds: 10.0,
            no_decode: false,
            expect: None,
            expect_sequence: None,
            pictures: 12,
            cycles: None,
            rtcam_pid: None,
            warmup: 20,
            wait_state: None,
            set_control: None,
            token: None,
            stop_file: None,
            timeline: false,
            follow_network: false,
            trickle: false,
        };
        let mut url = None;
        let mut p = Parser::new(argv);
        while let Some(arg) = p.next_arg()? {
            let name = match arg {
                Arg::Positional(value) if url.is_none() => {
                    url = Some(value.into_string().map_err(|v| {
                        args::invalid(&v.to_string_lossy(), "[URL]", "not valid UTF-8")
                    })?);
                    continue;
                }
                Arg::Positional(_) => return Err(args::unexpected(&arg).into()),
                Arg::Long(name) => name,
            };
            match name.as_str() {
                "help" => return Err(ArgsExit::Help),
                "viewers" => parsed.viewers = p.parse("--viewers <VIEWERS>")?,
                "seconds" => parsed.seconds = p.parse("--seconds <SECONDS>")?,
                "no-decode" => parsed.no_decode = true,
                "expect" => parsed.expect = Some(p.string("--expect <camera|no-signal>")?),
                "expect-sequence" => {
                    parsed.expect_sequence = Some(p.string("--expect-sequence <KIND,KIND,...>")?);
                }
                "pictures" => parsed.pictures = p.parse("--pictures <PICTURES>")?,
                "cycles" => parsed.cycles = Some(p.parse("--cycles <N>")?),
                "rtcam-pid" => parsed.rtcam_pid = Some(p.parse("--rtcam-pid <PID>")?),
                "warmup" => parsed.warmup = p.parse("--warmup <N>")?,
                "wait-state" => parsed.wait_state = Some(p.string("--wait-state <STATE>")?),
                "set-control" => {
                    parsed.set_control = Some(p.string("--set-control <NAME=VALUE>")?);
                }
                "token" => parsed.token = Some(p.string("--token <TOKEN>")?),
                "stop-file" => parsed.stop_file = Some(p.value("--stop-file <PATH>")?.into()),
                "timeline" => parsed.timeline = true,
                "follow-network" => parsed.follow_network = true,
                "trickle" => parsed.trickle = true,
                _ => return Err(args::unexpected(&Arg::Long(name)).into()),
            }
        }
        if let Some(url) = url {
            parsed.url = url;
        }
        Ok(parsed)
    }
}

fn help() -> String {
    format!(
        "WHEP test viewer(s) for rtcam\n\n{USAGE}\n\nArguments:\n  [URL]  WHEP endpoint \
         [default: {DEFAULT_URL}]\n\nOptions:\n{}",
        args::option_lines(HELP_OPTIONS)
    )
}

fn parse_expect(option: &str, kind: &str) -> Result<Expect, ExitCode> {
    match kind.trim() {
        "camera" => Ok(Expect::Camera),
        "no-signal" => Ok(Expect::NoSignal),
        other => {
            eprintln!("rtcam-client: {option} {other}: expected camera or no-signal");
            Err(ExitCode::from(2))
        }
    }
}

fn sequence_mode(args: &Args, sequence: &str) -> ExitCode {
    let phases: Result<Vec<Expect>, ExitCode> = sequence
        .split(',')
        .map(|k| parse_expect("--expect-sequence", k))
        .collect();
    let phases = match phases {
        Ok(p) => p,
        Err(code) => return code,
    };
    let options = FollowOptions {
        url: args.url.clone(),
        token: args.token.clone(),
        phases,
        pictures: args.pictures,
        timeout: Duration::from_secs_f64(args.seconds.max(1.0)),
    };
    match follow::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn soak_mode(args: &Args, cycles: usize) -> ExitCode {
    let options = SoakOptions {
        url: args.url.clone(),
        token: args.token.clone(),
        cycles,
        pid: args.rtcam_pid,
        warmup: args.warmup,
        cycle_timeout: Duration::from_secs_f64(args.seconds.max(1.0)),
    };
    let report = soak::run(&options);
    println!("{report}");
    eprintln!("{}", soak::summary(&report));
    if report["failures"].as_u64() == Some(0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn expect_mode(args: &Args, expect: &str) -> ExitCode {
    let expect = match parse_expect("--expect", expect) {
        Ok(e) => e,
        Err(code) => return code,
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
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(ArgsExit::Help) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Err(ArgsExit::Usage(e)) => {
            args::print_usage_error(&e, USAGE);
            return ExitCode::from(args::USAGE_EXIT);
        }
    };
    if let Some(expect) = &args.expect {
        return expect_mode(&args, expect);
    }
    if let Some(sequence) = &args.expect_sequence {
        return sequence_mode(&args, sequence);
    }
    if let Some(cycles) = args.cycles {
        // --seconds: the time limit of one cycle here.
        return soak_mode(&args, cycles);
    }
    let duration = Duration::from_secs_f64(args.seconds.max(0.1));
    let handles: Vec<_> = (0..args.viewers)
        .map(|i| {
            let url = args.url.clone();
            let watching = Watching {
                decode: !args.no_decode,
                duration,
                stop_file: args.stop_file.clone(),
                timeline: args.timeline,
                follow_network: args.follow_network,
                trickle: args.trickle,
                headers: bearer_headers(args.token.as_deref()),
            };
            std::thread::spawn(move || watch(i, &url, watching))
        })
        .collect();
    let mut ok = true;
    for h in handles {
        let report = h
            .join()
            .unwrap_or_else(|_| json!({"error": "viewer thread panicked"}));
        // A viewer that dropped out early did not watch for the time asked: a failure, even
        // with frames from before the drop.
        ok &= report["frames"].as_u64().unwrap_or(0) > 0
            && report["disconnected"] == json!(false)
            && report.get("error").is_none();
        println!("{report}");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// How one viewer watches.
struct Watching {
    decode: bool,
    duration: Duration,
    stop_file: Option<std::path::PathBuf>,
    timeline: bool,
    follow_network: bool,
    trickle: bool,
    /// Sent with the POST and the DELETE (--token).
    headers: Vec<(String, String)>,
}

fn watch(index: usize, url: &str, watching: Watching) -> serde_json::Value {
    let Watching {
        decode,
        duration,
        stop_file,
        timeline,
        follow_network,
        trickle,
        headers,
    } = watching;
    let posted = Instant::now();
    let posted_unix_ms = unix_us() / 1000;
    let mut timeline = timeline.then(|| Timeline::new(posted));
    let options = ClientOptions {
        decode,
        trickle,
        headers,
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
    let mut disconnected = false;
    let end = posted + duration;
    // When the network changed and ICE restarted (ms since the offer was posted), or failed.
    let mut restarts_ms = Vec::new();
    let mut restart_errors = Vec::new();
    let mut network_checked = posted;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if stop_file.as_ref().is_some_and(|f| f.exists()) {
            break;
        }
        // As a phone's OS reports a network change: checked five times a second.
        if follow_network && network_checked.elapsed() >= Duration::from_millis(200) && {
            network_checked = Instant::now();
            client.network_changed()
        } {
            let at = posted.elapsed().as_millis() as u64;
            match client.restart_ice() {
                Ok(()) => restarts_ms.push(at),
                Err(e) => restart_errors.push(format!("{at} ms: {e}")),
            }
        }
        let poll_for = if follow_network { 200 } else { 500 };
        let left = left.min(Duration::from_millis(poll_for));
        match client.poll(left) {
            Ok(Some(ClientEvent::Frame(f))) => {
                if let Some(t) = timeline.as_mut() {
                    t.push(&f);
                }
                frames += 1;
                bytes += f.bytes as u64;
                keyframes += f.keyframe as u64;
                first_frame_ms.get_or_insert(posted.elapsed().as_secs_f64() * 1000.0);
                if let Some(p) = f.picture {
                    decoded += 1;
                    if let Some(s) = p.stamp {
                        stamped += 1;
                        let now_us = unix_us();
                        latencies_ms.push(now_us.saturating_sub(s.capture_us) as f64 / 1000.0);
                    }
                }
            }
            Ok(Some(ClientEvent::Disconnected)) => {
                disconnected = true;
                if let Some(t) = timeline.as_mut() {
                    t.mark_disconnected(Instant::now());
                }
                break;
            }
            Ok(_) => {}
            Err(e) => {
                return json!({
                    "viewer": index, "error": e.to_string(), "frames": frames,
                    "disconnected": true,
                });
            }
        }
    }
    let watched_ms = posted.elapsed().as_millis() as u64;
    let _ = client.delete();
    latencies_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        (!latencies_ms.is_empty())
            .then(|| latencies_ms[((latencies_ms.len() - 1) as f64 * p).round() as usize])
    };
    let mut report = json!({
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
        "gaps": client.gaps,
        "keyframe_requests": client.keyframe_requests,
        "disconnected": disconnected,
    });
    if follow_network {
        report["ice_restarts_ms"] = restarts_ms.into();
        report["ice_restart_errors"] = restart_errors.into();
    }
    if let Some(t) = timeline {
        report["start_unix_ms"] = posted_unix_ms.into();
        report["watched_ms"] = watched_ms.into();
        report["timeline"] = t.to_json();
    }
    report
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
