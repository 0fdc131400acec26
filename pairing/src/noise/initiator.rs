//! The initiator side (the phone or laptop that scanned the QR code).

use std::fmt;

use snow::{Builder, HandshakeState};

use super::{
    MAX_NOISE_MESSAGE, MSG1_OVERHEAD, MSG2_OVERHEAD, NoiseError, PSK_LOCATION, Transport, internal,
    is_low_order, noise_params, read_error, to_array,
};
use crate::keys::NoiseKeypair;

/// Starts a handshake as the initiator.
#[derive(Debug)]
#[non_exhaustive]
pub struct Initiator;

impl Initiator {
    /// Starts the handshake and returns the state plus message 1 to send.
    ///
    /// `remote_static` is the host's Noise key and `psk` the pairing secret, both
    /// from the QR code. `payload` travels encrypted to the host's static key but is
    /// not protected by the psk (see the [module docs](super)).
    ///
    /// # Errors
    ///
    /// [`NoiseError::TooLarge`] if message 1 would exceed [`MAX_NOISE_MESSAGE`],
    /// [`NoiseError::Malformed`] if `remote_static` is a low-order point,
    /// [`NoiseError::Internal`] otherwise.
    pub fn start(
        local: &NoiseKeypair,
        remote_static: &[u8; 32],
        psk: &[u8; 32],
        prologue: &[u8],
        payload: &[u8],
    ) -> Result<(InitiatorAwaitingResponse, Vec<u8>), NoiseError> {
        start(local, remote_static, psk, prologue, None, payload)
    }

    /// Like [`Initiator::start`] but with a fixed ephemeral secret key.
    /// **For test vectors only**: reusing an ephemeral key breaks security.
    ///
    /// # Errors
    ///
    /// As [`Initiator::start`].
    #[doc(hidden)]
    pub fn start_with_ephemeral_for_testing(
        local: &NoiseKeypair,
        remote_static: &[u8; 32],
        psk: &[u8; 32],
        prologue: &[u8],
        ephemeral_secret: &[u8; 32],
        payload: &[u8],
    ) -> Result<(InitiatorAwaitingResponse, Vec<u8>), NoiseError> {
        start(
            local,
            remote_static,
            psk,
            prologue,
            Some(ephemeral_secret),
            payload,
        )
    }
}

fn start(
    local: &NoiseKeypair,
    remote_static: &[u8; 32],
    psk: &[u8; 32],
    prologue: &[u8],
    ephemeral_secret: Option<&[u8; 32]>,
    payload: &[u8],
) -> Result<(InitiatorAwaitingResponse, Vec<u8>), NoiseError> {
    if payload.len() > MAX_NOISE_MESSAGE - MSG1_OVERHEAD {
        return Err(NoiseError::TooLarge);
    }
    if is_low_order(remote_static) {
        return Err(NoiseError::Malformed);
    }
    let mut builder = Builder::new(noise_params()?)
        .local_private_key(local.secret_bytes())
        .map_err(internal)?
        .remote_public_key(remote_static)
        .map_err(internal)?
        .psk(PSK_LOCATION, psk)
        .map_err(internal)?
        .prologue(prologue)
        .map_err(internal)?;
    if let Some(ephemeral) = ephemeral_secret {
        builder = builder.fixed_ephemeral_key_for_testing_only(ephemeral);
    }
    let mut handshake = builder.build_initiator().map_err(internal)?;
    let mut msg1 = vec![0u8; MSG1_OVERHEAD + payload.len()];
    let len = handshake
        .write_message(payload, &mut msg1)
        .map_err(internal)?;
    msg1.truncate(len);
    Ok((InitiatorAwaitingResponse { handshake }, msg1))
}

/// The initiator after sending message 1, waiting for message 2.
pub struct InitiatorAwaitingResponse {
    handshake: HandshakeState,
}

impl InitiatorAwaitingResponse {
    /// Reads message 2 and completes the handshake, returning the transport and the
    /// decrypted message 2 payload.
    ///
    /// Success proves the responder holds the host's static key and the same psk
    /// and prologue.
    ///
    /// # Errors
    ///
    /// [`NoiseError::Decrypt`] if message 2 does not authenticate (wrong psk, wrong
    /// host, wrong prologue or tampering), [`NoiseError::Malformed`] if it is too
    /// short or carries a low-order ephemeral key, [`NoiseError::TooLarge`] if it
    /// exceeds [`MAX_NOISE_MESSAGE`].
    pub fn finish(mut self, msg2: &[u8]) -> Result<(Transport, Vec<u8>), NoiseError> {
        if msg2.len() > MAX_NOISE_MESSAGE {
            return Err(NoiseError::TooLarge);
        }
        if msg2.len() < MSG2_OVERHEAD {
            return Err(NoiseError::Malformed);
        }
        let ephemeral = to_array(msg2.get(..32))?;
        if is_low_order(&ephemeral) {
            return Err(NoiseError::Malformed);
        }
        let mut payload = vec![0u8; msg2.len() - MSG2_OVERHEAD];
        let len = self
            .handshake
            .read_message(msg2, &mut payload)
            .map_err(read_error)?;
        payload.truncate(len);
        let transport = Transport::from_handshake(self.handshake)?;
        Ok((transport, payload))
    }
}

impl fmt::Debug for InitiatorAwaitingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitiatorAwaitingResponse(..)")
    }
}
