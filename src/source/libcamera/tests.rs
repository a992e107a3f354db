//! The libcamera source against a stand-in `rpicam-vid` (a shell script that writes I420
//! frames of zeros and logs its arguments): opening, restarts for new settings, and the
//! supervisor's fallback when the helper dies.

use std::path::Path;

use super::settings::Capabilities;
use super::*;
use crate::source::supervised::{Opener, Supervised};

const WANTED: Wanted = Wanted {
    width: 64,
    height: 16,
    fps: 30,
    format: None,
};
/// 64x16 I420.
const FRAME: usize = 64 * 16 * 3 / 2;

struct Fake {
    dir: PathBuf,
    helper: Helper,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fake `rpicam-vid` in a fresh directory; `body` runs after it logged its arguments to
/// `$D/args` (`$D` is the directory, `$F` the frame size).
fn fake(test: &str, body: &str) -> Fake {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("rtcam-libcam-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let program = dir.join("rpicam-vid");
    let script = format!(
        "#!/bin/sh\nD={}\nF={FRAME}\necho \"$@\" >>$D/args\n{body}\n",
        dir.display()
    );
    std::fs::write(&program, script).expect("write the fake");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    Fake {
        helper: Helper::for_program(&program),
        dir,
    }
}

const STREAM: &str = "while head -c $F /dev/zero; do sleep 0.02; done";

fn controls() -> Arc<LibcameraControls> {
    Arc::new(LibcameraControls::new(Capabilities::Rpicam {
        autofocus: false,
    }))
}

fn open(fake: &Fake, controls: Arc<LibcameraControls>) -> Result<LibcameraSource, String> {
    LibcameraSource::open(
        &fake.helper,
        0,
        "imx219",
        &WANTED,
        Arc::new(CameraStatus::new()),
        controls,
    )
}

fn args(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("args"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn frames_flow_and_a_control_change_restarts_the_helper_with_it() {
    let fake = fake("restart", STREAM);
    let controls = controls();
    let mut source = open(&fake, controls.clone()).expect("the fake streams");
    let info = source.info();
    assert_eq!(
        (info.kind, info.width, info.height, info.fps),
        ("libcamera", 64, 16, 30)
    );
    for seq in 1..=3 {
        let frame = source.next_frame().expect("a frame");
        assert_eq!((frame.seq, frame.data.len()), (seq, FRAME));
    }
    assert_eq!(args(&fake.dir).len(), 1, "one helper so far");

    controls.set("brightness", 40).expect("in range");
    let frame = source.next_frame().expect("frames after the restart");
    assert_eq!(frame.seq, 4, "the stream goes on counting");
    let runs = args(&fake.dir);
    assert_eq!(runs.len(), 2, "restarted once: {runs:?}");
    assert!(!runs[0].contains("--brightness 0.40"));
    assert!(runs[1].contains("--brightness 0.40"), "{}", runs[1]);
    assert!(runs[1].contains("--codec yuv420 --output -"), "{}", runs[1]);
}

#[test]
fn a_helper_that_finds_no_camera_fails_to_open_saying_why() {
    let fake = fake(
        "nocam",
        "echo 'ERROR: *** no cameras available ***' >&2; exit 255",
    );
    let err = open(&fake, controls()).err().expect("no camera");
    assert!(err.contains("no cameras available"), "{err}");
    assert!(err.contains("exit status: 255"), "{err}");
}

#[test]
fn a_dying_helper_shows_no_signal_and_a_new_one_takes_over() {
    // The first run streams a few frames and dies; every later run streams on.
    let body = format!(
        "if [ ! -e $D/died ]; then touch $D/died; head -c $((F * 3)) /dev/zero; exit 1; fi\n{STREAM}"
    );
    let fake = fake("dies", &body);
    let controls = controls();
    let status = Arc::new(CameraStatus::new());
    let first = LibcameraSource::open(
        &fake.helper,
        0,
        "imx219",
        &WANTED,
        status.clone(),
        controls.clone(),
    )
    .expect("opens");
    let helper = fake.helper.clone();
    let opener: Opener = Box::new(move || {
        LibcameraSource::open(
            &helper,
            0,
            "imx219",
            &WANTED,
            status.clone(),
            controls.clone(),
        )
        .map(|s| Box::new(s) as Box<dyn FrameSource>)
    });
    let mut source = Supervised::new(Box::new(first), "libcamera:0", opener);
    let mut kinds = Vec::new();
    for _ in 0..400 {
        let frame = source.next_frame().expect("supervised sources never fail");
        // The fake's frames are black (Y = 0); the placeholder is not.
        let kind = if frame.y()[0] == 0 {
            "camera"
        } else {
            "placeholder"
        };
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
        if kinds.len() == 3 {
            break;
        }
    }
    assert_eq!(kinds, ["camera", "placeholder", "camera"]);
    assert!(
        source.take_keyframe_request(),
        "an IDR after the camera came back"
    );
    assert!(args(&fake.dir).len() >= 2, "a new helper was started");
}
