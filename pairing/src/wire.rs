//! The bytes peer puts into the pairing handshake: prologue and message 1 payload.
//!
//! ```text
//! prologue        = "peer/pair/1" (11 ASCII bytes) || host_id (32 bytes)    43 bytes
//! msg1 payload    = 0x01 || pairing_id (16 bytes)                            17 bytes
//! msg2 payload    = the host's name, UTF-8 (may be empty)
//! ```
//!
//! `host_id` is the host's iroh endpoint id (ed25519 public key), the same as
//! [`PairingPayload::host_id`](crate::PairingPayload::host_id); binding it into the
//! prologue makes the handshake fail (`Decrypt` on message 1) if the initiator
//! reached a different endpoint than the QR code names. `pairing_id` is
//! [`PairingSecret::pairing_id`](crate::PairingSecret::pairing_id); the leading
//! `0x01` is a version byte. The host rejects any other message 1 payload.
//!
//! A browser's channel to the host (through the mobile bridge) uses the same handshake with
//! its own prologue and two forms of message 1 payload:
//!
//! ```text
//! prologue        = "peer/bridge/1" (13 ASCII bytes) || host_id (32 bytes)  45 bytes
//! msg1 payload    = 0x01 || pairing_id   (pairing; psk = the QR code's secret)
//!                 | 0x02                 (a paired browser; psk = its device psk)
//! ```

/// The fixed start of the pairing prologue (also the pairing ALPN).
pub const PAIR_PROLOGUE_PREFIX: &[u8] = b"peer/pair/1";

/// Version byte at the start of the message 1 payload.
const HELLO_VERSION: u8 = 1;

/// Length of the message 1 payload.
const HELLO_LEN: usize = 17;

/// The fixed start of a browser channel's prologue (also the bridge ALPN).
pub const BRIDGE_PROLOGUE_PREFIX: &[u8] = b"peer/bridge/1";

/// Message 1 payload of a paired browser reconnecting.
pub const DEVICE_HELLO: [u8; 1] = [2];

/// The Noise prologue of a browser channel to the host `host_id`:
/// [`BRIDGE_PROLOGUE_PREFIX`] `|| host_id`.
#[must_use]
pub fn bridge_prologue(host_id: &[u8; 32]) -> Vec<u8> {
    [BRIDGE_PROLOGUE_PREFIX, host_id.as_slice()].concat()
}

/// The Noise prologue for a pairing with the host whose endpoint id is `host_id`:
/// [`PAIR_PROLOGUE_PREFIX`] `|| host_id`.
#[must_use]
pub fn pairing_prologue(host_id: &[u8; 32]) -> Vec<u8> {
    let mut prologue = Vec::with_capacity(PAIR_PROLOGUE_PREFIX.len() + host_id.len());
    prologue.extend_from_slice(PAIR_PROLOGUE_PREFIX);
    prologue.extend_from_slice(host_id);
    prologue
}

/// The message 1 payload: `0x01 || pairing_id`.
#[must_use]
pub fn hello_payload(pairing_id: &[u8; 16]) -> [u8; HELLO_LEN] {
    let mut hello = [0u8; HELLO_LEN];
    hello[0] = HELLO_VERSION;
    hello[1..].copy_from_slice(pairing_id);
    hello
}

/// The pairing id in a message 1 payload, or `None` unless it is exactly 17 bytes
/// starting with `0x01`.
#[must_use]
pub fn parse_hello_payload(payload: &[u8]) -> Option<[u8; 16]> {
    match payload {
        [HELLO_VERSION, id @ ..] => id.try_into().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologue_is_prefix_and_host_id() {
        let prologue = pairing_prologue(&[0xab; 32]);
        assert_eq!(prologue.len(), 43);
        assert_eq!(&prologue[..11], b"peer/pair/1");
        assert_eq!(prologue[11..], [0xab; 32]);
    }

    #[test]
    fn hello_round_trips() {
        let id: [u8; 16] = std::array::from_fn(|i| i as u8);
        let hello = hello_payload(&id);
        assert_eq!(hello[0], 1);
        assert_eq!(hello[1..], id);
        assert_eq!(parse_hello_payload(&hello), Some(id));
    }

    #[test]
    fn bad_hello_is_rejected() {
        let hello = hello_payload(&[7; 16]);
        assert_eq!(parse_hello_payload(&[]), None);
        assert_eq!(parse_hello_payload(&[1]), None);
        assert_eq!(parse_hello_payload(&hello[..16]), None);
        assert_eq!(
            parse_hello_payload(&[hello.as_slice(), &[0]].concat()),
            None
        );
        assert_eq!(parse_hello_payload(&[7; 16]), None);
        let mut v2 = hello;
        v2[0] = 2;
        assert_eq!(parse_hello_payload(&v2), None);
        let mut v0 = hello;
        v0[0] = 0;
        assert_eq!(parse_hello_payload(&v0), None);
    }
}
