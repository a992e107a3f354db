//! One misbehaving client must not lock out the others: idle connections, offers that never
//! connect, a control-request burst, a viewer that vanishes. The real server in-process on
//! loopback; the misbehaving client comes from 127.0.0.2, the well-behaved one from 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rtcam::client::http::{self, Url};
use rtcam::client::{ClientEvent, ClientOptions, WhepClient};
use serde_json::{Value, json};
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, RtcConfig};

use common::{WAIT, config, start, whep_url};

/// A TCP connection to `server` from `source` (Linux answers on all of 127.0.0.0/8).
fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let source: SocketAddr = format!("{source}:0").parse().expect("source address");
    socket
        .bind(&source.into())
        .expect("bind the source address");
    socket.connect(&server.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// An offer whose only candidate leads nowhere: it is answered and never connects.
fn dead_end_offer() -> String {
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_h264(true)
        .build(Instant::now());
    let nowhere: SocketAddr = "127.0.0.2:9".parse().expect("address");
    rtc.add_local_candidate(Candidate::host(nowhere, "udp").expect("candidate"));
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_channel("control".into());
    change.apply().expect("an offer").0.to_sdp_string()
}

/// POSTs `sdp` from `source`; returns the status.
fn post_from(source: &str, server: SocketAddr, sdp: &str) -> u16 {
    let mut stream = connect_from(source, server);
    let request = format!(
        "POST /whep HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{sdp}",
        sdp.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

/// Connects a viewer from 127.0.0.1 and waits for its first decoded picture.
fn watch(server: &rtcam::shell::Server) -> WhepClient {
    let mut viewer = WhepClient::connect(&whep_url(server), ClientOptions::default())
        .expect("the viewer's offer is answered");
    viewer
        .poll_until(
            WAIT,
            |e| matches!(e, ClientEvent::Frame(f) if f.picture.is_some()),
        )
        .expect("the viewer decodes a picture");
    viewer
}

fn status(server: &rtcam::shell::Server) -> Value {
    let url = Url::parse(&format!("http://{}/api/status", server.http_addr)).expect("url");
    let response = http::request(&url, "GET", &[], &[]).expect("status answered");
    assert_eq!(response.status, 200);
    serde_json::from_slice(&response.body).expect("status JSON")
}

#[test]
fn idle_connections_from_one_address_do_not_lock_out_another() {
    let server = start(config());
    // 300 connections from 127.0.0.2 that never send a request, all held open.
    let hogs: Vec<TcpStream> = (0..300)
        .map(|_| connect_from("127.0.0.2", server.http_addr))
        .collect();

    for _ in 0..8 {
        let url = Url::parse(&format!("http://{}/healthz", server.http_addr)).expect("url");
        let response = http::request(&url, "GET", &[], &[]).expect("healthz answered");
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let mut viewer = watch(&server);
    assert_eq!(viewer.delete().expect("deleted"), 200);
    drop(hogs);
}

#[test]
fn offers_that_never_connect_do_not_lock_out_a_viewer() {
    let mut c = config();
    c.server.max_viewers = 4;
    let server = start(c);
    let sdp = dead_end_offer();
    // 16 offers from one address: each is answered (replacing that address's oldest), and
    // they never hold more than a few slots.
    for n in 0..16 {
        assert_eq!(
            post_from("127.0.0.2", server.http_addr, &sdp),
            201,
            "offer {n}"
        );
    }
    // Another address fills the rest; a real viewer still gets in at once and plays.
    for n in 0..4 {
        assert_eq!(
            post_from("127.0.0.3", server.http_addr, &sdp),
            201,
            "offer {n}"
        );
    }
    let _viewer = watch(&server);
    assert_eq!(status(&server)["viewers"], json!(4));
}

#[test]
fn a_burst_of_control_requests_is_answered_exactly_once_in_order() {
    let server = start(config());
    let mut viewer = WhepClient::connect(&whep_url(&server), ClientOptions::default())
        .expect("the viewer's offer is answered");
    viewer
        .poll_until(WAIT, |e| *e == ClientEvent::ControlOpen)
        .expect("control channel opens");
    const BURST: u64 = 5000;
    let mut answered = Vec::new();
    let collect = |answered: &mut Vec<Value>, event: Option<ClientEvent>| {
        if let Some(ClientEvent::Control(text)) = event
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && v.get("ok").is_some()
        {
            answered.push(v);
        }
    };
    let mut id = 1;
    let deadline = Instant::now() + Duration::from_secs(120);
    while id <= BURST && Instant::now() < deadline {
        // As fast as the client's own send buffer takes them.
        match viewer.send_control(&json!({"id": id, "cmd": "ping"}).to_string()) {
            Ok(()) => id += 1,
            Err(_) => collect(
                &mut answered,
                viewer
                    .poll(Duration::from_millis(5))
                    .expect("connection up"),
            ),
        }
    }
    while answered.len() < BURST as usize && Instant::now() < deadline {
        collect(
            &mut answered,
            viewer
                .poll(Duration::from_millis(100))
                .expect("connection up"),
        );
    }
    let ids: Vec<u64> = answered.iter().filter_map(|v| v["id"].as_u64()).collect();
    let expected: Vec<u64> = (1..=BURST).collect();
    assert!(
        ids == expected,
        "each id once, in order: {} answers to {BURST} requests, the first out of place at {:?}",
        ids.len(),
        ids.iter()
            .zip(&expected)
            .position(|(got, want)| got != want)
    );
    let codes: Vec<&str> = answered
        .iter()
        .filter(|v| v["ok"] == json!(false))
        .filter_map(|v| v["error"]["code"].as_str())
        .collect();
    assert!(
        codes.iter().all(|code| *code == "rate_limited"),
        "the only refusal is rate_limited: {:?}",
        codes.iter().find(|c| **c != "rate_limited")
    );
    assert!(!codes.is_empty(), "a burst this size is rate limited");
    // The burst over, the channel still works.
    let pong = viewer
        .command("ping", Value::Null, WAIT)
        .expect("answered after the burst");
    assert!(pong.get("ok").is_some());
}

#[test]
fn a_viewer_that_vanishes_is_dropped_after_the_silence_timeout() {
    let mut c = config();
    c.server.viewer_timeout_s = 3.0;
    let server = start(c);
    let viewer = watch(&server);
    assert_eq!(status(&server)["viewers"], json!(1));
    // Gone without a word, as a killed process: no DELETE, no DTLS close.
    drop(viewer);
    let vanished = Instant::now();
    let mut dropped_after = None;
    while vanished.elapsed() < WAIT {
        if status(&server)["viewers"] == json!(0) {
            dropped_after = Some(vanished.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dropped_after = dropped_after.expect("the vanished viewer is dropped");
    eprintln!("vanished viewer dropped after {dropped_after:?} (silence timeout 3 s)");
    // Not before its timeout; and well before str0m's own ICE timeout (about 15 s), which is
    // what dropped vanished viewers before. The margin is for a loaded test machine.
    assert!(
        dropped_after >= Duration::from_millis(2500) && dropped_after < Duration::from_secs(12),
        "dropped after {dropped_after:?}"
    );
}
