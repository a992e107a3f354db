//! The actuator thread: pan/tilt/zoom moves and camera-control calls, in the order the
//! streamer asked for them, off the event loop.
//!
//! A UVC camera answers a control over USB, which can take milliseconds (seconds for a camera
//! that misbehaves); a servo write goes through sysfs. Neither may delay packets, so both run
//! here. Moves are latest-wins: a position that a newer one replaced before it was applied is
//! skipped, so a slow actuator lags by one position, never by a queue of them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

use super::PtzDriver;
use crate::control::OpId;
use crate::control::ptz::PerAxis;
use crate::source::{CameraControls, ControlError, ControlReply};
use crate::streamer::ActuatorCommand;

/// The result of one camera-control call, for `Input::Controls`.
pub(crate) type Actuated = (OpId, Result<ControlReply, ControlError>);

enum Job {
    Command(ActuatorCommand),
    /// The source restarted: its controls are these now.
    Camera(Option<Arc<dyn CameraControls>>),
}

pub(crate) struct ActuatorWorker {
    jobs: Option<Sender<Job>>,
    results: smol::channel::Receiver<Actuated>,
    thread: Option<JoinHandle<()>>,
}

impl ActuatorWorker {
    pub(crate) fn start(
        driver: PtzDriver,
        controls: Option<Arc<dyn CameraControls>>,
    ) -> std::io::Result<ActuatorWorker> {
        let (jobs, queue) = mpsc::channel();
        let (done, results) = smol::channel::unbounded();
        let thread = thread::Builder::new()
            .name("rtcam-actuate".into())
            .spawn(move || run(queue, driver, controls, done))?;
        Ok(ActuatorWorker {
            jobs: Some(jobs),
            results,
            thread: Some(thread),
        })
    }

    pub(crate) fn apply(&self, command: ActuatorCommand) {
        self.send(Job::Command(command));
    }

    pub(crate) fn camera_changed(&self, controls: Option<Arc<dyn CameraControls>>) {
        self.send(Job::Camera(controls));
    }

    /// The next camera-control result; pending forever once the thread is gone.
    pub(crate) async fn next_result(&self) -> Actuated {
        match self.results.recv().await {
            Ok(result) => result,
            Err(_) => std::future::pending().await,
        }
    }

    fn send(&self, job: Job) {
        if let Some(jobs) = &self.jobs
            && jobs.send(job).is_err()
        {
            log::warn!("the actuator thread is gone; command dropped");
        }
    }
}

impl Drop for ActuatorWorker {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has done what was asked.
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::warn!("the actuator thread panicked");
        }
    }
}

fn run(
    queue: Receiver<Job>,
    mut driver: PtzDriver,
    mut controls: Option<Arc<dyn CameraControls>>,
    done: smol::channel::Sender<Actuated>,
) {
    let mut jobs = VecDeque::new();
    while let Ok(job) = queue.recv() {
        jobs.push_back(job);
        jobs.extend(queue.try_iter());
        while let Some(job) = jobs.pop_front() {
            match job {
                Job::Command(ActuatorCommand::MovePtz(position)) => {
                    // Only the newest of the moves queued one after another matters.
                    let mut latest = position;
                    while let Some(Job::Command(ActuatorCommand::MovePtz(next))) = jobs.front() {
                        latest = merge(latest, *next);
                        jobs.pop_front();
                    }
                    driver.move_to(&latest);
                }
                Job::Command(ActuatorCommand::Controls { op, request }) => {
                    let result = request.apply(controls.as_deref());
                    if done.send_blocking((op, result)).is_err() {
                        return;
                    }
                }
                Job::Camera(new) => {
                    driver.camera_changed(new.clone());
                    controls = new;
                }
            }
        }
    }
}

/// `later`'s axes over `earlier`'s.
fn merge(earlier: PerAxis, later: PerAxis) -> PerAxis {
    PerAxis {
        pan: later.pan.or(earlier.pan),
        tilt: later.tilt.or(earlier.tilt),
        zoom: later.zoom.or(earlier.zoom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PtzConfig;
    use crate::source::ControlRequest;
    use crate::source::pattern::SimulatedCamera;

    #[test]
    fn moves_and_control_calls_run_in_order_off_the_caller() {
        let camera = Arc::new(SimulatedCamera::default());
        let controls: Arc<dyn CameraControls> = camera.clone();
        let driver = PtzDriver::new(&PtzConfig::default(), Some(controls.clone())).unwrap();
        let worker = ActuatorWorker::start(driver, Some(controls)).unwrap();
        for pan in [3600.0, 7200.0, 36000.0] {
            worker.apply(ActuatorCommand::MovePtz(PerAxis {
                pan: Some(pan),
                ..PerAxis::default()
            }));
        }
        worker.apply(ActuatorCommand::Controls {
            op: OpId(7),
            request: ControlRequest::Get {
                name: "pan_absolute".into(),
            },
        });
        let (op, value) = smol::block_on(worker.next_result());
        assert_eq!(op, OpId(7));
        assert_eq!(
            value,
            Ok(ControlReply::Value(36000)),
            "the read comes after the last move"
        );
        assert_eq!(camera.view().pan, 36000);

        worker.camera_changed(None);
        worker.apply(ActuatorCommand::Controls {
            op: OpId(8),
            request: ControlRequest::List,
        });
        let (_, without) = smol::block_on(worker.next_result());
        assert!(matches!(without, Err(ControlError::Unsupported(_))));
    }
}
