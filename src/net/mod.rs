//! The edge: sockets and HTTP. Everything here does IO; the decisions live in `hub` and
//! `control`.

pub(crate) mod http;
pub(crate) mod ice_servers;
pub(crate) mod interfaces;
pub(crate) mod snapshot;
pub(crate) mod tcp_media;
pub(crate) mod udp;
pub(crate) mod whep;
