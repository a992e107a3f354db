//! The ICE servers viewers are told about: `Link: <url>; rel="ice-server"` headers on the WHEP
//! answer and on `OPTIONS /whep` (WHIP, RFC 9725 §4.6, which WHEP mirrors).
//!
//! With the TURN REST scheme (coturn's `use-auth-secret`) every call mints credentials of its
//! own: username `<expiry>:rtcam`, credential base64(HMAC-SHA1(secret, username)), so a viewer's
//! relay stops working when they expire and a leaked pair is of little use.

use crate::config::{IceConfig, IceUrl};

/// The `Link` header values for `ice`, minting REST credentials valid from `unix_now`.
pub(crate) fn link_headers(ice: &IceConfig, unix_now: u64) -> Vec<String> {
    let mut links = Vec::new();
    for url in &ice.stun {
        if let Ok(url) = IceUrl::parse(url) {
            links.push(format!("<{url}>; rel=\"ice-server\""));
        }
    }
    for turn in &ice.turn {
        let Ok(url) = IceUrl::parse(&turn.url) else {
            continue;
        };
        let Some((username, credential)) = turn.credentials(unix_now) else {
            continue;
        };
        links.push(format!(
            "<{url}>; rel=\"ice-server\"; username=\"{username}\"; credential=\"{credential}\"; \
             credential-type=\"password\""
        ));
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TurnConfig;

    #[test]
    fn stun_and_turn_servers_become_link_headers() {
        let ice = IceConfig {
            stun: vec!["stun:stun.example.net".into()],
            turn: vec![TurnConfig {
                url: "turn:198.18.5.1:3478".into(),
                username: Some("cam".into()),
                credential: Some("pass-word".into()),
                ..TurnConfig::default()
            }],
            ..IceConfig::default()
        };
        assert_eq!(
            link_headers(&ice, 0),
            vec![
                "<stun:stun.example.net:3478>; rel=\"ice-server\"".to_string(),
                "<turn:198.18.5.1:3478?transport=udp>; rel=\"ice-server\"; username=\"cam\"; \
                 credential=\"pass-word\"; credential-type=\"password\""
                    .to_string(),
            ]
        );
    }

    #[test]
    fn rest_credentials_are_minted_as_coturn_checks_them() {
        let ice = IceConfig {
            turn: vec![TurnConfig {
                url: "turn:turn.example.net".into(),
                secret: Some("north".into()),
                ttl_s: 3600,
                ..TurnConfig::default()
            }],
            ..IceConfig::default()
        };
        let links = link_headers(&ice, 1_700_000_000);
        // HMAC-SHA1("north", "1700003600:rtcam") in base64, as `openssl dgst -sha1 -hmac north
        // -binary | base64` computes it.
        assert_eq!(
            links,
            vec![
                "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; \
                 username=\"1700003600:rtcam\"; credential=\"vplHgzNGZgXhgUpr7ZMLN7PETyk=\"; \
                 credential-type=\"password\""
                    .to_string()
            ]
        );
    }
}
