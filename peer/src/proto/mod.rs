//! The session protocol: messages, the frame codec, and async framing over streams.

pub mod browser;
mod frame;
mod io;
mod messages;

pub use frame::{Frame, FrameError, FrameType, MAX_CHUNK, MAX_FRAME};
pub use io::{FrameReader, ReadError, write_frame};
pub use messages::*;
