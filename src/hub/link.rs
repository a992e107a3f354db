//! What the hub knows of one viewer's link: the bandwidth estimate its WebRTC session keeps,
//! what it is sent (which encoding, up to which temporal layer), and its counters.
//!
//! Changes of what a viewer is sent never break its picture: a viewer moves to another
//! encoding at that encoding's next IDR (it keeps the old one until then), gets fewer temporal
//! layers at once (the dropped ones are referenced by none it keeps), and more only from the
//! next layer-0 unit (the higher layers reference the layer-0 unit before them).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::encode::{AccessUnit, Encoding};

/// What `status` shows of a viewer's link.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LinkReport {
    /// The viewer's label in control events (never its WHEP resource id).
    pub label: String,
    pub connected: bool,
    /// The bandwidth estimate for the link to the viewer (kbit/s), from transport-wide
    /// congestion control or REMB; None until the first one.
    pub estimate_kbps: Option<u64>,
    pub encoding: Option<Encoding>,
    /// Frames per second of the encoding it gets: all of them, a half or a quarter.
    pub layers: u8,
    /// Video sent to it over the last seconds (kbit/s), retransmissions included.
    pub sent_kbps: f64,
    pub nacks: u64,
    pub plis: u64,
    pub rtt_ms: Option<f64>,
    /// Fraction of packets it reported lost, 0 to 1.
    pub loss: Option<f32>,
}

pub(crate) struct Link {
    pub(crate) encoding: Encoding,
    switching_to: Option<Encoding>,
    pub(crate) max_layer: u8,
    raise_to: Option<u8>,
    /// No picture of its encoding has gone out yet: the next one must be an IDR.
    pub(crate) awaiting_keyframe: bool,
    pub(crate) estimate_bps: Option<u64>,
    /// Egress counters from str0m's stats (running totals) and when they were read.
    bytes: u64,
    bytes_at: Option<(Instant, u64)>,
    sent_kbps: f64,
    nacks: u64,
    plis: u64,
    firs: u64,
    rtt: Option<Duration>,
    loss: Option<f32>,
}

impl Link {
    pub(crate) fn new(encoding: Encoding, max_layer: u8) -> Link {
        Link {
            encoding,
            switching_to: None,
            max_layer,
            raise_to: None,
            awaiting_keyframe: true,
            estimate_bps: None,
            bytes: 0,
            bytes_at: None,
            sent_kbps: 0.0,
            nacks: 0,
            plis: 0,
            firs: 0,
            rtt: None,
            loss: None,
        }
    }

    /// Whether `unit` goes to this viewer; takes the switch or the raise it waited for.
    pub(crate) fn takes(&mut self, unit: &AccessUnit) -> bool {
        if self.switching_to == Some(unit.encoding) && unit.keyframe {
            self.encoding = unit.encoding;
            self.switching_to = None;
            self.awaiting_keyframe = false;
        }
        if unit.encoding != self.encoding {
            return false;
        }
        if self.awaiting_keyframe {
            if !unit.keyframe {
                return false;
            }
            self.awaiting_keyframe = false;
        }
        if unit.layer == 0
            && let Some(layer) = self.raise_to.take()
        {
            self.max_layer = layer;
        }
        unit.layer <= self.max_layer
    }

    /// From now on: `encoding`, up to `max_layer`. Returns the encoding whose IDR it now waits
    /// for, if it has to move.
    pub(crate) fn subscribe(&mut self, encoding: Encoding, max_layer: u8) -> Option<Encoding> {
        self.switching_to = (encoding != self.encoding).then_some(encoding);
        if max_layer <= self.max_layer {
            self.max_layer = max_layer;
            self.raise_to = None;
        } else {
            self.raise_to = Some(max_layer);
        }
        self.switching_to
    }

    /// The encoding it needs an IDR of before it can go on, if any.
    pub(crate) fn waits_for(&self) -> Option<Encoding> {
        match self.switching_to {
            Some(target) => Some(target),
            None => self.awaiting_keyframe.then_some(self.encoding),
        }
    }

    /// The encoding whose IDRs it asks for (PLI, FIR): the one it is moving to, if moving.
    pub(crate) fn keyframe_encoding(&self) -> Encoding {
        self.switching_to.unwrap_or(self.encoding)
    }

    /// str0m's egress stats for the viewer's video (running totals).
    pub(crate) fn egress(&mut self, now: Instant, stats: &str0m::stats::MediaEgressStats) {
        if let Some((at, bytes)) = self.bytes_at {
            let secs = now.saturating_duration_since(at).as_secs_f64();
            if secs > 0.0 {
                self.sent_kbps = stats.bytes.saturating_sub(bytes) as f64 * 8.0 / 1000.0 / secs;
            }
        }
        self.bytes_at = Some((now, stats.bytes));
        self.bytes = stats.bytes;
        self.nacks = stats.nacks;
        self.plis = stats.plis;
        self.firs = stats.firs;
        self.rtt = stats.rtt.or(self.rtt);
        self.loss = stats.loss.or(self.loss);
    }

    pub(crate) fn report(&self, label: String, connected: bool) -> LinkReport {
        LinkReport {
            label,
            connected,
            estimate_kbps: self.estimate_bps.map(|b| b / 1000),
            encoding: connected.then_some(self.encoding),
            layers: self.max_layer.saturating_add(1),
            sent_kbps: (self.sent_kbps * 10.0).round() / 10.0,
            nacks: self.nacks,
            plis: self.plis + self.firs,
            rtt_ms: self
                .rtt
                .map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0),
            loss: self.loss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn unit(encoding: Encoding, layer: u8, keyframe: bool) -> AccessUnit {
        let now = Instant::now();
        AccessUnit {
            data: Arc::from(&[0u8, 0, 0, 1, 0x65][..]),
            keyframe,
            encoding,
            layer,
            width: 64,
            height: 64,
            seq: 0,
            captured: now,
            handed: now,
        }
    }

    #[test]
    fn a_move_to_another_encoding_happens_at_its_idr() {
        let mut link = Link::new(Encoding::Main, 2);
        assert!(!link.takes(&unit(Encoding::Main, 2, false)), "IDR first");
        assert!(link.takes(&unit(Encoding::Main, 0, true)));
        assert_eq!(link.subscribe(Encoding::Low, 2), Some(Encoding::Low));
        assert_eq!(link.waits_for(), Some(Encoding::Low));
        // Still on main until low's IDR.
        assert!(link.takes(&unit(Encoding::Main, 1, false)));
        assert!(!link.takes(&unit(Encoding::Low, 1, false)));
        assert!(link.takes(&unit(Encoding::Low, 0, true)));
        assert!(!link.takes(&unit(Encoding::Main, 0, false)));
        assert_eq!(link.waits_for(), None);
    }

    #[test]
    fn fewer_layers_at_once_more_only_from_the_next_base_frame() {
        let mut link = Link::new(Encoding::Main, 2);
        assert!(link.takes(&unit(Encoding::Main, 0, true)));
        link.subscribe(Encoding::Main, 0);
        assert!(!link.takes(&unit(Encoding::Main, 2, false)));
        assert!(!link.takes(&unit(Encoding::Main, 1, false)));
        link.subscribe(Encoding::Main, 2);
        assert!(
            !link.takes(&unit(Encoding::Main, 2, false)),
            "a layer-2 frame may reference the layer-1 frame it did not get"
        );
        assert!(link.takes(&unit(Encoding::Main, 0, false)));
        assert!(link.takes(&unit(Encoding::Main, 2, false)));
        assert!(link.takes(&unit(Encoding::Main, 1, false)));
    }
}
