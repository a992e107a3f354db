//! `rtcam-client --expect-sequence camera,no-signal,camera`: ONE viewer followed through a
//! fault (the VM harness unplugs and replugs the camera while it watches). A check that opens
//! a new connection per phase would pass with a viewer that dropped at the unplug; this one
//! keeps a single connection and fails if it drops. It prints one JSON line as each phase is
//! reached (the harness waits for them to know when to pull the camera), then a verdict:
//! every phase seen in order, no disconnect, and after every placeholder phase the first frame
//! that is no longer the placeholder is an IDR (a viewer must not be left decoding camera
//! P-frames against a placeholder reference).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::camera_check::Kind;
use super::expect::{Expect, status};
use super::timeline::Timeline;
use super::{ClientEvent, ClientOptions, WhepClient, bearer_headers};

pub struct FollowOptions {
    pub url: String,
    pub token: Option<String>,
    /// What the pictures must show, phase after phase.
    pub phases: Vec<Expect>,
    /// Pictures of the phase's kind that complete it.
    pub pictures: usize,
    /// Give up after this long (the whole sequence).
    pub timeout: Duration,
}

/// One received frame, as the verdict needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub keyframe: bool,
    /// None when it did not decode.
    pub kind: Option<Kind>,
}

fn wanted(expect: Expect) -> Kind {
    match expect {
        Expect::Camera => Kind::Camera,
        Expect::NoSignal => Kind::Placeholder,
    }
}

fn name(expect: Expect) -> &'static str {
    match expect {
        Expect::Camera => "camera",
        Expect::NoSignal => "no-signal",
    }
}

/// Where each phase was completed: the index of the frame that brought its `pictures`-th
/// picture of the phase's kind, counted from the end of the phase before. Phases not reached
/// are missing from the end.
pub fn phases_reached(frames: &[Seen], phases: &[Expect], pictures: usize) -> Vec<usize> {
    let mut reached = Vec::new();
    let mut count = 0;
    for (i, f) in frames.iter().enumerate() {
        let Some(&phase) = phases.get(reached.len()) else {
            break;
        };
        if f.kind == Some(wanted(phase)) {
            count += 1;
            if count >= pictures.max(1) {
                reached.push(i);
                count = 0;
            }
        }
    }
    reached
}

/// After each placeholder phase that a camera phase follows, the first frame after the last
/// placeholder picture must be a keyframe. Err names the frame that is not.
pub fn check_idr_after_placeholder(
    frames: &[Seen],
    phases: &[Expect],
    reached: &[usize],
) -> Result<usize, String> {
    let mut checked = 0;
    for (p, pair) in phases.windows(2).enumerate() {
        if pair != [Expect::NoSignal, Expect::Camera] || p + 1 >= reached.len() {
            continue;
        }
        // The camera phase's first camera picture after the placeholder phase ended.
        let Some(first_camera) =
            (reached[p] + 1..=reached[p + 1]).find(|&i| frames[i].kind == Some(Kind::Camera))
        else {
            continue;
        };
        let last_placeholder = (reached[p]..first_camera)
            .rev()
            .find(|&i| frames[i].kind == Some(Kind::Placeholder))
            .unwrap_or(reached[p]);
        let after = last_placeholder + 1;
        if !frames[after].keyframe {
            return Err(format!(
                "frame {after}, the first after the placeholder, is not an IDR ({:?})",
                frames[after].kind
            ));
        }
        checked += 1;
    }
    Ok(checked)
}

/// Runs the viewer until every phase was reached (or the time is up, or it disconnects), then
/// judges. Ok when all passed; every step prints one JSON line.
pub fn run(o: &FollowOptions) -> Result<(), String> {
    if o.phases.is_empty() {
        return Err("no phases to follow".into());
    }
    let start = Instant::now();
    let deadline = start + o.timeout;
    let options = ClientOptions {
        headers: bearer_headers(o.token.as_deref()),
        ..ClientOptions::default()
    };
    let mut client = WhepClient::connect(&o.url, options).map_err(|e| e.to_string())?;
    let mut timeline = Timeline::new(start);
    let mut frames = Vec::new();
    let mut reported = 0;
    let mut error = None;
    while reported < o.phases.len() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            error = Some(format!(
                "timed out waiting for phase {reported} ({})",
                name(o.phases[reported])
            ));
            break;
        };
        match client.poll(left.min(Duration::from_millis(500))) {
            Ok(Some(ClientEvent::Frame(f))) => {
                timeline.push(&f);
                frames.push(Seen {
                    keyframe: f.keyframe,
                    kind: f.picture.as_ref().map(super::camera_check::classify),
                });
            }
            Ok(Some(ClientEvent::Disconnected)) => {
                timeline.mark_disconnected(Instant::now());
                error = Some("the viewer was disconnected".into());
                break;
            }
            Ok(_) => {}
            Err(e) => {
                timeline.mark_disconnected(Instant::now());
                error = Some(format!("the connection failed: {e}"));
                break;
            }
        }
        let reached = phases_reached(&frames, &o.phases, o.pictures);
        while reported < reached.len() {
            // The camera state at that moment, for the log (not judged: the pictures are).
            let status = status(&o.url, o.token.as_deref()).unwrap_or(Value::Null);
            println!(
                "{}",
                json!({
                    "check": "phase", "phase": reported, "expect": name(o.phases[reported]),
                    "ok": true, "frame": reached[reported],
                    "at_ms": start.elapsed().as_millis() as u64,
                    "camera_state": status["camera_state"],
                })
            );
            reported += 1;
        }
    }
    let deleted = client.delete().map_err(|e| e.to_string());
    let reached = phases_reached(&frames, &o.phases, o.pictures);
    let idr = check_idr_after_placeholder(&frames, &o.phases, &reached);
    let verdict = match (&error, &idr) {
        (Some(e), _) => Err(e.clone()),
        (None, Err(e)) => Err(e.clone()),
        (None, Ok(_)) if reached.len() < o.phases.len() => Err("not every phase seen".into()),
        (None, Ok(_)) => Ok(()),
    };
    println!(
        "{}",
        json!({
            "check": "sequence",
            "ok": verdict.is_ok(),
            "error": verdict.as_ref().err(),
            "phases_reached": reached.len(),
            "phases": o.phases.len(),
            "connected_throughout": !timeline.disconnected(),
            "idr_after_placeholder": idr.as_ref().ok(),
            "delete": deleted.as_ref().ok(),
            "segments": segments(&frames),
            "timeline": timeline.to_json(),
        })
    );
    verdict
}

/// Runs of frames of one kind with how many were keyframes, e.g. `[["camera", 40, 1],
/// ["placeholder", 55, 0], ["camera", 31, 1]]`: the whole story in one line.
fn segments(frames: &[Seen]) -> Value {
    let mut out: Vec<(&str, u32, u32)> = Vec::new();
    for f in frames {
        let kind = f.kind.map_or("undecoded", Kind::name);
        match out.last_mut() {
            Some((k, n, idr)) if *k == kind => {
                *n += 1;
                *idr += u32::from(f.keyframe);
            }
            _ => out.push((kind, 1, u32::from(f.keyframe))),
        }
    }
    json!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEQ: [Expect; 3] = [Expect::Camera, Expect::NoSignal, Expect::Camera];

    fn frames(spec: &[(Option<Kind>, usize, bool)]) -> Vec<Seen> {
        // (kind, how many, whether the first of them is a keyframe)
        let mut out = Vec::new();
        for &(kind, n, first_key) in spec {
            for i in 0..n {
                out.push(Seen {
                    keyframe: first_key && i == 0,
                    kind,
                });
            }
        }
        out
    }

    #[test]
    fn a_viewer_through_unplug_and_replug_passes() {
        let f = frames(&[
            (Some(Kind::Camera), 10, true),
            (None, 1, false),
            (Some(Kind::Placeholder), 10, false),
            (Some(Kind::Camera), 10, true),
        ]);
        let reached = phases_reached(&f, &SEQ, 6);
        assert_eq!(reached, vec![5, 16, 26]);
        assert_eq!(check_idr_after_placeholder(&f, &SEQ, &reached), Ok(1));
    }

    #[test]
    fn camera_back_without_an_idr_fails() {
        let f = frames(&[
            (Some(Kind::Camera), 8, true),
            (Some(Kind::Placeholder), 8, false),
            (Some(Kind::Camera), 8, false),
        ]);
        let reached = phases_reached(&f, &SEQ, 6);
        assert_eq!(reached.len(), 3);
        let err = check_idr_after_placeholder(&f, &SEQ, &reached).unwrap_err();
        assert!(err.contains("frame 16"), "{err}");
    }

    #[test]
    fn an_undecoded_or_other_frame_after_the_placeholder_must_be_the_idr() {
        // The IDR arrives, then camera pictures: passes even if the IDR itself looks "other".
        let f = frames(&[
            (Some(Kind::Camera), 6, true),
            (Some(Kind::Placeholder), 6, false),
            (Some(Kind::Other), 1, true),
            (Some(Kind::Camera), 6, false),
        ]);
        let reached = phases_reached(&f, &SEQ, 6);
        assert_eq!(check_idr_after_placeholder(&f, &SEQ, &reached), Ok(1));
        // A P-frame first, the IDR later: fails.
        let f = frames(&[
            (Some(Kind::Camera), 6, true),
            (Some(Kind::Placeholder), 6, false),
            (None, 1, false),
            (Some(Kind::Camera), 6, true),
        ]);
        let reached = phases_reached(&f, &SEQ, 6);
        assert!(check_idr_after_placeholder(&f, &SEQ, &reached).is_err());
    }

    #[test]
    fn phases_count_in_order_only() {
        // Placeholder pictures before any camera frame do not complete the placeholder phase.
        let f = frames(&[
            (Some(Kind::Placeholder), 10, true),
            (Some(Kind::Camera), 6, true),
        ]);
        assert_eq!(phases_reached(&f, &SEQ, 6), vec![15]);
        // Never any placeholder: the sequence stops after the first phase.
        let f = frames(&[(Some(Kind::Camera), 30, true)]);
        assert_eq!(phases_reached(&f, &SEQ, 6), vec![5]);
    }

    #[test]
    fn segments_summarise_the_story() {
        let f = frames(&[
            (Some(Kind::Camera), 3, true),
            (None, 1, false),
            (Some(Kind::Placeholder), 2, false),
        ]);
        assert_eq!(
            segments(&f),
            json!([["camera", 3, 1], ["undecoded", 1, 0], ["placeholder", 2, 0]])
        );
    }
}
