fn main() {
    afl::fuzz_nohook!(|data: &[u8]| rtcam::fuzz::convert(data));
}
