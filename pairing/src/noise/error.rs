//! Errors of the Noise handshake and transport.

/// Why a Noise operation failed. Deliberately vague: it never says which check
/// failed in detail and never contains key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    /// Authentication failed: the message was corrupted or forged, or the two sides
    /// do not share the same keys, pairing secret or prologue.
    #[error(
        "could not decrypt the message: it was damaged or forged, or the pairing code does \
         not match this host"
    )]
    Decrypt,
    /// The message has the wrong shape (too short, or contains an invalid key).
    #[error("malformed handshake or transport message")]
    Malformed,
    /// The message or plaintext exceeds the Noise size limit.
    #[error("message too large for Noise (at most 65535 bytes on the wire)")]
    TooLarge,
    /// An unexpected failure inside the Noise implementation.
    #[error("internal error in the Noise handshake")]
    Internal,
}
