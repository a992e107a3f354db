//! The control plane, sans-IO: who is connected with which role, who holds control, the
//! pan/tilt/zoom motion, rate limits and the events the viewers are sent.
//!
//! Inputs: viewers joining and leaving, their control channels opening and closing, their
//! messages, and time. Outputs (`poll_output`): messages for viewers and positions for the
//! pan/tilt/zoom actuator. Commands that act on the camera or the stream go through `Device`,
//! which the event loop implements and tests fake.
//!
//! Safety rules live here: one controller at a time; steering needs the control role and
//! control; a controller whose channel closes or whose connection drops loses control and
//! any motion stops at once; a continuous move without a fresh `ptz.move` stops after the
//! dead-man interval.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::auth::Role;
use super::protocol::{ErrorCode, Failure, Response, parse};
use super::ptz::{AXES, PerAxis, Ptz, PtzLimits, StopReason};
use super::ratelimit::TokenBucket;
use super::status::Status;
use crate::config::Size;
use crate::hub::ViewerId;
use crate::source::CameraControls;

/// What commands act on outside the control plane. The event loop implements it.
pub trait Device {
    fn status(&mut self) -> Status;
    /// Asks for an IDR on the viewer's behalf (limited like PLI).
    fn request_keyframe(&mut self, viewer: ViewerId);
    /// The camera's controls, if the source has any.
    fn camera_controls(&mut self) -> Option<Arc<dyn CameraControls>>;
    /// Changes bitrate, frame rate or size; returns what is in effect afterwards.
    fn change_stream(&mut self, change: &StreamChange) -> Result<StreamSettings, Failure>;
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamChange {
    pub bitrate_kbps: Option<u32>,
    pub fps: Option<u32>,
    pub size: Option<Size>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StreamSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    /// Commands per second a viewer may send, steadily, and in a burst.
    pub commands_per_s: f64,
    pub burst: f64,
    /// A continuous move stops when no `ptz.move` came for this long.
    pub deadman: Duration,
    /// `{"event": "status"}` this often.
    pub status_interval: Duration,
    /// Pan/tilt/zoom position events at most this often while moving.
    pub ptz_event_interval: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            commands_per_s: 20.0,
            burst: 40.0,
            deadman: Duration::from_millis(500),
            status_interval: Duration::from_secs(1),
            ptz_event_interval: Duration::from_millis(200),
        }
    }
}

#[derive(Debug)]
pub enum PlaneOutput {
    /// A response or an event for one viewer's control channel.
    Send { viewer: ViewerId, text: String },
    /// Move the actuator here (only the axes it has are set).
    MovePtz(PerAxis),
}

struct Session {
    role: Role,
    /// Shown to others instead of the viewer id, which would allow a DELETE.
    label: u32,
    channel_open: bool,
    bucket: TokenBucket,
}

pub struct ControlPlane {
    config: ControlConfig,
    sessions: BTreeMap<ViewerId, Session>,
    next_label: u32,
    controller: Option<ViewerId>,
    ptz: Option<Ptz>,
    outputs: VecDeque<PlaneOutput>,
    next_status_event: Option<Instant>,
    last_ptz_event: Option<Instant>,
    /// A position change not yet told to the viewers.
    ptz_event_due: bool,
    /// The pan/tilt/zoom axes are the camera's `*_absolute` controls (so setting one of those
    /// directly moves the PTZ too).
    ptz_on_camera_controls: bool,
}

impl ControlPlane {
    /// `ptz`: the actuator's limits, None without one.
    pub fn new(
        config: ControlConfig,
        ptz: Option<PtzLimits>,
        ptz_on_camera_controls: bool,
    ) -> Self {
        let deadman = config.deadman;
        ControlPlane {
            config,
            sessions: BTreeMap::new(),
            next_label: 1,
            controller: None,
            ptz: ptz.filter(|l| !l.is_empty()).map(|l| Ptz::new(l, deadman)),
            outputs: VecDeque::new(),
            next_status_event: None,
            last_ptz_event: None,
            ptz_event_due: false,
            ptz_on_camera_controls,
        }
    }

    pub fn viewer_joined(&mut self, viewer: ViewerId, role: Role) {
        let label = self.next_label;
        self.next_label += 1;
        self.sessions.insert(
            viewer,
            Session {
                role,
                label,
                channel_open: false,
                bucket: TokenBucket::new(self.config.commands_per_s, self.config.burst),
            },
        );
    }

    pub fn channel_opened(&mut self, now: Instant, viewer: ViewerId) {
        let Some(s) = self.sessions.get_mut(&viewer) else {
            return;
        };
        s.channel_open = true;
        // Where things stand, so the page can show it before anything changes.
        let hello = json!({
            "event": "control",
            "you": {"role": s.role, "label": format!("viewer {}", s.label)},
            "controller": self.controller_for(viewer),
            "ptz": self.ptz_state(),
        });
        self.send(viewer, hello.to_string());
        self.next_status_event.get_or_insert(now);
    }

    pub fn channel_closed(&mut self, now: Instant, viewer: ViewerId) {
        if let Some(s) = self.sessions.get_mut(&viewer) {
            s.channel_open = false;
        }
        if self.controller == Some(viewer) {
            self.release(now, StopReason::ControllerGone);
        }
    }

    pub fn viewer_left(&mut self, now: Instant, viewer: ViewerId) {
        self.sessions.remove(&viewer);
        if self.controller == Some(viewer) {
            self.release(now, StopReason::ControllerGone);
        }
    }

    /// One message from a viewer's control channel. Always answered.
    pub fn handle_message(
        &mut self,
        now: Instant,
        viewer: ViewerId,
        data: &[u8],
        device: &mut dyn Device,
    ) {
        let allowed = match self.sessions.get_mut(&viewer) {
            Some(s) => Some(s.bucket.allow(now)),
            None => None,
        };
        let response = match allowed {
            Some(false) => Response {
                id: parse(data).ok().map(|r| r.id),
                outcome: Err(Failure::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} commands per second; slow down",
                        self.config.commands_per_s
                    ),
                )),
            },
            Some(true) => match parse(data) {
                Ok(request) => Response {
                    id: Some(request.id),
                    outcome: self.run(now, viewer, &request, device),
                },
                Err((id, failure)) => Response {
                    id,
                    outcome: Err(failure),
                },
            },
            None => return,
        };
        self.send(viewer, response.to_json());
        self.collect_ptz(now);
    }

    /// A message too large to read.
    pub fn handle_oversized(&mut self, viewer: ViewerId, len: usize, max: usize) {
        let response = Response {
            id: None,
            outcome: Err(Failure::new(
                ErrorCode::TooLarge,
                format!("message of {len} bytes is over the {max}-byte limit"),
            )),
        };
        self.send(viewer, response.to_json());
    }

    pub fn handle_timeout(&mut self, now: Instant, device: &mut dyn Device) {
        if let Some(ptz) = &mut self.ptz {
            ptz.handle_timeout(now);
        }
        self.collect_ptz(now);
        if self.next_status_event.is_some_and(|at| at <= now) {
            if self.sessions.values().any(|s| s.channel_open) {
                let event = status_event(&device.status()).to_string();
                self.broadcast(|_, _| Some(event.clone()));
                self.next_status_event = Some(now + self.config.status_interval);
            } else {
                self.next_status_event = None;
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let ptz = self.ptz.as_ref().and_then(Ptz::poll_timeout);
        let ptz_event = self
            .ptz_event_due
            .then(|| {
                self.last_ptz_event
                    .map(|t| t + self.config.ptz_event_interval)
            })
            .flatten();
        [ptz, ptz_event, self.next_status_event]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_output(&mut self) -> Option<PlaneOutput> {
        self.outputs.pop_front()
    }

    pub fn controller(&self) -> Option<ViewerId> {
        self.controller
    }

    pub fn role(&self, viewer: ViewerId) -> Option<Role> {
        self.sessions.get(&viewer).map(|s| s.role)
    }

    // --- used by the commands (commands.rs) ---

    pub(super) fn ptz_mut(&mut self) -> Result<&mut Ptz, Failure> {
        self.ptz.as_mut().ok_or_else(no_ptz)
    }

    pub(super) fn ptz_ref(&self) -> Result<&Ptz, Failure> {
        self.ptz.as_ref().ok_or_else(no_ptz)
    }

    pub(super) fn ptz_on_camera_controls(&self) -> bool {
        self.ptz_on_camera_controls
    }

    /// Steering commands need the control role and control.
    pub(super) fn check_steering(&self, viewer: ViewerId) -> Result<(), Failure> {
        self.check_control_role(viewer)?;
        if self.controller != Some(viewer) {
            return Err(Failure::new(
                ErrorCode::NotController,
                "you do not hold control; send control.claim first",
            ));
        }
        Ok(())
    }

    pub(super) fn check_control_role(&self, viewer: ViewerId) -> Result<(), Failure> {
        match self.role(viewer) {
            Some(Role::Control) => Ok(()),
            _ => Err(Failure::new(
                ErrorCode::Forbidden,
                "this viewer joined without the control token",
            )),
        }
    }

    pub(super) fn claim(
        &mut self,
        now: Instant,
        viewer: ViewerId,
        force: bool,
    ) -> Result<Value, Failure> {
        self.check_control_role(viewer)?;
        match self.controller {
            Some(holder) if holder != viewer && !force => {
                let by = self.label_of(holder);
                return Err(Failure::new(
                    ErrorCode::Busy,
                    format!("{by} holds control; claim with \"force\": true to take it"),
                ));
            }
            Some(holder) if holder != viewer => {
                // Taking over stops whatever the previous controller had running.
                if let Some(ptz) = &mut self.ptz {
                    ptz.stop(now, StopReason::ControllerGone);
                }
                log::info!(
                    "{} took control from {}",
                    self.label_of(viewer),
                    self.label_of(holder)
                );
            }
            _ => {}
        }
        if self.controller != Some(viewer) {
            self.controller = Some(viewer);
            self.announce_controller();
        }
        Ok(json!({"controller": self.controller_for(viewer)}))
    }

    pub(super) fn release_by(&mut self, now: Instant, viewer: ViewerId) -> Result<Value, Failure> {
        if self.controller != Some(viewer) {
            return Err(Failure::new(
                ErrorCode::NotController,
                "you do not hold control",
            ));
        }
        self.release(now, StopReason::ControllerGone);
        Ok(json!({}))
    }

    /// A `{"event": "control", ...}` to every open channel.
    pub(super) fn announce(&mut self, fields: Value) {
        let mut event = json!({"event": "control"});
        if let (Some(e), Value::Object(f)) = (event.as_object_mut(), fields) {
            e.extend(f);
        }
        let text = event.to_string();
        self.broadcast(|_, _| Some(text.clone()));
    }

    pub(super) fn ptz_state(&self) -> Value {
        let Some(ptz) = &self.ptz else {
            return Value::Null;
        };
        let mut position = serde_json::Map::new();
        let mut limits = serde_json::Map::new();
        for a in AXES {
            if let (Some(p), Some(l)) = (ptz.position().get(a), ptz.limits().axis(a)) {
                position.insert(a.as_str().into(), json!(round3(p)));
                limits.insert(a.as_str().into(), json!(l));
            }
        }
        json!({"position": position, "limits": limits, "moving": ptz.is_moving()})
    }

    /// Takes whatever the motion core has to say after a change.
    pub(super) fn collect_ptz(&mut self, now: Instant) {
        let Some(ptz) = &mut self.ptz else { return };
        if let Some(position) = ptz.poll_position() {
            self.outputs.push_back(PlaneOutput::MovePtz(position));
            self.ptz_event_due = true;
        }
        let stopped = ptz.poll_stopped();
        if let Some(reason) = stopped {
            log::debug!("pan/tilt/zoom stopped: {reason:?}");
        }
        let interval_passed = self
            .last_ptz_event
            .is_none_or(|t| now >= t + self.config.ptz_event_interval);
        if (self.ptz_event_due && interval_passed) || stopped.is_some() {
            let mut state = self.ptz_state();
            if let (Some(reason), Some(obj)) = (stopped, state.as_object_mut()) {
                obj.insert("stopped".into(), json!(reason));
            }
            self.announce(json!({"ptz": state}));
            self.last_ptz_event = Some(now);
            self.ptz_event_due = false;
        }
    }

    fn release(&mut self, now: Instant, reason: StopReason) {
        if let Some(ptz) = &mut self.ptz {
            ptz.stop(now, reason);
        }
        if let Some(was) = self.controller.take() {
            log::info!("{} released control", self.label_of(was));
        }
        self.announce_controller();
        self.collect_ptz(now);
    }

    fn announce_controller(&mut self) {
        let controller = self.controller;
        let label = controller.map(|c| self.label_of(c));
        self.broadcast(|id, _| {
            Some(
                json!({
                    "event": "control",
                    "controller": {
                        "held": controller.is_some(),
                        "by": label,
                        "by_you": controller == Some(id),
                    },
                })
                .to_string(),
            )
        });
    }

    fn controller_for(&self, viewer: ViewerId) -> Value {
        json!({
            "held": self.controller.is_some(),
            "by": self.controller.map(|c| self.label_of(c)),
            "by_you": self.controller == Some(viewer),
        })
    }

    fn label_of(&self, viewer: ViewerId) -> String {
        self.sessions
            .get(&viewer)
            .map_or_else(|| "a viewer".into(), |s| format!("viewer {}", s.label))
    }

    fn send(&mut self, viewer: ViewerId, text: String) {
        self.outputs.push_back(PlaneOutput::Send { viewer, text });
    }

    fn broadcast(&mut self, mut text_for: impl FnMut(ViewerId, &Session) -> Option<String>) {
        let mut messages = Vec::new();
        for (&id, s) in &self.sessions {
            if s.channel_open
                && let Some(text) = text_for(id, s)
            {
                messages.push(PlaneOutput::Send { viewer: id, text });
            }
        }
        self.outputs.extend(messages);
    }
}

fn no_ptz() -> Failure {
    Failure::new(
        ErrorCode::Unsupported,
        "this device has no pan/tilt/zoom (see [ptz] in the configuration)",
    )
}

fn status_event(s: &Status) -> Value {
    json!({
        "event": "status",
        "fps": s.fps_measured,
        "bitrate_kbps": s.bitrate_measured_kbps,
        "viewers": s.viewers,
        "cpu_load": s.cpu_load,
        "soc_temp_c": s.soc_temp_c,
        "uptime_s": s.uptime_s,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
#[path = "plane_tests.rs"]
mod tests;
