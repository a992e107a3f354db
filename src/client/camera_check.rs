//! Checks that what a viewer decodes comes from a camera, for the VM harness (`tests/vm`):
//! the pictures carry no test-pattern stamp, they change from frame to frame, and they show
//! the kernel's vivid driver's default picture (75% colour bars, white to black, left to right).
//! Also recognises rtcam's own "no signal" placeholder. Pure functions on decoded pictures.

use serde::Serialize;

use super::Picture;

/// Luma of 75% colour bars (BT.601, limited range): white, yellow, cyan, green, magenta, red,
/// blue, black.
pub const BARS_75_LUMA: [u8; 8] = [180, 162, 131, 112, 84, 65, 35, 16];
/// How far a bar may be from its nominal luma after H.264 at a low bitrate.
const BAR_TOLERANCE: u8 = 24;
/// The placeholder's background luma (`source::no_signal`).
const PLACEHOLDER_LUMA: u8 = 40;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PictureReport {
    pub pictures: usize,
    /// Pictures with a readable test-pattern stamp.
    pub stamped: usize,
    /// Consecutive pairs that differ.
    pub changing_pairs: usize,
    /// Pictures whose bars match vivid's colour bars.
    pub colour_bars: usize,
    /// Pictures that look like the "no signal" placeholder.
    pub placeholders: usize,
    /// The bar lumas measured in the last picture.
    pub last_bars: Vec<u8>,
    pub mean_luma: f64,
}

pub fn report(pictures: &[Picture]) -> PictureReport {
    let changing_pairs = pictures
        .windows(2)
        .filter(|pair| pair[0].luma != pair[1].luma)
        .count();
    let mean_luma = pictures.last().map_or(0.0, mean);
    PictureReport {
        pictures: pictures.len(),
        stamped: pictures.iter().filter(|p| p.stamp.is_some()).count(),
        changing_pairs,
        colour_bars: pictures
            .iter()
            .filter(|p| bars_match(&bar_lumas(p)))
            .count(),
        placeholders: pictures.iter().filter(|p| is_placeholder(p)).count(),
        last_bars: pictures
            .last()
            .map(|p| bar_lumas(p).to_vec())
            .unwrap_or_default(),
        mean_luma: (mean_luma * 10.0).round() / 10.0,
    }
}

impl PictureReport {
    /// Camera frames: at least `min` pictures, none stamped, changing, mostly vivid's bars.
    pub fn is_camera(&self, min: usize) -> Result<(), String> {
        if self.pictures < min {
            return Err(format!(
                "only {} pictures decoded, wanted {min}",
                self.pictures
            ));
        }
        if self.stamped > 0 {
            return Err(format!(
                "{} pictures carry the test-pattern stamp",
                self.stamped
            ));
        }
        if self.changing_pairs == 0 {
            return Err("the pictures never change".into());
        }
        if self.colour_bars * 10 < self.pictures * 8 {
            return Err(format!(
                "only {} of {} pictures show the colour bars (last: {:?})",
                self.colour_bars, self.pictures, self.last_bars
            ));
        }
        Ok(())
    }

    /// The "no signal" placeholder: at least `min` pictures, most of them the placeholder.
    pub fn is_placeholder(&self, min: usize) -> Result<(), String> {
        if self.pictures < min {
            return Err(format!(
                "only {} pictures decoded, wanted {min}",
                self.pictures
            ));
        }
        if self.placeholders * 10 < self.pictures * 8 {
            return Err(format!(
                "only {} of {} pictures are the 'no signal' placeholder",
                self.placeholders, self.pictures
            ));
        }
        Ok(())
    }
}

/// What a decoded picture shows, as far as these checks can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// vivid's colour bars, no stamp: a camera frame.
    Camera,
    /// rtcam's "no signal" placeholder.
    Placeholder,
    /// rtcam's test pattern (it carries a stamp).
    Stamped,
    /// Anything else (a picture in transition, another camera's picture).
    Other,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Camera => "camera",
            Kind::Placeholder => "placeholder",
            Kind::Stamped => "stamped",
            Kind::Other => "other",
        }
    }
}

/// Sorts one picture into a `Kind`, with the same tests `report` counts with.
pub fn classify(p: &Picture) -> Kind {
    if p.stamp.is_some() {
        Kind::Stamped
    } else if is_placeholder(p) {
        Kind::Placeholder
    } else if bars_match(&bar_lumas(p)) {
        Kind::Camera
    } else {
        Kind::Other
    }
}

/// Mean luma of the whole picture (0 for an empty one).
pub fn mean(p: &Picture) -> f64 {
    if p.luma.is_empty() {
        return 0.0;
    }
    p.luma.iter().map(|&v| f64::from(v)).sum::<f64>() / p.luma.len() as f64
}

/// Mean luma of a small block in the middle of each eighth of the picture, near the bottom:
/// vivid's text overlay has a fixed font size, so in a 320x180 picture it reaches three
/// quarters of the way down.
pub fn bar_lumas(p: &Picture) -> [u8; 8] {
    let mut out = [0u8; 8];
    if p.width < 16 || p.height < 8 || p.luma.len() < p.width * p.height {
        return out;
    }
    let row = p.height * 15 / 16;
    let half = (p.width / 64).clamp(1, 4);
    for (i, bar) in out.iter_mut().enumerate() {
        let x = (2 * i + 1) * p.width / 16;
        let (mut sum, mut n) = (0u32, 0u32);
        for y in row.saturating_sub(half)..(row + half).min(p.height) {
            for x in x.saturating_sub(half)..(x + half).min(p.width) {
                sum += u32::from(p.luma[y * p.width + x]);
                n += 1;
            }
        }
        *bar = (sum / n.max(1)) as u8;
    }
    out
}

fn bars_match(lumas: &[u8; 8]) -> bool {
    lumas
        .iter()
        .zip(BARS_75_LUMA)
        .all(|(&got, want)| got.abs_diff(want) <= BAR_TOLERANCE)
        && lumas.windows(2).all(|pair| pair[0] > pair[1])
}

fn is_placeholder(p: &Picture) -> bool {
    let near = p
        .luma
        .iter()
        .filter(|&&v| v.abs_diff(PLACEHOLDER_LUMA) <= 6)
        .count();
    p.stamp.is_none() && near * 2 > p.luma.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::no_signal::NoSignal;
    use std::time::Instant;

    fn bars(width: usize, height: usize, offset: u8) -> Picture {
        let luma = (0..width * height)
            .map(|i| BARS_75_LUMA[(i % width) * 8 / width].saturating_add(offset))
            .collect();
        Picture {
            width,
            height,
            stamp: None,
            luma,
        }
    }

    /// vivid at 320x180: its text overlay (black boxes, white letters) covers the bars down
    /// to about row 135; the bars are read below it.
    #[test]
    fn bars_under_vivids_text_overlay_are_read_below_it() {
        let mut p = bars(320, 180, 0);
        for y in 0..136 {
            for x in 0..300 {
                p.luma[y * 320 + x] = if (x / 3 + y / 5) % 4 == 0 { 235 } else { 16 };
            }
        }
        assert!(bars_match(&bar_lumas(&p)), "{:?}", bar_lumas(&p));
    }

    #[test]
    fn colour_bars_that_change_are_camera_frames() {
        let pictures: Vec<Picture> = (0..12).map(|i| bars(320, 180, (i % 2) as u8)).collect();
        let r = report(&pictures);
        assert_eq!(r.colour_bars, 12);
        assert_eq!(r.changing_pairs, 11);
        assert_eq!(r.is_camera(10), Ok(()));
        assert!(r.is_placeholder(5).is_err());
    }

    #[test]
    fn still_or_stamped_or_other_pictures_are_not() {
        let still: Vec<Picture> = (0..12).map(|_| bars(320, 180, 0)).collect();
        assert!(
            report(&still)
                .is_camera(10)
                .unwrap_err()
                .contains("never change")
        );
        let mut stamped: Vec<Picture> = (0..12).map(|i| bars(320, 180, i as u8)).collect();
        stamped[3].stamp = Some(crate::source::stamp::Stamp {
            seq: 1,
            capture_us: 2,
        });
        assert!(
            report(&stamped)
                .is_camera(10)
                .unwrap_err()
                .contains("stamp")
        );
        let grey: Vec<Picture> = (0..12)
            .map(|i| Picture {
                width: 64,
                height: 32,
                stamp: None,
                luma: vec![100 + i as u8; 64 * 32],
            })
            .collect();
        assert!(
            report(&grey)
                .is_camera(10)
                .unwrap_err()
                .contains("colour bars")
        );
        assert!(
            report(&grey[..3])
                .is_camera(10)
                .unwrap_err()
                .contains("only 3")
        );
    }

    #[test]
    fn the_placeholder_is_recognised() {
        let placeholder = NoSignal::new(320, 180, "camera lost");
        let now = Instant::now();
        let pictures: Vec<Picture> = (0..6)
            .map(|i| {
                let frame = placeholder.frame(i, now, now);
                Picture {
                    width: 320,
                    height: 180,
                    stamp: None,
                    luma: frame.y().to_vec(),
                }
            })
            .collect();
        assert_eq!(report(&pictures).is_placeholder(5), Ok(()));
        assert!(pictures.iter().all(|p| classify(p) == Kind::Placeholder));
    }

    #[test]
    fn pictures_are_classified() {
        assert_eq!(classify(&bars(320, 180, 0)), Kind::Camera);
        let mut stamped = bars(320, 180, 0);
        stamped.stamp = Some(crate::source::stamp::Stamp {
            seq: 1,
            capture_us: 2,
        });
        assert_eq!(classify(&stamped), Kind::Stamped);
        let grey = Picture {
            width: 64,
            height: 32,
            stamp: None,
            luma: vec![100; 64 * 32],
        };
        assert_eq!(classify(&grey), Kind::Other);
        assert_eq!(mean(&grey), 100.0);
    }
}
