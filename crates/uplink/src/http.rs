//! The HTTP/1.1 framing of an uplink post, without I/O: the request head
//! the device writes before the batch body, and the parser of the server's
//! response. Kept here, not in the firmware, so it is tested on the host.

use crate::ack::{Ack, ACK_BYTES};
use crate::device::PostError;

/// Media type of a batch body.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.teleinfo.batch";
/// Media type of an ack body.
pub const ACK_CONTENT_TYPE: &str = "application/vnd.teleinfo.ack";

/// Where the device posts: from a `http://host[:port]/path` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerUrl<'a> {
    /// Host name or IPv4 literal.
    pub host: &'a str,
    /// TCP port (80 when absent).
    pub port: u16,
    /// Path, starting with `/`.
    pub path: &'a str,
}

/// Why a URL is not usable by the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// Not `http://` (the device has no TLS stack; see docs/firmware.md).
    UnsupportedScheme,
    /// Empty host.
    MissingHost,
    /// Port not a number in 1..=65535.
    BadPort,
}

impl<'a> ServerUrl<'a> {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or(UrlError::UnsupportedScheme)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let port: u16 = port.parse().map_err(|_| UrlError::BadPort)?;
                if port == 0 {
                    return Err(UrlError::BadPort);
                }
                (host, port)
            }
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        Ok(ServerUrl { host, port, path })
    }
}

/// Writes the request head for a batch of `body_len` bytes into `out`;
/// returns its length, or `None` if `out` is too small.
pub fn write_request_head(
    url: &ServerUrl<'_>,
    token: &str,
    body_len: usize,
    out: &mut [u8],
) -> Option<usize> {
    let mut len_digits = [0u8; 20];
    let len_text = decimal(body_len as u64, &mut len_digits);
    let mut port_digits = [0u8; 20];
    let port_text = decimal(u64::from(url.port), &mut port_digits);
    let parts: [&[u8]; 15] = [
        b"POST ",
        url.path.as_bytes(),
        b" HTTP/1.1\r\nHost: ",
        url.host.as_bytes(),
        b":",
        port_text,
        b"\r\nAuthorization: Bearer ",
        token.as_bytes(),
        b"\r\nContent-Type: ",
        BATCH_CONTENT_TYPE.as_bytes(),
        b"\r\nAccept: ",
        ACK_CONTENT_TYPE.as_bytes(),
        // One request per connection: the device posts every few seconds
        // at most, and a closed connection cannot go stale behind a NAT.
        b"\r\nConnection: close\r\nContent-Length: ",
        len_text,
        b"\r\n\r\n",
    ];
    let mut at = 0;
    for part in parts {
        out.get_mut(at..at + part.len())?.copy_from_slice(part);
        at += part.len();
    }
    Some(at)
}

fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

/// What a (possibly partial) response buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// More bytes are needed.
    Incomplete,
    /// A complete response: the ack, or why it is not one.
    Done(Result<Ack, PostError>),
}

/// Parses the response read so far. `eof` tells that the server closed
/// the connection (the body then ends there if no Content-Length was given).
pub fn parse_response(buf: &[u8], eof: bool) -> Response {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if eof {
            Response::Done(Err(PostError::Connection))
        } else {
            Response::Incomplete
        };
    };
    let head = &buf[..head_end];
    let body = &buf[head_end + 4..];
    let status = match parse_status(head) {
        Some(status) => status,
        None => return Response::Done(Err(PostError::Connection)),
    };
    if status != 200 {
        // The body (an error text) is irrelevant: the status says it all.
        return Response::Done(Err(PostError::HttpStatus(status)));
    }
    let body = match content_length(head) {
        Some(len) if body.len() >= len => &body[..len],
        Some(_) if !eof => return Response::Incomplete,
        Some(_) => return Response::Done(Err(PostError::Connection)),
        None if !eof && body.len() < ACK_BYTES => return Response::Incomplete,
        None => body,
    };
    Response::Done(Ack::decode(body).map_err(PostError::BadAck))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_status(head: &[u8]) -> Option<u16> {
    // "HTTP/1.1 200 OK"
    let line = head.split(|&b| b == b'\n').next()?;
    if !line.starts_with(b"HTTP/1.") {
        return None;
    }
    let code = line.get(9..12)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')))
}

fn content_length(head: &[u8]) -> Option<usize> {
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line[..colon].eq_ignore_ascii_case(b"content-length") {
            let value = line[colon + 1..].trim_ascii();
            if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
                return None;
            }
            return Some(
                value
                    .iter()
                    .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            ServerUrl::parse("http://teleinfo:8080/api/v1/uplink"),
            Ok(ServerUrl {
                host: "teleinfo",
                port: 8080,
                path: "/api/v1/uplink"
            })
        );
        assert_eq!(
            ServerUrl::parse("http://example.org"),
            Ok(ServerUrl {
                host: "example.org",
                port: 80,
                path: "/"
            })
        );
        assert_eq!(
            ServerUrl::parse("https://x/"),
            Err(UrlError::UnsupportedScheme)
        );
        assert_eq!(ServerUrl::parse("http://:80/"), Err(UrlError::MissingHost));
        assert_eq!(ServerUrl::parse("http://h:0/"), Err(UrlError::BadPort));
        assert_eq!(ServerUrl::parse("http://h:x/"), Err(UrlError::BadPort));
    }

    #[test]
    fn request_head() {
        let url = ServerUrl::parse("http://srv:8080/api/v1/uplink").unwrap();
        let mut out = [0u8; 512];
        let n = write_request_head(&url, "s3cret", 1234, &mut out).unwrap();
        let text = core::str::from_utf8(&out[..n]).unwrap();
        assert!(text.starts_with("POST /api/v1/uplink HTTP/1.1\r\nHost: srv:8080\r\n"));
        assert!(text.contains("Authorization: Bearer s3cret\r\n"));
        assert!(text.ends_with("Content-Length: 1234\r\n\r\n"));
        assert_eq!(
            write_request_head(&url, "s3cret", 1234, &mut out[..20]),
            None
        );
    }

    #[test]
    fn responses() {
        let ack = Ack {
            boot_id: 5,
            durable_through_seq: Some(9),
            server_time_unix_ms: None,
        };
        let mut ok = b"HTTP/1.1 200 OK\r\ncontent-length: 26\r\n\r\n".to_vec();
        ok.extend_from_slice(&ack.encode());
        assert_eq!(parse_response(&ok, false), Response::Done(Ok(ack)));
        assert_eq!(
            parse_response(&ok[..ok.len() - 1], false),
            Response::Incomplete
        );
        assert_eq!(
            parse_response(&ok[..ok.len() - 1], true),
            Response::Done(Err(PostError::Connection))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 401 Unauthorized\r\n\r\n", false),
            Response::Done(Err(PostError::HttpStatus(401)))
        );
        assert_eq!(parse_response(b"HTTP/1.1 200", false), Response::Incomplete);
        assert_eq!(
            parse_response(b"garbage\r\n\r\n", false),
            Response::Done(Err(PostError::Connection))
        );
        let mut no_len = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        no_len.extend_from_slice(&ack.encode());
        assert_eq!(parse_response(&no_len, true), Response::Done(Ok(ack)));
    }
}
