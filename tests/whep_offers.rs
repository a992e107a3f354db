//! Offers as other WHEP players send them, kept as fixtures (tests/fixtures/offers), answered
//! as they need: video accepted with H.264, audio refused with port 0 (never a failure), the
//! data channel accepted when offered. The fixtures are Chromium's (156) offers in the shapes
//! players use: video only (Mainsail, Fluidd, rtcam's own page), audio and video (go2rtc's and
//! MediaMTX's players), video with a data channel, and audio and video sendrecv; GStreamer
//! 1.22's webrtcbin (max-bundle, its audio m-line bundle-only with port 0, TCP and link-local
//! candidates in the offer); aiortc 1.9 (candidates in the offer, its data channel in the
//! legacy `DTLS/SCTP 5000` form); pion 3.1 (go2rtc's and MediaMTX's stack: audio and video
//! recvonly, candidates for RTP and RTCP components). Each was made by the stack itself, not
//! written by hand.

mod common;

use rtcam::client::http::{self, Url};

use common::{config, start, whep_url};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/offers");

/// The media kind and port of each m-line, in order.
fn m_lines(sdp: &str) -> Vec<(String, u16)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("m="))
        .map(|l| {
            let mut fields = l.split_whitespace();
            let kind = fields.next().unwrap_or_default().to_owned();
            let port = fields
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(u16::MAX);
            (kind, port)
        })
        .collect()
}

#[test]
fn offers_of_other_players_are_answered_as_they_need() {
    let server = start(config());
    let endpoint = Url::parse(&whep_url(&server)).expect("url");
    let mut files: Vec<_> = std::fs::read_dir(FIXTURES)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sdp"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "fixtures missing: {files:?}");
    for file in files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let offer = std::fs::read_to_string(&file).expect("fixture readable");
        let response = http::request(
            &endpoint,
            "POST",
            &[("Content-Type", "application/sdp")],
            offer.as_bytes(),
        )
        .expect("answered");
        assert_eq!(response.status, 201, "{name}: {}", response.text());
        let answer = response.text();
        let offered = m_lines(&offer);
        let answered = m_lines(&answer);
        assert_eq!(
            offered.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            answered.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            "{name}: one answer m-line per offered one, in order"
        );
        for (kind, port) in &answered {
            match kind.as_str() {
                "audio" => assert_eq!(*port, 0, "{name}: audio is refused with port 0"),
                "video" | "application" => assert_ne!(*port, 0, "{name}: {kind} accepted"),
                other => panic!("{name}: unexpected m-line {other}"),
            }
        }
        assert!(answer.contains("H264/90000"), "{name}: H.264 in the answer");
        assert!(
            answer.contains("a=sendonly"),
            "{name}: the video is sent, never received"
        );
        // Leave the slot for the next fixture.
        let location = response.header("location").expect("Location").to_owned();
        let resource = endpoint.join(&location).expect("resource");
        assert_eq!(
            http::request(&resource, "DELETE", &[], &[])
                .expect("deleted")
                .status,
            200
        );
    }
}
