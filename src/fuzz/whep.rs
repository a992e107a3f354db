//! WHEP: an offer POSTed to `/whep` through the routes (content type, token, UTF-8) and the
//! streamer (viewer limit, str0m's SDP parser, the answer, the H.264 check), then the viewer
//! DELETEd again through its `Location`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::LocalExecutor;
use smol::channel::{Receiver, bounded};
use smol::future::FutureExt;
use str0m::change::SdpAnswer;

use crate::config::IceConfig;
use crate::control::Tokens;
use crate::net::http::{Request, Response};
use crate::net::whep::{LoopRequest, Routes};
use crate::streamer::{
    Call, CallId, ControlConfig, HubConfig, Input, Output, RateLimits, Reply, Running, SourceInfo,
    Streamer, StreamerConfig, ViewerId,
};

const TOKEN: &str = "fuzzing-control-token";

thread_local! {
    /// One streamer for the whole run, as in production, where it outlives every viewer
    /// (and making one costs a DTLS certificate).
    static RIG: RefCell<Option<Rig>> = const { RefCell::new(None) };
}

/// The body of one `POST /whep`.
pub fn whep_offer(body: &[u8]) {
    RIG.with_borrow_mut(|rig| rig.get_or_insert_with(Rig::new).offer(body));
}

struct Rig {
    streamer: Streamer,
    now: Instant,
    next: u64,
}

impl Rig {
    fn new() -> Rig {
        let now = Instant::now();
        let config = StreamerConfig {
            hub: HubConfig {
                candidates: vec![SocketAddr::from(([10, 0, 0, 1], 5000))],
                ..HubConfig::default()
            },
            control: ControlConfig::default(),
            rate: RateLimits::default(),
        };
        let source = SourceInfo {
            kind: "test",
            name: "fuzz".into(),
            width: 640,
            height: 480,
            fps: 30,
        };
        let streamer = Streamer::new(config, Running::new(source, 1000), now)
            .unwrap_or_else(|e| panic!("no streamer: {e}"));
        Rig {
            streamer,
            now,
            next: 1,
        }
    }

    fn offer(&mut self, body: &[u8]) {
        let offered = self.request("POST", "/whep", body);
        if offered.status != 201 {
            return;
        }
        let answer = String::from_utf8_lossy(&offered.body);
        if let Err(e) = SdpAnswer::from_sdp_string(&answer) {
            panic!("our answer does not parse ({e}):\n{answer}");
        }
        let location = offered
            .headers
            .iter()
            .find(|(name, _)| name == "Location")
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("201 without a Location"));
        let deleted = self.request("DELETE", &location, b"");
        assert_eq!(deleted.status, 200, "DELETE {location}");
    }

    /// One request through the routes, with the event loop's side played by `serve`.
    fn request(&mut self, method: &str, target: &str, body: &[u8]) -> Response {
        let (tx, rx) = bounded(1);
        let routes = Routes::new(
            tx,
            None,
            Tokens::new(TOKEN.into(), None, false),
            IceConfig::default(),
            Rc::new(LocalExecutor::new()),
        );
        let request = Request {
            method: method.into(),
            target: target.into(),
            headers: vec![
                ("Content-Type".into(), "application/sdp".into()),
                ("Authorization".into(), format!("Bearer {TOKEN}")),
            ],
            body: body.to_vec(),
            peer: SocketAddr::from(([10, 0, 0, 2], 40000)),
        };
        smol::block_on(routes.handle(request).or(self.serve(rx)))
    }

    /// The event loop's handling of the routes' requests (never returns).
    async fn serve(&mut self, rx: Receiver<LoopRequest>) -> Response {
        while let Ok(request) = rx.recv().await {
            match request {
                LoopRequest::Offer {
                    client,
                    sdp,
                    role,
                    reply,
                } => {
                    // The shell draws viewer ids at random; any unused one will do.
                    let viewer = ViewerId(u128::from(self.next));
                    let call = Call::Offer {
                        viewer,
                        client,
                        sdp,
                        role,
                    };
                    if let Some(Reply::Offer(result)) = self.call(call) {
                        let _ = reply.try_send(result);
                    }
                }
                LoopRequest::Delete { id, reply } => {
                    if let Some(Reply::Deleted(removed)) = self.call(Call::Delete(id)) {
                        let _ = reply.try_send(removed);
                    }
                }
                LoopRequest::AuthFailed => self.streamer.handle_input(self.now, Input::AuthFailed),
                LoopRequest::AuthThrottled => {
                    self.streamer.handle_input(self.now, Input::AuthThrottled)
                }
                // Not asked for by these two routes; dropping the reply answers 503.
                LoopRequest::Snapshot { .. }
                | LoopRequest::Patch { .. }
                | LoopRequest::Status { .. }
                | LoopRequest::Health { .. } => {}
            }
        }
        smol::future::pending().await
    }

    fn call(&mut self, call: Call) -> Option<Reply> {
        self.now += Duration::from_millis(1);
        self.next += 1;
        let id = CallId(self.next);
        self.streamer.handle_input(self.now, Input::Call(id, call));
        let mut reply = None;
        loop {
            match self.streamer.poll_output() {
                Output::Reply(to, r) if to == id => reply = Some(r),
                Output::Timeout(_) => return reply,
                _ => {}
            }
        }
    }
}
