//! Command-line options (`rtcam --help`), and how they become the configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::args::{self, Arg, Parser, UsageError};
use crate::boards;
use crate::config::{
    self, Config, ConfigError, DEFAULT_CONFIG_PATH, FormatSpec, Layer, Size, SourceSpec,
    parse_seconds,
};
use crate::encode::limits;

const ABOUT: &str =
    "Low-latency camera streamer: H.264 over WebRTC (WHEP) to any number of browsers";
const USAGE: &str = "Usage: rtcam [OPTIONS] [COMMAND]";
const DEVICES_ABOUT: &str = "List the video capture devices: name, driver, bus, formats with \
                             sizes and frame rates, and controls with their ranges and values";
const DEVICES_USAGE: &str = "Usage: rtcam devices [OPTIONS]";
const BENCH_ABOUT: &str = "Measure the encoders on this board: ms per frame, CPU and the frame \
                           rate each sustains, at the configured size and rate";
const BENCH_USAGE: &str = "Usage: rtcam bench-encoder [OPTIONS]";

/// `--help`: the options as the parser below reads them, with their defaults and the limits
/// they are checked against.
fn options() -> Vec<(&'static str, String)> {
    vec![
        (
            "--config <PATH>",
            "Config file [default: /etc/rtcam/rtcam.toml, if it exists]".into(),
        ),
        (
            "--board <NAME>",
            "Start from a board preset (see the boards/ folder); auto = from the device tree"
                .into(),
        ),
        (
            "--print-config",
            "Print the effective configuration (board, then file, then options) and exit".into(),
        ),
        (
            "--listen <ADDR:PORT>",
            "HTTP address for the page, WHEP signaling and status (and the media port's address) [default: [::]:8080, IPv6 and IPv4]".into(),
        ),
        (
            "--rtc-port <PORT>",
            "The one UDP port for all WebRTC media, 0 = any free port [default: 8555]".into(),
        ),
        (
            "--source <auto|test|libcamera[:N]|DEVICE>",
            "Frame source: auto (a Pi camera module, else the first USB camera, else the test \
         pattern), test, libcamera[:N] (a libcamera camera through rpicam-vid or cam), or a \
         device path [default: auto]"
                .into(),
        ),
        (
            "--format <auto|FOURCC>",
            "Camera pixel format: auto (the cheapest good one: YU12 > NV12 > YUYV > MJPEG) or a \
         fourcc (YUYV, MJPG, NV12, ...); H264 streams the camera's own H.264 [default: auto]"
                .into(),
        ),
        ("--size <WxH>", "Picture size [default: 1280x720]".into()),
        (
            "--fps <N>",
            format!("Frames per second, {} [default: 30]", span(&limits::FPS)),
        ),
        (
            "--bitrate <KBPS>",
            format!(
                "Target video bitrate in kbit/s, {} [default: 1500]",
                span(&limits::BITRATE_KBPS)
            ),
        ),
        (
            "--idr-interval <SECS>",
            "Seconds between periodic IDR frames; viewers also get one on join and on request \
         [default: 2]"
                .into(),
        ),
        (
            "--encoder <auto|software|v4l2m2m[:DEVICE]>",
            "H.264 encoder: auto (the board's V4L2 memory-to-memory encoder if one works, else \
         software), software (OpenH264), v4l2m2m (the first one found) or v4l2m2m:/dev/videoN \
         [default: auto]"
                .into(),
        ),
        (
            "--encoder-threads <N>",
            format!(
                "OpenH264 threads ({}); each encodes one slice of every picture, so a multi-core \
             board keeps up with sizes one core cannot [default: 1]",
                span(&limits::THREADS)
            ),
        ),
        (
            "--max-viewers <N>",
            format!(
                "Most viewers at once ({}); more get 503 [default: 16]",
                span(&config::MAX_VIEWERS)
            ),
        ),
        (
            "--cors-origin <ORIGIN>",
            "Turn CORS on for cross-origin WHEP players, allowing this origin (or '*')".into(),
        ),
        ("-h, --help", "Print help".into()),
        ("-V, --version", "Print version".into()),
    ]
}

/// A range as `--help` shows it: `1-120`.
fn span<T: std::fmt::Display>(range: &std::ops::RangeInclusive<T>) -> String {
    format!("{}-{}", range.start(), range.end())
}

const AFTER_HELP: &str = "Settings come from the built-in defaults, then --board, then the \
config file, then these options; --print-config shows the result.
Open http://<device>:8080/ in a browser to watch. WHEP players can POST an SDP offer to \
http://<device>:8080/whep.
Logging: RUST_LOG=debug (or e.g. RUST_LOG=rtcam=debug,str0m=info).";

/// The command line: what to do, and the options that override the config file.
#[derive(Debug, Default, PartialEq)]
pub struct Cli {
    /// Instead of streaming: `devices` lists the cameras.
    pub command: Option<Command>,
    /// `--config`: the config file (else /etc/rtcam/rtcam.toml, if it exists).
    pub config: Option<PathBuf>,
    /// `--board`: a board preset name, or auto.
    pub board: Option<String>,
    pub print_config: bool,
    pub listen: Option<SocketAddr>,
    pub rtc_port: Option<u16>,
    pub source: Option<SourceSpec>,
    pub format: Option<FormatSpec>,
    pub size: Option<Size>,
    pub fps: Option<u32>,
    pub bitrate: Option<u32>,
    pub idr_interval: Option<f64>,
    pub encoder: Option<crate::encode::EncoderChoice>,
    pub encoder_threads: Option<u32>,
    pub max_viewers: Option<usize>,
    pub cors_origin: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// List the video capture devices (`--json`: as one JSON array).
    Devices { json: bool },
    /// Measure the encoders (`rtcam bench-encoder`); size, rate and bitrate from the config.
    BenchEncoder(crate::BenchEncoderArgs),
}

/// Why parsing did not give a `Cli`: help or version asked for (exit 0), or bad usage (exit 2).
#[derive(Debug, Clone, PartialEq)]
pub enum CliExit {
    Help(String),
    Version(String),
    Usage {
        error: UsageError,
        usage: &'static str,
    },
}

impl std::fmt::Display for CliExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliExit::Help(text) | CliExit::Version(text) => f.write_str(text),
            CliExit::Usage { error, .. } => error.fmt(f),
        }
    }
}

impl Cli {
    /// The process's command line. Prints the help or version and exits 0 when asked for them;
    /// prints a usage error and exits 2 on bad usage.
    pub fn parse() -> Cli {
        match Cli::try_parse_from(std::env::args_os()) {
            Ok(cli) => cli,
            Err(CliExit::Help(text) | CliExit::Version(text)) => {
                print!("{text}");
                std::process::exit(0)
            }
            Err(CliExit::Usage { error, usage }) => {
                args::print_usage_error(&error, usage);
                std::process::exit(args::USAGE_EXIT.into())
            }
        }
    }

    /// `argv` with the program name first, as `std::env::args_os()` gives it.
    pub fn try_parse_from<I, T>(argv: I) -> Result<Cli, CliExit>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        let mut parser = Parser::new(argv.into_iter().skip(1));
        let usage = |error| CliExit::Usage {
            error,
            usage: USAGE,
        };
        let mut cli = Cli::default();
        while let Some(arg) = parser.next_arg().map_err(usage)? {
            cli.take(&mut parser, arg)?;
        }
        Ok(cli)
    }

    fn take(&mut self, p: &mut Parser, arg: Arg) -> Result<(), CliExit> {
        let usage = |error| CliExit::Usage {
            error,
            usage: USAGE,
        };
        let name = match arg {
            Arg::Long(name) => name,
            Arg::Positional(word) => {
                return match word.to_str() {
                    Some("devices") => {
                        self.command = Some(parse_devices(p)?);
                        Ok(())
                    }
                    Some("bench-encoder") => {
                        let args = self.parse_bench(p)?;
                        self.command = Some(Command::BenchEncoder(args));
                        Ok(())
                    }
                    Some("help") => Err(help_for(p).map_err(usage)?),
                    _ => Err(usage(UsageError(format!(
                        "unrecognized subcommand '{}'",
                        word.to_string_lossy()
                    )))),
                };
            }
        };
        match name.as_str() {
            "help" => return Err(CliExit::Help(help())),
            "version" => return Err(CliExit::Version(version())),
            "print-config" => self.print_config = true,
            "config" => self.config = Some(p.value("--config <PATH>").map_err(usage)?.into()),
            "board" => {
                self.board = Some(p.checked("--board <NAME>", board_name).map_err(usage)?);
            }
            "listen" => self.listen = Some(p.parse("--listen <ADDR:PORT>").map_err(usage)?),
            "rtc-port" => self.rtc_port = Some(p.parse("--rtc-port <PORT>").map_err(usage)?),
            "source" => {
                self.source = Some(
                    p.parse("--source <auto|test|libcamera[:N]|DEVICE>")
                        .map_err(usage)?,
                );
            }
            "format" => self.format = Some(p.parse("--format <auto|FOURCC>").map_err(usage)?),
            "size" => self.size = Some(p.parse("--size <WxH>").map_err(usage)?),
            "fps" => self.fps = Some(p.number_in("--fps <N>", limits::FPS).map_err(usage)?),
            "bitrate" => {
                self.bitrate = Some(
                    p.number_in("--bitrate <KBPS>", limits::BITRATE_KBPS)
                        .map_err(usage)?,
                );
            }
            "idr-interval" => {
                self.idr_interval = Some(
                    p.checked("--idr-interval <SECS>", parse_seconds)
                        .map_err(usage)?,
                );
            }
            "encoder" => {
                self.encoder = Some(
                    p.parse("--encoder <auto|software|v4l2m2m[:DEVICE]>")
                        .map_err(usage)?,
                );
            }
            "encoder-threads" => {
                self.encoder_threads = Some(
                    p.number_in("--encoder-threads <N>", limits::THREADS)
                        .map_err(usage)?,
                );
            }
            "max-viewers" => {
                self.max_viewers = Some(
                    p.number_in("--max-viewers <N>", config::MAX_VIEWERS)
                        .map_err(usage)?,
                );
            }
            "cors-origin" => {
                self.cors_origin = Some(p.string("--cors-origin <ORIGIN>").map_err(usage)?);
            }
            _ => return Err(usage(args::unexpected(&Arg::Long(name)))),
        }
        Ok(())
    }

    /// `rtcam bench-encoder`'s own options; the others (--board, --size, --fps, --bitrate,
    /// --config…) set the configuration as they do for streaming.
    fn parse_bench(&mut self, p: &mut Parser) -> Result<crate::BenchEncoderArgs, CliExit> {
        let usage = |error| CliExit::Usage {
            error,
            usage: BENCH_USAGE,
        };
        let mut bench = crate::BenchEncoderArgs::default();
        while let Some(arg) = p.next_arg().map_err(usage)? {
            let Arg::Long(name) = &arg else {
                return Err(usage(args::unexpected(&arg)));
            };
            match name.as_str() {
                "help" => return Err(CliExit::Help(bench_help())),
                "json" => bench.json = true,
                "encoder" => bench.encoders.push(
                    p.parse("--encoder <software|v4l2m2m[:DEVICE]>")
                        .map_err(usage)?,
                ),
                "codec" => {
                    bench.codec = p.checked("--codec <FOURCC>", fourcc).map_err(usage)?;
                }
                "source" => {
                    let source: String = p.string("--source <test|DEVICE>").map_err(usage)?;
                    bench.source = (source != "test").then(|| source.into());
                }
                "frames" => {
                    bench.frames = p.number_in("--frames <N>", 1..=100_000).map_err(usage)?
                }
                "camera-input" => {
                    bench.camera_input =
                        p.parse("--camera-input <as-is|copy|i420>").map_err(usage)?;
                }
                "restart" => {
                    let size: Size = p.parse("--restart <WxH>").map_err(usage)?;
                    bench.restart = Some((size.width, size.height));
                }
                _ => self.take(p, arg)?,
            }
        }
        Ok(bench)
    }

    /// Board preset, then the config file, then these options. The board is `--board`, else
    /// the file's `board =`; `auto` is resolved here, from the device tree.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let mut layers = Vec::new();
        match &self.config {
            Some(path) => layers.push(read_layer(path)?),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                layers.push(read_layer(Path::new(DEFAULT_CONFIG_PATH))?)
            }
            None => {}
        }
        layers.push(Layer::from_table("command line", self.as_table()));
        // First without the preset: checks every layer (a bad board name is reported with the
        // file and line it is on) and says which board was asked for.
        let Some(asked) = config::load(&layers)?.board else {
            return config::load(&layers);
        };
        let name = resolve_board(&asked);
        let text = boards::preset(name).ok_or_else(|| ConfigError {
            origin: "board".into(),
            line: None,
            key: Some("board".into()),
            message: format!("no board preset {name:?}"),
        })?;
        layers.insert(0, Layer::parse(format!("board {name}"), text)?);
        let mut config = config::load(&layers)?;
        config.board = Some(name.to_string());
        Ok(config)
    }

    /// The options that were given, in the shape of a config file.
    fn as_table(&self) -> Table {
        let mut server = Table::new();
        let mut video = Table::new();
        let set = |t: &mut Table, key: &str, v: Option<Value>| {
            if let Some(v) = v {
                t.insert(key.into(), v);
            }
        };
        let string = |v: &dyn ToString| Value::String(v.to_string());
        set(
            &mut server,
            "listen",
            self.listen.as_ref().map(|v| string(v)),
        );
        set(
            &mut server,
            "rtc_port",
            self.rtc_port.map(|v| Value::Integer(v.into())),
        );
        set(
            &mut server,
            "max_viewers",
            self.max_viewers.map(|v| Value::Integer(v as i64)),
        );
        set(
            &mut server,
            "cors_origin",
            self.cors_origin.as_ref().map(|v| string(v)),
        );
        set(
            &mut video,
            "source",
            self.source.as_ref().map(|v| string(v)),
        );
        set(&mut video, "size", self.size.as_ref().map(|v| string(v)));
        set(
            &mut video,
            "format",
            self.format.as_ref().map(|v| string(v)),
        );
        set(
            &mut video,
            "fps",
            self.fps.map(|v| Value::Integer(v.into())),
        );
        set(
            &mut video,
            "bitrate_kbps",
            self.bitrate.map(|v| Value::Integer(v.into())),
        );
        set(
            &mut video,
            "idr_interval_s",
            self.idr_interval.map(Value::Float),
        );
        set(
            &mut video,
            "encoder",
            self.encoder.as_ref().map(|v| string(v)),
        );
        set(
            &mut video,
            "encoder_threads",
            self.encoder_threads.map(|v| Value::Integer(v.into())),
        );
        let mut table = Table::new();
        if let Some(board) = &self.board {
            table.insert("board".into(), string(board));
        }
        for (name, section) in [("server", server), ("video", video)] {
            if !section.is_empty() {
                table.insert(name.into(), Value::Table(section));
            }
        }
        table
    }
}

fn fourcc(s: &str) -> Result<[u8; 4], String> {
    <[u8; 4]>::try_from(s.as_bytes()).map_err(|_| format!("{s:?} is not a fourcc (4 characters)"))
}

fn board_name(s: &str) -> Result<String, String> {
    if boards::is_known(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "no board preset {s:?} (known: {}, {})",
            boards::AUTO,
            boards::NAMES.join(", ")
        ))
    }
}

fn parse_devices(p: &mut Parser) -> Result<Command, CliExit> {
    let usage = |error| CliExit::Usage {
        error,
        usage: DEVICES_USAGE,
    };
    let mut json = false;
    while let Some(arg) = p.next_arg().map_err(usage)? {
        match &arg {
            Arg::Long(name) if name == "json" => json = true,
            Arg::Long(name) if name == "help" => return Err(CliExit::Help(devices_help())),
            _ => return Err(usage(args::unexpected(&arg))),
        }
    }
    Ok(Command::Devices { json })
}

/// `rtcam help [devices]`.
fn help_for(p: &mut Parser) -> Result<CliExit, UsageError> {
    match p.next_arg()? {
        None => Ok(CliExit::Help(help())),
        Some(Arg::Positional(word)) if word == "devices" => Ok(CliExit::Help(devices_help())),
        Some(Arg::Positional(word)) if word == "bench-encoder" => Ok(CliExit::Help(bench_help())),
        Some(arg) => Err(args::unexpected(&arg)),
    }
}

fn help() -> String {
    format!(
        "{ABOUT}\n\n{USAGE}\n\nCommands:\n  devices        {DEVICES_ABOUT}\n  bench-encoder  \
         {BENCH_ABOUT}\n  help           Print this message or the help of the given \
         subcommand(s)\n\nOptions:\n{}\n{AFTER_HELP}\n",
        args::option_lines(&options())
    )
}

fn bench_help() -> String {
    format!(
        "{BENCH_ABOUT}\n\n{BENCH_USAGE}\n\nOptions:\n{}",
        args::option_lines(&[
            (
                "--encoder <software|v4l2m2m[:DEVICE]>",
                "A backend to measure (repeatable) [default: software and every V4L2 M2M \
                 H.264 encoder found]",
            ),
            (
                "--source <test|DEVICE>",
                "Frames from the test pattern or a camera [default: test]",
            ),
            ("--frames <N>", "Frames per backend [default: 300]"),
            (
                "--camera-input <as-is|copy|i420>",
                "M2M with a camera: its own buffers as the stream takes them (dma-bufs where \
                 the drivers allow), copied, or converted to I420 first [default: as-is]",
            ),
            (
                "--codec <FOURCC>",
                "The M2M encoder's coded format [default: H264; others for test devices]",
            ),
            (
                "--restart <WxH>",
                "M2M: after draining, set the encoder up again at this size and encode 30 frames",
            ),
            ("--json", "One JSON line per backend"),
            (
                "--board, --size, --fps, --bitrate, --format, --config",
                "As for streaming: the size, rate, bitrate and camera format measured",
            ),
            ("-h, --help", "Print help"),
        ])
    )
}

fn devices_help() -> String {
    format!(
        "{DEVICES_ABOUT}\n\n{DEVICES_USAGE}\n\nOptions:\n{}",
        args::option_lines(&[
            (
                "--json",
                "Print JSON (one array of devices) instead of text"
            ),
            ("-h, --help", "Print help"),
        ])
    )
}

fn version() -> String {
    format!("rtcam {}\n", env!("CARGO_PKG_VERSION"))
}

/// A preset name for `asked` (`auto`: this machine's).
fn resolve_board(asked: &str) -> &str {
    if asked != boards::AUTO {
        return asked;
    }
    let (name, model) = detect_board();
    match model {
        Some(model) => log::info!("board auto: {model:?} -> {name}"),
        None => log::info!("board auto: no device tree model, using {name}"),
    }
    name
}

/// The config file at `path`, as a layer.
fn read_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: path.display().to_string(),
        line: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    Layer::parse(path.display().to_string(), &text)
}

/// Where the device tree names the board.
const MODEL_PATH: &str = "/sys/firmware/devicetree/base/model";

/// The preset for this machine, and the model string it was chosen by, if there is one.
pub fn detect_board() -> (&'static str, Option<String>) {
    detect_board_from(Path::new(MODEL_PATH))
}

fn detect_board_from(model_path: &Path) -> (&'static str, Option<String>) {
    match std::fs::read(model_path) {
        Ok(bytes) => {
            // Device tree strings end in NUL.
            let model = String::from_utf8_lossy(&bytes)
                .trim_end_matches('\0')
                .trim()
                .to_string();
            (
                boards::for_model(&model).unwrap_or(boards::FALLBACK),
                Some(model),
            )
        }
        Err(_) => (boards::FALLBACK, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once("rtcam").chain(args.iter().copied());
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.load_config().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        // (No /etc/rtcam/rtcam.toml on a test machine; --config /dev/null makes sure.)
        assert_eq!(
            parse(&["--config", "/dev/null"]).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn options_reach_the_config() {
        let c = parse(&[
            "--config",
            "/dev/null",
            "--listen",
            "127.0.0.1:9000",
            "--rtc-port",
            "0",
            "--source",
            "test",
            "--size",
            "640x480",
            "--fps",
            "15",
            "--bitrate",
            "800",
            "--max-viewers",
            "4",
            "--idr-interval",
            "1.5",
            "--cors-origin",
            "*",
            "--encoder-threads",
            "3",
            "--encoder",
            "v4l2m2m:/dev/video11",
        ])
        .unwrap();
        assert_eq!(c.video.encoder_threads, 3);
        assert_eq!(
            c.video.encoder,
            crate::encode::EncoderChoice::V4l2M2m(Some("/dev/video11".into()))
        );
        assert_eq!(c.server.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.server.rtc_port, 0);
        assert_eq!(c.video.source, SourceSpec::Test);
        assert_eq!(c.video.size.to_string(), "640x480");
        assert_eq!(c.video.fps, 15);
        assert_eq!(c.video.bitrate_kbps, 800);
        assert_eq!(c.video.idr_interval_s, 1.5);
        assert_eq!(c.server.max_viewers, 4);
        assert_eq!(c.server.cors_origin.as_deref(), Some("*"));
    }

    #[test]
    fn bench_encoder_takes_its_options_and_the_streaming_ones() {
        let cli = parse_args(&[
            "bench-encoder",
            "--encoder",
            "software",
            "--encoder",
            "v4l2m2m:/dev/video11",
            "--codec",
            "FWHT",
            "--source",
            "/dev/video0",
            "--frames",
            "60",
            "--restart",
            "1280x720",
            "--json",
            "--size",
            "640x480",
            "--board",
            "rpi4",
            "--config",
            "/dev/null",
        ])
        .unwrap();
        let Some(Command::BenchEncoder(args)) = &cli.command else {
            panic!("{:?}", cli.command);
        };
        assert_eq!(
            args.encoders,
            [
                crate::encode::EncoderChoice::Software,
                crate::encode::EncoderChoice::V4l2M2m(Some("/dev/video11".into()))
            ]
        );
        assert_eq!(args.codec, *b"FWHT");
        assert_eq!(args.source.as_deref(), Some(Path::new("/dev/video0")));
        assert_eq!(
            (args.frames, args.restart, args.json),
            (60, Some((1280, 720)), true)
        );
        let config = cli.load_config().unwrap();
        assert_eq!(config.video.size.to_string(), "640x480", "the option");
        assert_eq!(config.video.bitrate_kbps, 4000, "the board");
        assert!(parse_args(&["bench-encoder", "--codec", "H26"]).is_err());
        assert!(parse_args(&["bench-encoder", "--frames", "0"]).is_err());
    }

    #[test]
    fn options_override_the_file_and_the_board() {
        let dir = std::env::temp_dir().join(format!("rtcam-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rtcam.toml");
        std::fs::write(&file, "[video]\nfps = 20\nbitrate_kbps = 700\n").unwrap();
        let path = file.to_str().unwrap();
        let board = boards::NAMES[0];
        let c = parse(&["--board", board, "--config", path, "--bitrate", "900"]).unwrap();
        assert_eq!(c.video.fps, 20, "file over board");
        assert_eq!(c.video.bitrate_kbps, 900, "option over file");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A config file with `text` in a fresh folder; the folder goes when the guard drops.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            let dir = std::env::temp_dir().join(format!("rtcam-cli-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("rtcam.toml");
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    #[test]
    fn board_then_file_then_options() {
        let file = TempFile::new("precedence", "[video]\nfps = 20\nbitrate_kbps = 700\n");
        let c = parse(&[
            "--board",
            "rpi3",
            "--config",
            file.path(),
            "--bitrate",
            "900",
        ])
        .unwrap();
        assert_eq!(c.board.as_deref(), Some("rpi3"));
        assert_eq!(c.video.size.to_string(), "1280x720", "from the board");
        assert_eq!(c.video.encoder_threads, 2, "from the board");
        assert_eq!(
            c.video.encoder,
            crate::encode::EncoderChoice::Auto,
            "from the board"
        );
        assert_eq!(c.server.max_viewers, 8, "from the board");
        assert_eq!(c.video.fps, 20, "the file over the board");
        assert_eq!(c.video.bitrate_kbps, 900, "the option over the file");
    }

    #[test]
    fn the_file_can_name_the_board_and_the_option_overrides_it() {
        let file = TempFile::new("file-board", "board = \"rpi5\"\n\n[video]\nfps = 24\n");
        let c = parse(&["--config", file.path()]).unwrap();
        assert_eq!(c.board.as_deref(), Some("rpi5"));
        assert_eq!(c.video.bitrate_kbps, 2000, "from the rpi5 preset");
        assert_eq!(c.video.fps, 24, "the file over its board");

        let c = parse(&["--config", file.path(), "--board", "rpi-zero-2w"]).unwrap();
        assert_eq!(c.board.as_deref(), Some("rpi-zero-2w"));
        assert_eq!(c.video.bitrate_kbps, 1500, "from the rpi-zero-2w preset");
        assert_eq!(c.video.fps, 24, "the file still over the board");
    }

    #[test]
    fn auto_board_is_this_machines_preset() {
        let c = parse(&["--config", "/dev/null", "--board", "auto"]).unwrap();
        assert_eq!(c.board.as_deref(), Some(detect_board().0));
    }

    #[test]
    fn an_unknown_board_in_the_file_names_the_line() {
        let file = TempFile::new("bad-board", "# rtcam\nboard = \"toaster\"\n");
        let err = parse(&["--config", file.path()]).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "{}:2: board: no board preset \"toaster\"",
                file.path()
            )),
            "{err}"
        );
    }

    #[test]
    fn printed_config_with_a_board_reads_back_the_same() {
        let c = parse(&["--config", "/dev/null", "--board", "rpi4", "--fps", "12"]).unwrap();
        let file = TempFile::new("printed", &config::to_toml(&c));
        assert_eq!(parse(&["--config", file.path()]).unwrap(), c);
    }

    fn parse_args(args: &[&str]) -> Result<Cli, CliExit> {
        Cli::try_parse_from(std::iter::once("rtcam").chain(args.iter().copied()))
    }

    #[test]
    fn help_version_and_the_devices_command() {
        let help = match parse_args(&["--help"]) {
            Err(CliExit::Help(text)) => text,
            other => panic!("{other:?}"),
        };
        for (option, _) in options() {
            assert!(help.contains(option), "{option} in --help");
        }
        assert!(help.contains("devices") && help.contains("RUST_LOG"));
        assert_eq!(parse_args(&["-h"]), Err(CliExit::Help(help.clone())));
        assert_eq!(parse_args(&["help"]), Err(CliExit::Help(help)));
        assert_eq!(
            parse_args(&["-V"]),
            Err(CliExit::Version(format!(
                "rtcam {}\n",
                env!("CARGO_PKG_VERSION")
            )))
        );
        let devices = |args: &[&str]| parse_args(args).map(|c| c.command);
        assert_eq!(devices(&[]), Ok(None));
        assert_eq!(
            devices(&["devices"]),
            Ok(Some(Command::Devices { json: false }))
        );
        assert_eq!(
            devices(&["--config", "/dev/null", "devices", "--json"]),
            Ok(Some(Command::Devices { json: true }))
        );
        assert!(matches!(
            parse_args(&["devices", "--help"]),
            Err(CliExit::Help(t)) if t.contains("--json")
        ));
        assert!(matches!(
            parse_args(&["devices", "--jsn"]),
            Err(CliExit::Usage {
                usage: DEVICES_USAGE,
                ..
            })
        ));
        assert!(matches!(
            parse_args(&["cameras"]),
            Err(CliExit::Usage { usage: USAGE, .. })
        ));
    }

    #[test]
    fn option_values_inline_or_separate() {
        let cli = parse_args(&["--fps=15", "--size", "640x480", "--print-config"]).unwrap();
        assert_eq!(cli.fps, Some(15));
        assert_eq!(cli.size.map(|s| s.to_string()).as_deref(), Some("640x480"));
        assert!(cli.print_config);
        let err = parse_args(&["--fps", "0"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid value '0' for '--fps <N>': 0 is not in 1..=120"
        );
        let err = parse_args(&["--size", "123x45"]).unwrap_err().to_string();
        assert!(err.contains("123x45") && err.contains("64x64"), "{err}");
        assert!(parse_args(&["--print-config=yes"]).is_err());
        assert!(parse_args(&["--listen"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["--fps", "0"][..],
            &["--fps", "1000"],
            &["--size", "641x480"],
            &["--listen", "nowhere"],
            &["--bitrate", "1"],
            &["--max-viewers", "0"],
            &["--encoder-threads", "0"],
            &["--encoder-threads", "5"],
            &["--source", ""],
            &["--board", "toaster"],
            &["--board", ""],
            &["--config", "/nonexistent/rtcam.toml"],
            &["--no-such-flag"],
            &["--idr-interval", "0"],
            &["--rtc-port", "65536"],
            &["--format", "RGB3"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn a_missing_file_is_an_error_that_says_so() {
        let err = read_layer(Path::new("/nonexistent/rtcam.toml")).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn detection_reads_the_device_tree_and_falls_back() {
        let dir = std::env::temp_dir().join(format!("rtcam-boards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("model");
        std::fs::write(&model, b"Raspberry Pi 4 Model B Rev 1.5\0").unwrap();
        assert_eq!(
            detect_board_from(&model),
            ("rpi4", Some("Raspberry Pi 4 Model B Rev 1.5".to_string()))
        );
        std::fs::write(&model, b"QEMU virt\0").unwrap();
        assert_eq!(
            detect_board_from(&model),
            (boards::FALLBACK, Some("QEMU virt".into()))
        );
        assert_eq!(
            detect_board_from(&dir.join("missing")),
            (boards::FALLBACK, None)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
