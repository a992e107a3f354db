//! Board presets, compiled in from the `boards/` folder: `--board NAME` needs no files on disk.

/// Names accepted by `--board`.
pub const NAMES: &[&str] = &["generic-usb"];

const PRESETS: &[(&str, &str)] = &[("generic-usb", include_str!("../boards/generic-usb.toml"))];

/// The TOML text of a preset.
pub fn preset(name: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
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
            load(&[layer]).unwrap();
        }
    }
}
