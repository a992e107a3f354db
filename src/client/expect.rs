//! `rtcam-client --expect camera|no-signal`: one viewer that checks what it sees (and, with
//! `--set-control`, that a camera control set through rtcam reads back changed), printing one
//! JSON line per check. Used by the VM harness, where a real V4L2 driver feeds rtcam.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::camera_check::{PictureReport, report};
use super::http::{self, Url};
use super::{ClientEvent, ClientOptions, Picture, WhepClient};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Camera,
    NoSignal,
}

pub struct ExpectOptions {
    pub url: String,
    pub token: Option<String>,
    pub expect: Expect,
    /// Pictures to decode and judge.
    pub pictures: usize,
    /// Give up after this long.
    pub timeout: Duration,
    /// Wait until `/api/status` reports this `camera_state` first.
    pub wait_state: Option<String>,
    /// Set this control through the data channel and check it reads back.
    pub set_control: Option<(String, i64)>,
}

/// Runs the checks; Ok when all passed. Every check prints one JSON line.
pub fn run(o: &ExpectOptions) -> Result<(), String> {
    let deadline = Instant::now() + o.timeout;
    if let Some(state) = &o.wait_state {
        let status = wait_for_state(o, state, deadline)?;
        println!(
            "{}",
            json!({"check": "wait_state", "ok": true, "status": status})
        );
    }
    let options = ClientOptions {
        headers: super::bearer_headers(o.token.as_deref()),
        ..ClientOptions::default()
    };
    let mut client = WhepClient::connect(&o.url, options).map_err(|e| e.to_string())?;
    let pictures = collect(&mut client, o.pictures, deadline)?;
    let seen = report(&pictures);
    let verdict = match o.expect {
        Expect::Camera => seen.is_camera(o.pictures),
        Expect::NoSignal => seen.is_placeholder(o.pictures),
    };
    print_check("pictures", &verdict, json!(seen));
    verdict?;
    let status = status(&o.url, o.token.as_deref()).unwrap_or(Value::Null);
    println!(
        "{}",
        json!({"check": "status", "ok": true, "status": status})
    );
    if let Some((name, value)) = &o.set_control {
        set_control(&mut client, name, *value, &seen, deadline)?;
    }
    let _ = client.delete();
    Ok(())
}

fn print_check(name: &str, verdict: &Result<(), String>, details: Value) {
    let (ok, error) = match verdict {
        Ok(()) => (true, Value::Null),
        Err(e) => (false, json!(e)),
    };
    println!(
        "{}",
        json!({"check": name, "ok": ok, "error": error, "details": details})
    );
}

fn collect(client: &mut WhepClient, n: usize, deadline: Instant) -> Result<Vec<Picture>, String> {
    let mut pictures = Vec::with_capacity(n);
    while pictures.len() < n {
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or_else(|| format!("timed out after {} pictures", pictures.len()))?;
        match client.poll(left).map_err(|e| e.to_string())? {
            Some(ClientEvent::Frame(frame)) => pictures.extend(frame.picture),
            Some(ClientEvent::Disconnected) => return Err("disconnected".into()),
            _ => {}
        }
    }
    Ok(pictures)
}

fn set_control(
    client: &mut WhepClient,
    name: &str,
    value: i64,
    before: &PictureReport,
    deadline: Instant,
) -> Result<(), String> {
    let wait = Duration::from_secs(10);
    let call = |client: &mut WhepClient, cmd: &str, args: Value| {
        client
            .command(cmd, args, wait)
            .map_err(|e| format!("{cmd}: {e}"))
    };
    let claimed = call(client, "control.claim", json!({}))?;
    let original = call(client, "controls.get", json!({"name": name}))?["result"]["value"].as_i64();
    let set = call(
        client,
        "controls.set",
        json!({"name": name, "value": value}),
    )?;
    let got = call(client, "controls.get", json!({"name": name}))?;
    let read_back = got["result"]["value"].as_i64();
    // Pictures after the change: a value that reads back but never reaches the picture (a
    // driver that stores it and ignores it, rtcam setting another device) must fail too.
    let before_luma = before.mean_luma;
    let up = original.map(|o| value > o);
    let shifted = |m: f64| luma_moved(before_luma, m, up);
    let after = picture_after_change(client, shifted, deadline);
    // Put it back, so later checks see the camera's usual picture.
    if let Some(original) = original {
        let _ = call(
            client,
            "controls.set",
            json!({"name": name, "value": original}),
        );
    }
    let verdict = if read_back != Some(value) {
        Err(format!("{name} reads back {read_back:?}, set {value}"))
    } else if name != "brightness" {
        // Only brightness has an effect on the picture this check can predict.
        Ok(())
    } else if original == Some(value) || original.is_none() {
        Err(format!(
            "{name} was {original:?} already: setting {value} cannot show a change"
        ))
    } else if !after.as_ref().is_some_and(|(m, _)| shifted(*m)) {
        Err(format!(
            "the picture's mean luma did not move by {MIN_LUMA_SHIFT} {} from {before_luma} \
             (after: {:?})",
            if up == Some(true) { "up" } else { "down" },
            after.as_ref().map(|(m, _)| m)
        ))
    } else {
        Ok(())
    };
    print_check(
        "control",
        &verdict,
        json!({
            "claim": claimed["ok"], "original": original, "set": set, "get": got,
            "mean_luma_before": before_luma,
            "mean_luma_after": after.as_ref().map(|(m, _)| m),
            "pictures_until_changed": after.as_ref().map(|(_, n)| n),
        }),
    );
    verdict
}

/// How far brightness must move the picture's mean luma, in the direction of the change.
/// vivid adds (brightness - 128) to its pattern's luma, so the VM's 128 → 200 moves it by
/// tens of levels; from frame to frame vivid's moving text and H.264 at a low bitrate move it
/// by about one.
const MIN_LUMA_SHIFT: f64 = 8.0;
/// Whether the mean luma went from `before` to `after` by at least `MIN_LUMA_SHIFT` in the
/// direction of the change (`up`: the value was raised; None: no known original to compare).
fn luma_moved(before: f64, after: f64, up: Option<bool>) -> bool {
    match up {
        Some(true) => after - before >= MIN_LUMA_SHIFT,
        Some(false) => before - after >= MIN_LUMA_SHIFT,
        None => false,
    }
}

/// Pictures to wait for the change to show (capture and encoding lag a few frames behind).
const PICTURES_FOR_A_CHANGE: usize = 60;

/// The mean luma of the first picture (after the change) that `shifted` accepts, with how many
/// pictures it took; else the last picture's, or None when nothing decoded.
fn picture_after_change(
    client: &mut WhepClient,
    shifted: impl Fn(f64) -> bool,
    deadline: Instant,
) -> Option<(f64, usize)> {
    let mut last = None;
    for n in 1..=PICTURES_FOR_A_CHANGE {
        let Ok(p) = collect(client, 1, deadline) else {
            break;
        };
        let m = report(&p).mean_luma;
        last = Some((m, n));
        if shifted(m) {
            break;
        }
    }
    last
}

fn status_url(whep: &str) -> Result<Url, String> {
    let base = whep.strip_suffix("/whep").unwrap_or(whep);
    Url::parse(&format!("{base}/api/status")).map_err(|e| e.to_string())
}

/// rtcam's `/api/status` next to the WHEP endpoint `whep`.
pub fn status(whep: &str, token: Option<&str>) -> Result<Value, String> {
    let url = status_url(whep)?;
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let response = http::request(&url, "GET", &headers, &[]).map_err(|e| e.to_string())?;
    serde_json::from_slice(&response.body).map_err(|e| e.to_string())
}

fn wait_for_state(o: &ExpectOptions, state: &str, deadline: Instant) -> Result<Value, String> {
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(s) = status(&o.url, o.token.as_deref()) {
            if s["camera_state"] == json!(state) {
                return Ok(s);
            }
            last = s;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let err = format!(
        "camera_state never became {state} (last: {})",
        last["camera_state"]
    );
    print_check("wait_state", &Err(err.clone()), last);
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brightness_must_move_the_picture_the_right_way() {
        // The VM's numbers: 128 -> 200 took the mean luma from 65 to 134.
        assert!(luma_moved(65.0, 134.4, Some(true)));
        // Frame-to-frame noise is no change; the wrong direction is none either.
        assert!(!luma_moved(65.0, 66.5, Some(true)));
        assert!(!luma_moved(65.0, 40.0, Some(true)));
        assert!(luma_moved(65.0, 40.0, Some(false)));
        // Without the original value the direction is unknown: not judged a pass.
        assert!(!luma_moved(65.0, 134.4, None));
    }
}
