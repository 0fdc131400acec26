//! Agent sessions: the agent registry, sessions, transcripts and diffs.

use serde::{Deserialize, Serialize};

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
