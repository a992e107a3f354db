//! The shell: everything that does IO or reads the clock, around the sans-IO streamer.
//! Starting and stopping rtcam: binds the sockets, opens the source, starts the encoder, the
//! actuator thread and the event loop on its own thread.
//!
//! ```text
//! capture thread ─(raw frame, latest wins)─► encoder thread ─(access unit)─┐
//!                                                                          ▼
//!   UDP socket ◄──────► event loop (the streamer inside) ◄──── HTTP routes (same thread)
//!                         │ camera controls, pan/tilt/zoom       │ pipeline restarts
//!                         ▼                                      ▼
//!                      actuator thread                        worker thread
//! ```

mod actuator;
pub mod args;
mod camera;
pub mod cli;
mod event_loop;
mod host;
mod libcamera;
pub mod logger;
pub mod notify;
mod pipeline;
#[cfg(test)]
mod tests;
pub mod tokens;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::channel::{Sender, bounded};

use crate::config::Config;
use crate::control::ControlConfig;
use crate::hub::HubConfig;
use crate::net::http::{self, Limits};
use crate::net::interfaces::host_candidates;
use crate::net::tcp_media;
use crate::net::udp::MediaSocket;
use crate::net::whep::Routes;
use crate::streamer::{RateLimits, Running, Streamer, StreamerConfig, bwe_for};
use actuator::{ActuatorWorker, PtzDriver};
use event_loop::{EventLoop, MediaIo};
use notify::Notifier;
use pipeline::Starter;

#[derive(Debug)]
pub enum StartError {
    Http(SocketAddr, io::Error),
    Media(SocketAddr, io::Error),
    Source(String),
    Hub(String),
    Auth(String),
    Ptz(String),
    Thread(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Http(a, e) => write!(f, "cannot listen for HTTP on {a}: {e}"),
            StartError::Media(a, e) => write!(f, "cannot bind the UDP media port {a}: {e}"),
            StartError::Source(e) => write!(f, "{e}"),
            StartError::Hub(e) => write!(f, "cannot set up WebRTC: {e}"),
            StartError::Auth(e) => write!(f, "tokens: {e}"),
            StartError::Ptz(e) => write!(f, "pan/tilt/zoom: {e}"),
            StartError::Thread(e) => write!(f, "cannot start the event loop thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running rtcam. Dropping it without `stop` leaves it running until the process ends.
pub struct Server {
    pub http_addr: SocketAddr,
    pub media_addr: SocketAddr,
    stop: Sender<()>,
    thread: Option<JoinHandle<Result<(), String>>>,
    /// The page URL with the control token, when the token was generated at this start (to
    /// be shown once).
    pub control_url: Option<String>,
}

impl Server {
    /// The page to open, with a host a browser can reach when listening on all addresses.
    pub fn url(&self) -> String {
        let port = self.http_addr.port();
        match self.http_addr.ip() {
            ip if ip.is_unspecified() => {
                let host = host_candidates(SocketAddr::new(ip, port))
                    .first()
                    .map(|a| a.ip())
                    .unwrap_or(ip);
                url_for(SocketAddr::new(host, port))
            }
            _ => url_for(self.http_addr),
        }
    }

    /// Stops the loop (viewers are closed, the encoder and capture threads end) and waits.
    pub fn stop(mut self) -> Result<(), String> {
        let _ = self.stop.try_send(());
        self.join()
    }

    /// Waits until the server stops: Ok after a requested stop, Err when it failed by itself.
    pub fn join(&mut self) -> Result<(), String> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("the event loop panicked".into())),
            None => Ok(()),
        }
    }

    /// A sender that stops the server from another thread (signal handling).
    pub fn stopper(&self) -> Sender<()> {
        self.stop.clone()
    }
}

fn url_for(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("http://{}:{}/", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("http://[{}]:{}/", a.ip(), a.port()),
    }
}

/// Starts rtcam with `config`. Sockets are bound before this returns, so a busy port is an
/// error here, not later.
pub fn spawn(config: Config) -> Result<Server, StartError> {
    spawn_with_watchdog(config, None)
}

/// As `spawn`, and pings systemd's watchdog every period from the event loop's own executor, so
/// the pings stop when the loop does (see `notify`).
pub fn spawn_with_watchdog(
    config: Config,
    watchdog: Option<(Notifier, Duration)>,
) -> Result<Server, StartError> {
    let starter = Starter::new(&config);
    spawn_with(config, watchdog, starter)
}

/// Binds the HTTP listener. `[::]`, the default, is dual-stack on Linux: IPv6 viewers and IPv4
/// ones (as `::ffff:a.b.c.d`) alike. A kernel booted with IPv6 off has no IPv6 sockets at all;
/// there IPv4's unspecified address serves the IPv4 viewers rather than rtcam not starting.
/// Returns the listener and the address it took, whose IP the media socket binds too.
fn listen_http(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    match TcpListener::bind(listen) {
        Ok(listener) => Ok((listener, listen)),
        Err(e)
            if listen.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                && e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), listen.port());
            log::warn!("no IPv6 on this machine ({e}): listening on {v4}, IPv4 only");
            TcpListener::bind(v4)
                .map(|listener| (listener, v4))
                .map_err(|e| StartError::Http(v4, e))
        }
        Err(e) => Err(StartError::Http(listen, e)),
    }
}

/// The UDP media socket and, with ICE-TCP on, a TCP listener on the same address and port
/// number. With port 0 ("any free port") the number is picked until TCP has it free too: the
/// OS picks UDP and TCP ports apart, and an outgoing TCP connection may hold the number UDP
/// got. Without the listener (port taken, TCP refused) viewers get UDP candidates only.
fn bind_media(
    addr: SocketAddr,
    tcp: bool,
) -> Result<(MediaSocket, Option<TcpListener>), StartError> {
    const ATTEMPTS: usize = 8;
    let mut attempt = 1;
    loop {
        let socket = MediaSocket::bind(addr).map_err(|e| StartError::Media(addr, e))?;
        if !tcp {
            return Ok((socket, None));
        }
        let media_addr = socket.local_addr();
        match TcpListener::bind(media_addr) {
            Ok(listener) => return Ok((socket, Some(listener))),
            Err(e) if addr.port() == 0 && attempt < ATTEMPTS => {
                log::debug!("TCP {media_addr} taken ({e}); another port");
                attempt += 1;
            }
            Err(e) => {
                log::warn!("ICE-TCP off: cannot listen on TCP {media_addr}: {e}");
                return Ok((socket, None));
            }
        }
    }
}

fn spawn_with(
    config: Config,
    watchdog: Option<(Notifier, Duration)>,
    starter: Starter,
) -> Result<Server, StartError> {
    let (listener, listen) = listen_http(config.server.listen)?;
    let http_addr = listener
        .local_addr()
        .map_err(|e| StartError::Http(listen, e))?;
    let media_bind = SocketAddr::new(listen.ip(), config.server.rtc_port);
    let (socket, tcp_listener) = bind_media(media_bind, config.ice.tcp)?;
    let media_addr = socket.local_addr();
    let candidates = host_candidates(media_addr);
    log::info!(
        "media on UDP{} port {}; ICE host candidates: {}",
        if tcp_listener.is_some() {
            " and TCP"
        } else {
            ""
        },
        media_addr.port(),
        candidates
            .iter()
            .map(|a| a.ip().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let turn_servers = resolve_turn(&config.ice.turn);
    let (tokens, generated_token) = tokens::load(&config.auth).map_err(StartError::Auth)?;
    let started = starter.start().map_err(StartError::Source)?;
    let controls = started.pipeline.controls();
    let driver = PtzDriver::new(&config.ptz, controls.clone()).map_err(StartError::Ptz)?;
    let running = started.running();
    let v = &config.video;
    let streamer_config = StreamerConfig {
        hub: HubConfig {
            max_viewers: config.server.max_viewers,
            public_ip: config.ice.public_ip,
            stun_servers: resolve_stun(&config.ice.stun),
            turn_servers: turn_servers.clone(),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            silence_timeout: Duration::from_secs_f64(config.server.viewer_timeout_s),
            connect_timeout: Duration::from_secs_f64(config.server.connect_timeout_s),
            candidates,
            ice_tcp: tcp_listener.is_some(),
            bwe: (v.adaptive && running.adaptive).then(|| bwe_for(v.bitrate_kbps)),
            temporal_layers: running.layers,
            ..HubConfig::default()
        },
        control: ControlConfig {
            commands_per_s: config.control.commands_per_s,
            burst: config.control.burst as f64,
            deadman: Duration::from_millis(config.ptz.deadman_ms),
            ptz: driver.limits(),
            ptz_on_camera_controls: driver.on_camera_controls(),
            ..ControlConfig::default()
        },
        rate: RateLimits {
            min_kbps: v.min_bitrate_kbps,
            min_fps: v.min_fps,
        },
    };
    let running = Running {
        adaptive: running.adaptive && v.adaptive,
        ..running
    };
    let streamer = Streamer::new(streamer_config, running, Instant::now())
        .map_err(|e| StartError::Hub(e.to_string()))?;
    let actuators = ActuatorWorker::start(driver, controls).map_err(StartError::Thread)?;

    let (stop_tx, stop) = bounded(1);
    let (requests_tx, requests) = bounded(64);
    // TCP connections: viewers' (ICE-TCP) and rtcam's own to TURN servers over TCP.
    let dial: Vec<SocketAddr> = turn_servers
        .iter()
        .filter(|t| t.tcp)
        .map(|t| t.addr)
        .collect();
    let (tcp_loop, tcp_task) = if tcp_listener.is_some() || !dial.is_empty() {
        let (loop_side, task_side) = tcp_media::channels(dial);
        (Some(loop_side), Some((tcp_listener, task_side)))
    } else {
        (None, None)
    };
    let media = MediaIo {
        socket,
        tcp: tcp_loop,
    };
    let event_loop = EventLoop::new(streamer, media, started, starter, actuators, requests, stop);
    let cors_origin = config.server.cors_origin.clone();
    let ice = config.ice.clone();
    let thread = std::thread::Builder::new()
        .name("rtcam-loop".into())
        .spawn(move || {
            let executor = Rc::new(smol::LocalExecutor::new());
            let routes = Routes::new(requests_tx, cors_origin, tokens, ice, executor.clone());
            if let Some((listener, side)) = tcp_task {
                let serve = tcp_media::serve(listener, side, executor.clone());
                executor.spawn(serve).detach();
            }
            run_loop(listener, executor, routes, event_loop, watchdog)
        })
        .map_err(StartError::Thread)?;

    let mut server = Server {
        http_addr,
        media_addr,
        stop: stop_tx,
        thread: Some(thread),
        control_url: None,
    };
    server.control_url = generated_token.map(|t| format!("{}#token={t}", server.url()));
    Ok(server)
}

fn run_loop(
    listener: TcpListener,
    executor: Rc<smol::LocalExecutor<'static>>,
    routes: Rc<Routes>,
    event_loop: EventLoop,
    watchdog: Option<(Notifier, Duration)>,
) -> Result<(), String> {
    if let Some((notifier, period)) = watchdog {
        executor.spawn(notify::watchdog(notifier, period)).detach();
    }
    let serve = {
        let executor = executor.clone();
        async move {
            let listener = match smol::net::TcpListener::try_from(listener) {
                Ok(l) => l,
                Err(e) => {
                    log::error!("HTTP listener: {e}");
                    return;
                }
            };
            let handler = move |req| routes.clone().handle(req);
            let e = http::serve(listener, Limits::default(), executor, handler).await;
            log::error!("HTTP server stopped: {e}");
        }
    };
    executor.spawn(serve).detach();
    smol::block_on(executor.run(event_loop.run()))
}

/// The TURN servers rtcam allocates on: `turn:` over UDP or TCP. Over TLS (`turns:`) rtcam
/// does not allocate; those are still handed to viewers. Resolved once at start, as STUN's.
fn resolve_turn(servers: &[crate::config::TurnConfig]) -> Vec<crate::config::TurnServer> {
    use crate::config::{IceUrl, Scheme};
    use std::net::ToSocketAddrs;
    let mut resolved = Vec::new();
    for turn in servers {
        let Ok(url) = IceUrl::parse(&turn.url) else {
            continue;
        };
        if url.scheme != Scheme::Turn {
            log::info!(
                "TURN server {url}: rtcam allocates over UDP or TCP only; it is given to viewers"
            );
            continue;
        }
        match (url.host.as_str(), url.port).to_socket_addrs() {
            // One address per server: a relay on each of a name's addresses adds nothing.
            Ok(mut found) => resolved.extend(found.next().map(|addr| crate::config::TurnServer {
                addr,
                tcp: url.tcp,
                auth: turn.clone(),
            })),
            Err(e) => log::warn!("TURN server {url} left out: {e}"),
        }
    }
    resolved
}

/// The STUN servers' addresses. Resolved once at start (a name that does not resolve then is
/// left out, with a warning: a camera often starts before its network is fully up).
fn resolve_stun(urls: &[String]) -> Vec<SocketAddr> {
    use std::net::ToSocketAddrs;
    let mut servers = Vec::new();
    for url in urls {
        let Ok(parsed) = crate::config::IceUrl::parse(url) else {
            continue;
        };
        match (parsed.host.as_str(), parsed.port).to_socket_addrs() {
            Ok(found) => servers.extend(found),
            Err(e) => log::warn!("STUN server {url} left out: {e}"),
        }
    }
    servers
}
