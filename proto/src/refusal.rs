//! The host's answer to a handshake's first message: go on, or a refusal.
//!
//! On the native pairing stream and on a browser channel alike, message 2's place holds one
//! status byte: `0x00` followed by Noise message 2, or a [`Refusal`] code followed by a UTF-8
//! reason for people, after which the host ends the stream.

/// Why the host refuses a handshake before it completes. Wire values never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum Refusal {
    /// The host never issued this code (or has restarted since).
    #[error(
        "this pairing code is unknown to the host (it may have restarted); make a new one with `peer pair` on the host"
    )]
    Unknown = 1,
    /// The code expired.
    #[error("this pairing code has expired; make a new one with `peer pair` on the host")]
    Expired = 2,
    /// The code was already used.
    #[error("this pairing code was already used; each code pairs one device")]
    Used = 3,
    /// Too many failed attempts.
    #[error("this pairing code was locked after failed attempts; make a new one")]
    Locked = 4,
    /// The handshake message did not decrypt (wrong host key or a damaged code).
    #[error("the handshake failed: the pairing code does not belong to this host or was altered")]
    Handshake = 5,
    /// A browser reconnecting with a key the host does not know.
    #[error("this browser is not paired with the host; pair it again with a fresh code")]
    NotPaired = 6,
    /// A browser whose device was revoked.
    #[error("this device was revoked on the host")]
    Revoked = 7,
    /// Too many handshakes from this address or in total; try again later.
    #[error("the host is refusing handshakes for a moment (too many attempts); try again shortly")]
    RateLimited = 8,
}

/// The status byte that precedes Noise message 2.
pub const ANSWER_OK: u8 = 0x00;

impl Refusal {
    /// Every refusal, for tables and tests.
    pub const ALL: [Refusal; 8] = [
        Refusal::Unknown,
        Refusal::Expired,
        Refusal::Used,
        Refusal::Locked,
        Refusal::Handshake,
        Refusal::NotPaired,
        Refusal::Revoked,
        Refusal::RateLimited,
    ];

    /// Maps a wire byte back.
    pub fn from_u8(b: u8) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| *r as u8 == b)
    }

    /// The message sent in message 2's place: the code, then the reason as text.
    pub fn encode(self) -> Vec<u8> {
        let mut msg = vec![self as u8];
        msg.extend_from_slice(self.to_string().as_bytes());
        msg
    }
}

/// What message 2's place held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Noise message 2 follows.
    Message2(&'a [u8]),
    /// A refusal; `code` is `None` for a code this side does not know (the reason still says
    /// why, in words).
    Refused {
        /// The refusal, if known.
        code: Option<Refusal>,
        /// The raw code byte.
        byte: u8,
        /// The host's reason, for people.
        reason: String,
    },
}

/// Reads the host's answer; `None` for an empty message.
pub fn parse_answer(msg: &[u8]) -> Option<Answer<'_>> {
    let (&status, rest) = msg.split_first()?;
    if status == ANSWER_OK {
        return Some(Answer::Message2(rest));
    }
    Some(Answer::Refused {
        code: Refusal::from_u8(status),
        byte: status,
        reason: String::from_utf8_lossy(rest).into_owned(),
    })
}

/// The answer that lets the handshake go on: `0x00 || msg2`.
pub fn accept(msg2: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + msg2.len());
    out.push(ANSWER_OK);
    out.extend_from_slice(msg2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_answers_parse() {
        for r in Refusal::ALL {
            assert_eq!(Refusal::from_u8(r as u8), Some(r));
            let msg = r.encode();
            assert_eq!(
                parse_answer(&msg),
                Some(Answer::Refused {
                    code: Some(r),
                    byte: r as u8,
                    reason: r.to_string()
                })
            );
        }
        assert_eq!(Refusal::from_u8(0), None);
        assert_eq!(parse_answer(&accept(b"m2")), Some(Answer::Message2(b"m2")));
        assert_eq!(parse_answer(&[]), None);
        assert!(matches!(
            parse_answer(b"\x63why"),
            Some(Answer::Refused {
                code: None,
                byte: 0x63,
                ..
            })
        ));
    }
}
