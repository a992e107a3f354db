//! The control data channel: messages from a control-role viewer through the control plane,
//! with the camera's controls and the stream answered the way the shell would.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control::plane::{ControlConfig, ControlPlane, PlaneOutput};
use crate::control::protocol::{StreamChange, StreamSettings};
use crate::control::ptz::{AxisLimits, PtzLimits};
use crate::control::{Role, Status};
use crate::hub::ViewerId;
use crate::source::pattern::SimulatedCamera;

const CONTROLLER: ViewerId = ViewerId(1);
const WATCHER: ViewerId = ViewerId(2);
const STREAM: StreamSettings = StreamSettings {
    width: 1280,
    height: 720,
    fps: 30,
    bitrate_kbps: 1500,
};

/// Newline-separated messages, all from one control-role viewer, 50 ms apart (so moves start,
/// dead-man stops fire and the rate limit refills as they would).
pub fn control_message(data: &[u8]) {
    let axis = |min, max, unit| AxisLimits {
        min,
        max,
        home: 0.0,
        max_speed: 60.0,
        unit,
    };
    let config = ControlConfig {
        ptz: Some(PtzLimits {
            pan: Some(axis(-90.0, 90.0, "degrees")),
            tilt: Some(axis(-30.0, 30.0, "degrees")),
            zoom: Some(axis(100.0, 500.0, "camera")),
        }),
        ptz_on_camera_controls: true,
        ..ControlConfig::default()
    };
    let mut rig = Rig {
        plane: ControlPlane::new(config, STREAM),
        camera: SimulatedCamera::default(),
        now: Instant::now(),
    };
    for (viewer, role) in [(CONTROLLER, Role::Control), (WATCHER, Role::View)] {
        rig.plane.viewer_joined(viewer, role);
        rig.plane.channel_opened(rig.now, viewer);
    }
    rig.collect();
    for message in data.split(|&b| b == b'\n') {
        rig.plane.handle_message(rig.now, CONTROLLER, message);
        rig.collect();
        rig.advance(Duration::from_millis(50));
    }
    rig.plane.viewer_left(rig.now, CONTROLLER);
    rig.collect();
}

struct Rig {
    plane: ControlPlane,
    camera: SimulatedCamera,
    now: Instant,
}

impl Rig {
    /// Answers the plane's calls at once, as the shell and the streamer would.
    fn collect(&mut self) {
        while let Some(output) = self.plane.poll_output() {
            match output {
                PlaneOutput::Send { text, .. } => {
                    // The clients parse every message; one that is not JSON breaks them.
                    if let Err(e) = serde_json::from_str::<Value>(&text) {
                        panic!("sent a message that is not JSON ({e}): {text}");
                    }
                }
                PlaneOutput::Controls { op, request } => {
                    let result = request.apply(Some(&self.camera));
                    self.plane.controls_done(self.now, op, result);
                }
                PlaneOutput::ChangeStream { op, change } => {
                    let settings = changed(STREAM, change);
                    self.plane.stream_changed(self.now, op, Ok(settings));
                }
                PlaneOutput::NeedStatus => self.plane.status(self.now, &Status::default()),
                PlaneOutput::MovePtz(_) | PlaneOutput::Keyframe(_) => {}
            }
        }
    }

    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.plane.poll_timeout().filter(|&at| at <= end) {
            self.now = at.max(self.now);
            self.plane.handle_timeout(self.now);
            self.collect();
        }
        self.now = end;
    }
}

fn changed(mut settings: StreamSettings, change: StreamChange) -> StreamSettings {
    if let Some(b) = change.bitrate_kbps {
        settings.bitrate_kbps = b;
    }
    if let Some(f) = change.fps {
        settings.fps = f;
    }
    if let Some(s) = change.size {
        (settings.width, settings.height) = (s.width, s.height);
    }
    settings
}
