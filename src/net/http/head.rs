//! Parsing a request head and deciding what it means for the connection: how long the body is,
//! whether the client waits for `100 Continue`, whether the connection stays open.

use std::net::SocketAddr;

use super::{Request, has_token, header_values};

/// Header fields beyond this many are treated like a head that is too large.
const MAX_HEADERS: usize = 64;

/// The request line and header fields of one request.
#[derive(Debug)]
pub(super) struct Head {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// HTTP/1.0 rather than 1.1 (the only two `httparse` accepts).
    pub http10: bool,
    /// Bytes the head took, its blank line included: the body starts here.
    pub len: usize,
}

/// Why a request is answered with an error status instead of reaching the handler. Each one
/// closes the connection: after it the server can no longer tell where the next request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    Malformed,
    HeadTooLarge,
    LengthRequired,
    BodyTooLarge,
    /// Chunked (or otherwise encoded) request bodies are not supported.
    TransferEncoding,
    /// The request did not arrive whole within the read timeout.
    Timeout,
}

impl Refusal {
    pub(super) fn status(self) -> u16 {
        match self {
            Refusal::Malformed => 400,
            Refusal::Timeout => 408,
            Refusal::LengthRequired => 411,
            Refusal::BodyTooLarge => 413,
            Refusal::HeadTooLarge => 431,
            Refusal::TransferEncoding => 501,
        }
    }

    /// The one-line explanation in the response body.
    pub(super) fn message(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed request",
            Refusal::Timeout => "request not received in time",
            Refusal::LengthRequired => "Content-Length required",
            Refusal::BodyTooLarge => "request body too large",
            Refusal::HeadTooLarge => "request head too large",
            Refusal::TransferEncoding => "Transfer-Encoding not supported",
        }
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete.
pub(super) fn parse(buf: &[u8], max_head_bytes: usize) -> Result<Option<Head>, Refusal> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        // Still incomplete although longer than allowed: the whole head will be longer still.
        Ok(httparse::Status::Partial) if buf.len() > max_head_bytes => {
            return Err(Refusal::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::HeadTooLarge),
        Err(_) => return Err(Refusal::Malformed),
    };
    if len > max_head_bytes {
        return Err(Refusal::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Refusal::Malformed);
    };
    let headers = parsed
        .headers
        .iter()
        .map(|header| {
            // Names are tokens (httparse checked); values may hold any octet, and none of the
            // ones the server or the routes read is ever outside ASCII.
            let value = String::from_utf8_lossy(header.value).into_owned();
            (header.name.to_owned(), value)
        })
        .collect();
    Ok(Some(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        http10: version == 0,
        len,
    }))
}

impl Head {
    /// The body's length from `Content-Length`, or why the request can't be read.
    pub(super) fn body_length(&self, max_body_bytes: usize) -> Result<usize, Refusal> {
        if header_values(&self.headers, "transfer-encoding")
            .next()
            .is_some()
        {
            return Err(Refusal::TransferEncoding);
        }
        // Repeated or listed values ("5, 5") are allowed as long as they agree (RFC 9110 8.6);
        // disagreeing ones are the classic request-smuggling vector.
        let mut length = None;
        for item in header_values(&self.headers, "content-length").flat_map(|v| v.split(',')) {
            let value = parse_decimal(item.trim()).ok_or(Refusal::Malformed)?;
            if length.is_some_and(|earlier| earlier != value) {
                return Err(Refusal::Malformed);
            }
            length = Some(value);
        }
        match length {
            None if matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") => {
                Err(Refusal::LengthRequired)
            }
            None => Ok(0),
            Some(length) => usize::try_from(length)
                .ok()
                .filter(|&length| length <= max_body_bytes)
                .ok_or(Refusal::BodyTooLarge),
        }
    }

    /// Whether the client asked to keep the connection open after this request.
    pub(super) fn keep_alive(&self) -> bool {
        if has_token(&self.headers, "connection", "close") {
            false
        } else if self.http10 {
            has_token(&self.headers, "connection", "keep-alive")
        } else {
            true
        }
    }

    /// Whether the client holds back the body until it sees `100 Continue`. HTTP/1.0 clients
    /// don't know the interim response (RFC 9110 10.1.1).
    pub(super) fn expects_continue(&self) -> bool {
        !self.http10
            && header_values(&self.headers, "expect")
                .any(|value| value.trim().eq_ignore_ascii_case("100-continue"))
    }

    pub(super) fn into_request(self, body: Vec<u8>, peer: SocketAddr) -> Request {
        Request {
            method: self.method,
            target: self.target,
            headers: self.headers,
            body,
            peer,
        }
    }
}

/// A non-negative decimal as `Content-Length` allows it: digits only (no sign, no blanks).
/// Absurdly long numbers saturate, which the size limit then refuses.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |number, digit| {
        number
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        match parse(text.as_bytes(), 8192) {
            Ok(Some(head)) => head,
            other => panic!("{text:?} parsed as {other:?}"),
        }
    }

    fn body_length(headers: &str) -> Result<usize, Refusal> {
        head(&format!("POST / HTTP/1.1\r\n{headers}\r\n")).body_length(1000)
    }

    #[test]
    fn parses_request_line_and_headers() {
        let head = head("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two: a b\r\n\r\nrest");
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/a?b=1");
        assert!(!head.http10);
        assert_eq!(
            head.headers,
            [("Host".into(), "x".into()), ("X-Two".into(), "a b".into())]
        );
        assert_eq!(
            head.len,
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two: a b\r\n\r\n".len()
        );
    }

    #[test]
    fn incomplete_head_waits_for_more_until_too_large() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost:", 100), Ok(None)));
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(200));
        assert_eq!(
            parse(long.as_bytes(), 100).map(|_| ()),
            Err(Refusal::HeadTooLarge)
        );
    }

    #[test]
    fn complete_head_over_the_limit_is_too_large() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(200));
        assert_eq!(
            parse(long.as_bytes(), 100).map(|_| ()),
            Err(Refusal::HeadTooLarge)
        );
    }

    #[test]
    fn too_many_headers_is_too_large() {
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            parse(many.as_bytes(), 100_000).map(|_| ()),
            Err(Refusal::HeadTooLarge)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for garbage in [
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "G\0T / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse(garbage.as_bytes(), 8192).map(|_| ()),
                Err(Refusal::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn content_length_must_be_plain_digits_and_agree() {
        assert_eq!(body_length("Content-Length: 5\r\n"), Ok(5));
        assert_eq!(body_length("Content-Length: 5, 5\r\n"), Ok(5));
        assert_eq!(
            body_length("Content-Length: 5\r\nContent-Length: 5\r\n"),
            Ok(5)
        );
        assert_eq!(body_length("Content-Length: 0\r\n"), Ok(0));
        for bad in ["+5", "-1", "5 5", "0x10", "", "5,6"] {
            assert_eq!(
                body_length(&format!("Content-Length: {bad}\r\n")),
                Err(Refusal::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            body_length("Content-Length: 5\r\nContent-Length: 6\r\n"),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn body_length_limits_and_requirements() {
        assert_eq!(
            body_length("Content-Length: 1001\r\n"),
            Err(Refusal::BodyTooLarge)
        );
        assert_eq!(
            body_length("Content-Length: 99999999999999999999999999\r\n"),
            Err(Refusal::BodyTooLarge)
        );
        assert_eq!(body_length(""), Err(Refusal::LengthRequired));
        assert_eq!(
            body_length("Transfer-Encoding: chunked\r\n"),
            Err(Refusal::TransferEncoding)
        );
        assert_eq!(head("GET / HTTP/1.1\r\n\r\n").body_length(1000), Ok(0));
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let keep = |text: &str| head(text).keep_alive();
        assert!(keep("GET / HTTP/1.1\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!keep(
            "GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n"
        ));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!keep(
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
        ));
    }

    #[test]
    fn continue_only_for_http11_clients_that_ask() {
        assert!(head("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n").expects_continue());
        assert!(!head("POST / HTTP/1.1\r\n\r\n").expects_continue());
        assert!(!head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expects_continue());
    }
}
