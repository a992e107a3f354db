//! The shell with its real sockets and threads on loopback: a pipeline restart that takes a
//! while must not stop the event loop.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::pipeline::{SourceOpener, Starter};
use super::{Server, spawn_with};
use crate::client::{ClientEvent, ClientOptions, WhepClient};
use crate::config::Config;
use crate::source::FrameSource;
use crate::source::pattern::{SimulatedCamera, TestPattern};

const CONTROL_TOKEN: &str = "shell-test-control-token-0123456789";
/// Generous: the test machine is shared and slow at times.
const WAIT: Duration = Duration::from_secs(30);
/// How long the slow camera takes to reopen, at least.
const REOPEN: Duration = Duration::from_millis(500);

fn config() -> Config {
    crate::config::loopback_test_config(CONTROL_TOKEN)
}

/// A source that opens at once the first time; every later open (a restart) says so on
/// `began`, then waits for `release` and takes at least `REOPEN`, like a camera that is slow to
/// come back.
fn slow_reopener(began: mpsc::Sender<()>, release: mpsc::Receiver<()>) -> Box<SourceOpener> {
    let opens = Mutex::new(0u32);
    let release = Mutex::new(release);
    Box::new(
        move |config: &Config,
              _camera: &Arc<SimulatedCamera>|
              -> Result<Box<dyn FrameSource>, String> {
            let mut n = opens.lock().map_err(|e| e.to_string())?;
            *n += 1;
            if *n > 1 {
                let started = Instant::now();
                let _ = began.send(());
                let _ = release.lock().map_err(|e| e.to_string())?.recv();
                std::thread::sleep(REOPEN.saturating_sub(started.elapsed()));
            }
            let v = &config.video;
            TestPattern::new(v.size.width, v.size.height, v.fps)
                .map(|p| Box::new(p) as Box<dyn FrameSource>)
                .map_err(|e| e.to_string())
        },
    )
}

fn viewer(server: &Server, token: Option<&str>) -> WhepClient {
    let headers = token
        .map(|t| vec![("Authorization".to_string(), format!("Bearer {t}"))])
        .unwrap_or_default();
    let url = format!("http://{}/whep", server.http_addr);
    let mut client = WhepClient::connect(
        &url,
        ClientOptions {
            headers,
            ..ClientOptions::default()
        },
    )
    .expect("offer accepted");
    client
        .poll_until(WAIT, |e| matches!(e, ClientEvent::ControlOpen))
        .expect("the control channel opens");
    client
}

#[test]
fn the_loop_keeps_serving_viewers_while_a_restart_takes_its_time() {
    crate::shell::logger::init_for_tests();
    let (began_tx, began) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let config = config();
    let starter = Starter::with_opener(&config, slow_reopener(began_tx, release_rx));
    let server = spawn_with(config, None, starter).expect("rtcam starts");

    let mut controller = viewer(&server, Some(CONTROL_TOKEN));
    let mut watcher = viewer(&server, None);
    let claim = controller
        .command("control.claim", json!({}), WAIT)
        .expect("claim answered");
    assert_eq!(claim["ok"], json!(true), "{claim}");

    // Ask for a new size without waiting for the answer: the restart begins on its worker.
    let set = json!({"id": 900, "cmd": "stream.set", "size": "160x120"});
    controller
        .send_control(&set.to_string())
        .expect("stream.set sent");
    // The client sends only while it is polled.
    let deadline = Instant::now() + WAIT;
    while began.try_recv().is_err() {
        assert!(Instant::now() < deadline, "the restart never began");
        controller
            .poll(Duration::from_millis(20))
            .expect("the controller stays connected");
    }

    // The camera is held closed until the watcher has been answered: if the restart blocked
    // the event loop, this answer could never come.
    let pong = watcher
        .command("ping", json!({"t": "during"}), WAIT)
        .expect("a ping answered during the restart");
    assert_eq!(pong["result"], json!({"t": "during"}));
    let status = watcher
        .command("status", json!({}), WAIT)
        .expect("status answered during the restart");
    assert_eq!(status["result"]["viewers"], json!(2));
    release.send(()).expect("the restart is waiting");

    let answer: Value = controller
        .await_response(Some(900), WAIT)
        .expect("stream.set answered once the pipeline is back");
    assert_eq!(answer["ok"], json!(true), "{answer}");
    assert_eq!(answer["result"]["width"], json!(160));

    // The watcher, still on the same connection, now gets pictures at the new size.
    let mut resized = false;
    watcher
        .poll_until(WAIT, |e| {
            resized = matches!(e, ClientEvent::Frame(f)
                if f.picture.as_ref().is_some_and(|p| (p.width, p.height) == (160, 120)));
            resized
        })
        .expect("frames at the new size");
    assert!(resized);
    server.stop().expect("stops cleanly");
}
