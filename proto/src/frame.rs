//! The frame codec: one registry of frame types and the bytes that carry them.
//!
//! On a QUIC stream and on the control socket every frame is `len: u32 BE | type: u8 |
//! payload`, where `len` counts the type byte and the payload, and the payload is the postcard
//! encoding of the message that the type names. Inside a browser's Noise channel the same frame
//! body (type byte and payload) travels in an envelope ([`crate::browser`]). The decoder is
//! sans-IO: it takes a frame body and returns a [`Frame`] or a [`FrameError`]; it never panics
//! and never allocates more than the body it was given.
//!
//! The registry is declared once, in the [`frames!`] invocation below: the type byte, the
//! message type, who sends it, and the docs. The wire values never change; new types take new
//! bytes. The TypeScript codec of the web app is generated from the same declaration
//! (`proto/tests/ts_codec.rs` reads this file).

use serde::{Serialize, de::DeserializeOwned};

use crate::*;

/// The largest frame body (type byte + payload) either side accepts.
pub const MAX_FRAME: usize = 256 * 1024;

/// The largest chunk of terminal bytes carried in one [`Output`] or [`Input`] frame.
pub const MAX_CHUNK: usize = 64 * 1024;

/// The most picture bytes one [`Repaint`] frame carries, on native streams and browser
/// channels alike (its envelope then fits one Noise message); larger pictures take several.
pub const MAX_REPAINT_CHUNK: usize = 65400;

/// Who may send a frame type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// Only a client (native or browser) sends it; the host refuses it from anyone else.
    Client,
    /// Only the host sends it; a client refuses it.
    Host,
    /// Either side.
    Either,
}

impl Sender {
    /// Whether a frame with this sender may come from `from` (`Client` or `Host`).
    pub fn allows(self, from: Sender) -> bool {
        self == Sender::Either || self == from
    }
}

/// Declares the registry: `byte Name(Message) sender,` or `byte Name sender,` for a frame
/// without payload. Generates [`FrameType`], [`Frame`] and their codec.
macro_rules! frames {
    ($( $(#[doc = $doc:literal])* $byte:literal $name:ident $(($msg:ty))? $sender:ident, )*) => {
        /// The registry of frame types. Discriminants are wire values and never change.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum FrameType {
            $( $(#[doc = $doc])* $name = $byte, )*
        }

        impl FrameType {
            /// Every frame type, in registry order.
            pub const ALL: &'static [FrameType] = &[$(FrameType::$name,)*];

            /// Maps a wire byte to a frame type.
            pub fn from_u8(b: u8) -> Option<Self> {
                match b {
                    $( $byte => Some(FrameType::$name), )*
                    _ => None,
                }
            }

            /// Who may send frames of this type.
            pub fn sender(self) -> Sender {
                match self {
                    $( FrameType::$name => Sender::$sender, )*
                }
            }
        }

        /// One decoded frame.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Frame {
            $( $(#[doc = $doc])* $name $(($msg))?, )*
        }

        impl Frame {
            /// The registry entry of this frame.
            pub fn frame_type(&self) -> FrameType {
                match self {
                    $( frames!(@pat $name $($msg)?) => FrameType::$name, )*
                }
            }

            /// Appends the payload (postcard) to `out`.
            fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
                match self {
                    $( frames!(@bind m $name $($msg)?) => frames!(@enc out m $($msg)?), )*
                }
            }

            /// Decodes the payload of a frame of type `ty`.
            fn decode_payload(ty: FrameType, payload: &[u8]) -> Result<Frame, FrameError> {
                Ok(match ty {
                    $( FrameType::$name => frames!(@dec ty payload $name $($msg)?), )*
                })
            }
        }
    };
    (@pat $name:ident $msg:ty) => { Frame::$name(_) };
    (@pat $name:ident) => { Frame::$name };
    (@bind $m:ident $name:ident $msg:ty) => { Frame::$name($m) };
    (@bind $m:ident $name:ident) => { Frame::$name };
    (@enc $out:ident $m:ident $msg:ty) => { append($out, $m) };
    (@enc $out:ident $m:ident) => { Ok(()) };
    (@dec $ty:ident $p:ident $name:ident $msg:ty) => { Frame::$name(parse($ty, $p)?) };
    (@dec $ty:ident $p:ident $name:ident) => {{
        if !$p.is_empty() {
            return Err(FrameError::Trailing($ty));
        }
        Frame::$name
    }};
}

frames! {
    /// client → host, first frame of the control stream.
    0x01 ClientHello(ClientHello) Client,
    /// host → client, answer to [`FrameType::ClientHello`]; on a browser channel, the first
    /// frame on channel 0 after the handshake (and after pairing).
    0x02 HostHello(HostHello) Host,
    /// client → host request on the control stream (channel 0).
    0x03 Request(RequestFrame) Client,
    /// host → client answer to a request.
    0x04 Response(ResponseFrame) Host,
    /// Either side, control stream (channel 0): are you there? Answered by [`FrameType::Pong`]
    /// with the same number.
    0x05 Ping(u64) Either,
    /// Either side: the answer to [`FrameType::Ping`].
    0x06 Pong(u64) Either,
    /// host → client, control stream (channel 0), right after [`FrameType::HostHello`] on every
    /// connection: where the host is now and how to get into its relays.
    0x07 HostRoutes(HostRoutes) Host,
    /// client → host, first frame of an attach stream (a browser: of a new channel).
    0x10 Attach(Attach) Client,
    /// host → client, answer to [`FrameType::Attach`].
    0x11 Attached(Attached) Host,
    /// host → client terminal output at an absolute offset.
    0x12 Output(Output) Host,
    /// host → client: output the client asked for is no longer in the buffer.
    0x13 Gap(Gap) Host,
    /// host → client: the session's process ended; no output follows.
    0x14 Exited(Exited) Host,
    /// client → host keystrokes with a sequence number.
    0x15 Input(Input) Client,
    /// host → client: inputs up to this sequence number were applied.
    0x16 InputAck(InputAck) Host,
    /// client → host window size.
    0x17 Resize(WinSize) Client,
    /// client → host, attach stream: output before this offset has arrived. From the first
    /// one on, the host keeps what the client has not acknowledged for it to resume from, and
    /// sends at most [`crate::OUTPUT_WINDOW`] past it.
    0x1b Received(u64) Client,
    /// client → host: detach this stream (channel) cleanly.
    0x18 Detach Client,
    /// host → client, browser channel 0 only: the socket ends now, for this reason (the
    /// WebSocket close code that follows says the same, but only this frame is authenticated).
    0x1e Close(CloseReason) Host,
    /// either direction: an error on this stream (channel); the stream ends after it.
    0x1f Error(WireError) Either,
    /// local CLI → host over the control socket.
    0x20 LocalRequest(LocalRequest) Client,
    /// host → local CLI over the control socket.
    0x21 LocalReply(LocalReply) Host,
    /// client → host, first frame of an agent event stream (a browser: of a new channel).
    0x30 AgentAttach(AgentAttach) Client,
    /// host → client, answer to [`FrameType::AgentAttach`].
    0x31 AgentAttached(AgentAttached) Host,
    /// host → client, one transcript event of an agent session.
    0x32 AgentEvent(AgentEvent) Host,
    /// browser → host, channel 0, the first frame after a pairing handshake: the name to list
    /// this browser under.
    0x40 PairBrowser(PairBrowser) Client,
    /// host → browser, channel 0: pairing done; keep the device psk. [`FrameType::HostHello`]
    /// follows.
    0x41 BrowserPaired(BrowserPaired) Host,
    /// client → host, first frame of a notice stream (native clients: `peer watch`).
    0x50 Watch(Watch) Client,
    /// host → client, answer to [`FrameType::Watch`]: notices follow as they happen.
    0x51 Watching Host,
    /// host → client: one notice ([`crate::push`]).
    0x52 Notice(Notice) Host,
    /// host → client, attach stream: a picture of the screen in place of output bytes (after
    /// `Attached`, or in place of a `Gap`), for clients that asked with `Attach.screen`.
    0x19 Repaint(Repaint) Host,
    /// host → client, attach stream: echo of inputs has arrived by an offset, for clients that
    /// asked with `Attach.echo_acks`.
    0x1a EchoAck(EchoAck) Host,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame had no type byte.
    #[error("empty frame")]
    Empty,
    /// The frame is larger than [`MAX_FRAME`].
    #[error("frame of {len} bytes is larger than the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The type byte is not in the registry.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// The payload does not decode as the message its type names.
    #[error("malformed {0:?} frame")]
    Malformed(FrameType),
    /// The payload decoded but left bytes over.
    #[error("trailing bytes after {0:?} frame")]
    Trailing(FrameType),
}

impl Frame {
    /// Encodes the frame with its length prefix, ready to write to a stream.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; 4];
        self.encode_body_into(&mut out);
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        out
    }

    /// Appends the frame body (type byte + payload, no length prefix) to `out`.
    pub fn encode_body_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(self.frame_type() as u8);
        // Serializing our own plain data types into a Vec cannot fail; should it ever, the
        // frame goes out as a (decodable) error instead of a corrupt one.
        if self.encode_payload(out).is_err() {
            out.truncate(start);
            Frame::Error(WireError::new(ErrorCode::Internal, "encode failed"))
                .encode_body_into(out);
        }
    }

    /// Decodes one frame body (type byte + payload, without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Frame, FrameError> {
        let (&tb, payload) = body.split_first().ok_or(FrameError::Empty)?;
        if body.len() > MAX_FRAME {
            return Err(FrameError::TooLarge {
                len: body.len(),
                max: MAX_FRAME,
            });
        }
        let ty = FrameType::from_u8(tb).ok_or(FrameError::UnknownType(tb))?;
        Frame::decode_payload(ty, payload)
    }
}

fn append<T: Serialize>(out: &mut Vec<u8>, msg: &T) -> Result<(), postcard::Error> {
    postcard::to_io(msg, out).map(|_| ())
}

fn parse<T: DeserializeOwned>(ty: FrameType, payload: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(payload).map_err(|_| FrameError::Malformed(ty))?;
    if !rest.is_empty() {
        return Err(FrameError::Trailing(ty));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(frame: &Frame) -> Vec<u8> {
        let enc = frame.encode();
        let len = u32::from_be_bytes([enc[0], enc[1], enc[2], enc[3]]) as usize;
        assert_eq!(len, enc.len() - 4);
        enc[4..].to_vec()
    }

    #[test]
    fn every_type_byte_round_trips() {
        for b in 0..=255u8 {
            if let Some(t) = FrameType::from_u8(b) {
                assert_eq!(t as u8, b);
            }
        }
        for t in FrameType::ALL {
            assert_eq!(FrameType::from_u8(*t as u8), Some(*t));
        }
    }

    #[test]
    fn golden_agent_frames() {
        let attach = Frame::AgentAttach(AgentAttach {
            session: 3,
            from_seq: 300,
        });
        assert_eq!(hex::encode(attach.encode()), "000000043003ac02");
        let ev = Frame::AgentEvent(AgentEvent {
            session: 1,
            seq: 2,
            at_ms: 3,
            event: AgentEventKind::State {
                state: AgentState::Idle,
                detail: None,
            },
        });
        assert_eq!(hex::encode(ev.encode()), "0000000732010203000300");
        for f in [attach, ev] {
            assert_eq!(Frame::decode(&body(&f)), Ok(f));
        }
        let answer = Frame::Request(RequestFrame {
            id: 7,
            request: Request::AgentAnswer {
                session: 1,
                approval: 2,
                option: Some("allow".into()),
            },
        });
        assert_eq!(
            hex::encode(answer.encode()),
            "0000000c03070801020105616c6c6f77"
        );
    }

    #[test]
    fn golden_output_frame() {
        let f = Frame::Output(Output {
            offset: 300,
            data: b"hi".to_vec(),
        });
        assert_eq!(hex::encode(f.encode()), "0000000612ac02026869");
    }

    #[test]
    fn golden_attach_repaint_echo_ack() {
        let attach = Frame::Attach(Attach {
            session: 1,
            from_offset: u64::MAX,
            client_token: 5,
            size: Some(WinSize { cols: 80, rows: 24 }),
            screen: Some(ScreenRequest { scrollback: 1000 }),
            echo_acks: true,
        });
        assert_eq!(
            hex::encode(attach.encode()),
            // session 1, from u64::MAX, token 5, Some(80x24), Some(1000 lines), echo acks
            "000000141001ffffffffffffffffff010501501801e80701"
        );
        let repaint = Frame::Repaint(Repaint {
            offset: 300,
            skipped: 2,
            size: WinSize { cols: 80, rows: 24 },
            scrollback: 0,
            data: b"hi".to_vec(),
            more: false,
        });
        assert_eq!(
            hex::encode(repaint.encode()),
            "0000000b19ac020250180002686900"
        );
        let ack = Frame::EchoAck(EchoAck {
            seq: 7,
            offset: 300,
            echo: false,
            canonical: true,
        });
        assert_eq!(hex::encode(ack.encode()), "000000061a07ac020001");
        for f in [attach, repaint, ack] {
            assert_eq!(Frame::decode(&body(&f)), Ok(f));
        }
    }

    #[test]
    fn golden_create_session_request() {
        let f = Frame::Request(RequestFrame {
            id: 3,
            request: Request::CreateSession(CreateSession {
                name: None,
                command: vec!["sh".into()],
                cwd: None,
                env: vec![("TERM".into(), "xterm".into())],
                size: WinSize { cols: 80, rows: 24 },
                hold_output: true,
            }),
        });
        assert_eq!(
            hex::encode(f.encode()),
            "0000001803030100010273680001045445524d05787465726d501801"
        );
    }

    #[test]
    fn unknown_type_is_an_error_value() {
        assert_eq!(
            Frame::decode(&[0x7e, 1, 2]),
            Err(FrameError::UnknownType(0x7e))
        );
        assert_eq!(Frame::decode(&[]), Err(FrameError::Empty));
    }

    #[test]
    fn truncated_and_trailing_payloads_are_rejected() {
        let b = body(&Frame::Input(Input {
            seq: 7,
            data: b"abc".to_vec(),
        }));
        assert_eq!(
            Frame::decode(&b[..b.len() - 1]),
            Err(FrameError::Malformed(FrameType::Input))
        );
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            Frame::decode(&long),
            Err(FrameError::Trailing(FrameType::Input))
        );
        assert_eq!(
            Frame::decode(&[FrameType::Detach as u8, 0]),
            Err(FrameError::Trailing(FrameType::Detach))
        );
    }

    #[test]
    fn oversized_body_is_rejected() {
        let mut b = vec![FrameType::Output as u8];
        b.resize(MAX_FRAME + 1, 0);
        assert!(matches!(
            Frame::decode(&b),
            Err(FrameError::TooLarge { .. })
        ));
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(offset, data)| Frame::Output(Output { offset, data })),
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(seq, data)| Frame::Input(Input { seq, data })),
            (any::<u64>(), any::<u64>()).prop_map(|(from, to)| Frame::Gap(Gap { from, to })),
            (any::<u16>(), any::<u16>())
                .prop_map(|(cols, rows)| Frame::Resize(WinSize { cols, rows })),
            any::<u64>().prop_map(Frame::Received),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                proptest::option::of(any::<(u16, u16)>())
            )
                .prop_map(|(session, from_offset, client_token, size)| Frame::Attach(
                    Attach {
                        session,
                        from_offset,
                        client_token,
                        size: size.map(|(cols, rows)| WinSize { cols, rows }),
                        screen: (client_token % 3 == 0).then_some(ScreenRequest {
                            scrollback: session as u32,
                        }),
                        echo_acks: from_offset % 2 == 0,
                    }
                )),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..300),
                any::<bool>()
            )
                .prop_map(|(offset, skipped, data, more)| Frame::Repaint(Repaint {
                    offset,
                    skipped,
                    size: WinSize { cols: 80, rows: 24 },
                    scrollback: 7,
                    data,
                    more,
                })),
            (any::<u64>(), any::<u64>(), any::<bool>(), any::<bool>()).prop_map(
                |(seq, offset, echo, canonical)| Frame::EchoAck(EchoAck {
                    seq,
                    offset,
                    echo,
                    canonical
                })
            ),
            ".{0,40}".prop_map(|m| Frame::Error(WireError::new(ErrorCode::NotFound, m))),
            Just(Frame::Detach),
            (any::<u32>(), proptest::collection::vec(".{0,8}", 0..4)).prop_map(|(id, command)| {
                Frame::Request(RequestFrame {
                    id,
                    request: Request::CreateSession(CreateSession {
                        name: None,
                        command,
                        cwd: None,
                        env: vec![],
                        size: WinSize { cols: 80, rows: 24 },
                        hold_output: id % 2 == 0,
                    }),
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(frame in arb_frame()) {
            prop_assert_eq!(Frame::decode(&body(&frame)), Ok(frame));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Frame::decode(&bytes);
        }

        #[test]
        fn mutated_frames_never_panic(frame in arb_frame(), idx in any::<usize>(), val in any::<u8>()) {
            let mut b = body(&frame);
            let i = idx % b.len();
            b[i] = val;
            let _ = Frame::decode(&b);
        }
    }
}
