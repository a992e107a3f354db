//! A small HTTP/1.1 server for rtcam's few routes (WHEP, the page, the status JSON).
//!
//! Hand-rolled on `httparse` because rtcam runs on small boards and serves a handful of routes:
//! we want exact control of limits and timeouts and a tiny binary, and the smol-compatible
//! servers pull in far more than that.
//!
//! It speaks HTTP/1.0 and 1.1 with keep-alive and pipelining. Request bodies are framed by
//! `Content-Length` only (no chunked uploads), `Expect: 100-continue` is honoured, and every
//! resource a client can tie up is bounded by [`Limits`]: head and body size, connection count
//! in total and per client address, and how long a client may take to send a request or to read
//! the response. When slots are short, the connection longest without a complete request is
//! closed to make room (see `admission`). A refused request gets its status (400, 408, 411, 413,
//! 431, 501; 503 when every slot is answering a request) and the connection is closed.

mod admission;
mod connection;
mod head;
mod reply;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};
use smol::net::TcpListener;
use smol::{LocalExecutor, Timer};

use admission::{Admission, Refused, SlotId};

/// One complete request, body included, as the handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// As sent, e.g. `GET` (methods are case-sensitive). `HEAD` requests reach the handler as
    /// `HEAD`; the server drops the body of the response.
    pub method: String,
    /// Path and query as sent, e.g. `/whep/abc?x=1`.
    pub target: String,
    /// In the order sent, names in the client's case: look them up with [`Request::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    /// The first value of header `name`, compared case-insensitively.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name).next()
    }

    /// The target without its query.
    pub(crate) fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(path, _)| path)
    }
}

/// What the handler answers. The server adds `Content-Length` and, when it closes the
/// connection, `Connection: close`; a handler's own `Content-Length`, `Transfer-Encoding` and
/// `Connection` headers are not sent (a `Connection: close` makes the server close after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub(crate) fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header; a name may appear more than once (WHEP sends several `Link` headers).
    pub(crate) fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body and its `Content-Type`, replacing any earlier one.
    pub(crate) fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body.into();
        self
    }

    /// A one-line plain-text message, e.g. for errors.
    pub(crate) fn text(status: u16, message: &str) -> Self {
        Response::new(status).with_body("text/plain; charset=utf-8", format!("{message}\n"))
    }
}

/// What one client may cost the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Request line plus header fields; more gets 431.
    pub max_head_bytes: usize,
    /// Request body; a larger `Content-Length` gets 413 before the body is read.
    pub max_body_bytes: usize,
    /// A whole request (head and body) must arrive within this, else 408. Also the time a client
    /// gets to take in a response, and to send its first request after connecting.
    pub read_timeout: Duration,
    /// A kept-alive connection with no request under way closes after this.
    pub idle_timeout: Duration,
    /// Connections open at once. A new one beyond this closes the connection longest without
    /// a complete request; if every one is answering, it is answered 503.
    pub max_connections: usize,
    /// Connections open at once from one client address (an IPv6 /64); beyond this a new one
    /// closes that client's own longest-idle connection, or is answered 503.
    pub max_connections_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 64,
            // A browser opens up to 6 per host; a household behind one NAT has a few browsers.
            max_connections_per_client: 16,
        }
    }
}

/// How long the accept loop pauses after an error such as running out of file descriptors,
/// so it does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` and serves each in its own task on `executor`, answering
/// every request with `handler`.
///
/// Runs for as long as the listener works: it returns only when accepting fails in a way that
/// retrying cannot fix, with that error. Transient failures (a connection reset before it was
/// accepted, running out of file descriptors) are logged and retried. Dropping the returned
/// future stops accepting; connections already open are served to their end.
///
/// The event loop is single-threaded, so neither the handler nor its futures need be `Send`.
pub(crate) async fn serve<H, F>(
    listener: TcpListener,
    limits: Limits,
    executor: Rc<LocalExecutor<'static>>,
    handler: H,
) -> io::Error
where
    H: Fn(Request) -> F + 'static,
    F: Future<Output = Response> + 'static,
{
    let handler = Rc::new(handler);
    let admission = Rc::new(RefCell::new(Admission::new(
        limits.max_connections,
        limits.max_connections_per_client,
    )));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => match classify_accept_error(&error) {
                AcceptError::Retry => continue,
                AcceptError::BackOff => {
                    log::warn!("http: accept failed, pausing: {error}");
                    Timer::after(ACCEPT_BACKOFF).await;
                    continue;
                }
                AcceptError::Fatal => return error,
            },
        };
        // A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`; logs, limits and the
        // viewer's address all speak of them as the IPv4 clients they are.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        // The connection's task ends when this sender is dropped: by eviction, which removes
        // it from the table, or with the slot.
        let (closer, evicted) = smol::channel::bounded::<()>(1);
        let admitted = admission
            .borrow_mut()
            .admit(peer.ip(), Instant::now(), closer);
        let slot = match admitted {
            Ok(admitted) => {
                if !admitted.evicted.is_empty() {
                    log::debug!("http: {peer}: closed an idle connection to make room");
                }
                ConnectionSlot {
                    admission: Rc::clone(&admission),
                    id: admitted.slot,
                    evicted,
                }
            }
            Err(refused) => {
                match refused {
                    Refused::ClientFull => log::info!(
                        "http: refused {peer}: its {} connections are all busy",
                        limits.max_connections_per_client
                    ),
                    Refused::Full => log::info!(
                        "http: refused {peer}: all {} connections are busy",
                        limits.max_connections
                    ),
                }
                connection::turn_away(stream).await;
                continue;
            }
        };
        let handler = Rc::clone(&handler);
        executor
            .spawn(async move {
                connection::serve(stream, peer, limits, slot, &*handler).await;
            })
            .detach();
    }
}

enum AcceptError {
    /// This one connection failed; the next may not.
    Retry,
    /// The system is short of something (descriptors, memory) that may come back.
    BackOff,
    /// The listener itself is unusable.
    Fatal,
}

fn classify_accept_error(error: &io::Error) -> AcceptError {
    use io::ErrorKind::*;
    match error.kind() {
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock => AcceptError::Retry,
        // EINVAL: the socket is not listening. Nothing will change that.
        InvalidInput => AcceptError::Fatal,
        _ => AcceptError::BackOff,
    }
}

/// A connection's place in the admission table, given back when its task ends (however it
/// ends). The connection reports through it when it is answering a request (and so must not be
/// evicted) and learns through it that it was evicted.
struct ConnectionSlot {
    admission: Rc<RefCell<Admission<Sender<()>>>>,
    id: SlotId,
    evicted: Receiver<()>,
}

impl ConnectionSlot {
    fn busy(&self) {
        self.admission.borrow_mut().busy(self.id);
    }

    fn idle(&self) {
        self.admission.borrow_mut().idle(self.id, Instant::now());
    }

    /// Completes when the connection was evicted to make room for another.
    async fn evicted(&self) {
        // Nothing is ever sent: eviction drops the sender.
        let _ = self.evicted.recv().await;
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.admission.borrow_mut().release(self.id);
    }
}

/// The values of every header called `name` (case-insensitive), in order.
fn header_values<'h>(headers: &'h [(String, String)], name: &str) -> impl Iterator<Item = &'h str> {
    headers
        .iter()
        .filter(move |(candidate, _)| candidate.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Whether the comma-separated list header `name` holds `token` (as in `Connection: close`).
fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    header_values(headers, name)
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// What [`connection`] makes of the bytes a client sent before any route sees them: the head,
/// the body's framing, the connection's fate, the request. For the fuzz targets (`crate::fuzz`).
#[cfg(feature = "fuzzing")]
pub(crate) fn read_head_for_fuzzing(data: &[u8]) {
    let limits = Limits::default();
    let Ok(Some(head)) = head::parse(data, limits.max_head_bytes) else {
        return;
    };
    std::hint::black_box((head.keep_alive(), head.expects_continue()));
    let Ok(length) = head.body_length(limits.max_body_bytes) else {
        return;
    };
    let end = head.len.saturating_add(length);
    // The connection reads on until it has `end` bytes; here the input is all there is.
    let Some(body) = data.get(head.len..end) else {
        return;
    };
    let request = head.into_request(body.to_vec(), SocketAddr::from(([10, 0, 0, 2], 40000)));
    std::hint::black_box((request.path(), request.header("authorization")));
}
