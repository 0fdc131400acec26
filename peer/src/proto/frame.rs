//! The frame codec: one registry of frame types and the bytes that carry them.
//!
//! On a QUIC stream every frame is `len: u32 BE | type: u8 | payload`, where `len` counts the
//! type byte and the payload, and the payload is the postcard encoding of the message that the
//! type names. The decoder is sans-IO: it takes a frame body and returns a [`Frame`] or a
//! [`FrameError`]; it never panics and never allocates more than the body it was given.

use serde::{Serialize, de::DeserializeOwned};

use super::messages::*;

/// The largest frame body (type byte + payload) either side accepts.
pub const MAX_FRAME: usize = 256 * 1024;

/// The largest chunk of terminal bytes carried in one [`Output`] or [`Input`] frame.
pub const MAX_CHUNK: usize = 64 * 1024;

/// The registry of frame types. Discriminants are wire values and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum FrameType {
    /// client → host, first frame of the control stream.
    ClientHello = 0x01,
    /// host → client, answer to [`FrameType::ClientHello`].
    HostHello = 0x02,
    /// client → host request on the control stream.
    Request = 0x03,
    /// host → client answer to a request.
    Response = 0x04,
    /// client → host, first frame of a session stream.
    Attach = 0x10,
    /// host → client, answer to [`FrameType::Attach`].
    Attached = 0x11,
    /// host → client terminal output at an absolute offset.
    Output = 0x12,
    /// host → client: output the client asked for is no longer in the buffer.
    Gap = 0x13,
    /// host → client: the session's process ended; no output follows.
    Exited = 0x14,
    /// client → host keystrokes with a sequence number.
    Input = 0x15,
    /// host → client: inputs up to this sequence number were applied.
    InputAck = 0x16,
    /// client → host window size.
    Resize = 0x17,
    /// client → host: detach this stream cleanly.
    Detach = 0x18,
    /// either direction: an error on this stream; the stream ends after it.
    Error = 0x1f,
    /// local CLI → host over the control socket.
    LocalRequest = 0x20,
    /// host → local CLI over the control socket.
    LocalReply = 0x21,
    /// client → host, first frame of an agent event stream.
    AgentAttach = 0x30,
    /// host → client, answer to [`FrameType::AgentAttach`].
    AgentAttached = 0x31,
    /// host → client, one transcript event of an agent session.
    AgentEvent = 0x32,
}

impl FrameType {
    /// Maps a wire byte to a frame type.
    pub fn from_u8(b: u8) -> Option<Self> {
        use FrameType::*;
        Some(match b {
            0x01 => ClientHello,
            0x02 => HostHello,
            0x03 => Request,
            0x04 => Response,
            0x10 => Attach,
            0x11 => Attached,
            0x12 => Output,
            0x13 => Gap,
            0x14 => Exited,
            0x15 => Input,
            0x16 => InputAck,
            0x17 => Resize,
            0x18 => Detach,
            0x1f => Error,
            0x20 => LocalRequest,
            0x21 => LocalReply,
            0x30 => AgentAttach,
            0x31 => AgentAttached,
            0x32 => AgentEvent,
            _ => return None,
        })
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// See [`FrameType::ClientHello`].
    ClientHello(ClientHello),
    /// See [`FrameType::HostHello`].
    HostHello(HostHello),
    /// See [`FrameType::Request`].
    Request(RequestFrame),
    /// See [`FrameType::Response`].
    Response(ResponseFrame),
    /// See [`FrameType::Attach`].
    Attach(Attach),
    /// See [`FrameType::Attached`].
    Attached(Attached),
    /// See [`FrameType::Output`].
    Output(Output),
    /// See [`FrameType::Gap`].
    Gap(Gap),
    /// See [`FrameType::Exited`].
    Exited(Exited),
    /// See [`FrameType::Input`].
    Input(Input),
    /// See [`FrameType::InputAck`].
    InputAck(InputAck),
    /// See [`FrameType::Resize`].
    Resize(WinSize),
    /// See [`FrameType::Detach`].
    Detach,
    /// See [`FrameType::Error`].
    Error(WireError),
    /// See [`FrameType::LocalRequest`].
    LocalRequest(LocalRequest),
    /// See [`FrameType::LocalReply`].
    LocalReply(LocalReply),
    /// See [`FrameType::AgentAttach`].
    AgentAttach(AgentAttach),
    /// See [`FrameType::AgentAttached`].
    AgentAttached(AgentAttached),
    /// See [`FrameType::AgentEvent`].
    AgentEvent(AgentEvent),
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
    /// The registry entry of this frame.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::ClientHello(_) => FrameType::ClientHello,
            Frame::HostHello(_) => FrameType::HostHello,
            Frame::Request(_) => FrameType::Request,
            Frame::Response(_) => FrameType::Response,
            Frame::Attach(_) => FrameType::Attach,
            Frame::Attached(_) => FrameType::Attached,
            Frame::Output(_) => FrameType::Output,
            Frame::Gap(_) => FrameType::Gap,
            Frame::Exited(_) => FrameType::Exited,
            Frame::Input(_) => FrameType::Input,
            Frame::InputAck(_) => FrameType::InputAck,
            Frame::Resize(_) => FrameType::Resize,
            Frame::Detach => FrameType::Detach,
            Frame::Error(_) => FrameType::Error,
            Frame::LocalRequest(_) => FrameType::LocalRequest,
            Frame::LocalReply(_) => FrameType::LocalReply,
            Frame::AgentAttach(_) => FrameType::AgentAttach,
            Frame::AgentAttached(_) => FrameType::AgentAttached,
            Frame::AgentEvent(_) => FrameType::AgentEvent,
        }
    }

    /// Encodes the frame with its length prefix, ready to write to a stream.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; 5];
        out[4] = self.frame_type() as u8;
        let res = match self {
            Frame::ClientHello(m) => append(&mut out, m),
            Frame::HostHello(m) => append(&mut out, m),
            Frame::Request(m) => append(&mut out, m),
            Frame::Response(m) => append(&mut out, m),
            Frame::Attach(m) => append(&mut out, m),
            Frame::Attached(m) => append(&mut out, m),
            Frame::Output(m) => append(&mut out, m),
            Frame::Gap(m) => append(&mut out, m),
            Frame::Exited(m) => append(&mut out, m),
            Frame::Input(m) => append(&mut out, m),
            Frame::InputAck(m) => append(&mut out, m),
            Frame::Resize(m) => append(&mut out, m),
            Frame::Detach => Ok(()),
            Frame::Error(m) => append(&mut out, m),
            Frame::LocalRequest(m) => append(&mut out, m),
            Frame::LocalReply(m) => append(&mut out, m),
            Frame::AgentAttach(m) => append(&mut out, m),
            Frame::AgentAttached(m) => append(&mut out, m),
            Frame::AgentEvent(m) => append(&mut out, m),
        };
        // Serializing our own plain data types into a Vec cannot fail; should it ever, the
        // frame goes out as a (decodable) error instead of a corrupt one.
        if res.is_err() {
            return Frame::Error(WireError::new(ErrorCode::Internal, "encode failed")).encode();
        }
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        out
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
        Ok(match ty {
            FrameType::ClientHello => Frame::ClientHello(parse(ty, payload)?),
            FrameType::HostHello => Frame::HostHello(parse(ty, payload)?),
            FrameType::Request => Frame::Request(parse(ty, payload)?),
            FrameType::Response => Frame::Response(parse(ty, payload)?),
            FrameType::Attach => Frame::Attach(parse(ty, payload)?),
            FrameType::Attached => Frame::Attached(parse(ty, payload)?),
            FrameType::Output => Frame::Output(parse(ty, payload)?),
            FrameType::Gap => Frame::Gap(parse(ty, payload)?),
            FrameType::Exited => Frame::Exited(parse(ty, payload)?),
            FrameType::Input => Frame::Input(parse(ty, payload)?),
            FrameType::InputAck => Frame::InputAck(parse(ty, payload)?),
            FrameType::Resize => Frame::Resize(parse(ty, payload)?),
            FrameType::Detach => {
                if !payload.is_empty() {
                    return Err(FrameError::Trailing(ty));
                }
                Frame::Detach
            }
            FrameType::Error => Frame::Error(parse(ty, payload)?),
            FrameType::LocalRequest => Frame::LocalRequest(parse(ty, payload)?),
            FrameType::LocalReply => Frame::LocalReply(parse(ty, payload)?),
            FrameType::AgentAttach => Frame::AgentAttach(parse(ty, payload)?),
            FrameType::AgentAttached => Frame::AgentAttached(parse(ty, payload)?),
            FrameType::AgentEvent => Frame::AgentEvent(parse(ty, payload)?),
        })
    }
}

fn append<T: Serialize>(out: &mut Vec<u8>, msg: &T) -> Result<(), postcard::Error> {
    let bytes = postcard::to_stdvec(msg)?;
    out.extend_from_slice(&bytes);
    Ok(())
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
            kind: "state".into(),
            data: "{}".into(),
        });
        assert_eq!(
            hex::encode(ev.encode()),
            "0000000d32010203057374617465027b7d"
        );
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
                    }
                )),
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
