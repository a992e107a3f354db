//! WHEP's PATCH on a viewer's resource (draft-ietf-wish-whep, as WHIP, RFC 9725 §4.3):
//! trickled candidates, and ICE restarts.
//!
//! The resource's entity tag names its ICE session. A trickle must carry it in `If-Match`
//! (`412` when it is stale: those candidates belong to an earlier session); an ICE restart
//! carries `If-Match: "*"` and new credentials, and gets our new credentials and a new tag.

use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use super::sdpfrag::{FragError, SdpFrag, restart_answer};
use super::{Hub, ViewerId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Patched {
    /// `204`: `taken` candidates added (unreachable or stale ones are skipped).
    Trickled { taken: usize },
    /// `200`: our side of the restarted ICE session, and its entity tag.
    Restarted { frag: String, etag: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchError {
    /// `404`.
    NoSuchViewer,
    /// `428`: no `If-Match`.
    PreconditionRequired,
    /// `412`: the `If-Match` names another ICE session.
    PreconditionFailed,
    /// `400`.
    Frag(FragError),
    /// `400`: str0m would not take the restart.
    Rejected(String),
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::NoSuchViewer => write!(f, "no such viewer"),
            PatchError::PreconditionRequired => {
                write!(
                    f,
                    "If-Match is needed: the ETag of the resource, or \"*\" to restart ICE"
                )
            }
            PatchError::PreconditionFailed => {
                write!(f, "the If-Match does not name the current ICE session")
            }
            PatchError::Frag(e) => write!(f, "{e}"),
            PatchError::Rejected(why) => write!(f, "{why}"),
        }
    }
}

/// How `If-Match` relates to the resource's current tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Precondition {
    Any,
    Current,
    Stale,
}

fn precondition(if_match: &str, etag: &str) -> Precondition {
    let tags = if_match.split(',').map(str::trim);
    let mut any = false;
    for tag in tags {
        if tag == "*" {
            any = true;
        } else if tag.trim_start_matches("W/") == etag {
            return Precondition::Current;
        }
    }
    if any {
        Precondition::Any
    } else {
        Precondition::Stale
    }
}

impl Hub {
    /// The entity tag of a viewer's resource (for the `201` and `200` answers).
    pub(crate) fn etag(&mut self, id: ViewerId) -> Option<String> {
        let index = self.index_of(id)?;
        Some(self.viewers[index].etag())
    }

    /// A WHEP PATCH of viewer `id`'s session from `client` (the HTTP peer's address): trickled
    /// candidates or an ICE restart. After a restart the PATCH comes from the viewer's new
    /// network, so that address may send to rtcam's relays too, as the offer's may.
    pub(crate) fn patch(
        &mut self,
        now: Instant,
        id: ViewerId,
        client: IpAddr,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Result<Patched, PatchError> {
        self.tick(now);
        let index = self.index_of(id).ok_or(PatchError::NoSuchViewer)?;
        let if_match = if_match.ok_or(PatchError::PreconditionRequired)?;
        let frag = SdpFrag::parse(body).map_err(PatchError::Frag)?;
        let etag = self.viewers[index].etag();
        let precondition = precondition(if_match, &etag);
        if precondition == Precondition::Stale {
            return Err(PatchError::PreconditionFailed);
        }
        let restart = frag
            .credentials
            .as_ref()
            .filter(|(ufrag, _)| ufrag != self.viewers[index].remote_ufrag());
        let mut events = std::mem::take(&mut self.events);
        let result = match restart {
            Some((ufrag, pwd)) => {
                let restarted =
                    self.viewers[index].restart_ice(now, ufrag, pwd, &frag.candidates, &mut events);
                restarted
                    .map_err(|e| PatchError::Rejected(e.to_string()))
                    .map(|(ufrag, pwd)| {
                        let candidates: Vec<String> =
                            self.candidates.iter().map(|c| c.to_sdp_string()).collect();
                        let viewer = &mut self.viewers[index];
                        Patched::Restarted {
                            frag: restart_answer(&ufrag, &pwd, viewer.bundle_mid(), &candidates),
                            etag: viewer.etag(),
                        }
                    })
            }
            None => {
                let taken = self.viewers[index].trickle(now, &frag.candidates, &mut events);
                log::debug!(
                    "viewer {id}: {taken} of {} trickled candidates taken",
                    frag.candidates.len()
                );
                Ok(Patched::Trickled { taken })
            }
        };
        self.apply_events(index, now, &mut events);
        self.events = events;
        if result.is_ok() {
            self.permit_on_relays(now, client);
        }
        self.reap(now);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_names_the_session_or_any() {
        assert_eq!(precondition("\"abcd\"", "\"abcd\""), Precondition::Current);
        assert_eq!(
            precondition("W/\"abcd\"", "\"abcd\""),
            Precondition::Current
        );
        assert_eq!(
            precondition("\"x\", \"abcd\"", "\"abcd\""),
            Precondition::Current
        );
        assert_eq!(precondition("*", "\"abcd\""), Precondition::Any);
        assert_eq!(precondition("\"old\"", "\"abcd\""), Precondition::Stale);
        assert_eq!(precondition("", "\"abcd\""), Precondition::Stale);
    }
}
