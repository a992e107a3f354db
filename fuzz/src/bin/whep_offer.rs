// `fuzz_nohook`: a panic rtcam catches on purpose (str0m's, per viewer) is not a crash; one that
// escapes still aborts in afl.rs's harness and is reported.
fn main() {
    afl::fuzz_nohook!(|data: &[u8]| rtcam::fuzz::whep_offer(data));
}
