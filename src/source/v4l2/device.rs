//! Finding capture devices and what they offer: for `rtcam devices`, for `--source auto` and
//! for format negotiation. Everything here reads; nothing streams.

use std::io;
use std::path::{Path, PathBuf};

use linuxvideo::format::{FrameIntervals, FrameSizes, PixelFormat as Fourcc};
use linuxvideo::{BufType, CapabilityFlags, Device};
use serde::Serialize;

use super::controls::list_controls;
use super::negotiate::{FpsOffer, Offer, SizeOffer};
use crate::source::ControlInfo;
use crate::source::convert::PixelFormat;

/// One video capture device as `rtcam devices` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeviceReport {
    pub path: PathBuf,
    /// The card name (`HD Pro Webcam C920`, `vivid`).
    pub name: String,
    pub driver: String,
    pub bus: String,
    /// Capture through the multi-planar API.
    pub multiplanar: bool,
    pub formats: Vec<FormatReport>,
    pub controls: Vec<ControlInfo>,
    /// Set when part of the device could not be read (the rest is still shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set for an encoder (a V4L2 memory-to-memory node rtcam can encode with): what it
    /// encodes to (`H264`). Cameras have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FormatReport {
    pub fourcc: String,
    pub description: String,
    pub compressed: bool,
    /// rtcam can stream this format (converted, or H.264 passed through).
    pub usable: bool,
    pub sizes: Vec<SizeReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum SizeReport {
    Discrete {
        width: u32,
        height: u32,
        /// Frame rates offered at this size (frames per second).
        fps: Vec<f64>,
    },
    Range {
        min_width: u32,
        max_width: u32,
        step_width: u32,
        min_height: u32,
        max_height: u32,
        step_height: u32,
    },
}

/// The video capture nodes under /dev, in numeric order (`video2` before `video10`). Nodes
/// that only carry metadata (UVC makes one per camera) are left out.
pub(crate) fn capture_device_paths() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return Vec::new();
    };
    let mut numbered: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let number = name.to_str()?.strip_prefix("video")?.parse().ok()?;
            Some((number, entry.path()))
        })
        .collect();
    numbered.sort();
    numbered
        .into_iter()
        .map(|(_, path)| path)
        .filter(|path| {
            Device::open(path)
                .ok()
                .and_then(|d| capture_buf_type(&d))
                .is_some()
        })
        .collect()
}

/// The capture buffer type of a device that can stream video, preferring single-planar.
pub(crate) fn capture_buf_type(device: &Device) -> Option<BufType> {
    let caps = device.capabilities().ok()?.device_capabilities();
    if !caps.contains(CapabilityFlags::STREAMING) {
        None
    } else if caps.contains(CapabilityFlags::VIDEO_CAPTURE) {
        Some(BufType::VIDEO_CAPTURE)
    } else if caps.contains(CapabilityFlags::VIDEO_CAPTURE_MPLANE) {
        Some(BufType::VIDEO_CAPTURE_MPLANE)
    } else {
        None
    }
}

/// Everything about every capture device.
pub(crate) fn list_devices() -> Vec<DeviceReport> {
    capture_device_paths()
        .iter()
        .map(|path| describe(path))
        .collect()
}

/// Everything about one device; errors end up in `error`, not as a failure.
pub(crate) fn describe(path: &Path) -> DeviceReport {
    let mut report = DeviceReport {
        path: path.to_path_buf(),
        name: String::new(),
        driver: String::new(),
        bus: String::new(),
        multiplanar: false,
        formats: Vec::new(),
        controls: Vec::new(),
        error: None,
        encoder: None,
    };
    let result = guard(|| -> io::Result<()> {
        let device = Device::open(path)?;
        let caps = device.capabilities()?;
        report.name = caps.card().to_string();
        report.driver = caps.driver().to_string();
        report.bus = caps.bus_info().to_string();
        let buf_type = capture_buf_type(&device)
            .ok_or_else(|| io::Error::other("not a streaming video capture device"))?;
        report.multiplanar = buf_type == BufType::VIDEO_CAPTURE_MPLANE;
        report.formats = formats(&device, buf_type)?;
        report.controls = list_controls(&device).unwrap_or_default();
        Ok(())
    });
    if let Err(e) = result {
        report.error = Some(e.to_string());
    }
    report
}

fn formats(device: &Device, buf_type: BufType) -> io::Result<Vec<FormatReport>> {
    let mut out = Vec::new();
    for desc in device.formats(buf_type) {
        let desc = desc?;
        let fourcc = desc.pixel_format();
        let sizes = match device.frame_sizes(fourcc) {
            Ok(FrameSizes::Discrete(sizes)) => sizes
                .iter()
                .map(|s| SizeReport::Discrete {
                    width: s.width(),
                    height: s.height(),
                    fps: fps_list(device, fourcc, s.width(), s.height()),
                })
                .collect(),
            Ok(FrameSizes::Stepwise(s) | FrameSizes::Continuous(s)) => vec![SizeReport::Range {
                min_width: s.min_width(),
                max_width: s.max_width(),
                step_width: s.step_width().max(1),
                min_height: s.min_height(),
                max_height: s.max_height(),
                step_height: s.step_height().max(1),
            }],
            Err(_) => Vec::new(),
        };
        out.push(FormatReport {
            fourcc: fourcc_text(fourcc.as_fourcc()),
            description: desc.description().to_string(),
            compressed: desc
                .flags()
                .contains(linuxvideo::format::FormatFlags::COMPRESSED),
            usable: PixelFormat::from_fourcc(fourcc.as_fourcc()).is_some(),
            sizes,
        });
    }
    Ok(out)
}

/// Discrete frame rates at a size, highest first; for a range, its two ends.
fn fps_list(device: &Device, fourcc: Fourcc, width: u32, height: u32) -> Vec<f64> {
    let mut fps: Vec<f64> = match device.frame_intervals(fourcc, width, height) {
        Ok(FrameIntervals::Discrete(list)) => list
            .iter()
            .map(|i| fps_of(i.fract().numerator(), i.fract().denominator()))
            .collect(),
        Ok(FrameIntervals::Stepwise(s) | FrameIntervals::Continuous(s)) => vec![
            fps_of(s.min().numerator(), s.min().denominator()),
            fps_of(s.max().numerator(), s.max().denominator()),
        ],
        Err(_) => Vec::new(),
    };
    fps.retain(|f| f.is_finite() && *f > 0.0);
    fps.sort_by(|a, b| b.total_cmp(a));
    fps.dedup();
    fps
}

/// Frames per second for an interval of `numerator / denominator` seconds, to 0.01.
fn fps_of(numerator: u32, denominator: u32) -> f64 {
    if numerator == 0 {
        return 0.0;
    }
    (f64::from(denominator) / f64::from(numerator) * 100.0).round() / 100.0
}

pub(crate) fn fourcc_text(fourcc: [u8; 4]) -> String {
    fourcc
        .iter()
        .map(|&b| match b {
            b' ' => ' ',
            b if b.is_ascii_graphic() => b as char,
            _ => '?',
        })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// What a device offers, in the shape negotiation takes. Range sizes are resolved to the
/// allowed size nearest `wanted`.
pub(crate) fn offers(
    device: &Device,
    buf_type: BufType,
    wanted: (u32, u32),
) -> io::Result<Vec<Offer>> {
    let mut out = Vec::new();
    for desc in device.formats(buf_type) {
        let desc = desc?;
        let fourcc = desc.pixel_format();
        let Some((format, mem_planes)) = PixelFormat::from_fourcc(fourcc.as_fourcc()) else {
            continue;
        };
        let sizes: Vec<(u32, u32)> = match device.frame_sizes(fourcc) {
            Ok(FrameSizes::Discrete(sizes)) => {
                sizes.iter().map(|s| (s.width(), s.height())).collect()
            }
            Ok(FrameSizes::Stepwise(s) | FrameSizes::Continuous(s)) => vec![(
                nearest_step(wanted.0, s.min_width(), s.max_width(), s.step_width()),
                nearest_step(wanted.1, s.min_height(), s.max_height(), s.step_height()),
            )],
            // No size list (some drivers): offer the wanted size, S_FMT adjusts it.
            Err(_) => vec![wanted],
        };
        let sizes = sizes
            .into_iter()
            .map(|(width, height)| SizeOffer {
                width,
                height,
                fps: fps_offer(device, fourcc, width, height),
            })
            .collect();
        out.push(Offer {
            format,
            fourcc: fourcc.as_fourcc(),
            mem_planes,
            sizes,
        });
    }
    Ok(out)
}

fn fps_offer(device: &Device, fourcc: Fourcc, width: u32, height: u32) -> FpsOffer {
    match device.frame_intervals(fourcc, width, height) {
        Ok(FrameIntervals::Discrete(list)) => FpsOffer::List(
            list.iter()
                .map(|i| fps_of(i.fract().numerator(), i.fract().denominator()))
                .filter(|f| *f > 0.0)
                .collect(),
        ),
        Ok(FrameIntervals::Stepwise(s) | FrameIntervals::Continuous(s)) => FpsOffer::Range(
            fps_of(s.max().numerator(), s.max().denominator()),
            fps_of(s.min().numerator(), s.min().denominator()),
        ),
        Err(_) => FpsOffer::Unknown,
    }
}

fn nearest_step(wanted: u32, min: u32, max: u32, step: u32) -> u32 {
    let step = step.max(1);
    let clamped = wanted.clamp(min, max.max(min));
    let steps = (clamped - min + step / 2) / step;
    (min + steps * step).min(max.max(min))
}

/// Runs device enumeration with panics turned into errors: linuxvideo 0.3 asserts on some
/// driver answers (a non-UTF-8 name, an unexpected enumeration type), and a quirky camera must
/// not take rtcam down.
pub(crate) fn guard<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unexpected answer".into());
        Err(io::Error::other(format!(
            "the driver gave an answer rtcam cannot read: {why}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_to_the_nearest_allowed_size() {
        assert_eq!(nearest_step(1280, 16, 1920, 16), 1280);
        assert_eq!(nearest_step(1283, 16, 1920, 8), 1280);
        assert_eq!(nearest_step(1285, 16, 1920, 8), 1288);
        assert_eq!(nearest_step(4000, 16, 1920, 8), 1920);
        assert_eq!(nearest_step(2, 16, 1920, 8), 16);
        assert_eq!(nearest_step(100, 50, 50, 0), 50);
    }

    #[test]
    fn fourcc_text_is_printable() {
        assert_eq!(fourcc_text(*b"YUYV"), "YUYV");
        assert_eq!(fourcc_text(*b"Y8  "), "Y8");
        assert_eq!(fourcc_text([0, b'A', 0xff, b'B']), "?A?B");
    }

    #[test]
    fn rates_come_from_intervals() {
        assert_eq!(fps_of(1, 30), 30.0);
        assert_eq!(fps_of(1001, 30000), 29.97);
        assert_eq!(fps_of(0, 30), 0.0);
    }
}
