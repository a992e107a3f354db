//! `[ice]`: how viewers outside the local network reach rtcam. STUN servers tell rtcam its
//! public address (and viewers theirs); TURN servers relay for viewers no direct path reaches;
//! `public_ip` names the address of a port forward or a 1:1 NAT.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IceConfig {
    /// ICE-TCP (RFC 6544): rtcam also listens on TCP at the media port and offers passive TCP
    /// candidates, for viewers whose network lets no UDP through.
    pub tcp: bool,
    /// STUN servers, `stun:host[:port]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stun: Vec<String>,
    /// The public address of the media port (a port forward or 1:1 NAT of `rtc_port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<IpAddr>,
    /// TURN servers, given to viewers (`Link` headers of the WHEP answer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub turn: Vec<TurnConfig>,
}

/// A TURN server rtcam allocates on, resolved: where, how it is reached, its credentials.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnServer {
    pub addr: std::net::SocketAddr,
    /// Over TCP (else UDP, from the media port).
    pub tcp: bool,
    pub auth: TurnConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// `turn:host[:port][?transport=udp|tcp]` or `turns:...` (TLS).
    pub url: String,
    /// Long-term credentials (coturn's `lt-cred-mech`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The shared secret of the TURN REST scheme (coturn's `use-auth-secret`): each viewer gets
    /// its own credentials, valid for `ttl_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub ttl_s: u32,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            tcp: true,
            stun: Vec::new(),
            public_ip: None,
            turn: Vec::new(),
        }
    }
}

impl TurnConfig {
    /// The username and password to use at `unix_now`: the long-term pair, or ones minted
    /// from the TURN REST secret (username `<expiry>:rtcam`, password
    /// base64(HMAC-SHA1(secret, username)), as coturn's `use-auth-secret` checks them),
    /// valid for `ttl_s`. None without either.
    pub(crate) fn credentials(&self, unix_now: u64) -> Option<(String, String)> {
        use base64ct::{Base64, Encoding};
        match (&self.username, &self.credential, &self.secret) {
            (Some(user), Some(credential), _) => Some((user.clone(), credential.clone())),
            (_, _, Some(secret)) => {
                let username = format!("{}:rtcam", unix_now + u64::from(self.ttl_s));
                let mac = str0m::crypto::from_feature_flags()
                    .sha1_hmac_provider
                    .sha1_hmac(secret.as_bytes(), &[username.as_bytes()]);
                Some((username, Base64::encode_string(&mac)))
            }
            _ => None,
        }
    }
}

/// What `--print-config` shows instead of a secret.
pub const REDACTED: &str = "(redacted)";

impl IceConfig {
    /// The config with credentials and secrets replaced by [`REDACTED`].
    pub fn redacted(&self) -> IceConfig {
        let hide = |s: &Option<String>| s.as_ref().map(|_| REDACTED.to_owned());
        IceConfig {
            turn: self
                .turn
                .iter()
                .map(|t| TurnConfig {
                    credential: hide(&t.credential),
                    secret: hide(&t.secret),
                    ..t.clone()
                })
                .collect(),
            ..self.clone()
        }
    }

    /// The first problem as `(key, message)`; `Ok` when there is none.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        for (n, url) in self.stun.iter().enumerate() {
            let entry = |why: &str| ("ice.stun", format!("entry {}: {why}", n + 1));
            let parsed = IceUrl::parse(url).map_err(|e| entry(&e))?;
            if parsed.scheme != Scheme::Stun {
                return Err(entry("must be a stun: URL"));
            }
        }
        for (n, turn) in self.turn.iter().enumerate() {
            let entry = |why: &str| ("ice.turn", format!("entry {}: {why}", n + 1));
            let parsed = IceUrl::parse(&turn.url).map_err(|e| entry(&format!("url: {e}")))?;
            if !matches!(parsed.scheme, Scheme::Turn | Scheme::Turns) {
                return Err(entry("url must be a turn: or turns: URL"));
            }
            match (&turn.username, &turn.credential, &turn.secret) {
                (Some(_), Some(_), None) | (None, None, Some(_)) => {}
                _ => {
                    return Err(entry(
                        "give username and credential, or secret (TURN REST), not both",
                    ));
                }
            }
            for (field, value) in [
                ("username", &turn.username),
                ("credential", &turn.credential),
                ("secret", &turn.secret),
            ] {
                if let Some(v) = value
                    && (v.is_empty()
                        || !v
                            .chars()
                            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\'))
                {
                    return Err(entry(&format!(
                        "{field} must be printable ASCII without spaces, quotes or backslashes"
                    )));
                }
            }
            if turn.secret.is_some() && !(60..=7 * 86_400).contains(&turn.ttl_s) {
                return Err(entry("ttl_s must be from 60 to 604800 seconds"));
            }
        }
        Ok(())
    }
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            url: String::new(),
            username: None,
            credential: None,
            secret: None,
            ttl_s: 86_400,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Stun,
    Turn,
    Turns,
}

/// A parsed STUN or TURN URL (RFC 7064, RFC 7065).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl {
    pub scheme: Scheme,
    /// A name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// `?transport=tcp`: TURN over TCP (or TLS for `turns:`).
    pub tcp: bool,
}

impl IceUrl {
    pub fn parse(url: &str) -> Result<IceUrl, String> {
        let (scheme, rest) = url
            .split_once(':')
            .ok_or("must look like stun:host:port or turn:host:port")?;
        let scheme = match scheme {
            "stun" => Scheme::Stun,
            "turn" => Scheme::Turn,
            "turns" => Scheme::Turns,
            _ => return Err(format!("unknown scheme {scheme:?} (stun, turn or turns)")),
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let tcp = match query {
            "" => false,
            "transport=udp" if scheme != Scheme::Stun => false,
            "transport=tcp" if scheme != Scheme::Stun => true,
            _ => return Err(format!("unknown query {query:?} (transport=udp or tcp)")),
        };
        let default_port = if scheme == Scheme::Turns { 5349 } else { 3478 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("bad port {p:?}"))?,
            None => default_port,
        };
        let valid_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if !valid_host {
            return Err(format!("bad host {host:?}"));
        }
        Ok(IceUrl {
            scheme,
            host: host.to_owned(),
            port,
            tcp,
        })
    }
}

impl fmt::Display for IceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Stun => "stun",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}:[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{scheme}:{}:{}", self.host, self.port)?;
        }
        if self.scheme != Scheme::Stun {
            write!(f, "?transport={}", if self.tcp { "tcp" } else { "udp" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports_and_transports() {
        let u = IceUrl::parse("stun:stun.l.google.com:19302").expect("valid");
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Stun, "stun.l.google.com", 19302)
        );
        let u = IceUrl::parse("turn:198.18.5.1?transport=tcp").expect("valid");
        assert_eq!((u.port, u.tcp), (3478, true));
        assert_eq!(u.to_string(), "turn:198.18.5.1:3478?transport=tcp");
        let u = IceUrl::parse("turns:[2001:db8::1]").expect("valid");
        assert_eq!((u.host.as_str(), u.port), ("2001:db8::1", 5349));
        for bad in [
            "stun",
            "http://x",
            "stun:",
            "stun:host:0",
            "stun:h?transport=tcp",
            "turn:a b",
        ] {
            assert!(IceUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn turn_needs_one_kind_of_credentials_and_secrets_are_redacted() {
        let mut ice = IceConfig {
            turn: vec![TurnConfig {
                url: "turn:turn.example.net".into(),
                username: Some("cam".into()),
                credential: Some("hunter2hunter2".into()),
                ..TurnConfig::default()
            }],
            ..IceConfig::default()
        };
        assert_eq!(ice.check(), Ok(()));
        let shown = ice.redacted();
        assert_eq!(shown.turn[0].credential.as_deref(), Some(REDACTED));
        assert_eq!(shown.turn[0].username.as_deref(), Some("cam"));
        ice.turn[0].secret = Some("s3cret".into());
        assert!(ice.check().is_err());
        ice.turn[0].username = None;
        ice.turn[0].credential = None;
        assert_eq!(ice.check(), Ok(()));
        assert_eq!(ice.redacted().turn[0].secret.as_deref(), Some(REDACTED));
        ice.stun = vec!["turn:x".into()];
        assert!(ice.check().is_err());
    }
}
