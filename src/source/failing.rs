//! A source wrapper that fails on command, to test the fault path without a camera: while the
//! switch is on, `next_frame` waits one frame interval and fails, and reopening fails, as an
//! unplugged camera would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Frame, FrameSource, SourceError, SourceInfo};

/// Shared on/off switch for the injected fault.
#[derive(Clone, Default)]
pub(crate) struct FaultSwitch(Arc<AtomicBool>);

impl FaultSwitch {
    pub(crate) fn new() -> FaultSwitch {
        FaultSwitch::default()
    }

    /// From now on the camera is "unplugged".
    pub(crate) fn fail(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// The camera is "plugged back in".
    pub(crate) fn recover(&self) {
        self.0.store(false, Ordering::Release);
    }

    pub(crate) fn is_failing(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

pub(crate) struct FailingSource {
    inner: Box<dyn FrameSource>,
    switch: FaultSwitch,
}

impl FailingSource {
    pub(crate) fn new(inner: Box<dyn FrameSource>, switch: FaultSwitch) -> FailingSource {
        FailingSource { inner, switch }
    }
}

impl FrameSource for FailingSource {
    fn info(&self) -> SourceInfo {
        self.inner.info()
    }

    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        if self.switch.is_failing() {
            let fps = self.inner.info().fps.max(1);
            std::thread::sleep(Duration::from_secs(1) / fps);
            return Err(SourceError::Failed(
                "injected fault: device unplugged".into(),
            ));
        }
        self.inner.next_frame()
    }
}
