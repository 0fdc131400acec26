//! PTY sessions: processes on pseudo-terminals with replayable output.

mod buffer;
mod events;
pub mod keeper;
mod manager;
mod ring;
pub mod screen;
mod session;

pub use buffer::{OutputBuffer, Slice};
pub use events::{EVENTS, PtyEvent};
pub use manager::{SessionError, SessionManager};
#[cfg(test)]
pub(crate) use session::testing;
pub use session::{
    ATTACH_HOLD, AttachGuard, KILL_GRACE, LAG_GRACE, PtySession, SessionConfig, SpawnError,
};
