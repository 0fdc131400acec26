//! The browser channel: what travels inside the Noise transport messages between a browser
//! (through the mobile bridge) and the host.
//!
//! Every Noise plaintext is one message; its first byte says what it is:
//! - `0x00` + UTF-8 JSON: a control message, [`BrowserToHost`] or [`HostToBrowser`]
//!   (internally tagged by `"type"`; the payload types are the same Rust types the native
//!   protocol carries with postcard, in serde's JSON form).
//! - `0x01` + channel (u32 BE) + offset (u64 BE) + bytes: terminal output, host → browser.
//! - `0x02` + channel (u32 BE) + seq (u64 BE) + bytes: keystrokes, browser → host.
//!
//! A channel is one attached session, numbered by the browser; many run over one socket.

use serde::{Deserialize, Serialize};

use super::messages::{
    AgentAttach, AgentAttached, AgentEvent, Attach, Attached, Exited, Gap, Reply, Request, Role,
    WinSize, WireError,
};

/// The largest Noise plaintext (a Noise message is at most 65535 bytes, 16 of them the tag).
pub const MAX_PLAINTEXT: usize = 65535 - 16;
/// Header bytes of a binary (output/input) message.
pub const BINARY_HEADER: usize = 1 + 4 + 8;
/// The most terminal bytes one binary message carries.
pub const MAX_BINARY_DATA: usize = MAX_PLAINTEXT - BINARY_HEADER;

/// Control messages from the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BrowserToHost {
    /// First message after a pairing handshake: the name to list this browser under.
    PairConfirm {
        /// Device name.
        name: String,
    },
    /// A request, as on the native control stream.
    Request {
        /// Echoed in the response.
        id: u32,
        /// What is asked.
        request: Request,
    },
    /// Attach `channel` to a session.
    Attach {
        /// The browser's channel number.
        channel: u32,
        /// As on a native session stream.
        attach: Attach,
    },
    /// New terminal size for a channel.
    Resize {
        /// Channel.
        channel: u32,
        /// Size.
        size: WinSize,
    },
    /// Detach a channel.
    Detach {
        /// Channel.
        channel: u32,
    },
    /// Attach `channel` to an agent session's event stream.
    AgentAttach {
        /// The browser's channel number.
        channel: u32,
        /// As on a native agent event stream.
        attach: AgentAttach,
    },
}

/// Control messages from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostToBrowser {
    /// Pairing done; the browser keeps `device_psk` (hex) for later connections.
    Paired {
        /// The role given.
        role: Role,
        /// The host's display name.
        host_name: String,
        /// The per-device pre-shared key for the Noise handshake of later connections, hex.
        device_psk: String,
    },
    /// Who the host is, sent first on every device connection.
    Hello {
        /// Host name.
        host_name: String,
        /// The device's role.
        role: Role,
        /// Random per host process; session ids mean something only within one instance.
        instance: u64,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u32,
        /// The outcome.
        result: Result<Reply, WireError>,
    },
    /// A channel is attached.
    Attached {
        /// Channel.
        channel: u32,
        /// As on a native session stream.
        attached: Attached,
    },
    /// Output was lost for a channel.
    Gap {
        /// Channel.
        channel: u32,
        /// The lost range.
        gap: Gap,
    },
    /// Inputs up to `seq` were applied.
    InputAck {
        /// Channel.
        channel: u32,
        /// Highest applied sequence number.
        seq: u64,
    },
    /// The channel's session ended.
    Exited {
        /// Channel.
        channel: u32,
        /// How.
        exited: Exited,
    },
    /// An agent channel is attached; events follow.
    AgentAttached {
        /// Channel.
        channel: u32,
        /// As on a native agent event stream.
        attached: AgentAttached,
    },
    /// One event of an agent session's transcript.
    AgentEvent {
        /// Channel.
        channel: u32,
        /// The event (its `data` is JSON text).
        event: AgentEvent,
    },
    /// An error on a channel (the channel is closed) or, without a channel, on the socket.
    Error {
        /// Channel, if the error is about one.
        channel: Option<u32>,
        /// What went wrong.
        error: WireError,
    },
}

/// One decoded browser-channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserMsg<C> {
    /// A JSON control message.
    Control(C),
    /// Terminal bytes with their channel and offset (output) or sequence number (input).
    Binary {
        /// Channel.
        channel: u32,
        /// Offset (output) or seq (input).
        position: u64,
        /// The bytes.
        data: Vec<u8>,
    },
}

/// Kind byte of a JSON message.
pub const KIND_JSON: u8 = 0x00;
/// Kind byte of terminal output.
pub const KIND_OUTPUT: u8 = 0x01;
/// Kind byte of keystrokes.
pub const KIND_INPUT: u8 = 0x02;

/// Why a browser message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrowserMsgError {
    /// Empty message.
    #[error("empty message")]
    Empty,
    /// Larger than a Noise plaintext can be.
    #[error("message too large")]
    TooLarge,
    /// The kind byte is not one this side accepts.
    #[error("unknown message kind 0x{0:02x}")]
    UnknownKind(u8),
    /// A binary message shorter than its header.
    #[error("truncated binary message")]
    Truncated,
    /// The JSON does not parse as a known message.
    #[error("bad control message: {0}")]
    Json(String),
}

/// Encodes a control message.
pub fn encode_control<C: Serialize>(msg: &C) -> Vec<u8> {
    let mut out = vec![KIND_JSON];
    // Our own plain types always serialize; an empty object is still valid JSON on failure.
    if serde_json::to_writer(&mut out, msg).is_err() {
        out.truncate(1);
        out.extend_from_slice(b"{}");
    }
    out
}

/// Encodes a binary message of `kind` ([`KIND_OUTPUT`] or [`KIND_INPUT`]); `data` must be at
/// most [`MAX_BINARY_DATA`] bytes (callers split larger chunks).
pub fn encode_binary(kind: u8, channel: u32, position: u64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BINARY_HEADER + data.len());
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Decodes a message whose binary kind must be `binary_kind` and whose control messages are `C`.
pub fn decode<C: serde::de::DeserializeOwned>(
    bytes: &[u8],
    binary_kind: u8,
) -> Result<BrowserMsg<C>, BrowserMsgError> {
    let (&kind, rest) = bytes.split_first().ok_or(BrowserMsgError::Empty)?;
    if bytes.len() > MAX_PLAINTEXT {
        return Err(BrowserMsgError::TooLarge);
    }
    if kind == KIND_JSON {
        return serde_json::from_slice(rest)
            .map(BrowserMsg::Control)
            .map_err(|e| BrowserMsgError::Json(e.to_string()));
    }
    if kind != binary_kind {
        return Err(BrowserMsgError::UnknownKind(kind));
    }
    if rest.len() < BINARY_HEADER - 1 {
        return Err(BrowserMsgError::Truncated);
    }
    let (ch, rest) = rest.split_at(4);
    let (pos, data) = rest.split_at(8);
    let mut c = [0u8; 4];
    c.copy_from_slice(ch);
    let mut p = [0u8; 8];
    p.copy_from_slice(pos);
    Ok(BrowserMsg::Binary {
        channel: u32::from_be_bytes(c),
        position: u64::from_be_bytes(p),
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_messages_are_tagged_json() {
        let m = BrowserToHost::Request {
            id: 3,
            request: Request::ListSessions,
        };
        let bytes = encode_control(&m);
        assert_eq!(
            std::str::from_utf8(&bytes[1..]).expect("utf8"),
            r#"{"type":"request","id":3,"request":"ListSessions"}"#
        );
        assert_eq!(
            decode::<BrowserToHost>(&bytes, KIND_INPUT),
            Ok(BrowserMsg::Control(m))
        );
        let d = BrowserToHost::Detach { channel: 2 };
        assert_eq!(
            std::str::from_utf8(&encode_control(&d)[1..]).expect("utf8"),
            r#"{"type":"detach","channel":2}"#
        );
    }

    #[test]
    fn binary_messages_round_trip_and_kinds_are_directional() {
        let b = encode_binary(KIND_OUTPUT, 7, 1 << 40, b"hi");
        assert_eq!(hex::encode(&b), "010000000700000100000000006869");
        assert_eq!(
            decode::<HostToBrowser>(&b, KIND_OUTPUT),
            Ok(BrowserMsg::Binary {
                channel: 7,
                position: 1 << 40,
                data: b"hi".to_vec()
            })
        );
        // The host never accepts output from a browser.
        assert_eq!(
            decode::<BrowserToHost>(&b, KIND_INPUT),
            Err(BrowserMsgError::UnknownKind(KIND_OUTPUT))
        );
        assert_eq!(
            decode::<BrowserToHost>(&b[..5], KIND_INPUT).err(),
            Some(BrowserMsgError::UnknownKind(KIND_OUTPUT))
        );
        assert_eq!(
            decode::<HostToBrowser>(&b[..5], KIND_OUTPUT),
            Err(BrowserMsgError::Truncated)
        );
        assert_eq!(
            decode::<HostToBrowser>(&[], KIND_OUTPUT),
            Err(BrowserMsgError::Empty)
        );
        assert!(matches!(
            decode::<BrowserToHost>(b"\x00{\"type\":\"nope\"}", KIND_INPUT),
            Err(BrowserMsgError::Json(_))
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<BrowserToHost>(&bytes, KIND_INPUT);
            let _ = decode::<HostToBrowser>(&bytes, KIND_OUTPUT);
        }
    }
}
