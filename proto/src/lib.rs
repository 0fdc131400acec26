//! peer's wire protocol, written once and sans-IO: every name, number and message that crosses
//! a connection between `peer host`, the `peer` CLI and the web app.
//!
//! - [`consts`]: ALPNs, the protocol version, the device proof and pairing confirmation inputs.
//! - [`close`]: QUIC close codes of native connections, WebSocket close codes of browser sockets.
//! - [`refusal`]: the host's answer in message 2's place (go on, or why not).
//! - [`frame`]: the frame registry and codec; the messages are in [`session`], [`attach`],
//!   [`agent`], [`machine`], [`push`], [`local`] and [`pairing`].
//! - [`browser`]: the envelope that carries frames inside a browser's Noise channel.
//! - [`codec`]: `u16`-length message framing of the pairing and bridge streams.
//! - `io` (feature `io`): async frame and message I/O over tokio streams.
//!
//! The bytes are described for implementers in `docs/protocol.md`; the web app's TypeScript
//! codec is generated from these types (`proto/tests/ts_codec.rs`).

pub mod agent;
pub mod attach;
pub mod browser;
pub mod close;
pub mod codec;
pub mod consts;
pub mod frame;
#[cfg(feature = "io")]
pub mod io;
pub mod local;
pub mod machine;
pub mod pairing;
pub mod push;
pub mod refusal;
pub mod session;

pub use agent::*;
pub use attach::*;
pub use consts::*;
pub use frame::{Frame, FrameError, FrameType, MAX_CHUNK, MAX_FRAME, MAX_REPAINT_CHUNK, Sender};
#[cfg(feature = "io")]
pub use io::{FrameReader, ReadError, StreamMessage, read_message, write_frame, write_message};
pub use local::*;
pub use machine::*;
pub use pairing::*;
pub use push::*;
pub use refusal::Refusal;
pub use session::*;
