//! The responder side (the host).

use std::fmt;

use snow::{Builder, HandshakeState};

use super::{
    MAX_NOISE_MESSAGE, MSG1_OVERHEAD, MSG2_OVERHEAD, NoiseError, PSK_LOCATION, Transport, internal,
    is_low_order, noise_params, read_error, to_array,
};
use crate::hex_fmt::Hex;
use crate::keys::NoiseKeypair;

/// Answers a handshake as the responder.
#[derive(Debug)]
#[non_exhaustive]
pub struct Responder;

impl Responder {
    /// Reads message 1 with the host's static keypair, returning the state and the
    /// decrypted message 1 payload.
    ///
    /// No psk is needed yet: look at [`ResponderAwaitingPsk::remote_static`] and the
    /// payload to choose it. The payload is not authenticated by the psk and may be
    /// a replay; do not act on it before the handshake is confirmed.
    ///
    /// # Errors
    ///
    /// [`NoiseError::Decrypt`] if message 1 was not made for this host's static key
    /// or the prologue differs or it was tampered with, [`NoiseError::Malformed`] if
    /// it is too short or carries a low-order key, [`NoiseError::TooLarge`] if it
    /// exceeds [`MAX_NOISE_MESSAGE`].
    pub fn read_first(
        local: &NoiseKeypair,
        prologue: &[u8],
        msg1: &[u8],
    ) -> Result<(ResponderAwaitingPsk, Vec<u8>), NoiseError> {
        read_first(local, prologue, None, msg1)
    }

    /// Like [`Responder::read_first`] but with a fixed ephemeral secret key for
    /// message 2. **For test vectors only**: reusing an ephemeral key breaks
    /// security.
    ///
    /// # Errors
    ///
    /// As [`Responder::read_first`].
    #[doc(hidden)]
    pub fn read_first_with_ephemeral_for_testing(
        local: &NoiseKeypair,
        prologue: &[u8],
        ephemeral_secret: &[u8; 32],
        msg1: &[u8],
    ) -> Result<(ResponderAwaitingPsk, Vec<u8>), NoiseError> {
        read_first(local, prologue, Some(ephemeral_secret), msg1)
    }
}

fn read_first(
    local: &NoiseKeypair,
    prologue: &[u8],
    ephemeral_secret: Option<&[u8; 32]>,
    msg1: &[u8],
) -> Result<(ResponderAwaitingPsk, Vec<u8>), NoiseError> {
    if msg1.len() > MAX_NOISE_MESSAGE {
        return Err(NoiseError::TooLarge);
    }
    if msg1.len() < MSG1_OVERHEAD {
        return Err(NoiseError::Malformed);
    }
    let ephemeral = to_array(msg1.get(..32))?;
    if is_low_order(&ephemeral) {
        return Err(NoiseError::Malformed);
    }
    let mut builder = Builder::new(noise_params()?)
        .local_private_key(local.secret_bytes())
        .map_err(internal)?
        .prologue(prologue)
        .map_err(internal)?;
    if let Some(ephemeral) = ephemeral_secret {
        builder = builder.fixed_ephemeral_key_for_testing_only(ephemeral);
    }
    let mut handshake = builder.build_responder().map_err(internal)?;
    let mut payload = vec![0u8; msg1.len() - MSG1_OVERHEAD];
    let len = handshake
        .read_message(msg1, &mut payload)
        .map_err(read_error)?;
    payload.truncate(len);
    let remote_static = to_array(handshake.get_remote_static())?;
    if is_low_order(&remote_static) {
        return Err(NoiseError::Malformed);
    }
    Ok((
        ResponderAwaitingPsk {
            handshake,
            remote_static,
        },
        payload,
    ))
}

/// The responder after reading message 1, waiting for the caller to pick the psk.
pub struct ResponderAwaitingPsk {
    handshake: HandshakeState,
    remote_static: [u8; 32],
}

impl ResponderAwaitingPsk {
    /// The initiator's static public key, as claimed in message 1.
    ///
    /// Message 1 proves the initiator holds this key's secret, but it is only bound
    /// to the pairing secret once the initiator's first transport message decrypts.
    #[must_use]
    pub fn remote_static(&self) -> [u8; 32] {
        self.remote_static
    }

    /// Sets the psk, writes message 2 and completes the handshake, returning the
    /// transport and message 2 to send.
    ///
    /// The responder cannot know here whether the initiator used the same psk: a
    /// wrong psk only shows when decrypting the initiator's first transport message
    /// fails with [`NoiseError::Decrypt`]. Treat the session as unconfirmed until
    /// then.
    ///
    /// # Errors
    ///
    /// [`NoiseError::TooLarge`] if message 2 would exceed [`MAX_NOISE_MESSAGE`],
    /// [`NoiseError::Internal`] otherwise.
    pub fn respond(
        mut self,
        psk: &[u8; 32],
        payload: &[u8],
    ) -> Result<(Transport, Vec<u8>), NoiseError> {
        if payload.len() > MAX_NOISE_MESSAGE - MSG2_OVERHEAD {
            return Err(NoiseError::TooLarge);
        }
        self.handshake
            .set_psk(usize::from(PSK_LOCATION), psk)
            .map_err(internal)?;
        let mut msg2 = vec![0u8; MSG2_OVERHEAD + payload.len()];
        let len = self
            .handshake
            .write_message(payload, &mut msg2)
            .map_err(internal)?;
        msg2.truncate(len);
        let transport = Transport::from_handshake(self.handshake)?;
        Ok((transport, msg2))
    }
}

impl fmt::Debug for ResponderAwaitingPsk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponderAwaitingPsk")
            .field("remote_static", &Hex(&self.remote_static))
            .finish_non_exhaustive()
    }
}
