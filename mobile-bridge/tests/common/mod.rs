//! Test fixtures: a real iroh host on loopback, a tiny HTTP server in front of the bridge, and a
//! WebSocket client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use futures_util::StreamExt;
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt, presets};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMode};
use peer_mobile_bridge::{BRIDGE_ALPN, Bridge, BridgeConfig, parse_bridge_path};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_websockets::{ClientBuilder, MaybeTlsStream, Message, ServerBuilder, WebSocketStream};

/// A WebSocket as the browser holds it.
pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous bound on anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(10);

/// An iroh endpoint on 127.0.0.1 only, no relay, no discovery.
pub async fn loopback_endpoint(alpns: Vec<Vec<u8>>) -> Result<Endpoint> {
    let ep = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .context("bind addr")?
        .alpns(alpns)
        .bind()
        .await?;
    Ok(ep)
}

/// What the test host saw.
#[derive(Debug, PartialEq, Eq)]
pub enum HostEvent {
    /// A message arrived on a stream (exact bytes).
    Message(Vec<u8>),
    /// A stream's receiving side ended: `true` for a clean finish, `false` for an error.
    StreamEnded(bool),
}

/// How the test host treats bridge connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMode {
    /// Echo every message uppercased (ASCII), and obey control messages:
    /// `!fin` finishes the stream, `!reset` resets it, `!close` closes the connection with
    /// code 1 after answering, `!send <n>` sends an n-byte pattern `i % 251`, `!flood` sends
    /// 65535-byte patterns as fast as the stream takes them, `!closerec <code>` sends `BYE`
    /// and then a close record with that code and reason `why` and finishes the stream.
    Echo,
    /// Close each connection at once with application code 5 and a reason (what a host that
    /// does not serve the bridge does).
    Refuse,
    /// Accept streams and never read them.
    Stall,
}

/// A real iroh host serving `peer/bridge/1` on loopback.
pub struct TestHost {
    pub endpoint: Endpoint,
    pub events: mpsc::UnboundedReceiver<HostEvent>,
    pub connections: Arc<AtomicUsize>,
    /// Bytes written by `!flood` so far.
    pub flooded: Arc<AtomicU64>,
    _tasks: JoinSet<()>,
}

impl TestHost {
    pub async fn start(mode: HostMode) -> Result<TestHost> {
        let endpoint = loopback_endpoint(vec![BRIDGE_ALPN.to_vec()]).await?;
        let (tx, events) = mpsc::unbounded_channel();
        let connections = Arc::new(AtomicUsize::new(0));
        let flooded = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(
            endpoint.clone(),
            mode,
            tx,
            connections.clone(),
            flooded.clone(),
        ));
        Ok(TestHost {
            endpoint,
            events,
            connections,
            flooded,
            _tasks: tasks,
        })
    }

    pub fn id(&self) -> EndpointId {
        self.endpoint.id()
    }

    pub fn addr(&self) -> EndpointAddr {
        self.endpoint.addr()
    }

    /// The next event, or an error after [`WAIT`].
    pub async fn next_event(&mut self) -> Result<HostEvent> {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .context("no host event in time")?
            .context("host gone")
    }
}

async fn accept_loop(
    endpoint: Endpoint,
    mode: HostMode,
    events: mpsc::UnboundedSender<HostEvent>,
    connections: Arc<AtomicUsize>,
    flooded: Arc<AtomicU64>,
) {
    let mut conns = JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        let Ok(conn) = incoming.await else { continue };
        connections.fetch_add(1, Ordering::SeqCst);
        match mode {
            HostMode::Refuse => conn.close(VarInt::from_u32(5), b"bridge not served here"),
            HostMode::Echo => {
                conns.spawn(serve_conn(conn, events.clone(), flooded.clone()));
            }
            HostMode::Stall => {
                conns.spawn(async move {
                    let mut held = Vec::new();
                    while let Ok(streams) = conn.accept_bi().await {
                        held.push(streams);
                    }
                });
            }
        }
        while conns.try_join_next().is_some() {}
    }
}

async fn serve_conn(
    conn: Connection,
    events: mpsc::UnboundedSender<HostEvent>,
    flooded: Arc<AtomicU64>,
) {
    let mut streams = JoinSet::new();
    while let Ok((send, recv)) = conn.accept_bi().await {
        streams.spawn(serve_stream(
            conn.clone(),
            send,
            recv,
            events.clone(),
            flooded.clone(),
        ));
        while streams.try_join_next().is_some() {}
    }
    streams.join_all().await;
}

async fn read_frame(recv: &mut RecvStream) -> Result<Option<Vec<u8>>> {
    let mut header = [0u8; 2];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(iroh::endpoint::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(header))];
    recv.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

async fn write_frame(send: &mut SendStream, msg: &[u8]) -> Result<()> {
    let len = u16::try_from(msg.len())?;
    send.write_all(&len.to_be_bytes()).await?;
    send.write_all(msg).await?;
    Ok(())
}

/// The pattern `!send <n>` asks for.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

async fn serve_stream(
    conn: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    events: mpsc::UnboundedSender<HostEvent>,
    flooded: Arc<AtomicU64>,
) {
    loop {
        let msg = match read_frame(&mut recv).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                let _ = events.send(HostEvent::StreamEnded(true));
                let _ = send.finish();
                return;
            }
            Err(_) => {
                let _ = events.send(HostEvent::StreamEnded(false));
                return;
            }
        };
        let _ = events.send(HostEvent::Message(msg.clone()));
        let reply = match msg.as_slice() {
            b"!fin" => {
                let _ = send.finish();
                // Keep reading: the bridge must end the stream from its side too.
                continue;
            }
            b"!reset" => {
                let _ = send.reset(VarInt::from_u32(7));
                continue;
            }
            b"!close" => {
                let _ = write_frame(&mut send, b"BYE").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                conn.close(VarInt::from_u32(1), b"the host is shutting down");
                return;
            }
            b"!flood" => {
                let chunk = pattern(65535);
                while write_frame(&mut send, &chunk).await.is_ok() {
                    flooded.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
                return;
            }
            m if m.starts_with(b"!closerec ") => {
                let code: u16 = String::from_utf8_lossy(&m[10..]).parse().unwrap_or(0);
                let _ = write_frame(&mut send, b"BYE").await;
                let _ = send
                    .write_all(&peer_proto::codec::close_record(code, "why"))
                    .await;
                let _ = send.finish();
                continue;
            }
            m if m.starts_with(b"!send ") => {
                let n: usize = String::from_utf8_lossy(&m[6..]).parse().unwrap_or(0);
                pattern(n)
            }
            m => m.to_ascii_uppercase(),
        };
        if write_frame(&mut send, &reply).await.is_err() {
            let _ = events.send(HostEvent::StreamEnded(false));
            return;
        }
    }
}

/// Where the bridge dials each host: the test registers host addresses here.
#[derive(Clone, Default)]
pub struct Addrs(Arc<Mutex<HashMap<EndpointId, EndpointAddr>>>);

impl Addrs {
    pub fn insert(&self, addr: EndpointAddr) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(addr.id, addr);
    }

    fn get(&self, id: EndpointId) -> EndpointAddr {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
            .unwrap_or_else(|| EndpointAddr::new(id))
    }
}

/// A bridge on its own loopback endpoint, behind a tiny HTTP server.
pub struct TestBridge {
    pub bridge: Bridge,
    pub addrs: Addrs,
    pub http: SocketAddr,
    _tasks: JoinSet<()>,
}

/// How the test HTTP server admits sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// `admit` before the upgrade, refusing with the HTTP status.
    BeforeUpgrade,
    /// Upgrade first, then `admit`; refuse with `Bridge::refuse` (close 4008).
    AfterUpgrade,
}

impl TestBridge {
    pub async fn start(config: BridgeConfig) -> Result<TestBridge> {
        TestBridge::start_with(config, Admit::BeforeUpgrade).await
    }

    pub async fn start_with(config: BridgeConfig, admit: Admit) -> Result<TestBridge> {
        let endpoint = loopback_endpoint(vec![]).await?;
        let addrs = Addrs::default();
        let resolve = {
            let addrs = addrs.clone();
            Arc::new(move |id: EndpointId| addrs.get(id))
        };
        let bridge = Bridge::with_resolver(endpoint, resolve, config);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let http = listener.local_addr()?;
        let mut tasks = JoinSet::new();
        tasks.spawn(http_server(listener, bridge.clone(), admit));
        Ok(TestBridge {
            bridge,
            addrs,
            http,
            _tasks: tasks,
        })
    }

    pub fn url(&self, host: EndpointId) -> String {
        format!("ws://{}/bridge/{host}", self.http)
    }

    /// Opens a browser socket to `host`.
    pub async fn connect(&self, host: EndpointId) -> Result<Client> {
        connect_url(&self.url(host)).await
    }

    /// Waits until the bridge has no socket left.
    pub async fn wait_idle(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.bridge.stats().admitted != 0 || self.bridge.stats().active != 0 {
            if tokio::time::Instant::now() > deadline {
                bail!("sockets still open: {:?}", self.bridge.stats());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

pub async fn connect_url(url: &str) -> Result<Client> {
    let (ws, _) = ClientBuilder::new().uri(url)?.connect().await?;
    Ok(ws)
}

async fn http_server(listener: TcpListener, bridge: Bridge, admit: Admit) {
    let mut conns = JoinSet::new();
    while let Ok((stream, peer)) = listener.accept().await {
        conns.spawn(http_conn(stream, peer, bridge.clone(), admit));
        while conns.try_join_next().is_some() {}
    }
}

/// Reads the request head byte by byte (so no WebSocket bytes are consumed).
async fn read_head(stream: &mut TcpStream) -> Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            bail!("request head too large");
        }
        head.push(stream.read_u8().await?);
    }
    Ok(String::from_utf8(head)?)
}

async fn http_conn(mut stream: TcpStream, peer: SocketAddr, bridge: Bridge, admit: Admit) {
    let Ok(head) = read_head(&mut stream).await else {
        return;
    };
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("");
    let key = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    });
    let (Ok(host), Some(key)) = (parse_bridge_path(path), key) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let admission = match admit {
        Admit::BeforeUpgrade => match bridge.admit(peer.ip()) {
            Ok(a) => Some(a),
            Err(refused) => {
                let status = refused.http_status();
                let _ = stream
                    .write_all(
                        format!("HTTP/1.1 {status} {refused}\r\ncontent-length: 0\r\n\r\n")
                            .as_bytes(),
                    )
                    .await;
                return;
            }
        },
        Admit::AfterUpgrade => None,
    };
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let ws = ServerBuilder::new().serve(stream);
    let admission = match admission {
        Some(a) => a,
        None => match bridge.admit(peer.ip()) {
            Ok(a) => a,
            Err(refused) => return bridge.refuse(ws, refused).await,
        },
    };
    bridge.serve(ws, host, admission).await;
}

/// The next data message, skipping nothing: a close or error is an error.
pub async fn recv_binary(ws: &mut Client) -> Result<Vec<u8>> {
    let msg = tokio::time::timeout(WAIT, ws.next())
        .await
        .context("no message in time")?
        .context("socket ended")??;
    if let Some((code, reason)) = msg.as_close() {
        bail!("closed: {} {reason}", u16::from(code));
    }
    if !msg.is_binary() {
        bail!("not binary: {msg:?}");
    }
    Ok(msg.as_payload().to_vec())
}

/// Reads until the close frame; returns its code and reason (skipping data messages).
pub async fn recv_close(ws: &mut Client) -> Result<(u16, String)> {
    recv_close_within(ws, WAIT).await
}

pub async fn recv_close_within(ws: &mut Client, wait: Duration) -> Result<(u16, String)> {
    tokio::time::timeout(wait, async {
        loop {
            match ws.next().await {
                Some(Ok(msg)) => {
                    if let Some((code, reason)) = msg.as_close() {
                        let closed = (u16::from(code), reason.to_string());
                        // As a browser does: answer the close (the next poll flushes the reply)
                        // and read to the end.
                        while let Some(Ok(_)) = ws.next().await {}
                        return Ok(closed);
                    }
                }
                Some(Err(e)) => bail!("socket error before close: {e}"),
                None => bail!("socket ended without a close frame"),
            }
        }
    })
    .await
    .context("no close in time")?
}

/// Sends one binary message.
pub async fn send_binary(ws: &mut Client, bytes: Vec<u8>) -> Result<()> {
    use futures_util::SinkExt;
    ws.send(Message::binary(bytes)).await?;
    Ok(())
}
