//! SDP fragments (`application/trickle-ice-sdpfrag`, RFC 8840) as WHEP's PATCH carries them:
//! trickled candidates, and the new credentials and candidates of an ICE restart.
//!
//! ```text
//! a=ice-ufrag:EsAw                      (only for an ICE restart, or echoing the current one)
//! a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
//! m=audio 9 UDP/TLS/RTP/SAVPF 111       (the bundle's first m-line; ignored: everything is
//! a=mid:0                                bundled on one transport)
//! a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw
//! a=end-of-candidates
//! ```

use std::fmt;

/// Longest fragment taken: a browser's full set of candidates is a few KiB.
pub(crate) const MAX_FRAG_BYTES: usize = 16 * 1024;
/// Most candidates taken from one fragment.
const MAX_CANDIDATES: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SdpFrag {
    /// `a=ice-ufrag` and `a=ice-pwd`, when the fragment has both.
    pub credentials: Option<(String, String)>,
    /// The values of the `a=candidate` lines (`candidate:...`), in order.
    pub candidates: Vec<String>,
    pub end_of_candidates: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FragError {
    TooLarge,
    NotText,
    /// A line the fragment may not hold, or one of ufrag/pwd without the other.
    Malformed(&'static str),
    TooManyCandidates,
}

impl fmt::Display for FragError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragError::TooLarge => write!(f, "the SDP fragment is over {MAX_FRAG_BYTES} bytes"),
            FragError::NotText => write!(f, "the SDP fragment is not UTF-8 text"),
            FragError::Malformed(why) => write!(f, "the SDP fragment is malformed: {why}"),
            FragError::TooManyCandidates => {
                write!(f, "the SDP fragment has over {MAX_CANDIDATES} candidates")
            }
        }
    }
}

impl SdpFrag {
    pub(crate) fn parse(body: &[u8]) -> Result<SdpFrag, FragError> {
        if body.len() > MAX_FRAG_BYTES {
            return Err(FragError::TooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| FragError::NotText)?;
        let mut ufrag = None;
        let mut pwd = None;
        let mut frag = SdpFrag::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(value) = line.strip_prefix("a=ice-ufrag:") {
                ufrag = Some(ice_char_token(value, 4, 256, "a=ice-ufrag")?);
            } else if let Some(value) = line.strip_prefix("a=ice-pwd:") {
                pwd = Some(ice_char_token(value, 22, 256, "a=ice-pwd")?);
            } else if let Some(value) = line.strip_prefix("a=candidate:") {
                if frag.candidates.len() == MAX_CANDIDATES {
                    return Err(FragError::TooManyCandidates);
                }
                frag.candidates.push(format!("candidate:{}", value.trim()));
            } else if line == "a=end-of-candidates" {
                frag.end_of_candidates = true;
            } else if line.starts_with("m=") || line.starts_with("a=") {
                // The m-line and a=mid say which transport; with max-bundle there is one. Other
                // attributes (a=ice-options:trickle, a=group) change nothing here.
            } else {
                return Err(FragError::Malformed("only m= and a= lines may appear"));
            }
        }
        frag.credentials = match (ufrag, pwd) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => {
                return Err(FragError::Malformed(
                    "a=ice-ufrag and a=ice-pwd go together",
                ));
            }
        };
        Ok(frag)
    }
}

/// An `ice-char` token (RFC 8839: ALPHA / DIGIT / "+" / "/") of `min..=max` characters.
fn ice_char_token(
    value: &str,
    min: usize,
    max: usize,
    what: &'static str,
) -> Result<String, FragError> {
    let value = value.trim();
    let valid = (min..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(FragError::Malformed(what))
    }
}

/// The fragment of a 200 answer to an ICE restart: our new credentials and candidates.
pub(crate) fn restart_answer(ufrag: &str, pwd: &str, mid: &str, candidates: &[String]) -> String {
    let mut out = format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
    out.push_str("m=video 9 UDP/TLS/RTP/SAVPF 0\r\n");
    out.push_str(&format!("a=mid:{mid}\r\n"));
    for candidate in candidates {
        out.push_str(&format!("a={candidate}\r\n"));
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}

/// The fragment a WHEP client PATCHes: its `offer`'s credentials, the bundle's m-line and mid,
/// and `candidates` (attribute values, `candidate:...`), then the end of gathering.
#[cfg(any(test, feature = "client"))]
pub(crate) fn client_fragment(offer: &str, candidates: &[String]) -> String {
    let attribute = |prefix: &str| {
        offer
            .lines()
            .find_map(|l| l.trim_end().strip_prefix(prefix))
            .unwrap_or_default()
    };
    let mid = match attribute("a=mid:") {
        "" => "0",
        mid => mid,
    };
    let mut out = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{mid}\r\n",
        attribute("a=ice-ufrag:"),
        attribute("a=ice-pwd:")
    );
    for candidate in candidates {
        out.push_str(&format!("a={candidate}\r\n"));
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}

/// A WHEP client's view of the server after an ICE restart: the earlier `answer` with the
/// credentials and candidates of the server's 200 fragment in place of its own (WHEP does not
/// renegotiate anything else).
#[cfg(any(test, feature = "client"))]
pub(crate) fn answer_after_restart(answer: &str, frag: &SdpFrag) -> Option<String> {
    let (ufrag, pwd) = frag.credentials.as_ref()?;
    let mut out = String::with_capacity(answer.len());
    let mut candidates_placed = false;
    for line in answer.lines().map(str::trim_end) {
        if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            if !candidates_placed {
                for candidate in &frag.candidates {
                    out.push_str(&format!("a={candidate}\r\n"));
                }
                out.push_str("a=end-of-candidates\r\n");
                candidates_placed = true;
            }
        } else if line.starts_with("a=ice-ufrag:") {
            out.push_str(&format!("a=ice-ufrag:{ufrag}\r\n"));
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str(&format!("a=ice-pwd:{pwd}\r\n"));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickle_fragment_yields_its_candidates() {
        let body = b"a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
            m=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
            a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
            a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host\r\n\
            a=end-of-candidates\r\n";
        let frag = SdpFrag::parse(body).expect("valid");
        assert_eq!(
            frag.credentials,
            Some(("EsAw".into(), "P2uYro0UCOQ4zxjKXaWCBui1".into()))
        );
        assert_eq!(frag.candidates.len(), 2);
        assert!(frag.candidates[0].starts_with("candidate:1387637174 1 udp"));
        assert!(frag.end_of_candidates);
    }

    #[test]
    fn a_candidate_alone_is_a_fragment() {
        let frag = SdpFrag::parse(b"a=candidate:1 1 udp 1 192.0.2.1 9 typ host\n").expect("ok");
        assert_eq!(frag.credentials, None);
        assert_eq!(frag.candidates.len(), 1);
    }

    #[test]
    fn bad_fragments_are_refused_with_a_reason() {
        let cases: [(&[u8], FragError); 5] = [
            (
                b"a=ice-ufrag:EsAw\r\n",
                FragError::Malformed("a=ice-ufrag and a=ice-pwd go together"),
            ),
            (
                b"a=ice-ufrag:E\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",
                FragError::Malformed("a=ice-ufrag"),
            ),
            (
                b"v=0\r\n",
                FragError::Malformed("only m= and a= lines may appear"),
            ),
            (b"\xff\xfe", FragError::NotText),
            (&[b'a'; MAX_FRAG_BYTES + 1], FragError::TooLarge),
        ];
        for (body, expected) in cases {
            assert_eq!(SdpFrag::parse(body), Err(expected));
        }
        let many = "a=candidate:1 1 udp 1 192.0.2.1 9 typ host\n".repeat(MAX_CANDIDATES + 1);
        assert_eq!(
            SdpFrag::parse(many.as_bytes()),
            Err(FragError::TooManyCandidates)
        );
    }

    #[test]
    fn a_restart_answer_parses_back() {
        let text = restart_answer(
            "abcd",
            "0123456789012345678901",
            "0",
            &["candidate:1 1 udp 2130706431 192.0.2.1 8555 typ host".into()],
        );
        let frag = SdpFrag::parse(text.as_bytes()).expect("our own fragment parses");
        assert_eq!(
            frag.credentials,
            Some(("abcd".into(), "0123456789012345678901".into()))
        );
        assert_eq!(frag.candidates.len(), 1);
    }
}
