//! What a source hands the pipeline: a raw picture to encode, or an access unit a camera
//! encoded itself (H.264 passthrough), to send as it is.

use std::time::Instant;

use super::Frame;

pub enum Capture {
    Raw(Frame),
    Encoded(EncodedUnit),
}

impl Capture {
    pub fn seq(&self) -> u64 {
        match self {
            Capture::Raw(frame) => frame.seq,
            Capture::Encoded(unit) => unit.seq,
        }
    }

    pub fn captured(&self) -> Instant {
        match self {
            Capture::Raw(frame) => frame.captured,
            Capture::Encoded(unit) => unit.captured,
        }
    }
}

/// One H.264 access unit from the camera, Annex B (start codes), as the driver delivered it.
pub struct EncodedUnit {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub seq: u64,
    pub captured: Instant,
}
