//! The rate policy: at what bitrate each encoding runs and what each viewer is sent, from the
//! bandwidth estimate of every viewer's link. One encoder per encoding, whatever the viewers.
//!
//! - A viewer's *usable* rate is its estimate less headroom (retransmissions, RTCP). Decreases
//!   are taken at once, increases only once they held a while, so the policy follows a
//!   congested link down quickly and a recovering one up gradually.
//! - The main encoding runs at the usable rate of its fastest viewer, up to the configured
//!   bitrate: a slow viewer never pulls a fast one down. A viewer a little slower than that
//!   gets fewer temporal layers of the same encode (half the frame rate: every second frame is
//!   referenced by none); a viewer slower still moves to the low encoding (half the width and
//!   height), which runs only while someone needs it, at the usable rate of its fastest viewer;
//!   its slower viewers get fewer layers, down to the configured frame-rate floor.
//! - Moves between encodings wait for the new one's IDR and happen only after the link stayed
//!   on the other side of the threshold for a while (faster down than up); encoder bitrates
//!   change only by more than a few percent, and upwards at most once a second. So an estimate
//!   that wobbles does not make the encoders oscillate.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::encode::Encoding;
use crate::hub::ViewerId;

/// Part of an estimate a viewer's video may use; the rest is for retransmissions and RTCP.
const HEADROOM: f64 = 0.85;
/// The main encoding does not go below this share of the configured bitrate; a viewer whose
/// link carries less is better served by the low encoding's smaller picture.
const MAIN_MIN_SHARE: f64 = 0.5;
/// The low encoding's ceiling, as a share of the configured bitrate: a quarter of the pixels
/// need no more.
const LOW_MAX_SHARE: f64 = 0.5;
/// On the main encoding a viewer gets at least this share of the frame rate (else it moves to
/// the low encoding): half, the fewest layers that still look fluid at 30 fps.
const MAIN_MIN_FPS_SHARE: f64 = 0.5;
/// How long a link must stay below (above) a threshold before the viewer moves down (up).
const MOVE_DOWN_AFTER: Duration = Duration::from_secs(1);
const MOVE_UP_AFTER: Duration = Duration::from_secs(2);
/// A usable rate that rose is believed after this long.
const RISE_AFTER: Duration = Duration::from_secs(1);
/// Encoder bitrates change only by more than this share…
const CHANGE_THRESHOLD: f64 = 0.06;
/// …and upwards at most this often, by at most this factor.
const RAISE_EVERY: Duration = Duration::from_secs(1);
const RAISE_FACTOR: f64 = 1.25;
/// The low encoding stops this long after its last viewer left it.
const LOW_IDLE: Duration = Duration::from_secs(5);
/// A link within this share below its encoding's rate counts as carrying it (for layers).
const LAYER_TOLERANCE: f64 = 0.1;
/// A viewer whose link carries less than the stream could send has its estimator probe for
/// more this often, so a link that recovers is found within seconds.
const PROBE_EVERY: Duration = Duration::from_secs(3);
/// How often the policy looks again.
const TICK: Duration = Duration::from_millis(250);
/// The window over which each layer's share of the bits is measured.
const LAYER_WINDOW: Duration = Duration::from_secs(4);
/// Layer shares before any were measured (3 layers, see `encode::h264`).
const DEFAULT_SHARES: [f64; 3] = [0.4, 0.65, 1.0];

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RateConfig {
    /// The configured bitrate: the most the main encoding sends.
    pub(crate) max_kbps: u32,
    /// No encoding runs below this.
    pub(crate) min_kbps: u32,
    /// The stream's frame rate, and the fewest frames per second a viewer is sent.
    pub(crate) fps: u32,
    pub(crate) min_fps: f64,
    /// Temporal layers of the encodings.
    pub(crate) layers: u8,
    /// The stream has a low encoding (a picture big enough to halve).
    pub(crate) low: bool,
    /// False when the bitrate cannot be controlled (a camera's own H.264): everyone gets
    /// everything.
    pub(crate) adaptive: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RateOutput {
    /// Run or pause an encoding.
    Active(Encoding, bool),
    Bitrate(Encoding, u32),
    /// From now on send `viewer` this encoding, up to this temporal layer.
    Subscribe {
        viewer: ViewerId,
        encoding: Encoding,
        max_layer: u8,
    },
    /// Have the viewer's bandwidth estimator look for up to this much (kbit/s): what its next
    /// step up would need.
    Probe {
        viewer: ViewerId,
        kbps: u32,
    },
}

struct ViewerRate {
    /// The usable rate the policy works with (kbit/s); None before the first estimate.
    usable: Option<f64>,
    /// A higher usable rate seen, and since when it holds.
    rising: Option<(f64, Instant)>,
    encoding: Encoding,
    max_layer: u8,
    /// Since when the viewer has wanted the other encoding.
    wants_other_since: Option<Instant>,
    /// The last subscription handed out.
    told: Option<(Encoding, u8)>,
    /// Since when more layers than it gets have fitted.
    layers_fit_since: Option<Instant>,
    last_probe: Option<Instant>,
}

struct EncodingRate {
    active: bool,
    kbps: u32,
    last_raise: Option<Instant>,
    /// (time, layer, bytes) of recent units.
    sent: VecDeque<(Instant, u8, usize)>,
    /// When it last had a viewer.
    last_used: Option<Instant>,
}

impl EncodingRate {
    /// The share of the bits carried by layers up to `layer`.
    fn share(&self, layer: u8) -> f64 {
        let total: usize = self.sent.iter().map(|s| s.2).sum();
        if total < 20_000 {
            return DEFAULT_SHARES.get(layer as usize).copied().unwrap_or(1.0);
        }
        let upto: usize = self.sent.iter().filter(|s| s.1 <= layer).map(|s| s.2).sum();
        upto as f64 / total as f64
    }
}

pub(crate) struct RatePolicy {
    config: RateConfig,
    viewers: BTreeMap<ViewerId, ViewerRate>,
    encodings: [EncodingRate; 2],
    outputs: VecDeque<RateOutput>,
    next_tick: Option<Instant>,
}

impl RatePolicy {
    pub(crate) fn new(config: RateConfig) -> RatePolicy {
        let encoding = |active, kbps| EncodingRate {
            active,
            kbps,
            last_raise: None,
            sent: VecDeque::new(),
            last_used: None,
        };
        let low_kbps = low_max(&config);
        RatePolicy {
            encodings: [encoding(true, config.max_kbps), encoding(false, low_kbps)],
            config,
            viewers: BTreeMap::new(),
            outputs: VecDeque::new(),
            next_tick: None,
        }
    }

    /// The stream restarted or its bitrate was set: encoders start over at the new settings
    /// (main at its configured bitrate, low paused); viewers keep their estimates.
    pub(crate) fn reconfigure(&mut self, config: RateConfig) {
        let viewers = std::mem::take(&mut self.viewers);
        let was_active = self.encodings.each_ref().map(|e| e.active);
        *self = RatePolicy::new(config);
        // A restarted pipeline starts like a new policy (main on, low off); a running one is
        // told so.
        for encoding in Encoding::ALL {
            let now_active = self.encodings[encoding.index()].active;
            if was_active[encoding.index()] != now_active {
                self.push(RateOutput::Active(encoding, now_active));
            }
        }
        for (id, mut v) in viewers {
            v.encoding = Encoding::Main;
            v.max_layer = self.top_layer();
            v.wants_other_since = None;
            v.told = Some((Encoding::Main, v.max_layer));
            self.push(RateOutput::Subscribe {
                viewer: id,
                encoding: Encoding::Main,
                max_layer: v.max_layer,
            });
            self.viewers.insert(id, v);
        }
    }

    pub(crate) fn viewer_joined(&mut self, now: Instant, viewer: ViewerId) {
        let max_layer = self.top_layer();
        self.viewers.insert(
            viewer,
            ViewerRate {
                usable: None,
                rising: None,
                encoding: Encoding::Main,
                max_layer,
                wants_other_since: None,
                told: None,
                layers_fit_since: None,
                last_probe: None,
            },
        );
        self.next_tick.get_or_insert(now);
    }

    pub(crate) fn viewer_left(&mut self, now: Instant, viewer: ViewerId) {
        if self.viewers.remove(&viewer).is_some() {
            self.decide(now);
        }
    }

    /// `viewer`'s ICE restart found a new path (another network): what its old link carried,
    /// and the outage that ended it, say nothing of this one. It starts over as a new viewer
    /// does, at full quality until its fresh estimate says otherwise.
    pub(crate) fn path_restored(&mut self, now: Instant, viewer: ViewerId) {
        if self.viewers.remove(&viewer).is_some() {
            self.viewer_joined(now, viewer);
            self.decide(now);
        }
    }

    /// A new bandwidth estimate for the link to `viewer`, bit/s.
    pub(crate) fn estimate(&mut self, now: Instant, viewer: ViewerId, bps: u64) {
        let Some(v) = self.viewers.get_mut(&viewer) else {
            return;
        };
        let usable = bps as f64 / 1000.0 * HEADROOM;
        match v.usable {
            // A jump to twice as much is a link freed, not noise (a probe found it): at once.
            Some(current) if usable >= 2.0 * current => {
                v.usable = Some(usable);
                v.rising = None;
                self.decide(now);
            }
            Some(current) if usable > current => match v.rising {
                Some((_, since)) => v.rising = Some((usable, since)),
                None => v.rising = Some((usable, now)),
            },
            _ => {
                // Down (or the first estimate): at once.
                let dropped = v.usable.is_some();
                v.usable = Some(usable);
                v.rising = None;
                if dropped {
                    self.decide(now);
                }
            }
        }
    }

    /// An access unit went out: the layer shares are measured from these.
    pub(crate) fn unit_sent(&mut self, now: Instant, encoding: Encoding, layer: u8, bytes: usize) {
        let sent = &mut self.encodings[encoding.index()].sent;
        sent.push_back((now, layer, bytes));
        while sent
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.0) > LAYER_WINDOW)
        {
            sent.pop_front();
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.next_tick.is_some_and(|at| at <= now) {
            self.next_tick = (!self.viewers.is_empty()).then_some(now + TICK);
            for v in self.viewers.values_mut() {
                if let Some((usable, since)) = v.rising
                    && now.saturating_duration_since(since) >= RISE_AFTER
                {
                    v.usable = Some(usable);
                    v.rising = None;
                }
            }
            self.decide(now);
            self.probe_slow_links(now);
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Hands out a decision; logged at debug, the trail to read when tuning.
    fn push(&mut self, output: RateOutput) {
        log::debug!("rate policy: {output:?}");
        self.outputs.push_back(output);
    }

    /// Links estimated below what the stream could send them are probed now and then.
    fn probe_slow_links(&mut self, now: Instant) {
        if !self.config.adaptive {
            return;
        }
        let max = f64::from(self.config.max_kbps);
        // The next step up: the main encoding for a viewer on the low one, else all of it.
        let main_min = (max * MAIN_MIN_SHARE).max(f64::from(self.config.min_kbps));
        let mut due = Vec::new();
        for (&id, v) in &mut self.viewers {
            let Some(usable) = v.usable.filter(|&u| u < max) else {
                continue;
            };
            if v.last_probe
                .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_EVERY)
            {
                v.last_probe = Some(now);
                let next = if v.encoding == Encoding::Low && usable < main_min {
                    main_min
                } else {
                    max
                };
                due.push((id, (next / HEADROOM).ceil() as u32));
            }
        }
        for (viewer, kbps) in due {
            self.push(RateOutput::Probe { viewer, kbps });
        }
    }

    pub(crate) fn poll_output(&mut self) -> Option<RateOutput> {
        self.outputs.pop_front()
    }

    fn top_layer(&self) -> u8 {
        self.config.layers.max(1) - 1
    }

    /// The fewest layers a viewer may be sent so it keeps `share` of the frame rate.
    fn min_layer_for(&self, share: f64) -> u8 {
        let top = self.top_layer();
        (0..=top)
            .find(|&l| 1.0 / f64::from(1u32 << (top - l)) >= share - 1e-9)
            .unwrap_or(top)
    }

    fn decide(&mut self, now: Instant) {
        if !self.config.adaptive {
            return;
        }
        let max = f64::from(self.config.max_kbps);
        let min = f64::from(self.config.min_kbps);
        let main_min = (max * MAIN_MIN_SHARE).max(min);
        // A viewer with no estimate yet counts as fast: the estimator starts optimistic and
        // comes down quickly if it has to.
        let usable = |v: &ViewerRate| v.usable.unwrap_or(max);

        // Main runs at the rate of its fastest possible viewer.
        let main_rate = self
            .viewers
            .values()
            .map(usable)
            .filter(|&u| u >= main_min || !self.config.low)
            .fold(None, |acc: Option<f64>, u| {
                Some(acc.map_or(u, |a| a.max(u)))
            })
            .map(|u| u.clamp(min, max));

        let main_floor_layer = self.min_layer_for(MAIN_MIN_FPS_SHARE);
        let fps_floor_layer =
            self.min_layer_for(self.config.min_fps / f64::from(self.config.fps.max(1)));
        let main_share = |l| self.encodings[0].share(l);
        let top = self.top_layer();

        // Where each viewer belongs now.
        let mut wanted: Vec<(ViewerId, Encoding)> = Vec::new();
        for (&id, v) in &self.viewers {
            let u = usable(v);
            let fits_main = match main_rate {
                Some(rate) => u >= main_share(main_floor_layer) * rate || u >= rate,
                None => false,
            };
            let encoding = if fits_main || !self.config.low {
                Encoding::Main
            } else {
                Encoding::Low
            };
            wanted.push((id, encoding));
        }
        for (id, encoding) in wanted {
            let Some(v) = self.viewers.get_mut(&id) else {
                continue;
            };
            if encoding == v.encoding {
                v.wants_other_since = None;
                continue;
            }
            let since = *v.wants_other_since.get_or_insert(now);
            let wait = if encoding == Encoding::Low {
                MOVE_DOWN_AFTER
            } else {
                MOVE_UP_AFTER
            };
            // A viewer with no pictures yet moves at once, and so does one whose link now
            // carries the whole main encoding.
            let certain = v
                .usable
                .is_none_or(|u| encoding == Encoding::Main && u >= max);
            if now.saturating_duration_since(since) >= wait || certain {
                v.encoding = encoding;
                v.wants_other_since = None;
            }
        }

        // Each encoding at the rate of its fastest viewer; slower ones get fewer layers.
        for encoding in Encoding::ALL {
            let members: Vec<f64> = self
                .viewers
                .values()
                .filter(|v| v.encoding == encoding)
                .map(usable)
                .collect();
            let (floor, ceiling) = match encoding {
                Encoding::Main if self.config.low => (main_min.min(max), max),
                Encoding::Main => (min, max),
                Encoding::Low => (min, low_max(&self.config) as f64),
            };
            let slot = &mut self.encodings[encoding.index()];
            if members.is_empty() {
                let idle = slot
                    .last_used
                    .is_some_and(|t| now.saturating_duration_since(t) >= LOW_IDLE)
                    || slot.last_used.is_none();
                // Main keeps running with nobody on it only while nobody is on low either.
                let pause = match encoding {
                    Encoding::Low => idle,
                    Encoding::Main => self.viewers.values().any(|v| v.encoding == Encoding::Low),
                };
                if slot.active && pause {
                    slot.active = false;
                    self.push(RateOutput::Active(encoding, false));
                }
                continue;
            }
            slot.last_used = Some(now);
            let fastest = members.iter().copied().fold(0.0, f64::max);
            let target = fastest.clamp(floor.min(ceiling), ceiling) as u32;
            if !slot.active {
                slot.active = true;
                slot.kbps = target;
                slot.last_raise = Some(now);
                self.push(RateOutput::Bitrate(encoding, target));
                self.push(RateOutput::Active(encoding, true));
            } else {
                let current = f64::from(slot.kbps);
                let next = if f64::from(target) < current * (1.0 - CHANGE_THRESHOLD) {
                    Some(target)
                } else if f64::from(target) > current * (1.0 + CHANGE_THRESHOLD)
                    && slot
                        .last_raise
                        .is_none_or(|t| now.saturating_duration_since(t) >= RAISE_EVERY)
                {
                    slot.last_raise = Some(now);
                    Some(target.min((current * RAISE_FACTOR) as u32))
                } else {
                    None
                };
                if let Some(kbps) = next {
                    slot.kbps = kbps;
                    self.push(RateOutput::Bitrate(encoding, kbps));
                }
            }
        }

        // Layers: as many as the link carries at its encoding's rate.
        let mut subscriptions = Vec::new();
        for (&id, v) in &self.viewers {
            let slot = &self.encodings[v.encoding.index()];
            let rate = f64::from(slot.kbps);
            let floor_layer = match v.encoding {
                Encoding::Main if self.config.low => main_floor_layer,
                _ => fps_floor_layer,
            };
            // The encoder's rate lags the estimate inside the change threshold: within it the
            // link counts as carrying it, or layers would flap with every wobble.
            let u = usable(v) * (1.0 + LAYER_TOLERANCE);
            let fitting = (floor_layer..=top)
                .rev()
                .find(|&l| slot.share(l) * rate <= u)
                .unwrap_or(floor_layer);
            subscriptions.push((id, v.encoding, fitting));
        }
        for (id, encoding, fitting) in subscriptions {
            let Some(v) = self.viewers.get_mut(&id) else {
                continue;
            };
            // Fewer layers at once; more only once they fit for a while.
            let layer = if fitting > v.max_layer && encoding == v.told.map_or(encoding, |t| t.0) {
                let since = *v.layers_fit_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= RISE_AFTER {
                    v.layers_fit_since = None;
                    fitting
                } else {
                    v.max_layer
                }
            } else {
                v.layers_fit_since = None;
                fitting
            };
            v.max_layer = layer;
            if v.told != Some((encoding, layer)) {
                v.told = Some((encoding, layer));
                self.push(RateOutput::Subscribe {
                    viewer: id,
                    encoding,
                    max_layer: layer,
                });
            }
        }
    }
}

/// Bandwidth estimation for a stream of at most `max_kbps`: a new viewer's estimate starts where
/// its usable part is the whole bitrate (so a viewer on a good link starts at full quality),
/// and the estimator probes for twice that (so a viewer can reach the full bitrate with
/// headroom to spare, and a link that recovers is noticed).
pub(crate) fn bwe_for(max_kbps: u32) -> crate::hub::BweConfig {
    let initial = (f64::from(max_kbps) / HEADROOM).ceil() as u32;
    crate::hub::BweConfig {
        initial_kbps: initial,
        max_kbps: initial.saturating_mul(2),
    }
}

/// The low encoding's ceiling.
fn low_max(config: &RateConfig) -> u32 {
    ((f64::from(config.max_kbps) * LOW_MAX_SHARE) as u32).max(config.min_kbps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: ViewerId = ViewerId(1);
    const FAST2: ViewerId = ViewerId(2);
    const SLOW: ViewerId = ViewerId(3);

    fn config() -> RateConfig {
        RateConfig {
            max_kbps: 1500,
            min_kbps: 150,
            fps: 30,
            min_fps: 7.5,
            layers: 3,
            low: true,
            adaptive: true,
        }
    }

    /// The policy and what the encoders and the hub were last told.
    struct Rig {
        policy: RatePolicy,
        now: Instant,
        active: [bool; 2],
        kbps: [u32; 2],
        bitrate_changes: usize,
        sent: BTreeMap<ViewerId, (Encoding, u8)>,
        probes: Vec<(Instant, ViewerId)>,
    }

    impl Rig {
        fn new(config: RateConfig) -> Rig {
            Rig {
                kbps: [config.max_kbps, 0],
                policy: RatePolicy::new(config),
                now: Instant::now(),
                active: [true, false],
                bitrate_changes: 0,
                sent: BTreeMap::new(),
                probes: Vec::new(),
            }
        }

        fn join(&mut self, viewer: ViewerId) {
            self.policy.viewer_joined(self.now, viewer);
            self.sent.insert(viewer, (Encoding::Main, 2));
        }

        /// `seconds` of time with each viewer's estimate (kbit/s) reported every 100 ms, and
        /// 30 fps of units sent on the active encodings (layers in the 3-layer pattern, sizes
        /// so that each encoding sends its bitrate).
        fn run(&mut self, seconds: f64, estimates: &[(ViewerId, f64)]) {
            let steps = (seconds * 30.0).round() as u64;
            for step in 0..steps {
                self.now += Duration::from_micros(33_333);
                if step % 3 == 0 {
                    for &(viewer, kbps) in estimates {
                        self.policy
                            .estimate(self.now, viewer, (kbps * 1000.0) as u64);
                    }
                }
                for encoding in Encoding::ALL {
                    if self.active[encoding.index()] {
                        let layer = [0, 2, 1, 2][(step % 4) as usize];
                        let bytes = self.kbps[encoding.index()] as usize * 1000 / 8 / 30;
                        self.policy.unit_sent(self.now, encoding, layer, bytes);
                    }
                }
                if self.policy.poll_timeout().is_some_and(|at| at <= self.now) {
                    self.policy.handle_timeout(self.now);
                }
                self.collect();
            }
        }

        fn collect(&mut self) {
            while let Some(output) = self.policy.poll_output() {
                match output {
                    RateOutput::Active(e, on) => self.active[e.index()] = on,
                    RateOutput::Bitrate(e, kbps) => {
                        self.kbps[e.index()] = kbps;
                        self.bitrate_changes += 1;
                    }
                    RateOutput::Subscribe {
                        viewer,
                        encoding,
                        max_layer,
                    } => {
                        self.sent.insert(viewer, (encoding, max_layer));
                    }
                    RateOutput::Probe { viewer, .. } => self.probes.push((self.now, viewer)),
                }
            }
        }

        fn gets(&self, viewer: ViewerId) -> (Encoding, u8) {
            self.sent[&viewer]
        }
    }

    #[test]
    fn one_slow_viewer_gets_the_low_encoding_at_its_rate_and_main_pauses() {
        let mut r = Rig::new(config());
        r.join(SLOW);
        r.run(5.0, &[(SLOW, 600.0)]);
        assert_eq!(
            r.gets(SLOW),
            (Encoding::Low, 2),
            "all frames of the small picture"
        );
        assert!(r.active[Encoding::Low.index()] && !r.active[Encoding::Main.index()]);
        let low = r.kbps[Encoding::Low.index()];
        assert!(
            (450..=520).contains(&low),
            "low follows the usable rate: {low}"
        );
    }

    /// After an ICE restart the viewer is on another network: it starts over at full quality
    /// as a new viewer does, instead of climbing back from what the outage left (seconds on
    /// the low encoding, then main raised by a quarter a second).
    #[test]
    fn a_restored_path_starts_over_at_full_quality() {
        let mut r = Rig::new(config());
        r.join(SLOW);
        r.run(5.0, &[(SLOW, 300.0)]);
        assert_eq!(r.gets(SLOW).0, Encoding::Low, "the outage's estimate");
        r.policy.path_restored(r.now, SLOW);
        let full = f64::from(config().max_kbps) / HEADROOM;
        r.run(0.5, &[(SLOW, full)]);
        assert_eq!(r.gets(SLOW), (Encoding::Main, 2));
        assert!(r.active[Encoding::Main.index()]);
        assert_eq!(r.kbps[Encoding::Main.index()], config().max_kbps);

        // Without the restart the same estimate takes seconds to climb back.
        let mut r = Rig::new(config());
        r.join(SLOW);
        r.run(5.0, &[(SLOW, 300.0)]);
        r.run(0.5, &[(SLOW, full)]);
        assert_eq!(r.gets(SLOW).0, Encoding::Low);
    }

    #[test]
    fn a_slow_viewer_does_not_pull_fast_ones_down() {
        let mut r = Rig::new(config());
        for v in [FAST, FAST2, SLOW] {
            r.join(v);
        }
        let links = [(FAST, 20_000.0), (FAST2, 8_000.0), (SLOW, 600.0)];
        r.run(10.0, &links);
        assert_eq!(
            r.kbps[Encoding::Main.index()],
            1500,
            "main at the configured bitrate"
        );
        assert_eq!(r.gets(FAST), (Encoding::Main, 2));
        assert_eq!(r.gets(FAST2), (Encoding::Main, 2));
        assert_eq!(r.gets(SLOW).0, Encoding::Low);
        assert!(r.active[Encoding::Main.index()] && r.active[Encoding::Low.index()]);
    }

    #[test]
    fn slow_links_are_probed_every_few_seconds_fast_ones_never() {
        let mut r = Rig::new(config());
        r.join(FAST);
        r.join(SLOW);
        r.run(10.0, &[(FAST, 20_000.0), (SLOW, 600.0)]);
        let probed = |v| r.probes.iter().filter(|p| p.1 == v).count();
        assert_eq!(probed(FAST), 0);
        assert!(
            (3..=4).contains(&probed(SLOW)),
            "{} probes in 10 s",
            probed(SLOW)
        );
    }

    #[test]
    fn a_little_slower_viewer_gets_half_the_frame_rate_of_main() {
        let mut r = Rig::new(config());
        r.join(FAST);
        r.join(SLOW);
        // 1100 usable: too little for all of 1500, enough for layers 0-1 (65 %).
        r.run(6.0, &[(FAST, 20_000.0), (SLOW, 1300.0)]);
        assert_eq!(r.gets(SLOW), (Encoding::Main, 1));
        assert_eq!(r.gets(FAST), (Encoding::Main, 2));
    }

    #[test]
    fn very_slow_links_get_fewer_frames_not_less_than_the_floor() {
        let mut r = Rig::new(config());
        r.join(SLOW);
        r.run(6.0, &[(SLOW, 70.0)]);
        let (encoding, layer) = r.gets(SLOW);
        assert_eq!(encoding, Encoding::Low);
        assert_eq!(r.kbps[Encoding::Low.index()], 150, "not below the floor");
        assert_eq!(layer, 0, "7.5 fps: a quarter of the frames");
    }

    #[test]
    fn a_recovered_link_is_back_on_main_at_full_rate_within_15_s() {
        let mut r = Rig::new(config());
        r.join(SLOW);
        r.run(10.0, &[(SLOW, 600.0)]);
        assert_eq!(r.gets(SLOW).0, Encoding::Low);
        // The link recovers; the estimator ramps up over a few seconds, as TWCC does.
        let mut recovered_after = None;
        for tenth in 0..150 {
            let kbps = (600.0 * 1.08f64.powi(tenth)).min(20_000.0);
            r.run(0.1, &[(SLOW, kbps)]);
            if r.gets(SLOW) == (Encoding::Main, 2) && r.kbps[Encoding::Main.index()] == 1500 {
                recovered_after = Some(tenth as f64 / 10.0);
                break;
            }
        }
        let after = recovered_after.expect("back on main at 1500 within 15 s");
        assert!(after <= 15.0, "{after} s");
        r.run(10.0, &[(SLOW, 20_000.0)]);
        assert!(
            !r.active[Encoding::Low.index()],
            "the low encoding stopped once unused"
        );
    }

    #[test]
    fn a_noisy_estimate_does_not_make_the_encoder_oscillate() {
        let mut r = Rig::new(config());
        r.join(SLOW);
        r.run(5.0, &[(SLOW, 1100.0)]);
        let before = r.bitrate_changes;
        // 10 s of an estimate jumping ±10 % every 100 ms.
        for i in 0..100 {
            let kbps = if i % 2 == 0 { 1000.0 } else { 1200.0 };
            r.run(0.1, &[(SLOW, kbps)]);
        }
        let changes = r.bitrate_changes - before;
        assert!(changes <= 3, "{changes} bitrate changes in 10 s");
        assert_eq!(r.gets(SLOW).0, Encoding::Main, "stays on main");
    }

    #[test]
    fn without_a_low_encoding_or_control_everyone_stays_on_main() {
        let mut r = Rig::new(RateConfig {
            low: false,
            ..config()
        });
        r.join(SLOW);
        r.run(5.0, &[(SLOW, 400.0)]);
        assert_eq!(r.gets(SLOW).0, Encoding::Main);
        assert_eq!(
            r.kbps[Encoding::Main.index()],
            340,
            "main follows the only viewer"
        );

        let mut fixed = Rig::new(RateConfig {
            adaptive: false,
            ..config()
        });
        fixed.join(SLOW);
        fixed.run(5.0, &[(SLOW, 400.0)]);
        assert_eq!(
            fixed.bitrate_changes, 0,
            "a camera's own H.264 is left alone"
        );
        assert_eq!(fixed.gets(SLOW), (Encoding::Main, 2));
    }
}

#[cfg(test)]
mod cost {
    use super::*;

    /// What the policy costs: 16 viewers with estimates every 100 ms and 30 fps of units, for
    /// 60 s of simulated time. Run by hand (`cargo test --release --lib rate::cost -- --ignored
    /// --nocapture`); prints the wall time per simulated second.
    #[test]
    #[ignore]
    fn policy_cost_with_16_viewers() {
        let mut policy = RatePolicy::new(RateConfig {
            max_kbps: 1500,
            min_kbps: 150,
            fps: 30,
            min_fps: 7.5,
            layers: 3,
            low: true,
            adaptive: true,
        });
        let mut now = Instant::now();
        let viewers: Vec<ViewerId> = (1..=16).map(ViewerId).collect();
        for &v in &viewers {
            policy.viewer_joined(now, v);
        }
        let started = std::time::Instant::now();
        for step in 0..(60 * 30u64) {
            now += Duration::from_micros(33_333);
            if step % 3 == 0 {
                for (i, &v) in viewers.iter().enumerate() {
                    let kbps = if i % 4 == 0 { 600 } else { 5000 } + (step % 7) * 20;
                    policy.estimate(now, v, kbps * 1000);
                }
            }
            policy.unit_sent(now, Encoding::Main, [0, 2, 1, 2][(step % 4) as usize], 6000);
            policy.unit_sent(now, Encoding::Low, [0, 2, 1, 2][(step % 4) as usize], 1800);
            if policy.poll_timeout().is_some_and(|at| at <= now) {
                policy.handle_timeout(now);
            }
            while policy.poll_output().is_some() {}
        }
        let per_second = started.elapsed() / 60;
        println!("rate policy, 16 viewers: {per_second:?} of CPU per second of stream");
    }
}
