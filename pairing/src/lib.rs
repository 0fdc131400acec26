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
//! format), [`noise`] (the handshake), [`wire`] (prologue and message 1 payload
//! of peer's pairing), [`sas`] (the short code). `README.md` also describes the
//! test vectors.
//!
//! ```
//! use peer_pairing::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Host: show a pairing link.
//! let host = HostIdentity::generate();
//! let secret = PairingSecret::generate();
//! let payload = PairingPayload {
//!     host_id: [7; 32], // the iroh endpoint id derived from host.iroh_secret
//!     host_noise_key: host.noise.public(),
//!     secret: secret.clone(),
//!     expires_at: 1_767_225_900,
//!     relay_urls: vec!["https://relay.example.com".into()],
//!     direct_addrs: vec![],
//!     host_name: Some("studio".into()),
//!     relay_cert_sha256: None,
//!     relay_token: None,
//! };
//! let link = payload.to_url("https://peer.dev/pair")?;
//!
//! // Phone: scan and start the handshake.
//! let scanned = PairingPayload::from_url(&link)?;
//! scanned.check_fresh(1_767_225_600)?;
//! let device = NoiseKeypair::generate();
//! let (waiting, msg1) = Initiator::start(
//!     &device,
//!     &scanned.host_noise_key,
//!     scanned.secret.as_bytes(),
//!     &pairing_prologue(&scanned.host_id),
//!     &hello_payload(&scanned.secret.pairing_id()),
//! )?;
//!
//! // Host: find the secret by pairing id and answer with its name.
//! let (awaiting_psk, hello) =
//!     Responder::read_first(&host.noise, &pairing_prologue(&payload.host_id), &msg1)?;
//! assert_eq!(parse_hello_payload(&hello), Some(secret.pairing_id()));
//! let (mut host_side, msg2) = awaiting_psk.respond(secret.as_bytes(), b"studio")?;
//!
//! // Phone: finish and confirm; the host knows the psk matched once this decrypts.
//! let (mut phone_side, host_name) = waiting.finish(&msg2)?;
//! assert_eq!(host_name, b"studio");
//! let confirm = phone_side.encrypt(b"hello")?;
//! assert_eq!(host_side.decrypt(&confirm)?, b"hello");
//! assert_eq!(
//!     short_code(&phone_side.handshake_hash()),
//!     short_code(&host_side.handshake_hash()),
//! );
//! # Ok(())
//! # }
//! ```

mod hex_fmt;
pub mod keys;
pub mod noise;
pub mod payload;
pub mod sas;
pub mod wire;

pub use keys::{HostIdentity, KeyError, NoiseKeypair, PairingSecret, SecretBytes32};
pub use noise::{
    Initiator, InitiatorAwaitingResponse, MAX_NOISE_MESSAGE, NOISE_PATTERN, NoiseError, Responder,
    ResponderAwaitingPsk, Transport,
};
pub use payload::{
    InvalidRelayToken, MAX_DIRECT_ADDRS, MAX_FRAGMENT_LEN, MAX_PAYLOAD_LEN, MAX_RELAY_URLS,
    PAYLOAD_VERSION, PairingPayload, PayloadError, RelayToken,
};
pub use sas::short_code;
pub use wire::{
    BRIDGE_PROLOGUE_PREFIX, DEVICE_HELLO, PAIR_PROLOGUE_PREFIX, bridge_prologue, hello_payload,
    pairing_prologue, parse_hello_payload,
};
