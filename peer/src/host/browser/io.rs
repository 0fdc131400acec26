//! What a browser channel's Noise messages travel over: a WebSocket served in-process (the
//! host's own front), or a QUIC stream from a remote mobile bridge (`peer-relay`) with
//! `u16`-length framing. Either way a socket is a reading half and a writing half.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use iroh::EndpointId;
use iroh::endpoint::{RecvStream, SendStream};
use peer_mobile_bridge::{
    Admission, AdmissionControl, BridgeConfig, BridgeStats, BrowserSocket, Refused, SocketHandler,
};
use peer_proto::codec::{MAX_MESSAGE, close_record};
use peer_proto::{StreamMessage, read_message, write_message};
use tokio_websockets::{CloseCode, Message};

use crate::host::HostShared;

/// Why reading from a socket stopped, other than the browser closing it.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// A message larger than a Noise message can be.
    TooLarge,
    /// Something that is not a binary message.
    Protocol(&'static str),
    /// The transport failed.
    Failed(String),
}

/// The reading half of a socket.
pub(crate) trait MsgRead: Send + 'static {
    /// The next message; `Ok(None)` once the browser closed the socket.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, RecvError>> + Send;
}

/// The writing half of a socket.
pub(crate) trait MsgWrite: Send + 'static {
    /// Sends one message.
    fn send(&mut self, msg: Vec<u8>) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Ends the socket with WebSocket close `code` (`peer_proto::close::ws`) after everything
    /// sent before has gone out.
    fn close(&mut self, code: u16, reason: &str) -> impl Future<Output = ()> + Send;
}

/// A remote bridge's stream, reading half.
pub(crate) struct QuicRead(pub(crate) RecvStream);
/// A remote bridge's stream, writing half.
pub(crate) struct QuicWrite(pub(crate) SendStream);

impl MsgRead for QuicRead {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, RecvError> {
        match read_message(&mut self.0).await {
            Ok(Some(StreamMessage::Message(m))) => Ok(Some(m)),
            // Bridges never send close records; a bridge that does has ended the socket.
            Ok(Some(StreamMessage::Close { .. })) | Ok(None) => Ok(None),
            Err(e) => Err(RecvError::Failed(e.to_string())),
        }
    }
}

impl MsgWrite for QuicWrite {
    async fn send(&mut self, msg: Vec<u8>) -> std::io::Result<()> {
        write_message(&mut self.0, &msg).await
    }

    async fn close(&mut self, code: u16, reason: &str) {
        // The bridge closes the WebSocket with the code once it has passed on what came before.
        let _ = self.0.write_all(&close_record(code, reason)).await;
        let _ = self.0.finish();
    }
}

/// A WebSocket served in-process, reading half.
pub(crate) struct WsRead(pub(crate) SplitStream<BrowserSocket>);
/// A WebSocket served in-process, writing half.
pub(crate) struct WsWrite(pub(crate) SplitSink<BrowserSocket, Message>);

/// What the WebSocket layer reads at all; past it, it closes the socket itself (1009). Messages
/// between [`MAX_MESSAGE`] and this are refused by the host with its own close code (4103).
const WS_READ_LIMIT: usize = 128 * 1024;

/// Splits an upgraded socket.
pub(crate) fn ws_halves(mut ws: BrowserSocket) -> (WsRead, WsWrite) {
    ws.limits_mut().set_max_payload_len(Some(WS_READ_LIMIT));
    let (tx, rx) = ws.split();
    (WsRead(rx), WsWrite(tx))
}

impl MsgRead for WsRead {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, RecvError> {
        loop {
            match self.0.next().await {
                None => return Ok(None),
                Some(Err(tokio_websockets::Error::PayloadTooLong { .. })) => {
                    return Err(RecvError::TooLarge);
                }
                Some(Err(e)) => return Err(RecvError::Failed(e.to_string())),
                Some(Ok(m)) if m.is_binary() && m.as_payload().len() > MAX_MESSAGE => {
                    return Err(RecvError::TooLarge);
                }
                Some(Ok(m)) if m.is_binary() => {
                    return Ok(Some(bytes::Bytes::from(m.into_payload()).into()));
                }
                Some(Ok(m)) if m.is_text() => {
                    return Err(RecvError::Protocol("text messages are not accepted"));
                }
                // Pings and pongs are the WebSocket layer's; a close ends the stream next.
                Some(Ok(_)) => {}
            }
        }
    }
}

impl MsgWrite for WsWrite {
    async fn send(&mut self, msg: Vec<u8>) -> std::io::Result<()> {
        self.0
            .send(Message::binary(msg))
            .await
            .map_err(std::io::Error::other)
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let code = CloseCode::try_from(code).ok().filter(|c| !c.is_reserved());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let _ = self.0.send(Message::close(code, reason)).await;
            let _ = self.0.close().await;
        })
        .await;
    }
}

/// The host's own front hands browser sockets for this host straight to the host, in-process:
/// no bridge endpoint and no QUIC between them.
pub(crate) struct LocalSockets {
    host: std::sync::Weak<HostShared>,
    admissions: Arc<AdmissionControl>,
}

impl LocalSockets {
    pub(crate) fn new(host: &Arc<HostShared>) -> LocalSockets {
        LocalSockets {
            host: Arc::downgrade(host),
            admissions: AdmissionControl::new(&BridgeConfig::default()),
        }
    }
}

impl SocketHandler for LocalSockets {
    fn admit(&self, ip: IpAddr) -> Result<Admission, Refused> {
        self.admissions.admit(ip)
    }

    fn serve(
        &self,
        ws: BrowserSocket,
        _host: EndpointId,
        admission: Admission,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let host = self.host.upgrade();
        Box::pin(async move {
            let ip = admission.ip();
            let _admission = admission;
            let Some(host) = host else { return };
            let (rx, tx) = ws_halves(ws);
            super::serve_socket(host, rx, tx, Some(ip)).await;
        })
    }

    fn stats(&self) -> BridgeStats {
        let mut s = BridgeStats::default();
        s.admitted = self.admissions.held();
        s.refused = self.admissions.refused();
        s
    }
}
