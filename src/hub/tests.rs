//! Hub tests: real str0m peers on the offering side, datagrams carried in memory, simulated
//! time. No sockets, no clock.

use std::time::{Duration, Instant};

use str0m::RtcConfig;
use str0m::media::{Direction, MediaKind};

use super::peer::{Peer, encoded};
use super::*;

const HUB_ADDR: &str = "10.0.0.1:5000";
/// Where the tests' lone offers come from.
const CLIENT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));
const STEP: Duration = Duration::from_millis(5);

/// The hub, its peers and a simulated clock.
struct World {
    hub: Hub,
    peers: Vec<Peer>,
    now: Instant,
    keyframes_asked: usize,
    events: Vec<HubEvent>,
    hub_timeout: Instant,
}

impl World {
    fn new(config: HubConfig) -> World {
        let now = Instant::now();
        let config = HubConfig {
            candidates: vec![HUB_ADDR.parse().unwrap()],
            ..config
        };
        World {
            hub: Hub::new(config, now).unwrap(),
            peers: Vec::new(),
            now,
            keyframes_asked: 0,
            events: Vec::new(),
            hub_timeout: now,
        }
    }

    fn join(&mut self, n: u8) -> ViewerId {
        let (mut peer, offer, pending) = Peer::h264(n, self.now);
        let answer = self
            .hub
            .offer(self.now, peer.id, peer.addr.ip(), &offer)
            .unwrap();
        peer.accept(pending, &answer);
        self.peers.push(peer);
        self.pump();
        ViewerId(n as u128)
    }

    fn peer(&mut self, id: ViewerId) -> &mut Peer {
        self.peers.iter_mut().find(|p| p.id == id).unwrap()
    }

    /// Moves datagrams both ways until nobody has anything more to say right now.
    fn pump(&mut self) {
        // What the peers said while being handed datagrams goes to the hub in the next round.
        let mut said = Vec::new();
        for _ in 0..1000 {
            let mut to_hub = std::mem::take(&mut said);
            for peer in &mut self.peers {
                peer.drain(&mut to_hub);
            }
            to_hub.retain(|(src, _, _)| !self.peers.iter().any(|p| p.addr == *src && p.unplugged));
            let mut to_peers = Vec::new();
            for (source, destination, contents) in &to_hub {
                self.hub.handle_input(Input::Receive {
                    proto: str0m::net::Protocol::Udp,
                    now: self.now,
                    source: *source,
                    destination: *destination,
                    contents,
                });
            }
            loop {
                match self.hub.poll_output() {
                    Output::Transmit(t) => to_peers.push(t),
                    Output::KeyframeNeeded(_) => self.keyframes_asked += 1,
                    Output::Event(e) => self.events.push(e),
                    Output::Timeout(t) => {
                        self.hub_timeout = t;
                        break;
                    }
                }
            }
            let delivered = to_peers.len();
            for t in to_peers {
                if let Some(peer) = self
                    .peers
                    .iter_mut()
                    .find(|p| p.addr == t.destination && !p.unplugged)
                {
                    peer.receive(self.now, &t);
                    // A peer takes only so many datagrams before it must be polled.
                    peer.drain(&mut said);
                }
            }
            if to_hub.is_empty() && delivered == 0 && said.is_empty() {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// Advances simulated time, firing every due timeout on the way.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now = (self.now + STEP).min(end);
            let now = self.now;
            if self.hub_timeout <= now {
                self.hub.handle_input(Input::Timeout(now));
            }
            for peer in &mut self.peers {
                peer.tick(now);
            }
            self.pump();
        }
    }

    fn connect_all(&mut self) {
        for _ in 0..400 {
            if self.peers.iter().all(|p| p.connected && p.channel_open) {
                return;
            }
            self.advance(STEP);
        }
        panic!("peers did not connect");
    }

    fn frame(&mut self, seq: u64, keyframe: bool) {
        let frame = encoded(seq, keyframe, self.now);
        self.hub.handle_input(Input::AccessUnit {
            now: self.now,
            unit: &frame,
        });
        self.pump();
        // One frame interval, so str0m's pacing and the peers' depacketizers settle.
        self.advance(Duration::from_millis(33));
    }

    fn left(&self, id: ViewerId) -> Option<LeaveReason> {
        self.events.iter().find_map(|e| match e {
            HubEvent::ViewerLeft { viewer, reason } if *viewer == id => Some(reason.clone()),
            _ => None,
        })
    }
}

/// A hub with default settings and no peers around it.
fn lone_hub(now: Instant) -> Hub {
    let config = HubConfig {
        candidates: vec![HUB_ADDR.parse().unwrap()],
        ..HubConfig::default()
    };
    Hub::new(config, now).unwrap()
}

fn carries_seq(frame: &[u8], seq: u64) -> bool {
    frame.windows(8).any(|w| w == seq.to_be_bytes())
}

#[test]
fn a_viewer_joins_gets_an_idr_first_and_then_every_frame() {
    let mut w = World::new(HubConfig::default());
    let id = w.join(1);
    w.connect_all();
    assert!(w.events.contains(&HubEvent::ViewerConnected(id)));
    assert!(w.events.contains(&HubEvent::ControlOpened(id)));
    assert_eq!(w.keyframes_asked, 1, "joining asks for one IDR");

    // P-frames before the first IDR are held back.
    w.frame(1, false);
    w.frame(2, false);
    assert!(w.peer(id).frames.is_empty());

    w.frame(3, true);
    w.frame(4, false);
    w.frame(5, false);
    let frames = &w.peer(id).frames;
    assert_eq!(frames.len(), 3, "IDR and the two P-frames after it");
    assert!(carries_seq(&frames[0], 3));
    assert!(carries_seq(&frames[2], 5));
    assert_eq!(w.hub.counters().connected, 1);
}

#[test]
fn viewers_joining_together_cause_one_idr() {
    let mut w = World::new(HubConfig::default());
    let ids: Vec<_> = (1..=5).map(|n| w.join(n)).collect();
    w.connect_all();
    assert_eq!(w.keyframes_asked, 1);
    assert_eq!(w.hub.counters().keyframes.coalesced, 4);

    w.frame(1, true);
    w.frame(2, false);
    for id in ids {
        assert_eq!(w.peer(id).frames.len(), 2, "viewer {id}");
    }

    // A later join asks again.
    let late = w.join(9);
    w.connect_all();
    assert_eq!(w.keyframes_asked, 2);
    w.frame(3, false);
    assert!(w.peer(late).frames.is_empty(), "no P-frame before its IDR");
}

#[test]
fn a_viewer_spamming_pli_cannot_make_the_stream_all_idr() {
    let mut w = World::new(HubConfig::default());
    let id = w.join(1);
    w.connect_all();
    w.frame(0, true);
    let before = w.keyframes_asked;

    // 3 s at 30 fps, a PLI with every frame; IDRs are produced when asked.
    let mut idrs = 0;
    let mut asked = w.keyframes_asked;
    for seq in 1..=90 {
        w.peer(id).send_pli();
        w.pump();
        let idr = w.keyframes_asked > asked;
        asked = w.keyframes_asked;
        if idr {
            idrs += 1;
        }
        w.frame(seq, idr);
    }
    let requests = w.keyframes_asked - before;
    assert!((2..=4).contains(&requests), "{requests} IDRs asked in 3 s");
    assert_eq!(idrs, requests);
    assert!(w.hub.counters().keyframes.rate_limited >= 80);
}

#[test]
fn delete_removes_the_viewer_at_once_and_frees_its_slot() {
    let mut w = World::new(HubConfig {
        max_viewers: 1,
        ..HubConfig::default()
    });
    let id = w.join(1);
    w.connect_all();

    let (other, offer, _) = Peer::h264(2, w.now);
    assert_eq!(
        w.hub.offer(w.now, other.id, other.addr.ip(), &offer),
        Err(OfferError::Full { max: 1 })
    );

    assert!(w.hub.remove(w.now, id));
    assert!(!w.hub.remove(w.now, id), "second delete finds nothing");
    w.pump();
    assert!(
        !w.peer(id).rtc.is_alive(),
        "the viewer was told: its session closed at once"
    );
    assert_eq!(w.left(id), Some(LeaveReason::Deleted));
    assert_eq!(w.hub.counters().viewers, 0);

    // Its packets are strays now; nothing is sent to it.
    w.frame(1, true);
    w.advance(Duration::from_secs(5));
    assert!(w.peer(id).frames.is_empty());
    assert!(w.hub.counters().datagrams_unclaimed > 0);

    assert!(
        w.hub
            .offer(w.now, other.id, other.addr.ip(), &offer)
            .is_ok()
    );
}

#[test]
fn a_viewer_that_goes_silent_is_dropped_after_the_silence_timeout() {
    let mut w = World::new(HubConfig::default());
    let gone = w.join(1);
    let stays = w.join(2);
    w.connect_all();
    w.peer(gone).unplugged = true;
    let unplugged_at = w.now;
    for seq in 0..(30 * 60) {
        w.frame(seq, seq % 60 == 0);
        if w.left(gone).is_some() {
            break;
        }
    }
    let took = w.now - unplugged_at;
    // Its last datagram came at most one frame interval before the unplug.
    let silence = HubConfig::default().silence_timeout;
    // Its last datagram (feedback) came a little before the unplug.
    assert!(
        took >= silence - Duration::from_millis(500) && took <= silence + Duration::from_millis(40),
        "dropped after {took:?} (simulated)"
    );
    assert_eq!(w.left(gone), Some(LeaveReason::Silent));
    assert_eq!(w.left(stays), None);
    assert_eq!(w.hub.counters().viewers, 1);
    let before = w.peer(stays).frames.len();
    w.frame(10_000, false);
    assert_eq!(
        w.peer(stays).frames.len(),
        before + 1,
        "the other viewer still gets frames"
    );
}

#[test]
fn a_viewer_with_gaps_shorter_than_the_silence_timeout_stays() {
    let mut w = World::new(HubConfig::default());
    let id = w.join(1);
    w.connect_all();
    // 30 s of a link that is down 3 s out of every 4.
    for second in 0..30u64 {
        w.peer(id).unplugged = second % 4 != 3;
        for n in 0..30 {
            let seq = second * 30 + n;
            w.frame(seq, seq % 60 == 0);
        }
        assert_eq!(w.left(id), None, "dropped in second {second}");
    }
    w.peer(id).unplugged = false;
    let before = w.peer(id).frames.len();
    for seq in 10_000..10_030 {
        w.frame(seq, seq == 10_000);
    }
    let got = w.peer(id).frames.len() - before;
    assert!(got > 0, "it still gets frames");
}

#[test]
fn offers_that_never_connect_cannot_lock_out_a_viewer() {
    let mut w = World::new(HubConfig {
        max_viewers: 16,
        max_pending_per_client: 4,
        ..HubConfig::default()
    });
    // One address posts 40 offers and never does ICE: it holds at most 4 slots, its newest.
    let attacker: std::net::IpAddr = "10.9.0.1".parse().unwrap();
    let mut posted = Vec::new();
    for n in 0..40u8 {
        let (peer, offer, _pending) = Peer::h264(100 + n, w.now);
        w.hub.offer(w.now, peer.id, attacker, &offer).unwrap();
        posted.push(peer.id);
    }
    assert_eq!(w.hub.counters().viewers, 4);
    w.pump();
    assert_eq!(w.left(posted[0]), Some(LeaveReason::Displaced));
    assert_eq!(w.left(posted[39]), None);

    // Four such addresses fill all 16 slots; a real viewer still gets in at once, in place of
    // the oldest of them, and plays.
    for a in 2..=4u8 {
        let address = std::net::IpAddr::from([10, 9, 0, a]);
        for n in 0..4u8 {
            let (peer, offer, _pending) = Peer::h264(150 + a * 4 + n, w.now);
            w.hub.offer(w.now, peer.id, address, &offer).unwrap();
        }
    }
    assert_eq!(w.hub.counters().viewers, 16);
    let viewer = w.join(1);
    assert_eq!(w.hub.counters().viewers, 16);
    w.connect_all();
    w.frame(1, true);
    assert!(!w.peer(viewer).frames.is_empty());
}

#[test]
fn connected_viewers_are_never_displaced_by_offers() {
    let mut w = World::new(HubConfig {
        max_viewers: 2,
        ..HubConfig::default()
    });
    let a = w.join(1);
    let b = w.join(2);
    w.connect_all();
    let (peer, offer, _pending) = Peer::h264(3, w.now);
    assert_eq!(
        w.hub.offer(w.now, peer.id, peer.addr.ip(), &offer),
        Err(OfferError::Full { max: 2 })
    );
    assert_eq!((w.left(a), w.left(b)), (None, None));
}

#[test]
fn a_viewer_that_never_connects_is_dropped_after_the_connect_timeout() {
    let mut w = World::new(HubConfig {
        connect_timeout: Duration::from_secs(5),
        ..HubConfig::default()
    });
    let (peer, offer, _pending) = Peer::h264(1, w.now);
    w.hub.offer(w.now, peer.id, peer.addr.ip(), &offer).unwrap();
    w.advance(Duration::from_secs(4));
    assert_eq!(w.left(peer.id), None);
    w.advance(Duration::from_secs(2));
    assert_eq!(w.left(peer.id), Some(LeaveReason::ConnectTimeout));
    assert_eq!(w.hub.counters().viewers, 0);
}

#[test]
fn control_messages_go_both_ways() {
    let mut w = World::new(HubConfig::default());
    let id = w.join(1);
    w.connect_all();
    w.peer(id).send_control(r#"{"id":1,"cmd":"ping"}"#);
    w.advance(Duration::from_millis(50));
    let got = w.events.iter().find_map(|e| match e {
        HubEvent::ControlMessage { viewer, data } if *viewer == id => Some(data.clone()),
        _ => None,
    });
    assert_eq!(got.as_deref(), Some(&br#"{"id":1,"cmd":"ping"}"#[..]));

    assert!(w.hub.send_control(w.now, id, r#"{"id":1,"ok":true}"#));
    w.advance(Duration::from_millis(50));
    assert_eq!(
        w.peer(id).messages,
        vec![r#"{"id":1,"ok":true}"#.to_string()]
    );
}

#[test]
fn control_messages_beyond_the_send_buffer_all_arrive_in_order() {
    let mut w = World::new(HubConfig::default());
    let id = w.join(1);
    w.connect_all();
    // 5,000 answers of 100 bytes: far more than str0m's 128 KiB send buffer takes at once.
    let sent: Vec<String> = (0..5000)
        .map(|n| format!("{{\"id\":{n:05},\"result\":\"{}\"}}", "x".repeat(76)))
        .collect();
    for text in &sent {
        assert!(w.hub.send_control(w.now, id, text));
    }
    for _ in 0..200 {
        if w.peer(id).messages.len() == sent.len() {
            break;
        }
        w.advance(Duration::from_millis(50));
    }
    assert_eq!(w.peer(id).messages, sent);
}

#[test]
fn a_viewer_that_takes_no_control_messages_loses_its_channel_not_memory() {
    let mut w = World::new(HubConfig::default());
    let id = w.join(1);
    w.connect_all();
    w.peer(id).unplugged = true;
    let text = "y".repeat(1000);
    let mut refused_at = None;
    for n in 0..2000 {
        if !w.hub.send_control(w.now, id, &text) {
            refused_at = Some(n);
            break;
        }
    }
    // 128 KiB in str0m's buffer plus 1 MiB queued.
    let refused_at = refused_at.expect("the queue is bounded");
    assert!(
        (1100..=1200).contains(&refused_at),
        "refused at {refused_at}"
    );
    w.pump();
    assert!(w.events.contains(&HubEvent::ControlClosed(id)));
    assert!(!w.hub.send_control(w.now, id, "after"));
}

#[test]
fn oversized_control_messages_are_not_delivered() {
    let mut w = World::new(HubConfig {
        max_control_message: 100,
        ..HubConfig::default()
    });
    let id = w.join(1);
    w.connect_all();
    w.peer(id).send_control(&"x".repeat(500));
    w.advance(Duration::from_millis(50));
    assert!(w.events.contains(&HubEvent::ControlOversized {
        viewer: id,
        len: 500,
        max: 100
    }));
    assert!(
        !w.events
            .iter()
            .any(|e| matches!(e, HubEvent::ControlMessage { .. }))
    );
}

#[test]
fn bad_offers_are_refused_with_a_reason() {
    let now = Instant::now();
    let mut hub = lone_hub(now);

    for garbage in [
        "",
        "hello",
        "v=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video x\r\n",
    ] {
        let err = hub.offer(now, ViewerId(1), CLIENT, garbage).unwrap_err();
        assert!(
            matches!(err, OfferError::Malformed(_) | OfferError::Rejected(_)),
            "{garbage:?} gave {err:?}"
        );
    }

    let (_, vp8_only, _) = Peer::offer(2, now, RtcConfig::new().clear_codecs().enable_vp8(true));
    assert_eq!(
        hub.offer(now, ViewerId(2), CLIENT, &vp8_only),
        Err(OfferError::NoH264)
    );

    // Data channel only, no video at all.
    let mut rtc = RtcConfig::new().build(now);
    let mut change = rtc.sdp_api();
    change.add_channel("control".into());
    let (offer, _) = change.apply().unwrap();
    assert_eq!(
        hub.offer(now, ViewerId(3), CLIENT, &offer.to_sdp_string()),
        Err(OfferError::NoH264)
    );

    // The viewer offers to send video, not to receive it.
    let mut rtc = RtcConfig::new().build(now);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _) = change.apply().unwrap();
    assert_eq!(
        hub.offer(now, ViewerId(4), CLIENT, &offer.to_sdp_string()),
        Err(OfferError::NoH264)
    );

    assert_eq!(
        hub.counters().viewers,
        0,
        "refused offers leave nothing behind"
    );
}

#[test]
fn garbage_datagrams_are_ignored() {
    let mut w = World::new(HubConfig::default());
    let id = w.join(1);
    w.connect_all();
    let source: SocketAddr = "10.9.9.9:1234".parse().unwrap();
    let destination: SocketAddr = HUB_ADDR.parse().unwrap();
    for len in [0usize, 1, 12, 100, 1500] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        w.hub.handle_input(Input::Receive {
            proto: str0m::net::Protocol::Udp,
            now: w.now,
            source,
            destination,
            contents: &junk,
        });
    }
    // Garbage that claims to come from the connected viewer: must not kill it.
    let from_peer = w.peer(id).addr;
    for first in [0u8, 1, 20, 64, 128, 200] {
        let junk = [
            first, 0xff, 0x00, 0x13, 0x37, 0x42, 0x00, 0x00, 0x00, 0x00, 0x11, 0x22,
        ];
        w.hub.handle_input(Input::Receive {
            proto: str0m::net::Protocol::Udp,
            now: w.now,
            source: from_peer,
            destination,
            contents: &junk,
        });
    }
    w.pump();
    w.frame(1, true);
    assert_eq!(w.peer(id).frames.len(), 1, "the viewer still gets frames");
}

#[test]
fn offers_with_mdns_or_odd_candidates_are_still_answered() {
    // Browsers hide host addresses behind mDNS names; other players send IPv6 or TCP
    // candidates. None of that may make the offer fail: ICE learns the viewer's address from
    // its checks anyway.
    let now = Instant::now();
    let mut hub = lone_hub(now);
    let (_, offer, _) = Peer::h264(1, now);
    let extra = "a=candidate:1 1 udp 2122260223 6b1f2c3d-0e4f-4a5b-8c9d-0123456789ab.local 54321 typ host generation 0\r\n\
                 a=candidate:2 1 tcp 1518280447 192.0.2.9 9 typ host tcptype active\r\n\
                 a=candidate:3 1 udp 2122262783 2001:db8::7 40000 typ host\r\n";
    let munged = offer.replacen("a=mid:", &format!("{extra}a=mid:"), 1);
    assert_ne!(munged, offer);
    assert!(hub.offer(now, ViewerId(1), CLIENT, &munged).is_ok());
}

#[test]
fn an_idle_hub_never_asks_for_a_timeout_in_the_past() {
    // The event loop sleeps until the hub's timeout: one in the past would make it spin.
    let t0 = Instant::now();
    let mut hub = lone_hub(t0);
    for hours in [1, 2, 30] {
        let now = t0 + Duration::from_secs(3600 * hours);
        hub.handle_input(Input::Timeout(now));
        match hub.poll_output() {
            Output::Timeout(at) => assert!(at > now, "after {hours} h idle"),
            other => panic!("unexpected output {other:?}"),
        }
    }
}

#[test]
fn an_ice_restart_by_patch_moves_the_viewer_to_its_new_address() {
    let mut w = World::new(HubConfig::default());
    let (mut peer, offer, pending) = Peer::h264(1, w.now);
    let id = peer.id;
    let answer = w.hub.offer(w.now, id, peer.addr.ip(), &offer).unwrap();
    peer.accept(pending, &answer);
    w.peers.push(peer);
    w.connect_all();
    let etag = w.hub.etag(id).expect("the viewer has a tag");

    // The viewer's network changes: its old address is gone.
    let moved: std::net::SocketAddr = "10.0.7.7:7000".parse().unwrap();
    let (restart_offer, pending) = w.peer(id).restart_ice_at(moved);
    let candidate = format!(
        "candidate:1 1 udp 2130706431 {} {} typ host",
        moved.ip(),
        moved.port()
    );
    let frag = sdpfrag::client_fragment(&restart_offer, &[candidate]);
    let Ok(Patched::Restarted {
        frag: ours,
        etag: new_etag,
    }) = w.hub.patch(w.now, id, CLIENT, Some("*"), frag.as_bytes())
    else {
        panic!("the restart is accepted");
    };
    assert_ne!(new_etag, etag, "a new ICE session, a new tag");
    assert!(ours.contains("a=candidate:"), "{ours}");
    let ours = sdpfrag::SdpFrag::parse(ours.as_bytes()).expect("our fragment parses");
    let restarted = sdpfrag::answer_after_restart(&answer, &ours).expect("credentials");
    // The join's IDR went out (nothing outstanding that a retry would ask for again).
    w.frame(0, true);
    let asked = w.keyframes_asked;
    w.peer(id).accept_restart(pending, &restarted);
    // Once the new path is up the viewer gets an IDR unasked: what was sent while the old path
    // died is lost, and its decoder has nothing to go on.
    for _ in 0..10 {
        w.advance(Duration::from_millis(30));
    }
    assert_eq!(w.keyframes_asked, asked + 1, "an IDR for the restored path");
    // And the rate policy hears that the viewer's link is a new one (its estimate starts over).
    assert!(w.events.contains(&HubEvent::PathRestored(id)));

    let before = w.peer(id).frames.len();
    for seq in 1..61 {
        w.frame(seq, seq == 1);
    }
    assert!(
        w.peer(id).frames.len() > before + 30,
        "frames reach the new address"
    );
    assert_eq!(w.left(id), None);

    // A trickle that names the old session is refused.
    let stale = w.hub.patch(
        w.now,
        id,
        CLIENT,
        Some(&etag),
        b"a=candidate:1 1 udp 1 10.0.9.9 9 typ host\r\n",
    );
    assert_eq!(stale, Err(PatchError::PreconditionFailed));
}

#[test]
fn trickled_candidates_are_taken_unless_unreachable_or_stale() {
    let mut w = World::new(HubConfig::default());
    let (peer, offer, _pending) = Peer::h264(1, w.now);
    w.hub.offer(w.now, peer.id, peer.addr.ip(), &offer).unwrap();
    let etag = w.hub.etag(peer.id).expect("tag");
    let ufrag = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("offer ufrag");
    let frag = format!(
        "a=candidate:9 1 udp 2130706431 10.0.5.5 7000 typ host ufrag {ufrag}\r\n\
         a=candidate:8 1 udp 2130706431 198.51.100.7 7001 typ srflx raddr 10.0.5.5 rport 7000\r\n\
         a=candidate:7 1 udp 2130706431 4b1c1f3e-0b7a-4c2f.local 7002 typ host\r\n\
         a=candidate:6 1 udp 2130706431 10.0.5.6 7003 typ host ufrag oldsession\r\n\
         a=end-of-candidates\r\n"
    );
    assert_eq!(
        w.hub
            .patch(w.now, peer.id, CLIENT, Some(&etag), frag.as_bytes()),
        Ok(Patched::Trickled { taken: 2 }),
        "the host and the server-reflexive candidate; not mDNS, not another session's"
    );
}

#[test]
fn patch_preconditions() {
    let mut w = World::new(HubConfig::default());
    let (peer, offer, _pending) = Peer::h264(1, w.now);
    w.hub.offer(w.now, peer.id, peer.addr.ip(), &offer).unwrap();
    let candidate = b"a=candidate:1 1 udp 1 10.0.9.9 9 typ host\r\n";
    assert_eq!(
        w.hub
            .patch(w.now, ViewerId(99), CLIENT, Some("*"), candidate),
        Err(PatchError::NoSuchViewer)
    );
    assert_eq!(
        w.hub.patch(w.now, peer.id, CLIENT, None, candidate),
        Err(PatchError::PreconditionRequired)
    );
    assert_eq!(
        w.hub
            .patch(w.now, peer.id, CLIENT, Some("\"nope\""), candidate),
        Err(PatchError::PreconditionFailed)
    );
    assert!(matches!(
        w.hub.patch(w.now, peer.id, CLIENT, Some("*"), b"v=0\r\n"),
        Err(PatchError::Frag(_))
    ));
    let etag = w.hub.etag(peer.id).expect("tag");
    assert_eq!(
        w.hub.patch(w.now, peer.id, CLIENT, Some(&etag), candidate),
        Ok(Patched::Trickled { taken: 1 })
    );
}

#[test]
fn answers_offer_the_public_address_stun_found_and_the_configured_one() {
    let now = Instant::now();
    let server: std::net::SocketAddr = "198.51.100.1:3478".parse().unwrap();
    let mut hub = Hub::new(
        HubConfig {
            candidates: vec![HUB_ADDR.parse().unwrap()],
            stun_servers: vec![server],
            public_ip: Some("192.0.2.80".parse().unwrap()),
            ..HubConfig::default()
        },
        now,
    )
    .unwrap();
    hub.handle_input(Input::Timeout(now));
    let request = loop {
        match hub.poll_output() {
            Output::Transmit(t) if t.destination == server => break t,
            Output::Timeout(_) => panic!("no STUN request"),
            _ => {}
        }
    };
    assert!(
        request.source.ip().is_unspecified(),
        "the kernel picks the route's address"
    );
    let mapped: std::net::SocketAddr = "203.0.113.5:40000".parse().unwrap();
    let reply = stun::test_answer(&request.contents, mapped);
    hub.handle_input(Input::Receive {
        proto: str0m::net::Protocol::Udp,
        now,
        source: server,
        destination: HUB_ADDR.parse().unwrap(),
        contents: &reply,
    });
    assert_eq!(
        hub.counters().datagrams_unclaimed,
        0,
        "the STUN answer is taken"
    );

    let (peer, offer, _pending) = Peer::h264(1, now);
    let answer = hub.offer(now, peer.id, CLIENT, &offer).unwrap();
    let srflx: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("a=candidate:") && l.contains("typ srflx"))
        .collect();
    assert!(
        srflx.iter().any(|l| l.contains("203.0.113.5 40000")),
        "{answer}"
    );
    assert!(
        srflx.iter().any(|l| l.contains("192.0.2.80 5000")),
        "{answer}"
    );
    assert!(answer.contains("10.0.0.1 5000 typ host"), "{answer}");
}

/// Where the hub sends datagrams over `for_` of simulated time, with no peer answering.
fn destinations(w: &mut World, for_: Duration) -> Vec<std::net::SocketAddr> {
    let mut seen = Vec::new();
    let end = w.now + for_;
    while w.now < end {
        w.now += STEP;
        w.hub.handle_input(Input::Timeout(w.now));
        loop {
            match w.hub.poll_output() {
                Output::Transmit(t) => seen.push(t.destination),
                Output::Timeout(_) => break,
                _ => {}
            }
        }
    }
    seen
}

#[test]
fn the_hub_checks_a_viewers_candidates_at_once_and_trickled_ones_too() {
    // Behind NATs that filter by address, the viewer's checks get through only after ours
    // went out: the hub must not wait for the viewer to check first.
    let mut w = World::new(HubConfig::default());
    let (peer, offer, _pending) = Peer::h264(1, w.now);
    w.hub.offer(w.now, peer.id, peer.addr.ip(), &offer).unwrap();
    assert!(destinations(&mut w, Duration::from_millis(100)).contains(&peer.addr));

    let etag = w.hub.etag(peer.id).expect("tag");
    let trickled: std::net::SocketAddr = "10.0.5.5:7000".parse().unwrap();
    let frag = "a=candidate:9 1 udp 2130706431 10.0.5.5 7000 typ host\r\n";
    assert_eq!(
        w.hub
            .patch(w.now, peer.id, CLIENT, Some(&etag), frag.as_bytes()),
        Ok(Patched::Trickled { taken: 1 })
    );
    assert!(destinations(&mut w, Duration::from_millis(500)).contains(&trickled));
}

#[test]
fn answers_name_the_host_addresses_the_device_has_now() {
    let mut hub = lone_hub(Instant::now());
    let now = Instant::now();
    let moved: std::net::SocketAddr = "10.0.0.77:5000".parse().unwrap();
    hub.set_host_candidates(vec![moved]);
    let (peer, offer, _pending) = Peer::h264(1, now);
    let answer = hub.offer(now, peer.id, CLIENT, &offer).unwrap();
    assert!(answer.contains("10.0.0.77 5000 typ host"), "{answer}");
    assert!(!answer.contains("10.0.0.1 5000"), "{answer}");
}
