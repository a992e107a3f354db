//! A one-slot, latest-wins mailbox between two threads.
//!
//! The capture thread puts each new frame; the encoder thread takes whatever is newest. When the
//! encoder falls behind, the waiting frame is replaced instead of queued, so latency never builds
//! up: a live view wants the newest picture, not every picture.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

pub(crate) struct Mailbox<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item arrives or the mailbox closes.
    changed: Condvar,
}

struct State<T> {
    item: Option<T>,
    closed: bool,
}

impl<T> Mailbox<T> {
    pub(crate) fn new() -> Self {
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
    pub(crate) fn put(&self, item: T) -> Option<T> {
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
    pub(crate) fn take(&self) -> Option<T> {
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

    /// Closes the mailbox for good: wakes every taker, discards a waiting item, and makes later
    /// puts hand their item straight back.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let discarded = state.item.take();
        drop(state);
        self.changed.notify_all();
        // Dropped outside the lock: a frame's drop returns its buffer to a pool (another lock).
        drop(discarded);
    }

    pub(crate) fn is_closed(&self) -> bool {
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
        assert_eq!(mailbox.take(), None, "a closed mailbox never blocks");
    }
}
