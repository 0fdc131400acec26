//! Sans-IO pairing for peer: identity keys, the QR pairing payload, the Noise
//! handshake and the short authentication code.
//!
//! A host shows a [`PairingPayload`] as a QR code. The device that scans it runs
//! the [`Initiator`] side of `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s` with the
//! host's Noise key and the one-time [`PairingSecret`] as psk; the host runs the
//! [`Responder`] side. Both show [`short_code`] of the handshake hash.
//!
//! This crate does no IO: bytes in, bytes out. Everything is re-exported at the
//! crate root; the modules hold the specifications: [`payload`] (the QR payload
//! format), [`noise`] (the handshake), [`sas`] (the short code). `README.md` also
//! describes the test vectors.

mod hex_fmt;
pub mod keys;
pub mod noise;
pub mod payload;
pub mod sas;

pub use keys::{HostIdentity, KeyError, NoiseKeypair, PairingSecret, SecretBytes32};
pub use noise::{
    Initiator, InitiatorAwaitingResponse, MAX_NOISE_MESSAGE, NOISE_PATTERN, NOISE_PROLOGUE,
    NoiseError, Responder, ResponderAwaitingPsk, Transport,
};
pub use payload::{
    MAX_DIRECT_ADDRS, MAX_FRAGMENT_LEN, MAX_PAYLOAD_LEN, MAX_RELAY_URLS, PAYLOAD_VERSION,
    PairingPayload, PayloadError,
};
pub use sas::short_code;
