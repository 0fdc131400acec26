//! The peer relay node.
//!
//! A peer host and its clients talk over iroh QUIC connections. When they cannot reach each
//! other directly, iroh sends the (already end-to-end encrypted) QUIC packets through a relay
//! server; the relay only ever sees ciphertext addressed by endpoint id.
//!
//! This crate puts iroh's relay service ([`iroh_relay::server::http_server::RelayService`])
//! behind its own HTTP front server (feature `server`, on by default). One listener (plain HTTP
//! or HTTPS) serves, on one port:
//!
//! - `GET /relay` (the relay protocol) and `GET /ping` (latency probes) → iroh's relay service,
//!   admitted by an [`AccessPolicy`];
//! - `GET /healthz` → `200 ok`;
//! - `GET /metrics` → Prometheus text ([`MetricsExposure`] decides who may read it);
//! - routes plugged in with [`FrontConfig::route`] (e.g. the mobile bridge under `/bridge`);
//! - everything else: the web app ([`WebApp`]): the one built into the binary (see
//!   `build.rs`), or the files of a web root, with an SPA fallback; or nothing.
//!
//! New TCP connections are rate limited per IP and capped globally and per IP ([`Limits`]), and
//! a reserve of file descriptors keeps health checks and metrics answering when the process
//! reaches its descriptor limit ([`fd_limit`], [`Limits::fd_reserve`]).
//!
//! Entry points:
//!
//! - [`EmbeddedRelay`] runs it in-process (a host, a test): [`EmbeddedRelay::spawn`] for a plain
//!   HTTP relay that admits everyone, [`EmbeddedRelay::spawn_with`] for everything else.
//! - The `peer-relay` binary runs it as a service; [`config`] is its configuration file.
//!
//! Clients do not need the `server` feature; without it this crate re-exports [`RelayUrl`] and,
//! with feature `pinning`, offers `pin`: trusting a relay certificate by its SHA-256
//! fingerprint.

#[cfg(feature = "server")]
mod access;
#[cfg(feature = "server")]
mod bridge_route;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
mod embedded;
#[cfg(feature = "server")]
pub mod fd_limit;
#[cfg(feature = "server")]
mod front;
#[cfg(feature = "pinning")]
pub mod pin;
#[cfg(feature = "server")]
pub mod tls;

#[cfg(feature = "server")]
pub use access::{AccessMode, AccessPolicy};
#[cfg(feature = "server")]
pub use bridge_route::{BRIDGE_PREFIX, BridgeRoute};
#[cfg(feature = "server")]
pub use embedded::{EmbeddedRelay, RelayError};
#[cfg(feature = "server")]
pub use front::{
    BoxError, CSP, FrontBody, FrontConfig, IpKey, Limits, MetricsExposure, RateBuckets, RateLimit,
    RequestContext, RouteFuture, RouteHandler, WebApp, built_in_web_app, empty_body, full_body,
};
/// The URL clients use to reach a relay (same type as `iroh::RelayUrl`).
pub use iroh_base::RelayUrl;
/// A relay token and why a text is not one: one definition, shared with the pairing payload.
#[cfg(feature = "server")]
pub use peer_pairing::{InvalidRelayToken, RelayToken};
