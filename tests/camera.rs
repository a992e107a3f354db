//! Cameras without a camera: a configured device that is not there yet. rtcam starts anyway,
//! viewers connect and see the "no signal" placeholder, and status says it is retrying. (The
//! real V4L2 path is checked against the kernel's vivid driver by tests/vm/run.sh.)

mod common;

use std::time::Duration;

use rtcam::client::camera_check::report;
use rtcam::client::http::{self, Url};
use rtcam::client::{ClientEvent, ClientOptions, WhepClient};
use rtcam::config::SourceSpec;
use serde_json::Value;

use common::{WAIT, config, start, whep_url};

#[test]
fn a_missing_camera_streams_the_no_signal_picture_and_is_retried() {
    let mut c = config();
    c.video.source = SourceSpec::Device("/dev/rtcam-test-no-such-camera".into());
    c.video.size = "320x240".parse().unwrap();
    let server = start(c);
    let mut viewer = WhepClient::connect(&whep_url(&server), ClientOptions::default())
        .expect("offer accepted while the camera is missing");
    let mut pictures = Vec::new();
    let events = viewer
        .poll_until(WAIT, |e| {
            if let ClientEvent::Frame(f) = e {
                pictures.extend(f.picture.clone());
            }
            pictures.len() >= 6
        })
        .expect("frames arrive");
    assert!(
        !events.contains(&ClientEvent::Disconnected),
        "the viewer stays connected"
    );
    assert_eq!(report(&pictures).is_placeholder(6), Ok(()));

    let url = Url::parse(&format!("http://{}/api/status", server.http_addr)).unwrap();
    let response = http::request(&url, "GET", &[], &[]).expect("status answers");
    let status: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(status["source"], "v4l2");
    assert_eq!(status["camera_state"], "retrying");
    assert_eq!(
        (status["width"].as_u64(), status["height"].as_u64()),
        (Some(320), Some(240))
    );
    let health = http::request(
        &Url::parse(&format!("http://{}/healthz", server.http_addr)).unwrap(),
        "GET",
        &[],
        &[],
    )
    .expect("healthz answers");
    assert_eq!(
        health.status, 200,
        "placeholder frames keep the stream healthy"
    );
    server.stop().expect("stops cleanly");
    std::thread::sleep(Duration::from_millis(10));
}
