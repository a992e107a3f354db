//! Which connections the server keeps when a new one arrives: the connection limits, per client
//! address and in total, and whom to close to make room.
//!
//! A slot is cheap to hold and was first come, first served: 300 idle connections from one
//! address locked every other client out for as long as they were held. So a client address
//! gets a share of the slots, and when slots are short the connection that has gone longest
//! without a complete request gives way (an idle keep-alive, a slow or stalled request), never
//! one whose request is being answered. Pure bookkeeping: the caller passes the time and
//! closes what this hands back.

use std::net::IpAddr;
use std::time::Instant;

use crate::hub::client_key;

/// A connection's place in the table, handed back to [`Admission::busy`], [`Admission::idle`]
/// and [`Admission::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotId(u64);

/// Why a connection was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// Every slot of this client address is answering a request.
    ClientFull,
    /// Every slot is answering a request.
    Full,
}

/// A new connection's slot, and the connections closed to make room for it.
#[derive(Debug)]
pub(super) struct Admitted<C> {
    pub slot: SlotId,
    pub evicted: Vec<C>,
}

struct Entry<C> {
    slot: SlotId,
    client: IpAddr,
    /// Since when it has had no request being answered (accepted, or its last response sent);
    /// None while the handler or the response write is under way.
    idle_since: Option<Instant>,
    /// What the caller closes the connection with.
    closer: C,
}

pub(super) struct Admission<C> {
    max_total: usize,
    max_per_client: usize,
    next: u64,
    entries: Vec<Entry<C>>,
}

impl<C> Admission<C> {
    pub(super) fn new(max_total: usize, max_per_client: usize) -> Self {
        Admission {
            max_total: max_total.max(1),
            max_per_client: max_per_client.clamp(1, max_total.max(1)),
            next: 0,
            entries: Vec::new(),
        }
    }

    /// Admits a connection from `peer`, closing idle ones if that is what makes room.
    pub(super) fn admit(
        &mut self,
        peer: IpAddr,
        now: Instant,
        closer: C,
    ) -> Result<Admitted<C>, Refused> {
        let client = client_key(peer);
        let mut evicted = Vec::new();
        if self.count(client) >= self.max_per_client {
            // The client's own oldest idle connection makes way: a client can churn its own
            // connections but never take another client's.
            let Some(index) = self.longest_idle(Some(client)) else {
                return Err(Refused::ClientFull);
            };
            evicted.push(self.entries.swap_remove(index).closer);
        } else if self.entries.len() >= self.max_total {
            let Some(index) = self.longest_idle(None) else {
                return Err(Refused::Full);
            };
            evicted.push(self.entries.swap_remove(index).closer);
        }
        let slot = SlotId(self.next);
        self.next += 1;
        self.entries.push(Entry {
            slot,
            client,
            idle_since: Some(now),
            closer,
        });
        Ok(Admitted { slot, evicted })
    }

    /// A complete request is being answered: the connection cannot be evicted until
    /// [`Self::idle`].
    pub(super) fn busy(&mut self, slot: SlotId) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.slot == slot) {
            entry.idle_since = None;
        }
    }

    /// The response went out; the connection waits for its next request.
    pub(super) fn idle(&mut self, slot: SlotId, now: Instant) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.slot == slot) {
            entry.idle_since = Some(now);
        }
    }

    /// The connection ended (a no-op for one already evicted).
    pub(super) fn release(&mut self, slot: SlotId) {
        if let Some(index) = self.entries.iter().position(|e| e.slot == slot) {
            self.entries.swap_remove(index);
        }
    }

    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        self.entries.len()
    }

    fn count(&self, client: IpAddr) -> usize {
        self.entries.iter().filter(|e| e.client == client).count()
    }

    /// The entry idle the longest, of `client` or of anyone.
    fn longest_idle(&self, client: Option<IpAddr>) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| client.is_none_or(|c| e.client == c))
            .filter_map(|(index, e)| e.idle_since.map(|since| (since, index)))
            .min()
            .map(|(_, index)| index)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn a_client_over_its_share_displaces_only_its_own_oldest_idle_connection() {
        let start = Instant::now();
        let mut admission = Admission::new(8, 2);
        let other = admission
            .admit(ip("10.0.0.9"), start, "other")
            .expect("room");
        admission
            .admit(ip("10.0.0.1"), at(start, 1), "a1")
            .expect("room");
        admission
            .admit(ip("10.0.0.1"), at(start, 2), "a2")
            .expect("room");
        let third = admission
            .admit(ip("10.0.0.1"), at(start, 3), "a3")
            .expect("room");
        assert_eq!(third.evicted, vec!["a1"]);
        assert!(other.evicted.is_empty());
        assert_eq!(admission.open(), 3);
    }

    #[test]
    fn a_client_whose_connections_are_all_answering_is_refused() {
        let start = Instant::now();
        let mut admission = Admission::new(8, 2);
        for ms in 0..2 {
            let admitted = admission
                .admit(ip("10.0.0.1"), at(start, ms), ())
                .expect("room");
            admission.busy(admitted.slot);
        }
        assert_eq!(
            admission.admit(ip("10.0.0.1"), at(start, 5), ()).err(),
            Some(Refused::ClientFull)
        );
        assert!(admission.admit(ip("10.0.0.2"), at(start, 5), ()).is_ok());
    }

    #[test]
    fn when_full_the_longest_idle_connection_of_anyone_makes_room() {
        let start = Instant::now();
        let mut admission = Admission::new(3, 3);
        let a = admission.admit(ip("10.0.0.1"), start, "a").expect("room");
        admission
            .admit(ip("10.0.0.2"), at(start, 1), "b")
            .expect("room");
        admission
            .admit(ip("10.0.0.3"), at(start, 2), "c")
            .expect("room");
        // `a` answered a request later than the others were accepted: `b` is now the oldest.
        admission.busy(a.slot);
        admission.idle(a.slot, at(start, 10));
        let d = admission
            .admit(ip("10.0.0.4"), at(start, 11), "d")
            .expect("room");
        assert_eq!(d.evicted, vec!["b"]);
    }

    #[test]
    fn a_connection_being_answered_is_never_evicted() {
        let start = Instant::now();
        let mut admission = Admission::new(2, 2);
        let a = admission.admit(ip("10.0.0.1"), start, "a").expect("room");
        let b = admission
            .admit(ip("10.0.0.2"), at(start, 1), "b")
            .expect("room");
        admission.busy(a.slot);
        admission.busy(b.slot);
        assert_eq!(
            admission.admit(ip("10.0.0.3"), at(start, 2), "c").err(),
            Some(Refused::Full)
        );
        admission.release(b.slot);
        assert!(admission.admit(ip("10.0.0.3"), at(start, 3), "c").is_ok());
    }

    #[test]
    fn ipv6_clients_share_a_limit_per_64_prefix() {
        let start = Instant::now();
        let mut admission = Admission::new(8, 1);
        let first = admission
            .admit(ip("2001:db8::1"), start, "x")
            .expect("room");
        admission.busy(first.slot);
        assert_eq!(
            admission.admit(ip("2001:db8::2"), at(start, 1), "y").err(),
            Some(Refused::ClientFull)
        );
        assert!(
            admission
                .admit(ip("2001:db8:0:1::1"), at(start, 1), "z")
                .is_ok()
        );
    }

    #[test]
    fn releasing_an_evicted_slot_changes_nothing() {
        let start = Instant::now();
        let mut admission = Admission::new(1, 1);
        let a = admission.admit(ip("10.0.0.1"), start, ()).expect("room");
        admission
            .admit(ip("10.0.0.1"), at(start, 1), ())
            .expect("room");
        admission.release(a.slot);
        assert_eq!(admission.open(), 1);
    }
}
