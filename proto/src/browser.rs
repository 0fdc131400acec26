//! The browser channel: what travels inside the Noise transport messages between a browser and
//! the host.
//!
//! Every Noise plaintext is one **envelope**: the channel number as a postcard varint (`u32`),
//! then one frame body exactly as on a native stream (type byte, postcard payload; see
//! [`crate::frame`]), without the `u32` length prefix, since the Noise message delimits it.
//!
//! Channel 0 is the control channel: [`crate::Frame::HostHello`], requests and responses,
//! pings, pairing and [`crate::Frame::Close`]. Every other channel is one attachment, the
//! equivalent of a native stream: the browser opens it by sending `Attach` or `AgentAttach` on
//! a channel number it has not used on this socket, and it ends with `Exited`, `Error` or the
//! browser's `Detach`.

use crate::{Frame, FrameError};

/// The largest Noise plaintext (a Noise message is at most 65535 bytes, 16 of them the tag).
pub const MAX_PLAINTEXT: usize = 65535 - 16;

/// The control channel.
pub const CONTROL: u32 = 0;

/// The most terminal bytes one `Output` or `Input` frame carries on a browser channel, so that
/// its envelope fits one Noise message: 65519 minus at most 5 bytes of channel, 1 type byte,
/// 10 bytes of offset or sequence number and 3 bytes of length. The host splits larger output.
pub const MAX_BROWSER_CHUNK: usize = 65500;

/// Channels (attachments) one browser socket may have open at once.
pub const MAX_CHANNELS: usize = 32;

/// Why an envelope could not be read. Each ends the socket: the channel it was meant for is
/// unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Nothing, not even a channel number.
    #[error("empty message")]
    Empty,
    /// Larger than a Noise plaintext can be.
    #[error("message of {0} bytes is larger than a Noise message can carry")]
    TooLarge(usize),
    /// The channel number is not a valid varint `u32`.
    #[error("bad channel number")]
    BadChannel,
}

/// Encodes `frame` for `channel`.
pub fn encode(channel: u32, frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    push_varint(&mut out, channel);
    frame.encode_body_into(&mut out);
    out
}

/// Decodes an envelope: the channel, and the frame or why it does not decode (which ends that
/// channel only).
pub fn decode(bytes: &[u8]) -> Result<(u32, Result<Frame, FrameError>), EnvelopeError> {
    if bytes.is_empty() {
        return Err(EnvelopeError::Empty);
    }
    if bytes.len() > MAX_PLAINTEXT {
        return Err(EnvelopeError::TooLarge(bytes.len()));
    }
    let (channel, body) =
        postcard::take_from_bytes::<u32>(bytes).map_err(|_| EnvelopeError::BadChannel)?;
    Ok((channel, Frame::decode(body)))
}

fn push_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, Output, Request, RequestFrame, WireError};
    use proptest::prelude::*;

    #[test]
    fn envelopes_carry_a_channel_and_a_frame_body() {
        let out = Frame::Output(Output {
            offset: 1 << 40,
            data: b"hi".to_vec(),
        });
        let b = encode(7, &out);
        // channel 7 | type 0x12 | offset varint | len 2 | "hi"
        assert_eq!(hex::encode(&b), "07128080808080200268 69".replace(' ', ""));
        assert_eq!(decode(&b), Ok((7, Ok(out))));
        let req = Frame::Request(RequestFrame {
            id: 3,
            request: Request::ListSessions,
        });
        assert_eq!(hex::encode(encode(CONTROL, &req)), "00030300");
        let big = encode(300, &Frame::Detach);
        assert_eq!(hex::encode(&big), "ac0218");
        assert_eq!(decode(&big), Ok((300, Ok(Frame::Detach))));
    }

    #[test]
    fn a_bad_frame_names_its_channel_and_a_bad_envelope_does_not() {
        assert_eq!(decode(&[]), Err(EnvelopeError::Empty));
        assert_eq!(decode(&[0x80]), Err(EnvelopeError::BadChannel));
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(EnvelopeError::BadChannel)
        );
        assert_eq!(decode(&[3]), Ok((3, Err(FrameError::Empty))));
        assert_eq!(
            decode(&[3, 0x7e]),
            Ok((3, Err(FrameError::UnknownType(0x7e))))
        );
        let mut huge = vec![1u8];
        huge.resize(MAX_PLAINTEXT + 1, 0);
        assert_eq!(
            decode(&huge),
            Err(EnvelopeError::TooLarge(MAX_PLAINTEXT + 1))
        );
        let err = Frame::Error(WireError::new(ErrorCode::NotFound, "x"));
        assert_eq!(decode(&encode(u32::MAX, &err)), Ok((u32::MAX, Ok(err))));
    }

    #[test]
    fn the_largest_chunk_fits_one_noise_message() {
        let worst = Frame::Output(Output {
            offset: u64::MAX,
            data: vec![0; MAX_BROWSER_CHUNK],
        });
        assert!(encode(u32::MAX, &worst).len() <= MAX_PLAINTEXT);
        let input = Frame::Input(crate::Input {
            seq: u64::MAX,
            data: vec![0; MAX_BROWSER_CHUNK],
        });
        assert!(encode(u32::MAX, &input).len() <= MAX_PLAINTEXT);
        let repaint = Frame::Repaint(crate::Repaint {
            offset: u64::MAX,
            skipped: u64::MAX,
            size: crate::WinSize {
                cols: u16::MAX,
                rows: u16::MAX,
            },
            scrollback: u32::MAX,
            data: vec![0; crate::MAX_REPAINT_CHUNK],
            more: true,
        });
        assert!(encode(u32::MAX, &repaint).len() <= MAX_PLAINTEXT);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn channel_numbers_round_trip(channel in any::<u32>()) {
            prop_assert_eq!(decode(&encode(channel, &Frame::Detach)), Ok((channel, Ok(Frame::Detach))));
        }
    }
}
