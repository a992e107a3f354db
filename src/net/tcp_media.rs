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

/// One frame from a viewer's connection.
pub(crate) struct Frame {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// The event loop's side.
pub(crate) struct LoopSide {
    pub frames: Receiver<Frame>,
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

/// The listener's side: run by `serve` on the event loop's executor.
pub(crate) struct TaskSide {
    frames: Sender<Frame>,
    transmits: Receiver<(SocketAddr, Vec<u8>)>,
}

pub(crate) fn channels() -> (LoopSide, TaskSide) {
    let (frames_tx, frames) = bounded(INBOUND_QUEUE);
    let (transmits, transmits_rx) = bounded(INBOUND_QUEUE);
    (
        LoopSide { frames, transmits },
        TaskSide {
            frames: frames_tx,
            transmits: transmits_rx,
        },
    )
}

/// Connections by the viewer's address, and how many each client holds.
#[derive(Default)]
struct Table {
    writers: HashMap<SocketAddr, Sender<Vec<u8>>>,
    per_client: HashMap<IpAddr, usize>,
}

/// Accepts viewers' connections and carries frames both ways until the listener fails.
pub(crate) async fn serve(
    listener: TcpListener,
    side: TaskSide,
    executor: Rc<smol::LocalExecutor<'static>>,
) {
    let listener = match smol::net::TcpListener::try_from(listener) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("ice-tcp: listener: {e}; ICE-TCP is off");
            return;
        }
    };
    let table = Rc::new(RefCell::new(Table::default()));
    let dispatch = {
        let table = table.clone();
        let transmits = side.transmits.clone();
        async move {
            while let Ok((destination, contents)) = transmits.recv().await {
                let writer = table.borrow().writers.get(&destination).cloned();
                if let Some(writer) = writer {
                    let _ = writer.try_send(contents);
                }
            }
        }
    };
    executor.spawn(dispatch).detach();
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
        let frames = side.frames.clone();
        executor
            .spawn(async move {
                let why = connection(stream, peer, local, frames, queue).await;
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

/// One viewer's connection: frames in to the event loop, queued packets out, until either
/// side ends or a limit is broken. Returns why it ended.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    frames: Sender<Frame>,
    queue: Receiver<Vec<u8>>,
) -> String {
    let _ = stream.set_nodelay(true);
    let mut reader = stream.clone();
    let mut writer = stream;
    let read = async move {
        let mut timeout = FIRST_FRAME_TIMEOUT;
        loop {
            let contents = match read_frame(&mut reader).or(expire(timeout)).await {
                Ok(contents) => contents,
                Err(e) => return e.to_string(),
            };
            timeout = IDLE_TIMEOUT;
            let frame = Frame {
                source: peer,
                destination: local,
                contents,
            };
            if frames.send(frame).await.is_err() {
                return "rtcam is stopping".to_string();
            }
        }
    };
    let write = async move {
        while let Ok(packet) = queue.recv().await {
            if let Err(e) = writer.write_all(&framed(&packet)).await {
                return e.to_string();
            }
        }
        "closed".to_string()
    };
    read.or(write).await
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
        format!("no frame for {} s", after.as_secs()),
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
        let (side, task) = channels();
        executor
            .spawn(serve(listener, task, executor.clone()))
            .detach();
        smol::block_on(executor.run(async {
            let mut viewer = smol::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            viewer.write_all(&framed(b"binding request")).await.unwrap();
            let frame = side.frames.recv().await.unwrap();
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
}
