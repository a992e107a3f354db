//! The `control` data channel: JSON commands from viewers, answered by the device, and the
//! events it sends them.
//!
//! `protocol` is the wire format and the typed commands, `plane` the state (roles, controller,
//! rate limits, in-order answers, events), `commands` what each command does, `ptz` the
//! pan/tilt/zoom motion, `auth` the roles and tokens. Nothing here does IO or reads a clock:
//! what needs the camera or the stream goes out as a `PlaneOutput` and its result comes back
//! as an input. Reference: `PROTOCOL.md` beside this file.

pub mod auth;
mod commands;
pub mod plane;
pub mod protocol;
pub mod ptz;
pub mod ratelimit;
pub mod status;

pub use auth::{Role, Tokens};
pub use plane::{ControlConfig, ControlPlane, OpId, PlaneOutput};
pub use protocol::{ErrorCode, Failure, StreamChange, StreamSettings};
pub use status::Status;
