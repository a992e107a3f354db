//! A viewer's frame-by-frame record, for the network tests (`rtcam-client --timeline`, see
//! `tests/net/`): when each frame arrived, how big it was, whether it decoded and at what
//! picture size. Frame rate, freezes, received bitrate and moves between encodings (the
//! picture size changes) are all read from it afterwards, over whatever window a check needs.
//! Each decoded picture is also sorted (camera, placeholder, test pattern, other) and its mean
//! luma kept, so a fault test can tell what the viewer saw when; and the moment the connection
//! dropped is marked, so a viewer that stopped early cannot pass for one that watched.

use std::time::Instant;

use serde_json::{Value, json};

use super::ReceivedFrame;
use super::camera_check::{self, Kind};

/// The columns of each row of `Timeline::to_json`'s `frames`: arrival in ms since the
/// timeline's start, payload bytes, keyframe (0/1: an IDR), contiguous with the frame before
/// (0/1: 0 when RTP packets were lost for good), decoded (0/1), the decoded picture's width and
/// height (0 when it did not decode), its mean luma (0 when it did not decode) and what it shows
/// (`camera_check::Kind`'s name, "" when it did not decode).
pub const FIELDS: [&str; 9] = [
    "t_ms",
    "bytes",
    "keyframe",
    "contiguous",
    "decoded",
    "width",
    "height",
    "mean_luma",
    "kind",
];

#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    rows: Vec<Row>,
    disconnected_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    t_ms: f64,
    bytes: usize,
    keyframe: bool,
    contiguous: bool,
    size: Option<(usize, usize)>,
    mean_luma: f64,
    kind: Option<Kind>,
}

impl Timeline {
    /// An empty timeline whose times count from `start`.
    pub fn new(start: Instant) -> Timeline {
        Timeline {
            start,
            rows: Vec::new(),
            disconnected_ms: None,
        }
    }

    pub fn push(&mut self, frame: &ReceivedFrame) {
        let picture = frame.picture.as_ref();
        self.rows.push(Row {
            t_ms: self.ms_since_start(frame.arrived),
            bytes: frame.bytes,
            keyframe: frame.keyframe,
            contiguous: frame.contiguous,
            size: picture.map(|p| (p.width, p.height)),
            mean_luma: picture.map_or(0.0, |p| (camera_check::mean(p) * 10.0).round() / 10.0),
            kind: picture.map(camera_check::classify),
        });
    }

    /// The connection dropped at `at` (the first time counts).
    pub fn mark_disconnected(&mut self, at: Instant) {
        if self.disconnected_ms.is_none() {
            self.disconnected_ms = Some(self.ms_since_start(at));
        }
    }

    pub fn disconnected(&self) -> bool {
        self.disconnected_ms.is_some()
    }

    fn ms_since_start(&self, at: Instant) -> f64 {
        let since = at.saturating_duration_since(self.start);
        (since.as_secs_f64() * 10_000.0).round() / 10.0
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// `{"fields": FIELDS, "frames": [[t_ms, bytes, keyframe, contiguous, decoded, width,
    /// height, mean_luma, kind], …], "disconnected_ms": null or ms}`: rows rather than objects,
    /// to keep a minute of 30 fps small.
    pub fn to_json(&self) -> Value {
        let frames: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let (w, h) = r.size.unwrap_or((0, 0));
                json!([
                    r.t_ms,
                    r.bytes,
                    u8::from(r.keyframe),
                    u8::from(r.contiguous),
                    u8::from(r.size.is_some()),
                    w,
                    h,
                    r.mean_luma,
                    r.kind.map_or("", Kind::name)
                ])
            })
            .collect();
        json!({
            "fields": FIELDS,
            "frames": frames,
            "disconnected_ms": self.disconnected_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Picture;
    use std::time::Duration;

    fn frame(start: Instant, ms: u64, bytes: usize, size: Option<(usize, usize)>) -> ReceivedFrame {
        ReceivedFrame {
            keyframe: ms == 0,
            bytes,
            arrived: start + Duration::from_micros(ms * 1000 + 123),
            contiguous: ms != 66,
            picture: size.map(|(width, height)| Picture {
                width,
                height,
                stamp: None,
                luma: vec![50; width * height],
            }),
        }
    }

    #[test]
    fn rows_carry_time_size_and_what_decoded() {
        let start = Instant::now();
        let mut t = Timeline::new(start);
        assert!(t.is_empty());
        t.push(&frame(start, 0, 9000, Some((1280, 720))));
        t.push(&frame(start, 33, 1200, Some((1280, 720))));
        // Lost packets before it: not decoded (the client waits for a keyframe).
        t.push(&frame(start, 66, 1100, None));
        t.push(&frame(start, 100, 4000, Some((640, 360))));
        assert_eq!(t.len(), 4);
        let v = t.to_json();
        assert_eq!(v["fields"][0], "t_ms");
        assert_eq!(v["fields"].as_array().unwrap().len(), FIELDS.len());
        let rows = v["frames"].as_array().unwrap();
        assert_eq!(
            rows[0],
            json!([0.1, 9000, 1, 1, 1, 1280, 720, 50.0, "other"])
        );
        assert_eq!(
            rows[1],
            json!([33.1, 1200, 0, 1, 1, 1280, 720, 50.0, "other"])
        );
        assert_eq!(rows[2], json!([66.1, 1100, 0, 0, 0, 0, 0, 0.0, ""]));
        assert_eq!(
            rows[3],
            json!([100.1, 4000, 0, 1, 1, 640, 360, 50.0, "other"])
        );
        assert_eq!(v["disconnected_ms"], Value::Null);
        assert!(!t.disconnected());
    }

    #[test]
    fn a_disconnect_is_marked_once() {
        let start = Instant::now();
        let mut t = Timeline::new(start);
        t.mark_disconnected(start + Duration::from_millis(1500));
        t.mark_disconnected(start + Duration::from_millis(2500));
        assert!(t.disconnected());
        assert_eq!(t.to_json()["disconnected_ms"], json!(1500.0));
    }

    #[test]
    fn a_frame_from_before_the_start_counts_as_at_the_start() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut t = Timeline::new(start);
        t.push(&frame(Instant::now(), 5, 10, None));
        assert_eq!(t.to_json()["frames"][0][0], json!(0.0));
    }
}
