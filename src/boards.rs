//! Board presets, compiled in from the `boards/` folder: `--board NAME` needs no files on disk.
//!
//! `auto` picks the preset from the device tree's model string, which every Raspberry Pi
//! kernel provides (`/sys/firmware/devicetree/base/model`, "Raspberry Pi 4 Model B Rev 1.4").

/// Names accepted by `--board` and `board =`, besides `auto`.
pub const NAMES: &[&str] = &["generic-usb", "rpi-zero-2w", "rpi3", "rpi4", "rpi5"];

/// Picks the preset for the machine rtcam runs on.
pub const AUTO: &str = "auto";

/// The preset `auto` falls back to on machines it does not recognise.
pub const FALLBACK: &str = "generic-usb";

const PRESETS: &[(&str, &str)] = &[
    ("generic-usb", include_str!("../boards/generic-usb.toml")),
    ("rpi-zero-2w", include_str!("../boards/rpi-zero-2w.toml")),
    ("rpi3", include_str!("../boards/rpi3.toml")),
    ("rpi4", include_str!("../boards/rpi4.toml")),
    ("rpi5", include_str!("../boards/rpi5.toml")),
];

/// Where the kernel publishes the board's model (under /sys, so it is readable inside the
/// systemd unit's sandbox, which hides /proc/device-tree with ProcSubset=pid).
/// The TOML text of a preset.
pub fn preset(name: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// True for a name `--board` accepts: a preset or `auto`.
pub fn is_known(name: &str) -> bool {
    name == AUTO || preset(name).is_some()
}

/// The preset for a device tree model string, None for boards without one.
pub fn for_model(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    let rest = m.strip_prefix("raspberry pi ")?;
    // Order matters: "Zero 2" before "Zero", "Compute Module 4" is a Pi 4, the 400 too.
    let table: &[(&str, &str)] = &[
        ("zero 2", "rpi-zero-2w"),
        ("5", "rpi5"),
        ("compute module 5", "rpi5"),
        ("500", "rpi5"),
        ("4", "rpi4"),
        ("400", "rpi4"),
        ("compute module 4", "rpi4"),
        ("3", "rpi3"),
        ("compute module 3", "rpi3"),
    ];
    table
        .iter()
        .filter(|(prefix, _)| {
            rest.strip_prefix(prefix)
                .is_some_and(|after| after.is_empty() || after.starts_with(' '))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Layer, load};

    #[test]
    fn every_preset_is_a_valid_config() {
        assert_eq!(NAMES.len(), PRESETS.len());
        for name in NAMES {
            let text = preset(name).unwrap();
            let layer = Layer::parse(format!("board {name}"), text).unwrap();
            let config = load(&[layer]).unwrap();
            assert!(
                config.board.is_none(),
                "{name}: a preset must not name a board"
            );
        }
    }

    #[test]
    fn every_preset_says_what_its_numbers_rest_on() {
        for name in NAMES {
            let text = preset(name).unwrap();
            assert!(text.contains("rest on"), "{name}");
            assert!(text.contains("encoder_threads"), "{name}");
        }
    }

    #[test]
    fn boards_with_a_hardware_encoder_use_it_and_the_pi_5_does_not() {
        use crate::encode::EncoderChoice;
        let video = |name: &str| {
            let layer = Layer::parse(name.to_string(), preset(name).unwrap()).unwrap();
            load(&[layer]).unwrap().video
        };
        for name in ["rpi-zero-2w", "rpi3", "rpi4"] {
            let v = video(name);
            assert_eq!(v.encoder, EncoderChoice::Auto, "{name}");
            assert!(
                v.size.width >= 1280 && v.fps == 30,
                "{name}: {} @ {}",
                v.size,
                v.fps
            );
            assert!(preset(name).unwrap().contains("ESTIMATES"), "{name}");
        }
        assert_eq!(video("rpi4").size.to_string(), "1920x1080");
        assert_eq!(video("rpi5").encoder, EncoderChoice::Software);
    }

    #[test]
    fn models_map_to_presets() {
        let cases = [
            ("Raspberry Pi 5 Model B Rev 1.0", Some("rpi5")),
            ("Raspberry Pi 500 Rev 1.0", Some("rpi5")),
            ("Raspberry Pi Compute Module 5 Rev 1.0", Some("rpi5")),
            ("Raspberry Pi 4 Model B Rev 1.4", Some("rpi4")),
            ("Raspberry Pi 400 Rev 1.0", Some("rpi4")),
            ("Raspberry Pi Compute Module 4 Rev 1.0", Some("rpi4")),
            ("Raspberry Pi 3 Model B Plus Rev 1.3", Some("rpi3")),
            ("Raspberry Pi 3 Model A Plus Rev 1.0", Some("rpi3")),
            ("Raspberry Pi Compute Module 3 Plus Rev 1.0", Some("rpi3")),
            ("Raspberry Pi Zero 2 W Rev 1.0", Some("rpi-zero-2w")),
            // ARMv6 boards and others have no preset of their own.
            ("Raspberry Pi Zero W Rev 1.1", None),
            ("Raspberry Pi Model B Rev 2", None),
            ("Raspberry Pi 2 Model B Rev 1.1", None),
            ("Raspberry Pi 45", None),
            ("Pine64 RockPro64 v2.1", None),
            ("", None),
        ];
        for (model, expected) in cases {
            assert_eq!(for_model(model), expected, "{model:?}");
        }
    }
}
