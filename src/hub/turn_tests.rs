//! The TURN client against a scripted server, in simulated time.

use super::*;
use crate::hub::stunmsg::{ERROR_CODE, MESSAGE_INTEGRITY, XOR_MAPPED_ADDRESS};

const SERVER: &str = "198.51.100.1:3478";
const BASE: &str = "192.168.1.10:8555";
const RELAYED: &str = "198.51.100.1:49152";
const MAPPED: &str = "203.0.113.5:40000";
const PEER: &str = "203.0.113.9:5000";
const UNIX: u64 = 1_700_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn key() -> [u8; 16] {
    md5(b"cam:rtcam.test:pass")
}

fn long_term() -> TurnConfig {
    TurnConfig {
        url: format!("turn:{SERVER}"),
        username: Some("cam".into()),
        credential: Some("pass".into()),
        ..TurnConfig::default()
    }
}

fn client(now: Instant, auth: TurnConfig) -> TurnClient {
    let server = TurnServer {
        addr: addr(SERVER),
        tcp: false,
        auth,
    };
    TurnClient::new(&server, 8555, now, UNIX, 7)
}

/// The same over TCP.
fn tcp_client(now: Instant) -> TurnClient {
    let server = TurnServer {
        addr: addr(SERVER),
        tcp: true,
        auth: long_term(),
    };
    TurnClient::new(&server, 8555, now, UNIX, 7)
}

/// Every datagram the client has to send, checked to go from the media port to the server.
fn sent(c: &mut TurnClient) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    while let Some(t) = c.poll_transmit() {
        assert_eq!(
            (t.source, t.destination),
            (addr("0.0.0.0:8555"), addr(SERVER))
        );
        all.push(t.contents);
    }
    all
}

fn one(c: &mut TurnClient) -> Vec<u8> {
    let mut all = sent(c);
    assert_eq!(all.len(), 1, "one datagram");
    all.remove(0)
}

fn trans(request: &[u8]) -> TransId {
    request[8..20].try_into().expect("a request")
}

fn kind(request: &[u8]) -> u16 {
    u16::from_be_bytes([request[0], request[1]])
}

/// An error answer with `code` (and realm and nonce, as 401 and 438 carry them).
fn error(request: &[u8], code: u16, nonce: Option<&str>) -> Vec<u8> {
    let mut b = Builder::new(kind(request) | ERROR, &trans(request))
        .attr(ERROR_CODE, &[0, 0, (code / 100) as u8, (code % 100) as u8]);
    if let Some(nonce) = nonce {
        b = b.attr(REALM, b"rtcam.test").attr(NONCE, nonce.as_bytes());
    }
    b.finish(None)
}

/// A success answer, as coturn sends it: integrity-protected with `key`.
fn success(request: &[u8], lifetime: Option<u32>, key: &[u8]) -> Vec<u8> {
    let mut b = Builder::new(kind(request) | SUCCESS, &trans(request));
    if kind(request) == ALLOCATE {
        b = b
            .xor_address(XOR_RELAYED_ADDRESS, addr(RELAYED))
            .xor_address(XOR_MAPPED_ADDRESS, addr(MAPPED));
    }
    if let Some(lifetime) = lifetime {
        b = b.attr(LIFETIME, &lifetime.to_be_bytes());
    }
    b.finish(Some(key))
}

fn receive<'a>(c: &mut TurnClient, now: Instant, datagram: &'a [u8]) -> Received<'a> {
    c.handle_receive(now, addr(SERVER), addr(BASE), datagram)
}

/// Runs time in 100 ms steps until `until`, collecting what is sent and when (ms from `from`).
fn run(c: &mut TurnClient, from: Instant, until: Instant) -> Vec<(u128, Vec<u8>)> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= until {
        if c.poll_timeout().is_some_and(|t| t <= now) {
            c.handle_timeout(now);
        }
        for d in sent(c) {
            out.push(((now - from).as_millis(), d));
        }
        now += Duration::from_millis(100);
    }
    out
}

/// Allocates through the 401 challenge; returns the authenticated Allocate.
fn allocate(c: &mut TurnClient, now: Instant) -> Vec<u8> {
    c.handle_timeout(now);
    let first = one(c);
    assert_eq!(
        receive(c, now, &error(&first, 401, Some("n1"))),
        Received::Taken
    );
    let second = one(c);
    assert_eq!(
        receive(c, now, &success(&second, Some(600), &key())),
        Received::Taken
    );
    second
}

#[test]
fn allocates_after_the_401_challenge_with_long_term_credentials() {
    let now = Instant::now();
    let mut c = client(now, long_term());
    assert_eq!(c.poll_timeout(), Some(now));
    c.handle_timeout(now);
    let first = one(&mut c);
    // Allocate, 8 bytes of attributes, the cookie; REQUESTED-TRANSPORT UDP; no credentials.
    assert_eq!(
        &first[..8],
        &[0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42]
    );
    assert_eq!(&first[20..], &[0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0]);

    assert_eq!(
        receive(&mut c, now, &error(&first, 401, Some("n1"))),
        Received::Taken
    );
    let second = one(&mut c);
    let m = Message::parse(&second).expect("a message");
    assert_eq!(m.kind, ALLOCATE);
    assert_ne!(m.trans, trans(&first), "a new transaction");
    assert_eq!(m.attr(REQUESTED_TRANSPORT), Some(&[17, 0, 0, 0][..]));
    assert_eq!(
        (m.text(USERNAME), m.text(REALM), m.text(NONCE)),
        (Some("cam"), Some("rtcam.test"), Some("n1"))
    );
    assert!(m.integrity_ok(&key()), "keyed MD5(cam:rtcam.test:pass)");
    assert_eq!(
        m.attr(MESSAGE_INTEGRITY).map(<[u8]>::len),
        Some(20),
        "integrity last"
    );
    assert_eq!(
        &second[second.len() - 24..second.len() - 20],
        &[0, 8, 0, 20]
    );

    assert_eq!(c.relayed(), None);
    assert_eq!(
        receive(&mut c, now, &success(&second, Some(600), &key())),
        Received::Taken
    );
    assert_eq!(c.relayed(), Some((addr(RELAYED), addr(BASE))));
    assert!(c.take_changed());
    assert!(!c.take_changed());
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(540)));
}

#[test]
fn rest_credentials_are_minted_from_the_secret() {
    let now = Instant::now();
    let rest = TurnConfig {
        url: format!("turn:{SERVER}"),
        secret: Some("north".into()),
        ttl_s: 3600,
        ..TurnConfig::default()
    };
    let mut c = client(now, rest);
    c.handle_timeout(now);
    let first = one(&mut c);
    receive(&mut c, now, &error(&first, 401, Some("n1")));
    let second = one(&mut c);
    let m = Message::parse(&second).expect("a message");
    // The same pair `net::ice_servers` hands viewers (see its test), valid for ttl_s.
    assert_eq!(m.text(USERNAME), Some("1700003600:rtcam"));
    assert!(m.integrity_ok(&md5(
        b"1700003600:rtcam:rtcam.test:vplHgzNGZgXhgUpr7ZMLN7PETyk="
    )));
}

#[test]
fn requests_are_retransmitted_then_retried_later() {
    let start = Instant::now();
    let mut c = client(start, long_term());
    let sends = run(&mut c, start, start + Duration::from_secs(50));
    let ms: Vec<u128> = sends.iter().map(|(ms, _)| *ms).collect();
    // Five sends of one transaction, then nothing for 30 s, then a new one.
    assert_eq!(
        ms,
        vec![0, 500, 1500, 3500, 7500, 45_500, 46_000, 47_000, 49_000]
    );
    assert!(sends[..5].iter().all(|(_, d)| *d == sends[0].1));
    assert_ne!(trans(&sends[5].1), trans(&sends[0].1));
    assert_eq!(c.relayed(), None);
}

#[test]
fn a_stale_nonce_is_followed_three_times_in_a_row() {
    let now = Instant::now();
    let mut c = client(now, long_term());
    allocate(&mut c, now);
    let later = now + Duration::from_secs(540);
    c.handle_timeout(later);
    let mut refresh = one(&mut c);
    for n in 2..5 {
        let nonce = format!("n{n}");
        receive(&mut c, later, &error(&refresh, 438, Some(&nonce)));
        refresh = one(&mut c);
        let m = Message::parse(&refresh).expect("a message");
        assert_eq!((m.kind, m.text(NONCE)), (REFRESH, Some(nonce.as_str())));
        assert!(m.integrity_ok(&key()));
    }
    // A fourth 438 in a row: the refresh failed, and the allocation is made anew.
    receive(&mut c, later, &error(&refresh, 438, Some("n5")));
    assert_eq!(c.relayed(), None);
    assert!(c.take_changed());
    c.handle_timeout(later);
    let again = one(&mut c);
    assert_eq!(kind(&again), ALLOCATE);
}

#[test]
fn the_allocation_is_refreshed_a_minute_before_its_lifetime_ends() {
    let start = Instant::now();
    let mut c = client(start, long_term());
    allocate(&mut c, start);
    let mut refreshes = Vec::new();
    let mut now = start;
    let end = start + Duration::from_secs(1300);
    while now < end {
        let next = c.poll_timeout().expect("a refresh due");
        now = next;
        c.handle_timeout(now);
        let refresh = one(&mut c);
        let m = Message::parse(&refresh).expect("a message");
        assert_eq!(m.kind, REFRESH);
        assert_eq!(m.lifetime(), None, "the server's default");
        assert!(m.integrity_ok(&key()));
        refreshes.push((now - start).as_secs());
        // The server grants 300 s the second time.
        let granted = if refreshes.len() == 2 { 300 } else { 600 };
        receive(&mut c, now, &success(&refresh, Some(granted), &key()));
    }
    assert_eq!(refreshes, vec![540, 1080, 1320]);
    assert_eq!(c.relayed(), Some((addr(RELAYED), addr(BASE))));
}

#[test]
fn an_allocation_that_cannot_be_refreshed_expires_and_is_made_anew() {
    let start = Instant::now();
    let mut c = client(start, long_term());
    allocate(&mut c, start);
    assert!(c.take_changed());
    let from = start + Duration::from_secs(539);
    let sends = run(&mut c, from, start + Duration::from_secs(601));
    // Refreshes while the allocation lasts: one every 15.5 s of retransmits.
    let kinds: Vec<(u128, u16)> = sends.iter().map(|(ms, d)| (*ms, kind(d))).collect();
    let first_allocate = kinds
        .iter()
        .position(|(_, k)| *k == ALLOCATE)
        .expect("allocated anew");
    assert!(kinds[..first_allocate].iter().all(|(_, k)| *k == REFRESH));
    assert_eq!(kinds[0].0, 1000, "the first refresh at 540 s");
    assert_eq!(
        kinds[first_allocate].0, 61_000,
        "the allocate once 600 s passed"
    );
    assert_eq!(c.relayed(), None);
    assert!(c.take_changed());
    // With the credentials the server asked for before: no new challenge needed.
    let m = Message::parse(&sends[first_allocate].1).expect("a message");
    assert!(m.integrity_ok(&key()));
}

#[test]
fn permissions_are_asked_for_then_refreshed_while_used_and_let_lapse_after() {
    let start = Instant::now();
    let mut c = client(start, long_term());
    allocate(&mut c, start);
    assert!(
        !c.wrap(start, addr(BASE), addr(PEER), b"x"),
        "not the relay"
    );
    assert!(c.wrap(start, addr(RELAYED), addr(PEER), b"media"));
    let out = sent(&mut c);
    assert_eq!(out.len(), 2, "a CreatePermission, then the data");
    let permission = Message::parse(&out[0]).expect("a message");
    assert_eq!(permission.kind, CREATE_PERMISSION);
    assert_eq!(
        permission.xor_address(XOR_PEER_ADDRESS),
        Some(addr("203.0.113.9:0"))
    );
    assert!(permission.integrity_ok(&key()));
    let data = Message::parse(&out[1]).expect("a message");
    assert_eq!(data.kind, SEND_INDICATION);
    assert_eq!(data.xor_address(XOR_PEER_ADDRESS), Some(addr(PEER)));
    assert_eq!(data.attr(DATA), Some(&b"media"[..]));
    assert_eq!(out[1].len(), 20 + 12 + 12, "no credentials on indications");

    receive(&mut c, start, &success(&out[0], None, &key()));
    // Another port of the same address needs no permission of its own.
    assert!(c.wrap(start, addr(RELAYED), addr("203.0.113.9:6000"), b"m"));
    assert_eq!(sent(&mut c).len(), 1);

    // Used at 200 s: refreshed at 240 s; unused after, so let lapse at 480 s.
    c.wrap(
        start + Duration::from_secs(200),
        addr(RELAYED),
        addr(PEER),
        b"m",
    );
    sent(&mut c);
    let at_240 = start + Duration::from_secs(240);
    assert_eq!(c.poll_timeout(), Some(at_240));
    c.handle_timeout(at_240);
    let refresh = one(&mut c);
    assert_eq!(kind(&refresh), CREATE_PERMISSION);
    receive(&mut c, at_240, &success(&refresh, None, &key()));
    let at_480 = start + Duration::from_secs(480);
    assert_eq!(c.poll_timeout(), Some(at_480));
    c.handle_timeout(at_480);
    assert!(sent(&mut c).is_empty(), "the peer is gone: no refresh");
    assert_eq!(c.poll_timeout(), Some(start + Duration::from_secs(540)));
}

#[test]
fn data_indications_become_the_peers_datagrams() {
    let now = Instant::now();
    let mut c = client(now, long_term());
    let indication = Builder::new(DATA_INDICATION, &[9; 12])
        .xor_address(XOR_PEER_ADDRESS, addr(PEER))
        .attr(DATA, b"dtls")
        .finish(None);
    assert_eq!(
        receive(&mut c, now, &indication),
        Received::Taken,
        "no allocation"
    );
    allocate(&mut c, now);
    assert_eq!(
        receive(&mut c, now, &indication),
        Received::Data {
            peer: addr(PEER),
            relayed: addr(RELAYED),
            data: b"dtls",
        }
    );
    assert_eq!(
        c.handle_receive(now, addr("198.51.100.2:3478"), addr(BASE), &indication),
        Received::NotMine,
        "another source"
    );
}

#[test]
fn refusals_are_retried_later_and_garbage_never_panics() {
    for code in [403, 486, 508, 400, 401] {
        let now = Instant::now();
        let mut c = client(now, long_term());
        c.handle_timeout(now);
        let first = one(&mut c);
        receive(&mut c, now, &error(&first, 401, Some("n1")));
        let second = one(&mut c);
        receive(&mut c, now, &error(&second, code, Some("n1")));
        assert_eq!(c.relayed(), None, "{code}");
        assert!(sent(&mut c).is_empty(), "{code}");
        assert_eq!(c.poll_timeout(), Some(now + RETRY_AFTER), "{code}");
    }

    let now = Instant::now();
    let mut c = client(now, long_term());
    c.handle_timeout(now);
    let first = one(&mut c);
    receive(&mut c, now, &error(&first, 401, Some("n1")));
    let second = one(&mut c);
    // Forged: keyed with another password. Ignored; the real answer still counts.
    let forged = success(&second, Some(600), &md5(b"cam:rtcam.test:guess"));
    assert_eq!(receive(&mut c, now, &forged), Received::Taken);
    assert_eq!(c.relayed(), None);
    // Every cut and every flipped byte of the real answer: never a panic.
    let real = success(&second, Some(600), &key());
    for cut in 0..real.len() {
        let mut probe = client(now, long_term());
        probe.handle_receive(now, addr(SERVER), addr(BASE), &real[..cut]);
    }
    for i in 0..real.len() {
        let mut flipped = real.clone();
        flipped[i] ^= 0xff;
        receive(&mut c, now, &flipped);
    }
    assert_eq!(receive(&mut c, now, b"\x00\x01garbage"), Received::NotMine);
    // A success without a relayed address is refused like an error.
    let mut d = client(now, long_term());
    d.handle_timeout(now);
    let request = one(&mut d);
    let bare = Builder::new(ALLOCATE | SUCCESS, &trans(&request)).finish(None);
    receive(&mut d, now, &bare);
    assert_eq!(d.relayed(), None);
    assert_eq!(d.poll_timeout(), Some(now + RETRY_AFTER));
    // A 401 without realm and nonce cannot be answered.
    let mut e = client(now, long_term());
    e.handle_timeout(now);
    let request = one(&mut e);
    receive(&mut e, now, &error(&request, 401, None));
    assert!(sent(&mut e).is_empty());
    assert_eq!(e.poll_timeout(), Some(now + RETRY_AFTER));
}

#[test]
fn a_401_on_a_refresh_starts_over_with_a_new_challenge() {
    // REST credentials that expired: the server refuses the allocation's refresh.
    let start = Instant::now();
    let mut c = client(start, long_term());
    allocate(&mut c, start);
    let at = start + Duration::from_secs(540);
    c.handle_timeout(at);
    let refresh = one(&mut c);
    receive(&mut c, at, &error(&refresh, 401, Some("n2")));
    assert_eq!(c.relayed(), None);
    c.handle_timeout(at);
    let again = one(&mut c);
    let m = Message::parse(&again).expect("a message");
    assert_eq!(
        (m.kind, m.text(USERNAME)),
        (ALLOCATE, None),
        "unauthenticated"
    );
}

#[test]
fn a_437_on_allocate_gives_the_old_allocation_back_first() {
    let start = Instant::now();
    let mut c = client(start, long_term());
    c.handle_timeout(start);
    let first = one(&mut c);
    receive(&mut c, start, &error(&first, 401, Some("n1")));
    let mut allocate = one(&mut c);
    // Released (the server then takes a moment to let go): asked again 2 s later. Not
    // releasable (441: REST credentials changed since a crash): 4 s, 8 s... up to 30 s.
    let mut asked_at = Vec::new();
    let mut now = start;
    for released in [true, false, false, false, false] {
        receive(&mut c, now, &error(&allocate, 437, None));
        let release = one(&mut c);
        let m = Message::parse(&release).expect("a message");
        assert_eq!((m.kind, m.lifetime()), (REFRESH, Some(0)));
        assert!(m.integrity_ok(&key()));
        let answer = if released {
            success(&release, Some(0), &key())
        } else {
            error(&release, 441, None)
        };
        receive(&mut c, now, &answer);
        assert!(sent(&mut c).is_empty(), "nothing at once");
        now = c.poll_timeout().expect("asked again");
        asked_at.push((now - start).as_secs());
        c.handle_timeout(now);
        allocate = one(&mut c);
        assert_eq!(kind(&allocate), ALLOCATE);
    }
    assert_eq!(asked_at, vec![2, 6, 14, 30, 60]);
    receive(&mut c, now, &success(&allocate, Some(600), &key()));
    assert_eq!(c.relayed(), Some((addr(RELAYED), addr(BASE))));
}

#[test]
fn closing_gives_the_allocation_back() {
    let now = Instant::now();
    let mut c = client(now, long_term());
    allocate(&mut c, now);
    c.take_changed();
    c.close(now);
    let release = one(&mut c);
    let m = Message::parse(&release).expect("a message");
    assert_eq!((m.kind, m.lifetime()), (REFRESH, Some(0)));
    assert!(m.integrity_ok(&key()));
    assert_eq!(c.relayed(), None);
    assert!(c.take_changed());
    assert_eq!(c.poll_timeout(), None, "nothing more");
    assert!(!c.wrap(now, addr(RELAYED), addr(PEER), b"late"));
}

#[test]
fn over_tcp_requests_are_sent_once_and_given_up_after_39_5_s() {
    let now = Instant::now();
    let mut c = tcp_client(now);
    c.handle_timeout(now);
    assert_eq!(kind(&one(&mut c)), ALLOCATE);
    let sends = run(&mut c, now, now + Duration::from_secs(39));
    assert!(sends.is_empty(), "no retransmits on a stream: {sends:?}");
    // Given up at 39.5 s; asked again 30 s later.
    let sends = run(
        &mut c,
        now + Duration::from_secs(39),
        now + Duration::from_secs(70),
    );
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].0, 30_500);
    assert_eq!(kind(&sends[0].1), ALLOCATE);
}

/// The allocation lives as long as the connection: when it closes, the relayed address is
/// gone at once and a new allocation (through a new challenge: a new connection is a new
/// session) follows a second later. A connection that could not be made waits longer.
#[test]
fn over_tcp_a_closed_connection_ends_the_allocation_and_a_new_one_follows() {
    let now = Instant::now();
    let mut c = tcp_client(now);
    allocate(&mut c, now);
    assert!(c.relayed().is_some());
    assert!(c.take_changed());
    c.permit(now, addr(PEER).ip());
    let _ = sent(&mut c);

    let later = now + Duration::from_secs(100);
    c.connection_closed(later);
    assert_eq!(c.relayed(), None);
    assert!(c.take_changed(), "the candidate goes");
    assert_eq!(c.poll_timeout(), Some(later + Duration::from_secs(1)));
    let sends = run(&mut c, later, later + Duration::from_secs(2));
    assert_eq!(sends.len(), 1);
    assert!(
        Message::parse(&sends[0].1).is_some_and(|m| m.attr(USERNAME).is_none()),
        "the first Allocate on the new connection is unauthenticated"
    );
    // This connection fails before the server answers: the next try waits 30 s.
    let at = later + Duration::from_secs(3);
    c.connection_closed(at);
    assert_eq!(c.poll_timeout(), Some(at + Duration::from_secs(30)));
    // A UDP client has no connection to lose.
    let mut udp = client(now, long_term());
    allocate(&mut udp, now);
    udp.connection_closed(later);
    assert!(udp.relayed().is_some());
}
