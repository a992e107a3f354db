//! The control plane, sans-IO: who is connected with which role, who holds control, the
//! pan/tilt/zoom motion, rate limits, and the events the viewers are sent.
//!
//! Inputs: viewers joining and leaving, their control channels opening and closing, their
//! messages, the results of what it asked the outside world for (camera controls, a stream
//! change, a status reading), and time. Outputs (`poll_output`): messages for viewers,
//! positions for the pan/tilt/zoom actuator, keyframe requests, camera-control calls, stream
//! changes and requests for a status reading. Nothing here touches a device.
//!
//! Every request is answered exactly once, and a viewer's answers go out in the order of its
//! requests: a command that waits for the outside world (a camera control, a stream restart,
//! a status reading) holds that viewer's later messages in a queue until it is answered.
//! Other viewers are not held up.
//!
//! Safety rules live here: one controller at a time; steering needs the control role and
//! control; a controller whose channel closes or whose connection drops loses control and
//! any motion stops at once; a continuous move without a fresh `ptz.move` stops after the
//! dead-man interval.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::auth::Role;
use super::protocol::{
    ErrorCode, Failure, Response, StreamChange, StreamSettings, parse, parse_id,
};
use super::ptz::{AXES, PerAxis, Ptz, PtzLimits, StopReason};
use super::ratelimit::TokenBucket;
use super::status::Status;
use crate::hub::ViewerId;
use crate::source::{ControlError, ControlReply, ControlRequest};

/// Messages one viewer may have waiting behind a command that waits for the outside world.
/// Beyond this the excess is answered `rate_limited` at once (possibly ahead of the answer
/// being waited for): a client that sends this many without reading answers is flooding.
const MAX_QUEUED: usize = 1024;

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
    /// The actuator's axes, None without one.
    pub ptz: Option<PtzLimits>,
    /// The pan/tilt/zoom axes are the camera's `*_absolute` controls (so setting one of those
    /// directly moves the PTZ too).
    pub ptz_on_camera_controls: bool,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            commands_per_s: 20.0,
            burst: 40.0,
            deadman: Duration::from_millis(500),
            status_interval: Duration::from_secs(1),
            ptz_event_interval: Duration::from_millis(200),
            ptz: None,
            ptz_on_camera_controls: false,
        }
    }
}

/// Names one call the plane made to the outside world, so its result finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

#[derive(Debug, PartialEq)]
pub(crate) enum PlaneOutput {
    /// A response or an event for one viewer's control channel.
    Send { viewer: ViewerId, text: String },
    /// Move the actuator here (only the axes it has are set).
    MovePtz(PerAxis),
    /// The viewer asked for an IDR (the `keyframe` command; limited like PLI).
    Keyframe(ViewerId),
    /// Call the camera's controls; the result comes back through `controls_done`.
    Controls { op: OpId, request: ControlRequest },
    /// Change the stream; the result comes back through `stream_changed`.
    ChangeStream { op: OpId, change: StreamChange },
    /// A status reading is needed; it comes back through `status`.
    NeedStatus,
}

/// A message waiting for its turn, or the answer already decided for it.
enum Queued {
    Message(Vec<u8>),
    /// Refused on arrival by the rate limit; answered in turn.
    RateLimited(Option<u32>),
    /// The channel just opened: the greeting goes first.
    Greeting,
}

/// What a viewer's queue waits for.
#[derive(Debug)]
pub(super) enum Waiting {
    /// The camera controls for the greeting.
    Greeting(OpId),
    Controls {
        op: OpId,
        id: u32,
        call: ControlCall,
    },
    Stream {
        op: OpId,
        id: u32,
    },
    /// The next status reading.
    Status {
        id: u32,
    },
}

#[derive(Debug)]
pub(super) enum ControlCall {
    List,
    Get(String),
    Set(String),
}

/// How a command ends: answered now, or waiting for the outside world.
pub(super) enum Step {
    Done(Result<Value, Failure>),
    Wait(Waiting),
}

struct Session {
    role: Role,
    /// Shown to others instead of the viewer id, which would allow a DELETE.
    label: u32,
    channel_open: bool,
    bucket: TokenBucket,
    queue: VecDeque<Queued>,
    waiting: Option<Waiting>,
}

pub(crate) struct ControlPlane {
    config: ControlConfig,
    sessions: BTreeMap<ViewerId, Session>,
    next_label: u32,
    next_op: u64,
    controller: Option<ViewerId>,
    ptz: Option<Ptz>,
    /// The stream as it runs now, for greetings.
    stream: StreamSettings,
    outputs: VecDeque<PlaneOutput>,
    next_status_event: Option<Instant>,
    /// A status event is due once the reading asked for arrives.
    status_event_due: bool,
    /// `NeedStatus` went out and its reading has not come back.
    status_asked: bool,
    last_ptz_event: Option<Instant>,
    /// A position change not yet told to the viewers.
    ptz_event_due: bool,
}

impl ControlPlane {
    /// `stream`: the settings the stream runs with now.
    pub(crate) fn new(config: ControlConfig, stream: StreamSettings) -> Self {
        let ptz = config
            .ptz
            .filter(|l| !l.is_empty())
            .map(|l| Ptz::new(l, config.deadman));
        ControlPlane {
            config,
            sessions: BTreeMap::new(),
            next_label: 1,
            next_op: 1,
            controller: None,
            ptz,
            stream,
            outputs: VecDeque::new(),
            next_status_event: None,
            status_event_due: false,
            status_asked: false,
            last_ptz_event: None,
            ptz_event_due: false,
        }
    }

    pub(crate) fn viewer_joined(&mut self, viewer: ViewerId, role: Role) {
        let label = self.next_label;
        self.next_label += 1;
        self.sessions.insert(
            viewer,
            Session {
                role,
                label,
                channel_open: false,
                bucket: TokenBucket::new(self.config.commands_per_s, self.config.burst),
                queue: VecDeque::new(),
                waiting: None,
            },
        );
    }

    pub(crate) fn channel_opened(&mut self, now: Instant, viewer: ViewerId) {
        let Some(s) = self.sessions.get_mut(&viewer) else {
            return;
        };
        s.channel_open = true;
        s.queue.push_front(Queued::Greeting);
        self.next_status_event.get_or_insert(now);
        self.run_queue(now, viewer);
    }

    pub(crate) fn channel_closed(&mut self, now: Instant, viewer: ViewerId) {
        if let Some(s) = self.sessions.get_mut(&viewer) {
            s.channel_open = false;
        }
        if self.controller == Some(viewer) {
            self.release(now, StopReason::ControllerGone);
        }
    }

    pub(crate) fn viewer_left(&mut self, now: Instant, viewer: ViewerId) {
        self.sessions.remove(&viewer);
        if self.controller == Some(viewer) {
            self.release(now, StopReason::ControllerGone);
        }
    }

    /// One message from a viewer's control channel. Always answered, in turn.
    pub(crate) fn handle_message(&mut self, now: Instant, viewer: ViewerId, data: &[u8]) {
        let Some(s) = self.sessions.get_mut(&viewer) else {
            return;
        };
        let item = if s.bucket.allow(now) {
            Queued::Message(data.to_vec())
        } else {
            Queued::RateLimited(parse_id(data))
        };
        if s.queue.len() >= MAX_QUEUED {
            let id = match item {
                Queued::Message(data) => parse_id(&data),
                Queued::RateLimited(id) => id,
                Queued::Greeting => None,
            };
            let limited = self.rate_limited(id);
            self.send(viewer, limited);
            return;
        }
        s.queue.push_back(item);
        self.run_queue(now, viewer);
    }

    /// A message too large to read.
    pub(crate) fn handle_oversized(&mut self, viewer: ViewerId, len: usize, max: usize) {
        let response = Response {
            id: None,
            outcome: Err(Failure::new(
                ErrorCode::TooLarge,
                format!("message of {len} bytes is over the {max}-byte limit"),
            )),
        };
        self.send(viewer, response.to_json());
    }

    /// The result of a `Controls` call.
    pub(crate) fn controls_done(
        &mut self,
        now: Instant,
        op: OpId,
        result: Result<ControlReply, ControlError>,
    ) {
        let Some((viewer, waiting)) = self.take_waiting(|w| match w {
            Waiting::Greeting(o) | Waiting::Controls { op: o, .. } => *o == op,
            _ => false,
        }) else {
            return;
        };
        match waiting {
            Waiting::Greeting(_) => {
                let controls = match result {
                    Ok(ControlReply::List(list)) => json!(list),
                    _ => Value::Null,
                };
                let hello = self.greeting(viewer, controls);
                self.send(viewer, hello);
            }
            Waiting::Controls { id, call, .. } => {
                let outcome = self.control_call_done(now, call, result);
                self.respond(viewer, Some(id), outcome);
            }
            Waiting::Stream { .. } | Waiting::Status { .. } => {}
        }
        self.run_queue(now, viewer);
    }

    /// The result of a `ChangeStream`: the settings now in effect, or why not.
    pub(crate) fn stream_changed(
        &mut self,
        now: Instant,
        op: OpId,
        result: Result<StreamSettings, Failure>,
    ) {
        if let Ok(settings) = &result {
            self.stream = *settings;
            self.announce(json!({ "stream": settings }));
        }
        let Some((viewer, Waiting::Stream { id, .. })) =
            self.take_waiting(|w| matches!(w, Waiting::Stream { op: o, .. } if *o == op))
        else {
            return;
        };
        let outcome = result.and_then(|settings| to_value(&settings));
        self.respond(viewer, Some(id), outcome);
        self.run_queue(now, viewer);
    }

    /// A status reading, asked for with `NeedStatus`: answers the `status` commands that wait
    /// for it and sends the status event when one is due.
    pub(crate) fn status(&mut self, now: Instant, status: &Status) {
        self.status_asked = false;
        if std::mem::take(&mut self.status_event_due) {
            let event = status_event(status);
            // Each viewer is also told of its own link: what it is estimated to carry and
            // what it is sent.
            self.broadcast(|_, session| {
                let label = format!("viewer {}", session.label);
                let mut event = event.clone();
                if let (Some(link), Value::Object(fields)) =
                    (status.links.iter().find(|l| l.label == label), &mut event)
                {
                    fields.insert(
                        "link".into(),
                        json!({
                            "estimate_kbps": link.estimate_kbps,
                            "encoding": link.encoding,
                            "layers": link.layers,
                            "sent_kbps": link.sent_kbps,
                        }),
                    );
                }
                Some(event.to_string())
            });
        }
        let waiting: Vec<(ViewerId, u32)> = self
            .sessions
            .iter()
            .filter_map(|(&v, s)| match s.waiting {
                Some(Waiting::Status { id }) => Some((v, id)),
                _ => None,
            })
            .collect();
        for (viewer, id) in waiting {
            if let Some(s) = self.sessions.get_mut(&viewer) {
                s.waiting = None;
            }
            self.respond(viewer, Some(id), to_value(status));
            self.run_queue(now, viewer);
        }
    }

    /// The stream changed by other means than `stream.set` (e.g. a restart found the camera
    /// delivering another size).
    pub(crate) fn set_stream(&mut self, settings: StreamSettings) {
        self.stream = settings;
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(ptz) = &mut self.ptz {
            ptz.handle_timeout(now);
        }
        self.collect_ptz(now);
        if self.next_status_event.is_some_and(|at| at <= now) {
            if self.sessions.values().any(|s| s.channel_open) {
                self.status_event_due = true;
                self.ask_status();
                self.next_status_event = Some(now + self.config.status_interval);
            } else {
                self.next_status_event = None;
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
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

    pub(crate) fn poll_output(&mut self) -> Option<PlaneOutput> {
        self.outputs.pop_front()
    }

    pub(crate) fn controller(&self) -> Option<ViewerId> {
        self.controller
    }

    pub(crate) fn role(&self, viewer: ViewerId) -> Option<Role> {
        self.sessions.get(&viewer).map(|s| s.role)
    }

    // --- used by the commands (commands.rs) ---

    pub(super) fn ptz_mut(&mut self) -> Result<&mut Ptz, Failure> {
        self.ptz.as_mut().ok_or_else(no_ptz)
    }

    pub(super) fn ptz_on_camera_controls(&self) -> bool {
        self.config.ptz_on_camera_controls
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

    /// Works through a viewer's queue until it is empty or a command waits.
    fn run_queue(&mut self, now: Instant, viewer: ViewerId) {
        loop {
            let Some(s) = self.sessions.get_mut(&viewer) else {
                return;
            };
            if s.waiting.is_some() {
                return;
            }
            let Some(item) = s.queue.pop_front() else {
                return;
            };
            match item {
                Queued::Greeting => {
                    let op = self.op();
                    self.outputs.push_back(PlaneOutput::Controls {
                        op,
                        request: ControlRequest::List,
                    });
                    self.wait(viewer, Waiting::Greeting(op));
                }
                Queued::RateLimited(id) => {
                    let limited = self.rate_limited(id);
                    self.send(viewer, limited);
                }
                Queued::Message(data) => match parse(&data) {
                    Err((id, failure)) => self.respond(viewer, id, Err(failure)),
                    Ok(request) => match self.run(now, viewer, request.id, request.command) {
                        Step::Done(outcome) => {
                            self.respond(viewer, Some(request.id), outcome);
                            self.collect_ptz(now);
                        }
                        Step::Wait(waiting) => self.wait(viewer, waiting),
                    },
                },
            }
        }
    }

    fn wait(&mut self, viewer: ViewerId, waiting: Waiting) {
        if let Some(s) = self.sessions.get_mut(&viewer) {
            s.waiting = Some(waiting);
        }
    }

    /// Takes the first wait that `which` picks, with its viewer.
    fn take_waiting(&mut self, which: impl Fn(&Waiting) -> bool) -> Option<(ViewerId, Waiting)> {
        let (&viewer, s) = self
            .sessions
            .iter_mut()
            .find(|(_, s)| s.waiting.as_ref().is_some_and(&which))?;
        s.waiting.take().map(|w| (viewer, w))
    }

    pub(super) fn op(&mut self) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        op
    }

    /// Asks for a status reading unless one is on its way.
    pub(super) fn ask_status(&mut self) {
        if !self.status_asked {
            self.status_asked = true;
            self.outputs.push_back(PlaneOutput::NeedStatus);
        }
    }

    pub(super) fn push(&mut self, output: PlaneOutput) {
        self.outputs.push_back(output);
    }

    fn respond(&mut self, viewer: ViewerId, id: Option<u32>, outcome: Result<Value, Failure>) {
        self.send(viewer, Response { id, outcome }.to_json());
    }

    fn rate_limited(&self, id: Option<u32>) -> String {
        Response {
            id,
            outcome: Err(Failure::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} commands per second; slow down",
                    self.config.commands_per_s
                ),
            )),
        }
        .to_json()
    }

    /// Where things stand, so the page can draw everything before anything changes.
    fn greeting(&self, viewer: ViewerId, controls: Value) -> String {
        let you = self
            .sessions
            .get(&viewer)
            .map(|s| json!({"role": s.role, "label": format!("viewer {}", s.label)}));
        json!({
            "event": "control",
            "you": you,
            "controller": self.controller_for(viewer),
            "ptz": self.ptz_state(),
            "stream": self.stream,
            "camera": {"controls": controls},
        })
        .to_string()
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

    /// How the viewer is named to others.
    pub(crate) fn label(&self, viewer: ViewerId) -> String {
        self.label_of(viewer)
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

pub(super) fn to_value(value: &impl serde::Serialize) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure::new(ErrorCode::Internal, e.to_string()))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
#[path = "plane_tests.rs"]
mod tests;
