//! The transport phase after a completed handshake.

use std::fmt;

use snow::{HandshakeState, TransportState};

use super::{MAX_NOISE_MESSAGE, MAX_TRANSPORT_PLAINTEXT, NoiseError, TAG_LEN, internal, to_array};
use crate::hex_fmt::Hex;

/// An established Noise session: encrypts and decrypts transport messages in
/// order, one message per call.
///
/// Messages must be decrypted in the order they were encrypted (the nonce is a
/// counter). A failed decryption does not advance the counter, but it means the
/// message was damaged or forged: close the session.
pub struct Transport {
    state: TransportState,
    handshake_hash: [u8; 32],
    remote_static: [u8; 32],
}

impl Transport {
    /// Finishes a completed handshake.
    pub(super) fn from_handshake(handshake: HandshakeState) -> Result<Self, NoiseError> {
        let handshake_hash = to_array(Some(handshake.get_handshake_hash()))?;
        let remote_static = to_array(handshake.get_remote_static())?;
        let state = handshake.into_transport_mode().map_err(internal)?;
        Ok(Self {
            state,
            handshake_hash,
            remote_static,
        })
    }

    /// Encrypts one message (ciphertext = plaintext length + 16).
    ///
    /// # Errors
    ///
    /// [`NoiseError::TooLarge`] if `plaintext` is longer than
    /// [`MAX_NOISE_MESSAGE`] - 16 bytes, [`NoiseError::Internal`] if the nonce
    /// counter is exhausted.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        if plaintext.len() > MAX_TRANSPORT_PLAINTEXT {
            return Err(NoiseError::TooLarge);
        }
        let mut ciphertext = vec![0u8; plaintext.len() + TAG_LEN];
        let len = self
            .state
            .write_message(plaintext, &mut ciphertext)
            .map_err(internal)?;
        ciphertext.truncate(len);
        Ok(ciphertext)
    }

    /// Decrypts the next message from the other side.
    ///
    /// # Errors
    ///
    /// [`NoiseError::Decrypt`] if the message does not authenticate,
    /// [`NoiseError::Malformed`] if it is shorter than the 16-byte tag,
    /// [`NoiseError::TooLarge`] if it exceeds [`MAX_NOISE_MESSAGE`],
    /// [`NoiseError::Internal`] if the nonce counter is exhausted.
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        if ciphertext.len() > MAX_NOISE_MESSAGE {
            return Err(NoiseError::TooLarge);
        }
        if ciphertext.len() < TAG_LEN {
            return Err(NoiseError::Malformed);
        }
        let mut plaintext = vec![0u8; ciphertext.len() - TAG_LEN];
        let len = self
            .state
            .read_message(ciphertext, &mut plaintext)
            .map_err(|error| match error {
                snow::Error::Decrypt => NoiseError::Decrypt,
                snow::Error::Input => NoiseError::Malformed,
                _ => NoiseError::Internal,
            })?;
        plaintext.truncate(len);
        Ok(plaintext)
    }

    /// The Noise handshake hash, equal on both sides. Feed it to
    /// [`short_code`](crate::short_code) or use it for channel binding.
    #[must_use]
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.handshake_hash
    }

    /// The other side's static public key.
    #[must_use]
    pub fn remote_static(&self) -> [u8; 32] {
        self.remote_static
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("remote_static", &Hex(&self.remote_static))
            .finish_non_exhaustive()
    }
}
