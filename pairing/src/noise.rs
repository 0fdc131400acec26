//! The pairing handshake: `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`, as a typestate
//! API over [`snow`].
//!
//! ```text
//! IKpsk2:
//!   <- s                      (the initiator knows the responder's static key: the QR code)
//!   ...
//!   -> e, es, s, ss           message 1, initiator to responder
//!   <- e, ee, se, psk         message 2, responder to initiator
//! ```
//!
//! The initiator (phone or laptop) knows the host's static key and the pairing
//! secret (the psk) from the QR code. The responder (host) reads message 1
//! *before* it chooses the psk, because IKpsk2 mixes the psk in only at the end
//! of message 2. That lets the host learn the initiator's static key and message 1
//! payload (peer sends the pairing id, see [`hello_payload`](crate::hello_payload)
//! and [`PairingSecret::pairing_id`](crate::PairingSecret::pairing_id)) and look up
//! the right psk.
//!
//! Security notes:
//!
//! - The message 1 payload is encrypted to the host's static key, but it is not
//!   protected by the psk and can be replayed. Do not act on it before the
//!   handshake is confirmed.
//! - The responder cannot tell whether the initiator used the right psk until it
//!   successfully decrypts the initiator's first transport message. The initiator
//!   notices a wrong psk (or a wrong host) in
//!   [`InitiatorAwaitingResponse::finish`], as [`NoiseError::Decrypt`]. So the
//!   initiator must send a transport message first, and the host must treat the
//!   pairing as unconfirmed until it decrypts it.
//! - Public keys and ephemerals of low order (which would make a Diffie-Hellman
//!   output all zero) are rejected as [`NoiseError::Malformed`].
//! - Both sides get the same [`Transport::handshake_hash`]; show
//!   [`short_code`](crate::short_code) of it on both screens so the user can
//!   compare.

mod error;
mod initiator;
mod responder;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod transport;

use curve25519_dalek::MontgomeryPoint;
use snow::params::NoiseParams;

pub use error::NoiseError;
pub use initiator::{Initiator, InitiatorAwaitingResponse};
pub use responder::{Responder, ResponderAwaitingPsk};
pub use transport::Transport;

/// The Noise protocol name used for pairing.
pub const NOISE_PATTERN: &str = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

/// Maximum size of any Noise message (handshake or transport), in bytes.
pub const MAX_NOISE_MESSAGE: usize = 65535;

/// Length of an X25519 public key.
const DH_LEN: usize = 32;
/// Length of a ChaChaPoly authentication tag.
const TAG_LEN: usize = 16;
/// Position of the psk token in IKpsk2 (after the second message).
const PSK_LOCATION: u8 = 2;
/// Bytes message 1 adds to its payload: `e`, encrypted `s`, payload tag.
const MSG1_OVERHEAD: usize = DH_LEN + (DH_LEN + TAG_LEN) + TAG_LEN;
/// Bytes message 2 adds to its payload: `e`, payload tag.
const MSG2_OVERHEAD: usize = DH_LEN + TAG_LEN;
/// Largest plaintext of a transport message.
const MAX_TRANSPORT_PLAINTEXT: usize = MAX_NOISE_MESSAGE - TAG_LEN;

/// The parsed [`NOISE_PATTERN`].
fn noise_params() -> Result<NoiseParams, NoiseError> {
    NOISE_PATTERN.parse().map_err(|_| NoiseError::Internal)
}

/// Whether an X25519 public key has low order, i.e. every Diffie-Hellman with it
/// yields all zeros. Clamped scalars are multiples of the cofactor, so a point
/// maps to zero exactly when it lies in the small-order subgroup (of the curve or
/// its twist).
fn is_low_order(public: &[u8; DH_LEN]) -> bool {
    MontgomeryPoint(*public).mul_clamped([0x5a; 32]) == MontgomeryPoint([0; 32])
}

/// Maps an error from reading a handshake message.
fn read_error(error: snow::Error) -> NoiseError {
    match error {
        snow::Error::Decrypt => NoiseError::Decrypt,
        snow::Error::Input | snow::Error::Dh => NoiseError::Malformed,
        _ => NoiseError::Internal,
    }
}

/// Maps an error from building a state or writing a message. Inputs are checked
/// beforehand, so anything here is unexpected.
fn internal(_: snow::Error) -> NoiseError {
    NoiseError::Internal
}

/// Copies a 32-byte value out of snow, which hands out slices.
fn to_array(bytes: Option<&[u8]>) -> Result<[u8; 32], NoiseError> {
    bytes
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or(NoiseError::Internal)
}
