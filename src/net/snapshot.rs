//! `GET /snapshot.jpg`: one JPEG encode at a time, shared by everyone who asks meanwhile.
//!
//! Each snapshot costs a copy of a frame and milliseconds of a core (off the event loop, on a
//! blocking thread). So a request gets the latest JPEG if it is at most `FRESH` old, joins the
//! encode under way if there is one, or starts one: a burst of requests costs one encode, one
//! frame copy and one blocking thread, however many come. The encode runs as a task of its
//! own, so a requester that hangs up does not cancel it for the others; the JPEG is let go
//! once stale, so nothing is held between bursts.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::LocalExecutor;
use smol::channel::{Sender, bounded};
use smol::future::FutureExt;

use super::whep::LoopRequest;

/// A burst within this time shares one JPEG (a viewer of snapshots polls far slower).
const FRESH: Duration = Duration::from_millis(200);
/// How long to wait for a frame before giving up (the source may be stuck or restarting).
const FRAME_WAIT: Duration = Duration::from_secs(3);
/// JPEG quality of snapshots.
const QUALITY: u8 = 85;

pub(crate) type Jpeg = Rc<[u8]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotError {
    /// No frame came in time.
    NoFrame,
    /// The event loop is gone.
    Stopping,
    /// The encoder refused the picture.
    Encode(String),
}

type Outcome = Result<Jpeg, SnapshotError>;

/// What a request gets, decided on explicit time.
#[derive(Debug, PartialEq)]
pub(crate) enum Ask {
    /// The latest JPEG, fresh enough.
    Ready(Jpeg),
    /// An encode is under way: the waiter is answered when it ends.
    Wait,
    /// Nothing under way: start an encode and report it with `finish`; the waiter is answered
    /// then, with the others that come meanwhile.
    Start,
}

/// Who gets which JPEG. Sans-IO: no clock, no channels; `W` is whatever answers a waiter.
pub(crate) struct Desk<W> {
    fresh: Duration,
    latest: Option<(Instant, Jpeg)>,
    /// Some while an encode is under way: who waits for it.
    waiting: Option<Vec<W>>,
}

impl<W> Desk<W> {
    pub(crate) fn new(fresh: Duration) -> Desk<W> {
        Desk {
            fresh,
            latest: None,
            waiting: None,
        }
    }

    pub(crate) fn ask(&mut self, now: Instant, waiter: W) -> Ask {
        match &self.latest {
            Some((at, jpeg)) if now.saturating_duration_since(*at) <= self.fresh => {
                return Ask::Ready(jpeg.clone());
            }
            // Stale: no use keeping it.
            _ => self.latest = None,
        }
        match &mut self.waiting {
            Some(waiting) => {
                waiting.push(waiter);
                Ask::Wait
            }
            None => {
                self.waiting = Some(vec![waiter]);
                Ask::Start
            }
        }
    }

    /// The encode ended: its result is the latest (if it is one), and these are to be answered.
    pub(crate) fn finish(&mut self, now: Instant, result: &Outcome) -> Vec<W> {
        if let Ok(jpeg) = result {
            self.latest = Some((now, jpeg.clone()));
        }
        self.waiting.take().unwrap_or_default()
    }

    /// Lets go of the latest JPEG once it is stale, so none is held between bursts.
    pub(crate) fn expire(&mut self, now: Instant) {
        if self
            .latest
            .as_ref()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > self.fresh)
        {
            self.latest = None;
        }
    }
}

/// The snapshots of one server: the desk, and what it needs to take a picture and encode it.
pub(crate) struct Snapshots {
    desk: RefCell<Desk<Sender<Outcome>>>,
    loop_tx: Sender<LoopRequest>,
    executor: Rc<LocalExecutor<'static>>,
}

impl Snapshots {
    pub(crate) fn new(
        loop_tx: Sender<LoopRequest>,
        executor: Rc<LocalExecutor<'static>>,
    ) -> Rc<Snapshots> {
        Rc::new(Snapshots {
            desk: RefCell::new(Desk::new(FRESH)),
            loop_tx,
            executor,
        })
    }

    /// A JPEG of a current frame.
    pub(crate) async fn get(self: &Rc<Self>) -> Outcome {
        let (tx, rx) = bounded(1);
        let ask = self.desk.borrow_mut().ask(Instant::now(), tx);
        match ask {
            Ask::Ready(jpeg) => return Ok(jpeg),
            Ask::Wait => {}
            Ask::Start => {
                let this = Rc::clone(self);
                self.executor
                    .spawn(async move {
                        let result = this.take().await;
                        let waiters = this.desk.borrow_mut().finish(Instant::now(), &result);
                        for waiter in waiters {
                            // A requester that hung up left a closed channel: fine.
                            let _ = waiter.try_send(result.clone());
                        }
                        drop(result);
                        smol::Timer::after(FRESH + Duration::from_millis(1)).await;
                        this.desk.borrow_mut().expire(Instant::now());
                    })
                    .detach();
            }
        }
        rx.recv().await.unwrap_or(Err(SnapshotError::Stopping))
    }

    /// Asks the event loop for a copy of the next frame and encodes it off the loop.
    async fn take(&self) -> Outcome {
        let (tx, rx) = bounded(1);
        if self
            .loop_tx
            .send(LoopRequest::Snapshot { reply: tx })
            .await
            .is_err()
        {
            return Err(SnapshotError::Stopping);
        }
        let picture = async { rx.recv().await.ok() };
        let timeout = async {
            smol::Timer::after(FRAME_WAIT).await;
            None
        };
        let picture = picture.or(timeout).await.ok_or(SnapshotError::NoFrame)?;
        smol::unblock(move || picture.to_jpeg(QUALITY))
            .await
            .map(Jpeg::from)
            .map_err(SnapshotError::Encode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::snapshot::Picture;
    use std::cell::Cell;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_shares_one_encode_and_then_its_result_while_fresh() {
        let t0 = Instant::now();
        let mut desk = Desk::new(ms(200));
        assert_eq!(desk.ask(t0, 1), Ask::Start);
        for w in 2..=100 {
            assert_eq!(desk.ask(t0 + ms(w), w), Ask::Wait);
        }
        let jpeg: Jpeg = Rc::from(&b"jpeg"[..]);
        let waiters = desk.finish(t0 + ms(150), &Ok(jpeg.clone()));
        assert_eq!(waiters, (1..=100).collect::<Vec<_>>(), "everyone, once");
        match desk.ask(t0 + ms(350), 101) {
            Ask::Ready(got) => assert!(Rc::ptr_eq(&got, &jpeg)),
            other => panic!("{other:?}"),
        }
        assert_eq!(desk.ask(t0 + ms(351), 102), Ask::Start, "stale: a new one");
    }

    #[test]
    fn a_stale_jpeg_is_let_go() {
        let t0 = Instant::now();
        let mut desk = Desk::new(ms(200));
        desk.ask(t0, ());
        let jpeg: Jpeg = Rc::from(&b"jpeg"[..]);
        desk.finish(t0, &Ok(jpeg.clone()));
        desk.expire(t0 + ms(200));
        assert_eq!(Rc::strong_count(&jpeg), 2, "still fresh: kept");
        desk.expire(t0 + ms(201));
        assert_eq!(Rc::strong_count(&jpeg), 1, "stale: dropped");
    }

    #[test]
    fn a_failure_is_told_to_the_waiters_and_not_kept() {
        let t0 = Instant::now();
        let mut desk = Desk::new(ms(200));
        assert_eq!(desk.ask(t0, 'a'), Ask::Start);
        assert_eq!(desk.ask(t0, 'b'), Ask::Wait);
        assert_eq!(desk.finish(t0, &Err(SnapshotError::NoFrame)), ['a', 'b']);
        assert_eq!(
            desk.ask(t0, 'c'),
            Ask::Start,
            "the next request tries again"
        );
    }

    /// Through the real `Snapshots` with a stand-in event loop: every concurrent request gets
    /// the same JPEG, from one frame taken and one encode.
    #[test]
    fn concurrent_requests_cause_one_encode() {
        let executor = Rc::new(LocalExecutor::new());
        let (loop_tx, loop_rx) = bounded(64);
        let snapshots = Snapshots::new(loop_tx, executor.clone());
        let frames_taken = Rc::new(Cell::new(0));
        let taken = frames_taken.clone();
        executor
            .spawn(async move {
                while let Ok(request) = loop_rx.recv().await {
                    if let LoopRequest::Snapshot { reply } = request {
                        taken.set(taken.get() + 1);
                        let picture = Picture {
                            width: 64,
                            height: 48,
                            i420: vec![128; 64 * 48 * 3 / 2],
                        };
                        let _ = reply.send(picture).await;
                    }
                }
            })
            .detach();
        let requests: Vec<_> = (0..50)
            .map(|_| {
                let s = snapshots.clone();
                executor.spawn(async move { s.get().await })
            })
            .collect();
        let results = smol::block_on(executor.run(async {
            let mut results = Vec::new();
            for r in requests {
                results.push(r.await);
            }
            results
        }));
        assert_eq!(frames_taken.get(), 1, "one frame, one encode");
        let first = results[0].clone().expect("a JPEG");
        assert_eq!(&first[..2], &[0xFF, 0xD8]);
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().is_ok_and(|j| Rc::ptr_eq(j, &first)))
        );
    }
}
