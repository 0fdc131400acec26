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
    /// It can run on a local model server (`NewAgentSession::model` = `local:…`).
    pub local_models: bool,
    /// Where its prompts and code go without a local model (e.g. `Anthropic`), if known.
    pub provider: Option<String>,
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
    /// `local:MODEL` or `local:SERVER/MODEL`: run the agent on a model of a model server on
    /// the host's machine ([`crate::Request::ListModelServers`]); `None`: the agent's own
    /// configuration picks the model.
    pub model: Option<String>,
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
    /// Where its model runs.
    pub model: crate::ModelPlace,
    /// The first line of the session's first prompt (at most 120 characters), if it had one.
    pub title: Option<String>,
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

/// JSON text (UTF-8) of an ACP object.
///
/// Postcard cannot carry arbitrary JSON values, so the ACP objects an event passes on (a
/// `SessionUpdate`, a `ToolCallUpdate`, `PermissionOption`s, `modes`, `configOptions`,
/// `agentInfo`) travel as their JSON text, exactly as the agent sent them.
pub type JsonText = String;

/// The largest postcard encoding of one event's [`AgentEventKind`], bytes. The host replaces a
/// bigger one with [`AgentEventKind::Truncated`] before it records it, so every event fits in
/// a frame ([`crate::MAX_FRAME`]).
pub const MAX_EVENT_DATA: usize = 192 * 1024;

/// One event of an agent session's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// Agent session id.
    pub session: u64,
    /// 0, 1, 2… per session, without holes.
    pub seq: u64,
    /// When the host recorded it, unix milliseconds.
    pub at_ms: u64,
    /// What happened.
    pub event: AgentEventKind,
}

/// What an agent event says. Variant indexes are wire values: new kinds are added at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentEventKind {
    /// The session's state changed.
    State {
        /// The new state.
        state: AgentState,
        /// Why (for `Failed`), if anything to say.
        detail: Option<String>,
    },
    /// The ACP session is set up (`session/new` answered).
    Started {
        /// The agent's own ACP session id.
        agent_session: String,
        /// ACP `Implementation` of the agent, if it said.
        agent_info: Option<JsonText>,
        /// The agent can `session/load`.
        load_session: bool,
        /// ACP `SessionModeState`, if the agent has modes.
        modes: Option<JsonText>,
        /// ACP `SessionConfigOption` list, if the agent has options.
        config_options: Option<JsonText>,
    },
    /// After a host restart: how the conversation was re-attached.
    Resumed {
        /// The ACP request that re-attached it.
        method: ResumeMethod,
        /// The agent's session id, when it was loaded or resumed.
        agent_session: Option<String>,
        /// Why the agent starts a new conversation (`method` is `New`).
        note: Option<String>,
    },
    /// A client sent a prompt.
    Prompt {
        /// The prompt.
        text: String,
        /// Device name.
        by: String,
        /// Device id (hex), if a device sent it.
        device: Option<String>,
        /// It waits behind a running turn.
        queued: bool,
    },
    /// A prompt was sent to the agent (`session/prompt`).
    TurnStart {
        /// The prompt.
        text: String,
    },
    /// The turn ended.
    TurnEnd {
        /// Why.
        stop_reason: StopReason,
    },
    /// A `session/update` notification.
    Update {
        /// The ACP `SessionUpdate` object as the agent sent it.
        update: JsonText,
    },
    /// The agent asked `session/request_permission`: a pending approval.
    Permission {
        /// 1, 2, … per session.
        approval: u64,
        /// ACP `ToolCallUpdate`: what the agent wants to do.
        tool_call: JsonText,
        /// ACP `PermissionOption` list (`optionId`, `name`, `kind`).
        options: JsonText,
        /// What the tool call will do, as the host reads it from `tool_call` (the same reading
        /// `peer agent attach` shows): every client shows this, not its own reading. `None` in
        /// events recorded before hosts said it.
        what: Option<Vec<ToolAction>>,
    },
    /// An approval was answered; exactly one per [`AgentEventKind::Permission`].
    PermissionResolved {
        /// The approval.
        approval: u64,
        /// The option chosen; `None`: the request was answered `cancelled`.
        option_id: Option<String>,
        /// The option the agent was sent instead (the `allow_once` / `reject_once` option in
        /// place of an `allow_always` / `reject_always` choice), if another one.
        forwarded: Option<String>,
        /// Who decided: a device name, `policy (…)`, `timeout`, `cancelled by NAME`, `turn
        /// ended`, `the agent exited`, `host restart`, `session closed`.
        by: String,
        /// Device id (hex), if a device answered.
        device: Option<String>,
    },
    /// A client cancelled the turn.
    Cancel {
        /// Device name.
        by: String,
        /// Device id (hex).
        device: Option<String>,
    },
    /// Queued prompts were dropped (cancel, failure, close).
    QueueCleared {
        /// How many.
        dropped: u32,
    },
    /// The agent could not start, failed ACP setup, or exited.
    Error {
        /// What happened.
        message: String,
    },
    /// A client closed the session.
    Closed {
        /// Device name.
        by: String,
        /// Device id (hex).
        device: Option<String>,
    },
    /// The host started a command for the agent (ACP `terminal/create`).
    Terminal {
        /// The id given to the agent (`term-1`, …).
        terminal: String,
        /// The approval that allowed it.
        approval: u64,
        /// Program.
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Working directory (resolved).
        cwd: String,
    },
    /// The host refused a `terminal/create`.
    TerminalRefused {
        /// Program, as the agent asked.
        command: String,
        /// Arguments, as the agent asked.
        args: Vec<String>,
        /// Working directory, as the agent asked.
        cwd: Option<String>,
        /// Why.
        reason: String,
    },
    /// Something about the session a person should know.
    Warning {
        /// What.
        message: String,
    },
    /// An event too big to carry: its kind ([`AgentEventKind::name`]) and the size of its
    /// postcard encoding. The host records it in place of an event over [`MAX_EVENT_DATA`];
    /// a browser channel sends it in place of an event over one Noise message.
    Truncated {
        /// The kind of the event left out.
        kind: String,
        /// Its encoded size, bytes.
        bytes: u64,
    },
    /// A grant was made: from now on the host answers the tool calls it covers itself, in this
    /// session, until it is revoked.
    Grant {
        /// 1, 2, … per session.
        grant: u64,
        /// What it covers.
        scope: GrantScope,
        /// Allow (`true`) or reject what it covers.
        allow: bool,
        /// Who made it: a device name.
        by: String,
        /// Device id (hex), if a device made it.
        device: Option<String>,
        /// The approval whose "always" answer made it, if one did.
        approval: Option<u64>,
    },
    /// A grant was revoked.
    GrantRevoked {
        /// The grant.
        grant: u64,
        /// Device name.
        by: String,
        /// Device id (hex).
        device: Option<String>,
    },
}

/// How a turn ended: ACP's stop reasons, and the host's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// ACP `end_turn`.
    EndTurn,
    /// ACP `max_tokens`.
    MaxTokens,
    /// ACP `max_turn_requests`.
    MaxTurnRequests,
    /// ACP `refusal`.
    Refusal,
    /// ACP `cancelled`.
    Cancelled,
    /// The agent died during the turn.
    Failed,
    /// The host restarted during the turn.
    Interrupted {
        /// What happened.
        reason: String,
    },
    /// A client closed the session during the turn.
    Closed,
    /// `session/prompt` failed.
    Error {
        /// The agent's error.
        error: String,
    },
    /// A stop reason ACP added after this host was built.
    Other {
        /// Its name.
        name: String,
    },
}

impl StopReason {
    /// The snake_case name (ACP's for ACP's reasons).
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::MaxTurnRequests => "max_turn_requests",
            StopReason::Refusal => "refusal",
            StopReason::Cancelled => "cancelled",
            StopReason::Failed => "failed",
            StopReason::Interrupted { .. } => "interrupted",
            StopReason::Closed => "closed",
            StopReason::Error { .. } => "error",
            StopReason::Other { name } => name,
        }
    }

    /// The reason named `name` (ACP's snake_case names); the host's own reasons with fields
    /// get them empty.
    pub fn from_name(name: &str) -> StopReason {
        match name {
            "end_turn" => StopReason::EndTurn,
            "max_tokens" => StopReason::MaxTokens,
            "max_turn_requests" => StopReason::MaxTurnRequests,
            "refusal" => StopReason::Refusal,
            "cancelled" => StopReason::Cancelled,
            "failed" => StopReason::Failed,
            "interrupted" => StopReason::Interrupted {
                reason: String::new(),
            },
            "closed" => StopReason::Closed,
            "error" => StopReason::Error {
                error: String::new(),
            },
            other => StopReason::Other {
                name: other.to_string(),
            },
        }
    }
}

/// How a conversation was re-attached after a host restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeMethod {
    /// `session/load`: the agent has the whole conversation.
    Load,
    /// `session/resume`: the agent has the conversation, without a replay.
    Resume,
    /// `session/new`: the agent lost the conversation (the transcript is kept).
    New,
}

impl ResumeMethod {
    /// The ACP method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResumeMethod::Load => "session/load",
            ResumeMethod::Resume => "session/resume",
            ResumeMethod::New => "session/new",
        }
    }

    /// Parses [`ResumeMethod::as_str`].
    pub fn parse(s: &str) -> Option<ResumeMethod> {
        Some(match s {
            "session/load" => ResumeMethod::Load,
            "session/resume" => ResumeMethod::Resume,
            "session/new" => ResumeMethod::New,
            _ => return None,
        })
    }
}

impl AgentEventKind {
    /// The kind's snake_case name: the name of the variant (`turn_end`, `permission_resolved`,
    /// …), as the host's database and the CLI show it.
    pub fn name(&self) -> &'static str {
        match self {
            AgentEventKind::State { .. } => "state",
            AgentEventKind::Started { .. } => "started",
            AgentEventKind::Resumed { .. } => "resumed",
            AgentEventKind::Prompt { .. } => "prompt",
            AgentEventKind::TurnStart { .. } => "turn_start",
            AgentEventKind::TurnEnd { .. } => "turn_end",
            AgentEventKind::Update { .. } => "update",
            AgentEventKind::Permission { .. } => "permission",
            AgentEventKind::PermissionResolved { .. } => "permission_resolved",
            AgentEventKind::Cancel { .. } => "cancel",
            AgentEventKind::QueueCleared { .. } => "queue_cleared",
            AgentEventKind::Error { .. } => "error",
            AgentEventKind::Closed { .. } => "closed",
            AgentEventKind::Terminal { .. } => "terminal",
            AgentEventKind::TerminalRefused { .. } => "terminal_refused",
            AgentEventKind::Warning { .. } => "warning",
            AgentEventKind::Truncated { .. } => "truncated",
            AgentEventKind::Grant { .. } => "grant",
            AgentEventKind::GrantRevoked { .. } => "grant_revoked",
        }
    }

    /// The size of its postcard encoding, bytes.
    pub fn encoded_len(&self) -> usize {
        postcard::experimental::serialized_size(self).unwrap_or(usize::MAX)
    }

    /// The [`AgentEventKind::Truncated`] that stands for this event.
    pub fn truncated(&self) -> AgentEventKind {
        match self {
            AgentEventKind::Truncated { .. } => self.clone(),
            _ => AgentEventKind::Truncated {
                kind: self.name().to_string(),
                bytes: self.encoded_len() as u64,
            },
        }
    }

    /// This event if its encoding is at most `max` bytes, else [`AgentEventKind::truncated`].
    pub fn bounded(self, max: usize) -> AgentEventKind {
        if self.encoded_len() <= max {
            self
        } else {
            self.truncated()
        }
    }
}

/// One thing a tool call will do, as a person checks it before approving: read by the host
/// from the ACP `ToolCallUpdate` (`title`, `kind`, `rawInput`, `locations`, `content`). Every
/// text is as the agent sent it, cut to at most 2000 characters (a cut ends `… (N more
/// characters)`); whoever shows it makes control characters visible first. Variant indexes are
/// wire values: new ones are added at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolAction {
    /// Runs a command.
    Run {
        /// The command line.
        command: String,
        /// Where: the tool call's own directory, or `None` for the agent's working directory.
        cwd: Option<String>,
    },
    /// Changes (or creates, or deletes) a file.
    Edit {
        /// The file.
        path: String,
        /// The change (empty: the agent did not show it). At most 40 lines of at most 300
        /// characters, then one [`DiffLine::Cut`].
        diff: Vec<DiffLine>,
    },
    /// Reads or touches a file without showing a change (`path:line` when a line is known).
    File {
        /// The file.
        path: String,
    },
    /// Fetches a URL.
    Fetch {
        /// The URL.
        url: String,
    },
    /// Searches for something.
    Search {
        /// The pattern or query.
        query: String,
    },
}

/// One line of a change shown with an approval. Variant indexes are wire values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffLine {
    /// Unchanged (context).
    Same(String),
    /// Removed.
    Del(String),
    /// Added.
    Add(String),
    /// A note that lines were left out: `… N more lines`.
    Cut(String),
}

/// What a grant covers (always inside one agent session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantScope {
    /// Every tool call of the session, and every command it asks the host to run.
    Session,
    /// Tool calls of this ACP kind (`read`, `edit`, `fetch`, `execute`, …).
    Kind {
        /// The kind.
        kind: String,
    },
    /// Commands that start with this one, compared as parsed commands (program, words, flags
    /// normalised), never as text: `cargo test` covers `cargo test --release`.
    Command {
        /// The command, as a person would type it.
        command: String,
    },
}

/// A grant as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    /// Agent session id.
    pub session: u64,
    /// The grant's number in its session.
    pub grant: u64,
    /// What it covers.
    pub scope: GrantScope,
    /// Allow (`true`) or reject.
    pub allow: bool,
    /// Who made it.
    pub by: String,
    /// The approval whose "always" answer made it, if one did.
    pub approval: Option<u64>,
    /// When, unix milliseconds.
    pub at_ms: u64,
    /// How many requests it answered since the host started.
    pub used: u32,
}

/// An approval waiting for an answer, as [`crate::Request::ListApprovals`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    /// Agent session id.
    pub session: u64,
    /// The approval's number.
    pub approval: u64,
    /// ACP `ToolCallUpdate`, as in the `permission` event.
    pub tool_call: JsonText,
    /// ACP `PermissionOption` list, as in the `permission` event.
    pub options: JsonText,
    /// The agent's working directory (a command without its own `cwd` runs there).
    pub cwd: String,
    /// When the agent asked, unix milliseconds.
    pub at_ms: u64,
    /// What the tool call will do, as the host reads it from `tool_call`: the reading the
    /// `permission` event's `what` carries (empty: the agent said nothing more than the title).
    pub what: Vec<ToolAction>,
}

/// Parameters of a new agent session ([`crate::Request::StartAgent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartAgent {
    /// Agent name from [`crate::Request::ListAgents`].
    pub agent: String,
    /// Absolute path on the host of a git repository or of a directory inside one (then the
    /// agent works in that directory of the worktree).
    pub repo: String,
    /// Branch, tag or commit to start from; `None`: the repository's `HEAD`.
    pub base: Option<String>,
    /// A first prompt, sent once the agent is ready.
    pub prompt: Option<String>,
    /// Bring the checkout's uncommitted changes (staged, unstaged and untracked files) into the
    /// new worktree.
    pub with_changes: bool,
    /// `local:MODEL` or `local:SERVER/MODEL`: run the agent on a model of a model server on
    /// the host's machine, as [`NewAgentSession::model`]; `None`: the agent's own model.
    pub model: Option<String>,
}

/// Answer to [`crate::Request::StartAgent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStarted {
    /// The new session.
    pub info: AgentSessionInfo,
    /// The agent's working directory: the worktree, or the directory inside it that `repo`
    /// named.
    pub cwd: String,
    /// What a person should know before going on (no login found for the agent, uncommitted
    /// changes left behind, …).
    pub warnings: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_kind() -> impl Strategy<Value = AgentEventKind> {
        let s = || ".{0,12}";
        let opt = || proptest::option::of(".{0,12}");
        prop_oneof![
            (0..7u8, opt()).prop_map(|(n, detail)| AgentEventKind::State {
                state: [
                    AgentState::Starting,
                    AgentState::Running,
                    AgentState::WaitingApproval,
                    AgentState::Idle,
                    AgentState::Done,
                    AgentState::Failed,
                    AgentState::Interrupted,
                ][n as usize],
                detail,
            }),
            (s(), opt(), any::<bool>(), opt(), opt()).prop_map(|(a, i, l, m, c)| {
                AgentEventKind::Started {
                    agent_session: a,
                    agent_info: i,
                    load_session: l,
                    modes: m,
                    config_options: c,
                }
            }),
            (s(), s(), opt(), any::<bool>()).prop_map(|(text, by, device, queued)| {
                AgentEventKind::Prompt {
                    text,
                    by,
                    device,
                    queued,
                }
            }),
            s().prop_map(|name| AgentEventKind::TurnEnd {
                stop_reason: StopReason::from_name(&name)
            }),
            s().prop_map(|update| AgentEventKind::Update { update }),
            (any::<u64>(), s(), s(), opt(), 0..3u8).prop_map(
                |(approval, tool_call, options, cwd, n)| AgentEventKind::Permission {
                    approval,
                    what: match n {
                        0 => None,
                        1 => Some(vec![]),
                        _ => Some(vec![
                            ToolAction::Run {
                                command: tool_call.clone(),
                                cwd,
                            },
                            ToolAction::Edit {
                                path: options.clone(),
                                diff: vec![
                                    DiffLine::Same("a".into()),
                                    DiffLine::Del(tool_call.clone()),
                                    DiffLine::Add(options.clone()),
                                    DiffLine::Cut("… 1 more lines".into()),
                                ],
                            },
                            ToolAction::File { path: "p".into() },
                            ToolAction::Fetch { url: "u".into() },
                            ToolAction::Search { query: "q".into() },
                        ]),
                    },
                    tool_call,
                    options,
                }
            ),
            (any::<u64>(), opt(), opt(), s(), opt()).prop_map(|(approval, o, f, by, device)| {
                AgentEventKind::PermissionResolved {
                    approval,
                    option_id: o,
                    forwarded: f,
                    by,
                    device,
                }
            }),
            (s(), proptest::collection::vec(s(), 0..3), opt(), s()).prop_map(
                |(command, args, cwd, reason)| AgentEventKind::TerminalRefused {
                    command,
                    args,
                    cwd,
                    reason,
                }
            ),
            (s(), any::<u64>()).prop_map(|(kind, bytes)| AgentEventKind::Truncated { kind, bytes }),
            (
                any::<u64>(),
                0..3u8,
                s(),
                any::<bool>(),
                opt(),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(grant, n, text, allow, device, approval)| {
                    let scope = match n {
                        0 => GrantScope::Session,
                        1 => GrantScope::Kind { kind: text.clone() },
                        _ => GrantScope::Command {
                            command: text.clone(),
                        },
                    };
                    AgentEventKind::Grant {
                        grant,
                        scope,
                        allow,
                        by: text,
                        device,
                        approval,
                    }
                }),
            (any::<u64>(), s(), opt())
                .prop_map(|(grant, by, device)| AgentEventKind::GrantRevoked { grant, by, device }),
        ]
    }

    proptest! {
        #[test]
        fn events_round_trip(event in arb_kind(), seq in any::<u64>()) {
            let ev = AgentEvent { session: 1, seq, at_ms: 2, event };
            let bytes = postcard::to_allocvec(&ev).expect("encode");
            prop_assert_eq!(postcard::from_bytes::<AgentEvent>(&bytes).expect("decode"), ev);
        }
    }

    #[test]
    fn a_pending_approval_carries_the_hosts_reading_last() {
        let p = PendingApproval {
            session: 1,
            approval: 2,
            tool_call: "{}".into(),
            options: "[]".into(),
            cwd: "/w".into(),
            at_ms: 3,
            what: vec![ToolAction::Run {
                command: "make".into(),
                cwd: None,
            }],
        };
        let bytes = postcard::to_allocvec(&p).expect("encode");
        // The reading is the last field: one action, `Run` (0), "make", no cwd.
        assert!(
            bytes.ends_with(&[1, 0, 4, b'm', b'a', b'k', b'e', 0]),
            "{bytes:?}"
        );
        assert_eq!(
            postcard::from_bytes::<PendingApproval>(&bytes).expect("decode"),
            p
        );
    }

    #[test]
    fn big_events_are_replaced_by_a_notice_of_their_kind_and_size() {
        let small = AgentEventKind::Update {
            update: "{}".into(),
        };
        assert_eq!(small.clone().bounded(MAX_EVENT_DATA), small);
        let big = AgentEventKind::Update {
            update: "x".repeat(MAX_EVENT_DATA),
        };
        let len = big.encoded_len();
        assert_eq!(len, postcard::to_allocvec(&big).expect("encode").len());
        assert!(len > MAX_EVENT_DATA);
        assert_eq!(
            big.bounded(MAX_EVENT_DATA),
            AgentEventKind::Truncated {
                kind: "update".into(),
                bytes: len as u64
            }
        );
        // Truncating a notice keeps it as it is.
        let t = AgentEventKind::Truncated {
            kind: "update".into(),
            bytes: 9,
        };
        assert_eq!(t.truncated(), t);
    }

    #[test]
    fn stop_reasons_have_their_acp_names() {
        for n in [
            "end_turn",
            "max_tokens",
            "max_turn_requests",
            "refusal",
            "cancelled",
            "failed",
            "interrupted",
            "closed",
            "error",
            "some_new_reason",
        ] {
            assert_eq!(StopReason::from_name(n).as_str(), n);
        }
        for m in [ResumeMethod::Load, ResumeMethod::Resume, ResumeMethod::New] {
            assert_eq!(ResumeMethod::parse(m.as_str()), Some(m));
        }
    }
}
