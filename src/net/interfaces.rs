//! Which local addresses go into the answer as ICE host candidates.

use std::net::{IpAddr, SocketAddr};

/// Candidates for a media socket on `bound`. A specific address is used alone; an unspecified
/// one (0.0.0.0 or ::) stands for every usable interface address of that family (both families
/// for ::, which is dual-stack on Linux). Link-local IPv6 needs a scope id that SDP can't carry,
/// so it is left out. Loopback stays: local players (and tests) use it.
pub(crate) fn host_candidates(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let interfaces = if_addrs::get_if_addrs().unwrap_or_else(|e| {
        log::warn!("cannot list network interfaces ({e}); offering loopback only");
        Vec::new()
    });
    let mut addrs: Vec<IpAddr> = interfaces.iter().map(|i| i.ip()).collect();
    let wanted = |ip: &IpAddr| match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => bound.is_ipv6() && !v6.is_unicast_link_local(),
    };
    addrs.retain(wanted);
    order_and_dedup(&mut addrs);
    if addrs.is_empty() {
        addrs.push(IpAddr::from([127, 0, 0, 1]));
    }
    addrs
        .into_iter()
        .map(|ip| SocketAddr::new(ip, bound.port()))
        .collect()
}

/// Routable addresses first (they are what remote viewers use), loopback last.
fn order_and_dedup(addrs: &mut Vec<IpAddr>) {
    addrs.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6(), *ip));
    addrs.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_used_alone() {
        let a: SocketAddr = "192.0.2.7:8555".parse().unwrap();
        assert_eq!(host_candidates(a), vec![a]);
    }

    #[test]
    fn unspecified_means_every_interface_with_loopback_last() {
        let got = host_candidates("0.0.0.0:8555".parse().unwrap());
        assert!(!got.is_empty());
        assert!(got.iter().all(|a| a.port() == 8555 && a.is_ipv4()));
        assert!(got.contains(&"127.0.0.1:8555".parse().unwrap()));
        assert!(got.last().unwrap().ip().is_loopback());
    }

    #[test]
    fn ordering_puts_routable_addresses_first() {
        let mut v: Vec<IpAddr> = ["127.0.0.1", "::1", "10.0.0.2", "2001:db8::1", "10.0.0.2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        order_and_dedup(&mut v);
        let s: Vec<String> = v.iter().map(|i| i.to_string()).collect();
        assert_eq!(s, ["10.0.0.2", "2001:db8::1", "127.0.0.1", "::1"]);
    }
}
