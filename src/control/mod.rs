//! The `control` data channel: JSON commands from viewers, answered by the device, and the
//! events it sends them.
//!
//! `protocol` is the wire format, `plane` the state (roles, controller, rate limits, events),
//! `commands` what each command does, `ptz` the pan/tilt/zoom motion, `auth` the roles and
//! tokens. Nothing here does IO: the camera and the stream are reached through `Device`, the
//! actuator through the plane's outputs. Reference: `PROTOCOL.md` beside this file.

pub mod actuator;
pub mod auth;
mod commands;
pub mod plane;
pub mod protocol;
pub mod ptz;
pub mod ratelimit;
pub mod status;

pub use auth::{Role, Tokens};
pub use plane::{ControlConfig, ControlPlane, Device, PlaneOutput, StreamChange, StreamSettings};
pub use protocol::{ErrorCode, Request, Response};
pub use status::Status;
