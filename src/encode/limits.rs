//! What a stream may be set to, defined once: the configuration, the command line, the
//! `stream.set` command, the test pattern and the encoder all check against these.
//!
//! The bounds are OpenH264's where it has them (picture size, threads) and otherwise what is
//! still a stream worth watching on a small board.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// Frames per second.
pub(crate) const FPS: RangeInclusive<u32> = 1..=120;

/// Target bitrate in kbit/s. Below 50 nothing is recognisable; above 50 Mbit/s no board's
/// network keeps up.
pub(crate) const BITRATE_KBPS: RangeInclusive<u32> = 50..=50_000;

/// Picture width and height: at least a stamp's worth, at most what OpenH264 encodes.
pub(crate) const WIDTH: RangeInclusive<u32> = 64..=3840;
pub(crate) const HEIGHT: RangeInclusive<u32> = 64..=2160;

/// Encoder threads: OpenH264's own limit (MAX_THREADS_NUM); more would be clipped silently.
pub(crate) const THREADS: RangeInclusive<u32> = 1..=4;

/// Temporal layers of an encoding: OpenH264 encodes up to 4; 3 gives the full, half and quarter
/// frame rate.
pub(crate) const TEMPORAL_LAYERS: RangeInclusive<u32> = 1..=3;

/// Seconds between periodic IDRs.
pub(crate) const IDR_INTERVAL_S: RangeInclusive<f64> = 0.1..=3600.0;

/// "from 1 to 120": the words for a range in error messages.
pub(crate) fn range_text<T: fmt::Display>(range: &RangeInclusive<T>) -> String {
    format!("from {} to {}", range.start(), range.end())
}

/// A picture size, `WxH`: even numbers (I420 halves both) within `WIDTH` and `HEIGHT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    /// The size, or the reason it cannot be encoded.
    pub fn check(width: u32, height: u32) -> Result<Size, String> {
        if !WIDTH.contains(&width) || !HEIGHT.contains(&height) {
            return Err(format!(
                "size must be from {}x{} to {}x{}",
                WIDTH.start(),
                HEIGHT.start(),
                WIDTH.end(),
                HEIGHT.end()
            ));
        }
        if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err("width and height must be even".into());
        }
        Ok(Size { width, height })
    }
}

impl Size {
    /// The low encoding's size for a stream of this size: half the width and height (even), or
    /// None when that would be too small to encode.
    pub fn halved(self) -> Option<Size> {
        Size::check((self.width / 2) & !1, (self.height / 2) & !1).ok()
    }
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
        Size::check(parse(w)?, parse(h)?).map_err(|why| format!("{s:?}: {why}"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
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
            "3842x2160",
            "-640x480",
        ] {
            let err = bad.parse::<Size>().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert_eq!(range_text(&FPS), "from 1 to 120");
    }
}
