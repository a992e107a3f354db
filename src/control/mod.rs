//! The `control` data channel: JSON commands from viewers, answered by the device, and the
//! events it sends them.
//!
//! `protocol` is the wire format and the typed commands, `plane` the state (roles, controller,
//! rate limits, in-order answers, events), `commands` what each command does, `ptz` the
//! pan/tilt/zoom motion, `auth` the roles and tokens, `throttle` the slowing down of token
//! guessing. Nothing here does IO or reads a clock: what needs the camera or the stream goes
//! out as a `PlaneOutput` and its result comes back as an input. Reference: `PROTOCOL.md` beside this file.

pub(crate) mod auth;
mod commands;
pub(crate) mod plane;
pub(crate) mod protocol;
pub(crate) mod ptz;
pub(crate) mod ratelimit;
pub(crate) mod status;
pub(crate) mod throttle;

pub(crate) use auth::{Role, Tokens};
pub(crate) use plane::{ControlConfig, ControlPlane, OpId, PlaneOutput};
pub(crate) use protocol::{Failure, StreamSettings};
pub(crate) use status::Status;
