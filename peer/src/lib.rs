//! peer: the terminals (and, soon, coding agents) of your own machine, from your phone or
//! laptop, end to end encrypted over iroh.
//!
//! The library holds everything; the `peer` binary only parses the command line.
//! - [`host`]: the daemon (`peer host`): identity, endpoint, embedded relay, pairing, sessions.
//! - [`client`]: the CLI side: pairing, known hosts, connecting with resume, attaching.
//! - [`proto`]: the wire protocol, written once.
//! - [`pty`]: PTY sessions with replayable output.
//! - [`agent`]: coding agents driven over ACP.
//! - [`db`]: the host's database and the thread that owns it.

pub mod agent;
pub mod client;
pub mod db;
pub mod host;
pub mod keystore;
pub mod net;
pub mod paths;
pub mod pty;
pub mod qr;
pub mod util;

/// The wire protocol (the `peer-proto` crate).
pub use peer_proto as proto;
