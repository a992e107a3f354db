fn main() {
    afl::fuzz_nohook!(|data: &[u8]| rtcam::fuzz::whep_offer(data));
}
