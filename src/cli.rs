//! Command-line options (`rtcam --help`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::config::{Config, Size, SourceSpec, parse_seconds};

#[derive(Debug, Parser)]
#[command(
    name = "rtcam",
    version,
    about = "Low-latency camera streamer: H.264 over WebRTC (WHEP) to any number of browsers",
    after_help = "Open http://<device>:8080/ in a browser to watch. WHEP players can POST an \
                  SDP offer to http://<device>:8080/whep.\n\
                  Logging: RUST_LOG=debug (or e.g. RUST_LOG=rtcam=debug,str0m=info)."
)]
pub struct Cli {
    /// HTTP address for the page, WHEP signaling and status.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// The one UDP port for all WebRTC media (0 = any free port).
    #[arg(long, value_name = "PORT", default_value_t = 8555)]
    pub rtc_port: u16,

    /// Frame source: auto (first camera, else the test pattern), test, or a device path.
    #[arg(long, value_name = "auto|test|DEVICE", default_value = "auto")]
    pub source: SourceSpec,

    /// Picture size.
    #[arg(long, value_name = "WxH", default_value = "1280x720")]
    pub size: Size,

    /// Frames per second.
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=120))]
    pub fps: u32,

    /// Target video bitrate in kbit/s.
    #[arg(long, value_name = "KBPS", default_value_t = 1500,
          value_parser = clap::value_parser!(u32).range(50..=50_000))]
    pub bitrate: u32,

    /// Seconds between periodic IDR frames (viewers also get one on join and on request).
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_seconds)]
    pub idr_interval: Duration,

    /// Most viewers at once; more get 503.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_viewers: u32,

    /// Turn CORS on for cross-origin WHEP players, allowing this origin (or '*').
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Option<String>,
}

impl Cli {
    pub fn into_config(self) -> Config {
        let mut config = Config {
            listen: self.listen,
            rtc_port: self.rtc_port,
            source: self.source,
            max_viewers: self.max_viewers as usize,
            cors_origin: self.cors_origin,
            ..Config::default()
        };
        config.encoder.width = self.size.width;
        config.encoder.height = self.size.height;
        config.encoder.fps = self.fps;
        config.encoder.bitrate_kbps = self.bitrate;
        config.encoder.idr_interval = self.idr_interval;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let argv = std::iter::once("rtcam").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(Cli::into_config)
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        assert_eq!(parse(&[]).unwrap(), Config::default());
    }

    #[test]
    fn options_reach_the_config() {
        let c = parse(&[
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
        ])
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.rtc_port, 0);
        assert_eq!(c.source, SourceSpec::Test);
        assert_eq!((c.encoder.width, c.encoder.height), (640, 480));
        assert_eq!(c.encoder.fps, 15);
        assert_eq!(c.encoder.bitrate_kbps, 800);
        assert_eq!(c.encoder.idr_interval, Duration::from_millis(1500));
        assert_eq!(c.max_viewers, 4);
        assert_eq!(c.cors_origin.as_deref(), Some("*"));
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
            &["--source", ""],
            &["--no-such-flag"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }
}
