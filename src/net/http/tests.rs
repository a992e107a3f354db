//! The server end to end: a real listener on 127.0.0.1, driven by plain blocking sockets.
//!
//! No test measures time: timeouts are configured short and the tests check what the client sees
//! (a status, the connection closing). The clients' own socket timeouts only keep a broken
//! server from hanging the test run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use smol::LocalExecutor;
use smol::net::TcpListener;

use super::{Limits, Request, Response, serve};

/// Body size of `GET /big`: far more than the kernel buffers of a client that doesn't read.
const BIG_BODY: usize = 16 * 1024 * 1024;

/// Describes the request it got: `METHOD target body-length`, then the body.
async fn echo(request: Request) -> Response {
    match request.path() {
        "/no-content" => Response::new(204),
        "/close" => Response::text(200, "bye").header("Connection", "close"),
        "/big" => Response::new(200).with_body("application/octet-stream", vec![b'x'; BIG_BODY]),
        _ => {
            let mut body = format!(
                "{} {} {}\n",
                request.method,
                request.target,
                request.body.len()
            )
            .into_bytes();
            body.extend_from_slice(&request.body);
            let local = request.peer.ip().is_loopback().to_string();
            Response::new(200)
                .with_body("text/plain", body)
                .header("X-Peer-Loopback", local)
        }
    }
}

/// Starts a server with `limits` on its own thread and returns its address.
fn start(limits: Limits) -> SocketAddr {
    let (address_tx, address_rx) = mpsc::channel();
    thread::spawn(move || {
        let executor = Rc::new(LocalExecutor::new());
        smol::block_on(executor.run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            address_tx
                .send(listener.local_addr().expect("local address"))
                .expect("test alive");
            let error = serve(listener, limits, executor.clone(), echo).await;
            panic!("serve stopped: {error}");
        }));
    });
    address_rx.recv().expect("server started")
}

/// A read timeout short enough for tests that wait it out (the idle timeout stays long, so a
/// test passing proves it was the read timeout that acted).
fn short_read_timeout() -> Limits {
    Limits {
        read_timeout: Duration::from_millis(300),
        ..Limits::default()
    }
}

fn connect(address: SocketAddr) -> Client {
    let stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    Client {
        stream,
        buf: Vec::new(),
    }
}

struct Client {
    stream: TcpStream,
    /// Received and not yet parsed: the start of the next response.
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("text body")
    }
}

impl Client {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads more from the socket; false at end of stream.
    fn fill(&mut self) -> bool {
        let mut chunk = [0; 4096];
        let read = self.stream.read(&mut chunk).expect("read");
        self.buf.extend_from_slice(&chunk[..read]);
        read > 0
    }

    /// Reads one response (`to_head` tells that it answers a HEAD request, so it has no body).
    fn reply_to(&mut self, to_head: bool) -> Reply {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&self.buf).expect("well-formed response") {
                httparse::Status::Complete(head_len) => {
                    let status = parsed.code.expect("status");
                    let headers: Vec<(String, String)> = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8(h.value.to_vec()).expect("ASCII");
                            (h.name.to_owned(), value)
                        })
                        .collect();
                    let length = headers
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                        .map(|(_, value)| value.parse::<usize>().expect("numeric length"));
                    let body_len = if to_head || matches!(status, 100..=199 | 204 | 304) {
                        0
                    } else {
                        length.expect("Content-Length on a response with a body")
                    };
                    while self.buf.len() < head_len + body_len {
                        assert!(self.fill(), "connection closed inside a body");
                    }
                    let body = self.buf[head_len..head_len + body_len].to_vec();
                    self.buf.drain(..head_len + body_len);
                    return Reply {
                        status,
                        headers,
                        body,
                    };
                }
                httparse::Status::Partial => {
                    assert!(self.fill(), "connection closed before a response");
                }
            }
        }
    }

    fn reply(&mut self) -> Reply {
        self.reply_to(false)
    }

    /// Asserts that the server closed the connection with nothing more to say.
    fn assert_closed(&mut self) {
        assert!(self.buf.is_empty(), "unread response bytes: {:?}", self.buf);
        assert!(!self.fill(), "expected the end, got {:?}", self.buf);
    }
}

#[test]
fn keep_alive_serves_a_second_request_on_the_same_connection() {
    let mut client = connect(start(Limits::default()));
    client.send(b"GET /first HTTP/1.1\r\nHost: cam\r\n\r\n");
    let first = client.reply();
    assert_eq!(first.status, 200);
    assert_eq!(first.body_text(), "GET /first 0\n");
    assert_eq!(first.header("Connection"), None);
    assert_eq!(first.header("X-Peer-Loopback"), Some("true"));

    client.send(b"GET /second?x=1 HTTP/1.1\r\nHost: cam\r\n\r\n");
    let second = client.reply();
    assert_eq!(second.status, 200);
    assert_eq!(second.body_text(), "GET /second?x=1 0\n");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut client = connect(start(Limits::default()));
    client.send(
        b"POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
          GET /two HTTP/1.1\r\n\r\n\
          GET /three HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(client.reply().body_text(), "POST /one 3\nabc");
    assert_eq!(client.reply().body_text(), "GET /two 0\n");
    let last = client.reply();
    assert_eq!(last.body_text(), "GET /three 0\n");
    assert_eq!(last.header("Connection"), Some("close"));
    client.assert_closed();
}

#[test]
fn post_body_reaches_the_handler() {
    let mut client = connect(start(Limits::default()));
    let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".repeat(100);
    client.send(
        format!(
            "POST /whep HTTP/1.1\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
            offer.len()
        )
        .as_bytes(),
    );
    // The body in a separate write, as a client that streams it would send it.
    client.send(offer.as_bytes());
    let reply = client.reply();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body_text(),
        format!("POST /whep {}\n{offer}", offer.len())
    );
}

#[test]
fn body_over_the_limit_gets_413_without_being_sent() {
    let mut client = connect(start(Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    }));
    client.send(b"POST /whep HTTP/1.1\r\nContent-Length: 1025\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("Connection"), Some("close"));
    client.assert_closed();
}

#[test]
fn head_over_the_limit_gets_431() {
    let address = start(Limits {
        max_head_bytes: 1024,
        ..Limits::default()
    });
    // Complete but too long, and too long without ever ending.
    let fill = "a".repeat(2000);
    for request in [
        format!("GET / HTTP/1.1\r\nX-Fill: {fill}\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nX-Fill: {fill}"),
    ] {
        let mut client = connect(address);
        client.send(request.as_bytes());
        let reply = client.reply();
        assert_eq!(reply.status, 431);
        assert_eq!(reply.header("Connection"), Some("close"));
        client.assert_closed();
    }
}

#[test]
fn malformed_requests_get_400() {
    let address = start(Limits::default());
    for request in [
        &b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: five\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    ] {
        let mut client = connect(address);
        client.send(request);
        let reply = client.reply();
        assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(request));
        assert_eq!(reply.header("Connection"), Some("close"));
        client.assert_closed();
    }
}

#[test]
fn transfer_encoding_gets_501() {
    let mut client = connect(start(Limits::default()));
    client
        .send(b"POST /whep HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(client.reply().status, 501);
    client.assert_closed();
}

#[test]
fn post_without_length_gets_411() {
    let mut client = connect(start(Limits::default()));
    client.send(b"POST /whep HTTP/1.1\r\nHost: cam\r\n\r\n");
    assert_eq!(client.reply().status, 411);
    client.assert_closed();
}

#[test]
fn expect_continue_gets_100_before_the_body_is_sent() {
    let mut client = connect(start(Limits::default()));
    client.send(b"POST /whep HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(client.reply().status, 100);
    client.send(b"hello");
    let reply = client.reply();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body_text(), "POST /whep 5\nhello");
}

#[test]
fn expect_continue_with_a_body_over_the_limit_gets_413_instead() {
    let mut client = connect(start(Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    }));
    client.send(b"POST /whep HTTP/1.1\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(client.reply().status, 413);
    client.assert_closed();
}

#[test]
fn partial_head_then_silence_gets_408_and_close() {
    let mut client = connect(start(short_read_timeout()));
    client.send(b"GET / HTTP/1.1\r\nHost: ca");
    let reply = client.reply();
    assert_eq!(reply.status, 408);
    assert_eq!(reply.header("Connection"), Some("close"));
    client.assert_closed();
}

#[test]
fn partial_body_then_silence_gets_408_and_close() {
    let mut client = connect(start(short_read_timeout()));
    client.send(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nhalf");
    assert_eq!(client.reply().status, 408);
    client.assert_closed();
}

#[test]
fn connection_that_sends_nothing_is_closed_silently() {
    let mut client = connect(start(short_read_timeout()));
    client.assert_closed();
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let mut client = connect(start(Limits {
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    }));
    client.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(client.reply().status, 200);
    client.assert_closed();
}

#[test]
fn an_idle_connection_makes_room_for_a_new_one() {
    let address = start(Limits {
        max_connections: 1,
        ..Limits::default()
    });
    let mut idle = connect(address);
    idle.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(idle.reply().status, 200);

    let mut newcomer = connect(address);
    newcomer.send(b"GET /new HTTP/1.1\r\n\r\n");
    assert_eq!(newcomer.reply().status, 200);
    idle.assert_closed();
}

#[test]
fn connections_over_the_limit_get_503_while_every_slot_is_answering() {
    let address = start(Limits {
        max_connections: 1,
        read_timeout: Duration::from_millis(500),
        ..Limits::default()
    });
    // A response the client does not read keeps its connection answering.
    let mut stalled = connect(address);
    stalled.send(b"GET /big HTTP/1.1\r\n\r\n");
    thread::sleep(Duration::from_millis(100));

    let mut extra = connect(address);
    let refused = extra.reply();
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("Connection"), Some("close"));
    extra.assert_closed();

    // Once the server gives up on `stalled`, its slot serves someone else.
    assert_eventually_served(address);
    drop(stalled);
}

#[test]
fn one_address_cannot_take_the_slots_of_others() {
    let address = start(Limits {
        max_connections: 8,
        max_connections_per_client: 2,
        ..Limits::default()
    });
    // 20 connections from 127.0.0.2 that never send a request.
    let hogs: Vec<TcpStream> = (0..20)
        .map(|_| connect_from("127.0.0.2", address))
        .collect();
    for n in 0..6 {
        let mut client = connect(address);
        client.send(format!("GET /{n} HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(client.reply().status, 200, "request {n} from 127.0.0.1");
    }
    // Of the 20, all but the newest 2 were closed to make room for their own successors.
    let open = hogs
        .into_iter()
        .filter(|hog| {
            hog.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("read timeout");
            let mut byte = [0u8; 1];
            // Still open: the read times out rather than seeing the end of the stream.
            matches!((&*hog).read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    assert_eq!(open, 2);
}

/// A plain connection from `source` (any 127.0.0.0/8 address works on Linux's loopback).
fn connect_from(source: &str, address: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let source: SocketAddr = format!("{source}:0").parse().expect("source address");
    socket
        .bind(&source.into())
        .expect("bind the source address");
    socket.connect(&address.into()).expect("connect");
    socket.into()
}

#[test]
fn client_that_does_not_read_its_response_is_dropped() {
    let address = start(Limits {
        max_connections: 1,
        read_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let mut stalled = connect(address);
    stalled.send(b"GET /big HTTP/1.1\r\n\r\n");
    // `stalled` never reads; once the server gives up on it, its slot serves someone else.
    assert_eventually_served(address);
    drop(stalled);
}

/// Connects until a request is served rather than refused with 503: the server frees a slot
/// some time after its connection ends, and the test can't know exactly when.
fn assert_eventually_served(address: SocketAddr) {
    for _ in 0..200 {
        // A refusal may also come as a reset (the server closes without reading the request), so
        // this client tolerates errors and looks only at what it got.
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let _ = stream.write_all(b"GET /again HTTP/1.1\r\nConnection: close\r\n\r\n");
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received);
        if received.starts_with(b"HTTP/1.1 200 OK\r\n") {
            assert!(received.ends_with(b"\r\n\r\nGET /again 0\n"));
            return;
        }
        if !received.is_empty() {
            assert!(received.starts_with(b"HTTP/1.1 503 "), "{received:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("no connection slot came free");
}

#[test]
fn head_response_has_length_but_no_body() {
    let mut client = connect(start(Limits::default()));
    client.send(b"HEAD /page HTTP/1.1\r\n\r\n");
    let reply = client.reply_to(true);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Content-Length"), Some("13"));
    // Had a body been sent, it would be read as the start of this response.
    client.send(b"GET /page HTTP/1.1\r\n\r\n");
    let get = client.reply();
    assert_eq!(get.body_text(), "GET /page 0\n");
}

#[test]
fn no_content_response_has_no_length() {
    let mut client = connect(start(Limits::default()));
    client.send(b"DELETE /no-content HTTP/1.1\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("Content-Length"), None);
    client.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(client.reply().status, 200);
}

#[test]
fn http10_request_is_answered_and_closed() {
    let mut client = connect(start(Limits::default()));
    client.send(b"GET /old HTTP/1.0\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.body_text(), "GET /old 0\n");
    assert_eq!(reply.header("Connection"), Some("close"));
    client.assert_closed();
}

#[test]
fn http10_keep_alive_is_confirmed_and_honoured() {
    let mut client = connect(start(Limits::default()));
    client.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.header("Connection"), Some("keep-alive"));
    client.send(b"GET /b HTTP/1.0\r\n\r\n");
    assert_eq!(client.reply().body_text(), "GET /b 0\n");
    client.assert_closed();
}

#[test]
fn connection_close_from_client_or_handler_closes() {
    let address = start(Limits::default());
    let mut client = connect(address);
    client.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(client.reply().header("Connection"), Some("close"));
    client.assert_closed();

    let mut client = connect(address);
    client.send(b"GET /close HTTP/1.1\r\n\r\n");
    let reply = client.reply();
    assert_eq!(reply.body_text(), "bye\n");
    assert_eq!(reply.header("Connection"), Some("close"));
    client.assert_closed();
}
