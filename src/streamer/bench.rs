//! Per-packet benchmark (feature `testing`): what the streamer spends to send access units to
//! connected viewers, for instruction counts under callgrind.
//!
//! A streamer with `viewers` real str0m viewers in memory (simulated time, as in the tests)
//! gets `units` access units of `unit_bytes` at 30 fps, and every datagram is carried both
//! ways. Everything the streamer does after the viewers connected runs inside
//! [`sender_turn`], and only there: packetising, SRTP, pacing, the viewers' RTCP and STUN
//! coming back, its timers. The viewers' own work happens outside it, so
//! `valgrind --tool=callgrind --toggle-collect='*sender_turn*'` counts the sender alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::Input as RtcInput;
use str0m::net::{Receive, Transmit};

use super::{
    AccessUnit, Call, CallId, ControlConfig, Encoding, HubConfig, Input, Output, RateLimits, Reply,
    Role, Running, SourceInfo, Streamer, StreamerConfig,
};
use crate::hub::peer::Peer;

const STREAMER_ADDR: &str = "10.0.0.1:5000";
const STEP: Duration = Duration::from_millis(5);
const FRAME: Duration = Duration::from_millis(33);

#[derive(Debug, Clone, PartialEq)]
pub struct PacketBench {
    pub viewers: usize,
    /// Access units handed to the streamer after every viewer connected.
    pub units: u32,
    /// Datagrams the streamer sent meanwhile, and their bytes.
    pub datagrams: u64,
    pub bytes: u64,
    /// Pictures the viewers received, all viewers together.
    pub pictures: u64,
}

/// A datagram on its way to the streamer: source, destination, contents.
type Inbound = (SocketAddr, SocketAddr, Vec<u8>);

/// One turn of the streamer: the datagrams that came in, its timer if due, an access unit if
/// one is ready; its transmits go to `out`. Returns when it wants to be woken next.
///
/// Never inlined: callgrind counts the sender's cost by this function's name.
#[inline(never)]
pub fn sender_turn(
    streamer: &mut Streamer,
    now: Instant,
    timer_due: bool,
    inbound: &[Inbound],
    unit: Option<&AccessUnit>,
    out: &mut Vec<Transmit>,
) -> Instant {
    for (source, destination, contents) in inbound {
        let input = Input::Datagram {
            proto: str0m::net::Protocol::Udp,
            source: *source,
            destination: *destination,
            contents,
        };
        streamer.handle_input(now, input);
    }
    if timer_due {
        streamer.handle_input(now, Input::Timeout);
    }
    if let Some(unit) = unit {
        streamer.handle_input(now, Input::AccessUnit(unit));
    }
    loop {
        match streamer.poll_output() {
            Output::Transmit(t) => out.push(t),
            Output::Timeout(at) => return at,
            // Keyframe requests, replies, readings: not part of the packet path.
            _ => {}
        }
    }
}

struct Rig {
    streamer: Streamer,
    peers: Vec<Peer>,
    now: Instant,
    timeout: Instant,
    datagrams: u64,
    bytes: u64,
    /// Counted only once the viewers are connected.
    counting: bool,
}

impl Rig {
    /// Runs the streamer's turn, carries its transmits to the viewers and theirs back, until
    /// the network is quiet.
    fn pump(&mut self, unit: Option<&AccessUnit>) {
        let mut unit = unit;
        let mut inbound: Vec<Inbound> = Vec::new();
        let mut out = Vec::new();
        let mut timer_due = self.timeout <= self.now;
        for _ in 0..1000 {
            out.clear();
            self.timeout = sender_turn(
                &mut self.streamer,
                self.now,
                timer_due,
                &inbound,
                unit.take(),
                &mut out,
            );
            timer_due = false;
            inbound.clear();
            for t in &out {
                if self.counting {
                    self.datagrams += 1;
                    self.bytes += t.contents.len() as u64;
                }
                if let Some(peer) = self.peers.iter_mut().find(|p| p.addr == t.destination) {
                    let receive = Receive {
                        proto: t.proto,
                        source: t.source,
                        destination: t.destination,
                        contents: (&*t.contents).try_into().expect("a datagram str0m reads"),
                    };
                    peer.rtc
                        .handle_input(RtcInput::Receive(self.now, receive))
                        .expect("the viewer takes the datagram");
                }
            }
            for peer in &mut self.peers {
                peer.drain(&mut inbound);
            }
            if inbound.is_empty() && out.is_empty() {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now = (self.now + STEP).min(end);
            let now = self.now;
            for peer in &mut self.peers {
                if peer.next_timeout <= now {
                    peer.rtc
                        .handle_input(RtcInput::Timeout(now))
                        .expect("the viewer takes its timeout");
                }
            }
            self.pump(None);
        }
    }
}

/// Connects `viewers` viewers, then sends `units` access units of `unit_bytes` (the first an
/// IDR, then P slices) at 30 fps.
pub fn bench_packets(viewers: u8, units: u32, unit_bytes: usize) -> PacketBench {
    let now = Instant::now();
    let config = StreamerConfig {
        hub: HubConfig {
            candidates: vec![STREAMER_ADDR.parse().expect("an address")],
            ..HubConfig::default()
        },
        control: ControlConfig::default(),
        rate: RateLimits::default(),
    };
    let source = SourceInfo {
        kind: "test",
        name: "bench".into(),
        width: 1280,
        height: 720,
        fps: 30,
    };
    let streamer =
        Streamer::new(config, Running::new(source, 1500), now).expect("a streamer to bench");
    let mut rig = Rig {
        streamer,
        peers: Vec::new(),
        now,
        timeout: now,
        datagrams: 0,
        bytes: 0,
        counting: false,
    };
    for n in 1..=viewers {
        let (mut peer, sdp, pending) = Peer::h264(n, rig.now);
        let viewer = peer.id;
        let call = Call::Offer {
            viewer,
            client: peer.addr.ip(),
            sdp,
            role: Role::View,
        };
        rig.streamer
            .handle_input(rig.now, Input::Call(CallId(n.into()), call));
        let answer = loop {
            match rig.streamer.poll_output() {
                Output::Reply(_, Reply::Offer(Ok(answered))) => break answered.sdp,
                Output::Reply(_, reply) => panic!("offer refused: {reply:?}"),
                Output::Timeout(_) => panic!("the offer was not answered"),
                _ => {}
            }
        };
        peer.accept(pending, &answer);
        rig.peers.push(peer);
    }
    for _ in 0..400 {
        if rig.peers.iter().all(|p| p.connected) {
            break;
        }
        rig.advance(STEP);
    }
    assert!(
        rig.peers.iter().all(|p| p.connected),
        "the viewers connected"
    );
    for peer in &mut rig.peers {
        peer.frames.clear();
    }
    rig.counting = true;
    let mut pictures = 0;
    for seq in 0..u64::from(units) {
        let unit = access_unit(seq, seq == 0, unit_bytes, rig.now);
        rig.pump(Some(&unit));
        rig.advance(FRAME);
        for peer in &mut rig.peers {
            pictures += peer.frames.len() as u64;
            peer.frames.clear();
        }
    }
    PacketBench {
        viewers: rig.peers.len(),
        units,
        datagrams: rig.datagrams,
        bytes: rig.bytes,
        pictures,
    }
}

/// An access unit of `bytes` bytes: SPS, PPS and an IDR slice, or one P slice; the payload
/// varies with `seq`.
fn access_unit(seq: u64, keyframe: bool, bytes: usize, now: Instant) -> AccessUnit {
    let mut au = Vec::with_capacity(bytes);
    if keyframe {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x65]);
    } else {
        au.extend_from_slice(&[0, 0, 0, 1, 0x41]);
    }
    // Slice bytes with no start code in them (no two zero bytes in a row).
    let mut x = seq as u32 | 1;
    while au.len() < bytes {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        au.push((x as u8) | 1);
    }
    AccessUnit {
        data: Arc::from(au),
        keyframe,
        encoding: Encoding::Main,
        layer: 0,
        width: 1280,
        height: 720,
        seq,
        captured: now,
        handed: now,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_viewer_gets_every_picture() {
        let b = super::bench_packets(2, 10, 6000);
        assert_eq!(b.viewers, 2);
        assert_eq!(b.pictures, 20, "{b:?}");
        assert!(b.datagrams >= 2 * 10 * 5, "{b:?}");
    }
}
