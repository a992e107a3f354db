//! The effective configuration: built-in defaults < board preset < config file < command line.
//!
//! Every layer is TOML of the same shape (the command line is turned into a layer too), so a
//! key means the same thing wherever it is set and `--print-config` shows the result in the
//! form a config file takes. Each layer is checked on its own first, so an unknown key or a
//! value of the wrong type is reported with the file and line it came from.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Table;

use crate::encode::EncoderSettings;

mod ice;
pub use crate::encode::limits::Size;
use crate::encode::limits::{self, range_text};
use crate::source::convert::PixelFormat;
pub use ice::{IceConfig, IceUrl, REDACTED, Scheme, TurnConfig, TurnServer};

/// Viewers at once, at most: beyond a few hundred str0m sessions a board runs out of CPU.
pub const MAX_VIEWERS: std::ops::RangeInclusive<usize> = 1..=256;
/// Seconds a connected viewer may stay silent, and an answered one take to connect. Below 2 s a
/// lossy link's gap in feedback would drop live viewers.
pub const VIEWER_TIMEOUT_S: std::ops::RangeInclusive<f64> = 2.0..=120.0;

/// For tests: a small, fast test-pattern stream on loopback, ports picked by the OS, with this
/// control token.
#[cfg(any(test, feature = "testing"))]
pub fn loopback_test_config(control_token: &str) -> Config {
    let mut c = Config::default();
    c.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.server.rtc_port = 0;
    c.video.source = SourceSpec::Test;
    c.video.size = Size {
        width: 320,
        height: 240,
    };
    c.video.bitrate_kbps = 400;
    c.auth.control_token = Some(control_token.into());
    c
}

/// Where the config file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rtcam/rtcam.toml";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The board preset under the file (`auto`: from the device tree). `--board` overrides it;
    /// the effective config names the preset that was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    pub server: ServerConfig,
    pub video: VideoConfig,
    pub auth: AuthConfig,
    pub control: ControlSection,
    pub ptz: PtzConfig,
    pub ice: IceConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Lets anyone watch without a token. Control always needs the control token.
    pub view_open: bool,
    /// The token viewers present when viewing is not open (`Authorization: Bearer ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_token: Option<String>,
    /// The token that allows steering. Unset: generated at first start and kept in
    /// `state_dir/control-token` (mode 0600); the control URL is printed once then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_token: Option<String>,
    /// Where rtcam keeps state. Unset: $STATE_DIRECTORY (systemd's StateDirectory=), else
    /// /var/lib/rtcam when run as root, else $XDG_STATE_HOME/rtcam or ~/.local/state/rtcam.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            view_open: true,
            view_token: None,
            control_token: None,
            state_dir: None,
        }
    }
}

/// The `control` data channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSection {
    /// Commands a viewer may send per second, steadily and in a burst.
    pub commands_per_s: f64,
    pub burst: u32,
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection {
            commands_per_s: 20.0,
            burst: 40,
        }
    }
}

/// Which actuator moves the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActuatorKind {
    /// The camera's pan/tilt/zoom controls when it has them (the test pattern does), else none.
    Auto,
    /// The camera's `pan_absolute`/`tilt_absolute`/`zoom_absolute` controls; an error if absent.
    Camera,
    /// Hobby servos on sysfs PWM, as `[ptz.servo]` says.
    Servo,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PtzConfig {
    pub actuator: ActuatorKind,
    /// A continuous move stops when no `ptz.move` has come for this long.
    pub deadman_ms: u64,
    /// Camera actuator: seconds a full-speed move takes from one end of an axis to the other.
    pub full_sweep_s: f64,
    pub servo: ServoConfig,
}

impl Default for PtzConfig {
    fn default() -> Self {
        PtzConfig {
            actuator: ActuatorKind::Auto,
            deadman_ms: 500,
            full_sweep_s: 4.0,
            servo: ServoConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServoConfig {
    /// The sysfs PWM class directory (a different root is useful for tests).
    pub sysfs_root: PathBuf,
    /// `pwmchipN`.
    pub chip: u32,
    /// 20 ms: the standard hobby-servo frame.
    pub period_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pan: Option<ServoAxisConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tilt: Option<ServoAxisConfig>,
}

impl Default for ServoConfig {
    fn default() -> Self {
        ServoConfig {
            sysfs_root: PathBuf::from("/sys/class/pwm"),
            chip: 0,
            period_ns: 20_000_000,
            pan: None,
            tilt: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServoAxisConfig {
    /// `pwmM` on the chip.
    pub channel: u32,
    /// Pulse width at `min_angle` and at `max_angle`, in microseconds.
    pub min_pulse_us: f64,
    pub max_pulse_us: f64,
    /// The angles the mechanism may reach (degrees); positions are clamped to them.
    pub min_angle: f64,
    pub max_angle: f64,
    pub home: f64,
    /// Degrees per second at full speed.
    pub max_speed_dps: f64,
}

impl Default for ServoAxisConfig {
    fn default() -> Self {
        ServoAxisConfig {
            channel: 0,
            min_pulse_us: 500.0,
            max_pulse_us: 2500.0,
            min_angle: -90.0,
            max_angle: 90.0,
            home: 0.0,
            max_speed_dps: 90.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP listen address (page, WHEP, status).
    pub listen: SocketAddr,
    /// The one UDP port for all media; 0 picks a free one.
    pub rtc_port: u16,
    pub max_viewers: usize,
    /// A viewer from which nothing arrives (RTCP, STUN) for this many seconds is dropped.
    pub viewer_timeout_s: f64,
    /// An answered viewer that has not connected (ICE and DTLS) after this many seconds is
    /// dropped, freeing its slot.
    pub connect_timeout_s: f64,
    /// `Access-Control-Allow-Origin` for cross-origin WHEP players; absent = CORS off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_origin: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            // Dual-stack: a viewer on IPv6 (many homes have public IPv6 without NAT) as well
            // as on IPv4.
            listen: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 8080)),
            rtc_port: 8555,
            max_viewers: 16,
            viewer_timeout_s: 5.0,
            connect_timeout_s: 5.0,
            cors_origin: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    pub source: SourceSpec,
    pub size: Size,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Seconds between periodic IDRs.
    pub idr_interval_s: f64,
    /// The test pattern drifts by itself; false: it moves only when panned, tilted or zoomed.
    pub test_pattern_drift: bool,
    /// Camera pixel format: `auto` (the cheapest good one) or a fourcc such as `YUYV`, `MJPG`,
    /// `NV12`; `H264` passes the camera's own H.264 through.
    pub format: FormatSpec,
    /// `auto` (the board's V4L2 M2M H.264 encoder if there is a usable one, else software),
    /// `software` (OpenH264), `v4l2m2m` or `v4l2m2m:/dev/videoN`.
    pub encoder: crate::encode::EncoderChoice,
    /// OpenH264 threads, each encoding one slice of every picture (1 to 4).
    pub encoder_threads: u32,
    /// Adapt to each viewer's link: bandwidth estimation per viewer, the encoder's bitrate
    /// follows it (`bitrate_kbps` is then the most it sends), fewer frames per second or a
    /// half-size encoding for slow links. False: everyone gets `bitrate_kbps`.
    pub adaptive: bool,
    /// The least bitrate an encoding runs at when links are slow (kbit/s).
    pub min_bitrate_kbps: u32,
    /// The fewest frames per second a slow viewer is sent.
    pub min_fps: f64,
}

impl Default for VideoConfig {
    fn default() -> Self {
        let e = EncoderSettings::default();
        VideoConfig {
            source: SourceSpec::Auto,
            size: Size {
                width: e.width,
                height: e.height,
            },
            fps: e.fps,
            bitrate_kbps: e.bitrate_kbps,
            idr_interval_s: e.idr_interval.as_secs_f64(),
            test_pattern_drift: true,
            format: FormatSpec::Auto,
            encoder: e.encoder.clone(),
            encoder_threads: e.threads,
            adaptive: true,
            min_bitrate_kbps: 150,
            min_fps: 7.5,
        }
    }
}

impl Config {
    pub fn encoder_settings(&self) -> EncoderSettings {
        EncoderSettings {
            width: self.video.size.width,
            height: self.video.size.height,
            fps: self.video.fps,
            bitrate_kbps: self.video.bitrate_kbps,
            idr_interval: Duration::from_secs_f64(self.video.idr_interval_s),
            threads: self.video.encoder_threads,
            encoder: self.video.encoder.clone(),
            ..EncoderSettings::default()
        }
    }

    /// Ranges and relations that types alone do not express. The error names the key.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let in_range = |key, ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err((key, what.to_string()))
            }
        };
        if let Some(board) = &self.board {
            in_range(
                "board",
                crate::boards::is_known(board),
                &format!(
                    "no board preset {board:?} (known: auto, {})",
                    crate::boards::NAMES.join(", ")
                ),
            )?;
        }
        let v = &self.video;
        in_range(
            "video.fps",
            limits::FPS.contains(&v.fps),
            &format!("must be {}", range_text(&limits::FPS)),
        )?;
        in_range(
            "video.bitrate_kbps",
            limits::BITRATE_KBPS.contains(&v.bitrate_kbps),
            &format!("must be {}", range_text(&limits::BITRATE_KBPS)),
        )?;
        in_range(
            "video.min_bitrate_kbps",
            limits::BITRATE_KBPS.contains(&v.min_bitrate_kbps),
            &format!("must be {}", range_text(&limits::BITRATE_KBPS)),
        )?;
        in_range(
            "video.min_fps",
            (1.0..=f64::from(*limits::FPS.end())).contains(&v.min_fps),
            &format!("must be from 1 to {}", limits::FPS.end()),
        )?;
        in_range(
            "video.idr_interval_s",
            limits::IDR_INTERVAL_S.contains(&v.idr_interval_s),
            &format!("must be {} seconds", range_text(&limits::IDR_INTERVAL_S)),
        )?;
        in_range(
            "video.encoder_threads",
            limits::THREADS.contains(&v.encoder_threads),
            &format!("must be {}", range_text(&limits::THREADS)),
        )?;
        in_range(
            "server.max_viewers",
            MAX_VIEWERS.contains(&self.server.max_viewers),
            &format!("must be {}", range_text(&MAX_VIEWERS)),
        )?;
        for (key, seconds) in [
            ("server.viewer_timeout_s", self.server.viewer_timeout_s),
            ("server.connect_timeout_s", self.server.connect_timeout_s),
        ] {
            in_range(
                key,
                VIEWER_TIMEOUT_S.contains(&seconds),
                &format!("must be {} seconds", range_text(&VIEWER_TIMEOUT_S)),
            )?;
        }
        in_range(
            "control.commands_per_s",
            (1.0..=1000.0).contains(&self.control.commands_per_s),
            "must be from 1 to 1000",
        )?;
        in_range(
            "control.burst",
            (1..=1000).contains(&self.control.burst),
            "must be from 1 to 1000",
        )?;
        in_range(
            "ptz.deadman_ms",
            (50..=10_000).contains(&self.ptz.deadman_ms),
            "must be from 50 to 10000",
        )?;
        in_range(
            "ptz.full_sweep_s",
            (0.1..=60.0).contains(&self.ptz.full_sweep_s),
            "must be from 0.1 to 60 seconds",
        )?;
        for (key, token) in [
            ("auth.control_token", &self.auth.control_token),
            ("auth.view_token", &self.auth.view_token),
        ] {
            if let Some(t) = token {
                in_range(
                    key,
                    t.len() >= 16 && t.bytes().all(|b| b.is_ascii_graphic()),
                    "must be at least 16 printable characters without spaces",
                )?;
            }
        }
        if let Some(origin) = &self.server.cors_origin {
            in_range(
                "server.cors_origin",
                !origin.trim().is_empty() && !origin.contains(['\r', '\n']),
                "must be '*' or an origin such as https://player.example",
            )?;
        }
        self.ice.check()
    }

    /// The config as `--print-config` shows it: tokens and TURN secrets replaced by
    /// [`REDACTED`].
    pub fn redacted(&self) -> Config {
        let hide = |s: &Option<String>| s.as_ref().map(|_| REDACTED.to_owned());
        let mut shown = self.clone();
        shown.auth.view_token = hide(&self.auth.view_token);
        shown.auth.control_token = hide(&self.auth.control_token);
        shown.ice = self.ice.redacted();
        shown
    }
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// The first camera that works, else the test pattern.
    Auto,
    /// The built-in test pattern.
    Test,
    /// A V4L2 device node.
    Device(PathBuf),
    /// A libcamera camera by its number (`libcamera`, `libcamera:N`), through a helper
    /// process (`rpicam-vid`, `cam`).
    Libcamera(u32),
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(SourceSpec::Auto),
            "test" => Ok(SourceSpec::Test),
            "libcamera" => Ok(SourceSpec::Libcamera(0)),
            "" => Err(
                "expected auto, test, libcamera[:N] or a device path such as /dev/video0".into(),
            ),
            s if s.starts_with("libcamera:") => s["libcamera:".len()..]
                .parse()
                .map(SourceSpec::Libcamera)
                .map_err(|_| format!("{s}: expected libcamera:N with N a camera number from 0")),
            path => Ok(SourceSpec::Device(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Auto => write!(f, "auto"),
            SourceSpec::Test => write!(f, "test"),
            SourceSpec::Device(p) => write!(f, "{}", p.display()),
            SourceSpec::Libcamera(n) => write!(f, "libcamera:{n}"),
        }
    }
}

/// The camera format to use: `auto` or a fourcc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatSpec {
    Auto,
    Fourcc(PixelFormat),
}

impl FormatSpec {
    /// The forced format, None for `auto`.
    pub fn pixel_format(self) -> Option<PixelFormat> {
        match self {
            FormatSpec::Auto => None,
            FormatSpec::Fourcc(format) => Some(format),
        }
    }
}

impl FromStr for FormatSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(FormatSpec::Auto);
        }
        PixelFormat::from_name(s)
            .map(FormatSpec::Fourcc)
            .ok_or_else(|| {
                format!(
                    "{s:?}: expected auto or one of YU12, YV12, NV12, NV21, YUYV, UYVY, MJPG, H264"
                )
            })
    }
}

impl fmt::Display for FormatSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatSpec::Auto => write!(f, "auto"),
            FormatSpec::Fourcc(format) => write!(f, "{format}"),
        }
    }
}

/// Types that are written as one string in TOML (`"1280x720"`, `"/dev/video0"`).
macro_rules! serde_as_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_string!(Size);
serde_as_string!(SourceSpec);
serde_as_string!(FormatSpec);
serde_as_string!(crate::encode::EncoderChoice);

/// Parses a duration in seconds, fractions allowed (`2`, `0.5`).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !limits::IDR_INTERVAL_S.contains(&secs) {
        return Err(format!(
            "{s:?}: must be {} seconds",
            range_text(&limits::IDR_INTERVAL_S)
        ));
    }
    Ok(secs)
}

/// One source of settings, lowest precedence first when loading.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Where it came from, for errors: a path, `board rpi4`, `command line`.
    pub origin: String,
    pub table: Table,
    /// The TOML text, when there is one, to find line numbers in.
    text: Option<String>,
}

impl Layer {
    /// A layer from TOML text. Syntax errors, unknown keys and values of the wrong type are
    /// reported here, with their line.
    pub fn parse(origin: impl Into<String>, text: &str) -> Result<Layer, ConfigError> {
        let origin = origin.into();
        let fail = |e: toml::de::Error| ConfigError {
            origin: origin.clone(),
            line: e.span().map(|s| line_of(text, s.start)),
            key: None,
            message: e.message().trim().to_string(),
        };
        let table: Table = toml::from_str(text).map_err(fail)?;
        // The shape check: same text into the real type (missing keys are fine, defaults fill
        // them; unknown ones are not).
        toml::from_str::<Config>(text).map_err(fail)?;
        Ok(Layer {
            origin,
            table,
            text: Some(text.to_string()),
        })
    }

    /// A layer built in code (the command line), already of the right shape.
    pub fn from_table(origin: impl Into<String>, table: Table) -> Layer {
        Layer {
            origin: origin.into(),
            table,
            text: None,
        }
    }

    fn has_key(&self, dotted: &str) -> bool {
        let mut table = &self.table;
        let mut parts = dotted.split('.').peekable();
        while let Some(part) = parts.next() {
            match table.get(part) {
                Some(toml::Value::Table(t)) if parts.peek().is_some() => table = t,
                Some(_) => return parts.peek().is_none(),
                None => return false,
            }
        }
        false
    }

    /// The line where `dotted` (`section.key`) is set, found by reading the text.
    fn line_of_key(&self, dotted: &str) -> Option<usize> {
        let text = self.text.as_deref()?;
        // Top-level keys (`board`) come before any [section].
        let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
        let mut current = String::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = name.trim().to_string();
            } else if current == section
                && line
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                return Some(n + 1);
            }
        }
        None
    }
}

/// Merges the layers (later ones win, key by key) over the defaults and checks the result.
pub fn load(layers: &[Layer]) -> Result<Config, ConfigError> {
    let mut merged = Table::new();
    for layer in layers {
        merge(&mut merged, &layer.table);
    }
    let config: Config = toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError {
            origin: "configuration".into(),
            line: None,
            key: None,
            message: e.message().trim().to_string(),
        })?;
    config.check().map_err(|(key, message)| {
        // Blame the layer that set the key last (or the defaults, which are valid).
        let layer = layers.iter().rev().find(|l| l.has_key(key));
        ConfigError {
            origin: layer.map_or("defaults".into(), |l| l.origin.clone()),
            line: layer.and_then(|l| l.line_of_key(key)),
            key: Some(key.to_string()),
            message,
        }
    })?;
    Ok(config)
}

fn merge(base: &mut Table, over: &Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The effective configuration as a config file would say it.
pub fn to_toml(config: &Config) -> String {
    toml::to_string_pretty(config).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub origin: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(origin: &str, text: &str) -> Layer {
        Layer::parse(origin, text).unwrap()
    }

    #[test]
    fn later_layers_win_key_by_key() {
        let board = layer(
            "board b",
            "[video]\nsize = \"640x480\"\nfps = 15\nbitrate_kbps = 600\n",
        );
        let file = layer(
            "rtcam.toml",
            "[video]\nfps = 25\n[server]\nmax_viewers = 4\n",
        );
        let mut cli = Table::new();
        let mut video = Table::new();
        video.insert("bitrate_kbps".into(), 900.into());
        cli.insert("video".into(), video.into());
        let c = load(&[board, file, Layer::from_table("command line", cli)]).unwrap();
        assert_eq!(c.video.size.to_string(), "640x480", "from the board");
        assert_eq!(c.video.fps, 25, "the file overrides the board");
        assert_eq!(c.video.bitrate_kbps, 900, "the command line overrides both");
        assert_eq!(c.server.max_viewers, 4);
        assert_eq!(
            c.server.listen,
            ServerConfig::default().listen,
            "untouched keys keep defaults"
        );
    }

    #[test]
    fn no_layers_means_the_defaults() {
        assert_eq!(load(&[]).unwrap(), Config::default());
    }

    #[test]
    fn printed_config_reads_back_the_same() {
        let mut c = Config::default();
        c.video.source = SourceSpec::Device("/dev/video2".into());
        c.server.cors_origin = Some("*".into());
        let text = to_toml(&c);
        assert_eq!(load(&[layer("printed", &text)]).unwrap(), c);
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let cases = [
            ("[video]\nfps = 30\nfsp = 30\n", Some(3), "fsp"),
            ("[server]\nmax_viewers = \"many\"\n", Some(2), "string"),
            ("[video]\nsize = \"641x480\"\n", Some(2), "even"),
            ("[nonsense]\n", Some(1), "nonsense"),
            ("[video\n", Some(1), ""),
        ];
        for (text, line, words) in cases {
            let err = Layer::parse("rtcam.toml", text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.to_string().contains(words), "{text:?}: {err}");
            assert!(err.to_string().starts_with("rtcam.toml:"), "{err}");
        }
    }

    #[test]
    fn out_of_range_values_name_the_key_and_where_it_was_set() {
        let file = layer(
            "rtcam.toml",
            "[server]\nlisten = \"127.0.0.1:1\"\n\n[video]\nfps = 500\n",
        );
        let err = load(&[file]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("video.fps"));
        assert_eq!(err.line, Some(5));
        assert_eq!(
            err.to_string(),
            "rtcam.toml:5: video.fps: must be from 1 to 120"
        );

        let board = layer("board x", "[video]\nbitrate_kbps = 10\n");
        let err = load(&[board]).unwrap_err();
        assert_eq!(err.origin, "board x");
        assert_eq!(err.key.as_deref(), Some("video.bitrate_kbps"));
    }

    #[test]
    fn sources_parse() {
        assert_eq!("auto".parse(), Ok(SourceSpec::Auto));
        assert_eq!("test".parse(), Ok(SourceSpec::Test));
        assert_eq!(
            "/dev/video2".parse(),
            Ok(SourceSpec::Device("/dev/video2".into()))
        );
        assert!("".parse::<SourceSpec>().is_err());
        assert_eq!("libcamera".parse(), Ok(SourceSpec::Libcamera(0)));
        assert_eq!("libcamera:2".parse(), Ok(SourceSpec::Libcamera(2)));
        assert_eq!(SourceSpec::Libcamera(2).to_string(), "libcamera:2");
        let err = "libcamera:x".parse::<SourceSpec>().unwrap_err();
        assert!(err.contains("libcamera:N"), "{err}");
    }

    #[test]
    fn seconds_parse_within_bounds() {
        assert_eq!(parse_seconds("2"), Ok(2.0));
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("abc").is_err());
        assert!(parse_seconds("1e9").is_err());
    }
}
