//! The host side of the browser path (ALPN `peer/bridge/1`).
//!
//! The mobile bridge opens one QUIC stream per browser WebSocket and relays its messages as
//! `u16 BE length | bytes`. Each stream is a Noise channel between the browser and this host
//! (`Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`, browser = initiator, prologue
//! `b"peer/bridge/1" || host endpoint id`):
//! - message 1's payload is `0x01 || pairing id` to pair with a QR code's one-time secret as psk,
//!   or `0x02` for a paired browser, whose static key names it and whose per-device psk (issued
//!   at pairing) is used;
//! - the host answers `0x00 || message 2` (payload: host name) or a refusal byte and reason, as
//!   on the native pairing stream.
//!
//! After the handshake every message is one Noise transport message carrying the browser
//! channel protocol ([`crate::proto::browser`]): a pairing browser first sends `pair_confirm`
//! and gets `paired` with its device psk; then (as on every later connection) the host sends
//! `hello`, and requests and attached channels flow, each channel served by the same attach
//! logic as a native session stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use peer_pairing::{Responder, Transport, short_code};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info};

use super::pairing::{Refusal, refuse, write_msg};
use super::streams::{
    AttachEnd, FrameSink, FrameSource, StreamCtx, handle_request, run_attach, session_error,
};
use super::{HostEvent, HostShared};
use crate::net::{ALPN_BRIDGE, close};
use crate::proto::browser::{
    self, BrowserMsg, BrowserToHost, HostToBrowser, KIND_INPUT, KIND_OUTPUT, MAX_BINARY_DATA,
};
use crate::proto::{ErrorCode, Frame, Input, ReadError, Role, WireError};

/// Browser sockets one bridge connection may carry at once.
const MAX_SOCKETS: usize = crate::net::MAX_STREAMS as usize;
/// Channels (attached sessions) one browser socket may have open.
const MAX_CHANNELS: usize = 32;
/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Mode byte of message 1: pairing with a one-time code.
pub const MODE_PAIR: u8 = 0x01;
/// Mode byte of message 1: a paired browser.
pub const MODE_DEVICE: u8 = 0x02;

/// The Noise prologue of a browser channel to host `host_id`.
pub fn prologue(host_id: &[u8; 32]) -> Vec<u8> {
    let mut p = ALPN_BRIDGE.to_vec();
    p.extend_from_slice(host_id);
    p
}

/// Serves one connection from a bridge until it closes or the host stops.
pub async fn serve(host: Arc<HostShared>, conn: Connection) {
    let mut sockets = JoinSet::new();
    loop {
        tokio::select! {
            _ = host.shutdown.cancelled() => {
                conn.close(close::SHUTTING_DOWN.into(), b"the host is shutting down");
                break;
            }
            stream = conn.accept_bi() => {
                let Ok((mut send, recv)) = stream else { break };
                if sockets.len() >= MAX_SOCKETS {
                    let _ = send.reset(close::PROTOCOL.into());
                    continue;
                }
                let host = host.clone();
                sockets.spawn(async move { socket(host, send, recv).await });
            }
            Some(_) = sockets.join_next(), if !sockets.is_empty() => {}
        }
    }
    sockets.shutdown().await;
}

/// Reads one `u16 BE length | bytes` message; `None` at a clean end of stream.
async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let len = match r.read_u16().await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

struct Handshake {
    transport: Transport,
    device: [u8; 32],
    role: Role,
    /// Set when this socket is pairing: the pairing id and the new device psk.
    pairing: Option<[u8; 16]>,
}

async fn handshake(
    host: &HostShared,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Result<Handshake, String> {
    let msg1 = read_msg(recv)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("closed before the handshake")?;
    let prologue = prologue(host.endpoint.id().as_bytes());
    let Ok((responder, payload)) = Responder::read_first(&host.identity.noise, &prologue, &msg1)
    else {
        return Err(refuse(send, Refusal::Handshake).await.to_string());
    };
    let device = responder.remote_static();
    let (psk, role, pairing) = match payload.as_slice() {
        [MODE_PAIR, id @ ..] if id.len() == 16 => {
            let mut pid = [0u8; 16];
            pid.copy_from_slice(id);
            match host.pairings.lookup(&pid) {
                Ok((secret, role)) => {
                    (zeroize::Zeroizing::new(*secret.as_bytes()), role, Some(pid))
                }
                Err(r) => return Err(refuse(send, r).await.to_string()),
            }
        }
        [MODE_DEVICE] => match host.devices.browser(&device) {
            Some((_, role, psk)) => (psk, role, None),
            None => {
                let r = if host.devices.is_revoked(&device) {
                    Refusal::Revoked
                } else {
                    Refusal::NotPaired
                };
                return Err(refuse(send, r).await.to_string());
            }
        },
        _ => return Err(refuse(send, Refusal::Handshake).await.to_string()),
    };
    let (transport, msg2) = responder
        .respond(&psk, host.name.as_bytes())
        .map_err(|_| "handshake failed".to_string())?;
    let mut out = vec![0u8];
    out.extend_from_slice(&msg2);
    write_msg(send, &out).await.map_err(|e| e.to_string())?;
    Ok(Handshake {
        transport,
        device,
        role,
        pairing,
    })
}

/// Serves one browser socket.
async fn socket(host: Arc<HostShared>, mut send: SendStream, mut recv: RecvStream) {
    let hs = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&host, &mut send, &mut recv))
        .await
    {
        Ok(Ok(hs)) => hs,
        Ok(Err(e)) => {
            debug!("browser handshake failed: {e}");
            let _ = send.finish();
            return;
        }
        Err(_) => return,
    };
    let Handshake {
        transport,
        device,
        role,
        pairing,
        ..
    } = hs;
    let noise = Arc::new(Mutex::new(transport));
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(16);
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<u8>>(16);
    let _writer = AbortOnDropHandle::new(tokio::spawn(write_loop(noise.clone(), send, out_rx)));
    let _reader = AbortOnDropHandle::new(tokio::spawn(read_loop(noise.clone(), recv, in_tx)));
    let send_control = |msg: &HostToBrowser| browser::encode_control(msg);

    if let Some(pid) = pairing {
        match complete_pairing(&host, &noise, &mut in_rx, pid, device, role).await {
            Ok(psk) => {
                let paired = HostToBrowser::Paired {
                    role,
                    host_name: host.name.clone(),
                    device_psk: hex::encode(psk),
                };
                if out_tx.send(send_control(&paired)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                info!("browser pairing failed: {e}");
                let _ = host.events.try_send(HostEvent::PairingFailed(e.clone()));
                let err = HostToBrowser::Error {
                    channel: None,
                    error: WireError::new(ErrorCode::Forbidden, e),
                };
                let _ = out_tx.send(send_control(&err)).await;
                return;
            }
        }
    }

    let token = host.shutdown.child_token();
    let _live = host.devices.connect(device, token.clone()).await;
    // Read back what is stored: it is the truth for a device that just paired, too.
    let Some((name, role, _)) = host.devices.browser(&device) else {
        return;
    };
    host.devices
        .audit(
            Some(device),
            "connect",
            format!("{name} through the bridge"),
        )
        .await;
    let hello = HostToBrowser::Hello {
        host_name: host.name.clone(),
        role,
        instance: host.instance,
    };
    if out_tx.send(send_control(&hello)).await.is_err() {
        return;
    }
    let ctx = StreamCtx {
        host: host.clone(),
        role,
        device,
    };
    let mut channels: HashMap<u32, mpsc::Sender<Frame>> = HashMap::new();
    let mut tasks: JoinSet<Option<u32>> = JoinSet::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            msg = in_rx.recv() => {
                let Some(msg) = msg else { break };
                let msg = match browser::decode::<BrowserToHost>(&msg, KIND_INPUT) {
                    Ok(m) => m,
                    Err(e) => {
                        let err = HostToBrowser::Error {
                            channel: None,
                            error: WireError::new(ErrorCode::Protocol, e.to_string()),
                        };
                        let _ = out_tx.send(send_control(&err)).await;
                        break;
                    }
                };
                if let Err(e) = dispatch(&ctx, msg, &mut channels, &mut tasks, &out_tx).await {
                    let err = HostToBrowser::Error { channel: None, error: e };
                    let _ = out_tx.send(send_control(&err)).await;
                    break;
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(Some(channel)) = done {
                    channels.remove(&channel);
                }
            }
        }
    }
    drop(channels);
    tasks.shutdown().await;
}

async fn complete_pairing(
    host: &HostShared,
    noise: &Mutex<Transport>,
    in_rx: &mut mpsc::Receiver<Vec<u8>>,
    pid: [u8; 16],
    device: [u8; 32],
    role: Role,
) -> Result<[u8; 32], String> {
    // The reader task drops messages that do not decrypt and ends the socket; a browser that
    // did not know the secret therefore never gets here.
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, in_rx.recv())
        .await
        .ok()
        .flatten();
    let Some(first) = first else {
        host.pairings.fail(&pid);
        return Err("the browser does not know the pairing secret".into());
    };
    let name = match browser::decode::<BrowserToHost>(&first, KIND_INPUT) {
        Ok(BrowserMsg::Control(BrowserToHost::PairConfirm { name })) => {
            super::pairing::clean_name(&name).ok_or("bad device name")?
        }
        _ => return Err("expected pair_confirm".into()),
    };
    host.pairings.consume(&pid).map_err(|r| r.to_string())?;
    let psk: [u8; 32] = rand::random();
    host.devices
        .add_browser(device, name.clone(), role, psk)
        .await
        .map_err(|e| e.to_string())?;
    let code = short_code(&lock(noise).handshake_hash());
    info!(device = %hex::encode(&device[..4]), %name, "browser paired");
    let _ = host.events.try_send(HostEvent::Paired {
        name: name.clone(),
        device: hex::encode(device),
        role,
        code,
    });
    Ok(psk)
}

fn lock(m: &Mutex<Transport>) -> std::sync::MutexGuard<'_, Transport> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn write_loop(
    noise: Arc<Mutex<Transport>>,
    mut send: SendStream,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(plain) = rx.recv().await {
        let Ok(ct) = lock(&noise).encrypt(&plain) else {
            break;
        };
        if write_msg(&mut send, &ct).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}

async fn read_loop(noise: Arc<Mutex<Transport>>, mut recv: RecvStream, tx: mpsc::Sender<Vec<u8>>) {
    while let Ok(Some(ct)) = read_msg(&mut recv).await {
        // Noise nonces are implicit: a message that does not decrypt ends the channel.
        let Ok(plain) = lock(&noise).decrypt(&ct) else {
            break;
        };
        if tx.send(plain).await.is_err() {
            break;
        }
    }
}

async fn dispatch(
    ctx: &StreamCtx,
    msg: BrowserMsg<BrowserToHost>,
    channels: &mut HashMap<u32, mpsc::Sender<Frame>>,
    tasks: &mut JoinSet<Option<u32>>,
    out: &mpsc::Sender<Vec<u8>>,
) -> Result<(), WireError> {
    let to_channel = |channels: &HashMap<u32, mpsc::Sender<Frame>>, channel: u32| {
        channels.get(&channel).cloned().ok_or_else(|| {
            WireError::new(
                ErrorCode::Protocol,
                format!("channel {channel} is not attached"),
            )
        })
    };
    match msg {
        BrowserMsg::Binary {
            channel,
            position,
            data,
        } => {
            let tx = to_channel(channels, channel)?;
            let _ = tx
                .send(Frame::Input(Input {
                    seq: position,
                    data,
                }))
                .await;
        }
        BrowserMsg::Control(BrowserToHost::Request { id, request }) => {
            let (ctx, out) = (ctx.clone(), out.clone());
            tasks.spawn(async move {
                let result = handle_request(&ctx, request).await;
                let _ = out
                    .send(browser::encode_control(&HostToBrowser::Response {
                        id,
                        result,
                    }))
                    .await;
                None
            });
        }
        BrowserMsg::Control(BrowserToHost::Attach { channel, attach }) => {
            let rx = open_channel(channels, channel)?;
            let (ctx, out) = (ctx.clone(), out.clone());
            tasks.spawn(async move {
                let mut sink = ChannelSink { channel, out };
                let mut source = ChannelSource(rx);
                let end = match ctx.host.sessions.get(attach.session) {
                    Ok(session) => {
                        match run_attach(&ctx, &session, &attach, &mut sink, &mut source).await {
                            Ok(()) | Err(AttachEnd::Gone) => None,
                            Err(AttachEnd::Error(e)) => Some(e),
                        }
                    }
                    Err(e) => Some(session_error(e)),
                };
                if let Some(e) = end {
                    let _ = sink.send(Frame::Error(e)).await;
                }
                Some(channel)
            });
        }
        BrowserMsg::Control(BrowserToHost::AgentAttach { channel, attach }) => {
            let rx = open_channel(channels, channel)?;
            let (ctx, out) = (ctx.clone(), out.clone());
            tasks.spawn(async move {
                let mut sink = ChannelSink { channel, out };
                let mut source = ChannelSource(rx);
                let end =
                    match super::agent_stream::run(&ctx, &attach, &mut sink, &mut source).await {
                        Ok(()) | Err(AttachEnd::Gone) => None,
                        Err(AttachEnd::Error(e)) => Some(e),
                    };
                if let Some(e) = end {
                    let _ = sink.send(Frame::Error(e)).await;
                }
                Some(channel)
            });
        }
        BrowserMsg::Control(BrowserToHost::Resize { channel, size }) => {
            let _ = to_channel(channels, channel)?
                .send(Frame::Resize(size))
                .await;
        }
        BrowserMsg::Control(BrowserToHost::Detach { channel }) => {
            let _ = to_channel(channels, channel)?.send(Frame::Detach).await;
        }
        BrowserMsg::Control(BrowserToHost::PairConfirm { .. }) => {
            return Err(WireError::new(ErrorCode::Protocol, "already paired"));
        }
    }
    Ok(())
}

/// Registers channel number `channel` (terminal or agent) and returns where its frames from the
/// browser arrive; refuses a number in use and more than [`MAX_CHANNELS`].
fn open_channel(
    channels: &mut HashMap<u32, mpsc::Sender<Frame>>,
    channel: u32,
) -> Result<mpsc::Receiver<Frame>, WireError> {
    if channels.contains_key(&channel) {
        return Err(WireError::new(
            ErrorCode::Protocol,
            format!("channel {channel} is already attached"),
        ));
    }
    if channels.len() >= MAX_CHANNELS {
        return Err(WireError::new(ErrorCode::Limit, "too many channels"));
    }
    let (tx, rx) = mpsc::channel(32);
    channels.insert(channel, tx);
    Ok(rx)
}

/// Frames of one channel, encoded for the browser and queued on the socket.
struct ChannelSink {
    channel: u32,
    out: mpsc::Sender<Vec<u8>>,
}

impl FrameSink for ChannelSink {
    async fn send(&mut self, frame: Frame) -> Result<(), ()> {
        let channel = self.channel;
        let control = |m: HostToBrowser| browser::encode_control(&m);
        let msgs = match frame {
            Frame::Output(o) => {
                let mut v = Vec::with_capacity(o.data.len() / MAX_BINARY_DATA + 1);
                let mut offset = o.offset;
                for chunk in o.data.chunks(MAX_BINARY_DATA) {
                    v.push(browser::encode_binary(KIND_OUTPUT, channel, offset, chunk));
                    offset += chunk.len() as u64;
                }
                v
            }
            Frame::Attached(attached) => {
                vec![control(HostToBrowser::Attached { channel, attached })]
            }
            Frame::Gap(gap) => vec![control(HostToBrowser::Gap { channel, gap })],
            Frame::InputAck(a) => vec![control(HostToBrowser::InputAck {
                channel,
                seq: a.seq,
            })],
            Frame::Exited(exited) => vec![control(HostToBrowser::Exited { channel, exited })],
            Frame::AgentAttached(attached) => {
                vec![control(HostToBrowser::AgentAttached { channel, attached })]
            }
            Frame::AgentEvent(mut event) => {
                let mut m = control(HostToBrowser::AgentEvent {
                    channel,
                    event: event.clone(),
                });
                if m.len() > browser::MAX_PLAINTEXT {
                    // One Noise message cannot hold it: say so instead (the diff request
                    // and the native stream carry the whole thing).
                    event.data = format!("{{\"truncated\":true,\"bytes\":{}}}", event.data.len());
                    m = control(HostToBrowser::AgentEvent { channel, event });
                }
                vec![m]
            }
            Frame::Error(error) => vec![control(HostToBrowser::Error {
                channel: Some(channel),
                error,
            })],
            // Nothing else is sent on a session stream.
            _ => return Ok(()),
        };
        for m in msgs {
            self.out.send(m).await.map_err(|_| ())?;
        }
        Ok(())
    }
}

/// Frames for one channel, as the socket's reader demultiplexed them.
struct ChannelSource(mpsc::Receiver<Frame>);

impl FrameSource for ChannelSource {
    async fn next(&mut self) -> Result<Frame, ReadError> {
        self.0.recv().await.ok_or(ReadError::Closed)
    }
}
