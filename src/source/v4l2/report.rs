//! `rtcam devices`: the capture devices as text for people or JSON for scripts.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::device::{self, DeviceReport, FormatReport, SizeReport, list_devices};
use crate::source::{ControlKind, PlaneFormat};

/// Prints every capture device, then the H.264 encoders (V4L2 memory-to-memory) rtcam can
/// use; succeeds also when there are none (and says so).
pub fn print_devices(json: bool) -> ExitCode {
    let mut devices = list_devices();
    let capture_devices = devices.len();
    devices.extend(encoders());
    let libcamera = crate::source::libcamera::helpers::report();
    if json {
        // One array: V4L2 devices (with `path`), then libcamera cameras (with `source`).
        let mut all: Vec<serde_json::Value> = devices
            .iter()
            .filter_map(|d| serde_json::to_value(d).ok())
            .collect();
        match &libcamera {
            Ok(cameras) => all.extend(cameras.iter().filter_map(|c| serde_json::to_value(c).ok())),
            Err(why) => eprintln!("rtcam devices: libcamera: {why}"),
        }
        match serde_json::to_string_pretty(&all) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("rtcam devices: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        if capture_devices == 0 {
            println!("no V4L2 capture devices (looked at /dev/video*)");
        }
        for device in &devices {
            print!("{}", describe(device));
        }
        if devices.len() == capture_devices {
            println!(
                "no hardware H.264 encoder (V4L2 memory-to-memory) found: rtcam encodes in \
                 software"
            );
        }
    }
    if !json {
        match &libcamera {
            Ok(cameras) if cameras.is_empty() => {}
            Ok(cameras) => {
                for c in cameras {
                    print!("{}", describe_libcamera(c));
                }
            }
            Err(why) => println!("libcamera: {why}"),
        }
    }
    ExitCode::SUCCESS
}

/// One libcamera camera as readable text.
fn describe_libcamera(c: &crate::source::libcamera::helpers::LibcameraReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} (libcamera, via {})",
        c.source, c.camera.model, c.helper
    );
    let _ = writeln!(
        out,
        "  id {}{}",
        c.camera.id,
        if c.usb {
            " (USB: --source auto uses it through V4L2)"
        } else {
            ""
        }
    );
    if !c.camera.modes.is_empty() {
        let _ = writeln!(out, "  sensor modes:");
        for mode in &c.camera.modes {
            let _ = writeln!(out, "    {mode}");
        }
    }
    let _ = writeln!(out, "  controls:");
    for control in &c.controls {
        let _ = writeln!(
            out,
            "    {} = {}  [{}]",
            control.name,
            control.value.unwrap_or(control.default),
            control.label
        );
    }
    out
}

/// The encoders `--encoder auto` may use, as devices.
fn encoders() -> Vec<DeviceReport> {
    crate::encode::m2m::discover::h264_encoders()
        .into_iter()
        .map(encoder_report)
        .collect()
}

fn encoder_report(found: crate::encode::m2m::discover::FoundEncoder) -> DeviceReport {
    DeviceReport {
        path: found.path,
        name: found.card,
        driver: found.driver,
        bus: String::new(),
        multiplanar: found.multiplanar,
        // What it takes: a camera delivering a raw one of these goes in as it is.
        formats: found
            .inputs
            .iter()
            .map(|&fourcc| FormatReport {
                fourcc: device::fourcc_text(fourcc),
                description: "picture input".into(),
                compressed: false,
                usable: PlaneFormat::of_camera(fourcc, 2, 2, 4).is_some(),
                sizes: Vec::new(),
            })
            .collect(),
        controls: Vec::new(),
        error: None,
        encoder: Some("H264".into()),
    }
}

/// One device as readable text.
pub(crate) fn describe(d: &DeviceReport) -> String {
    let mut out = String::new();
    if let Some(codec) = &d.encoder {
        let _ = writeln!(
            out,
            "{}: {} ({codec} encoder, V4L2 memory-to-memory, driver {}{})",
            d.path.display(),
            d.name,
            d.driver,
            if d.multiplanar { ", multi-planar" } else { "" }
        );
        let as_they_are: Vec<&str> = d
            .formats
            .iter()
            .filter(|f| f.usable)
            .map(|f| f.fourcc.as_str())
            .collect();
        if !as_they_are.is_empty() {
            let _ = writeln!(
                out,
                "  takes camera pictures as they are in: {}",
                as_they_are.join(", ")
            );
        }
        return out;
    }
    let _ = writeln!(out, "{}: {}", d.path.display(), d.name);
    let _ = writeln!(
        out,
        "  driver {}, bus {}{}",
        d.driver,
        d.bus,
        if d.multiplanar { ", multi-planar" } else { "" }
    );
    if let Some(error) = &d.error {
        let _ = writeln!(out, "  error: {error}");
    }
    if !d.formats.is_empty() {
        let _ = writeln!(out, "  formats:");
    }
    for f in &d.formats {
        let note = if f.usable {
            ""
        } else {
            " (rtcam cannot use it)"
        };
        let _ = writeln!(out, "    {} {}{note}", f.fourcc, f.description);
        for size in &f.sizes {
            match size {
                SizeReport::Discrete { width, height, fps } => {
                    let rates: Vec<String> = fps.iter().map(|r| format!("{r}")).collect();
                    let _ = writeln!(out, "      {width}x{height} @ {} fps", rates.join(", "));
                }
                SizeReport::Range {
                    min_width,
                    max_width,
                    step_width,
                    min_height,
                    max_height,
                    step_height,
                } => {
                    let _ = writeln!(
                        out,
                        "      {min_width}x{min_height} to {max_width}x{max_height} \
                         (steps {step_width}x{step_height})"
                    );
                }
            }
        }
    }
    if !d.controls.is_empty() {
        let _ = writeln!(out, "  controls:");
    }
    for c in &d.controls {
        let value = c.value.map_or("-".to_string(), |v| v.to_string());
        let kind = match c.kind {
            ControlKind::Integer => format!(
                "int {}..{} step {} default {}",
                c.min, c.max, c.step, c.default
            ),
            ControlKind::Boolean => format!("bool default {}", c.default),
            ControlKind::Menu | ControlKind::IntegerMenu => {
                let entries: Vec<String> = c.menu.iter().map(|(i, t)| format!("{i}={t}")).collect();
                format!("menu [{}] default {}", entries.join(", "), c.default)
            }
            ControlKind::Button => "button".to_string(),
            ControlKind::Integer64 => format!("int64 {}..{}", c.min, c.max),
            ControlKind::Other => "other".to_string(),
        };
        let ro = if c.writable { "" } else { " (read-only now)" };
        let _ = writeln!(out, "    {} = {value}  [{kind}]{ro}", c.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoder_says_which_camera_formats_go_in_as_they_are() {
        let encoder = encoder_report(crate::encode::m2m::discover::FoundEncoder {
            path: "/dev/video11".into(),
            card: "bcm2835-codec-encode".into(),
            driver: "bcm2835-codec".into(),
            multiplanar: true,
            inputs: vec![*b"YU12", *b"RGBP", *b"YUYV", *b"NM12"],
        });
        assert_eq!(
            describe(&encoder),
            "/dev/video11: bcm2835-codec-encode (H264 encoder, V4L2 memory-to-memory, driver \
             bcm2835-codec, multi-planar)\n  takes camera pictures as they are in: YU12, YUYV\n"
        );
    }
}
