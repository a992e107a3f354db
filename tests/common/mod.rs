//! Shared by the integration tests: a real rtcam on loopback, in this process or as the binary.
#![allow(dead_code)]

pub mod process;

use std::time::Duration;

use rtcam::config::Config;
use rtcam::shell::{self, Server};

/// The control token the in-process servers use.
pub const CONTROL_TOKEN: &str = "test-control-token-0123456789abcdef";

/// Generous: the test machine is shared and slow at times.
pub const WAIT: Duration = Duration::from_secs(30);

/// A small, fast stream on loopback with ports picked by the OS.
pub fn config() -> Config {
    rtcam::config::loopback_test_config(CONTROL_TOKEN)
}

pub fn start(config: Config) -> Server {
    rtcam::shell::logger::init_for_tests();
    shell::spawn(config).expect("rtcam starts")
}

pub fn whep_url(server: &Server) -> String {
    format!("http://{}/whep", server.http_addr)
}
