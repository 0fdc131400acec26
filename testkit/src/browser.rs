//! A client that speaks exactly what the phone app speaks on the browser path: a Noise channel
//! (`Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`, snow) over a message transport, carrying frames in
//! envelopes ([`crate::proto::browser`]). Tests and benchmarks use it to play the browser; the
//! transport is a WebSocket (to the host's own front, or a relay's bridge), or (as a remote
//! bridge relays it) a QUIC stream on ALPN `peer/bridge/1` with `u16 BE length` framing.

use std::future::Future;

use iroh::endpoint::{RecvStream, SendStream};
use peer_pairing::{
    DEVICE_HELLO, Initiator, NoiseKeypair, PairingPayload, Transport, bridge_prologue,
    hello_payload, short_code,
};

use peer_proto::browser::{self, CONTROL};
use peer_proto::refusal::{Answer, parse_answer};
use peer_proto::{
    BrowserPaired as Paired, Frame, PairBrowser, Refusal, Role, StreamMessage, read_message,
    write_message,
};

/// Moves whole messages (each one Noise message).
pub trait MessageTransport: Send {
    /// Sends one message.
    fn send(&mut self, msg: &[u8]) -> impl Future<Output = std::io::Result<()>> + Send;
    /// The next message; `None` when the other side closed.
    fn recv(&mut self) -> impl Future<Output = std::io::Result<Option<Vec<u8>>>> + Send;
}

/// A QUIC stream with `u16 BE length | bytes` framing, as the bridge relays it to the host.
#[derive(Debug)]
pub struct QuicTransport {
    /// Sending half.
    pub send: SendStream,
    /// Receiving half.
    pub recv: RecvStream,
    /// The close record's code and reason, once the host sent one.
    pub closed: Option<(u16, String)>,
}

impl QuicTransport {
    /// A stream the bridge would relay.
    pub fn new(send: SendStream, recv: RecvStream) -> Self {
        QuicTransport {
            send,
            recv,
            closed: None,
        }
    }
}

impl MessageTransport for QuicTransport {
    async fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        write_message(&mut self.send, msg).await
    }

    async fn recv(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        match read_message(&mut self.recv).await? {
            Some(StreamMessage::Message(m)) => Ok(Some(m)),
            Some(StreamMessage::Close { code, reason }) => {
                self.closed = Some((code, reason));
                Ok(None)
            }
            None => Ok(None),
        }
    }
}

/// Why the browser client failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// Transport failure.
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
    /// The host closed the channel.
    #[error("the host closed the channel")]
    Closed,
    /// The host refused the handshake.
    #[error("{0}")]
    Refused(Refusal),
    /// Crypto failure (wrong key, tampered message).
    #[error("the handshake or a message did not verify")]
    Crypto,
    /// A message that makes no sense.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// What pairing gave the browser.
#[derive(Debug, Clone)]
pub struct BrowserPairing {
    /// Its role.
    pub role: Role,
    /// The host's name.
    pub host_name: String,
    /// The pre-shared key of later connections.
    pub device_psk: [u8; 32],
    /// The short code to compare with the host's.
    pub code: String,
}

/// A browser's end of an established Noise channel.
///
/// Like the web app, it pings the host on channel 0 when it has sent nothing for 2 s (checked
/// whenever it reads), since the host closes a socket that stays silent for 15 s.
pub struct BrowserClient<T> {
    io: T,
    noise: Transport,
    last_sent: std::time::Instant,
    pings: u64,
}

impl<T> std::fmt::Debug for BrowserClient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserClient").finish_non_exhaustive()
    }
}

async fn handshake<T: MessageTransport>(
    io: &mut T,
    host_id: &[u8; 32],
    host_key: &[u8; 32],
    key: &NoiseKeypair,
    psk: &[u8; 32],
    payload: &[u8],
) -> Result<Transport, BrowserError> {
    let (state, msg1) = Initiator::start(key, host_key, psk, &bridge_prologue(host_id), payload)
        .map_err(|_| BrowserError::Crypto)?;
    io.send(&msg1).await?;
    let answer = io.recv().await?.ok_or(BrowserError::Closed)?;
    let body = match parse_answer(&answer) {
        Some(Answer::Message2(body)) => body,
        Some(Answer::Refused { code: Some(r), .. }) => return Err(BrowserError::Refused(r)),
        Some(Answer::Refused { reason, .. }) => return Err(BrowserError::Protocol(reason)),
        None => return Err(BrowserError::Closed),
    };
    let (transport, _host_name) = state.finish(body).map_err(|_| BrowserError::Crypto)?;
    Ok(transport)
}

impl<T: MessageTransport> BrowserClient<T> {
    /// Pairs with the host named by `payload`, as a browser with long-term key `key`.
    pub async fn pair(
        mut io: T,
        payload: &PairingPayload,
        key: &NoiseKeypair,
        name: &str,
    ) -> Result<(Self, BrowserPairing), BrowserError> {
        let noise = handshake(
            &mut io,
            &payload.host_id,
            &payload.host_noise_key,
            key,
            payload.secret.as_bytes(),
            &hello_payload(&payload.secret.pairing_id()),
        )
        .await?;
        let code = short_code(&noise.handshake_hash());
        let mut client = BrowserClient {
            io,
            noise,
            last_sent: std::time::Instant::now(),
            pings: 0,
        };
        let confirm = Frame::PairBrowser(PairBrowser { name: name.into() });
        client.send(CONTROL, &confirm).await?;
        match client.recv().await? {
            (
                CONTROL,
                Frame::BrowserPaired(Paired {
                    role,
                    host_name,
                    device_psk,
                }),
            ) => Ok((
                client,
                BrowserPairing {
                    role,
                    host_name,
                    device_psk,
                    code,
                },
            )),
            (_, Frame::Close(c)) => Err(BrowserError::Protocol(c.reason)),
            other => Err(BrowserError::Protocol(format!(
                "expected BrowserPaired, got {other:?}"
            ))),
        }
    }

    /// Opens the channel of a paired browser.
    pub async fn connect(
        mut io: T,
        host_id: &[u8; 32],
        host_key: &[u8; 32],
        key: &NoiseKeypair,
        psk: &[u8; 32],
    ) -> Result<Self, BrowserError> {
        let noise = handshake(&mut io, host_id, host_key, key, psk, &DEVICE_HELLO).await?;
        Ok(BrowserClient {
            io,
            noise,
            last_sent: std::time::Instant::now(),
            pings: 0,
        })
    }

    /// Sends a frame on a channel.
    pub async fn send(&mut self, channel: u32, frame: &Frame) -> Result<(), BrowserError> {
        self.send_plain(&browser::encode(channel, frame)).await
    }

    /// Sends a plaintext as it is (tests of bad envelopes).
    pub async fn send_plain(&mut self, plain: &[u8]) -> Result<(), BrowserError> {
        let ct = self
            .noise
            .encrypt(plain)
            .map_err(|_| BrowserError::Crypto)?;
        self.last_sent = std::time::Instant::now();
        Ok(self.io.send(&ct).await?)
    }

    /// The next frame from the host, with its channel.
    pub async fn recv(&mut self) -> Result<(u32, Frame), BrowserError> {
        if self.last_sent.elapsed() > std::time::Duration::from_secs(2) {
            self.pings += 1;
            let ping = Frame::Ping(self.pings);
            self.send(CONTROL, &ping).await?;
        }
        let ct = self.io.recv().await?.ok_or(BrowserError::Closed)?;
        let plain = self.noise.decrypt(&ct).map_err(|_| BrowserError::Crypto)?;
        match browser::decode(&plain) {
            Ok((channel, Ok(frame))) => Ok((channel, frame)),
            Ok((channel, Err(e))) => Err(BrowserError::Protocol(format!("channel {channel}: {e}"))),
            Err(e) => Err(BrowserError::Protocol(e.to_string())),
        }
    }

    /// The transport, e.g. to read the WebSocket close code after the host closed.
    pub fn transport(&mut self) -> &mut T {
        &mut self.io
    }
}

/// A WebSocket to the mobile bridge (`ws://HOST:PORT/bridge/<host endpoint id>`), as a browser
/// opens it.
pub struct WsTransport {
    ws: tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>,
    /// The close code and reason, once the other side closed the socket.
    closed: Option<(u16, String)>,
}

impl std::fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTransport").finish_non_exhaustive()
    }
}

fn ws_err(e: tokio_websockets::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl WsTransport {
    /// Opens the WebSocket (plain `ws://` only).
    pub async fn connect(url: &str) -> std::io::Result<WsTransport> {
        Self::open(url, None).await
    }

    /// Opens the WebSocket (plain `ws://` only) from the local address `source`, so one machine
    /// can play many browsers (e.g. 127.0.0.2, 127.0.0.3, … in load tests).
    pub async fn connect_from(url: &str, source: std::net::IpAddr) -> std::io::Result<WsTransport> {
        Self::open(url, Some(source)).await
    }

    /// With `TCP_NODELAY`, as browsers open their WebSockets: without it a small frame written
    /// while another is unacknowledged waits for the delayed ACK (40 ms on Linux).
    async fn open(url: &str, source: Option<std::net::IpAddr>) -> std::io::Result<WsTransport> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        let builder = tokio_websockets::ClientBuilder::new()
            .uri(url)
            .map_err(|e| invalid(e.to_string()))?;
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
        let host = uri.host().ok_or_else(|| invalid("no host".into()))?;
        let target = tokio::net::lookup_host((host, uri.port_u16().unwrap_or(80)))
            .await?
            .next()
            .ok_or_else(|| invalid("host does not resolve".into()))?;
        let socket = match target {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        if let Some(source) = source {
            socket.bind(std::net::SocketAddr::new(source, 0))?;
        }
        socket.set_nodelay(true)?;
        let stream = socket.connect(target).await?;
        let (ws, _) = builder
            .connect_on(tokio_websockets::MaybeTlsStream::Plain(stream))
            .await
            .map_err(ws_err)?;
        Ok(WsTransport { ws, closed: None })
    }

    /// The close code and reason, once the other side closed the socket (reads and drops
    /// whatever comes before the close).
    pub async fn close_reason(&mut self) -> Option<(u16, String)> {
        use futures_util::StreamExt;
        if self.closed.is_none() {
            while let Some(Ok(msg)) = self.ws.next().await {
                if let Some((code, reason)) = msg.as_close() {
                    self.closed = Some((code.into(), reason.to_owned()));
                    break;
                }
            }
        }
        self.closed.clone()
    }
}

impl MessageTransport for WsTransport {
    async fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_websockets::Message::binary(msg.to_vec()))
            .await
            .map_err(ws_err)
    }

    async fn recv(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        use futures_util::StreamExt;
        loop {
            match self.ws.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(ws_err(e)),
                Some(Ok(msg)) if msg.is_binary() => return Ok(Some(msg.into_payload().to_vec())),
                Some(Ok(msg)) if msg.is_close() => {
                    self.closed = msg
                        .as_close()
                        .map(|(code, reason)| (code.into(), reason.to_owned()));
                    return Ok(None);
                }
                // Pings and pongs are the WebSocket's own business.
                Some(Ok(msg)) if msg.is_ping() || msg.is_pong() => continue,
                Some(Ok(_)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "text message on the bridge socket",
                    ));
                }
            }
        }
    }
}
