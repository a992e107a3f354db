//! The config file: TOML text → layer → checked `Config`, and the printed config back.

use crate::config::{Layer, load, to_toml};

/// One config file's text.
pub fn config(data: &[u8]) {
    // The shell reads the file with `read_to_string`: anything not UTF-8 stops there.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Layer::parse("fuzz", text).and_then(|layer| load(&[layer])) else {
        return;
    };
    // `--print-config` output is meant to be used as a config file: it must load as the same
    // config.
    let printed = to_toml(&config);
    match Layer::parse("printed", &printed).and_then(|layer| load(&[layer])) {
        Ok(again) => assert_eq!(again, config, "printed as:\n{printed}"),
        Err(e) => panic!("the printed config does not load: {e}\n{printed}"),
    }
}
