//! The uplink transport: one HTTP/1.1 POST per batch over embassy-net TCP,
//! with the device's bearer token. Request and response framing come from
//! `uplink::http` (host-tested).

use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::TcpSocket;
use embassy_net::Stack;
use embassy_time::Duration;
use embedded_io_async::Write;
use uplink::http::{parse_response, write_request_head, Response, ServerUrl};
use uplink::{Ack, PostError, Transport};

/// Connect, write and read each give up after this long.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Socket buffers: the request head and body go through `tx` in pieces; the
/// ack is 26 bytes plus headers.
pub struct Buffers {
    rx: [u8; 512],
    tx: [u8; 1536],
    head: [u8; 384],
    response: [u8; 512],
}

impl Buffers {
    /// Zeroed (const, for a static).
    pub const fn new() -> Self {
        Buffers {
            rx: [0; 512],
            tx: [0; 1536],
            head: [0; 384],
            response: [0; 512],
        }
    }
}

/// Posts to the configured server.
pub struct HttpTransport<'a> {
    /// Network stack.
    pub stack: Stack<'static>,
    /// Parsed server URL.
    pub url: ServerUrl<'a>,
    /// Bearer token.
    pub token: &'a str,
    /// Work buffers.
    pub buffers: &'a mut Buffers,
}

impl HttpTransport<'_> {
    async fn resolve(&self) -> Result<embassy_net::IpAddress, PostError> {
        if let Ok(v4) = self.url.host.parse::<core::net::Ipv4Addr>() {
            return Ok(embassy_net::IpAddress::Ipv4(v4));
        }
        let addrs = self
            .stack
            .dns_query(self.url.host, DnsQueryType::A)
            .await
            .map_err(|_| PostError::NoNetwork)?;
        addrs.first().copied().ok_or(PostError::NoNetwork)
    }
}

impl Transport for HttpTransport<'_> {
    async fn post(&mut self, body: &[u8]) -> Result<Ack, PostError> {
        if !self.stack.is_config_up() {
            return Err(PostError::NoNetwork);
        }
        let addr = self.resolve().await?;
        let head_len =
            write_request_head(&self.url, self.token, body.len(), &mut self.buffers.head)
                .ok_or(PostError::Connection)?;
        let Buffers {
            rx,
            tx,
            head,
            response,
        } = &mut *self.buffers;
        let mut socket = TcpSocket::new(self.stack, rx, tx);
        socket.set_timeout(Some(TIMEOUT));
        socket
            .connect((addr, self.url.port))
            .await
            .map_err(|_| PostError::Connection)?;
        let sent = async {
            socket.write_all(&head[..head_len]).await?;
            socket.write_all(body).await?;
            socket.flush().await
        }
        .await;
        if sent.is_err() {
            socket.abort();
            return Err(PostError::Connection);
        }
        let mut filled = 0;
        let result = loop {
            if filled == response.len() {
                break Err(PostError::Connection);
            }
            match socket.read(&mut response[filled..]).await {
                Ok(0) => match parse_response(&response[..filled], true) {
                    Response::Done(result) => break result,
                    Response::Incomplete => break Err(PostError::Connection),
                },
                Ok(n) => {
                    filled += n;
                    if let Response::Done(result) = parse_response(&response[..filled], false) {
                        break result;
                    }
                }
                Err(_) => break Err(PostError::Connection),
            }
        };
        socket.close();
        result
    }
}
