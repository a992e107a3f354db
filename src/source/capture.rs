//! What a source hands the pipeline: a raw picture to encode, or the H.264 a camera encoded
//! itself (passthrough), to send on as it is.

use std::time::Instant;

use super::Frame;

pub(crate) enum Capture {
    Raw(Frame),
    /// One access unit from the camera, Annex B (start codes), as the driver delivered it. The
    /// pipeline completes it (SPS/PPS before IDRs) and makes it an `AccessUnit`.
    Encoded {
        data: Vec<u8>,
        width: u32,
        height: u32,
        seq: u64,
        captured: Instant,
    },
}

impl Capture {
    pub(crate) fn captured(&self) -> Instant {
        match self {
            Capture::Raw(frame) => frame.captured,
            Capture::Encoded { captured, .. } => *captured,
        }
    }
}
