//! Messages inside the pairing handshake (Noise transport messages on `peer/pair/1`).

use serde::{Deserialize, Serialize};

use crate::*;

/// The client's confirmation on the pairing stream, sent as the first Noise transport message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConfirm {
    /// The device's long-term ed25519 public key (its device id).
    pub device: [u8; 32],
    /// The name the device wants to be listed as.
    pub name: String,
    /// ed25519 signature by `device` over `b"peer pair confirm v1:" || handshake hash`.
    pub signature: Vec<u8>,
}

/// The host's last word on the pairing stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairOutcome {
    /// Paired.
    Paired {
        /// The role given.
        role: Role,
        /// The host's display name.
        host_name: String,
    },
    /// Refused, with the reason.
    Refused(String),
}

/// A browser's first message after a pairing handshake (frame `PairBrowser`, channel 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairBrowser {
    /// The name to list the browser under.
    pub name: String,
}

/// The host's answer to [`PairBrowser`] (frame `BrowserPaired`, channel 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserPaired {
    /// The role given.
    pub role: Role,
    /// The host's display name.
    pub host_name: String,
    /// The browser's credential for later connections: the psk of its Noise handshakes.
    pub device_psk: [u8; 32],
}
