//! Reusable frame buffers, so producing a frame does not allocate.
//!
//! A source takes a `FrameBuf` from its `FramePool`, fills it and sends it down the pipeline; when
//! the last user drops it (the encoder after encoding, or the mailbox when a newer frame replaced
//! it) the memory goes back to the pool. The pool keeps only a few spare buffers: in steady state
//! about three frames are alive (being captured, waiting, being encoded), and anything beyond the
//! spare limit is freed rather than hoarded.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

/// Spare buffers kept for reuse; more are freed when returned.
const MAX_SPARE: usize = 4;

/// A shared pool of equally sized byte buffers. Cloning gives another handle to the same pool.
#[derive(Clone)]
pub(crate) struct FramePool {
    shared: Arc<Shared>,
}

struct Shared {
    buf_len: usize,
    spares: Mutex<Vec<Vec<u8>>>,
}

impl FramePool {
    /// A pool of buffers of `buf_len` bytes each (for I420: `width * height * 3 / 2`).
    pub(crate) fn new(buf_len: usize) -> Self {
        FramePool {
            shared: Arc::new(Shared {
                buf_len,
                spares: Mutex::new(Vec::with_capacity(MAX_SPARE)),
            }),
        }
    }

    /// A buffer of `buf_len` bytes: a returned one if there is one (holding whatever its last user
    /// left in it), otherwise a new zeroed one.
    pub(crate) fn get(&self) -> FrameBuf {
        let reused = self.shared.lock_spares().pop();
        let data = reused.unwrap_or_else(|| vec![0; self.shared.buf_len]);
        FrameBuf {
            data,
            home: Some(Arc::clone(&self.shared)),
        }
    }

    #[cfg(test)]
    /// How many returned buffers are waiting for reuse.
    pub(crate) fn spare_count(&self) -> usize {
        self.shared.lock_spares().len()
    }
}

impl Shared {
    fn lock_spares(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A list of plain Vecs cannot be left half-updated, so a poisoned lock is still usable.
        self.spares.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn give_back(&self, data: Vec<u8>) {
        let mut spares = self.lock_spares();
        if spares.len() < MAX_SPARE {
            spares.push(data);
        }
    }
}

/// One frame's bytes. Derefs to `[u8]`; goes back to its pool when dropped.
pub(crate) struct FrameBuf {
    data: Vec<u8>,
    /// The pool to return to; None for a buffer that belongs to no pool.
    home: Option<Arc<Shared>>,
}

impl FrameBuf {
    /// Wraps a Vec that belongs to no pool (freed normally on drop), for tests.
    #[cfg(test)]
    pub(crate) fn unpooled(data: Vec<u8>) -> Self {
        FrameBuf { data, home: None }
    }
}

impl Deref for FrameBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl DerefMut for FrameBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl Drop for FrameBuf {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            home.give_back(std::mem::take(&mut self.data));
        }
    }
}

impl fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameBuf")
            .field("len", &self.data.len())
            .field("pooled", &self.home.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returned_buffer_is_reused_without_allocating() {
        let pool = FramePool::new(16);
        let mut buf = pool.get();
        assert_eq!(buf.len(), 16);
        buf[0] = 42;
        let address = buf.as_ptr();
        drop(buf);
        assert_eq!(pool.spare_count(), 1);

        let again = pool.get();
        assert_eq!(again.as_ptr(), address);
        assert_eq!(again[0], 42, "reused buffers keep their old contents");
        assert_eq!(pool.spare_count(), 0);
    }

    #[test]
    fn spares_are_bounded() {
        let pool = FramePool::new(8);
        let bufs: Vec<FrameBuf> = (0..MAX_SPARE + 3).map(|_| pool.get()).collect();
        drop(bufs);
        assert_eq!(pool.spare_count(), MAX_SPARE);
    }

    #[test]
    fn buffers_can_be_returned_from_another_thread() {
        let pool = FramePool::new(4);
        let buf = pool.get();
        std::thread::spawn(move || drop(buf))
            .join()
            .expect("dropping thread panicked");
        assert_eq!(pool.spare_count(), 1);
    }

    #[test]
    fn unpooled_buffer_goes_nowhere() {
        let pool = FramePool::new(4);
        drop(FrameBuf::unpooled(vec![1, 2, 3, 4]));
        assert_eq!(pool.spare_count(), 0);
    }

    #[test]
    fn buffer_outlives_its_pool_handle() {
        let pool = FramePool::new(4);
        let buf = pool.get();
        drop(pool);
        assert_eq!(&buf[..], &[0, 0, 0, 0]);
    }
}
