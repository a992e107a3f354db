//! Who gets a viewer slot, and whom a new offer displaces.
//!
//! An answered viewer holds a slot before it has proved anything: 16 offers that never do ICE
//! used to lock every other viewer out, and re-posting kept it so. So viewers that have not
//! connected yet ("pending") are counted apart: one client address may hold only a few of
//! them, and when the slots run out the oldest pending viewer gives way before a new offer is
//! refused. Connected viewers are never displaced.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

/// The address the per-client limits count by. An IPv6 host usually owns a whole /64 (privacy
/// addresses rotate inside it), so IPv6 clients count by /64; IPv4-mapped addresses count as
/// the IPv4 address they are.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// What the policy needs to know of a viewer already in the hub.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    /// Already a [`client_key`].
    pub client: IpAddr,
    pub connected: bool,
    pub created: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admit {
    /// There is room.
    Room,
    /// Room once the viewer at this index (pending) is dropped.
    Displace(usize),
    /// Every slot is held by a connected viewer.
    Full,
}

/// Where an offer from `client` fits among `slots`.
pub(super) fn admit(
    slots: &[Slot],
    client: IpAddr,
    max_viewers: usize,
    max_pending_per_client: usize,
) -> Admit {
    let oldest_pending = |of: Option<IpAddr>| {
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.connected && of.is_none_or(|c| s.client == c))
            .min_by_key(|(_, s)| s.created)
            .map(|(index, _)| index)
    };
    let pending_here = slots
        .iter()
        .filter(|s| !s.connected && s.client == client)
        .count();
    if pending_here >= max_pending_per_client.max(1) {
        // A client re-posting (a reload, a player's retry) replaces its own oldest offer.
        if let Some(index) = oldest_pending(Some(client)) {
            return Admit::Displace(index);
        }
    }
    if slots.len() < max_viewers {
        return Admit::Room;
    }
    match oldest_pending(None) {
        Some(index) => Admit::Displace(index),
        None => Admit::Full,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn slot(client: &str, connected: bool, start: Instant, ms: u64) -> Slot {
        Slot {
            client: client_key(ip(client)),
            connected,
            created: start + Duration::from_millis(ms),
        }
    }

    #[test]
    fn a_client_with_its_pending_offers_used_up_replaces_its_oldest() {
        let start = Instant::now();
        let slots = [
            slot("10.0.0.2", false, start, 1),
            slot("10.0.0.2", false, start, 0),
            slot("10.0.0.3", false, start, 0),
        ];
        assert_eq!(admit(&slots, ip("10.0.0.2"), 16, 2), Admit::Displace(1));
        assert_eq!(admit(&slots, ip("10.0.0.3"), 16, 2), Admit::Room);
    }

    #[test]
    fn when_the_slots_run_out_the_oldest_pending_viewer_makes_room() {
        let start = Instant::now();
        let slots = [
            slot("10.0.0.1", true, start, 0),
            slot("10.0.0.2", false, start, 5),
            slot("10.0.0.3", false, start, 3),
        ];
        assert_eq!(admit(&slots, ip("10.0.0.4"), 3, 4), Admit::Displace(2));
    }

    #[test]
    fn connected_viewers_are_never_displaced() {
        let start = Instant::now();
        let slots = [
            slot("10.0.0.1", true, start, 0),
            slot("10.0.0.2", true, start, 1),
        ];
        assert_eq!(admit(&slots, ip("10.0.0.1"), 2, 4), Admit::Full);
        assert_eq!(admit(&slots, ip("10.0.0.1"), 3, 4), Admit::Room);
    }

    #[test]
    fn client_keys_group_ipv6_by_64_and_unmap_ipv4() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }
}
