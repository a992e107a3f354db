//! The edge: sockets and HTTP. Everything here does IO; the decisions live in `hub` and
//! `control`.

pub mod http;
pub mod interfaces;
pub mod udp;
pub mod whep;
