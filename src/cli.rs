//! Command-line options (`rtcam --help`), and how they become the configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use toml::{Table, Value};

use crate::boards;
use crate::config::{
    self, Config, ConfigError, DEFAULT_CONFIG_PATH, FormatSpec, Layer, Size, SourceSpec,
    parse_seconds,
};

#[derive(Debug, Parser)]
#[command(
    name = "rtcam",
    version,
    about = "Low-latency camera streamer: H.264 over WebRTC (WHEP) to any number of browsers",
    after_help = "Settings come from the built-in defaults, then --board, then the config file, \
                  then these options; --print-config shows the result.\n\
                  Open http://<device>:8080/ in a browser to watch. WHEP players can POST an \
                  SDP offer to http://<device>:8080/whep.\n\
                  Logging: RUST_LOG=debug (or e.g. RUST_LOG=rtcam=debug,str0m=info)."
)]
pub struct Cli {
    /// Instead of streaming: `devices` lists the cameras.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Config file [default: /etc/rtcam/rtcam.toml, if it exists].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Start from a board preset (see the boards/ folder); auto = from the device tree.
    #[arg(long, value_name = "NAME", value_parser = board_name)]
    pub board: Option<String>,

    /// Print the effective configuration (board, then file, then options) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// HTTP address for the page, WHEP signaling and status [default: 0.0.0.0:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// The one UDP port for all WebRTC media, 0 = any free port [default: 8555].
    #[arg(long, value_name = "PORT")]
    pub rtc_port: Option<u16>,

    /// Frame source: auto (first camera, else the test pattern), test, or a device path
    /// [default: auto].
    #[arg(long, value_name = "auto|test|DEVICE")]
    pub source: Option<SourceSpec>,

    /// Camera pixel format: auto (the cheapest good one: YU12 > NV12 > YUYV > MJPEG) or a
    /// fourcc (YUYV, MJPG, NV12, ...); H264 streams the camera's own H.264 [default: auto].
    #[arg(long, value_name = "auto|FOURCC")]
    pub format: Option<FormatSpec>,

    /// Picture size [default: 1280x720].
    #[arg(long, value_name = "WxH")]
    pub size: Option<Size>,

    /// Frames per second [default: 30].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=120))]
    pub fps: Option<u32>,

    /// Target video bitrate in kbit/s [default: 1500].
    #[arg(long, value_name = "KBPS", value_parser = clap::value_parser!(u32).range(50..=50_000))]
    pub bitrate: Option<u32>,

    /// Seconds between periodic IDR frames; viewers also get one on join and on request
    /// [default: 2].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub idr_interval: Option<f64>,

    /// OpenH264 threads; each encodes one slice of every picture, so a multi-core board keeps
    /// up with sizes one core cannot [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4))]
    pub encoder_threads: Option<u32>,

    /// Most viewers at once; more get 503 [default: 16].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_viewers: Option<u32>,

    /// Turn CORS on for cross-origin WHEP players, allowing this origin (or '*').
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the video capture devices: name, driver, bus, formats with sizes and frame
    /// rates, and controls with their ranges and values.
    Devices {
        /// Print JSON (one array of devices) instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// Board preset, then the config file, then these options. The board is `--board`, else
    /// the file's `board =`; `auto` is resolved here, from the device tree.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let mut layers = Vec::new();
        match &self.config {
            Some(path) => layers.push(Layer::from_file(path)?),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                layers.push(Layer::from_file(Path::new(DEFAULT_CONFIG_PATH))?)
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
            self.max_viewers.map(|v| Value::Integer(v.into())),
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

/// A preset name for `asked` (`auto`: this machine's).
fn resolve_board(asked: &str) -> &str {
    if asked != boards::AUTO {
        return asked;
    }
    let (name, model) = boards::detect();
    match model {
        Some(model) => log::info!("board auto: {model:?} -> {name}"),
        None => log::info!("board auto: no device tree model, using {name}"),
    }
    name
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
        ])
        .unwrap();
        assert_eq!(c.video.encoder_threads, 3);
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
        assert_eq!(c.video.size.to_string(), "640x480", "from the board");
        assert_eq!(c.video.encoder_threads, 2, "from the board");
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
        assert_eq!(c.video.bitrate_kbps, 700, "from the rpi-zero-2w preset");
        assert_eq!(c.video.fps, 24, "the file still over the board");
    }

    #[test]
    fn auto_board_is_this_machines_preset() {
        let c = parse(&["--config", "/dev/null", "--board", "auto"]).unwrap();
        assert_eq!(c.board.as_deref(), Some(boards::detect().0));
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
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }
}
