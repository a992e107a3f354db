//! Finding the board's encoders: V4L2 memory-to-memory nodes whose CAPTURE side offers H.264
//! and whose OUTPUT side takes I420 (what `auto` may use, and what `rtcam devices` lists).

use std::path::PathBuf;

use super::io::{DeviceIo, Io};
use super::{H264, I420};
use crate::source::v4l2::raw;

/// One usable encoder node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct FoundEncoder {
    pub path: PathBuf,
    pub card: String,
    pub driver: String,
    pub multiplanar: bool,
    /// The picture formats its OUTPUT side takes: a camera delivering one of them goes in as
    /// it is (see `take_format`).
    pub inputs: Vec<[u8; 4]>,
}

/// Every /dev/video* that is an M2M H.264 encoder taking I420, by node number.
pub(crate) fn h264_encoders() -> Vec<FoundEncoder> {
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return Vec::new();
    };
    let mut nodes: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("video")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    nodes
        .into_iter()
        .filter_map(|(_, path)| probe(path))
        .collect()
}

fn probe(path: PathBuf) -> Option<FoundEncoder> {
    let mut io = DeviceIo::open(&path).ok()?;
    let caps = io.caps().ok()?;
    let multiplanar = caps.device_caps & raw::CAP_VIDEO_M2M_MPLANE != 0;
    let (output, capture) = if multiplanar {
        (
            raw::BUF_TYPE_VIDEO_OUTPUT_MPLANE,
            raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        )
    } else if caps.device_caps & raw::CAP_VIDEO_M2M != 0 {
        (raw::BUF_TYPE_VIDEO_OUTPUT, raw::BUF_TYPE_VIDEO_CAPTURE)
    } else {
        return None;
    };
    let encodes = io.formats(capture).ok()?.contains(&H264);
    let inputs = io.formats(output).ok()?;
    (encodes && inputs.contains(&I420)).then_some(FoundEncoder {
        path,
        card: caps.card,
        driver: caps.driver,
        multiplanar,
        inputs,
    })
}
