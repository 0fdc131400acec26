//! The peer relay node.
//!
//! A peer host and its clients talk over iroh QUIC connections. When they cannot reach each
//! other directly, iroh sends the (already end-to-end encrypted) QUIC packets through a relay
//! server; the relay only ever sees ciphertext addressed by endpoint id.
//!
//! This crate wraps iroh's relay server ([`iroh_relay::server`]):
//!
//! - [`EmbeddedRelay`] (feature `server`, on by default) runs it in-process, e.g. inside a
//!   host or a test.
//! - The `peer-relay` binary (also feature `server`) runs it as a standalone service.
//!
//! For now the relay speaks plain HTTP (no TLS) and admits every endpoint.
//!
//! Clients do not need the `server` feature; without it this crate only re-exports
//! [`RelayUrl`].

#[cfg(feature = "server")]
mod embedded;

#[cfg(feature = "server")]
pub use embedded::{EmbeddedRelay, RelayError};
/// The URL clients use to reach a relay (same type as `iroh::RelayUrl`).
pub use iroh_base::RelayUrl;
