//! Frame timing for sources that make their own pictures (no camera to pace them).
//!
//! Frame `n` is due at `start + n / fps` on the monotonic clock, computed from the start each time
//! so rounding never accumulates into drift. A source that falls behind by more than a frame
//! (the machine stalled, the thread was descheduled) jumps to the current slot instead of
//! delivering the missed frames in a burst: a live view has no use for stale pictures, and a burst
//! would hit the encoder and the network all at once. The slot index doubles as the frame's
//! sequence number, so skipped slots show up as gaps, as `Frame::seq` promises.

use std::time::{Duration, Instant};

pub(crate) struct FrameClock {
    fps: u32,
    /// Time of slot 0, set by the first call.
    start: Option<Instant>,
    next_slot: u64,
}

impl FrameClock {
    /// `fps` must be at least 1.
    pub(crate) fn new(fps: u32) -> Self {
        FrameClock {
            fps: fps.max(1),
            start: None,
            next_slot: 0,
        }
    }

    /// Claims the next frame slot, given the current time: its index and when it is due (in the
    /// past or now if the caller is late).
    pub(crate) fn next_slot(&mut self, now: Instant) -> (u64, Instant) {
        let start = *self.start.get_or_insert(now);
        let current = self.slot_at(start, now);
        // More than one frame behind: skip to the slot that is due now.
        let slot = self.next_slot.max(current);
        self.next_slot = slot + 1;
        (slot, start + self.offset(slot))
    }

    /// Sleeps until the next slot is due and returns its index: the pacing of a source that
    /// makes its own pictures.
    pub(crate) fn wait_next_slot(&mut self) -> u64 {
        let (slot, due) = self.next_slot(Instant::now());
        let wait = due.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        slot
    }

    /// The latest slot whose due time is not after `now`.
    fn slot_at(&self, start: Instant, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(start).as_nanos();
        (elapsed * u128::from(self.fps) / 1_000_000_000) as u64
    }

    fn offset(&self, slot: u64) -> Duration {
        let nanos = u128::from(slot) * 1_000_000_000 / u128::from(self.fps);
        Duration::from_nanos(nanos as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn slots_follow_the_frame_rate_without_drift() {
        let start = Instant::now();
        let mut clock = FrameClock::new(30);
        assert_eq!(clock.next_slot(start), (0, start));
        // Called early each time: the due times come from the start, not from the calls.
        assert_eq!(
            clock.next_slot(start),
            (1, start + Duration::from_nanos(33_333_333))
        );
        assert_eq!(
            clock.next_slot(start + 10 * MS),
            (2, start + Duration::from_nanos(66_666_666))
        );
        let (slot, due) = clock.next_slot(start + 70 * MS);
        assert_eq!((slot, due), (3, start + 100 * MS));
    }

    #[test]
    fn a_slightly_late_caller_gets_the_next_slot_immediately() {
        let start = Instant::now();
        let mut clock = FrameClock::new(10);
        clock.next_slot(start);
        // Slot 1 was due at 100 ms; at 150 ms it is late but slot 2 is not due yet.
        assert_eq!(clock.next_slot(start + 150 * MS), (1, start + 100 * MS));
        assert_eq!(clock.next_slot(start + 150 * MS), (2, start + 200 * MS));
    }

    #[test]
    fn a_caller_far_behind_skips_to_the_current_slot() {
        let start = Instant::now();
        let mut clock = FrameClock::new(10);
        clock.next_slot(start);
        // At 1.05 s slots 1..=9 are long gone: skip to slot 10, then carry on from there.
        assert_eq!(clock.next_slot(start + 1050 * MS), (10, start + 1000 * MS));
        assert_eq!(clock.next_slot(start + 1060 * MS), (11, start + 1100 * MS));
    }
}
