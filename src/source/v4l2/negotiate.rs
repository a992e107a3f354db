//! Choosing a camera format: the size and rate closest to what was asked, then the cheapest
//! format to turn into I420 (YU12 > NV12 > YUYV/UYVY > MJPEG). Pure, so it is tested on the
//! offers of made-up cameras.
//!
//! Closeness comes first because a cheap format at the wrong size or a third of the frame rate
//! is worse than a dearer one that matches: UVC webcams typically offer YUYV 1280x720 at 10 fps
//! only (USB 2 bandwidth) and MJPEG at 30, and a user asking for 720p30 wants the MJPEG.

use crate::source::convert::PixelFormat;

/// Frame rates a size is offered at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FpsOffer {
    List(Vec<f64>),
    /// Any rate from the first to the second.
    Range(f64, f64),
    /// The driver does not say.
    Unknown,
}

impl FpsOffer {
    /// The rate to ask for when `wanted` is wanted: the lowest rate at or above it (extra
    /// frames are dropped cheaply), else the highest there is.
    pub(crate) fn best_for(&self, wanted: f64) -> f64 {
        match self {
            FpsOffer::List(list) if !list.is_empty() => {
                let at_least = list
                    .iter()
                    .copied()
                    .filter(|f| *f >= wanted - 0.01)
                    .min_by(f64::total_cmp);
                at_least.unwrap_or_else(|| list.iter().copied().fold(0.0, f64::max))
            }
            FpsOffer::Range(low, high) => wanted.clamp(low.min(*high), high.max(*low)),
            _ => wanted,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SizeOffer {
    pub width: u32,
    pub height: u32,
    pub fps: FpsOffer,
}

/// One format a device offers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Offer {
    pub format: PixelFormat,
    /// The driver's exact fourcc (`NM12` and `NV12` are both NV12 to the converter).
    pub fourcc: [u8; 4],
    /// Memory planes per buffer.
    pub mem_planes: usize,
    pub sizes: Vec<SizeOffer>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Wanted {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// `--format`: only this format; None = the cheapest good one (never H.264, which is only
    /// passed through when asked for).
    pub format: Option<PixelFormat>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Choice {
    pub format: PixelFormat,
    pub fourcc: [u8; 4],
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// Picks the offer closest to `wanted`; the error says what the camera has instead.
pub(crate) fn choose(offers: &[Offer], wanted: &Wanted) -> Result<Choice, String> {
    let allowed = |offer: &&Offer| match wanted.format {
        Some(format) => offer.format == format,
        None => offer.format != PixelFormat::H264,
    };
    let mut best: Option<((u64, u64, usize, usize), Choice)> = None;
    for offer in offers.iter().filter(allowed) {
        // Within a format, the single-planar variant first (one buffer to map).
        for size in &offer.sizes {
            let fps = size.fps.best_for(f64::from(wanted.fps));
            let size_distance = u64::from(size.width.abs_diff(wanted.width))
                + u64::from(size.height.abs_diff(wanted.height));
            let fps_shortfall = ((f64::from(wanted.fps) - fps).max(0.0) * 100.0).round() as u64;
            let key = (
                size_distance,
                fps_shortfall,
                offer.format.cost(),
                offer.mem_planes,
            );
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((
                    key,
                    Choice {
                        format: offer.format,
                        fourcc: offer.fourcc,
                        width: size.width,
                        height: size.height,
                        fps,
                    },
                ));
            }
        }
    }
    best.map(|(_, choice)| choice).ok_or_else(|| {
        let have: Vec<String> = offers
            .iter()
            .map(|o| String::from_utf8_lossy(&o.fourcc).into_owned())
            .collect();
        let have = if have.is_empty() {
            "none rtcam can use".to_string()
        } else {
            have.join(", ")
        };
        match wanted.format {
            Some(format) => format!("the camera does not offer {format} (it has: {have})"),
            None => format!("the camera offers no format rtcam can convert (usable: {have})"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(format: PixelFormat, sizes: &[(u32, u32, &[f64])]) -> Offer {
        Offer {
            format,
            fourcc: format.name().as_bytes().try_into().unwrap(),
            mem_planes: 1,
            sizes: sizes
                .iter()
                .map(|(w, h, fps)| SizeOffer {
                    width: *w,
                    height: *h,
                    fps: FpsOffer::List(fps.to_vec()),
                })
                .collect(),
        }
    }

    fn wanted(width: u32, height: u32, fps: u32) -> Wanted {
        Wanted {
            width,
            height,
            fps,
            format: None,
        }
    }

    /// A typical USB 2 webcam.
    fn uvc_webcam() -> Vec<Offer> {
        vec![
            offer(
                PixelFormat::Yuyv,
                &[(640, 480, &[30.0, 15.0]), (1280, 720, &[10.0, 5.0])],
            ),
            offer(
                PixelFormat::Mjpeg,
                &[(640, 480, &[30.0]), (1280, 720, &[30.0, 15.0])],
            ),
            offer(PixelFormat::H264, &[(1280, 720, &[30.0])]),
        ]
    }

    #[test]
    fn the_cheapest_format_wins_when_sizes_and_rates_match() {
        let choice = choose(&uvc_webcam(), &wanted(640, 480, 30)).unwrap();
        assert_eq!(
            (choice.format, choice.width, choice.height, choice.fps),
            (PixelFormat::Yuyv, 640, 480, 30.0)
        );
        let board = vec![
            offer(PixelFormat::Yuyv, &[(1280, 720, &[30.0])]),
            offer(PixelFormat::Nv12, &[(1280, 720, &[30.0])]),
            offer(PixelFormat::I420, &[(1280, 720, &[30.0])]),
        ];
        assert_eq!(
            choose(&board, &wanted(1280, 720, 30)).unwrap().format,
            PixelFormat::I420
        );
    }

    #[test]
    fn a_dearer_format_at_the_asked_rate_beats_a_cheap_one_too_slow() {
        let choice = choose(&uvc_webcam(), &wanted(1280, 720, 30)).unwrap();
        assert_eq!((choice.format, choice.fps), (PixelFormat::Mjpeg, 30.0));
        // Asking for 10 fps, YUYV does it.
        let choice = choose(&uvc_webcam(), &wanted(1280, 720, 10)).unwrap();
        assert_eq!((choice.format, choice.fps), (PixelFormat::Yuyv, 10.0));
    }

    #[test]
    fn the_nearest_size_and_rate_when_nothing_matches() {
        let choice = choose(&uvc_webcam(), &wanted(800, 600, 25)).unwrap();
        assert_eq!((choice.width, choice.height), (640, 480));
        assert_eq!(
            choice.fps, 30.0,
            "the lowest rate at or above the asked one"
        );
        let choice = choose(&uvc_webcam(), &wanted(1920, 1080, 60)).unwrap();
        assert_eq!((choice.width, choice.height, choice.fps), (1280, 720, 30.0));
    }

    #[test]
    fn h264_only_when_forced_and_a_forced_format_must_exist() {
        let forced = Wanted {
            format: Some(PixelFormat::H264),
            ..wanted(640, 480, 30)
        };
        let choice = choose(&uvc_webcam(), &forced).unwrap();
        assert_eq!(
            (choice.format, choice.width, choice.height),
            (PixelFormat::H264, 1280, 720)
        );
        let missing = Wanted {
            format: Some(PixelFormat::Nv12),
            ..wanted(640, 480, 30)
        };
        let err = choose(&uvc_webcam(), &missing).unwrap_err();
        assert!(
            err.contains("does not offer NV12") && err.contains("YUYV, MJPG, H264"),
            "{err}"
        );
        let only_h264 = vec![offer(PixelFormat::H264, &[(1280, 720, &[30.0])])];
        assert!(choose(&only_h264, &wanted(1280, 720, 30)).is_err());
    }

    #[test]
    fn rate_ranges_and_unknown_rates() {
        assert_eq!(FpsOffer::Range(1.0, 60.0).best_for(30.0), 30.0);
        assert_eq!(FpsOffer::Range(1.0, 25.0).best_for(30.0), 25.0);
        assert_eq!(FpsOffer::Unknown.best_for(30.0), 30.0);
        assert_eq!(FpsOffer::List(vec![60.0, 30.0, 15.0]).best_for(20.0), 30.0);
        assert_eq!(FpsOffer::List(vec![]).best_for(20.0), 20.0);
    }
}
