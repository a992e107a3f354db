//! The STUN message codec (RFC 8489) shared by the server-reflexive gatherer (`stun`) and the
//! TURN client (`turn`): building requests and indications, reading what servers send.
//!
//! Our own, small: str0m's parser refuses binding responses without MESSAGE-INTEGRITY and
//! knows no TURN methods. Reading never panics: anything malformed is `None`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// RFC 8489's magic cookie, in every message's bytes 4..8.
pub(crate) const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

pub(crate) type TransId = [u8; 12];

/// Requests are sent again after 0.5, 1, 2 and 4 s (RFC 8489 §6.2.1's doubling, fewer
/// tries): a server silent for 15.5 s is not there.
pub(crate) const FIRST_RTO: Duration = Duration::from_millis(500);
pub(crate) const MAX_SENDS: u32 = 5;

// Message types: method | class (request 0x000, indication 0x010, success 0x100, error 0x110).
pub(crate) const BINDING_REQUEST: u16 = 0x0001;
pub(crate) const BINDING_SUCCESS: u16 = 0x0101;
pub(crate) const BINDING_ERROR: u16 = 0x0111;
pub(crate) const ALLOCATE: u16 = 0x0003;
pub(crate) const REFRESH: u16 = 0x0004;
pub(crate) const CREATE_PERMISSION: u16 = 0x0008;
pub(crate) const SEND_INDICATION: u16 = 0x0016;
pub(crate) const DATA_INDICATION: u16 = 0x0017;
pub(crate) const SUCCESS: u16 = 0x0100;
pub(crate) const ERROR: u16 = 0x0110;

// Attributes.
pub(crate) const MAPPED_ADDRESS: u16 = 0x0001;
pub(crate) const USERNAME: u16 = 0x0006;
pub(crate) const MESSAGE_INTEGRITY: u16 = 0x0008;
pub(crate) const ERROR_CODE: u16 = 0x0009;
pub(crate) const LIFETIME: u16 = 0x000d;
pub(crate) const XOR_PEER_ADDRESS: u16 = 0x0012;
pub(crate) const DATA: u16 = 0x0013;
pub(crate) const REALM: u16 = 0x0014;
pub(crate) const NONCE: u16 = 0x0015;
pub(crate) const XOR_RELAYED_ADDRESS: u16 = 0x0016;
pub(crate) const REQUESTED_TRANSPORT: u16 = 0x0019;
pub(crate) const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A message being built: header, then attributes in the order added.
pub(crate) struct Builder {
    bytes: Vec<u8>,
}

impl Builder {
    pub(crate) fn new(kind: u16, trans: &TransId) -> Builder {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&kind.to_be_bytes());
        bytes.extend_from_slice(&0u16.to_be_bytes());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(trans);
        Builder { bytes }
    }

    pub(crate) fn attr(mut self, kind: u16, value: &[u8]) -> Builder {
        self.bytes.extend_from_slice(&kind.to_be_bytes());
        // Values over 64 KiB cannot be (a datagram is smaller); truncating the length field
        // would only make a message the server refuses.
        self.bytes
            .extend_from_slice(&(value.len().min(0xffff) as u16).to_be_bytes());
        self.bytes.extend_from_slice(value);
        let padded = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(padded, 0);
        self
    }

    /// An XOR-…-ADDRESS attribute.
    pub(crate) fn xor_address(self, kind: u16, address: SocketAddr) -> Builder {
        let trans: TransId = self.bytes[8..20].try_into().unwrap_or_default();
        let key = xor_key(&trans);
        let mut value = vec![0, if address.is_ipv4() { 1 } else { 2 }];
        value.extend_from_slice(
            &(address.port() ^ u16::from_be_bytes([key[0], key[1]])).to_be_bytes(),
        );
        let ip: Vec<u8> = match address.ip() {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        value.extend(ip.iter().zip(key).map(|(b, k)| b ^ k));
        self.attr(kind, &value)
    }

    /// The message, with MESSAGE-INTEGRITY (HMAC-SHA1 keyed with `key`) last when given.
    pub(crate) fn finish(mut self, key: Option<&[u8]>) -> Vec<u8> {
        if let Some(key) = key {
            // The length counts the integrity attribute, which the HMAC does not cover.
            self.set_length(self.bytes.len() - 20 + 24);
            let mac = hmac(key, &self.bytes);
            self = self.attr(MESSAGE_INTEGRITY, &mac);
        }
        self.set_length(self.bytes.len() - 20);
        self.bytes
    }

    fn set_length(&mut self, length: usize) {
        let length = (length.min(0xffff) as u16).to_be_bytes();
        self.bytes[2..4].copy_from_slice(&length);
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 20] {
    str0m::crypto::from_feature_flags()
        .sha1_hmac_provider
        .sha1_hmac(key, &[data])
}

/// A message as read.
pub(crate) struct Message<'a> {
    pub(crate) kind: u16,
    pub(crate) trans: TransId,
    bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// A well-formed STUN message (header, length, cookie, attribute framing), or None.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Message<'a>> {
        let header = bytes.get(..20)?;
        let kind = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        // The two top bits are zero in STUN, which sets it apart from RTP, DTLS and ChannelData.
        if kind & 0xc000 != 0 || header[4..8] != MAGIC || bytes.len() != 20 + length {
            return None;
        }
        let trans: TransId = header[8..20].try_into().ok()?;
        let message = Message { kind, trans, bytes };
        // Every attribute must fit: a truncated one makes the message garbage.
        for item in message.attrs() {
            item?;
        }
        Some(message)
    }

    /// (kind, offset of the attribute header, value) of every attribute; None for a broken one.
    fn attrs(&self) -> impl Iterator<Item = Option<(u16, usize, &'a [u8])>> {
        let bytes = self.bytes;
        let mut at = 20;
        std::iter::from_fn(move || {
            if at >= bytes.len() {
                return None;
            }
            let Some(head) = bytes.get(at..at + 4) else {
                at = bytes.len();
                return Some(None);
            };
            let kind = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let Some(value) = bytes.get(at + 4..at + 4 + len) else {
                at = bytes.len();
                return Some(None);
            };
            let start = at;
            at += (4 + len).next_multiple_of(4);
            Some(Some((kind, start, value)))
        })
    }

    /// The first attribute of this kind (RFC 8489: later duplicates are ignored).
    pub(crate) fn attr(&self, kind: u16) -> Option<&'a [u8]> {
        self.attrs()
            .flatten()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, _, v)| v)
    }

    pub(crate) fn xor_address(&self, kind: u16) -> Option<SocketAddr> {
        address(self.attr(kind)?, Some(&self.trans))
    }

    pub(crate) fn mapped_address(&self) -> Option<SocketAddr> {
        self.xor_address(XOR_MAPPED_ADDRESS)
            .or_else(|| address(self.attr(MAPPED_ADDRESS)?, None))
    }

    /// The error response's code (e.g. 401), if any.
    pub(crate) fn error_code(&self) -> Option<u16> {
        let value = self.attr(ERROR_CODE)?;
        let class = u16::from(*value.get(2)? & 0x07);
        let number = u16::from(*value.get(3)?);
        Some(class * 100 + number)
    }

    pub(crate) fn text(&self, kind: u16) -> Option<&'a str> {
        std::str::from_utf8(self.attr(kind)?).ok()
    }

    pub(crate) fn lifetime(&self) -> Option<u32> {
        let value: [u8; 4] = self.attr(LIFETIME)?.try_into().ok()?;
        Some(u32::from_be_bytes(value))
    }

    /// Whether the MESSAGE-INTEGRITY attribute is there and right for `key`.
    pub(crate) fn integrity_ok(&self, key: &[u8]) -> bool {
        let Some((_, start, value)) = self
            .attrs()
            .flatten()
            .find(|(k, _, _)| *k == MESSAGE_INTEGRITY)
        else {
            return false;
        };
        if value.len() != 20 {
            return false;
        }
        // The HMAC covers what precedes the attribute, with a length that ends at it.
        let mut covered = self.bytes[..start].to_vec();
        let length = ((start + 24 - 20) as u16).to_be_bytes();
        covered[2..4].copy_from_slice(&length);
        subtle::ConstantTimeEq::ct_eq(&hmac(key, &covered)[..], value).into()
    }
}

fn xor_key(trans: &TransId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC);
    key[4..].copy_from_slice(trans);
    key
}

/// A (XOR-)MAPPED-ADDRESS value; `xor` is the transaction for the XOR form.
fn address(value: &[u8], xor: Option<&TransId>) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]);
    let key = xor.map(xor_key).unwrap_or_default();
    let port = port ^ u16::from_be_bytes([key[0], key[1]]);
    let ip: IpAddr = match family {
        0x01 => {
            let mut ip: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            ip.iter_mut().zip(&key).for_each(|(b, k)| *b ^= k);
            ip.into()
        }
        0x02 => {
            let mut ip: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            ip.iter_mut().zip(&key).for_each(|(b, k)| *b ^= k);
            ip.into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// splitmix64: enough to make transaction ids unguessable from outside, given a random seed.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn trans_id(&mut self) -> TransId {
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&self.next().to_be_bytes());
        id[8..].copy_from_slice(&self.next().to_be_bytes()[..4]);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.2: a sample IPv4 response, integrity keyed with the short-term password
    /// "VOkJxbRl1RmTxUk/WvJxBt"; a FINGERPRINT follows the integrity attribute.
    const RFC5769_RESPONSE: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1,
        0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
        0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00,
        0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    #[test]
    fn the_rfc_5769_response_reads_and_its_integrity_checks() {
        let m = Message::parse(&RFC5769_RESPONSE).expect("well-formed");
        assert_eq!(m.kind, BINDING_SUCCESS);
        assert_eq!(
            m.mapped_address(),
            Some("192.0.2.1:32853".parse().expect("address"))
        );
        assert!(m.integrity_ok(b"VOkJxbRl1RmTxUk/WvJxBt"));
        assert!(!m.integrity_ok(b"wrong"));
    }

    #[test]
    fn built_messages_read_back_and_carry_integrity() {
        let trans = [7u8; 12];
        let peer: SocketAddr = "198.51.100.7:4000".parse().expect("address");
        let bytes = Builder::new(CREATE_PERMISSION, &trans)
            .xor_address(XOR_PEER_ADDRESS, peer)
            .attr(USERNAME, b"cam")
            .finish(Some(b"key"));
        // header 20, peer 12, username 4+3 padded to 8, integrity 24
        assert_eq!(bytes.len(), 64);
        assert_eq!(&bytes[..4], &[0x00, 0x08, 0x00, 44]);
        let m = Message::parse(&bytes).expect("well-formed");
        assert_eq!(m.xor_address(XOR_PEER_ADDRESS), Some(peer));
        assert_eq!(m.text(USERNAME), Some("cam"));
        assert!(m.integrity_ok(b"key"));
        let v6: SocketAddr = "[2001:db8::5]:9".parse().expect("address");
        let bytes = Builder::new(SEND_INDICATION, &trans)
            .xor_address(XOR_PEER_ADDRESS, v6)
            .finish(None);
        let m = Message::parse(&bytes).expect("well-formed");
        assert_eq!(m.xor_address(XOR_PEER_ADDRESS), Some(v6));
        assert!(!m.integrity_ok(b"key"), "none there");
    }

    #[test]
    fn garbage_is_none_never_a_panic() {
        let good = Builder::new(BINDING_SUCCESS, &[1; 12])
            .attr(ERROR_CODE, &[0, 0, 4, 1])
            .finish(None);
        assert!(Message::parse(&good).is_some());
        for cut in 0..good.len() {
            assert!(Message::parse(&good[..cut]).is_none(), "cut at {cut}");
        }
        let mut long_attr = good.clone();
        long_attr[23] = 0xff; // the attribute claims more than there is
        assert!(Message::parse(&long_attr).is_none());
        let mut rtp = good.clone();
        rtp[0] = 0x80;
        assert!(Message::parse(&rtp).is_none());
        assert!(Message::parse(&[0u8; 19]).is_none());
        // Short attribute values read as None.
        let odd = Builder::new(BINDING_SUCCESS, &[1; 12])
            .attr(ERROR_CODE, &[0])
            .attr(XOR_MAPPED_ADDRESS, &[0, 1, 2])
            .attr(LIFETIME, &[0, 0])
            .finish(None);
        let m = Message::parse(&odd).expect("framing is fine");
        assert_eq!(
            (m.error_code(), m.mapped_address(), m.lifetime()),
            (None, None, None)
        );
    }
}
