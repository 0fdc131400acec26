//! PTY sessions and attach streams: session info, output, input and errors.

use serde::{Deserialize, Serialize};

use crate::*;

/// What a session list shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Host-unique id, small and stable; an ended session keeps it across host restarts until
    /// it is forgotten.
    pub id: u64,
    /// Display name, if one was given.
    pub name: Option<String>,
    /// The command line the session runs.
    pub command: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// Creation time, unix milliseconds.
    pub created_at_ms: u64,
    /// Running or ended.
    pub state: SessionState,
    /// Current PTY size.
    pub size: WinSize,
    /// Number of streams attached now.
    pub attached: u32,
    /// Absolute offset of the end of the output.
    pub output_end: u64,
    /// What the host's model of the screen knows (docs/protocol.md §8.7).
    pub screen: ScreenFacts,
    /// When output last arrived or input was last applied (creation time before either), unix
    /// milliseconds.
    pub last_activity_ms: u64,
    /// When the process ended, unix milliseconds (`None` while it runs).
    pub ended_at_ms: Option<u64>,
}

/// What the host's model of a session's screen knows, for session lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenFacts {
    /// The window title the program set (OSC 0 or 2).
    pub title: Option<String>,
    /// The working directory the shell last announced (OSC 7 `file://host/path`).
    pub cwd: Option<String>,
    /// The lowest line of the screen that is not blank, trimmed (at most 200 characters).
    pub last_line: Option<String>,
    /// When the session last printed anything, unix milliseconds (0: never).
    pub last_output_ms: u64,
    /// Bells rung so far.
    pub bells: u64,
    /// When the last bell rang, unix milliseconds (0: never).
    pub last_bell_ms: u64,
}

/// A session's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    /// The process runs.
    Running,
    /// The process ended.
    Exited(ExitInfo),
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code (1 if killed by a signal, as a shell reports 128+n is not available here).
    pub code: u32,
    /// Name of the signal that ended it, if any.
    pub signal: Option<String>,
}

/// First frame of a session stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    /// Which session.
    pub session: u64,
    /// Send output from this absolute offset (`u64::MAX`: only new output from now on).
    pub from_offset: u64,
    /// A random number that names this attachment across reconnects; input sequence numbers
    /// are deduplicated per token.
    pub client_token: u64,
    /// The client's terminal size, if it has one.
    pub size: Option<WinSize>,
    /// Pictures of the screen ([`Repaint`]) where output cannot be sent as bytes: at attach
    /// when `from_offset` is `u64::MAX` or older than the buffer, and whenever this attachment
    /// falls behind the buffer. `None`: bytes only, and a [`Gap`] where they are lost.
    pub screen: Option<ScreenRequest>,
    /// Send [`EchoAck`] frames (for predictive local echo).
    pub echo_acks: bool,
}

/// How a client wants its pictures of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenRequest {
    /// Lines of scrollback to draw above the screen (the host draws at most what it keeps).
    pub scrollback: u32,
}

/// A picture of the screen in place of output bytes. The output continues with the byte at
/// `offset`. A picture larger than one frame comes in several `Repaint` frames with the same
/// header, the last with `more: false`: a client joins their `data` and then draws it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repaint {
    /// The output offset the picture stands for: the next `Output` starts here.
    pub offset: u64,
    /// Bytes of output before `offset` that this client asked for (or was following) and gets
    /// only as this picture: `offset - skipped` is where it was.
    pub skipped: u64,
    /// The terminal size the picture is drawn for (the session's PTY size).
    pub size: WinSize,
    /// Lines of scrollback drawn above the screen.
    pub scrollback: u32,
    /// Escape sequences that draw the picture on a freshly reset terminal of `size` (part of
    /// them, if `more`).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// More of the same picture follows in the next frame.
    pub more: bool,
}

/// Inputs up to `seq` reached the program long enough ago that what it echoed is in the
/// output before `offset` (for predictive local echo: a prediction for those inputs that the
/// screen at `offset` does not show was wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoAck {
    /// Highest input sequence number covered.
    pub seq: u64,
    /// Output offset by which the echo of those inputs has arrived.
    pub offset: u64,
    /// The terminal echoes typed characters itself (termios `ECHO`), as of `offset`.
    pub echo: bool,
    /// The terminal edits lines itself (termios `ICANON`), as of `offset`.
    pub canonical: bool,
}

/// Answer to [`Attach`]; output frames follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    /// The session as it is now.
    pub info: SessionInfo,
    /// The offset of the first output byte that will be sent (after a [`Repaint`], if one
    /// comes first: then its offset).
    pub start_offset: u64,
    /// Highest input sequence number already applied for this `client_token` (0: none).
    pub input_acked: u64,
}

/// Terminal output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Absolute offset of `data[0]` in the session's output.
    pub offset: u64,
    /// The bytes, at most [`crate::MAX_CHUNK`].
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Output in `from..to` was dropped from the host's buffer before this client read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// First lost offset.
    pub from: u64,
    /// First offset that follows.
    pub to: u64,
}

/// The session's process ended and all its output was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exited {
    /// Exit status.
    pub status: ExitInfo,
    /// Final output offset.
    pub end_offset: u64,
}

/// Keystrokes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// 1, 2, 3… per `client_token`; the host applies each number once.
    pub seq: u64,
    /// The bytes, at most [`crate::MAX_CHUNK`].
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Inputs up to `seq` were applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAck {
    /// Highest applied sequence number.
    pub seq: u64,
}

/// Error codes carried in [`WireError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame could not be decoded or was not expected here.
    Protocol,
    /// No such session or device.
    NotFound,
    /// The device's role does not allow this.
    Forbidden,
    /// The request is well-formed but makes no sense (e.g. empty program name).
    BadRequest,
    /// The command could not be started.
    SpawnFailed,
    /// A host limit was reached.
    Limit,
    /// Something failed on the host.
    Internal,
    /// Someone else got there first (an approval already answered).
    Conflict,
}

/// An error with a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code:?})")]
pub struct WireError {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

impl WireError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        WireError {
            code,
            message: message.into(),
        }
    }
}
