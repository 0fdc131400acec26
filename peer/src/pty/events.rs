//! What a PTY session tells the rest of the host about itself: the seam notifications (and
//! anything else that wants to follow sessions) listen on.
//!
//! [`SessionManager::events`](super::SessionManager::events) hands out receivers; every
//! session of the manager sends on the same channel. Sending never blocks (a broadcast
//! channel: a listener that falls [`EVENTS`] behind loses the oldest and is told so).
//!
//! - [`PtyEvent::Exited`] is sent by the session's waiter thread once the exit status is
//!   recorded (after the output is drained).
//! - [`PtyEvent::Bell`] is sent by the session's screen-model thread (`session/follow.rs`)
//!   when the program rings the bell (BEL outside an OSC string).

use crate::proto::ExitInfo;

/// Events buffered per listener.
pub const EVENTS: usize = 256;

/// Something that happened to a PTY session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PtyEvent {
    /// The session's process ended and its output is drained.
    Exited {
        /// Session id.
        session: u64,
        /// What it ran: its name if it has one, else its command line.
        what: String,
        /// How it ended.
        status: ExitInfo,
    },
    /// The session's program rang the terminal bell.
    Bell {
        /// Session id.
        session: u64,
    },
}
