//! A connection to a paired host: the control protocol, attach streams, and why things fail.
//! [`super::Dialer`] makes them.

use std::time::Duration;

use std::path::PathBuf;

use iroh::endpoint::Connection;

use super::stream::{StreamRecv, StreamSend};
use crate::net::{self, close};
use crate::proto::{
    AgentAttach, AgentAttached, Attach, Attached, Frame, FrameReader, HostHello, LocalReply,
    LocalRequest, NoticeKind, ReadError, Reply, Request, RequestFrame, Watch, WireError,
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

    pub(crate) fn from_conn(e: &iroh::endpoint::ConnectionError) -> ClientError {
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

/// A live, authenticated connection to a host: a session connection over iroh, or a session
/// on the control socket of the host on this machine.
#[derive(Debug)]
pub struct HostConn {
    link: Link,
    /// The control stream; one request at a time, so a request can run beside an attachment.
    control: tokio::sync::Mutex<Control>,
    hello: HostHello,
}

#[derive(Debug)]
enum Link {
    Quic {
        conn: Connection,
        /// The dialing endpoint's relay counters, and how many of its relay connections had
        /// ended when this connection was made.
        relays: RelayWatch,
    },
    /// Each stream is a connection to this control socket.
    Local(PathBuf),
}

/// Notices a relay connection of the dialing endpoint ending (a relay that went down).
#[derive(Debug)]
pub(crate) struct RelayWatch {
    metrics: std::sync::Arc<iroh::metrics::SocketMetrics>,
    closed_at_start: u64,
}

impl RelayWatch {
    /// Starts counting on `endpoint` now.
    pub(crate) fn new(endpoint: &iroh::Endpoint) -> RelayWatch {
        let metrics = endpoint.metrics().socket.clone();
        let closed_at_start = metrics.relay_conns_closed.get();
        RelayWatch {
            metrics,
            closed_at_start,
        }
    }

    fn closed_since(&self) -> bool {
        self.metrics.relay_conns_closed.get() > self.closed_at_start
    }
}

#[derive(Debug)]
struct Control {
    send: StreamSend,
    reader: FrameReader<StreamRecv>,
    next_id: u32,
}

/// The streams of an attachment, an agent event stream or a notice stream.
pub type Streams = (StreamSend, FrameReader<StreamRecv>);

impl HostConn {
    /// A connection past the hellos: `send` and `reader` are its control stream.
    pub(crate) fn new(
        conn: Connection,
        send: iroh::endpoint::SendStream,
        reader: FrameReader<StreamRecv>,
        hello: HostHello,
        relays: RelayWatch,
    ) -> HostConn {
        HostConn {
            link: Link::Quic { conn, relays },
            control: tokio::sync::Mutex::new(Control {
                send: StreamSend::Quic(send),
                reader,
                next_id: 1,
            }),
            hello,
        }
    }

    /// Opens a session on the control socket of the host on this machine (docs/protocol.md
    /// section 13): `LocalRequest::OpenSession`, then requests as on a control stream.
    pub(crate) async fn local(socket: PathBuf) -> Result<HostConn, ClientError> {
        let (mut send, mut reader) = open_local(&socket).await?;
        write_frame(&mut send, &Frame::LocalRequest(LocalRequest::OpenSession))
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let hello = match reader.read().await {
            Ok(Frame::LocalReply(LocalReply::Session(hello))) => hello,
            Ok(Frame::LocalReply(LocalReply::Error(e))) => return Err(e.into()),
            Ok(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected a session from the local host, got {:?} (is it an older peer?)",
                    other.frame_type()
                )));
            }
            Err(e) => return Err(local_read_error(e)),
        };
        Ok(HostConn {
            link: Link::Local(socket),
            control: tokio::sync::Mutex::new(Control {
                send,
                reader,
                next_id: 1,
            }),
            hello,
        })
    }

    /// Whether this is a session on the local host's control socket.
    pub fn is_local(&self) -> bool {
        matches!(self.link, Link::Local(_))
    }

    /// The error a failed read on a stream of this connection stands for (the host's close
    /// reason, if it closed the connection).
    pub fn read_error(&self, e: ReadError) -> ClientError {
        match &self.link {
            Link::Quic { conn, .. } => ClientError::from_read(e, conn),
            Link::Local(_) => local_read_error(e),
        }
    }

    /// Opens a stream: a QUIC stream, or a new connection to the control socket.
    async fn open(&self) -> Result<Streams, ClientError> {
        match &self.link {
            Link::Quic { conn, .. } => {
                let (send, recv) = conn
                    .open_bi()
                    .await
                    .map_err(|e| ClientError::from_conn(&e))?;
                Ok((
                    StreamSend::Quic(send),
                    FrameReader::new(StreamRecv::Quic(recv)),
                ))
            }
            Link::Local(socket) => open_local(socket).await,
        }
    }

    /// Whether this connection runs through a relay (no direct path selected) and one of the
    /// dialing endpoint's relay connections ended since it was made: the relay carrying it has
    /// most likely gone, and waiting for QUIC to notice (the idle timeout) only delays a
    /// reconnect through another relay.
    pub fn relay_gone(&self) -> bool {
        let Link::Quic { conn, relays } = &self.link else {
            return false;
        };
        let relayed = conn.paths().iter().any(|p| p.is_selected() && p.is_relay());
        relayed && relays.closed_since()
    }

    /// What the host said about itself.
    pub fn hello(&self) -> &HostHello {
        &self.hello
    }

    /// The QUIC connection (`None`: the local host's control socket).
    pub fn connection(&self) -> Option<&Connection> {
        match &self.link {
            Link::Quic { conn, .. } => Some(conn),
            Link::Local(_) => None,
        }
    }

    /// The round-trip time the QUIC stack measures on the path it sends on (`None`: the local
    /// host's control socket, or no path selected yet).
    pub fn rtt(&self) -> Option<Duration> {
        let Link::Quic { conn, .. } = &self.link else {
            return None;
        };
        conn.paths()
            .iter()
            .find(|p| p.is_selected())
            .map(|p| p.rtt())
    }

    /// How many UDP datagrams this connection has received from the host so far (`None`: the
    /// local host's control socket). While it grows the host's QUIC stack is alive and
    /// answering: its keep-alives and acknowledgements arrive.
    pub fn datagrams_received(&self) -> Option<u64> {
        match &self.link {
            Link::Quic { conn, .. } => Some(conn.stats().udp_rx.datagrams),
            Link::Local(_) => None,
        }
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
                Err(e) => return Err(self.read_error(e)),
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
    ) -> Result<(StreamSend, FrameReader<StreamRecv>, Attached), ClientError> {
        let (mut send, mut reader) = self.open().await?;
        write_frame(&mut send, &Frame::Attach(attach))
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        match reader.read().await {
            Ok(Frame::Attached(a)) => Ok((send, reader, a)),
            Ok(Frame::Error(e)) => Err(e.into()),
            Ok(other) => Err(ClientError::Protocol(format!(
                "expected Attached, got {:?}",
                other.frame_type()
            ))),
            Err(e) => Err(self.read_error(e)),
        }
    }

    /// Opens an agent event stream from `from_seq` (`u64::MAX`: only new events).
    pub async fn agent_attach(
        &self,
        session: u64,
        from_seq: u64,
    ) -> Result<(StreamSend, FrameReader<StreamRecv>, AgentAttached), ClientError> {
        let (mut send, mut reader) = self.open().await?;
        write_frame(
            &mut send,
            &Frame::AgentAttach(AgentAttach { session, from_seq }),
        )
        .await
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        match reader.read().await {
            Ok(Frame::AgentAttached(a)) => Ok((send, reader, a)),
            Ok(Frame::Error(e)) => Err(e.into()),
            Ok(other) => Err(ClientError::Protocol(format!(
                "expected AgentAttached, got {:?}",
                other.frame_type()
            ))),
            Err(e) => Err(self.read_error(e)),
        }
    }

    /// Opens a notice stream (only `kinds`; empty: all); `Notice` frames follow.
    pub async fn watch(&self, kinds: Vec<NoticeKind>) -> Result<Streams, ClientError> {
        let (mut send, mut reader) = self.open().await?;
        write_frame(&mut send, &Frame::Watch(Watch { kinds }))
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        match reader.read().await {
            Ok(Frame::Watching) => Ok((send, reader)),
            Ok(Frame::Error(e)) => Err(e.into()),
            Ok(other) => Err(ClientError::Protocol(format!(
                "expected Watching, got {:?}",
                other.frame_type()
            ))),
            Err(e) => Err(self.read_error(e)),
        }
    }

    /// Closes the connection cleanly. (A local session ends when it is dropped.)
    pub fn close(&self) {
        if let Link::Quic { conn, .. } = &self.link {
            conn.close(close::DONE.into(), b"bye");
        }
    }
}

/// A new connection to the control socket at `socket`, as one stream.
async fn open_local(socket: &std::path::Path) -> Result<Streams, ClientError> {
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
        ClientError::Unreachable(format!(
            "no host answers on {} ({e}); start one with `peer host`",
            socket.display()
        ))
    })?;
    let (read, write) = stream.into_split();
    Ok((
        StreamSend::Local(write),
        FrameReader::new(StreamRecv::Local(read)),
    ))
}

/// What a failed read on the control socket means: the host went away (it may come back).
fn local_read_error(e: ReadError) -> ClientError {
    match e {
        ReadError::Io(e) => ClientError::Unreachable(e.to_string()),
        ReadError::Closed | ReadError::Truncated => {
            ClientError::Unreachable("the local host closed the connection".into())
        }
        other => ClientError::Protocol(other.to_string()),
    }
}
