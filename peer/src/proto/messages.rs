//! The messages of the session protocol, written once here. Native clients carry them as
//! postcard inside frames (see [`super::frame`]).

use serde::{Deserialize, Serialize};

/// Version of the session protocol spoken on [`crate::net::ALPN_SESSION`].
pub const PROTOCOL_VERSION: u16 = 1;

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Default for WinSize {
    fn default() -> Self {
        WinSize { cols: 80, rows: 24 }
    }
}

/// What a device may do on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// May create, kill and type into sessions.
    Operator,
    /// May list sessions and watch their output, nothing more.
    Viewer,
}

impl Role {
    /// The lowercase name used in the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?} (operator or viewer)")),
        }
    }
}

/// First frame of the control stream: who the client is, and its proof.
///
/// `proof` is the device key's ed25519 signature over 32 bytes exported from this QUIC
/// connection's TLS session (label [`crate::net::PROOF_LABEL`], context = the client's endpoint
/// id). It binds the long-term device key to this one connection, so it cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// [`PROTOCOL_VERSION`] of the client.
    pub protocol: u16,
    /// The device's long-term public key (its device id).
    pub device: [u8; 32],
    /// Signature, see above.
    pub proof: Vec<u8>,
}

/// The host's answer to [`ClientHello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHello {
    /// [`PROTOCOL_VERSION`] of the host.
    pub protocol: u16,
    /// The host's display name.
    pub host_name: String,
    /// The device's role on this host.
    pub role: Role,
    /// Random per host process: session ids are only meaningful within one instance.
    pub instance: u64,
}

/// A request on the control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// Chosen by the client; echoed in the response.
    pub id: u32,
    /// What is asked.
    pub request: Request,
}

/// Requests a client may make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// List the host's sessions.
    ListSessions,
    /// Start a new PTY session.
    CreateSession(CreateSession),
    /// Kill a running session (SIGHUP, then SIGKILL after a grace period) or forget an ended one.
    KillSession {
        /// Session id.
        session: u64,
    },
    /// List the agents the host can run.
    ListAgents,
    /// Start an agent session in a new git worktree.
    NewAgentSession(NewAgentSession),
    /// List agent sessions.
    ListAgentSessions,
    /// Send a prompt; queued if a turn is running.
    AgentPrompt {
        /// Agent session id.
        session: u64,
        /// The prompt text.
        text: String,
    },
    /// Cancel the running turn (pending approvals are answered cancelled, queued prompts
    /// dropped).
    AgentCancel {
        /// Agent session id.
        session: u64,
    },
    /// Answer a pending approval.
    AgentAnswer {
        /// Agent session id.
        session: u64,
        /// The approval's number, from its `permission` event.
        approval: u64,
        /// The chosen option id; `None` answers `cancelled`.
        option: Option<String>,
    },
    /// The worktree's changes against the session's base commit.
    AgentDiff {
        /// Agent session id.
        session: u64,
    },
    /// Stop an agent session (state `done`); optionally remove its worktree and branch.
    AgentClose {
        /// Agent session id.
        session: u64,
        /// Also delete the worktree directory and its branch.
        remove_worktree: bool,
    },
    /// Switch the agent's mode (ACP `session/set_mode`), e.g. `plan` or `code`.
    AgentSetMode {
        /// Agent session id.
        session: u64,
        /// A mode id the agent offered (see the `started` event's `modes`).
        mode: String,
    },
    /// Set one of the agent's configuration options (ACP `session/set_config_option`), e.g.
    /// the model.
    AgentSetOption {
        /// Agent session id.
        session: u64,
        /// The option id (see the `started` event's `configOptions`), e.g. `model`.
        option: String,
        /// The value id to choose.
        value: String,
    },
}

/// Parameters of a new PTY session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSession {
    /// Optional display name.
    pub name: Option<String>,
    /// Program and arguments; empty means the host user's login shell.
    pub command: Vec<String>,
    /// Working directory; `None` means the host user's home.
    pub cwd: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Initial terminal size.
    pub size: WinSize,
    /// Keep the output from its first byte for an attachment that follows at once (`peer
    /// attach --new`, the web app's new terminal): until the session's first attachment
    /// registers, the PTY reader waits as it would for an attached client that lags, so a
    /// process that writes more than the buffer before the attach arrives loses nothing.
    /// `false` (`peer new`) lets a detached session run freely from the start.
    pub hold_output: bool,
}

/// The answer to a [`RequestFrame`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame {
    /// The request's id.
    pub id: u32,
    /// The outcome.
    pub result: Result<Reply, WireError>,
}

/// Successful replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reply {
    /// Answer to [`Request::ListSessions`].
    Sessions(Vec<SessionInfo>),
    /// Answer to [`Request::CreateSession`].
    Created(SessionInfo),
    /// Answer to [`Request::KillSession`].
    Killed,
    /// Answer to [`Request::ListAgents`].
    Agents(Vec<AgentDef>),
    /// Answer to [`Request::NewAgentSession`].
    AgentSession(AgentSessionInfo),
    /// Answer to [`Request::ListAgentSessions`], by id ascending.
    AgentSessions(Vec<AgentSessionInfo>),
    /// Answer to [`Request::AgentPrompt`].
    AgentPrompted {
        /// The prompt waits behind a running turn (or other queued prompts).
        queued: bool,
    },
    /// Answer to [`Request::AgentCancel`].
    AgentCancelled,
    /// Answer to [`Request::AgentAnswer`]: this answer was the one given to the agent.
    AgentAnswered,
    /// Answer to [`Request::AgentDiff`].
    AgentDiff(AgentDiff),
    /// Answer to [`Request::AgentClose`].
    AgentClosed,
    /// Answer to [`Request::AgentSetMode`] and [`Request::AgentSetOption`]: the agent agreed.
    AgentConfigured,
}

/// An agent the host knows how to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDef {
    /// Name used in requests.
    pub name: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// The program is found on the host.
    pub installed: bool,
    /// No login (credentials file or key variable) was found on the host.
    pub needs_login: bool,
    /// How to log in, when `needs_login`.
    pub login_hint: Option<String>,
}

/// Parameters of a new agent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAgentSession {
    /// Agent name from [`Request::ListAgents`].
    pub agent: String,
    /// Absolute path of a git repository on the host.
    pub repo: String,
    /// Branch, tag or commit to start from; `None`: the repository's `HEAD`.
    pub base: Option<String>,
    /// A first prompt, sent once the agent is ready.
    pub prompt: Option<String>,
}

/// Where an agent session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentState {
    /// The agent process starts and the ACP session is being set up.
    Starting,
    /// A turn runs.
    Running,
    /// A turn runs and waits for at least one approval.
    WaitingApproval,
    /// Ready for a prompt.
    Idle,
    /// Closed by a client.
    Done,
    /// The agent could not start or exited unexpectedly.
    Failed,
    /// The host restarted during a turn; the turn was cut off. Ready for a prompt.
    Interrupted,
}

impl AgentState {
    /// The snake_case name used in events, the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Starting => "starting",
            AgentState::Running => "running",
            AgentState::WaitingApproval => "waiting_approval",
            AgentState::Idle => "idle",
            AgentState::Done => "done",
            AgentState::Failed => "failed",
            AgentState::Interrupted => "interrupted",
        }
    }

    /// Parses [`AgentState::as_str`].
    pub fn parse(s: &str) -> Option<AgentState> {
        Some(match s {
            "starting" => AgentState::Starting,
            "running" => AgentState::Running,
            "waiting_approval" => AgentState::WaitingApproval,
            "idle" => AgentState::Idle,
            "done" => AgentState::Done,
            "failed" => AgentState::Failed,
            "interrupted" => AgentState::Interrupted,
            _ => return None,
        })
    }
}

/// What an agent session list shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSessionInfo {
    /// Host-unique id, stable across host restarts.
    pub id: u64,
    /// Agent name.
    pub agent: String,
    /// The repository the worktree was made from.
    pub repo: String,
    /// The worktree directory (the agent's cwd).
    pub worktree: String,
    /// The session's branch.
    pub branch: String,
    /// The commit the branch started from (hex).
    pub base: String,
    /// State.
    pub state: AgentState,
    /// Why the state is what it is (failure reason), if anything to say.
    pub detail: Option<String>,
    /// Creation time, unix milliseconds.
    pub created_at_ms: u64,
    /// The sequence number the next event will get (events so far: `0..next_seq`).
    pub next_seq: u64,
    /// Approvals waiting for an answer.
    pub pending_approvals: u32,
    /// Prompts waiting behind the running turn.
    pub queued_prompts: u32,
    /// Event streams attached now.
    pub attached: u32,
}

/// First frame of an agent event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAttach {
    /// Agent session id.
    pub session: u64,
    /// Send events from this sequence number on (0: the whole transcript; `u64::MAX`: only new
    /// events).
    pub from_seq: u64,
}

/// Answer to [`AgentAttach`]; events follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAttached {
    /// The session as it is now.
    pub info: AgentSessionInfo,
}

/// One event of an agent session's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// Agent session id.
    pub session: u64,
    /// 0, 1, 2… per session, without holes.
    pub seq: u64,
    /// When the host recorded it, unix milliseconds.
    pub at_ms: u64,
    /// Event kind (`update`, `prompt`, `turn_start`, `turn_end`, `permission`, …).
    pub kind: String,
    /// The event's fields as a JSON object (UTF-8 text).
    pub data: String,
}

/// A worktree's changes against its base commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDiff {
    /// Base commit (hex).
    pub base: String,
    /// The session's branch.
    pub branch: String,
    /// Changed files, by path.
    pub files: Vec<FileDiff>,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// Path relative to the worktree.
    pub path: String,
    /// `added`, `modified`, `deleted`, `renamed` or `typechange`.
    pub status: String,
    /// Unified diff text (git format, 3 lines of context); binary files say so.
    pub patch: String,
}

/// One audit log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Unix seconds.
    pub at: u64,
    /// Device id (hex), if a device did it.
    pub device: Option<String>,
    /// The device's name then, if known.
    pub device_name: Option<String>,
    /// What happened (`pair`, `connect`, `agent.prompt`, `agent.answer`, …).
    pub event: String,
    /// Details, secrets redacted.
    pub detail: String,
}

/// What a session list shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Host-unique id, small and stable for the host process's life.
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
}

/// Answer to [`Attach`]; output frames follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    /// The session as it is now.
    pub info: SessionInfo,
    /// The offset of the first output byte that will be sent.
    pub start_offset: u64,
    /// Highest input sequence number already applied for this `client_token` (0: none).
    pub input_acked: u64,
}

/// Terminal output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Absolute offset of `data[0]` in the session's output.
    pub offset: u64,
    /// The bytes, at most [`super::MAX_CHUNK`].
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
    /// The bytes, at most [`super::MAX_CHUNK`].
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
#[non_exhaustive]
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

/// Requests from the CLI on the host machine over the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LocalRequest {
    /// Make a new one-time pairing code.
    NewPairing {
        /// Role the paired device gets.
        role: Role,
        /// Seconds the code stays valid.
        ttl_secs: u64,
    },
    /// List paired devices.
    ListDevices,
    /// Revoke a device by id or unique id prefix; closes its connections.
    RevokeDevice {
        /// Device id (hex) or a unique prefix of it.
        id: String,
    },
    /// Host status.
    Status,
    /// The newest audit log rows, newest first.
    Audit {
        /// At most this many rows.
        limit: u32,
    },
}

/// Replies over the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LocalReply {
    /// A new pairing code.
    Pairing {
        /// The URL to open or scan.
        url: String,
        /// Unix seconds when it expires.
        expires_at: u64,
    },
    /// Paired devices.
    Devices(Vec<DeviceInfo>),
    /// A device was revoked.
    Revoked {
        /// The device.
        device: DeviceInfo,
        /// Connections closed.
        closed: u32,
    },
    /// Host status.
    Status(HostStatus),
    /// The request failed.
    Error(WireError),
    /// Audit log rows.
    Audit(Vec<AuditRow>),
}

/// A paired device as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device id: hex of the device's public key.
    pub id: String,
    /// Name given at pairing.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Unix seconds of pairing.
    pub paired_at: u64,
    /// Unix seconds of the last connection, if any.
    pub last_seen: Option<u64>,
    /// Unix seconds of revocation, if revoked.
    pub revoked_at: Option<u64>,
    /// Live connections now.
    pub connections: u32,
    /// A browser (paired through the mobile bridge) rather than a native client.
    pub browser: bool,
}

/// What `peer status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    /// Host name.
    pub host_name: String,
    /// The host's endpoint id.
    pub endpoint_id: String,
    /// Relay URLs in use.
    pub relay_urls: Vec<String>,
    /// Direct addresses.
    pub direct_addrs: Vec<String>,
    /// Where the host key is kept.
    pub key_store: String,
    /// Sessions.
    pub sessions: u32,
    /// Live client connections.
    pub connections: u32,
}

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
