//! The helper protocol against real processes (`sh` scripts standing in for `rpicam-vid` and
//! `cam`): frame boundaries, read times, and helpers that die, hang or write garbage.

use super::*;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn bytes() -> Decode<Vec<u8>> {
    Box::new(|raw: &[u8]| Ok(raw.to_vec()))
}

const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn frames_arrive_whole_and_in_order_then_the_end_is_an_error() {
    let mut helper =
        HelperProcess::spawn(&sh("printf AAAABBBB; printf CCCC"), 4, bytes()).expect("sh starts");
    for want in [b"AAAA", b"BBBB", b"CCCC"] {
        let frame = helper.next(PATIENCE).expect("a frame");
        assert_eq!(frame.picture, want);
    }
    let err = helper.next(PATIENCE).err().expect("the helper ended");
    assert!(
        err.contains("sh: its output ended (exit status: 0)"),
        "{err}"
    );
}

#[test]
fn frames_carry_the_time_they_arrived() {
    let before = Instant::now();
    let mut helper = HelperProcess::spawn(
        &sh("printf AAAA; sleep 0.3; printf BBBB; sleep 5"),
        4,
        bytes(),
    )
    .expect("sh starts");
    let first = helper.next(PATIENCE).expect("first frame");
    // Consume the second frame well after the helper wrote it (0.3 s after it started).
    std::thread::sleep(Duration::from_millis(1500));
    let asked = Instant::now();
    let second = helper.next(PATIENCE).expect("second frame");
    assert!(first.read_at >= before && first.read_at < second.read_at);
    assert!(
        second.read_at.duration_since(before) >= Duration::from_millis(300),
        "not stamped before it was written"
    );
    assert!(
        second.read_at < asked,
        "stamped when it arrived, not when it was taken"
    );
}

#[test]
fn a_helper_that_dies_is_an_error_with_its_exit_status_and_last_words() {
    let mut helper = HelperProcess::spawn(
        &sh("printf AAAA; echo 'ERROR: camera exploded' >&2; exit 3"),
        4,
        bytes(),
    )
    .expect("sh starts");
    assert_eq!(helper.next(PATIENCE).expect("one frame").picture, b"AAAA");
    let err = helper.next(PATIENCE).err().expect("the helper died");
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(err.contains("ERROR: camera exploded"), "{err}");
}

#[test]
fn a_helper_that_hangs_times_out_and_is_stopped_with_its_children() {
    let pid_file = std::env::temp_dir().join(format!("rtcam-helper-hang-{}", std::process::id()));
    let script = format!(
        "printf AAAA; sleep 600 & echo $! >{}; wait",
        pid_file.display()
    );
    let mut helper = HelperProcess::spawn(&sh(&script), 4, bytes()).expect("sh starts");
    assert!(helper.next(PATIENCE).is_ok());
    let err = helper
        .next(Duration::from_millis(300))
        .err()
        .expect("no second frame");
    assert!(err.contains("no frame within 0.3 s"), "{err}");
    let sleep_pid = std::fs::read_to_string(&pid_file).expect("the script wrote its child's pid");
    let _ = std::fs::remove_file(&pid_file);
    drop(helper);
    // The helper's own child, `sleep`, is gone too (or a zombie waiting to be reaped).
    let stat = format!("/proc/{}/stat", sleep_pid.trim());
    let ended = (0..500).any(|_| {
        let state = std::fs::read_to_string(&stat).unwrap_or_default();
        let dead = state
            .rsplit(')')
            .next()
            .is_none_or(|rest| !rest.trim_start().starts_with('S'));
        if !dead {
            std::thread::sleep(Duration::from_millis(10));
        }
        dead
    });
    assert!(ended, "the helper's `sleep` was stopped with it");
}

#[test]
fn a_helper_that_writes_garbage_is_an_error_not_a_frame() {
    // Text where frames should be, then the end: the error shows the text.
    let mut helper =
        HelperProcess::spawn(&sh("echo 'Usage: cam [options]'"), 64, bytes()).expect("sh starts");
    let err = helper.next(PATIENCE).err().expect("no frame");
    assert!(err.contains("mid-frame"), "{err}");
    assert!(err.contains("Usage: cam [options]"), "{err}");

    // Whole frames the decoder refuses: the first refusal ends the helper's turn.
    let refuse: Decode<Vec<u8>> = Box::new(|raw: &[u8]| {
        if raw.iter().all(|b| *b == b'A') {
            Ok(raw.to_vec())
        } else {
            Err("not a picture".into())
        }
    });
    let mut helper =
        HelperProcess::spawn(&sh("printf AAAAxyz!; sleep 600"), 4, refuse).expect("sh starts");
    assert!(helper.next(PATIENCE).is_ok());
    let err = helper.next(PATIENCE).err().expect("refused");
    assert!(err.contains("not a picture"), "{err}");
}

#[test]
fn a_helper_that_is_not_there_is_a_clear_error() {
    let err = HelperProcess::spawn(&["/nonexistent/rpicam-vid".to_string()], 4, bytes())
        .err()
        .expect("no such program");
    assert!(
        err.starts_with("cannot start /nonexistent/rpicam-vid"),
        "{err}"
    );
    assert!(HelperProcess::spawn(&[], 4, bytes()).is_err());
}
