//! Warns when OpenH264 will be built without its x86 assembly.
//!
//! openh264-sys2 assembles its x86 SIMD kernels with `nasm` and silently falls back to plain C
//! when nasm is missing, which makes encoding about three times slower. Saying so at build time
//! beats discovering it later as dropped frames.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PATH");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if (arch == "x86" || arch == "x86_64") && !on_path("nasm") {
        println!(
            "cargo:warning=nasm not found on PATH: OpenH264 will be built without assembly \
             (about 3x slower encoding). Install nasm (apt-get install nasm) and rebuild \
             openh264-sys2 (cargo clean -p openh264-sys2)."
        );
    }
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH").is_some_and(|paths| {
        env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file())
    })
}
