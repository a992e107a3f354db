//! str0m's errors about an offer, said for people.
//!
//! What str0m says goes into the 400 body and the log, so it is not passed on as it is: its
//! parse errors come from combine and name the failing position as a pointer into memory
//! (`Parse error at PointerOffset(0x7f…)`) followed by lists of tokens, and some of its other
//! messages carry `Debug` text. Messages that are already plain sentences are kept (they say
//! what is wrong, e.g. "Media is missing a=mid"); anything else becomes a fixed sentence.

use str0m::RtcError;
use str0m::error::SdpError;

use super::OfferError;

/// The offer did not parse as SDP.
pub(super) fn unparsable(sdp: &str, _error: &SdpError) -> OfferError {
    // combine's message only locates the error, as a pointer: useless to a person, so the
    // hint comes from the offer itself.
    let why = if sdp.trim().is_empty() {
        "the body is empty"
    } else if !sdp.starts_with("v=") {
        "it is not SDP (an offer begins with the line v=0)"
    } else {
        "it is not valid SDP (RFC 8866)"
    };
    OfferError::Malformed(why.into())
}

/// str0m would not take the offer.
pub(super) fn refused(error: &RtcError) -> OfferError {
    match error {
        RtcError::Sdp(SdpError::Inconsistent(why)) => {
            OfferError::Malformed(plain(why).unwrap_or_else(|| "it contradicts itself".into()))
        }
        RtcError::Sdp(SdpError::ParseError(_)) => {
            OfferError::Malformed("it is not valid SDP (RFC 8866)".into())
        }
        RtcError::RemoteSdp(why) => OfferError::Rejected(
            plain(why).unwrap_or_else(|| "the offer could not be processed".into()),
        ),
        _ => OfferError::Rejected("the offer could not be processed".into()),
    }
}

/// The message's first line, lower-cased at the start to follow a colon, if it reads as a
/// plain sentence: short, printable, no pointers, no `Debug` structs.
fn plain(message: &str) -> Option<String> {
    let line = message.lines().next()?.trim();
    let readable = !line.is_empty()
        && line.len() <= 160
        && line.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && !line.contains("0x")
        && !line.contains(['{', '}', '[', ']'])
        && !line.contains("Some(")
        && !line.contains("Offset(");
    if !readable {
        return None;
    }
    let mut chars = line.chars();
    let first = chars.next()?;
    Some(first.to_ascii_lowercase().to_string() + chars.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::change::SdpOffer;

    /// What a person must never be shown: pointers, parser positions, `Debug` structs.
    fn assert_plain(text: &str) {
        for bad in ["0x", "PointerOffset", "{", "}", "Some(", "\n"] {
            assert!(!text.contains(bad), "{bad:?} in {text:?}");
        }
    }

    #[test]
    fn unparsable_offers_get_a_sentence_without_pointers() {
        for sdp in [
            "",
            "   \r\n",
            "v=0\r\nthis is not sdp\r\n",
            "v=0\r\no=garbage\r\n",
            "\u{0}\u{1}\u{7f}garbage",
            "hello",
        ] {
            let Err(e) = SdpOffer::from_sdp_string(sdp) else {
                panic!("{sdp:?} parsed");
            };
            // What str0m itself says, for the record of why this mapping exists.
            assert!(e.to_string().contains("PointerOffset(0x"), "{e}");
            let text = unparsable(sdp, &e).to_string();
            assert_plain(&text);
            assert!(text.starts_with("malformed SDP offer: "), "{text}");
        }
        let empty = SdpOffer::from_sdp_string("").unwrap_err();
        assert!(unparsable("", &empty).to_string().contains("empty"));
        let other = SdpOffer::from_sdp_string("hello").unwrap_err();
        assert!(unparsable("hello", &other).to_string().contains("v=0"));
    }

    #[test]
    fn plain_messages_are_kept_and_the_rest_replaced() {
        let missing = RtcError::RemoteSdp("No m-lines in offer".into());
        assert_eq!(
            refused(&missing).to_string(),
            "offer not accepted: no m-lines in offer"
        );
        let inconsistent = RtcError::Sdp(SdpError::Inconsistent(
            "Media is missing a=mid: video UDP/TLS/RTP/SAVPF".into(),
        ));
        assert_eq!(
            refused(&inconsistent).to_string(),
            "malformed SDP offer: media is missing a=mid: video UDP/TLS/RTP/SAVPF"
        );
        for not_plain in [
            RtcError::RemoteSdp("at PointerOffset(0x7ffd5a3c1e20)".into()),
            RtcError::RemoteSdp("rid: Some(Rid(\"a\"))".into()),
            RtcError::RemoteSdp("bad\u{1b}[31m escape".into()),
            RtcError::Sdp(SdpError::ParseError(
                "Parse error at PointerOffset(0x1)".into(),
            )),
            RtcError::ChangesOutOfOrder,
        ] {
            let text = refused(&not_plain).to_string();
            assert_plain(&text);
            assert!(!text.ends_with(": "), "{text}");
        }
    }
}
