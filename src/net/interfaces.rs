//! Which local addresses go into the answer as ICE host candidates.

use std::net::{IpAddr, SocketAddr};

/// Candidates for a media socket on `bound`. A specific address is used alone; an unspecified
/// one (0.0.0.0 or ::) stands for every usable interface address of that family (both families
/// for ::, which is dual-stack on Linux). Link-local IPv6 needs a scope id that SDP can't carry,
/// so it is left out, and so are container and VM bridges (no viewer is behind them, and each
/// useless candidate costs every viewer connectivity checks). Loopback stays: local players
/// (and tests) use it. Called for every offer: DHCP renewals and a VPN such as Tailscale coming
/// up change the answer's candidates without a restart.
pub(crate) fn host_candidates(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let interfaces = if_addrs::get_if_addrs().unwrap_or_else(|e| {
        log::warn!("cannot list network interfaces ({e}); offering loopback only");
        Vec::new()
    });
    let mut addrs: Vec<IpAddr> = interfaces
        .iter()
        .filter(|i| !is_virtual_bridge(&i.name))
        .map(|i| i.ip())
        .collect();
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

/// Docker, Podman, libvirt, LXC/LXD and Kubernetes network plumbing: host-internal bridges and
/// the veth ends of containers.
fn is_virtual_bridge(name: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "docker", "br-", "veth", "virbr", "vnet", "cni", "flannel", "cali", "podman", "lxcbr",
        "lxdbr", "kube-",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
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
    fn container_bridges_are_left_out_and_real_interfaces_kept() {
        for bridge in [
            "docker0", "br-3f2a", "veth12ab", "virbr0", "cni0", "podman1", "lxdbr0",
        ] {
            assert!(is_virtual_bridge(bridge), "{bridge}");
        }
        for real in [
            "eth0",
            "wlan0",
            "end0",
            "enp3s0",
            "tailscale0",
            "wg0",
            "usb0",
            "lo",
        ] {
            assert!(!is_virtual_bridge(real), "{real}");
        }
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
