//! The real server on loopback, driven by the in-repo WHEP client: frames, stamps, the control
//! channel, every signaling error, several viewers, DELETE.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtcam::client::http::{self, HttpResponse, Url};
use rtcam::client::{ClientError, ClientEvent, ClientOptions, WhepClient};
use serde_json::{Value, json};
use str0m::RtcConfig;
use str0m::media::{Direction, MediaKind};

use common::{CONTROL_TOKEN, WAIT, config, start, whep_url};

fn connect(url: &str) -> WhepClient {
    WhepClient::connect(url, ClientOptions::default()).expect("offer accepted")
}

/// Polls until `n` pictures decoded; returns them in arrival order.
fn decoded_frames(client: &mut WhepClient, n: usize) -> Vec<rtcam::client::Picture> {
    let mut pictures = Vec::new();
    client
        .poll_until(WAIT, |e| {
            if let ClientEvent::Frame(f) = e
                && let Some(p) = &f.picture
            {
                pictures.push(p.clone());
            }
            pictures.len() >= n
        })
        .expect("frames arrive");
    pictures
}

fn open_control(client: &mut WhepClient) {
    client
        .poll_until(WAIT, |e| *e == ClientEvent::ControlOpen)
        .expect("control channel opens");
}

fn post(server_url: &str, content_type: &str, body: &[u8]) -> HttpResponse {
    let url = Url::parse(server_url).unwrap();
    http::request(&url, "POST", &[("Content-Type", content_type)], body).unwrap()
}

fn get(server: &rtcam::shell::Server, method: &str, path: &str) -> HttpResponse {
    let url = Url::parse(&format!("http://{}{path}", server.http_addr)).unwrap();
    http::request(&url, method, &[], &[]).unwrap()
}

fn offer_sdp(config: RtcConfig, video: Option<Direction>) -> String {
    let mut rtc = config.build(std::time::Instant::now());
    let mut change = rtc.sdp_api();
    if let Some(dir) = video {
        change.add_media(MediaKind::Video, dir, None, None, None);
    }
    change.add_channel("control".into());
    change.apply().unwrap().0.to_sdp_string()
}

#[test]
fn a_viewer_decodes_stamped_frames_in_order() {
    let server = start(config());
    let mut client = connect(&whep_url(&server));
    let pictures = decoded_frames(&mut client, 60);

    let stamps: Vec<_> = pictures.iter().map(|p| p.stamp).collect();
    assert!(
        stamps.iter().all(Option::is_some),
        "every picture carries a readable stamp"
    );
    let seqs: Vec<u32> = stamps.iter().map(|s| s.unwrap().seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "sequence numbers increase: {seqs:?}"
    );
    assert!(pictures.iter().all(|p| (p.width, p.height) == (320, 240)));

    // The capture time is wall-clock microseconds, so it is close to our own clock.
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let last = stamps.last().unwrap().unwrap().capture_us;
    assert!(
        now_us.abs_diff(last) < 10_000_000,
        "capture time {last} vs now {now_us}"
    );
    assert_eq!(client.decode_errors, 0);
    server.stop().unwrap();
}

#[test]
fn the_first_frame_a_viewer_gets_is_an_idr() {
    let server = start(config());
    let mut client = WhepClient::connect(
        &whep_url(&server),
        ClientOptions {
            decode: false,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let events = client
        .poll_until(WAIT, |e| matches!(e, ClientEvent::Frame(_)))
        .unwrap();
    let Some(ClientEvent::Frame(first)) = events.last() else {
        unreachable!()
    };
    assert!(first.keyframe);
    server.stop().unwrap();
}

#[test]
fn ping_status_and_keyframe_over_the_control_channel() {
    let server = start(config());
    let mut client = connect(&whep_url(&server));
    open_control(&mut client);

    let pong = client.command("ping", json!({"t": 1234.5}), WAIT).unwrap();
    assert_eq!(pong["ok"], json!(true));
    assert_eq!(pong["result"], json!({"t": 1234.5}));

    decoded_frames(&mut client, 5);
    let status = client.command("status", Value::Null, WAIT).unwrap();
    let r = &status["result"];
    assert_eq!(status["ok"], json!(true), "{status}");
    assert_eq!(
        (r["width"].clone(), r["height"].clone()),
        (json!(320), json!(240))
    );
    assert_eq!(r["source"], json!("test"));
    assert_eq!(r["viewers"], json!(1));
    assert!(r["frames_encoded"].as_u64().unwrap() >= 5, "{r}");
    for field in [
        "fps",
        "bitrate_kbps",
        "uptime_s",
        "frames_dropped",
        "max_viewers",
    ] {
        assert!(r.get(field).is_some(), "status has {field}: {r}");
    }

    let keyframe = client.command("keyframe", Value::Null, WAIT).unwrap();
    assert_eq!(keyframe["ok"], json!(true));
    client
        .poll_until(WAIT, |e| matches!(e, ClientEvent::Frame(f) if f.keyframe))
        .expect("an IDR follows the keyframe command");
    server.stop().unwrap();
}

#[test]
fn bad_control_messages_get_errors_and_the_channel_stays_open() {
    let server = start(config());
    let mut client = connect(&whep_url(&server));
    open_control(&mut client);

    client.send_control("this is not json").unwrap();
    let r = client.await_response(None, WAIT).unwrap();
    assert_eq!(r["ok"], json!(false));
    assert_eq!(r["error"]["code"], json!("bad_json"));

    let r = client.command("launch_rockets", Value::Null, WAIT).unwrap();
    assert_eq!(r["error"]["code"], json!("unknown_command"));
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("launch_rockets")
    );

    client.send_control(r#"{"id": 77}"#).unwrap();
    let r = client.await_response(Some(77), WAIT).unwrap();
    assert_eq!(r["error"]["code"], json!("bad_request"));

    let big = format!(
        r#"{{"id": 78, "cmd": "ping", "pad": "{}"}}"#,
        "x".repeat(20_000)
    );
    client.send_control(&big).unwrap();
    let r = client.await_response(None, WAIT).unwrap();
    assert_eq!(r["error"]["code"], json!("too_large"));

    let r = client.command("ping", Value::Null, WAIT).unwrap();
    assert_eq!(r["ok"], json!(true), "the channel still works");
    server.stop().unwrap();
}

#[test]
fn signaling_errors_have_the_documented_statuses() {
    let mut cfg = config();
    cfg.server.max_viewers = 1;
    let server = start(cfg);
    let url = whep_url(&server);
    let good = offer_sdp(
        RtcConfig::new().clear_codecs().enable_h264(true),
        Some(Direction::RecvOnly),
    );

    let r = post(&url, "text/plain", good.as_bytes());
    assert_eq!(r.status, 415);

    let r = post(&url, "application/sdp", b"v=0\r\nthis is not sdp\r\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("SDP"), "{}", r.text());
    assert_eq!(r.text().trim().lines().count(), 1, "one-line reason");

    let vp8 = offer_sdp(
        RtcConfig::new().clear_codecs().enable_vp8(true),
        Some(Direction::RecvOnly),
    );
    let r = post(&url, "application/sdp", vp8.as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.text().contains("H.264"), "{}", r.text());

    let sendonly = offer_sdp(RtcConfig::new(), Some(Direction::SendOnly));
    assert_eq!(
        post(&url, "application/sdp", sendonly.as_bytes()).status,
        400
    );
    let no_video = offer_sdp(RtcConfig::new(), None);
    assert_eq!(
        post(&url, "application/sdp", no_video.as_bytes()).status,
        400
    );

    let huge = vec![b'a'; 70 * 1024];
    assert_eq!(post(&url, "application/sdp", &huge).status, 413);

    let r = get(&server, "PUT", "/whep");
    assert_eq!(r.status, 405);
    assert!(r.header("allow").unwrap().contains("POST"));
    assert_eq!(get(&server, "GET", "/whep").status, 405);
    // PATCH is trickle ICE now (tests/whep_patch.rs): without its content type, 415.
    assert_eq!(
        get(&server, "PATCH", "/whep/0123456789abcdef0123456789abcdef").status,
        415
    );
    assert_eq!(
        get(&server, "DELETE", "/whep/0123456789abcdef0123456789abcdef").status,
        404
    );
    assert_eq!(get(&server, "DELETE", "/whep/not-an-id").status, 404);
    assert_eq!(get(&server, "GET", "/nothing-here").status, 404);

    // The one slot: an offer that has not connected yet gives way to a newer one
    // (tests/admission.rs); a viewer that connected holds it, and the next offer gets 503.
    let first = post(&url, "application/sdp", good.as_bytes());
    assert_eq!(first.status, 201);
    assert_eq!(first.header("content-type"), Some("application/sdp"));
    let location = first.header("location").unwrap().to_string();
    assert!(location.starts_with("/whep/"), "{location}");
    assert!(
        first.text().contains("a=candidate:"),
        "the answer carries host candidates"
    );
    let mut viewer = connect(&url);
    decoded_frames(&mut viewer, 1);
    assert_eq!(
        get(&server, "DELETE", &location).status,
        404,
        "the unconnected viewer was displaced"
    );
    let r = post(&url, "application/sdp", good.as_bytes());
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());

    let location = viewer.resource().expect("resource").path.clone();
    assert_eq!(get(&server, "DELETE", &location).status, 200);
    assert_eq!(get(&server, "DELETE", &location).status, 404);
    assert_eq!(post(&url, "application/sdp", good.as_bytes()).status, 201);
    server.stop().unwrap();
}

/// A malformed offer is told so in a sentence: nothing of the parser's internals (str0m's
/// parse errors name a pointer, `PointerOffset(0x7f…)`), no `Debug` text.
#[test]
fn malformed_offers_get_a_plain_sentence() {
    let server = start(config());
    let url = whep_url(&server);
    let good = offer_sdp(
        RtcConfig::new().clear_codecs().enable_h264(true),
        Some(Direction::RecvOnly),
    );
    let truncated = &good.as_bytes()[..good.len() / 2];
    let cut_mid_line = &good.as_bytes()[..good.find("m=").unwrap() + 5];
    let mut noise = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..512 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let offers: [(&str, &[u8]); 8] = [
        ("empty", b""),
        ("truncated", truncated),
        ("cut in a line", cut_mid_line),
        ("garbage text", b"v=0\r\nthis is not sdp\r\n"),
        ("not SDP at all", b"{\"type\": \"offer\"}"),
        ("control characters", b"v=0\r\n\x00\x01\x02\x1b[31m\r\n"),
        ("binary", &noise),
        ("a version line only", b"v=0\r\n"),
    ];
    for (what, body) in offers {
        let r = post(&url, "application/sdp", body);
        let text = r.text();
        assert_eq!(r.status, 400, "{what}: {text}");
        assert!(
            text.starts_with("malformed SDP offer") || text.starts_with("offer not accepted"),
            "{what}: {text}"
        );
        for bad in ["0x", "PointerOffset", "{", "}", "Some(", "Err("] {
            assert!(!text.contains(bad), "{what}: {bad:?} in {text:?}");
        }
        assert_eq!(text.trim().lines().count(), 1, "{what}: one line: {text:?}");
        assert!(
            text.chars().all(|c| !c.is_control() || c == '\n'),
            "{what}: {text:?}"
        );
    }
    // The server is fine afterwards.
    assert_eq!(post(&url, "application/sdp", good.as_bytes()).status, 201);
    server.stop().unwrap();
}

#[test]
fn two_viewers_at_once_both_get_frames() {
    let server = start(config());
    let url = whep_url(&server);
    let mut a = connect(&url);
    let mut b = connect(&url);
    let pa = decoded_frames(&mut a, 30);
    let pb = decoded_frames(&mut b, 30);
    assert!(pa.iter().chain(&pb).all(|p| p.stamp.is_some()));

    let status: Value = serde_json::from_slice(&get(&server, "GET", "/api/status").body).unwrap();
    assert_eq!(status["viewers"], json!(2));
    assert_eq!(status["viewers_connected"], json!(2));
    server.stop().unwrap();
}

/// The default listen address is `[::]`: one server, viewers on IPv6 and on IPv4. The IPv6
/// viewer's media socket is bound to ::1, so its pictures came over IPv6 host candidates.
#[test]
fn a_dual_stack_server_serves_ipv6_and_ipv4_viewers() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        rtcam::bench::skip("no IPv6 loopback on this machine: dual-stack serving not tested");
        return;
    }
    let mut c = config();
    c.server.listen = rtcam::config::ServerConfig::default().listen;
    c.server.listen.set_port(0);
    let server = start(c);
    assert!(server.http_addr.is_ipv6(), "{}", server.http_addr);
    let port = server.http_addr.port();

    let mut v6 = connect(&format!("http://[::1]:{port}/whep"));
    let mut v4 = connect(&format!("http://127.0.0.1:{port}/whep"));
    assert_eq!(decoded_frames(&mut v6, 10).len(), 10);
    assert_eq!(decoded_frames(&mut v4, 10).len(), 10);

    let status: Value = serde_json::from_slice(&get(&server, "GET", "/api/status").body).unwrap();
    assert_eq!(status["viewers_connected"], json!(2));
    server.stop().unwrap();
}

#[test]
fn delete_frees_the_slot_and_stops_the_stream() {
    let mut cfg = config();
    cfg.server.max_viewers = 1;
    let server = start(cfg);
    let url = whep_url(&server);

    let mut a = connect(&url);
    decoded_frames(&mut a, 5);
    match WhepClient::connect(&url, ClientOptions::default()) {
        Err(ClientError::Refused(503, _)) => {}
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    assert_eq!(a.delete().unwrap(), 200);

    let mut b = connect(&url);
    let first_of_b = decoded_frames(&mut b, 5)[0]
        .stamp
        .as_ref()
        .expect("stamped")
        .seq;

    // `a` is gone. It may still read what was in flight or waiting in its socket buffer (which
    // fills while `b` connects: seconds under qemu), but nothing sent after the DELETE. `b`
    // joined after it, so anything `a` reads now is older than `b`'s first picture.
    let mut late = Vec::new();
    let _ = a.poll_until(Duration::from_secs(2), |e| {
        if let ClientEvent::Frame(f) = e
            && let Some(stamp) = f.picture.as_ref().and_then(|p| p.stamp.as_ref())
        {
            late.push(stamp.seq);
        }
        false
    });
    assert!(
        late.iter().all(|&seq| seq < first_of_b),
        "a deleted viewer got frames sent after the DELETE: {late:?}, b began at {first_of_b}"
    );
    server.stop().unwrap();
}

#[test]
fn status_health_and_page_over_http() {
    let server = start(config());
    let status = get(&server, "GET", "/api/status");
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let v: Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(v["width"], json!(320));
    assert_eq!(v["viewers"], json!(0));

    let mut healthy = false;
    for _ in 0..50 {
        if get(&server, "GET", "/healthz").status == 200 {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(healthy, "/healthz turns 200 once frames flow");

    let page = get(&server, "GET", "/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains("<video"));
    // Its module scripts: a browser runs them only when served as JavaScript.
    let module = get(&server, "GET", "/main.js");
    assert_eq!(module.status, 200);
    assert_eq!(
        module.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(module.header("cache-control"), Some("no-store"));
    assert_eq!(get(&server, "POST", "/style.css").status, 405);
    server.stop().unwrap();
}

#[test]
fn cors_is_off_by_default_and_on_when_asked() {
    let server = start(config());
    let r = get(&server, "OPTIONS", "/whep");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert!(r.header("accept-post").unwrap().contains("application/sdp"));
    server.stop().unwrap();

    let mut cfg = config();
    cfg.server.cors_origin = Some("https://player.example".into());
    let server = start(cfg);
    let r = get(&server, "OPTIONS", "/whep");
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://player.example")
    );
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("Content-Type")
    );
    let r = get(&server, "GET", "/api/status");
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("Location")
    );
    server.stop().unwrap();
}

#[test]
fn a_stalled_http_client_does_not_disturb_viewers() {
    let server = start(config());
    // Half a request, then silence.
    let mut stalled = TcpStream::connect(server.http_addr).unwrap();
    stalled
        .write_all(b"POST /whep HTTP/1.1\r\nContent-Type: application/sdp\r\nContent-Le")
        .unwrap();
    // A garbage request too.
    let mut garbage = TcpStream::connect(server.http_addr).unwrap();
    garbage
        .write_all(b"\x00\x01\x02 nonsense \r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    garbage.set_read_timeout(Some(WAIT)).unwrap();
    let _ = garbage.read_to_end(&mut reply);
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 400"));

    let mut client = connect(&whep_url(&server));
    let pictures = decoded_frames(&mut client, 20);
    assert!(pictures.iter().all(|p| p.stamp.is_some()));
    drop(stalled);
    server.stop().unwrap();
}

/// What `raw_get` read: the status, the `Retry-After` header and the body.
struct Raw {
    status: u16,
    retry_after: Option<u64>,
    body: String,
}

/// `GET path` with a bearer token, from a client socket bound to `from` (a loopback address:
/// the server throttles per address).
fn raw_get(server: &rtcam::shell::Server, from: Ipv4Addr, path: &str, token: &str) -> Raw {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(from.into(), 0).into())
        .unwrap();
    socket.connect(&server.http_addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: rtcam\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").expect("a whole response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().unwrap())
    });
    Raw {
        status,
        retry_after,
        body: body.to_string(),
    }
}

#[test]
fn wrong_tokens_from_one_address_are_slowed_down() {
    let server = start(config());
    let guesser = Ipv4Addr::new(127, 0, 0, 1);
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let wrong = "wrong-token-0123456789abcdef0123";

    let began = Instant::now();
    let guesses: Vec<Raw> = (0..20)
        .map(|_| raw_get(&server, guesser, "/api/status", wrong))
        .collect();
    let took = began.elapsed().as_secs_f64();
    let statuses: Vec<u16> = guesses.iter().map(|r| r.status).collect();
    assert_eq!(statuses[..5], [401; 5], "five are checked: {statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 401 || s == 429),
        "{statuses:?}"
    );
    let throttled = guesses.iter().filter(|r| r.status == 429).count();
    assert!(throttled > 0, "{statuses:?}");
    // After the five, one wrong token is checked per penalty, and the penalties double from
    // 1 s: within `took` seconds at most log2(took + 1) of them.
    let checked_later = statuses[5..].iter().filter(|&&s| s == 401).count();
    assert!(
        checked_later as f64 <= (took + 1.0).log2().floor(),
        "{checked_later} checked in {took} s: {statuses:?}"
    );
    for r in guesses.iter().filter(|r| r.status == 429) {
        let after = r.retry_after.expect("429 says when to try again");
        assert!((1..=60).contains(&after), "Retry-After: {after}");
        assert!(r.body.contains("too many wrong tokens"), "{}", r.body);
        assert!(!r.body.contains(wrong));
    }

    // Another address is not held up.
    assert_eq!(
        raw_get(&server, other, "/api/status", CONTROL_TOKEN).status,
        200
    );

    // The guesser's right token is refused unchecked until its penalty is over, then taken,
    // and then the address starts afresh: a wrong token is checked again.
    let mut right = raw_get(&server, guesser, "/api/status", CONTROL_TOKEN);
    let mut right_refused = 0;
    while right.status == 429 {
        right_refused += 1;
        std::thread::sleep(Duration::from_secs(right.retry_after.unwrap_or(1)));
        right = raw_get(&server, guesser, "/api/status", CONTROL_TOKEN);
    }
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(raw_get(&server, guesser, "/api/status", wrong).status, 401);

    let status: Value =
        serde_json::from_str(&raw_get(&server, other, "/api/status", CONTROL_TOKEN).body).unwrap();
    let failures = statuses.iter().filter(|&&s| s == 401).count() + 1;
    assert_eq!(status["auth_failures"], json!(failures));
    assert_eq!(status["auth_throttled"], json!(throttled + right_refused));
    server.stop().unwrap();
}

/// A burst of snapshot requests: every one gets a whole JPEG of the picture, and the server
/// keeps serving. (That the burst costs one encode is counted in `net::snapshot`'s tests.)
#[test]
fn concurrent_snapshot_requests_all_get_the_picture() {
    let server = start(config());
    let url = Url::parse(&format!("http://{}/snapshot.jpg", server.http_addr)).unwrap();
    // 16: as many connections as one client address may hold at once; more wait their turn
    // with 503 (tests/admission.rs), which is not what this test is about.
    let replies: Vec<HttpResponse> = std::thread::scope(|s| {
        let requests: Vec<_> = (0..16)
            .map(|_| s.spawn(|| http::request(&url, "GET", &[], &[]).unwrap()))
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        let jpeg = &r.body;
        assert_eq!(
            (&jpeg[..2], &jpeg[jpeg.len() - 2..]),
            (&[0xFF, 0xD8][..], &[0xFF, 0xD9][..])
        );
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("SOF0");
        let h = u16::from_be_bytes([jpeg[sof + 5], jpeg[sof + 6]]);
        let w = u16::from_be_bytes([jpeg[sof + 7], jpeg[sof + 8]]);
        assert_eq!((w, h), (320, 240));
    }
    assert_eq!(get(&server, "GET", "/healthz").status, 200);
    server.stop().unwrap();
}
