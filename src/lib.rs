//! rtcam: a low-latency WebRTC camera streamer.
// Checked with the test features on (as `cargo clippy --all-targets` builds): then the client and
// the bench drivers are public too, and what they expose is not flagged as unreachable.
#![cfg_attr(feature = "testing", warn(unreachable_pub))]

#[cfg(feature = "testing")]
pub mod bench;
pub mod boards;
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub(crate) mod control;
pub(crate) mod encode;
pub(crate) mod hub;
pub(crate) mod net;
pub mod shell;
pub(crate) mod source;
pub mod streamer;

pub use source::v4l2::report::print_devices;
