fn main() {
    afl::fuzz_nohook!(|data: &[u8]| rtcam::fuzz::control_message(data));
}
