//! One client connection: read requests, hand them to the handler, write the responses, and keep
//! the client within the time and size limits while doing so.

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use smol::Timer;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use super::head::{self, Head, Refusal};
use super::reply::{self, ConnectionHeader};
use super::{ConnectionSlot, Limits, Request, Response};

/// Most bytes taken from the socket per read.
const READ_CHUNK: usize = 8 * 1024;
/// Bounds on draining a client's input before closing (see [`Connection::linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

/// Serves requests on `stream` until either side closes it or the client breaks a limit.
pub(super) async fn serve<H, F>(
    stream: TcpStream,
    peer: SocketAddr,
    limits: Limits,
    slot: ConnectionSlot,
    handler: &H,
) where
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let accepted = Instant::now();
    // Responses go out in one write; without this the kernel may hold back the last segment of a
    // large one until the client's (delayed) ACK of the previous.
    let _ = stream.set_nodelay(true);
    let mut connection = Connection {
        stream,
        peer,
        limits,
        slot,
        buf: Vec::new(),
    };
    connection.run(accepted, handler).await;
}

/// Tells a client over the connection limit to come back later, and closes.
///
/// Runs on the accept loop, so it must not wait: it makes one non-blocking write into the new
/// socket's empty send buffer, which takes these few bytes, and gives up if it didn't. A task per
/// refused connection would let a flood of connects grow memory, which is what the limit is for.
pub(super) async fn turn_away(mut stream: TcpStream) {
    let response =
        Response::text(503, "too many connections, try again later").header("Retry-After", "1");
    let bytes = reply::serialize(&response, true, ConnectionHeader::Close);
    let _ = smol::future::poll_once(stream.write_all(&bytes)).await;
    let _ = stream.shutdown(Shutdown::Write);
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    limits: Limits,
    slot: ConnectionSlot,
    /// Bytes received and not yet consumed: the request being read, and any pipelined after it.
    buf: Vec<u8>,
}

/// Why a socket operation ended without its result.
enum IoStop {
    TimedOut,
    /// Closed to make room for another connection (see `admission`).
    Evicted,
    Failed(io::Error),
}

/// Why no request came out of reading one.
enum ReadStop {
    /// Answer with an error status and close.
    Refused(Refusal),
    /// The client closed or the socket failed: there is no one to answer.
    Gone,
}

impl From<Refusal> for ReadStop {
    fn from(refusal: Refusal) -> Self {
        ReadStop::Refused(refusal)
    }
}

impl Connection {
    async fn run<H, F>(&mut self, accepted: Instant, handler: &H)
    where
        H: Fn(Request) -> F,
        F: Future<Output = Response>,
    {
        let peer = self.peer;
        let mut first = true;
        loop {
            // A new connection must deliver its whole first request within the read timeout, so
            // connecting and sending nothing holds a slot no longer than a slow request does.
            let idle_deadline = if first {
                accepted + self.limits.read_timeout
            } else {
                Instant::now() + self.limits.idle_timeout
            };
            if self.buf.is_empty() {
                match self.fill(idle_deadline).await {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(IoStop::TimedOut) => {
                        log::trace!("http: {peer}: closing idle connection");
                        self.close_quietly();
                        return;
                    }
                    Err(IoStop::Evicted) => {
                        log::debug!("http: {peer}: idle connection closed to make room");
                        self.close_quietly();
                        return;
                    }
                    Err(IoStop::Failed(error)) => {
                        log::debug!("http: {peer}: {error}");
                        return;
                    }
                }
            }
            let deadline = if first {
                accepted + self.limits.read_timeout
            } else {
                Instant::now() + self.limits.read_timeout
            };
            first = false;

            let (head, body) = match self.read_request(deadline).await {
                Ok(request) => request,
                Err(ReadStop::Refused(refusal)) => {
                    self.refuse(refusal).await;
                    return;
                }
                Err(ReadStop::Gone) => return,
            };
            self.slot.busy();
            let keep_alive = head.keep_alive();
            let http10 = head.http10;
            let request = head.into_request(body, peer);
            let method = request.method.clone();
            // Only the path: a query may carry tokens that don't belong in logs.
            let path = request.path().to_owned();

            let response = handler(request).await;

            let keep_alive = keep_alive && !reply::asks_close(&response);
            let connection = match (keep_alive, http10) {
                (false, _) => ConnectionHeader::Close,
                (true, true) => ConnectionHeader::KeepAlive,
                (true, false) => ConnectionHeader::Omitted,
            };
            log::debug!("http: {peer} {method} {path} -> {}", response.status);
            let bytes = reply::serialize(&response, method != "HEAD", connection);
            if !self.send(&bytes).await {
                return;
            }
            self.slot.idle();
            if !keep_alive {
                self.linger().await;
                return;
            }
        }
    }

    /// Reads one request's head and body, which must be complete by `deadline`.
    async fn read_request(&mut self, deadline: Instant) -> Result<(Head, Vec<u8>), ReadStop> {
        let head = loop {
            if let Some(head) = head::parse(&self.buf, self.limits.max_head_bytes)? {
                break head;
            }
            self.fill_request(deadline).await?;
        };
        // Refused before reading on: a client told 413 right away needn't upload the body.
        let end = head
            .len
            .saturating_add(head.body_length(self.limits.max_body_bytes)?);
        if self.buf.len() < end && head.expects_continue() {
            self.write_all(reply::CONTINUE, deadline)
                .await
                .map_err(|_| ReadStop::Gone)?;
        }
        while self.buf.len() < end {
            self.fill_request(deadline).await?;
        }
        let body = self.buf[head.len..end].to_vec();
        // What follows is the next (pipelined) request.
        self.buf.drain(..end);
        Ok((head, body))
    }

    /// [`Self::fill`] for a request under way, where running out of time means 408.
    async fn fill_request(&mut self, deadline: Instant) -> Result<(), ReadStop> {
        match self.fill(deadline).await {
            Ok(0) => Err(ReadStop::Gone),
            Ok(_) => Ok(()),
            Err(IoStop::TimedOut) => Err(ReadStop::Refused(Refusal::Timeout)),
            Err(IoStop::Evicted) => {
                // Its request had been under way longer than any other connection's.
                log::debug!(
                    "http: {}: unfinished request closed to make room",
                    self.peer
                );
                self.close_quietly();
                Err(ReadStop::Gone)
            }
            Err(IoStop::Failed(error)) => {
                log::debug!("http: {}: {error}", self.peer);
                Err(ReadStop::Gone)
            }
        }
    }

    /// Appends what the socket has (up to [`READ_CHUNK`]) to `buf`; `Ok(0)` means the client
    /// closed its side.
    async fn fill(&mut self, deadline: Instant) -> Result<usize, IoStop> {
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let slot = &self.slot;
        let read = with_deadline(deadline, self.stream.read(&mut self.buf[start..]));
        let result = smol::future::or(read, async {
            slot.evicted().await;
            Err(IoStop::Evicted)
        })
        .await;
        let read = result.as_ref().map_or(0, |&read| read);
        self.buf.truncate(start + read);
        result
    }

    /// Answers a request that can't be served, and closes.
    async fn refuse(&mut self, refusal: Refusal) {
        log::debug!(
            "http: {} refused -> {} ({})",
            self.peer,
            refusal.status(),
            refusal.message()
        );
        let response = Response::text(refusal.status(), refusal.message());
        if self
            .send(&reply::serialize(&response, true, ConnectionHeader::Close))
            .await
        {
            self.linger().await;
        }
    }

    /// Writes a response; false when it didn't go out (and the connection is to be dropped).
    async fn send(&mut self, bytes: &[u8]) -> bool {
        // A client that doesn't take its response in time is holding a slot: drop it.
        let deadline = Instant::now() + self.limits.read_timeout;
        match self.write_all(bytes, deadline).await {
            Ok(()) => true,
            Err(IoStop::TimedOut) => {
                log::debug!("http: {}: response not taken in time, dropping", self.peer);
                false
            }
            // Writes do not watch for eviction; a connection answering is never evicted.
            Err(IoStop::Evicted) => false,
            Err(IoStop::Failed(error)) => {
                log::debug!("http: {}: {error}", self.peer);
                false
            }
        }
    }

    async fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), IoStop> {
        with_deadline(deadline, self.stream.write_all(bytes)).await
    }

    /// Closes after the last response: half-close, then drain what the client still sends.
    ///
    /// Closing a socket with unread input makes the kernel send a reset, and a reset can destroy
    /// our last response before the client has read it (a 413 sent while the client is still
    /// uploading, say). Draining for a bounded while lets the client read it and close first.
    async fn linger(&mut self) {
        self.close_quietly();
        let deadline = Instant::now() + LINGER_TIME.min(self.limits.read_timeout);
        let mut drained = 0;
        while drained < LINGER_BYTES {
            self.buf.clear();
            match self.fill(deadline).await {
                Ok(0) | Err(_) => break,
                Ok(read) => drained += read,
            }
        }
    }

    /// Sends our FIN; the socket itself closes when the connection is dropped.
    fn close_quietly(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Runs `io` until it completes or `deadline` passes.
async fn with_deadline<T>(
    deadline: Instant,
    io: impl Future<Output = io::Result<T>>,
) -> Result<T, IoStop> {
    smol::future::or(async { io.await.map_err(IoStop::Failed) }, async {
        Timer::at(deadline).await;
        Err(IoStop::TimedOut)
    })
    .await
}
