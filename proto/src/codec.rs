//! Message framing on byte streams that carry whole messages of at most 65535 bytes: the
//! pairing stream (`peer/pair/1`) and a remote bridge's stream to the host (`peer/bridge/1`).
//!
//! ```text
//! message = len: u16 BE (1..=65535) | bytes: len bytes
//! close   = 0x0000 | code: u16 BE | reason_len: u8 | reason: UTF-8    (bridge streams only)
//! ```
//!
//! A message is never empty (a Noise message has at least its 16-byte tag), so a zero length
//! marks a **close record**: the host's instruction to a remote bridge to close the browser's
//! WebSocket with `code` (one of [`crate::close::ws`]) and `reason` once everything before it
//! was delivered, after which the host ends the stream.

/// The largest message.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// Why a message cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Longer than [`MAX_MESSAGE`].
    #[error("message of {0} bytes is longer than 65535")]
    TooLong(usize),
    /// Empty messages are reserved for close records.
    #[error("empty message")]
    Empty,
}

/// `len | bytes`, ready to write.
pub fn frame_message(bytes: &[u8]) -> Result<Vec<u8>, MessageError> {
    if bytes.is_empty() {
        return Err(MessageError::Empty);
    }
    let len = u16::try_from(bytes.len()).map_err(|_| MessageError::TooLong(bytes.len()))?;
    let mut out = Vec::with_capacity(2 + bytes.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(out)
}

/// A close record (see the module docs); the reason is cut to 123 bytes at a character boundary
/// (what a WebSocket close frame can carry).
pub fn close_record(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let reason = &reason.as_bytes()[..cut];
    let mut out = vec![0, 0];
    out.extend_from_slice(&code.to_be_bytes());
    out.push(reason.len() as u8);
    out.extend_from_slice(reason);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_close_records() {
        assert_eq!(frame_message(b"abc"), Ok(vec![0, 3, b'a', b'b', b'c']));
        assert_eq!(frame_message(b""), Err(MessageError::Empty));
        assert_eq!(
            frame_message(&vec![0; 65536]),
            Err(MessageError::TooLong(65536))
        );
        assert_eq!(frame_message(&vec![0; 65535]).map(|m| m.len()), Ok(65537));
        assert_eq!(
            close_record(4100, "bye"),
            vec![0, 0, 0x10, 0x04, 3, b'b', b'y', b'e']
        );
        let long = "é".repeat(100);
        let r = close_record(4102, &long);
        assert_eq!(r[4] as usize, r.len() - 5);
        assert!(r[4] <= 123 && std::str::from_utf8(&r[5..]).is_ok());
    }
}
