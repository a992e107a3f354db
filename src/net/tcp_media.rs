//! ICE-TCP, the passive side (RFC 6544): a viewer whose network lets no UDP through connects to
//! the media port over TCP and speaks ICE, DTLS and SRTP on the connection, every packet
//! framed by its 16-bit length (RFC 4571). The event loop receives the frames as datagrams
//! with `Protocol::Tcp` (source: the viewer's end, destination: ours) and hands str0m's TCP
//! transmits back; they go out on the connection whose far end they name.
//!
//! The event loop and these tasks share nothing but two channels, so the loop stays the one
//! owner of the streamer. A slow connection loses packets (its queue is bounded), as a slow
//! UDP path would: media never waits for one viewer's TCP.
//!
//! The same tasks carry rtcam's own TURN allocations over TCP (RFC 8656 §3.1): the first
//! transmit to a server in the `dial` list opens a connection to it; on it, STUN messages go
//! as they are (framed by their own length), and the event loop hears when it ends, since the
//! allocation ends with it.
//!
//! A listening port is a door for anyone: connections are limited in number, in all and per
//! client address (as HTTP's), must bring their first frame within a few seconds and a frame
//! now and then after that (str0m checks consent every few seconds), and a frame longer than
//! any packet str0m sends closes the connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

use smol::channel::{Receiver, Sender, bounded};
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use crate::hub::client_key;

/// Connections at once, and from one client address (an IPv6 /64).
const MAX_CONNECTIONS: usize = 64;
const MAX_PER_CLIENT: usize = 8;
/// A connection that has not sent its first frame (a STUN check) by then is closed.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Nor any frame for this long (ICE consent checks come every few seconds).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// str0m's packets stay under 1,500 bytes; a longer frame is not ICE, DTLS or SRTP.
const MAX_FRAME: usize = 2048;
/// Frames waiting for the event loop, from all connections.
const INBOUND_QUEUE: usize = 256;
/// Frames waiting to be written, per connection: beyond this they are dropped.
const OUTBOUND_QUEUE: usize = 256;
/// A TURN server that has not taken the connection by then is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One frame from a viewer's connection.
pub(crate) struct Frame {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// What the connections tell the event loop.
pub(crate) enum TcpEvent {
    Frame(Frame),
    /// The connection rtcam opened to this server ended, or could not be made.
    Closed(SocketAddr),
}

/// The event loop's side.
pub(crate) struct LoopSide {
    pub events: Receiver<TcpEvent>,
    transmits: Sender<(SocketAddr, Vec<u8>)>,
}

impl LoopSide {
    /// Queues a packet for the connection whose far end is `destination`; dropped when that
    /// connection is gone or its queue is full (as UDP would lose it).
    pub(crate) fn send(&self, destination: SocketAddr, contents: &[u8]) {
        if self
            .transmits
            .try_send((destination, contents.to_vec()))
            .is_err()
        {
            log::debug!("ice-tcp: dropped a packet for {destination}");
        }
    }
}

/// The connections' side: run by `serve` on the event loop's executor.
pub(crate) struct TaskSide {
    events: Sender<TcpEvent>,
    transmits: Receiver<(SocketAddr, Vec<u8>)>,
    /// TURN servers reached over TCP: a transmit to one opens a connection.
    dial: Vec<SocketAddr>,
}

pub(crate) fn channels(dial: Vec<SocketAddr>) -> (LoopSide, TaskSide) {
    let (events_tx, events) = bounded(INBOUND_QUEUE);
    let (transmits, transmits_rx) = bounded(INBOUND_QUEUE);
    (
        LoopSide { events, transmits },
        TaskSide {
            events: events_tx,
            transmits: transmits_rx,
            dial,
        },
    )
}

/// Connections by the viewer's address, and how many each client holds.
#[derive(Default)]
struct Table {
    writers: HashMap<SocketAddr, Sender<Vec<u8>>>,
    per_client: HashMap<IpAddr, usize>,
}

/// Carries packets to and from TCP connections: viewers' (accepted on `listener`, with
/// ICE-TCP on) and TURN servers' (opened when first sent to).
pub(crate) async fn serve(
    listener: Option<TcpListener>,
    side: TaskSide,
    executor: Rc<smol::LocalExecutor<'static>>,
) {
    let TaskSide {
        events,
        transmits,
        dial,
    } = side;
    let table = Rc::new(RefCell::new(Table::default()));
    executor
        .spawn(dispatch(
            transmits,
            dial,
            events.clone(),
            table.clone(),
            executor.clone(),
        ))
        .detach();
    if let Some(listener) = listener {
        accept(listener, events, table, executor).await;
    }
}

/// Hands each packet to the connection whose far end it names, opening one to a TURN server.
async fn dispatch(
    transmits: Receiver<(SocketAddr, Vec<u8>)>,
    dial: Vec<SocketAddr>,
    events: Sender<TcpEvent>,
    table: Rc<RefCell<Table>>,
    executor: Rc<smol::LocalExecutor<'static>>,
) {
    while let Ok((destination, contents)) = transmits.recv().await {
        let writer = table.borrow().writers.get(&destination).cloned();
        if let Some(writer) = writer {
            let _ = writer.try_send(contents);
            continue;
        }
        if !dial.contains(&destination) {
            continue;
        }
        // The writer goes in the table now: what is sent while the connection is being made
        // waits in its queue.
        let (writer, queue) = bounded(OUTBOUND_QUEUE);
        let _ = writer.try_send(contents);
        table.borrow_mut().writers.insert(destination, writer);
        let table = table.clone();
        let events = events.clone();
        executor
            .spawn(async move {
                let why = turn_connection(destination, events.clone(), queue).await;
                log::info!("TURN over TCP: connection to {destination} ended: {why}");
                table.borrow_mut().writers.remove(&destination);
                let _ = events.send(TcpEvent::Closed(destination)).await;
            })
            .detach();
    }
}

/// Accepts viewers' connections until the listener fails.
async fn accept(
    listener: TcpListener,
    events: Sender<TcpEvent>,
    table: Rc<RefCell<Table>>,
    executor: Rc<smol::LocalExecutor<'static>>,
) {
    let listener = match smol::net::TcpListener::try_from(listener) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("ice-tcp: listener: {e}; ICE-TCP is off");
            return;
        }
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::debug!("ice-tcp: accept: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let client = client_key(peer.ip());
        {
            let t = table.borrow();
            let held = t.per_client.get(&client).copied().unwrap_or(0);
            if t.writers.len() >= MAX_CONNECTIONS || held >= MAX_PER_CLIENT {
                log::info!("ice-tcp: refused {peer}: too many connections");
                continue;
            }
        }
        let local = match stream.local_addr() {
            Ok(a) => SocketAddr::new(a.ip().to_canonical(), a.port()),
            Err(_) => continue,
        };
        let (writer, queue) = bounded(OUTBOUND_QUEUE);
        {
            let mut t = table.borrow_mut();
            t.writers.insert(peer, writer);
            *t.per_client.entry(client).or_default() += 1;
        }
        let table = table.clone();
        let events = events.clone();
        executor
            .spawn(async move {
                let why = carry(stream, peer, local, events, queue, Framing::Viewer).await;
                log::debug!("ice-tcp: {peer} closed: {why}");
                let mut t = table.borrow_mut();
                t.writers.remove(&peer);
                if let Some(n) = t.per_client.get_mut(&client) {
                    *n -= 1;
                    if *n == 0 {
                        t.per_client.remove(&client);
                    }
                }
            })
            .detach();
    }
}

/// How packets are cut out of a connection's stream and put on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// A viewer's ICE-TCP connection: RFC 4571 frames, and limits on silence.
    Viewer,
    /// rtcam's connection to a TURN server: STUN messages as they are, framed by their own
    /// length. No idle limit: the server is ours to trust, and refreshes come every few minutes.
    Turn,
}

/// One connection: what comes in goes to the event loop as frames from `peer` to `local`,
/// queued packets go out, until either side ends or a limit is broken. Returns why it ended.
async fn carry(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    events: Sender<TcpEvent>,
    queue: Receiver<Vec<u8>>,
    framing: Framing,
) -> String {
    let _ = stream.set_nodelay(true);
    let mut reader = stream.clone();
    let mut writer = stream;
    let read = async move {
        let mut timeout = FIRST_FRAME_TIMEOUT;
        loop {
            let next = match framing {
                Framing::Viewer => read_frame(&mut reader).or(expire(timeout)).await,
                Framing::Turn => read_turn_message(&mut reader).await,
            };
            let contents = match next {
                Ok(contents) => contents,
                Err(e) => return e.to_string(),
            };
            timeout = IDLE_TIMEOUT;
            let frame = Frame {
                source: peer,
                destination: local,
                contents,
            };
            if events.send(TcpEvent::Frame(frame)).await.is_err() {
                return "rtcam is stopping".to_string();
            }
        }
    };
    let write = async move {
        while let Ok(packet) = queue.recv().await {
            let written = match framing {
                Framing::Viewer => writer.write_all(&framed(&packet)).await,
                Framing::Turn => writer.write_all(&packet).await,
            };
            if let Err(e) = written {
                return e.to_string();
            }
        }
        "closed".to_string()
    };
    read.or(write).await
}

/// rtcam's connection to a TURN server, once made. Returns why it ended.
async fn turn_connection(
    server: SocketAddr,
    events: Sender<TcpEvent>,
    queue: Receiver<Vec<u8>>,
) -> String {
    let connect = async { TcpStream::connect(server).await };
    let stream = match connect.or(expire(CONNECT_TIMEOUT)).await {
        Ok(stream) => stream,
        Err(e) => return format!("cannot connect: {e}"),
    };
    let local = match stream.local_addr() {
        Ok(a) => SocketAddr::new(a.ip().to_canonical(), a.port()),
        Err(e) => return e.to_string(),
    };
    log::info!("TURN over TCP: connected to {server} from {local}");
    carry(stream, server, local, events, queue, Framing::Turn).await
}

/// One message from a TURN server's stream: STUN (a 20-byte header whose length counts the
/// attributes after it), or ChannelData (a 4-byte header, padded to 4 bytes on a stream;
/// RFC 8656 §12.5), which rtcam never asks for but reads past.
async fn read_turn_message<R: AsyncReadExt + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    reader.read_exact(&mut head).await?;
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let total = match head[0] >> 6 {
        0 if len % 4 == 0 => 20 + len,
        1 => 4 + len.next_multiple_of(4),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server sent something that is neither STUN nor ChannelData",
            ));
        }
    };
    let mut contents = vec![0u8; total];
    contents[..4].copy_from_slice(&head);
    reader.read_exact(&mut contents[4..]).await?;
    Ok(contents)
}

/// One RFC 4571 frame: a 16-bit big-endian length, then that many bytes.
async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len).await?;
    let len = usize::from(u16::from_be_bytes(len));
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is not ICE, DTLS or SRTP"),
        ));
    }
    let mut contents = vec![0u8; len];
    reader.read_exact(&mut contents).await?;
    Ok(contents)
}

fn framed(packet: &[u8]) -> Vec<u8> {
    // str0m's packets are far below 64 KiB; a longer one cannot be framed and is cut, which
    // the far end's DTLS or SRTP then refuses.
    let len = u16::try_from(packet.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(2 + usize::from(len));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&packet[..usize::from(len)]);
    out
}

async fn expire<T>(after: Duration) -> io::Result<T> {
    smol::Timer::after(after).await;
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("nothing for {} s", after.as_secs()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_whole_across_reads_and_written_with_their_length() {
        smol::block_on(async {
            let bytes = [&framed(b"stun")[..], &framed(&[7u8; 1200])[..], &[0, 3, 1]].concat();
            let mut reader = smol::io::Cursor::new(bytes);
            assert_eq!(read_frame(&mut reader).await.unwrap(), b"stun");
            assert_eq!(read_frame(&mut reader).await.unwrap(), vec![7u8; 1200]);
            // A frame cut short by the end of the stream is an error, not a short frame.
            assert!(read_frame(&mut reader).await.is_err());
        });
    }

    #[test]
    fn empty_and_oversized_frames_are_refused() {
        smol::block_on(async {
            for len in [0u16, 2049, u16::MAX] {
                let mut bytes = len.to_be_bytes().to_vec();
                bytes.resize(2 + usize::from(len), 0);
                let mut reader = smol::io::Cursor::new(bytes);
                let e = read_frame(&mut reader).await.unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{len}");
            }
        });
    }

    /// A real connection: its frames reach the loop's side with both addresses, packets sent
    /// to its address come back framed, and a connection that sends nothing is not held.
    #[test]
    fn a_connection_carries_frames_both_ways() {
        let executor = Rc::new(smol::LocalExecutor::new());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (side, task) = channels(Vec::new());
        executor
            .spawn(serve(Some(listener), task, executor.clone()))
            .detach();
        smol::block_on(executor.run(async {
            let mut viewer = smol::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            viewer.write_all(&framed(b"binding request")).await.unwrap();
            let Ok(TcpEvent::Frame(frame)) = side.events.recv().await else {
                panic!("a frame");
            };
            assert_eq!(frame.contents, b"binding request");
            assert_eq!(frame.source, viewer.local_addr().unwrap());
            assert_eq!(frame.destination.port(), port);

            side.send(frame.source, b"binding response");
            let mut back = [0u8; 18];
            viewer.read_exact(&mut back).await.unwrap();
            assert_eq!(&back[..2], &16u16.to_be_bytes());
            assert_eq!(&back[2..], b"binding response");
        }));
    }

    /// A STUN message as a TURN server sends it: header, then `len` bytes of attributes.
    fn stun(len: u16, fill: u8) -> Vec<u8> {
        let mut m = vec![0x01, 0x01];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[fill; 12]);
        m.extend(std::iter::repeat_n(fill, usize::from(len)));
        m
    }

    #[test]
    fn turn_messages_are_read_by_their_own_length() {
        smol::block_on(async {
            let channel_data = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0];
            let bytes = [
                &stun(8, 1)[..],
                &channel_data,
                &stun(0, 2),
                &[0x80, 0, 0, 0],
            ]
            .concat();
            let mut reader = smol::io::Cursor::new(bytes);
            assert_eq!(read_turn_message(&mut reader).await.unwrap(), stun(8, 1));
            // ChannelData is padded to 4 bytes on a stream; the padding is read past.
            assert_eq!(read_turn_message(&mut reader).await.unwrap().len(), 12);
            assert_eq!(read_turn_message(&mut reader).await.unwrap(), stun(0, 2));
            let e = read_turn_message(&mut reader).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        });
    }

    /// The first packet for a TURN server opens a connection to it and goes out unframed;
    /// the server's messages come back whole with both addresses, and the loop hears when the
    /// server closes the connection. A packet for an address not to dial goes nowhere.
    #[test]
    fn a_turn_server_is_dialled_and_its_close_reported() {
        let executor = Rc::new(smol::LocalExecutor::new());
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let (side, task) = channels(vec![server_addr]);
        executor.spawn(serve(None, task, executor.clone())).detach();
        smol::block_on(executor.run(async {
            let server = smol::net::TcpListener::try_from(server).unwrap();
            side.send("127.0.0.1:9".parse().unwrap(), b"not dialled");
            side.send(server_addr, &stun(4, 7));
            side.send(server_addr, &stun(0, 8));
            let (mut conn, rtcam) = server.accept().await.unwrap();
            let mut got = vec![0u8; 24 + 20];
            conn.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [stun(4, 7), stun(0, 8)].concat());

            let answer = stun(12, 9);
            conn.write_all(&answer[..7]).await.unwrap();
            conn.flush().await.unwrap();
            smol::Timer::after(Duration::from_millis(20)).await;
            conn.write_all(&answer[7..]).await.unwrap();
            let Ok(TcpEvent::Frame(frame)) = side.events.recv().await else {
                panic!("a frame");
            };
            assert_eq!(frame.contents, answer);
            assert_eq!(frame.source, server_addr);
            assert_eq!(frame.destination, rtcam);

            drop(conn);
            let Ok(TcpEvent::Closed(closed)) = side.events.recv().await else {
                panic!("the close");
            };
            assert_eq!(closed, server_addr);
        }));
    }
}
