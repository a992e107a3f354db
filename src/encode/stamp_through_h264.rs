//! The frame stamp must survive the real path: the test pattern, OpenH264 at a low bitrate, and
//! a decoder, as in a viewer's browser.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use super::EncoderSettings;
use super::h264::H264Encoder;
use crate::source::pattern::TestPattern;
use crate::source::stamp;

/// Encodes `frames` frames of the moving pattern at `kbps`, decodes every access unit and reads
/// the stamps back. Returns how many frames were decoded.
fn stamps_survive(width: u32, height: u32, kbps: u32, frames: u64) -> usize {
    let mut pattern = TestPattern::new(width, height, 30).expect("pattern");
    let anchor = pattern.anchor();
    let mut encoder = H264Encoder::new(&EncoderSettings {
        width,
        height,
        fps: 30,
        bitrate_kbps: kbps,
        idr_interval: Duration::from_secs(2),
        threads: 1,
        ..EncoderSettings::default()
    })
    .expect("encoder");
    let mut decoder = Decoder::new().expect("decoder");
    let start = Instant::now();
    let mut expected_us = HashMap::new();
    let mut last_seq = None;
    let mut decoded = 0;
    for n in 0..frames {
        let captured = start + Duration::from_millis(n * 1000 / 30);
        let frame = pattern.render(n, captured);
        expected_us.insert(n as u32, anchor.to_epoch_us(captured));
        let Some(unit) = encoder.encode(&frame, false).expect("encodes") else {
            continue;
        };
        let picture = decoder
            .decode(&unit.data)
            .expect("decodes")
            .unwrap_or_else(|| panic!("{width}x{height}: frame {n} gave no picture"));
        let (w, h) = picture.dimensions();
        assert_eq!((w as u32, h as u32), (width, height));
        let read = stamp::read(picture.y(), width, height, picture.strides().0)
            .unwrap_or_else(|| panic!("{width}x{height} at {kbps} kbit/s: frame {n} unreadable"));
        assert_eq!(
            Some(&read.capture_us),
            expected_us.get(&read.seq),
            "frame {n}"
        );
        assert!(
            last_seq < Some(read.seq),
            "seq {} after {last_seq:?}",
            read.seq
        );
        last_seq = Some(read.seq);
        decoded += 1;
    }
    decoded
}

#[test]
fn stamps_survive_500_kbps_at_640x480() {
    let decoded = stamps_survive(640, 480, 500, 90);
    assert!(decoded >= 45, "only {decoded} of 90 frames encoded");
}

#[test]
fn stamps_survive_500_kbps_at_1280x720() {
    let decoded = stamps_survive(1280, 720, 500, 60);
    assert!(decoded >= 20, "only {decoded} of 60 frames encoded");
}

#[test]
fn stamps_survive_at_160x120_with_small_cells() {
    let decoded = stamps_survive(160, 120, 500, 60);
    assert!(decoded >= 30, "only {decoded} of 60 frames encoded");
}
