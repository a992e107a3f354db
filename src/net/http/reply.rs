//! Turning a [`Response`] into the bytes on the wire.

use std::fmt::Write as _;

use super::{Response, has_token};

/// The interim response a client waiting on `Expect: 100-continue` needs before it sends the body.
pub(super) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the response says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnectionHeader {
    /// An HTTP/1.1 connection stays open unless told otherwise: nothing to say.
    Omitted,
    /// An HTTP/1.0 client that asked to keep the connection must hear that we agree.
    KeepAlive,
    Close,
}

/// Whether the handler wants the connection closed after `response`.
pub(super) fn asks_close(response: &Response) -> bool {
    has_token(&response.headers, "connection", "close")
}

/// The status line, headers and (unless `with_body` is false, as for HEAD) the body.
pub(super) fn serialize(
    response: &Response,
    with_body: bool,
    connection: ConnectionHeader,
) -> Vec<u8> {
    let status = if (100..=999).contains(&response.status) {
        response.status
    } else {
        log::warn!(
            "http: handler returned status {}, sending 500",
            response.status
        );
        500
    };
    // These statuses never have a body, and must not announce one (RFC 9110 8.6).
    let bodyless = matches!(status, 100..=199 | 204 | 304);

    let mut head = String::with_capacity(128);
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    if !bodyless {
        let _ = write!(head, "Content-Length: {}\r\n", response.body.len());
    }
    for (name, value) in &response.headers {
        if is_framing(name) {
            continue;
        }
        if !is_token(name) || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            // A value with a line break would let whatever produced it inject headers.
            log::warn!("http: dropping malformed response header {name:?}");
            continue;
        }
        let _ = write!(head, "{name}: {value}\r\n");
    }
    match connection {
        ConnectionHeader::Omitted => {}
        ConnectionHeader::KeepAlive => head.push_str("Connection: keep-alive\r\n"),
        ConnectionHeader::Close => head.push_str("Connection: close\r\n"),
    }
    head.push_str("\r\n");

    let mut bytes = head.into_bytes();
    if with_body && !bodyless {
        bytes.extend_from_slice(&response.body);
    }
    bytes
}

/// Headers the server owns: it frames the body and decides about the connection itself.
fn is_framing(name: &str) -> bool {
    ["content-length", "transfer-encoding", "connection"]
        .iter()
        .any(|owned| name.eq_ignore_ascii_case(owned))
}

/// An RFC 9110 token, the only thing a header name may be.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        // The reason phrase may be empty; clients go by the number.
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(response: &Response, with_body: bool, connection: ConnectionHeader) -> String {
        String::from_utf8(serialize(response, with_body, connection)).expect("ASCII response")
    }

    #[test]
    fn status_line_length_headers_then_body() {
        let response = Response::new(201)
            .header("Location", "/whep/1")
            .with_body("application/sdp", "v=0\r\n");
        assert_eq!(
            text(&response, true, ConnectionHeader::Omitted),
            "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nLocation: /whep/1\r\n\
             Content-Type: application/sdp\r\n\r\nv=0\r\n"
        );
    }

    #[test]
    fn head_keeps_length_but_drops_body() {
        let response = Response::text(200, "hi");
        assert_eq!(
            text(&response, false, ConnectionHeader::Close),
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn no_content_has_neither_length_nor_body() {
        let mut response = Response::new(204);
        response.body = b"ignored".to_vec();
        assert_eq!(
            text(&response, true, ConnectionHeader::KeepAlive),
            "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn handler_framing_and_broken_headers_are_not_sent() {
        let response = Response::new(200)
            .header("content-length", "99")
            .header("Transfer-Encoding", "chunked")
            .header("Connection", "close")
            .header("X-Evil", "a\r\nSet-Cookie: x")
            .header("Bad Name", "v")
            .header("X-Ok", "fine");
        assert!(asks_close(&response));
        assert_eq!(
            text(&response, true, ConnectionHeader::Omitted),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Ok: fine\r\n\r\n"
        );
    }

    #[test]
    fn out_of_range_status_becomes_500() {
        assert!(
            text(&Response::new(42), true, ConnectionHeader::Omitted)
                .starts_with("HTTP/1.1 500 Internal Server Error\r\n")
        );
    }
}
