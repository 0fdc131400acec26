//! The host side of a browser channel.
//!
//! A browser reaches the host over a WebSocket: served in-process by the host's own front
//! ([`io::LocalSockets`]), or relayed by a remote mobile bridge as one QUIC stream per socket
//! on ALPN `peer/bridge/1` ([`serve_bridge`]). Each socket is a Noise channel between the
//! browser and this host (`Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`, browser = initiator, prologue
//! `b"peer/bridge/1" || host endpoint id`):
//! - message 1's payload is `0x01 || pairing id` to pair with a QR code's one-time secret as
//!   psk, or `0x02` for a paired browser, whose static key names it and whose per-device psk
//!   (issued at pairing) is used;
//! - the host answers `0x00 || message 2` (payload: host name) or a refusal byte and reason.
//!
//! After the handshake every Noise message carries one envelope ([`peer_proto::browser`]): a
//! channel number and a frame, the same frames a native client exchanges. Channel 0 is the
//! control channel (pairing, `HostHello`, requests, pings, `Close`); every other channel is one
//! attachment, served by the same code as a native attach stream. Errors are as small as their
//! cause: a bad frame ends its channel with an `Error` the browser can read; only a bad
//! envelope, a message that does not decrypt, a revocation or the host's shutdown end the
//! socket, always with `Close` inside the channel first and then a WebSocket close code.

mod handshake;
pub(crate) mod io;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::Connection;
use parking_lot::Mutex;
use peer_pairing::{Transport, short_code};
use peer_proto::browser::{self, CONTROL, MAX_BROWSER_CHUNK, MAX_CHANNELS, MAX_PLAINTEXT};
use peer_proto::close::{quic, ws};
use peer_proto::{
    BrowserPaired, CloseReason, ErrorCode, Frame, HostHello, Output, PROTOCOL_VERSION, PairBrowser,
    ReadError, ResponseFrame, Role, WireError,
};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info};

use self::handshake::handshake;
use self::io::{MsgRead, MsgWrite, QuicRead, QuicWrite, RecvError};
use super::streams::{FrameSink, FrameSource, StreamCtx, handle_request, serve_attachment};
use super::{HostEvent, HostShared};

/// Browser sockets one bridge connection may carry at once.
const MAX_SOCKETS: usize = crate::net::MAX_STREAMS as usize;
/// How long the handshake (and a pairing's confirmation) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Messages queued towards the browser before the channels wait.
const OUT_QUEUE: usize = 16;
/// A socket that carries nothing from the browser for this long is dead (the app pings every
/// 2 s while it is online): the host closes it (4105) and its attachments keep their places.
///
/// Shorter than the PTY's lag grace by more than a ping: a phone whose radio went leaves its
/// socket open and silent, and its attachment, stuck behind a full socket, would otherwise
/// count as a live client that stopped reading, and have the output it has not received
/// dropped when the lag grace runs out, before this limit parked it.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(8);
const _: () = assert!(SILENCE_LIMIT.as_secs() + 2 <= crate::pty::LAG_GRACE.as_secs());

/// Serves one connection from a remote bridge (ALPN `peer/bridge/1`) until it closes or the
/// host stops: every stream is one browser socket.
pub async fn serve_bridge(host: Arc<HostShared>, conn: Connection) {
    let mut sockets = JoinSet::new();
    let mut relocations = host.relocations.subscribe();
    loop {
        tokio::select! {
            _ = host.shutdown.cancelled() => {
                conn.close(quic::SHUTTING_DOWN.into(), b"the host is shutting down");
                break;
            }
            _ = relocations.changed() => {
                conn.close(quic::SHUTTING_DOWN.into(), super::session_conn::MOVING);
                break;
            }
            stream = conn.accept_bi() => {
                let Ok((mut send, recv)) = stream else { break };
                if sockets.len() >= MAX_SOCKETS {
                    let _ = send.reset(quic::PROTOCOL.into());
                    continue;
                }
                let host = host.clone();
                // The bridge does not tell the browser's address: only the total applies.
                sockets.spawn(serve_socket(host, QuicRead(recv), QuicWrite(send), None));
            }
            Some(_) = sockets.join_next(), if !sockets.is_empty() => {}
        }
    }
    sockets.shutdown().await;
}

/// What the writer task sends: a plaintext to encrypt, or the end of the socket.
enum Out {
    Msg(Vec<u8>),
    Close(u16, String),
}

/// What the reader task delivers.
enum In {
    Plain(Vec<u8>),
    /// A message did not decrypt: the Noise stream is broken.
    Undecryptable,
    TooLarge,
    Protocol(&'static str),
}

/// Frames towards the browser, queued for the writer.
#[derive(Clone)]
struct Outbox(mpsc::Sender<Out>);

impl Outbox {
    async fn frame(&self, channel: u32, frame: &Frame) -> Result<(), ()> {
        self.0
            .send(Out::Msg(browser::encode(channel, frame)))
            .await
            .map_err(|_| ())
    }

    /// Says why on channel 0, then has the writer close the socket with `code`.
    async fn close(&self, code: u16, reason: &str) {
        let why = Frame::Close(CloseReason {
            code,
            reason: reason.into(),
        });
        let _ = self.frame(CONTROL, &why).await;
        let _ = self.0.send(Out::Close(code, reason.into())).await;
    }
}

/// Serves one browser socket from its first message to its end. `ip`: the browser's address,
/// when the host's own front serves the socket.
pub(crate) async fn serve_socket<R: MsgRead, W: MsgWrite>(
    host: Arc<HostShared>,
    mut rx: R,
    mut tx: W,
    ip: Option<std::net::IpAddr>,
) {
    let hs = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&host, &mut rx, &mut tx, ip))
        .await
    {
        Ok(Ok(hs)) => hs,
        Ok(Err(e)) => {
            debug!("browser handshake failed: {e}");
            return;
        }
        Err(_) => {
            tx.close(ws::TIMEOUT, "no handshake in time").await;
            return;
        }
    };
    let noise = Arc::new(Mutex::new(hs.transport));
    let (out_tx, out_rx) = mpsc::channel::<Out>(OUT_QUEUE);
    let (in_tx, mut in_rx) = mpsc::channel::<In>(OUT_QUEUE);
    let writer = AbortOnDropHandle::new(tokio::spawn(write_loop(noise.clone(), tx, out_rx)));
    let _reader = AbortOnDropHandle::new(tokio::spawn(read_loop(noise.clone(), rx, in_tx)));
    let out = Outbox(out_tx);

    if let Some(pid) = hs.pairing {
        let paired = complete_pairing(&host, &noise, &mut in_rx, pid, hs.device, hs.role).await;
        match paired {
            Ok(psk) => {
                let paired = Frame::BrowserPaired(BrowserPaired {
                    role: hs.role,
                    host_name: host.name.clone(),
                    device_psk: psk,
                });
                if out.frame(CONTROL, &paired).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                info!("browser pairing failed: {e}");
                host.pairings
                    .audit_failure(&host.devices, format!("browser: {e}"))
                    .await;
                let _ = host.events.try_send(HostEvent::PairingFailed(e.clone()));
                out.close(ws::REFUSED, &e).await;
                finish(writer).await;
                return;
            }
        }
    }

    let revoked = host.shutdown.child_token();
    let _live = host.devices.connect(hs.device, revoked.clone()).await;
    // Read back what is stored: the truth for a device that just paired, too; and a
    // revocation between the handshake and the registration must still end this socket.
    let Some((name, role, _)) = host.devices.browser(&hs.device) else {
        out.close(ws::REVOKED, "this device was revoked on the host")
            .await;
        finish(writer).await;
        return;
    };
    host.devices
        .audit(
            Some(hs.device),
            "connect",
            format!("{name} through the bridge"),
        )
        .await;
    let hello = Frame::HostHello(HostHello {
        protocol: PROTOCOL_VERSION,
        host_name: host.name.clone(),
        role,
        instance: host.instance,
    });
    if out.frame(CONTROL, &hello).await.is_err() {
        return;
    }
    // Where the host is now (browsers keep the bridges they derive from it), without the relay
    // token, which a browser never uses.
    if out
        .frame(CONTROL, &Frame::HostRoutes(host.routes(false)))
        .await
        .is_err()
    {
        return;
    }
    let ctx = StreamCtx {
        host: host.clone(),
        role,
        device: hs.device,
    };
    let mut socket = Socket {
        ctx,
        out: out.clone(),
        channels: HashMap::new(),
        tasks: JoinSet::new(),
    };
    let end = socket.run(&revoked, &mut in_rx).await;
    socket.finish().await;
    if let Some((code, why)) = end {
        out.close(code, &why).await;
    }
    drop(socket);
    drop(out);
    finish(writer).await;
}

/// Waits (a bounded time) for the writer to send what is queued and close the socket.
async fn finish(writer: AbortOnDropHandle<()>) {
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

/// A served socket's channels.
struct Socket {
    ctx: StreamCtx,
    out: Outbox,
    /// Open attachments: where their frames from the browser go, and their task.
    channels: HashMap<u32, (mpsc::Sender<Frame>, AbortHandle)>,
    /// Attachments (returning their channel) and requests (returning `None`).
    tasks: JoinSet<Option<u32>>,
}

/// How long a socket's attachments get to end on their own (and park their places) after the
/// socket ended: longer than an attachment reads input after its output stopped
/// ([`INPUT_DRAIN`](crate::host::attach::INPUT_DRAIN)), so that one whose input was waiting for
/// room in the PTY still parks.
const CHANNELS_END: Duration = Duration::from_secs(3);
const _: () = assert!(CHANNELS_END.as_millis() > crate::host::attach::INPUT_DRAIN.as_millis());

impl Socket {
    /// Ends every channel as its client vanishing (so attachments keep their places for a
    /// while), then stops what is left.
    async fn finish(&mut self) {
        self.channels.clear();
        let _ = tokio::time::timeout(CHANNELS_END, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.shutdown().await;
    }

    /// Serves until the socket ends; returns the close code and reason if the host ends it.
    async fn run(
        &mut self,
        revoked: &tokio_util::sync::CancellationToken,
        in_rx: &mut mpsc::Receiver<In>,
    ) -> Option<(u16, String)> {
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(heard + SILENCE_LIMIT) => {
                    return Some((
                        ws::TIMEOUT,
                        format!("nothing from the browser for {} s", SILENCE_LIMIT.as_secs()),
                    ));
                }
                _ = revoked.cancelled() => {
                    return Some(if self.ctx.host.shutdown.is_cancelled() {
                        (ws::SHUTTING_DOWN, "the host is shutting down".into())
                    } else {
                        (ws::REVOKED, "this device was revoked on the host".into())
                    });
                }
                msg = in_rx.recv() => match msg {
                    None => return None,
                    Some(In::Plain(plain)) => {
                        heard = tokio::time::Instant::now();
                        if let Err(why) = self.dispatch(&plain).await {
                            return Some((ws::PROTOCOL, why));
                        }
                    }
                    Some(In::Undecryptable) => {
                        return Some((ws::PROTOCOL, "a message did not decrypt".into()));
                    }
                    Some(In::TooLarge) => {
                        return Some((ws::TOO_LARGE, "a message was larger than 65535 bytes".into()));
                    }
                    Some(In::Protocol(why)) => return Some((ws::PROTOCOL, why.into())),
                },
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Ok(Some(channel)) = done {
                        self.channels.remove(&channel);
                    }
                }
            }
        }
    }

    /// Handles one envelope. `Err` (a bad envelope) ends the socket; everything else is
    /// answered on its channel.
    async fn dispatch(&mut self, plain: &[u8]) -> Result<(), String> {
        let (channel, frame) = browser::decode(plain).map_err(|e| e.to_string())?;
        if channel == CONTROL {
            self.control(frame).await;
            return Ok(());
        }
        if let Some((tx, task)) = self.channels.get(&channel) {
            match frame {
                // The attachment's own loop answers frames it does not expect with an error.
                Ok(frame) => {
                    let _ = tx.send(frame).await;
                }
                Err(e) => {
                    task.abort();
                    self.channels.remove(&channel);
                    let err = WireError::new(ErrorCode::Protocol, e.to_string());
                    let _ = self.out.frame(channel, &Frame::Error(err)).await;
                }
            }
            return Ok(());
        }
        match frame {
            Ok(first @ (Frame::Attach(_) | Frame::AgentAttach(_))) => {
                self.open(channel, first).await
            }
            // Late frames for a channel that already ended (after `Exited`, say): nothing to do.
            Ok(Frame::Input(_) | Frame::Resize(_) | Frame::Received(_) | Frame::Detach) => {}
            Ok(other) => {
                let err = WireError::new(
                    ErrorCode::Protocol,
                    format!(
                        "channel {channel} is not open; {:?} cannot open it",
                        other.frame_type()
                    ),
                );
                let _ = self.out.frame(channel, &Frame::Error(err)).await;
            }
            Err(e) => {
                let err = WireError::new(ErrorCode::Protocol, e.to_string());
                let _ = self.out.frame(channel, &Frame::Error(err)).await;
            }
        }
        Ok(())
    }

    /// A frame on channel 0. Never ends the socket: a frame that does not belong here gets an
    /// `Error` on channel 0 and is dropped.
    async fn control(&mut self, frame: Result<Frame, peer_proto::FrameError>) {
        match frame {
            Ok(Frame::Request(req)) => {
                let (ctx, out) = (self.ctx.clone(), self.out.clone());
                self.tasks.spawn(async move {
                    let result = handle_request(&ctx, req.request).await;
                    let resp = Frame::Response(ResponseFrame { id: req.id, result });
                    let _ = out.frame(CONTROL, &resp).await;
                    None
                });
            }
            Ok(Frame::Ping(n)) => {
                let _ = self.out.frame(CONTROL, &Frame::Pong(n)).await;
            }
            Ok(Frame::Pong(_)) => {}
            Ok(other) => {
                let err = WireError::new(
                    ErrorCode::Protocol,
                    format!("{:?} is not a control frame", other.frame_type()),
                );
                let _ = self.out.frame(CONTROL, &Frame::Error(err)).await;
            }
            Err(e) => {
                let err = WireError::new(ErrorCode::Protocol, e.to_string());
                let _ = self.out.frame(CONTROL, &Frame::Error(err)).await;
            }
        }
    }

    /// Opens channel `channel` with its first frame, unless too many are open.
    async fn open(&mut self, channel: u32, first: Frame) {
        if self.channels.len() >= MAX_CHANNELS {
            let err = WireError::new(ErrorCode::Limit, "too many channels on this socket");
            let _ = self.out.frame(channel, &Frame::Error(err)).await;
            return;
        }
        let (tx, rx) = mpsc::channel(32);
        let (ctx, out) = (self.ctx.clone(), self.out.clone());
        let task = self.tasks.spawn(async move {
            let mut sink = ChannelSink { channel, out };
            let mut source = ChannelSource(rx);
            serve_attachment(&ctx, first, &mut sink, &mut source).await;
            Some(channel)
        });
        self.channels.insert(channel, (tx, task));
    }
}

/// The browser side of a pairing handshake: wait for `PairBrowser`, then record the device.
/// Only a confirmation that does not decrypt counts against the code (a browser that knew the
/// secret but went away did nothing wrong).
async fn complete_pairing(
    host: &HostShared,
    noise: &Mutex<Transport>,
    in_rx: &mut mpsc::Receiver<In>,
    pid: [u8; 16],
    device: [u8; 32],
    role: Role,
) -> Result<[u8; 32], String> {
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, in_rx.recv())
        .await
        .map_err(|_| "the browser did not confirm the pairing in time".to_string())?;
    let name = match first {
        Some(In::Plain(plain)) => match browser::decode(&plain) {
            Ok((CONTROL, Ok(Frame::PairBrowser(PairBrowser { name })))) => {
                super::pairing::clean_name(&name).ok_or("bad device name")?
            }
            _ => return Err("expected PairBrowser on channel 0".into()),
        },
        Some(In::Undecryptable) => {
            host.pairings.fail(&pid);
            return Err("the browser does not know the pairing secret".into());
        }
        Some(_) | None => return Err("the browser left before confirming the pairing".into()),
    };
    host.pairings.consume(&pid).map_err(|r| r.to_string())?;
    let psk: [u8; 32] = rand::random();
    host.devices
        .add_browser(device, name.clone(), role, psk)
        .await
        .map_err(|e| e.to_string())?;
    let code = short_code(&noise.lock().handshake_hash());
    info!(device = %hex::encode(&device[..4]), %name, "browser paired");
    host.pairings.record(
        &pid,
        super::pairing::PairedDevice {
            name: name.clone(),
            device: hex::encode(device),
            role,
            code: code.clone(),
        },
    );
    let _ = host.events.try_send(HostEvent::Paired {
        name,
        device: hex::encode(device),
        role,
        code,
    });
    Ok(psk)
}

async fn write_loop<W: MsgWrite>(
    noise: Arc<Mutex<Transport>>,
    mut tx: W,
    mut rx: mpsc::Receiver<Out>,
) {
    while let Some(out) = rx.recv().await {
        match out {
            Out::Msg(plain) => {
                let Ok(ct) = noise.lock().encrypt(&plain) else {
                    break;
                };
                if tx.send(ct).await.is_err() {
                    return;
                }
            }
            Out::Close(code, reason) => {
                tx.close(code, &reason).await;
                return;
            }
        }
    }
    tx.close(ws::NORMAL, "").await;
}

async fn read_loop<R: MsgRead>(noise: Arc<Mutex<Transport>>, mut rx: R, tx: mpsc::Sender<In>) {
    loop {
        let msg = match rx.recv().await {
            Ok(Some(ct)) => match noise.lock().decrypt(&ct) {
                Ok(plain) => In::Plain(plain),
                // Noise nonces are implicit: after one message that does not decrypt, none will.
                Err(_) => In::Undecryptable,
            },
            Ok(None) => return,
            Err(RecvError::TooLarge) => In::TooLarge,
            Err(RecvError::Protocol(why)) => In::Protocol(why),
            Err(RecvError::Failed(e)) => {
                debug!("browser socket failed: {e}");
                return;
            }
        };
        let last = !matches!(msg, In::Plain(_));
        if tx.send(msg).await.is_err() || last {
            return;
        }
    }
}

/// Frames of one channel, enveloped for the browser and queued on the socket.
struct ChannelSink {
    channel: u32,
    out: Outbox,
}

impl FrameSink for ChannelSink {
    async fn send(&mut self, frame: Frame) -> Result<(), ()> {
        match frame {
            // One Noise message holds at most MAX_BROWSER_CHUNK bytes of output.
            Frame::Output(o) if o.data.len() > MAX_BROWSER_CHUNK => {
                let mut offset = o.offset;
                for chunk in o.data.chunks(MAX_BROWSER_CHUNK) {
                    let part = Frame::Output(Output {
                        offset,
                        data: chunk.to_vec(),
                    });
                    self.out.frame(self.channel, &part).await?;
                    offset += chunk.len() as u64;
                }
                Ok(())
            }
            Frame::AgentEvent(mut event) => {
                let mut m = browser::encode(self.channel, &Frame::AgentEvent(event.clone()));
                if m.len() > MAX_PLAINTEXT {
                    // One Noise message cannot hold it: say so instead (the diff request and
                    // the native stream carry the whole thing).
                    event.event = event.event.truncated();
                    m = browser::encode(self.channel, &Frame::AgentEvent(event));
                }
                self.out.0.send(Out::Msg(m)).await.map_err(|_| ())
            }
            frame => self.out.frame(self.channel, &frame).await,
        }
    }
}

/// Frames for one channel, as the socket's reader demultiplexed them.
struct ChannelSource(mpsc::Receiver<Frame>);

impl FrameSource for ChannelSource {
    async fn next(&mut self) -> Result<Frame, ReadError> {
        // A browser ends a channel with `Detach` only; the sender going away means the socket
        // did: the client vanished.
        self.0
            .recv()
            .await
            .ok_or_else(|| ReadError::Io(std::io::ErrorKind::ConnectionAborted.into()))
    }
}
