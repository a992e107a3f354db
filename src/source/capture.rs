//! What a source hands the pipeline: a raw picture to encode (I420, or the camera's own
//! buffer), or the H.264 a camera encoded itself (passthrough), to send on as it is.

use std::time::Instant;

use super::{CameraFrame, Frame};

pub(crate) enum Capture {
    Raw(Frame),
    /// A picture in the camera's own buffer and format, lent to an encoder that takes it as
    /// it is (see `lent`).
    Camera(CameraFrame),
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
            Capture::Camera(frame) => frame.captured,
            Capture::Encoded { captured, .. } => *captured,
        }
    }
}
