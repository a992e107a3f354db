//! WHEP's PATCH (trickle ICE and ICE restarts) against the real server on loopback, as a
//! third-party player would use it: the statuses of every case, a viewer that trickles its
//! candidate, and one that moves to a new address mid-stream and restarts ICE.

mod common;

use std::time::Instant;

use rtcam::client::http::{self, HttpResponse, Url};
use rtcam::client::{ClientEvent, ClientOptions, WhepClient};
use str0m::RtcConfig;
use str0m::media::{Direction, MediaKind};

use common::{WAIT, config, start, whep_url};

const FRAG: &str = "application/trickle-ice-sdpfrag";
const CANDIDATE: &str = "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n";

fn offer_sdp() -> String {
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_h264(true)
        .build(Instant::now());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.apply().expect("an offer").0.to_sdp_string()
}

fn request(url: &Url, method: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    http::request(url, method, headers, body).expect("answered")
}

/// POSTs an offer; returns the resource URL and its ETag.
fn post(server: &rtcam::shell::Server) -> (Url, String) {
    let endpoint = Url::parse(&whep_url(server)).expect("url");
    let sdp = offer_sdp();
    let response = request(
        &endpoint,
        "POST",
        &[("Content-Type", "application/sdp")],
        sdp.as_bytes(),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(response.header("accept-patch"), Some(FRAG));
    let etag = response.header("etag").expect("ETag on the 201").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let location = response.header("location").expect("Location");
    (endpoint.join(location).expect("resource url"), etag)
}

fn decodes_a_picture(viewer: &mut WhepClient) {
    viewer
        .poll_until(
            WAIT,
            |e| matches!(e, ClientEvent::Frame(f) if f.picture.is_some()),
        )
        .expect("a decoded picture");
}

#[test]
fn patch_answers_every_case_with_its_status() {
    let server = start(config());
    let (resource, etag) = post(&server);

    let options = request(&resource, "OPTIONS", &[], &[]);
    assert!(options.header("allow").is_some_and(|a| a.contains("PATCH")));
    assert_eq!(options.header("accept-patch"), Some(FRAG));

    let frag = |if_match: Option<&str>, content_type: &str, body: &str| {
        let mut headers = vec![("Content-Type", content_type)];
        if let Some(tag) = if_match {
            headers.push(("If-Match", tag));
        }
        request(&resource, "PATCH", &headers, body.as_bytes()).status
    };
    assert_eq!(frag(Some(&etag), FRAG, CANDIDATE), 204, "trickle");
    assert_eq!(frag(Some(&etag), "application/sdp", CANDIDATE), 415);
    assert_eq!(frag(None, FRAG, CANDIDATE), 428);
    assert_eq!(frag(Some("\"stale\""), FRAG, CANDIDATE), 412);
    assert_eq!(
        frag(Some(&etag), FRAG, "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\n"),
        400
    );
    let unknown = resource
        .join("/whep/00000000000000000000000000000000")
        .expect("url");
    let status = request(
        &unknown,
        "PATCH",
        &[("Content-Type", FRAG), ("If-Match", "*")],
        CANDIDATE.as_bytes(),
    )
    .status;
    assert_eq!(status, 404);

    // An ICE restart: new credentials with If-Match "*" get ours and a new tag.
    let restart = format!(
        "a=ice-ufrag:Ab12\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\n\
         a=mid:0\r\n{CANDIDATE}"
    );
    let response = request(
        &resource,
        "PATCH",
        &[("Content-Type", FRAG), ("If-Match", "*")],
        restart.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some(FRAG));
    let new_etag = response.header("etag").expect("a new ETag");
    assert_ne!(new_etag, etag);
    let body = response.text();
    assert!(
        body.contains("a=ice-ufrag:") && body.contains("a=ice-pwd:"),
        "{body}"
    );
    assert!(body.contains("a=candidate:"), "{body}");
    // The old tag names the old session now.
    assert_eq!(frag(Some(&etag), FRAG, CANDIDATE), 412);
}

#[test]
fn a_viewer_that_trickles_its_candidate_plays() {
    let server = start(config());
    let mut viewer = WhepClient::connect(
        &whep_url(&server),
        ClientOptions {
            trickle: true,
            ..ClientOptions::default()
        },
    )
    .expect("offer answered and candidate trickled");
    decodes_a_picture(&mut viewer);
}

#[test]
fn an_ice_restart_moves_the_stream_to_a_new_address_without_a_new_post() {
    let server = start(config());
    let mut viewer =
        WhepClient::connect(&whep_url(&server), ClientOptions::default()).expect("offer answered");
    decodes_a_picture(&mut viewer);
    let etag = viewer.etag().map(str::to_owned);

    let restarted = Instant::now();
    viewer.restart_ice().expect("the restart is accepted");
    assert_ne!(viewer.etag().map(str::to_owned), etag);
    // Frames arrive on the new socket: the old one is closed.
    let mut after = 0;
    let mut first = None;
    viewer
        .poll_until(WAIT, |e| {
            if matches!(e, ClientEvent::Frame(f) if f.picture.is_some()) {
                first.get_or_insert_with(|| restarted.elapsed());
                after += 1;
            }
            after >= 30
        })
        .expect("the stream goes on at the new address");
    eprintln!("first picture {first:?} after the restart began");
    // The same session: nothing was posted again.
    let status = http::request(
        &Url::parse(&format!("http://{}/api/status", server.http_addr)).expect("url"),
        "GET",
        &[],
        &[],
    )
    .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&status.body).expect("JSON");
    assert_eq!(status["viewers"], serde_json::json!(1));
}

/// Mainsail's and Fluidd's WHEP player (their "WebRTC (MediaMTX)" webcam) trickles fragments
/// that repeat the current credentials and name every m-line with its mid; that is a trickle,
/// answered 204 (anything else makes them restart the session in a loop).
#[test]
fn a_mainsail_style_fragment_is_a_trickle() {
    let server = start(config());
    let endpoint = Url::parse(&whep_url(&server)).expect("url");
    let offer = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/offers/chromium-mainsail-mediamtx.sdp"
    ))
    .expect("fixture");
    let response = request(
        &endpoint,
        "POST",
        &[("Content-Type", "application/sdp")],
        offer.as_bytes(),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    let etag = response.header("etag").expect("ETag").to_owned();
    let id = response
        .header("location")
        .and_then(|l| l.rsplit('/').next())
        .expect("Location")
        .to_owned();
    let line = |prefix: &str| {
        offer
            .lines()
            .find(|l| l.starts_with(prefix))
            .expect("in the offer")
            .to_owned()
    };
    let frag = format!(
        "{}\r\n{}\r\n{}\r\na=mid:0\r\n{CANDIDATE}{}\r\na=mid:1\r\n{CANDIDATE}",
        line("a=ice-ufrag:"),
        line("a=ice-pwd:"),
        line("m=video"),
        line("m=audio"),
    );
    // The player PATCHes its own URL plus the resource's last path segment.
    let resource = endpoint.join(&format!("/whep/{id}")).expect("url");
    let status = request(
        &resource,
        "PATCH",
        &[("Content-Type", FRAG), ("If-Match", &etag)],
        frag.as_bytes(),
    )
    .status;
    assert_eq!(status, 204);
}
