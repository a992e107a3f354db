//! Starting and stopping rtcam: binds the sockets, opens the source, starts the encoder and
//! runs the event loop on its own thread.
//!
//! ```text
//! capture thread ─(raw frame, latest wins)─► encoder thread ─(access unit)─► event loop
//!                                                                 ▲             │ hub, UDP
//!                                  HTTP connections (same loop) ──┘ signals     ▼ socket
//! ```

mod event_loop;
pub mod meter;
mod stream;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::channel::{Sender, bounded};

use crate::config::{Config, SourceSpec};
use crate::encode::Pipeline;
use crate::hub::{Hub, HubConfig};
use crate::net::http::{self, Limits};
use crate::net::interfaces::host_candidates;
use crate::net::udp::MediaSocket;
use crate::net::whep::Routes;
use crate::notify::{self, Notifier};
use crate::source::FrameSource;
use crate::source::pattern::TestPattern;
use event_loop::EventLoop;
use stream::Stream;

/// Encoded frames waiting for the event loop. A few frames: the loop normally takes each at
/// once; if it stalls longer than this, frames drop (and the encoder makes an IDR) rather than
/// queue up delay.
const FRAME_QUEUE: usize = 4;

#[derive(Debug)]
pub enum StartError {
    Http(SocketAddr, io::Error),
    Media(SocketAddr, io::Error),
    Source(String),
    Encoder(String),
    Hub(String),
    Thread(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Http(a, e) => write!(f, "cannot listen for HTTP on {a}: {e}"),
            StartError::Media(a, e) => write!(f, "cannot bind the UDP media port {a}: {e}"),
            StartError::Source(e) => write!(f, "cannot open the frame source: {e}"),
            StartError::Encoder(e) => write!(f, "cannot start the encoder: {e}"),
            StartError::Hub(e) => write!(f, "cannot set up WebRTC: {e}"),
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
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen).map_err(|e| StartError::Http(listen, e))?;
    let http_addr = listener
        .local_addr()
        .map_err(|e| StartError::Http(listen, e))?;
    let media_bind = SocketAddr::new(listen.ip(), config.server.rtc_port);
    let socket = MediaSocket::bind(media_bind).map_err(|e| StartError::Media(media_bind, e))?;
    let media_addr = socket.local_addr();

    let started = Instant::now();
    let candidates = host_candidates(media_addr);
    log::info!(
        "media on UDP port {}; ICE host candidates: {}",
        media_addr.port(),
        candidates
            .iter()
            .map(|a| a.ip().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let hub = Hub::new(
        HubConfig {
            max_viewers: config.server.max_viewers,
            candidates,
            ..HubConfig::default()
        },
        started,
    )
    .map_err(|e| StartError::Hub(e.to_string()))?;

    let source = open_source(&config)?;
    let (frames_tx, frames) = bounded(FRAME_QUEUE);
    let pipeline = Pipeline::start(source, config.encoder_settings(), frames_tx)
        .map_err(|e| StartError::Encoder(e.to_string()))?;

    let (stop_tx, stop) = bounded(1);
    let (signals_tx, signals) = bounded(64);
    let event_loop = EventLoop {
        hub,
        socket,
        stream: Stream::new(pipeline, config.server.max_viewers, started),
        frames,
        signals,
        stop,
    };
    let cors_origin = config.server.cors_origin.clone();
    let thread = std::thread::Builder::new()
        .name("rtcam-loop".into())
        .spawn(move || {
            let routes = Routes::new(signals_tx, cors_origin);
            run_loop(listener, routes, event_loop, watchdog)
        })
        .map_err(StartError::Thread)?;

    Ok(Server {
        http_addr,
        media_addr,
        stop: stop_tx,
        thread: Some(thread),
    })
}

fn run_loop(
    listener: TcpListener,
    routes: Rc<Routes>,
    event_loop: EventLoop,
    watchdog: Option<(Notifier, Duration)>,
) -> Result<(), String> {
    let executor = Rc::new(smol::LocalExecutor::new());
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

fn open_source(config: &Config) -> Result<Box<dyn FrameSource>, StartError> {
    let v = &config.video;
    let pattern = || {
        TestPattern::new(v.size.width, v.size.height, v.fps)
            .map(|p| Box::new(p) as Box<dyn FrameSource>)
            .map_err(|err| StartError::Source(err.to_string()))
    };
    match &config.video.source {
        SourceSpec::Test => pattern(),
        SourceSpec::Auto => {
            log::info!("source auto: camera capture is not built yet, using the test pattern");
            pattern()
        }
        SourceSpec::Device(path) => Err(StartError::Source(format!(
            "{}: camera capture (V4L2) is not supported in this version; use --source test",
            path.display()
        ))),
    }
}
