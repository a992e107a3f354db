//! A one-slot, latest-wins mailbox between two threads.
//!
//! The capture thread puts each new frame; the encoder thread takes whatever is newest. When the
//! encoder falls behind, the waiting frame is replaced instead of queued, so latency never builds
//! up: a live view wants the newest picture, not every picture.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub struct Mailbox<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item arrives or the mailbox closes.
    changed: Condvar,
}

struct State<T> {
    item: Option<T>,
    closed: bool,
}

/// Why [`Mailbox::take_timeout`] returned without an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeError {
    Timeout,
    Closed,
}

impl<T> Mailbox<T> {
    pub fn new() -> Self {
        Mailbox {
            state: Mutex::new(State {
                item: None,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Leaves `item` for the taker. Returns the item that will never be taken, so the caller can
    /// count it as dropped: the one it replaced, or `item` itself if the mailbox is closed.
    pub fn put(&self, item: T) -> Option<T> {
        let mut state = self.lock();
        if state.closed {
            return Some(item);
        }
        let replaced = state.item.replace(item);
        drop(state);
        self.changed.notify_one();
        replaced
    }

    /// Waits for an item. None once the mailbox is closed.
    pub fn take(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(item) = state.item.take() {
                return Some(item);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Like [`Mailbox::take`], but gives up after `timeout`.
    pub fn take_timeout(&self, timeout: Duration) -> Result<T, TakeError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(TakeError::Closed);
            }
            if let Some(item) = state.item.take() {
                return Ok(item);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TakeError::Timeout);
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Closes the mailbox for good: wakes every taker, discards a waiting item, and makes later
    /// puts hand their item straight back.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let discarded = state.item.take();
        drop(state);
        self.changed.notify_all();
        // Dropped outside the lock: a frame's drop returns its buffer to a pool (another lock).
        drop(discarded);
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is two plain fields that are always consistent, so a panic elsewhere while
        // holding the lock leaves nothing to repair.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn take_gets_the_newest_and_put_returns_the_replaced() {
        let mailbox = Mailbox::new();
        assert_eq!(mailbox.put(1), None);
        assert_eq!(mailbox.put(2), Some(1));
        assert_eq!(mailbox.take(), Some(2));
        assert_eq!(
            mailbox.take_timeout(Duration::ZERO),
            Err(TakeError::Timeout)
        );
    }

    #[test]
    fn close_wakes_a_blocked_taker() {
        let mailbox = Arc::new(Mailbox::<u32>::new());
        let taker = {
            let mailbox = Arc::clone(&mailbox);
            thread::spawn(move || mailbox.take())
        };
        // Whether the taker is already waiting or not, it must come back with None.
        mailbox.close();
        assert_eq!(taker.join().ok(), Some(None));
    }

    #[test]
    fn a_blocked_taker_receives_a_later_put() {
        let mailbox = Arc::new(Mailbox::new());
        let taker = {
            let mailbox = Arc::clone(&mailbox);
            thread::spawn(move || mailbox.take())
        };
        mailbox.put(7);
        assert_eq!(taker.join().ok(), Some(Some(7)));
    }

    #[test]
    fn closed_mailbox_refuses_items_and_discards_the_waiting_one() {
        let mailbox = Mailbox::new();
        mailbox.put("waiting");
        mailbox.close();
        assert!(mailbox.is_closed());
        assert_eq!(mailbox.take(), None);
        assert_eq!(mailbox.put("late"), Some("late"));
        assert_eq!(
            mailbox.take_timeout(Duration::from_secs(1)),
            Err(TakeError::Closed)
        );
    }

    #[test]
    fn take_timeout_returns_an_item_put_before_it() {
        let mailbox = Mailbox::new();
        mailbox.put(3);
        assert_eq!(mailbox.take_timeout(Duration::ZERO), Ok(3));
    }
}
