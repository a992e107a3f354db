//! The `control` data channel: JSON commands from viewers, answered by the device.
//!
//! `protocol` is the wire format (requests, responses, error codes), `dispatch` maps a command
//! name to what it does, and `Device` is everything a command can act on — implemented by the
//! runtime, faked in tests. Nothing here does IO.

pub mod dispatch;
pub mod protocol;
pub mod ptz;
pub mod status;

pub use dispatch::{Device, dispatch};
pub use protocol::{ErrorCode, Request, Response};
pub use status::Status;
