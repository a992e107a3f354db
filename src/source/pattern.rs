//! The moving test pattern: a source that needs no camera, for demos, tests and benchmarks.
//!
//! Each frame is a window onto a precomputed background (colour bars,
//! a grey ramp, checkers, fine stripes, a grid), panning steadily to the right so motion is
//! visible and the encoder has real work, with the frame stamp drawn on top. Rendering is a copy
//! plus the stamp, far below a millisecond even at 1280x720.

mod background;
pub(crate) mod camera;

use std::sync::Arc;
use std::time::Instant;

use background::Background;
pub(crate) use camera::SimulatedCamera;
use camera::{ARCSEC_PER_TURN, View};

use super::frame_clock::FrameClock;
use super::i420::I420Mut;
use super::stamp::{self, Stamp, WallClockAnchor};
use super::{CameraControls, Frame, FramePool, FrameSource, SourceError, SourceInfo};
use crate::encode::limits;

/// Horizontal pan per frame, in pixels (even, to keep chroma aligned).
const PAN_STEP: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// I420 needs even dimensions.
    OddSize { width: u32, height: u32 },
    /// Smaller than `limits::WIDTH`×`limits::HEIGHT` allow.
    TooSmall { width: u32, height: u32 },
    /// Larger than `limits::WIDTH`×`limits::HEIGHT` allow.
    TooLarge { width: u32, height: u32 },
    /// The frame stamp needs `stamp_height` rows at this width.
    NoRoomForStamp {
        width: u32,
        height: u32,
        stamp_height: u32,
    },
    /// Outside `limits::FPS`.
    BadFps(u32),
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            PatternError::OddSize { width, height } => {
                write!(
                    f,
                    "test pattern size {width}x{height}: width and height must be even"
                )
            }
            PatternError::TooSmall { width, height } => write!(
                f,
                "test pattern size {width}x{height} is too small (minimum {}x{})",
                limits::WIDTH.start(),
                limits::HEIGHT.start()
            ),
            PatternError::TooLarge { width, height } => write!(
                f,
                "test pattern size {width}x{height} is too large (maximum {}x{})",
                limits::WIDTH.end(),
                limits::HEIGHT.end()
            ),
            PatternError::NoRoomForStamp {
                width,
                height,
                stamp_height,
            } => write!(
                f,
                "test pattern size {width}x{height}: the frame stamp needs {stamp_height} px of \
                 height at this width"
            ),
            PatternError::BadFps(fps) => {
                write!(
                    f,
                    "test pattern frame rate {fps} must be {}",
                    limits::range_text(&limits::FPS)
                )
            }
        }
    }
}

impl std::error::Error for PatternError {}

/// Where the frame's window sits on the background: its top-left corner in background pixels.
/// The pattern pans it every frame; a simulated pan/tilt camera can drive it instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Window {
    pub x: usize,
    pub y: usize,
}

pub(crate) struct TestPattern {
    width: u32,
    height: u32,
    fps: u32,
    background: Background,
    /// The visible part of the background for the next frame, before pan and tilt.
    pub window: Window,
    /// Whether the window drifts by itself (the "moving" in moving test pattern).
    drifting: bool,
    camera: Arc<SimulatedCamera>,
    pool: FramePool,
    clock: FrameClock,
    anchor: WallClockAnchor,
}

impl TestPattern {
    pub(crate) fn new(width: u32, height: u32, fps: u32) -> Result<TestPattern, PatternError> {
        if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(PatternError::OddSize { width, height });
        }
        if width < *limits::WIDTH.start() || height < *limits::HEIGHT.start() {
            return Err(PatternError::TooSmall { width, height });
        }
        if width > *limits::WIDTH.end() || height > *limits::HEIGHT.end() {
            return Err(PatternError::TooLarge { width, height });
        }
        if !stamp::fits(width, height) {
            return Err(PatternError::NoRoomForStamp {
                width,
                height,
                stamp_height: stamp::stamp_rows_px(width),
            });
        }
        if !limits::FPS.contains(&fps) {
            return Err(PatternError::BadFps(fps));
        }
        let (w, h) = (width as usize, height as usize);
        Ok(TestPattern {
            width,
            height,
            fps,
            // As wide as the picture: the window wraps around, so the pan never ends.
            background: Background::new(w, h),
            window: Window::default(),
            drifting: true,
            camera: Arc::default(),
            pool: FramePool::new(w * h * 3 / 2),
            clock: FrameClock::new(fps),
            anchor: WallClockAnchor::now(),
        })
    }

    /// Drives the pattern from these controls (kept across restarts at another size).
    pub(crate) fn with_camera(mut self, camera: Arc<SimulatedCamera>) -> TestPattern {
        self.camera = camera;
        self
    }

    /// Off: the picture stands still unless panned, tilted or zoomed.
    pub(crate) fn with_drift(mut self, drifting: bool) -> TestPattern {
        self.drifting = drifting;
        self
    }

    /// The clock pair this source's stamps convert capture times with.
    #[cfg(test)]
    pub(crate) fn anchor(&self) -> WallClockAnchor {
        self.anchor
    }

    /// Draws frame `seq` as captured at `captured` and moves the window on. Does not wait:
    /// `next_frame` paces the calls, tests and benchmarks call it directly.
    pub(crate) fn render(&mut self, seq: u64, captured: Instant) -> Frame {
        let mut data = self.pool.get();
        let mut planes = I420Mut::packed(&mut data, self.width, self.height)
            .expect("pool buffers are sized for this pattern");
        let view = self.camera.view();
        let (x, y) = self.pointed_at(&view);
        if view.zoom == 100 {
            self.background.copy_window(x, y, &mut planes);
        } else {
            self.background
                .copy_window_zoomed(x, y, view.zoom as usize, &mut planes);
        }
        if view.brightness != 128 {
            brighten(&mut planes, view.brightness as i32 - 128);
        }
        let frame_stamp = Stamp {
            seq: seq as u32,
            capture_us: self.anchor.to_epoch_us(captured),
        };
        stamp::write(&mut planes, &frame_stamp).expect("size was checked in new()");
        if self.drifting {
            self.window.x = (self.window.x + PAN_STEP) % self.background.width();
        }
        Frame {
            width: self.width,
            height: self.height,
            data,
            seq,
            captured,
        }
    }
}

impl TestPattern {
    /// The window's top-left corner once pan and tilt are applied: a full turn of pan is the
    /// whole background width, the tilt range (±90°) its height.
    fn pointed_at(&self, view: &View) -> (usize, usize) {
        let (bw, bh) = (self.background.width() as i64, self.height as i64);
        let dx = view.pan * bw / ARCSEC_PER_TURN;
        let dy = -view.tilt * bh / (ARCSEC_PER_TURN / 2);
        let x = (self.window.x as i64 + dx).rem_euclid(bw);
        let y = (self.window.y as i64 + dy).rem_euclid(bh);
        (x as usize, y as usize)
    }
}

/// Shifts luma by `delta`, as a camera's brightness control would.
fn brighten(planes: &mut I420Mut<'_>, delta: i32) {
    for row in 0..planes.height() {
        for p in planes.y_row(row) {
            *p = (*p as i32 + delta).clamp(16, 235) as u8;
        }
    }
}

impl FrameSource for TestPattern {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "test",
            name: format!(
                "test pattern {}x{} (simulated pan/tilt/zoom camera)",
                self.width, self.height
            ),
            width: self.width,
            height: self.height,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        let seq = self.clock.wait_next_slot();
        Ok(self.render(seq, Instant::now()))
    }

    fn controls(&self) -> Option<Arc<dyn CameraControls>> {
        Some(self.camera.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_sizes_and_rates() {
        let err = |w, h, fps| TestPattern::new(w, h, fps).err();
        assert_eq!(
            err(641, 480, 30),
            Some(PatternError::OddSize {
                width: 641,
                height: 480
            })
        );
        assert_eq!(
            err(62, 480, 30),
            Some(PatternError::TooSmall {
                width: 62,
                height: 480
            })
        );
        assert_eq!(
            err(4096, 2160, 30),
            Some(PatternError::TooLarge {
                width: 4096,
                height: 2160
            })
        );
        // 64 px wide: 8 cells per row, 14 rows of 8 px.
        assert_eq!(
            err(64, 64, 30),
            Some(PatternError::NoRoomForStamp {
                width: 64,
                height: 64,
                stamp_height: 112
            })
        );
        assert_eq!(err(640, 480, 0), Some(PatternError::BadFps(0)));
        assert_eq!(err(640, 480, 121), Some(PatternError::BadFps(121)));
        assert!(TestPattern::new(64, 112, 120).is_ok());
        assert!(TestPattern::new(128, 64, 1).is_ok());
    }

    #[test]
    fn frames_carry_a_readable_stamp_with_their_seq_and_time() {
        let mut pattern = TestPattern::new(320, 240, 30).expect("valid pattern");
        let captured = Instant::now();
        let frame = pattern.render(0x1_0000_0007, captured);
        assert_eq!(
            (frame.width, frame.height, frame.seq),
            (320, 240, 0x1_0000_0007)
        );
        assert_eq!(frame.data.len(), 320 * 240 * 3 / 2);
        let read = stamp::read(frame.y(), 320, 240, 320).expect("stamp reads");
        assert_eq!(read.seq, 7, "low 32 bits of seq");
        assert_eq!(read.capture_us, pattern.anchor().to_epoch_us(captured));
    }

    #[test]
    fn the_picture_moves_between_frames() {
        let mut pattern = TestPattern::new(320, 240, 30).expect("valid pattern");
        let now = Instant::now();
        let first = pattern.render(0, now);
        let second = pattern.render(1, now);
        // Compare below the stamp, which changes anyway.
        let below = stamp::stamp_rows_px(320) as usize * 320;
        assert_ne!(&first.y()[below..], &second.y()[below..]);
        assert_eq!(pattern.window.x, 2 * PAN_STEP);
        // The pan is a shift: row content moves left by PAN_STEP.
        let row = 200 * 320;
        assert_eq!(
            &first.y()[row + PAN_STEP..row + 320],
            &second.y()[row..row + 320 - PAN_STEP]
        );
    }

    #[test]
    fn frame_buffers_are_recycled() {
        let mut pattern = TestPattern::new(128, 64, 30).expect("valid pattern");
        let now = Instant::now();
        let address = pattern.render(0, now).data.as_ptr();
        assert_eq!(pattern.render(1, now).data.as_ptr(), address);
    }

    #[test]
    fn next_frame_counts_up_and_reports_info() {
        let mut pattern = TestPattern::new(128, 64, 120).expect("valid pattern");
        let info = pattern.info();
        assert_eq!(
            (info.kind, info.width, info.height, info.fps),
            ("test", 128, 64, 120)
        );
        let a = pattern.next_frame().expect("frame");
        let b = pattern.next_frame().expect("frame");
        assert!(b.seq > a.seq);
        assert!(b.captured > a.captured);
    }

    /// A row below the stamp, as a vector.
    fn luma_row(frame: &Frame, row: usize) -> Vec<u8> {
        let w = frame.width as usize;
        frame.y()[row * w..(row + 1) * w].to_vec()
    }

    #[test]
    fn without_drift_the_picture_stands_still() {
        let mut pattern = TestPattern::new(320, 240, 30).unwrap().with_drift(false);
        let now = Instant::now();
        let (a, b) = (pattern.render(0, now), pattern.render(1, now));
        assert_eq!(luma_row(&a, 200), luma_row(&b, 200));
    }

    #[test]
    fn panning_the_simulated_camera_shifts_the_picture() {
        let camera = Arc::new(SimulatedCamera::default());
        let mut pattern = TestPattern::new(320, 240, 30)
            .unwrap()
            .with_drift(false)
            .with_camera(camera.clone());
        let now = Instant::now();
        let before = luma_row(&pattern.render(0, now), 200);
        // 9 degrees of pan = 320 * 9 / 360 = 8 px to the right.
        camera.set("pan_absolute", 9 * 3600).unwrap();
        let after = luma_row(&pattern.render(1, now), 200);
        assert_ne!(before, after);
        assert_eq!(&before[8..], &after[..320 - 8]);
    }

    #[test]
    fn zoom_and_brightness_change_the_picture_as_a_camera_would() {
        let camera = Arc::new(SimulatedCamera::default());
        let mut pattern = TestPattern::new(320, 240, 30)
            .unwrap()
            .with_drift(false)
            .with_camera(camera.clone());
        let now = Instant::now();
        let plain = pattern.render(0, now);
        camera.set("zoom_absolute", 200).unwrap();
        let zoomed = pattern.render(1, now);
        // At 2x, the centre pixel stays and the pixel 40 px right of it shows what was 20 px
        // right of it.
        let (centre, row) = (160usize, 120usize);
        let at = |f: &Frame, x: usize| f.y()[row * 320 + x];
        assert_eq!(at(&zoomed, centre), at(&plain, centre));
        assert_eq!(at(&zoomed, centre + 40), at(&plain, centre + 20));

        camera.set("zoom_absolute", 100).unwrap();
        camera.set("brightness", 168).unwrap();
        let bright = pattern.render(2, now);
        let mean = |f: &Frame| luma_row(f, 200).iter().map(|&v| v as u32).sum::<u32>() / 320;
        assert!(
            mean(&bright) > mean(&plain) + 20,
            "{} vs {}",
            mean(&bright),
            mean(&plain)
        );
    }

    #[test]
    fn the_pattern_offers_its_controls() {
        let pattern = TestPattern::new(320, 240, 30).unwrap();
        let controls = pattern.controls().expect("the test pattern has controls");
        assert!(
            controls
                .list()
                .unwrap()
                .iter()
                .any(|c| c.name == "pan_absolute")
        );
    }
}
