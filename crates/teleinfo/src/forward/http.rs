//! The uplink POST over tokio TCP, framed by `uplink::http` exactly as the
//! ESP32 firmware frames it (same request head, same response parser), so
//! the server sees one kind of device whichever sends.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uplink::http::{parse_response, write_request_head, Response, ServerUrl, UrlError};
use uplink::{Ack, PostError};

/// Connecting gives up after this long (an unreachable host, a dropped SYN).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole exchange gives up after this long: the server acks only once
/// the batch is fsync'd, which takes milliseconds, not tens of seconds.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response read; an ack is 26 bytes, an error text a few hundred.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Where and as whom to post.
#[derive(Debug, Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    path: String,
    token: String,
}

/// The outcome of one post, with a one-line explanation for the log when
/// it failed.
#[derive(Debug)]
pub struct Posted {
    pub result: Result<Ack, PostError>,
    pub detail: String,
}

impl Endpoint {
    /// `http://host[:port][/path]` (no path: the uplink endpoint
    /// `/api/v1/uplink`) and the device token.
    pub fn new(url: &str, token: &str) -> Result<Endpoint, String> {
        let parsed = ServerUrl::parse(url).map_err(|e| match e {
            UrlError::UnsupportedScheme if url.starts_with("https://") => format!(
                "--server {url}: https is not supported; teleinfo forward speaks plain HTTP like \
                 the ESP32 firmware: use http:// on the LAN or a VPN, or a local TLS tunnel \
                 (docs/forward.md)"
            ),
            UrlError::UnsupportedScheme => {
                format!("--server {url}: expected http://HOST[:PORT][/PATH]")
            }
            UrlError::MissingHost => format!("--server {url}: no host name"),
            UrlError::BadPort => format!("--server {url}: the port must be a number in 1-65535"),
        })?;
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the device token must be the printable text printed by `teleinfo device add NAME`"
                    .into(),
            );
        }
        let path = if parsed.path == "/" {
            "/api/v1/uplink"
        } else {
            parsed.path
        };
        Ok(Endpoint {
            host: parsed.host.to_string(),
            port: parsed.port,
            path: path.to_string(),
            token: token.to_string(),
        })
    }

    /// `host:port/path`, for messages.
    pub fn describe(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.path)
    }

    /// One POST of a batch body.
    pub async fn post(&self, body: &[u8]) -> Posted {
        match tokio::time::timeout(POST_TIMEOUT, self.exchange(body)).await {
            Ok(posted) => posted,
            Err(_) => Posted {
                result: Err(PostError::Connection),
                detail: format!("no answer within {} s", POST_TIMEOUT.as_secs()),
            },
        }
    }

    async fn exchange(&self, body: &[u8]) -> Posted {
        let fail = |error: PostError, detail: String| Posted {
            result: Err(error),
            detail,
        };
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Err(_) => {
                return fail(
                    PostError::Connection,
                    format!("cannot connect to {}:{}: timed out", self.host, self.port),
                )
            }
            Ok(Err(e)) => {
                // getaddrinfo failures come back as uncategorised errors
                // whose text names the lookup.
                let text = e.to_string();
                let error = if text.contains("lookup") || text.contains("resolve") {
                    PostError::NoNetwork
                } else {
                    PostError::Connection
                };
                return fail(
                    error,
                    format!("cannot connect to {}:{}: {text}", self.host, self.port),
                );
            }
            Ok(Ok(s)) => s,
        };
        let url = ServerUrl {
            host: &self.host,
            port: self.port,
            path: &self.path,
        };
        let mut head = vec![0u8; 512 + self.token.len() + self.host.len() + self.path.len()];
        let Some(n) = write_request_head(&url, &self.token, body.len(), &mut head) else {
            return fail(PostError::Connection, "request head too large".into());
        };
        head.truncate(n);
        head.extend_from_slice(body);
        if let Err(e) = stream.write_all(&head).await {
            return fail(PostError::Connection, format!("cannot send the batch: {e}"));
        }
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let (n, eof) = match stream.read(&mut chunk).await {
                Ok(0) => (0, true),
                Ok(n) => (n, false),
                Err(e) => {
                    return fail(
                        PostError::Connection,
                        format!("cannot read the answer: {e}"),
                    )
                }
            };
            buf.extend_from_slice(&chunk[..n]);
            let eof = eof || buf.len() >= MAX_RESPONSE_BYTES;
            match parse_response(&buf, eof) {
                Response::Incomplete => continue,
                Response::Done(Ok(ack)) => {
                    return Posted {
                        result: Ok(ack),
                        detail: String::new(),
                    }
                }
                Response::Done(Err(PostError::HttpStatus(status))) => {
                    // The server explains its refusals in a text body
                    // (closed after it: `Connection: close`); read a bit
                    // more of it for the log, briefly.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while buf.len() < MAX_RESPONSE_BYTES {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                    })
                    .await;
                    return fail(PostError::HttpStatus(status), status_detail(status, &buf));
                }
                Response::Done(Err(e)) => {
                    return fail(
                        e,
                        match e {
                            PostError::BadAck(a) => format!("the answer is not an ack ({a:?})"),
                            _ => "the server closed the connection without a valid answer".into(),
                        },
                    )
                }
            }
        }
    }
}

/// `HTTP 401: unknown or revoked device token; …` from a response.
fn status_detail(status: u16, response: &[u8]) -> String {
    let body = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&[][..], |i| &response[i + 4..]);
    let mut text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    // JSON error bodies: keep the message only.
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        let error = &v["error"];
        if let Some(m) = error["message"].as_str().or_else(|| error.as_str()) {
            text = m.to_string();
        }
    }
    let hint = match status {
        401 => " (check --token: it must be the one `teleinfo device add` printed)",
        403 => " (check --device-id: it must be the NAME given to `teleinfo device add`)",
        _ => "",
    };
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}{hint}")
    } else {
        format!("HTTP {status}: {text}{hint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::new("http://srv:8080", "t0k").unwrap();
        assert_eq!(e.describe(), "http://srv:8080/api/v1/uplink");
        let e = Endpoint::new("http://srv/x/uplink", "t0k").unwrap();
        assert_eq!(e.describe(), "http://srv:80/x/uplink");
        assert!(Endpoint::new("https://srv", "t")
            .unwrap_err()
            .contains("https is not supported"));
        assert!(Endpoint::new("srv:8080", "t")
            .unwrap_err()
            .contains("expected http://"));
        assert!(Endpoint::new("http://srv:99999", "t")
            .unwrap_err()
            .contains("port"));
        assert!(Endpoint::new("http://srv", "").is_err());
        assert!(Endpoint::new("http://srv", "a b").is_err());
    }

    #[test]
    fn refusals_are_explained_in_one_line() {
        let r = b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{\"error\":{\"code\":401,\"message\":\"unknown or revoked device token\"}}";
        assert_eq!(
            status_detail(401, r),
            "HTTP 401: unknown or revoked device token (check --token: it must be the one `teleinfo device add` printed)"
        );
        assert_eq!(
            status_detail(503, b"HTTP/1.1 503 x\r\n\r\nstore\nfull"),
            "HTTP 503: store full"
        );
    }
}
