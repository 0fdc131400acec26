//! Dialing a paired host and speaking the control protocol.

use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::{Endpoint, EndpointId, RelayUrl, SecretKey};

use super::hosts::KnownHost;
use crate::net::{self, ALPN_SESSION, close};
use crate::proto::{
    AgentAttach, AgentAttached, Attach, Attached, ClientHello, Frame, FrameReader, HostHello,
    NoticeKind, PROTOCOL_VERSION, ReadError, Reply, Request, RequestFrame, Watch, WireError,
    write_frame,
};

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why talking to a host failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host record is unusable.
    #[error("bad host record: {0}")]
    BadRecord(String),
    /// The host could not be reached (retryable).
    #[error("cannot reach the host: {0}")]
    Unreachable(String),
    /// The host closed the connection on purpose.
    #[error("{reason}")]
    Closed {
        /// The close code ([`crate::net::close`]).
        code: u32,
        /// The host's reason.
        reason: String,
    },
    /// The host answered with an error.
    #[error("{0}")]
    Remote(#[from] WireError),
    /// The host sent something that makes no sense here.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The host's relay cannot be used: it refused this device, or its certificate is not the
    /// pinned one. Retrying does not help.
    #[error("cannot use the host's relay: {0}")]
    Relay(#[from] net::RelayProblem),
}

impl ClientError {
    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Unreachable(_) => true,
            // Only a host that is restarting asks to be called again.
            ClientError::Closed { code, .. } => *code == close::SHUTTING_DOWN,
            _ => false,
        }
    }

    fn from_conn(e: &iroh::endpoint::ConnectionError) -> ClientError {
        match net::app_close(e) {
            Some((code, reason)) => ClientError::Closed { code, reason },
            None => ClientError::Unreachable(e.to_string()),
        }
    }

    /// The error a failed read on a stream of `conn` stands for (the host's close reason, if it
    /// closed the connection).
    pub fn from_read(e: ReadError, conn: &Connection) -> ClientError {
        if let Some(reason) = conn.close_reason() {
            return ClientError::from_conn(&reason);
        }
        match e {
            ReadError::Io(e) => ClientError::Unreachable(e.to_string()),
            ReadError::Closed | ReadError::Truncated => {
                ClientError::Unreachable("the host closed the stream".into())
            }
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

/// Dials one host; keeps its endpoint for reconnects.
#[derive(Debug)]
pub struct Dialer {
    endpoint: Endpoint,
    device: SecretKey,
    host_id: EndpointId,
    relays: Vec<RelayUrl>,
    direct: Vec<std::net::SocketAddr>,
    relay_only: bool,
    auth: net::RelayAuth,
    /// Whether the relay problem of a connection that got through anyway was reported.
    warned: std::sync::atomic::AtomicBool,
}

impl Dialer {
    /// Binds a fresh endpoint (its own random key) for talking to `host`.
    pub async fn new(
        host: &KnownHost,
        device: SecretKey,
        relay_only: bool,
    ) -> Result<Dialer, ClientError> {
        let host_id: EndpointId = host
            .endpoint_id
            .parse()
            .map_err(|_| ClientError::BadRecord(format!("endpoint id {:?}", host.endpoint_id)))?;
        let relays = host
            .relay_urls
            .iter()
            .map(|u| u.parse::<RelayUrl>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::BadRecord(format!("relay url: {e}")))?;
        let auth = host.relay_auth().map_err(ClientError::BadRecord)?;
        let endpoint = net::bind_endpoint_with(
            net::EndpointOptions {
                secret: SecretKey::generate(),
                relays: relays.clone(),
                bind: bind_for(&host.direct_addrs),
                relay_only,
                alpns: vec![],
            },
            &auth,
        )
        .await
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        Ok(Dialer {
            endpoint,
            device,
            host_id,
            relays,
            direct: host.direct_addrs.clone(),
            relay_only,
            auth,
            warned: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The local endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Connects, proves the device key and reads the host's hello.
    pub async fn connect(&self) -> Result<HostConn, ClientError> {
        // Without a direct address the relay is the only way: a relay that refuses us or fails
        // the pin ends the attempt at once, with the reason.
        let relay_is_the_way = self.relay_only || self.direct.is_empty();
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, async {
            tokio::select! {
                r = self.connect_inner() => r,
                p = self.auth.fatal(&self.endpoint), if relay_is_the_way => {
                    Err(ClientError::Relay(p))
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(ClientError::Unreachable("timed out".into())));
        match attempt {
            // A failure to reach the host is best explained by the relay's problem, if any.
            Err(ClientError::Unreachable(e)) => Err(self
                .auth
                .problem(&self.endpoint)
                .map_or(ClientError::Unreachable(e), ClientError::Relay)),
            Ok(conn) => {
                if let Some(p) = self.auth.problem(&self.endpoint)
                    && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!("connected over a direct path, but {p}");
                }
                Ok(conn)
            }
            other => other,
        }
    }

    async fn connect_inner(&self) -> Result<HostConn, ClientError> {
        let addr = net::dial_addr(self.host_id, &self.relays, &self.direct, self.relay_only);
        let conn = self
            .endpoint
            .connect(addr, ALPN_SESSION)
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let (mut send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| ClientError::from_conn(&e))?;
        let material = net::proof_material(&conn, &self.endpoint.id())
            .ok_or_else(|| ClientError::Protocol("cannot derive the connection proof".into()))?;
        let proof = self.device.sign(&crate::proto::proof_message(&material));
        let hello = Frame::ClientHello(ClientHello {
            protocol: PROTOCOL_VERSION,
            device: *self.device.public().as_bytes(),
            proof: proof.to_bytes().to_vec(),
        });
        write_frame(&mut send, &hello)
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let mut reader = FrameReader::new(recv);
        let hello = match reader.read().await {
            Ok(Frame::HostHello(h)) => h,
            Ok(Frame::Error(e)) => return Err(e.into()),
            Ok(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected HostHello, got {:?}",
                    other.frame_type()
                )));
            }
            Err(e) => {
                // A refusal arrives as a connection close; wait briefly for its reason.
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                return Err(ClientError::from_read(e, &conn));
            }
        };
        if hello.protocol != PROTOCOL_VERSION {
            conn.close(close::PROTOCOL.into(), b"protocol version mismatch");
            return Err(ClientError::Protocol(format!(
                "the host speaks session protocol {}, this client {PROTOCOL_VERSION}; update peer",
                hello.protocol
            )));
        }
        Ok(HostConn {
            conn,
            control: tokio::sync::Mutex::new(Control {
                send,
                reader,
                next_id: 1,
            }),
            hello,
        })
    }

    /// Closes the endpoint.
    pub async fn close(self) {
        self.endpoint.close().await;
    }
}

/// Bind the client's UDP socket on loopback when the host is only reachable there (tests,
/// same-machine use), else let iroh choose.
fn bind_for(direct: &[std::net::SocketAddr]) -> Option<std::net::SocketAddr> {
    let all_loopback = !direct.is_empty() && direct.iter().all(|a| a.ip().is_loopback());
    all_loopback.then(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A live, authenticated connection to a host.
#[derive(Debug)]
pub struct HostConn {
    conn: Connection,
    /// The control stream; one request at a time, so a request can run beside an attachment.
    control: tokio::sync::Mutex<Control>,
    hello: HostHello,
}

#[derive(Debug)]
struct Control {
    send: SendStream,
    reader: FrameReader<RecvStream>,
    next_id: u32,
}

impl HostConn {
    /// What the host said about itself.
    pub fn hello(&self) -> &HostHello {
        &self.hello
    }

    /// The QUIC connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Sends a request on the control stream and waits for its answer.
    ///
    /// Dropping the future after the request was written is safe (a later request skips the
    /// stale answer); dropping it in the middle of writing leaves the control stream unusable,
    /// so only do that to a connection that is being given up.
    pub async fn request(&self, request: Request) -> Result<Reply, ClientError> {
        let mut control = self.control.lock().await;
        let Control {
            send,
            reader,
            next_id,
        } = &mut *control;
        let id = *next_id;
        *next_id = next_id.wrapping_add(1);
        write_frame(send, &Frame::Request(RequestFrame { id, request }))
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        loop {
            match reader.read().await {
                Ok(Frame::Response(r)) if r.id == id => return Ok(r.result?),
                Ok(Frame::Response(_)) => continue,
                Ok(Frame::Error(e)) => return Err(e.into()),
                Ok(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected {:?} frame",
                        other.frame_type()
                    )));
                }
                Err(e) => return Err(ClientError::from_read(e, &self.conn)),
            }
        }
    }

    /// Where session `session`'s output ends on the host now (`None`: no such session).
    pub async fn output_end(&self, session: u64) -> Result<Option<u64>, ClientError> {
        match self.request(Request::ListSessions).await? {
            Reply::Sessions(list) => {
                Ok(list.iter().find(|s| s.id == session).map(|s| s.output_end))
            }
            _ => Err(ClientError::Protocol("expected the session list".into())),
        }
    }

    /// Opens a session stream and attaches.
    pub async fn attach(
        &self,
        attach: Attach,
    ) -> Result<(SendStream, FrameReader<RecvStream>, Attached), ClientError> {
        let (mut send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| ClientError::from_conn(&e))?;
        write_frame(&mut send, &Frame::Attach(attach))
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let mut reader = FrameReader::new(recv);
        match reader.read().await {
            Ok(Frame::Attached(a)) => Ok((send, reader, a)),
            Ok(Frame::Error(e)) => Err(e.into()),
            Ok(other) => Err(ClientError::Protocol(format!(
                "expected Attached, got {:?}",
                other.frame_type()
            ))),
            Err(e) => Err(ClientError::from_read(e, &self.conn)),
        }
    }

    /// Opens an agent event stream from `from_seq` (`u64::MAX`: only new events).
    pub async fn agent_attach(
        &self,
        session: u64,
        from_seq: u64,
    ) -> Result<(SendStream, FrameReader<RecvStream>, AgentAttached), ClientError> {
        let (mut send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| ClientError::from_conn(&e))?;
        write_frame(
            &mut send,
            &Frame::AgentAttach(AgentAttach { session, from_seq }),
        )
        .await
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let mut reader = FrameReader::new(recv);
        match reader.read().await {
            Ok(Frame::AgentAttached(a)) => Ok((send, reader, a)),
            Ok(Frame::Error(e)) => Err(e.into()),
            Ok(other) => Err(ClientError::Protocol(format!(
                "expected AgentAttached, got {:?}",
                other.frame_type()
            ))),
            Err(e) => Err(ClientError::from_read(e, &self.conn)),
        }
    }

    /// Opens a notice stream (only `kinds`; empty: all); `Notice` frames follow.
    pub async fn watch(
        &self,
        kinds: Vec<NoticeKind>,
    ) -> Result<(SendStream, FrameReader<RecvStream>), ClientError> {
        let (mut send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| ClientError::from_conn(&e))?;
        write_frame(&mut send, &Frame::Watch(Watch { kinds }))
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let mut reader = FrameReader::new(recv);
        match reader.read().await {
            Ok(Frame::Watching) => Ok((send, reader)),
            Ok(Frame::Error(e)) => Err(e.into()),
            Ok(other) => Err(ClientError::Protocol(format!(
                "expected Watching, got {:?}",
                other.frame_type()
            ))),
            Err(e) => Err(ClientError::from_read(e, &self.conn)),
        }
    }

    /// Closes the connection cleanly.
    pub fn close(&self) {
        self.conn.close(close::DONE.into(), b"bye");
    }
}
