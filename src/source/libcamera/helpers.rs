//! Which program reaches libcamera, what it is told, and which cameras it sees.
//!
//! - `rpicam-vid` (`libcamera-vid` on older Raspberry Pi OS): Raspberry Pi's own app, built
//!   against the same libcamera fork as the OS, so it keeps working across that fork's ABI
//!   changes. I420 on stdout (`--codec yuv420 -o -`), settings as flags.
//! - libcamera's `cam` (Debian's `libcamera-tools`, any distribution): the reference app. It
//!   writes each frame to a file, here its fd 3 reopened through /proc (a pipe to rtcam),
//!   while its per-frame text goes to stderr; settings through a capture script. It delivers
//!   the camera's native format; rtcam asks for packed RGB (all that libcamera's vimc
//!   pipeline, the VM test's camera, offers).
//!
//! `RTCAM_LIBCAMERA_HELPER` names the program (a path, or one of the names above) when the
//! search on PATH should not decide.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::rgb::RgbOrder;
use super::settings::{AF_MODES, AWB_MODES, Capabilities};
use std::collections::BTreeMap;

/// Programs looked for on PATH, in order of preference.
const SEARCH: [&str; 3] = ["rpicam-vid", "libcamera-vid", "cam"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelperKind {
    Rpicam,
    Cam,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Helper {
    pub kind: HelperKind,
    pub program: PathBuf,
}

impl Helper {
    /// The helper to use: `RTCAM_LIBCAMERA_HELPER`, else the first of `SEARCH` on PATH.
    pub(crate) fn find() -> Result<Helper, String> {
        if let Some(chosen) = std::env::var_os("RTCAM_LIBCAMERA_HELPER") {
            let chosen = PathBuf::from(chosen);
            let program = if chosen.components().count() > 1 {
                Some(chosen.clone())
            } else {
                on_path(&chosen.to_string_lossy())
            };
            return program
                .map(|program| Helper::for_program(&program))
                .ok_or_else(|| format!("RTCAM_LIBCAMERA_HELPER: {} not found", chosen.display()));
        }
        SEARCH
            .iter()
            .find_map(|name| on_path(name))
            .map(|program| Helper::for_program(&program))
            .ok_or_else(|| {
                "no libcamera helper found: install rpicam-apps (Raspberry Pi OS) or \
                 libcamera-tools (cam)"
                    .to_string()
            })
    }

    pub(crate) fn for_program(program: &Path) -> Helper {
        let name = program.file_name().map(|n| n.to_string_lossy().to_string());
        let kind = if name.as_deref() == Some("cam") {
            HelperKind::Cam
        } else {
            HelperKind::Rpicam
        };
        Helper {
            kind,
            program: program.to_path_buf(),
        }
    }

    pub(crate) fn name(&self) -> String {
        self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().to_string(),
        )
    }

    /// The cameras the helper sees (it prints them and exits).
    pub(crate) fn list(&self) -> Result<Vec<LibcameraCamera>, String> {
        let flag = match self.kind {
            HelperKind::Rpicam => "--list-cameras",
            HelperKind::Cam => "--list",
        };
        let out = Command::new(&self.program)
            .arg(flag)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        // Both streams: rpicam-apps print the list on stderr in some releases.
        let mut text = String::from_utf8_lossy(&out.stdout).to_string();
        text.push('\n');
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(match self.kind {
            HelperKind::Rpicam => parse_rpicam_list(&text),
            HelperKind::Cam => parse_cam_list(&text),
        })
    }

    pub(crate) fn capabilities(&self, camera: Option<&LibcameraCamera>) -> Capabilities {
        match self.kind {
            HelperKind::Cam => Capabilities::Cam,
            HelperKind::Rpicam => Capabilities::Rpicam {
                autofocus: camera.is_some_and(LibcameraCamera::has_autofocus),
            },
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// One camera as a helper lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct LibcameraCamera {
    /// rtcam's number for it (`--source libcamera:N`), from 0.
    pub index: u32,
    /// The sensor (`imx708`) or, from `cam`, the camera's name.
    pub model: String,
    /// libcamera's id (a device-tree path for CSI sensors, a USB path for UVC cameras).
    pub id: String,
    /// Sensor modes as `WIDTHxHEIGHT @ FPS` (rpicam-vid lists them; cam does not).
    pub modes: Vec<String>,
}

impl LibcameraCamera {
    /// USB (UVC) cameras show up in libcamera too; `--source auto` prefers the others (CSI
    /// modules) and reaches USB cameras through V4L2 directly. UVC ids carry "usb" in their
    /// path or end in the USB vendor:product.
    pub(crate) fn is_usb(&self) -> bool {
        let id = self.id.to_ascii_lowercase();
        let vid_pid = id.rsplit('-').next().is_some_and(|tail| {
            let parts: Vec<&str> = tail.split(':').collect();
            parts.len() == 2
                && parts
                    .iter()
                    .all(|p| p.len() == 4 && p.chars().all(|c| c.is_ascii_hexdigit()))
        });
        id.contains("usb") || vid_pid
    }

    /// Camera Module 3 (imx708) has a focus lens.
    pub(crate) fn has_autofocus(&self) -> bool {
        self.model.starts_with("imx708")
    }
}

/// `rpicam-vid --list-cameras`:
/// ```text
/// 0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)
///     Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]
///                              2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]
/// ```
pub(crate) fn parse_rpicam_list(text: &str) -> Vec<LibcameraCamera> {
    let mut cameras: Vec<LibcameraCamera> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        let numbered = trimmed
            .split_once(" : ")
            .and_then(|(index, rest)| Some((index.trim().parse::<u32>().ok()?, rest)));
        if let Some((index, rest)) = numbered {
            {
                let model = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let id = rest
                    .rsplit_once('(')
                    .map(|(_, id)| id.trim_end_matches(')').to_string())
                    .unwrap_or_default();
                cameras.push(LibcameraCamera {
                    index,
                    model,
                    id,
                    modes: Vec::new(),
                });
                continue;
            }
        }
        let Some(camera) = cameras.last_mut() else {
            continue;
        };
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        for pair in words.windows(2) {
            let size_ok = pair[0]
                .split_once('x')
                .is_some_and(|(w, h)| w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok());
            let fps = pair[1]
                .strip_prefix('[')
                .and_then(|f| f.parse::<f64>().ok());
            if let (true, Some(fps)) = (size_ok, fps) {
                camera.modes.push(format!("{} @ {fps} fps", pair[0]));
            }
        }
    }
    cameras
}

/// `cam --list`:
/// ```text
/// Available cameras:
/// 1: 'Sensor B' (platform/vimc.0 Sensor B)
/// ```
/// cam counts from 1; rtcam from 0 like rpicam-vid.
pub(crate) fn parse_cam_list(text: &str) -> Vec<LibcameraCamera> {
    let mut cameras = Vec::new();
    let mut listing = false;
    for line in text.lines() {
        if line.starts_with("Available cameras") {
            listing = true;
            continue;
        }
        if !listing {
            continue;
        }
        let Some((number, rest)) = line.split_once(": ") else {
            continue;
        };
        let Ok(number) = number.trim().parse::<u32>() else {
            continue;
        };
        let (name, id) = match rest.rsplit_once(" (") {
            Some((name, id)) => (name, id.trim_end_matches(')')),
            None => (rest, ""),
        };
        cameras.push(LibcameraCamera {
            index: number.saturating_sub(1),
            model: name.trim().trim_matches('\'').to_string(),
            id: id.to_string(),
            modes: Vec::new(),
        });
    }
    cameras
}

/// One libcamera camera for `rtcam devices`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LibcameraReport {
    /// What `--source` takes for it.
    pub source: String,
    pub helper: String,
    #[serde(flatten)]
    pub camera: LibcameraCamera,
    pub usb: bool,
    pub controls: Vec<crate::source::ControlInfo>,
}

/// The libcamera cameras, for `rtcam devices`: none when no helper is installed; an error
/// when the helper could not list them.
pub(crate) fn report() -> Result<Vec<LibcameraReport>, String> {
    use crate::source::CameraControls;
    let Ok(helper) = Helper::find() else {
        return Ok(Vec::new());
    };
    Ok(helper
        .list()?
        .into_iter()
        .map(|camera| {
            let controls =
                super::settings::LibcameraControls::new(helper.capabilities(Some(&camera)))
                    .list()
                    .unwrap_or_default();
            LibcameraReport {
                source: format!("libcamera:{}", camera.index),
                helper: helper.program.display().to_string(),
                usb: camera.is_usb(),
                camera,
                controls,
            }
        })
        .collect())
}

/// How the helper's frames look on the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pixels {
    I420,
    Rgb(RgbOrder),
}

impl Pixels {
    pub(crate) fn frame_len(self, width: u32, height: u32) -> usize {
        let pixels = width as usize * height as usize;
        match self {
            Pixels::I420 => pixels * 3 / 2,
            Pixels::Rgb(_) => pixels * 3,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Pixels::I420 => "YUV420",
            Pixels::Rgb(_) => "RGB24",
        }
    }
}

/// Everything one helper run needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Launch {
    pub argv: Vec<String>,
    pub pixels: Pixels,
    /// The capture script to write first (cam), as YAML.
    pub script: Option<String>,
}

/// What to start for camera `index` at `width`×`height` and `fps` with control `values`.
/// `script_path` is where the capture script will be (cam).
pub(crate) fn launch(
    helper: &Helper,
    index: u32,
    (width, height, fps): (u32, u32, u32),
    values: &BTreeMap<String, i64>,
    script_path: &Path,
) -> Launch {
    let program = helper.program.display().to_string();
    match helper.kind {
        HelperKind::Rpicam => {
            let mut argv: Vec<String> = vec![program];
            let mut add = |flag: &str, value: String| {
                argv.push(flag.to_string());
                argv.push(value);
            };
            add("--camera", index.to_string());
            add("--timeout", "0".into());
            add("--codec", "yuv420".into());
            add("--output", "-".into());
            add("--width", width.to_string());
            add("--height", height.to_string());
            add("--framerate", fps.to_string());
            let get = |name: &str| values.get(name).copied();
            let hundredths = |v: i64| format!("{:.2}", v as f64 / 100.0);
            if get("auto_exposure") == Some(1) {
                add(
                    "--shutter",
                    get("exposure_time_us").unwrap_or(10_000).to_string(),
                );
                add("--gain", hundredths(get("gain").unwrap_or(100)));
            }
            let awb = get("white_balance_mode").unwrap_or(0);
            add(
                "--awb",
                AWB_MODES.get(awb as usize).unwrap_or(&"auto").to_string(),
            );
            for name in ["brightness", "contrast", "saturation", "sharpness"] {
                if let Some(v) = get(name) {
                    add(&format!("--{name}"), hundredths(v));
                }
            }
            if get("rotate") == Some(180) {
                add("--rotation", "180".into());
            }
            if let Some(mode) = get("focus_mode") {
                let mode = AF_MODES.get(mode as usize).unwrap_or(&"default");
                add("--autofocus-mode", mode.to_string());
                if *mode == "manual" {
                    add(
                        "--lens-position",
                        hundredths(get("lens_position").unwrap_or(100)),
                    );
                }
            }
            for (name, flag) in [("horizontal_flip", "--hflip"), ("vertical_flip", "--vflip")] {
                if get(name) == Some(1) {
                    argv.push(flag.into());
                }
            }
            argv.push("--nopreview".into());
            argv.push("--flush".into());
            Launch {
                argv,
                pixels: Pixels::I420,
                script: None,
            }
        }
        HelperKind::Cam => {
            // `sh` moves cam's stdout (per-frame text) to stderr and its fd 3 (the frames it
            // writes to /proc/self/fd/3) to rtcam's pipe.
            let mut argv: Vec<String> = vec![
                "sh".into(),
                "-c".into(),
                "exec \"$0\" \"$@\" 3>&1 1>&2".into(),
                program,
                format!("--camera={}", index + 1),
                "--capture".into(),
                format!("--stream=width={width},height={height},pixelformat=BGR888"),
                // A size or format the camera adjusted would misalign every frame: fail instead.
                "--strict-formats".into(),
                "--file=/proc/self/fd/3".into(),
            ];
            let script = cam_script(values);
            if script.is_some() {
                argv.push(format!("--script={}", script_path.display()));
            }
            Launch {
                argv,
                pixels: Pixels::Rgb(RgbOrder::Rgb),
                script,
            }
        }
    }
}

/// cam's capture script: the controls that differ from their default, applied from the first
/// request on. None when there is nothing to set (a pipeline without these controls then still
/// starts).
fn cam_script(values: &BTreeMap<String, i64>) -> Option<String> {
    let defaults = [
        ("brightness", "Brightness", 0),
        ("contrast", "Contrast", 100),
        ("saturation", "Saturation", 100),
    ];
    let mut lines = String::new();
    for (name, libcamera_name, default) in defaults {
        let value = values.get(name).copied().unwrap_or(default);
        if value != default {
            lines.push_str(&format!(
                "      {libcamera_name}: {:.2}\n",
                value as f64 / 100.0
            ));
        }
    }
    if lines.is_empty() {
        return None;
    }
    // Frames 0 and 1: cam numbers requests from 0 in some releases and from 1 in others.
    Some(format!("frames:\n  - 0:\n{lines}  - 1:\n{lines}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RPICAM: &str = "Available cameras\n-----------------\n\
        0 : imx708_wide [4608x2592 10-bit RGGB] (/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a)\n    \
        Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]\n                             \
        2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]\n\n\
        1 : imx219 [3280x2464 8-bit RGGB] (/base/axi/pcie@120000/rp1/i2c@80000/imx219@10)\n    \
        Modes: 'SRGGB8' : 640x480 [103.33 fps - (1000, 752)/1280x960 crop]\n";

    #[test]
    fn rpicam_lists_give_models_ids_and_modes() {
        let cameras = parse_rpicam_list(RPICAM);
        assert_eq!(cameras.len(), 2);
        assert_eq!(cameras[0].model, "imx708_wide");
        assert!(cameras[0].has_autofocus() && !cameras[1].has_autofocus());
        assert_eq!(
            cameras[0].modes,
            ["1536x864 @ 120.13 fps", "2304x1296 @ 56.03 fps"]
        );
        assert_eq!((cameras[1].index, cameras[1].modes.len()), (1, 1));
        assert!(!cameras[0].is_usb());
        assert!(parse_rpicam_list("No cameras available!").is_empty());
    }

    #[test]
    fn cam_lists_count_from_zero_and_tell_usb_cameras() {
        let text = "[0:00:01.2] INFO Camera camera_manager.cpp:299 libcamera v0.0.3\n\
            Available cameras:\n1: 'Sensor B' (platform/vimc.0 Sensor B)\n\
            2: HD Pro Webcam C920 (/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1:1.0-046d:082d)\n\
            3: Integrated Camera (\\_SB_.PCI0.XHC_.RHUB.HS05-5:1.0-04f2:b6d9)\n";
        let cameras = parse_cam_list(text);
        assert_eq!(cameras.len(), 3);
        assert_eq!(
            (cameras[0].index, cameras[0].model.as_str()),
            (0, "Sensor B")
        );
        assert_eq!(cameras[0].id, "platform/vimc.0 Sensor B");
        assert!(!cameras[0].is_usb());
        assert!(cameras[1].is_usb() && cameras[2].is_usb());
    }

    #[test]
    fn rpicam_flags_follow_the_controls() {
        let helper = Helper::for_program(Path::new("/usr/bin/rpicam-vid"));
        let mut values = BTreeMap::new();
        values.insert("auto_exposure".to_string(), 1);
        values.insert("exposure_time_us".to_string(), 20_000);
        values.insert("gain".to_string(), 250);
        values.insert("brightness".to_string(), -25);
        values.insert("horizontal_flip".to_string(), 1);
        values.insert("focus_mode".to_string(), 1);
        values.insert("lens_position".to_string(), 350);
        let run = launch(&helper, 1, (640, 480, 30), &values, Path::new("/x"));
        let line = run.argv.join(" ");
        for want in [
            "/usr/bin/rpicam-vid --camera 1 --timeout 0 --codec yuv420 --output - --width 640 --height 480 --framerate 30",
            "--shutter 20000 --gain 2.50",
            "--brightness -0.25",
            "--autofocus-mode manual --lens-position 3.50",
            "--hflip",
        ] {
            assert!(line.contains(want), "{want:?} in {line}");
        }
        assert!(!line.contains("--vflip"));
        assert_eq!(run.pixels.frame_len(640, 480), 640 * 480 * 3 / 2);
        values.insert("auto_exposure".to_string(), 0);
        let auto = launch(&helper, 0, (640, 480, 30), &values, Path::new("/x"))
            .argv
            .join(" ");
        assert!(!auto.contains("--shutter"), "auto exposure sets no shutter");
    }

    #[test]
    fn cam_gets_a_script_only_for_changed_controls() {
        let helper = Helper::for_program(Path::new("/usr/bin/cam"));
        let mut values = BTreeMap::new();
        values.insert("brightness".to_string(), 0);
        let plain = launch(
            &helper,
            0,
            (320, 180, 15),
            &values,
            Path::new("/tmp/s.yaml"),
        );
        assert!(plain.script.is_none());
        assert!(plain.argv.contains(&"--camera=1".to_string()));
        assert!(!plain.argv.iter().any(|a| a.starts_with("--script")));
        values.insert("brightness".to_string(), 50);
        let scripted = launch(
            &helper,
            0,
            (320, 180, 15),
            &values,
            Path::new("/tmp/s.yaml"),
        );
        assert!(scripted.argv.contains(&"--script=/tmp/s.yaml".to_string()));
        let script = scripted.script.expect("a script");
        assert!(
            script.contains("  - 0:\n      Brightness: 0.50\n"),
            "{script}"
        );
        assert_eq!(scripted.pixels.frame_len(320, 180), 320 * 180 * 3);
    }
}
