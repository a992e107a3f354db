//! A viewer on the offering side for the sans-IO tests: a real str0m `Rtc` whose datagrams
//! the test carries in memory, with simulated time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::{Candidate, Event, Output as RtcOutput, Rtc, RtcConfig};

use super::ViewerId;
use crate::encode::{AccessUnit, Encoding};

pub(crate) struct Peer {
    pub(crate) id: ViewerId,
    pub(crate) rtc: Rtc,
    pub(crate) addr: SocketAddr,
    pub(crate) mid: Mid,
    pub(crate) control: ChannelId,
    pub(crate) connected: bool,
    pub(crate) channel_open: bool,
    pub(crate) frames: Vec<Vec<u8>>,
    pub(crate) messages: Vec<String>,
    /// Simulates the peer vanishing: its packets are lost both ways.
    pub(crate) unplugged: bool,
    pub(crate) next_timeout: Instant,
}

impl Peer {
    /// Builds an offering peer; `config` picks what codecs it offers.
    pub(crate) fn offer(n: u8, now: Instant, config: RtcConfig) -> (Peer, String, SdpPendingOffer) {
        let addr: SocketAddr = format!("10.0.0.{}:6000", n + 1).parse().unwrap();
        let mut rtc = config.build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let control = change.add_channel("control".into());
        let (offer, pending) = change.apply().unwrap();
        let peer = Peer {
            id: ViewerId(n as u128),
            rtc,
            addr,
            mid,
            control,
            connected: false,
            channel_open: false,
            frames: Vec::new(),
            messages: Vec::new(),
            unplugged: false,
            next_timeout: now,
        };
        (peer, offer.to_sdp_string(), pending)
    }

    /// Moves to `addr` and restarts ICE from there, as a phone that changed networks: returns
    /// the restart offer (its new credentials; the new address goes in with the answer, see
    /// `accept_restart`).
    pub(crate) fn restart_ice_at(&mut self, addr: SocketAddr) -> (String, SdpPendingOffer) {
        self.addr = addr;
        let mut change = self.rtc.sdp_api();
        change.ice_restart(false);
        let (offer, pending) = change.apply().unwrap();
        (offer.to_sdp_string(), pending)
    }

    /// Applies the answer to a restart and gathers the new address (str0m clears the local
    /// candidates when the restart completes).
    pub(crate) fn accept_restart(&mut self, pending: SdpPendingOffer, answer: &str) {
        self.accept(pending, answer);
        self.rtc
            .add_local_candidate(Candidate::host(self.addr, "udp").unwrap());
    }

    pub(crate) fn h264(n: u8, now: Instant) -> (Peer, String, SdpPendingOffer) {
        Peer::offer(n, now, RtcConfig::new().clear_codecs().enable_h264(true))
    }

    pub(crate) fn accept(&mut self, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Drains the peer; returns datagrams for the hub.
    pub(crate) fn drain(&mut self, out: &mut Vec<(SocketAddr, SocketAddr, Vec<u8>)>) {
        loop {
            match self.rtc.poll_output().unwrap() {
                RtcOutput::Timeout(t) => {
                    self.next_timeout = t;
                    return;
                }
                RtcOutput::Transmit(t) => {
                    out.push((t.source, t.destination, t.contents.to_vec()));
                }
                RtcOutput::Event(e) => match e {
                    Event::Connected => self.connected = true,
                    Event::ChannelOpen(id, _) if id == self.control => self.channel_open = true,
                    Event::ChannelData(d) => {
                        self.messages.push(String::from_utf8(d.data).unwrap());
                    }
                    Event::MediaData(m) => self.frames.push(m.data.to_vec()),
                    _ => {}
                },
            }
        }
    }

    /// Hands this peer a datagram the other side sent it.
    pub(crate) fn receive(&mut self, now: Instant, t: &str0m::net::Transmit) {
        let receive = str0m::net::Receive {
            proto: t.proto,
            source: t.source,
            destination: t.destination,
            contents: (&*t.contents).try_into().unwrap(),
        };
        self.rtc
            .handle_input(str0m::Input::Receive(now, receive))
            .unwrap();
    }

    /// Lets time pass for this peer: its timeout fires if it is due.
    pub(crate) fn tick(&mut self, now: Instant) {
        if self.next_timeout <= now {
            self.rtc.handle_input(str0m::Input::Timeout(now)).unwrap();
        }
    }

    pub(crate) fn send_pli(&mut self) {
        let mut writer = self.rtc.writer(self.mid).unwrap();
        writer
            .request_keyframe(None, KeyframeRequestKind::Pli)
            .unwrap();
    }

    pub(crate) fn send_control(&mut self, text: &str) {
        let mut ch = self.rtc.channel(self.control).unwrap();
        ch.write(false, text.as_bytes()).unwrap();
    }
}

/// A synthetic access unit: SPS, PPS and an IDR slice, or one P slice. The payload bytes
/// carry `seq` so a peer can tell frames apart.
pub(crate) fn encoded(seq: u64, keyframe: bool, now: Instant) -> AccessUnit {
    let mut au = Vec::new();
    if keyframe {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x65]);
    } else {
        au.extend_from_slice(&[0, 0, 0, 1, 0x41]);
    }
    au.extend_from_slice(&seq.to_be_bytes());
    // Big enough to need several packets (FU-A).
    au.extend(std::iter::repeat_n(0x5a, 3000));
    AccessUnit {
        data: Arc::from(au),
        keyframe,
        encoding: Encoding::Main,
        layer: 0,
        width: 64,
        height: 64,
        seq,
        captured: now,
        handed: now,
    }
}
