//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! The parsers are crate-private; these functions hand them arbitrary bytes through the same
//! calls production makes, so a crash found here is a crash of the server. Each one panics only
//! when rtcam mishandles the input (a panic, an out-of-bounds read, an overflow with the fuzz
//! build's overflow checks) or breaks one of the few promises checked here, such as "every
//! control response is JSON".

mod config;
mod control;
mod convert;
mod whep;

pub use config::config;
pub use control::control_message;
pub use convert::convert;
pub use whep::whep_offer;

/// One HTTP request head (and what follows it) as the server reads it off a connection.
pub fn http_head(data: &[u8]) {
    crate::net::http::read_head_for_fuzzing(data);
}
