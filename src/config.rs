//! The effective configuration: defaults, then what the user asked for on the command line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::encode::EncoderSettings;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// HTTP listen address (page, WHEP, status).
    pub listen: SocketAddr,
    /// The one UDP port for all media; 0 picks a free one.
    pub rtc_port: u16,
    pub source: SourceSpec,
    pub encoder: EncoderSettings,
    pub max_viewers: usize,
    /// `Access-Control-Allow-Origin` for cross-origin WHEP players; None = CORS off.
    pub cors_origin: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            rtc_port: 8555,
            source: SourceSpec::Auto,
            encoder: EncoderSettings::default(),
            max_viewers: 16,
            cors_origin: None,
        }
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
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(SourceSpec::Auto),
            "test" => Ok(SourceSpec::Test),
            "" => Err("expected auto, test or a device path such as /dev/video0".into()),
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
        }
    }
}

/// A picture size, `WxH`. Even numbers (I420 halves both), within what H.264 level 5.1 and
/// OpenH264 handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (w, h) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT, e.g. 1280x720"))?;
        let parse = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: {v:?} is not a whole number"))
        };
        let size = Size {
            width: parse(w)?,
            height: parse(h)?,
        };
        if size.width < 64 || size.height < 64 || size.width > 3840 || size.height > 2160 {
            return Err(format!("{s:?}: size must be from 64x64 to 3840x2160"));
        }
        if !size.width.is_multiple_of(2) || !size.height.is_multiple_of(2) {
            return Err(format!("{s:?}: width and height must be even"));
        }
        Ok(size)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// Parses a duration in seconds, fractions allowed (`2`, `0.5`).
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&secs) {
        return Err(format!("{s:?}: must be from 0.1 to 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_say_why() {
        assert_eq!(
            "640x480".parse::<Size>(),
            Ok(Size {
                width: 640,
                height: 480
            })
        );
        assert!("1280X720".parse::<Size>().is_ok());
        for bad in [
            "",
            "640",
            "640x",
            "x480",
            "641x480",
            "10x10",
            "99999x480",
            "-640x480",
        ] {
            let err = bad.parse::<Size>().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
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
    }

    #[test]
    fn seconds_parse_within_bounds() {
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("abc").is_err());
        assert!(parse_seconds("1e9").is_err());
    }
}
