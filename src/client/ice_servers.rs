//! The client's side of the ICE servers a WHEP server names in its `Link` headers: their STUN
//! servers, and our public address as one of them sees it (a server-reflexive candidate, which
//! a viewer behind a NAT must offer for the server to reach it).

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crate::config::{IceUrl, Scheme};
use crate::hub::stun::StunGatherer;

/// The STUN servers among `Link: <url>; rel="ice-server"` header values (TURN ones are left to
/// a client that can relay).
pub(crate) fn stun_servers(links: &[&str]) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for value in links {
        for link in value.split(',') {
            let Some((url, params)) = link
                .trim()
                .strip_prefix('<')
                .and_then(|rest| rest.split_once('>'))
            else {
                continue;
            };
            let ice_server = params
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"ice-server\"");
            let Ok(url) = IceUrl::parse(url) else {
                continue;
            };
            if ice_server && url.scheme == Scheme::Stun {
                servers.extend(
                    (url.host.as_str(), url.port)
                        .to_socket_addrs()
                        .into_iter()
                        .flatten(),
                );
            }
        }
    }
    servers
}

/// Asks `servers` from `socket` what address it is mapped to, for at most `wait`. None when
/// none answers, or the answer is our own address (no NAT).
pub(crate) fn reflexive_address(
    socket: &UdpSocket,
    servers: &[SocketAddr],
    wait: Duration,
) -> Option<(SocketAddr, SocketAddr)> {
    let local = socket.local_addr().ok()?;
    let start = Instant::now();
    let seed =
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), start);
    let mut stun = StunGatherer::new(local.port(), servers, start, seed);
    let mut buf = [0u8; 1500];
    let result = loop {
        let now = Instant::now();
        if now >= start + wait {
            break None;
        }
        stun.handle_timeout(now);
        while let Some(t) = stun.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination);
        }
        let next = stun
            .poll_timeout()
            .unwrap_or(start + wait)
            .min(start + wait);
        let _ = socket.set_read_timeout(Some(
            next.saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        ));
        if let Ok((n, source)) = socket.recv_from(&mut buf)
            && stun.handle_receive(Instant::now(), source, local, &buf[..n])
            && let Some(&found) = stun.reflexive().first()
        {
            break Some(found);
        }
    };
    let _ = socket.set_read_timeout(None);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_servers_come_from_ice_server_links_only() {
        let links = [
            "<stun:198.18.100.1:3478>; rel=\"ice-server\", <turn:198.18.100.1?transport=udp>; \
             rel=\"ice-server\"; username=\"u\"; credential=\"c\"",
            "<stun:192.0.2.9>; rel=\"alternate\"",
        ];
        assert_eq!(
            stun_servers(&links),
            vec!["198.18.100.1:3478".parse::<SocketAddr>().expect("address")]
        );
    }
}
