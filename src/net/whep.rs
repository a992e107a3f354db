//! HTTP routes: WHEP signaling (draft-ietf-wish-whep, shaped like WHIP, RFC 9725), the
//! viewer page, status and health.
//!
//! The routes hold no state: each request becomes a `LoopRequest` for the event loop, which
//! owns the streamer, and the reply comes back on a one-shot channel.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use smol::LocalExecutor;
use smol::channel::{Sender, bounded};

use super::http::{Request, Response};
use super::ice_servers::link_headers;
use super::snapshot::{SnapshotError, Snapshots};
use crate::config::IceConfig;
use crate::control::auth::AuthError;
use crate::control::throttle::{Attempt, AuthThrottle, Source, ThrottleConfig};
use crate::control::{Role, Status, Tokens};
use crate::encode::snapshot::Picture;
use crate::hub::sdpfrag::MAX_FRAG_BYTES;
use crate::hub::{OfferError, PatchError, Patched, ViewerId};
use crate::streamer::Answered;

const SDP: &str = "application/sdp";
const JSON: &str = "application/json";
/// What WHEP's PATCH carries (RFC 8840).
const TRICKLE_ICE_SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// What the routes ask of the event loop.
pub(crate) enum LoopRequest {
    Offer {
        client: IpAddr,
        sdp: String,
        role: Role,
        reply: Sender<Result<Answered, OfferError>>,
    },
    /// WHEP PATCH: trickle ICE or an ICE restart.
    Patch {
        id: ViewerId,
        /// Where the request came from (after an ICE restart: the viewer's new network).
        client: IpAddr,
        if_match: Option<String>,
        frag: Vec<u8>,
        reply: Sender<Result<Patched, PatchError>>,
    },
    /// A copy of the next frame, for a snapshot.
    Snapshot {
        reply: Sender<Picture>,
    },
    /// A request came with a missing or wrong token (counted in `status`).
    AuthFailed,
    /// A request was refused unchecked: its address sent too many wrong tokens (counted in
    /// `status`).
    AuthThrottled,
    Delete {
        id: ViewerId,
        reply: Sender<bool>,
    },
    Status {
        reply: Sender<Status>,
    },
    Health {
        reply: Sender<Result<(), String>>,
    },
}

pub(crate) struct Routes {
    loop_tx: Sender<LoopRequest>,
    cors_origin: Option<String>,
    tokens: Tokens,
    ice: IceConfig,
    throttle: RefCell<AuthThrottle>,
    snapshots: Rc<Snapshots>,
}

impl Routes {
    /// `executor`: the one the server runs on, for work shared by several requests.
    pub(crate) fn new(
        loop_tx: Sender<LoopRequest>,
        cors_origin: Option<String>,
        tokens: Tokens,
        ice: IceConfig,
        executor: Rc<LocalExecutor<'static>>,
    ) -> Rc<Routes> {
        Rc::new(Routes {
            snapshots: Snapshots::new(loop_tx.clone(), executor),
            loop_tx,
            cors_origin,
            tokens,
            ice,
            throttle: RefCell::new(AuthThrottle::new(ThrottleConfig::default())),
        })
    }

    /// Adds the ICE servers a viewer should use (see `ice_servers`).
    fn with_ice_servers(&self, mut response: Response) -> Response {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for link in link_headers(&self.ice, unix_now) {
            response = response.header("Link", link);
        }
        response
    }

    pub(crate) async fn handle(self: Rc<Self>, req: Request) -> Response {
        let response = self.route(&req).await;
        self.with_cors(&req, response)
    }

    async fn route(&self, req: &Request) -> Response {
        let method = req.method.as_str();
        let path = req.path();
        // The page and its files. no-store for all of them, not only the HTML: a module cached
        // from an older rtcam next to a newer index.html would break the page after an upgrade,
        // there is no ETag to revalidate cheaply, and the files are small and local.
        if let Some(file) = crate::web::asset(path) {
            return match method {
                "GET" | "HEAD" => Response::new(200)
                    .header("Cache-Control", "no-store")
                    .with_body(file.content_type, file.body),
                _ => not_allowed("GET, HEAD"),
            };
        }
        match path {
            "/healthz" => match method {
                "GET" | "HEAD" => match self.ask(|reply| LoopRequest::Health { reply }).await {
                    Some(Ok(())) => Response::text(200, "ok"),
                    Some(Err(why)) => Response::text(503, &why),
                    None => stopping(),
                },
                _ => not_allowed("GET, HEAD"),
            },
            "/api/status" => match method {
                "GET" | "HEAD" => {
                    if let Err(refused) = self.authorize(req).await {
                        return refused;
                    }
                    match self.ask(|reply| LoopRequest::Status { reply }).await {
                        Some(status) => json(200, &status),
                        None => stopping(),
                    }
                }
                _ => not_allowed("GET, HEAD"),
            },
            "/snapshot.jpg" => match method {
                "GET" | "HEAD" => self.snapshot(req).await,
                _ => not_allowed("GET, HEAD"),
            },
            "/whep" => match method {
                "POST" => self.offer(req).await,
                "OPTIONS" => {
                    let options = Response::new(204)
                        .header("Allow", "OPTIONS, POST")
                        .header("Accept-Post", SDP)
                        .header("Accept-Patch", TRICKLE_ICE_SDPFRAG);
                    // TURN credentials only for those who may watch (a CORS preflight carries
                    // no token, and gets none).
                    if self.tokens.role_for(req.header("authorization")).is_ok() {
                        self.with_ice_servers(options)
                    } else {
                        options
                    }
                }
                _ => not_allowed("OPTIONS, POST"),
            },
            _ => match path.strip_prefix("/whep/") {
                Some(id) => self.resource(req, id).await,
                None => Response::text(404, "not found"),
            },
        }
    }

    async fn offer(&self, req: &Request) -> Response {
        if !is_sdp(req.header("content-type")) {
            return Response::text(
                415,
                "the offer must be sent as Content-Type: application/sdp",
            );
        }
        let role = match self.authorize(req).await {
            Ok(role) => role,
            Err(refused) => return refused,
        };
        let Ok(sdp) = String::from_utf8(req.body.clone()) else {
            return Response::text(400, "malformed SDP offer: not UTF-8 text");
        };
        match self
            .ask(|reply| LoopRequest::Offer {
                client: req.peer.ip(),
                sdp,
                role,
                reply,
            })
            .await
        {
            Some(Ok(answered)) => self.with_ice_servers(
                Response::new(201)
                    .header(
                        "Location",
                        format!("{}/whep/{}", forwarded_prefix(req), answered.viewer),
                    )
                    .header("ETag", answered.etag)
                    .header("Accept-Patch", TRICKLE_ICE_SDPFRAG)
                    .header("Cache-Control", "no-store")
                    .with_body(SDP, answered.sdp),
            ),
            Some(Err(e @ OfferError::Full { .. })) => {
                Response::text(503, &e.to_string()).header("Retry-After", "5")
            }
            Some(Err(e)) => Response::text(400, &e.to_string()),
            None => stopping(),
        }
    }

    async fn resource(&self, req: &Request, id: &str) -> Response {
        let allow = "OPTIONS, PATCH, DELETE";
        match req.method.as_str() {
            "DELETE" => {
                let Ok(id) = id.parse::<ViewerId>() else {
                    return Response::text(404, "no such viewer");
                };
                match self.ask(|reply| LoopRequest::Delete { id, reply }).await {
                    Some(true) => Response::text(200, "viewer removed"),
                    Some(false) => Response::text(404, "no such viewer"),
                    None => stopping(),
                }
            }
            "PATCH" => self.patch(req, id).await,
            "OPTIONS" => Response::new(204)
                .header("Allow", allow)
                .header("Accept-Patch", TRICKLE_ICE_SDPFRAG),
            _ => not_allowed(allow),
        }
    }

    /// Trickle ICE and ICE restarts (see `hub::patch`). Knowing the resource's id is what
    /// allows it, as for DELETE.
    async fn patch(&self, req: &Request, id: &str) -> Response {
        let Ok(id) = id.parse::<ViewerId>() else {
            return Response::text(404, "no such viewer");
        };
        if !has_media_type(req.header("content-type"), TRICKLE_ICE_SDPFRAG) {
            return Response::text(
                415,
                "a PATCH must be sent as Content-Type: application/trickle-ice-sdpfrag",
            )
            .header("Accept-Patch", TRICKLE_ICE_SDPFRAG);
        }
        if req.body.len() > MAX_FRAG_BYTES {
            return Response::text(413, "the SDP fragment is too large");
        }
        let if_match = req.header("if-match").map(str::to_owned);
        let frag = req.body.clone();
        let patched = self
            .ask(|reply| LoopRequest::Patch {
                id,
                client: req.peer.ip(),
                if_match,
                frag,
                reply,
            })
            .await;
        match patched {
            Some(Ok(Patched::Trickled { .. })) => Response::new(204),
            Some(Ok(Patched::Restarted { frag, etag })) => Response::new(200)
                .header("ETag", etag)
                .header("Cache-Control", "no-store")
                .with_body(TRICKLE_ICE_SDPFRAG, frag),
            Some(Err(e)) => {
                let status = match e {
                    PatchError::NoSuchViewer => 404,
                    PatchError::PreconditionRequired => 428,
                    PatchError::PreconditionFailed => 412,
                    PatchError::Frag(_) | PatchError::Rejected(_) => 400,
                };
                Response::text(status, &e.to_string())
            }
            None => stopping(),
        }
    }

    /// The role the request's bearer token grants, or the 401 (429 while its address is
    /// throttled for wrong tokens) to answer with.
    async fn authorize(&self, req: &Request) -> Result<Role, Response> {
        let header = req.header("authorization");
        // Only a request that presents a token can be guessing.
        let source = header.map(|_| Source::of(req.peer.ip()));
        let now = Instant::now();
        if let Some(source) = source {
            let attempt = self.throttle.borrow_mut().attempt(now, source);
            self.write_throttle_log();
            if let Attempt::Refuse { retry_after } = attempt {
                let _ = self.loop_tx.send(LoopRequest::AuthThrottled).await;
                let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                let why = format!("too many wrong tokens from this address; try again in {secs} s");
                return Err(Response::text(429, &why).header("Retry-After", secs.to_string()));
            }
        }
        let refused = match self.tokens.role_for(header) {
            Ok(role) => {
                if let Some(source) = source {
                    self.throttle.borrow_mut().succeeded(now, source);
                    self.write_throttle_log();
                }
                return Ok(role);
            }
            Err(AuthError::Missing) => "a token is needed: Authorization: Bearer <token>",
            Err(AuthError::Invalid) => "the token is not valid",
        };
        // The first wrong token of a burst is logged; the throttle logs the rest in summary.
        let first = source.is_none_or(|s| self.throttle.borrow_mut().failed(now, s));
        // Never the token itself: it may be a real one with a typo.
        let line = format!(
            "refused {} {} from {}: {refused}",
            req.method,
            req.path(),
            req.peer.ip()
        );
        if first {
            log::warn!("{line}");
        } else {
            log::debug!("{line}");
        }
        let _ = self.loop_tx.send(LoopRequest::AuthFailed).await;
        Err(Response::text(401, refused).header("WWW-Authenticate", "Bearer"))
    }

    fn write_throttle_log(&self) {
        while let Some(line) = self.throttle.borrow_mut().poll_log() {
            log::warn!("{line}");
        }
    }

    async fn snapshot(&self, req: &Request) -> Response {
        if let Err(refused) = self.authorize(req).await {
            return refused;
        }
        match self.snapshots.get().await {
            Ok(jpeg) => Response::new(200)
                .header("Cache-Control", "no-store")
                .with_body("image/jpeg", jpeg.to_vec()),
            Err(SnapshotError::NoFrame) => Response::text(503, "no frame to take a snapshot of"),
            Err(SnapshotError::Stopping) => stopping(),
            Err(SnapshotError::Encode(why)) => Response::text(500, &why),
        }
    }

    /// Sends a signal to the event loop and waits for its reply. None when the loop is gone.
    async fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> LoopRequest) -> Option<T> {
        let (tx, rx) = bounded(1);
        self.loop_tx.send(make(tx)).await.ok()?;
        rx.recv().await.ok()
    }

    fn with_cors(&self, req: &Request, response: Response) -> Response {
        let Some(origin) = &self.cors_origin else {
            return response;
        };
        let response = response
            .header("Access-Control-Allow-Origin", origin.as_str())
            .header(
                "Access-Control-Expose-Headers",
                "Location, Content-Type, ETag, Link, Accept-Patch",
            );
        if req.method == "OPTIONS" {
            response
                .header(
                    "Access-Control-Allow-Methods",
                    "GET, POST, PATCH, DELETE, OPTIONS",
                )
                .header(
                    "Access-Control-Allow-Headers",
                    "Content-Type, Authorization, If-Match",
                )
                .header("Access-Control-Max-Age", "600")
        } else {
            response
        }
    }
}

/// The path prefix a reverse proxy serves rtcam under (`X-Forwarded-Prefix: /cam`, as Traefik
/// sets it and nginx can), so `Location` names the resource as the client sees it. Anything that
/// is not a plain path is ignored.
fn forwarded_prefix(req: &Request) -> &str {
    let Some(prefix) = req.header("x-forwarded-prefix") else {
        return "";
    };
    let prefix = prefix.trim().trim_end_matches('/');
    // "//host" would make Location a reference to another host.
    let plain = prefix.starts_with('/')
        && prefix.len() <= 200
        && !prefix.contains("//")
        && !prefix.split('/').any(|segment| segment == "..")
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if plain { prefix } else { "" }
}

fn is_sdp(content_type: Option<&str>) -> bool {
    has_media_type(content_type, SDP)
}

/// Whether `content_type` names `media_type`, whatever its parameters and case.
fn has_media_type(content_type: Option<&str>, media_type: &str) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media_type))
}

fn not_allowed(allow: &str) -> Response {
    Response::text(405, "method not allowed").header("Allow", allow)
}

fn stopping() -> Response {
    Response::text(503, "rtcam is shutting down")
}

fn json(status: u16, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::new(status)
            .header("Cache-Control", "no-store")
            .with_body(JSON, body),
        Err(e) => Response::text(500, &format!("cannot encode status: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_prefix_is_taken_only_when_it_is_a_plain_path() {
        let with = |value: &str| Request {
            method: "POST".into(),
            target: "/whep".into(),
            headers: vec![("X-Forwarded-Prefix".into(), value.into())],
            body: Vec::new(),
            peer: "127.0.0.1:1".parse().expect("address"),
        };
        assert_eq!(forwarded_prefix(&with("/cam")), "/cam");
        assert_eq!(forwarded_prefix(&with("/home/cam-1/")), "/home/cam-1");
        for bad in ["cam", "/a/../b", "/a b", "//evil.example", "/a//b", "/a\"x"] {
            assert_eq!(forwarded_prefix(&with(bad)), "", "{bad}");
        }
    }

    #[test]
    fn sdp_content_type_ignores_parameters_and_case() {
        assert!(is_sdp(Some("application/sdp")));
        assert!(is_sdp(Some("Application/SDP; charset=utf-8")));
        assert!(!is_sdp(Some("text/plain")));
        assert!(!is_sdp(Some("application/sdpx")));
        assert!(!is_sdp(None));
    }
}
