//! Shared by the integration tests: a real rtcam on loopback, in this process or as the binary.
#![allow(dead_code)]

pub mod process;

use std::time::Duration;

use rtcam::config::{Config, SourceSpec};
use rtcam::shell::{self, Server};

/// The control token the in-process servers use.
pub const CONTROL_TOKEN: &str = "test-control-token-0123456789abcdef";

/// Generous: the test machine is shared and slow at times.
pub const WAIT: Duration = Duration::from_secs(30);

/// A small, fast stream on loopback with ports picked by the OS.
pub fn config() -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.server.rtc_port = 0;
    c.video.source = SourceSpec::Test;
    c.video.size = "320x240".parse().unwrap();
    c.video.bitrate_kbps = 400;
    c.auth.control_token = Some(CONTROL_TOKEN.into());
    c
}

pub fn start(config: Config) -> Server {
    rtcam::shell::logger::init_for_tests();
    shell::spawn(config).expect("rtcam starts")
}

pub fn whep_url(server: &Server) -> String {
    format!("http://{}/whep", server.http_addr)
}
