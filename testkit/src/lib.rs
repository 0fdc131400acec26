//! The test harness of peer, shared by the integration tests, benchmarks and examples: nothing
//! here is part of the product (`publish = false`; `cargo install` never sees it).
//!
//! - [`harness`]: `peer host` and `peer` CLI processes with their own state directories on
//!   loopback ([`TestHost`], [`TestClient`], [`Interactive`]), pairing, an in-process host,
//!   byte-exact helpers (`seq` output, SHA-256).
//! - [`browser`]: a client that speaks exactly what the web app speaks (Noise over a WebSocket
//!   or a bridge's QUIC stream, enveloped frames).
//! - [`http`]: a plain HTTP GET (what a phone's browser fetches first).
//! - [`proxy`]: a TCP proxy that records what crosses it and can cut it (a relay operator's
//!   view, a relay outage).
//! - [`impair`]: a UDP proxy with delay, loss and address changes.
//! - [`relay`]: a real `peer-relay` process (plain HTTP, or token mode with a self-signed
//!   certificate) that a test can kill or reload.
//! - [`agents`]: git repositories and agent transcripts for the agent tests.
//! - [`term`]: a `peer` command in a real pseudo-terminal, read through a terminal emulator.
//! - [`push`]: a Web Push service on loopback that checks and decrypts what the host sends.
//! - `peer-fake-agent` (a binary): a scripted ACP agent.
//! - `peer-fake-model` (a binary): a scripted stand-in for an OpenAI-compatible model server
//!   (no model behind it), for real agents on "local models".

#![allow(missing_docs, clippy::unwrap_used, clippy::new_without_default)]

pub mod agents;
pub mod browser;
pub mod harness;
pub mod http;
pub mod impair;
pub mod proxy;
pub mod push;
pub mod relay;
pub mod term;

pub use harness::*;
pub use proxy::contains;
pub use relay::RelayProcess;
pub use vt100;
