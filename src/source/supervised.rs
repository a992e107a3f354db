//! Keeps a stream going when its camera fails: viewers get a "no signal" picture at the
//! stream's frame rate while the camera is reopened with back-off, and the first frame after
//! it comes back is an IDR.
//!
//! Any error from the camera (unplugged, EIO, no frame within its timeout, a run of broken
//! frames) counts as lost. State changes are logged once each: lost, back. Retries are not
//! logged one by one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frame_clock::FrameClock;
use super::no_signal::NoSignal;
use super::{
    CameraControls, CameraState, CameraStatus, Capture, Frame, FrameSource, PlaneFormat,
    SourceError, SourceInfo,
};

/// First wait before reopening a lost camera; doubles per failed attempt up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Opens (or reopens) the camera.
pub(crate) type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, String> + Send>;

pub(crate) struct Supervised {
    open: Opener,
    current: Option<Box<dyn FrameSource>>,
    /// Fixed for the life of the stream (the encoder's size and rate).
    info: SourceInfo,
    /// What the logs call the camera (its path).
    label: String,
    placeholder: NoSignal,
    clock: FrameClock,
    status: Arc<CameraStatus>,
    controls: Option<Arc<dyn CameraControls>>,
    backoff: Duration,
    next_attempt: Instant,
    lost_since: Option<Instant>,
    /// The last reopen failure, to log it only when it changes.
    last_failure: String,
    keyframe_wanted: bool,
    seq: u64,
    /// The buffer format the encoder takes as it is, asked of every reopened camera.
    lend: Option<PlaneFormat>,
}

impl Supervised {
    /// Supervises `first` (already open); `open` reopens the same camera after a failure.
    pub(crate) fn new(
        first: Box<dyn FrameSource>,
        label: impl Into<String>,
        open: Opener,
    ) -> Supervised {
        let info = first.info();
        let status = first
            .camera_status()
            .unwrap_or_else(|| Arc::new(CameraStatus::new()));
        status.set_state(CameraState::Streaming);
        Supervised {
            open,
            controls: first.controls(),
            current: Some(first),
            placeholder: NoSignal::new(info.width, info.height, "camera lost - retrying"),
            clock: FrameClock::new(info.fps),
            info,
            label: label.into(),
            status,
            backoff: FIRST_BACKOFF,
            next_attempt: Instant::now(),
            lost_since: None,
            last_failure: String::new(),
            keyframe_wanted: false,
            seq: 0,
            lend: None,
        }
    }

    /// Starts without a camera (it failed to open): placeholder frames of `info`'s size until
    /// `open` succeeds.
    pub(crate) fn waiting(
        info: SourceInfo,
        label: impl Into<String>,
        why: &str,
        open: Opener,
    ) -> Supervised {
        let status = Arc::new(CameraStatus::new());
        status.set_state(CameraState::Retrying);
        let label = label.into();
        log::warn!("{label}: {why}; showing 'no signal' and retrying");
        let now = Instant::now();
        Supervised {
            open,
            current: None,
            placeholder: NoSignal::new(info.width, info.height, "camera lost - retrying"),
            clock: FrameClock::new(info.fps),
            info,
            label,
            status,
            controls: None,
            backoff: FIRST_BACKOFF,
            next_attempt: now + FIRST_BACKOFF,
            lost_since: Some(now),
            last_failure: why.to_string(),
            keyframe_wanted: false,
            seq: 0,
            lend: None,
        }
    }

    /// Hands out the camera's controls even before the camera first opened.
    pub(crate) fn with_controls(mut self, controls: Arc<dyn CameraControls>) -> Supervised {
        self.controls = Some(controls);
        self
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> Arc<CameraStatus> {
        self.status.clone()
    }

    fn lose(&mut self, why: &SourceError, now: Instant) {
        log::warn!(
            "{}: camera lost ({why}); showing 'no signal' and retrying",
            self.label
        );
        self.current = None;
        self.lost_since = Some(now);
        let timed_out = matches!(why, SourceError::Failed(w) if w.contains("no frame within"));
        self.status.set_state(if timed_out {
            CameraState::NoSignal
        } else {
            CameraState::Retrying
        });
        self.backoff = FIRST_BACKOFF;
        self.next_attempt = now + self.backoff;
        self.last_failure.clear();
    }

    fn try_reopen(&mut self, now: Instant) {
        let opened = (self.open)().and_then(|source| {
            let info = source.info();
            if (info.width, info.height) == (self.info.width, self.info.height) {
                Ok(source)
            } else {
                Err(format!(
                    "camera came back at {}x{}, the stream is {}x{}; restart rtcam to change size",
                    info.width, info.height, self.info.width, self.info.height
                ))
            }
        });
        match opened {
            Ok(mut source) => {
                if let Some(format) = self.lend {
                    source.lend_buffers(format);
                }
                if self.controls.is_none() {
                    self.controls = source.controls();
                }
                self.current = Some(source);
            }
            Err(why) => {
                if why != self.last_failure {
                    log::debug!("{}: reopening failed: {why}", self.label);
                    self.last_failure = why;
                }
                self.status.set_state(CameraState::Retrying);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.next_attempt = now + self.backoff;
            }
        }
    }

    fn renumber(&mut self, mut capture: Capture) -> Capture {
        self.seq += 1;
        match &mut capture {
            Capture::Raw(frame) => frame.seq = self.seq,
            Capture::Camera(frame) => frame.seq = self.seq,
            Capture::Encoded { seq, .. } => *seq = self.seq,
        }
        capture
    }

    fn placeholder_frame(&mut self) -> Frame {
        self.clock.wait_next_slot();
        self.seq += 1;
        let now = Instant::now();
        self.placeholder
            .frame(self.seq, now, self.lost_since.unwrap_or(now))
    }
}

impl FrameSource for Supervised {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        loop {
            match self.next_capture()? {
                Capture::Raw(frame) => return Ok(frame),
                Capture::Camera(frame) => {
                    let (w, h) = (self.info.width as usize, self.info.height as usize);
                    return frame
                        .to_i420(&super::FramePool::new(w * h * 3 / 2))
                        .map_err(SourceError::Failed);
                }
                // A raw-frame caller cannot use access units; wait for the next picture.
                Capture::Encoded { .. } => continue,
            }
        }
    }

    fn next_capture(&mut self) -> Result<Capture, SourceError> {
        loop {
            if let Some(source) = self.current.as_mut() {
                match source.next_capture() {
                    Ok(capture) => {
                        if let Some(since) = self.lost_since.take() {
                            log::info!(
                                "{}: camera back after {:.1} s; streaming",
                                self.label,
                                since.elapsed().as_secs_f64()
                            );
                            self.keyframe_wanted = true;
                        }
                        self.status.set_state(CameraState::Streaming);
                        return Ok(self.renumber(capture));
                    }
                    Err(why) => self.lose(&why, Instant::now()),
                }
                continue;
            }
            let now = Instant::now();
            if now >= self.next_attempt {
                self.try_reopen(now);
                if self.current.is_some() {
                    continue;
                }
            }
            return Ok(Capture::Raw(self.placeholder_frame()));
        }
    }

    fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_wanted)
    }

    fn controls(&self) -> Option<Arc<dyn CameraControls>> {
        self.controls.clone()
    }

    fn camera_status(&self) -> Option<Arc<CameraStatus>> {
        Some(self.status.clone())
    }

    fn buffer_format(&self) -> Option<PlaneFormat> {
        self.current.as_ref()?.buffer_format()
    }

    fn lend_buffers(&mut self, format: PlaneFormat) {
        self.lend = Some(format);
        if let Some(source) = self.current.as_mut() {
            source.lend_buffers(format);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::failing::{FailingSource, FaultSwitch};
    use crate::source::pattern::TestPattern;
    use crate::source::stamp;

    const PATIENCE: usize = 200;

    fn pattern() -> Box<dyn FrameSource> {
        Box::new(TestPattern::new(320, 240, 60).expect("valid pattern"))
    }

    /// A "camera" that fails while the switch is on, and cannot be reopened then either.
    fn faulty(switch: &FaultSwitch) -> Supervised {
        let first = Box::new(FailingSource::new(pattern(), switch.clone()));
        let reopen_switch = switch.clone();
        let opener: Opener = Box::new(move || {
            if reopen_switch.is_failing() {
                Err("injected: no such device".into())
            } else {
                Ok(
                    Box::new(FailingSource::new(pattern(), reopen_switch.clone()))
                        as Box<dyn FrameSource>,
                )
            }
        });
        Supervised::new(first, "test camera", opener)
    }

    fn raw(source: &mut Supervised) -> Frame {
        match source
            .next_capture()
            .expect("a supervised source never fails")
        {
            Capture::Raw(frame) => frame,
            Capture::Camera(_) | Capture::Encoded { .. } => panic!("the pattern is I420"),
        }
    }

    fn stamped(frame: &Frame) -> bool {
        stamp::read(frame.y(), frame.width, frame.height, frame.width as usize).is_some()
    }

    #[test]
    fn a_failing_camera_gives_placeholder_frames_then_recovers_with_a_keyframe_request() {
        let switch = FaultSwitch::new();
        let mut source = faulty(&switch);
        let status = source.status();
        assert!(stamped(&raw(&mut source)));
        assert_eq!(status.state(), CameraState::Streaming);
        assert!(!source.take_keyframe_request());

        switch.fail();
        let mut last_seq = 0;
        let mut placeholders = 0;
        for _ in 0..PATIENCE {
            let frame = raw(&mut source);
            assert!(frame.seq > last_seq, "seq goes on counting");
            last_seq = frame.seq;
            assert_eq!(
                (frame.width, frame.height),
                (320, 240),
                "same size as the stream"
            );
            if !stamped(&frame) {
                placeholders += 1;
            }
            if placeholders >= 5 {
                break;
            }
        }
        assert_eq!(
            placeholders, 5,
            "placeholder frames flow while the camera is gone"
        );
        assert_eq!(status.state(), CameraState::Retrying);
        assert!(
            !source.take_keyframe_request(),
            "no IDR request while failing"
        );

        switch.recover();
        let back = (0..PATIENCE)
            .map(|_| raw(&mut source))
            .find(stamped)
            .expect("camera frames again after recovery");
        assert!(back.seq > last_seq);
        assert_eq!(status.state(), CameraState::Streaming);
        assert!(source.take_keyframe_request(), "recovery asks for an IDR");
        assert!(!source.take_keyframe_request(), "once");
    }

    #[test]
    fn a_camera_that_comes_back_at_another_size_is_refused() {
        let switch = FaultSwitch::new();
        let first = Box::new(FailingSource::new(pattern(), switch.clone()));
        let opener: Opener = Box::new(|| {
            Ok(Box::new(TestPattern::new(640, 480, 60).expect("valid")) as Box<dyn FrameSource>)
        });
        let mut source = Supervised::new(first, "test camera", opener);
        switch.fail();
        for _ in 0..20 {
            let frame = raw(&mut source);
            assert_eq!((frame.width, frame.height), (320, 240));
            assert!(!stamped(&frame));
        }
        assert_eq!(source.status().state(), CameraState::Retrying);
    }

    /// A pattern "camera" that records what it was asked to lend.
    struct Recording {
        inner: Box<dyn FrameSource>,
        asked: Arc<std::sync::Mutex<Vec<PlaneFormat>>>,
    }

    impl FrameSource for Recording {
        fn info(&self) -> SourceInfo {
            self.inner.info()
        }

        fn next_frame(&mut self) -> Result<Frame, SourceError> {
            self.inner.next_frame()
        }

        fn buffer_format(&self) -> Option<PlaneFormat> {
            PlaneFormat::of_camera(*b"YUYV", 320, 240, 640)
        }

        fn lend_buffers(&mut self, format: PlaneFormat) {
            self.asked.lock().expect("asked").push(format);
        }
    }

    #[test]
    fn a_reopened_camera_is_asked_to_lend_its_buffers_again() {
        let switch = FaultSwitch::new();
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = asked.clone();
        let recording = move |switch: &FaultSwitch| -> Box<dyn FrameSource> {
            Box::new(Recording {
                inner: Box::new(FailingSource::new(pattern(), switch.clone())),
                asked: recorded.clone(),
            })
        };
        let first = recording(&switch);
        let (reopen_switch, reopen) = (switch.clone(), recording.clone());
        let opener: Opener = Box::new(move || Ok(reopen(&reopen_switch)));
        let mut source = Supervised::new(first, "test camera", opener);
        let format = source.buffer_format().expect("the camera's layout");
        source.lend_buffers(format);
        assert_eq!(asked.lock().expect("asked").len(), 1);
        raw(&mut source);
        switch.fail();
        raw(&mut source); // lost: a placeholder
        switch.recover();
        for _ in 0..PATIENCE {
            raw(&mut source);
            if asked.lock().expect("asked").len() == 2 {
                break;
            }
        }
        assert_eq!(*asked.lock().expect("asked"), vec![format, format]);
    }
}
