//! One agent session: the agent process, its ACP connection, and the actor that owns the
//! session's state (sequence numbers, pending approvals, the prompt queue).
//!
//! Everything that changes a session goes through its actor task, one step at a time, so
//! event sequence numbers have no holes, the first answer to an approval wins, and the
//! stored transcript is in the order clients saw it. The ACP dispatch loop never waits for a
//! person: permission requests are handed to the actor with their responder and the handler
//! returns at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, ContentBlock, CreateTerminalRequest,
    CreateTerminalResponse, Implementation, InitializeRequest, KillTerminalRequest,
    KillTerminalResponse, LoadSessionRequest, NewSessionRequest, PermissionOption,
    PermissionOptionKind, PromptRequest, PromptResponse, ReleaseTerminalRequest,
    ReleaseTerminalResponse, RequestPermissionOutcome, RequestPermissionRequest,
    RequestPermissionResponse, SelectedPermissionOutcome, SessionId, TerminalExitStatus,
    TerminalOutputRequest, TerminalOutputResponse, TextContent, WaitForTerminalExitRequest,
    WaitForTerminalExitResponse,
};
use agent_client_protocol::{
    Agent, ByteStreams, Client, JsonRpcMessage, JsonRpcNotification, Responder, UntypedMessage, V1,
};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::process::Child;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::{AgentCwd, AgentSpec, Policy, PolicyMode, Redactor};
use super::store::{SessionRow, Store};
use super::terminal::{ExitInfo, Grant, Spawn, TermError, Terminals};
use crate::proto::{AgentEvent, AgentSessionInfo, AgentState, ErrorCode, WireError};

/// Largest `data` of one event; bigger ones are stored and sent as a truncation notice.
pub const MAX_EVENT_DATA: usize = 192 * 1024;
/// Events buffered per session for live attachers; one that falls further behind catches up
/// from the database.
const LIVE_BUFFER: usize = 1024;
/// How long the agent has to answer `initialize` and `session/new` / `session/load`.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Who did something: a device, the policy, the host.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Device id, hex, if a device.
    pub device: Option<String>,
    /// Display name.
    pub name: String,
}

/// Commands from clients to a session's actor.
#[derive(Debug)]
pub(crate) enum Cmd {
    Prompt {
        text: String,
        by: Actor,
        reply: oneshot::Sender<Result<bool, WireError>>,
    },
    Cancel {
        by: Actor,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    Answer {
        approval: u64,
        option: Option<String>,
        by: Actor,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    Close {
        by: Actor,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    /// An ACP request about the session (`session/set_mode`, `session/set_config_option`);
    /// `params` get the `sessionId` added.
    Configure {
        method: &'static str,
        params: Value,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
}

#[derive(Debug)]
struct Snapshot {
    state: AgentState,
    detail: Option<String>,
    next_seq: u64,
    pending: u32,
    queued: u32,
    attached: u32,
}

/// The shared face of a session: what lists and attachers read, and the actor's mailbox.
#[derive(Debug)]
pub struct SessionHandle {
    pub(crate) row: SessionRow,
    snap: Mutex<Snapshot>,
    events: broadcast::Sender<Arc<AgentEvent>>,
    pub(crate) cmds: mpsc::Sender<Cmd>,
}

/// Counts an attachment while alive.
#[derive(Debug)]
pub struct AttachedGuard(Arc<SessionHandle>);

impl Drop for AttachedGuard {
    fn drop(&mut self) {
        let mut s = lock(&self.0.snap);
        s.attached = s.attached.saturating_sub(1);
    }
}

impl SessionHandle {
    pub(crate) fn new(
        row: SessionRow,
        next_seq: u64,
        state: AgentState,
    ) -> (Arc<SessionHandle>, mpsc::Receiver<Cmd>) {
        let (tx, rx) = mpsc::channel(64);
        let detail = row.detail.clone();
        let h = Arc::new(SessionHandle {
            row,
            snap: Mutex::new(Snapshot {
                state,
                detail,
                next_seq,
                pending: 0,
                queued: 0,
                attached: 0,
            }),
            events: broadcast::channel(LIVE_BUFFER).0,
            cmds: tx,
        });
        (h, rx)
    }

    /// The session as lists show it.
    pub fn info(&self) -> AgentSessionInfo {
        let s = lock(&self.snap);
        AgentSessionInfo {
            id: self.row.id,
            agent: self.row.agent.clone(),
            repo: self.row.repo.clone(),
            worktree: self.row.worktree.clone(),
            branch: self.row.branch.clone(),
            base: self.row.base.clone(),
            state: s.state,
            detail: s.detail.clone(),
            created_at_ms: self.row.created_at,
            next_seq: s.next_seq,
            pending_approvals: s.pending,
            queued_prompts: s.queued,
            attached: s.attached,
        }
    }

    /// Live events from now on, and the sequence number of the first one.
    pub fn subscribe(self: &Arc<Self>) -> (broadcast::Receiver<Arc<AgentEvent>>, u64) {
        let s = lock(&self.snap);
        (self.events.subscribe(), s.next_seq)
    }

    /// Records a state when no actor runs for the session.
    pub(crate) fn mark(&self, state: AgentState) {
        lock(&self.snap).state = state;
    }

    /// Counts an attachment until the guard drops.
    pub fn attached(self: &Arc<Self>) -> AttachedGuard {
        lock(&self.snap).attached += 1;
        AttachedGuard(self.clone())
    }
}

/// `session/update` with its parameters kept as JSON: every update kind, known or not, is
/// recorded as the agent sent it.
#[derive(Debug, Clone)]
struct RawUpdate {
    params: Value,
}

impl JsonRpcMessage for RawUpdate {
    fn matches_method(method: &str) -> bool {
        method == "session/update"
    }
    fn method(&self) -> &str {
        "session/update"
    }
    fn to_untyped_message(&self) -> Result<UntypedMessage, agent_client_protocol::Error> {
        UntypedMessage::new("session/update", &self.params)
    }
    fn parse_message(method: &str, params: &Value) -> Result<Self, agent_client_protocol::Error> {
        if method != "session/update" {
            return Err(agent_client_protocol::Error::method_not_found());
        }
        Ok(RawUpdate {
            params: params.clone(),
        })
    }
}

impl JsonRpcNotification for RawUpdate {}

type PermResponder = Responder<RequestPermissionResponse, V1>;

enum FromAgent {
    Update(Value),
    Permission(Box<RequestPermissionRequest>, PermResponder),
    Terminal(TermReq),
}

/// The ACP client `terminal/*` requests, with their responders.
enum TermReq {
    Create(CreateTerminalRequest, Responder<CreateTerminalResponse, V1>),
    Output(TerminalOutputRequest, Responder<TerminalOutputResponse, V1>),
    Wait(
        WaitForTerminalExitRequest,
        Responder<WaitForTerminalExitResponse, V1>,
    ),
    Kill(KillTerminalRequest, Responder<KillTerminalResponse, V1>),
    Release(
        ReleaseTerminalRequest,
        Responder<ReleaseTerminalResponse, V1>,
    ),
}

/// JSON-RPC error code of a refused `terminal/create` (no approval of this command in this
/// turn).
pub const NOT_APPROVED: i32 = -32001;

fn term_error(e: TermError) -> agent_client_protocol::Error {
    agent_client_protocol::Error::new(-32602, e.to_string())
}

fn exit_status(e: ExitInfo) -> TerminalExitStatus {
    TerminalExitStatus::new().exit_code(e.code).signal(e.signal)
}

struct Pending {
    responder: PermResponder,
    options: Vec<PermissionOption>,
    deadline: Option<Instant>,
    /// The tool call the agent showed (for the terminal grant).
    tool: Value,
}

/// How a session starts.
#[derive(Debug)]
pub(crate) struct Start {
    pub spec: AgentSpec,
    pub policy: Policy,
    pub redactor: Redactor,
    /// The agent's session id to load (after a host restart).
    pub resume: Option<String>,
    /// The host stopped during a turn: record that the turn ended `interrupted`.
    pub cut_turn: bool,
    /// Start in state `interrupted` (until the next prompt).
    pub interrupted: bool,
    /// Approvals that were pending when the host stopped: recorded as cancelled.
    pub stale_approvals: Vec<u64>,
    /// Approval numbers start here.
    pub next_approval: u64,
    /// A first prompt.
    pub prompt: Option<(String, Actor)>,
    /// The session's private directory (the agent's cwd with `cwd = "state"`).
    pub state_dir: PathBuf,
}

type PromptFuture =
    Pin<Box<dyn Future<Output = Result<PromptResponse, agent_client_protocol::Error>> + Send>>;

/// The actor's own state.
struct Session {
    h: Arc<SessionHandle>,
    store: Store,
    policy: Policy,
    next_seq: u64,
    state: AgentState,
    detail: Option<String>,
    pending: BTreeMap<u64, Pending>,
    resolved: HashMap<u64, String>,
    next_approval: u64,
    queue: VecDeque<(String, Actor)>,
    in_flight: bool,
    interrupted: bool,
    /// Replayed history during `session/load` is not recorded again.
    replaying: bool,
    /// The ACP session is set up.
    ready: bool,
    /// The agent's ACP session id, once set up.
    acp_sid: Option<String>,
    /// Commands the host runs for the agent (`terminal/*`).
    terms: Terminals,
    /// Approvals people gave in the running turn, each good for one `terminal/create`.
    grants: Vec<Grant>,
}

enum Stop {
    /// The host shuts down: leave the stored state as it is.
    Shutdown,
    /// The session ended (closed or failed); the state is recorded.
    Ended,
}

impl Session {
    async fn emit(&mut self, kind: &str, data: Value) {
        let mut text = data.to_string();
        if text.len() > MAX_EVENT_DATA {
            text = json!({"truncated": true, "bytes": text.len()}).to_string();
        }
        let ev = AgentEvent {
            session: self.h.row.id,
            seq: self.next_seq,
            at_ms: now_ms(),
            kind: kind.to_string(),
            data: text,
        };
        self.next_seq += 1;
        // Clients see an event only once it is stored: a number a client has seen is never
        // given to another event, even if the host dies right after.
        let (h, next, live) = (self.h.clone(), self.next_seq, Arc::new(ev.clone()));
        let publish: super::store::OnStored = Box::new(move || {
            let mut s = lock(&h.snap);
            s.next_seq = next;
            let _ = h.events.send(live);
        });
        if let Err(e) = self.store.append(ev, Some(publish)).await {
            warn!(session = self.h.row.id, "recording event: {e}");
        }
    }

    /// Recomputes the state from what is going on and records a change.
    async fn refresh(&mut self) {
        let state = match self.state {
            AgentState::Done | AgentState::Failed => self.state,
            _ if !self.ready => AgentState::Starting,
            _ if self.in_flight && !self.pending.is_empty() => AgentState::WaitingApproval,
            _ if self.in_flight => AgentState::Running,
            _ if self.interrupted => AgentState::Interrupted,
            _ => AgentState::Idle,
        };
        self.set_state(state, self.detail.clone()).await;
    }

    async fn set_state(&mut self, state: AgentState, detail: Option<String>) {
        {
            let mut s = lock(&self.h.snap);
            s.pending = self.pending.len() as u32;
            s.queued = self.queue.len() as u32;
        }
        if state == self.state && detail == self.detail {
            return;
        }
        self.state = state;
        self.detail = detail.clone();
        {
            let mut s = lock(&self.h.snap);
            s.state = state;
            s.detail = detail.clone();
        }
        if let Err(e) = self
            .store
            .set_state(self.h.row.id, state, detail.clone())
            .await
        {
            warn!(session = self.h.row.id, "recording state: {e}");
        }
        self.emit("state", json!({"state": state.as_str(), "detail": detail}))
            .await;
    }

    async fn fail(&mut self, why: String) {
        if matches!(self.state, AgentState::Failed | AgentState::Done) {
            debug!(session = self.h.row.id, "after the end: {why}");
            return;
        }
        warn!(session = self.h.row.id, "agent failed: {why}");
        self.emit("error", json!({"message": why})).await;
        if self.in_flight {
            self.in_flight = false;
            self.emit("turn_end", json!({"stopReason": "failed"})).await;
        }
        self.resolve_all("the agent exited").await;
        self.drop_queue().await;
        self.set_state(AgentState::Failed, Some(why)).await;
    }

    async fn drop_queue(&mut self) {
        if !self.queue.is_empty() {
            let n = self.queue.len();
            self.queue.clear();
            self.emit("queue_cleared", json!({"dropped": n})).await;
        }
    }

    /// Answers one pending approval and records who decided.
    async fn resolve(&mut self, id: u64, option: Option<String>, by: &Actor) -> bool {
        let Some(p) = self.pending.remove(&id) else {
            return false;
        };
        let kind = option.as_ref().and_then(|o| {
            p.options
                .iter()
                .find(|x| x.option_id.0.as_ref() == o)
                .map(|x| x.kind)
        });
        // "Always" choices are not passed on: an agent that remembers them (fast-agent writes
        // them into the worktree) would skip asking next time. The "once" option goes instead.
        let forward = match kind {
            Some(PermissionOptionKind::AllowAlways) => {
                Self::option_of(&p.options, &[PermissionOptionKind::AllowOnce]).or(option.clone())
            }
            Some(PermissionOptionKind::RejectAlways) => {
                Self::option_of(&p.options, &[PermissionOptionKind::RejectOnce]).or(option.clone())
            }
            _ => option.clone(),
        };
        // A person's "allow" may start one command through `terminal/create` in this turn.
        if by.device.is_some()
            && matches!(
                kind,
                Some(PermissionOptionKind::AllowOnce | PermissionOptionKind::AllowAlways)
            )
        {
            self.grants.extend(Grant::from_tool_call(id, &p.tool));
        }
        let outcome = match &forward {
            Some(o) => {
                RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(o.clone()))
            }
            None => RequestPermissionOutcome::Cancelled,
        };
        if let Err(e) = p.responder.respond(RequestPermissionResponse::new(outcome)) {
            debug!("answering a permission request: {e}");
        }
        self.resolved.insert(id, by.name.clone());
        self.emit(
            "permission_resolved",
            json!({
                "approval": id,
                "outcome": if option.is_some() { "selected" } else { "cancelled" },
                "optionId": option,
                "forwarded": (forward != option).then_some(forward),
                "by": by.name,
                "device": by.device,
            }),
        )
        .await;
        true
    }

    /// Answers every pending approval `cancelled`, `why` naming the reason.
    async fn resolve_all(&mut self, why: &str) {
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        let by = Actor {
            device: None,
            name: why.to_string(),
        };
        for id in ids {
            self.resolve(id, None, &by).await;
        }
    }

    fn option_of(options: &[PermissionOption], kinds: &[PermissionOptionKind]) -> Option<String> {
        kinds.iter().find_map(|k| {
            options
                .iter()
                .find(|o| o.kind == *k)
                .map(|o| o.option_id.0.to_string())
        })
    }

    async fn on_permission(&mut self, req: RequestPermissionRequest, responder: PermResponder) {
        let id = self.next_approval;
        self.next_approval += 1;
        let tool = serde_json::to_value(&req.tool_call).unwrap_or(Value::Null);
        let options = serde_json::to_value(&req.options).unwrap_or(Value::Null);
        self.emit(
            "permission",
            json!({"approval": id, "toolCall": tool, "options": options}),
        )
        .await;
        let deadline = (self.policy.timeout_secs > 0)
            .then(|| Instant::now() + Duration::from_secs(self.policy.timeout_secs));
        let opts = req.options.clone();
        self.pending.insert(
            id,
            Pending {
                responder,
                options: req.options,
                deadline,
                tool: tool.clone(),
            },
        );
        let haystack = format!(
            "{} {}",
            tool.get("title").and_then(Value::as_str).unwrap_or(""),
            tool.get("rawInput")
                .map(Value::to_string)
                .unwrap_or_default()
        );
        let policy = |name: &str| Actor {
            device: None,
            name: name.to_string(),
        };
        if let Some(d) = self
            .policy
            .deny
            .iter()
            .find(|d| haystack.contains(d.as_str()))
        {
            let reject = Self::option_of(
                &opts,
                &[
                    PermissionOptionKind::RejectOnce,
                    PermissionOptionKind::RejectAlways,
                ],
            );
            let by = policy(&format!("policy (deny list: {d})"));
            self.resolve(id, reject, &by).await;
            return;
        }
        let kind = tool.get("kind").and_then(Value::as_str).unwrap_or("");
        if self.policy.mode == PolicyMode::AllowReads
            && matches!(kind, "read" | "search")
            && let Some(allow) = Self::option_of(&opts, &[PermissionOptionKind::AllowOnce])
        {
            self.resolve(id, Some(allow), &policy("policy (reads allowed)"))
                .await;
        }
    }

    async fn on_timeouts(&mut self) {
        let now = Instant::now();
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let reject = self.pending.get(&id).and_then(|p| {
                Self::option_of(
                    &p.options,
                    &[
                        PermissionOptionKind::RejectOnce,
                        PermissionOptionKind::RejectAlways,
                    ],
                )
            });
            let by = Actor {
                device: None,
                name: "timeout".into(),
            };
            self.resolve(id, reject, &by).await;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().filter_map(|p| p.deadline).min()
    }

    /// A turn started or ended: approvals given in it no longer start commands.
    fn end_grants(&mut self) {
        self.grants.clear();
    }

    /// `terminal/*` from the agent. Answers at once; `wait_for_exit` answers from a task.
    async fn on_terminal(&mut self, req: TermReq) {
        let refuse_replay =
            || agent_client_protocol::Error::new(-32600, "no commands while a session is loading");
        match req {
            TermReq::Create(req, r) => {
                if self.replaying {
                    let _ = r.respond_with_error(refuse_replay());
                    return;
                }
                if self
                    .acp_sid
                    .as_deref()
                    .is_some_and(|ours| ours != req.session_id.0.as_ref())
                {
                    let _ = r.respond_with_error(agent_client_protocol::Error::new(
                        -32602,
                        format!("unknown session {}", req.session_id.0),
                    ));
                    return;
                }
                let res = self.create_terminal(&req).await;
                let _ = match res {
                    Ok(id) => r.respond(CreateTerminalResponse::new(id)),
                    Err(e) => r.respond_with_error(e),
                };
            }
            TermReq::Output(req, r) => {
                let _ = match self.terms.output(&req.terminal_id.0) {
                    Ok((text, cut, exit)) => r.respond(
                        TerminalOutputResponse::new(text, cut).exit_status(exit.map(exit_status)),
                    ),
                    Err(e) => r.respond_with_error(term_error(e)),
                };
            }
            TermReq::Wait(req, r) => {
                self.terms.wait(&req.terminal_id.0, move |res| {
                    let _ = match res {
                        Ok(e) => r.respond(WaitForTerminalExitResponse::new(exit_status(e))),
                        Err(e) => r.respond_with_error(term_error(e)),
                    };
                });
            }
            TermReq::Kill(req, r) => {
                let _ = match self.terms.kill(&req.terminal_id.0) {
                    Ok(()) => r.respond(KillTerminalResponse::new()),
                    Err(e) => r.respond_with_error(term_error(e)),
                };
            }
            TermReq::Release(req, r) => {
                let _ = match self.terms.release(&req.terminal_id.0) {
                    Ok(()) => r.respond(ReleaseTerminalResponse::new()),
                    Err(e) => r.respond_with_error(term_error(e)),
                };
            }
        }
    }

    /// `terminal/create`: only with an unused approval of this turn that covers the command.
    async fn create_terminal(
        &mut self,
        req: &CreateTerminalRequest,
    ) -> Result<String, agent_client_protocol::Error> {
        let what = json!({"command": req.command, "args": req.args, "cwd": req.cwd});
        let refuse = async |s: &mut Session, reason: String, code: i32| {
            warn!(session = s.h.row.id, "terminal refused: {reason}");
            s.emit(
                "terminal_refused",
                json!({"request": what, "reason": reason}),
            )
            .await;
            agent_client_protocol::Error::new(code, reason)
        };
        let root = match self.terms.resolve_cwd(None).await {
            Ok(r) => r,
            Err(e) => return Err(refuse(self, e.to_string(), -32602).await),
        };
        let cwd = match self.terms.resolve_cwd(req.cwd.as_deref()).await {
            Ok(c) => c,
            Err(e) => return Err(refuse(self, e.to_string(), -32602).await),
        };
        let Some(i) = self
            .grants
            .iter()
            .position(|g| g.allows(&req.command, &req.args, &cwd, &root))
        else {
            let reason = if self.grants.is_empty() {
                "not approved: no one allowed a command in this turn".to_string()
            } else {
                "not approved: this command is not the one that was allowed".to_string()
            };
            return Err(refuse(self, reason, NOT_APPROVED).await);
        };
        let grant = self.grants.remove(i);
        let spawn = Spawn {
            command: req.command.clone(),
            args: req.args.clone(),
            env: req
                .env
                .iter()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect(),
            cwd: Some(cwd.clone()),
            output_limit: req.output_byte_limit,
        };
        match self.terms.create(spawn, cwd.clone()) {
            Ok(id) => {
                self.emit(
                    "terminal",
                    json!({"terminal": id, "approval": grant.approval, "command": req.command,
                           "args": req.args, "cwd": cwd}),
                )
                .await;
                Ok(id)
            }
            Err(e) => {
                // The approval was for this command; it failed to start, so it stays usable.
                self.grants.insert(i, grant);
                Err(refuse(self, e.to_string(), -32603).await)
            }
        }
    }
}

/// Runs a session until it is closed, fails, or the host shuts down.
pub(crate) async fn run(
    h: Arc<SessionHandle>,
    store: Store,
    start: Start,
    cmds: mpsc::Receiver<Cmd>,
    shutdown: CancellationToken,
) {
    let state = lock(&h.snap).state;
    let next_seq = lock(&h.snap).next_seq;
    let mut s = Session {
        h: h.clone(),
        store,
        policy: start.policy.clone(),
        next_seq,
        state,
        detail: h.row.detail.clone(),
        pending: BTreeMap::new(),
        resolved: HashMap::new(),
        next_approval: start.next_approval,
        queue: VecDeque::new(),
        in_flight: false,
        interrupted: start.interrupted,
        replaying: false,
        ready: false,
        acp_sid: None,
        terms: Terminals::new(PathBuf::from(&h.row.worktree)),
        grants: Vec::new(),
    };
    // Always say so, also when a resumed session was stored as starting.
    s.state = AgentState::Idle;
    s.set_state(AgentState::Starting, None).await;
    let Some(program) = start.spec.command.first() else {
        s.fail("the agent definition has no command".into()).await;
        return;
    };
    let wt = PathBuf::from(&h.row.worktree);
    // fast-agent keeps "always allow" answers here, and honours them without asking; the
    // host never passes such answers on and runs no command without a fresh approval, but a
    // repository that ships this file is suspicious.
    let auths = wt.join(".fast-agent").join("auths.md");
    if tokio::fs::try_exists(&auths).await.unwrap_or(false) {
        warn!(
            session = h.row.id,
            "the worktree contains {}",
            auths.display()
        );
        let message = format!(
            "the worktree contains {}: stored tool approvals of fast-agent, which the host \
             ignores (every command still needs an approval in its turn)",
            auths.display()
        );
        s.emit("warning", json!({ "message": message })).await;
    }
    let process_cwd = match start.spec.cwd {
        AgentCwd::Worktree => wt.clone(),
        AgentCwd::State => start.state_dir.clone(),
    };
    if let Err(e) = tokio::fs::create_dir_all(&start.state_dir).await {
        s.fail(format!("cannot create {}: {e}", start.state_dir.display()))
            .await;
        let mut cmds = cmds;
        refuse_all(&mut cmds, s.state);
        return;
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&start.spec.command[1..])
        .envs(start.spec.env.iter().map(|(k, v)| {
            let dir = start.state_dir.to_string_lossy();
            (k, v.replace(super::config::STATE_VAR, &dir))
        }))
        .env("PEER_AGENT_SESSION", h.row.id.to_string())
        .env("PEER_AGENT_STATE", &start.state_dir)
        .current_dir(&process_cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            s.fail(format!("cannot start {program}: {e}")).await;
            let mut cmds = cmds;
            refuse_all(&mut cmds, s.state);
            return;
        }
    };
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        s.fail("the agent's pipes are missing".into()).await;
        return;
    };
    info!(session = h.row.id, agent = %h.row.agent, pid = ?child.id(), "agent started");
    // The agent's log: drained so it never blocks, redacted before it reaches ours.
    let id = h.row.id;
    let redactor = start.redactor.clone();
    let stderr_task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            debug!(session = id, "agent: {}", redactor.redact(&line));
        }
    }));

    let (tx, rx) = mpsc::channel::<FromAgent>(256);
    let tx2 = tx.clone();
    let (t1, t2, t3, t4, t5) = (tx.clone(), tx.clone(), tx.clone(), tx.clone(), tx.clone());
    let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
    let result = Client
        .v1()
        .name("peer-host")
        .on_receive_notification(
            async move |n: RawUpdate, _cx: ConnectionTo<Agent>| {
                let _ = tx.send(FromAgent::Update(n.params)).await;
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |req: RequestPermissionRequest,
                        responder: PermResponder,
                        _cx: ConnectionTo<Agent>| {
                if let Err(mpsc::error::SendError(FromAgent::Permission(_, r))) = tx2
                    .send(FromAgent::Permission(Box::new(req), responder))
                    .await
                {
                    let _ = r.respond(RequestPermissionResponse::new(
                        RequestPermissionOutcome::Cancelled,
                    ));
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: CreateTerminalRequest, r, _cx: ConnectionTo<Agent>| {
                if let Err(mpsc::error::SendError(FromAgent::Terminal(TermReq::Create(_, r)))) =
                    t1.send(FromAgent::Terminal(TermReq::Create(req, r))).await
                {
                    let _ = r.respond_with_error(gone());
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: TerminalOutputRequest, r, _cx: ConnectionTo<Agent>| {
                if let Err(mpsc::error::SendError(FromAgent::Terminal(TermReq::Output(_, r)))) =
                    t2.send(FromAgent::Terminal(TermReq::Output(req, r))).await
                {
                    let _ = r.respond_with_error(gone());
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WaitForTerminalExitRequest, r, _cx: ConnectionTo<Agent>| {
                if let Err(mpsc::error::SendError(FromAgent::Terminal(TermReq::Wait(_, r)))) =
                    t3.send(FromAgent::Terminal(TermReq::Wait(req, r))).await
                {
                    let _ = r.respond_with_error(gone());
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: KillTerminalRequest, r, _cx: ConnectionTo<Agent>| {
                if let Err(mpsc::error::SendError(FromAgent::Terminal(TermReq::Kill(_, r)))) =
                    t4.send(FromAgent::Terminal(TermReq::Kill(req, r))).await
                {
                    let _ = r.respond_with_error(gone());
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ReleaseTerminalRequest, r, _cx: ConnectionTo<Agent>| {
                if let Err(mpsc::error::SendError(FromAgent::Terminal(TermReq::Release(_, r)))) =
                    t5.send(FromAgent::Terminal(TermReq::Release(req, r))).await
                {
                    let _ = r.respond_with_error(gone());
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async |cx: ConnectionTo<Agent>| {
            Ok(drive(&mut s, cx, rx, cmds, &mut child, start, &shutdown).await)
        })
        .await;
    let stop = match result {
        Ok(stop) => stop,
        Err(e) => {
            s.fail(format!("agent connection failed: {e}")).await;
            Stop::Ended
        }
    };
    kill(&mut child).await;
    stderr_task.abort();
    if let Stop::Shutdown = stop {
        debug!(session = h.row.id, "agent stopped for host shutdown");
    }
}

fn gone() -> agent_client_protocol::Error {
    agent_client_protocol::Error::new(-32603, "the session is ending")
}

fn refuse_all(cmds: &mut mpsc::Receiver<Cmd>, state: AgentState) {
    cmds.close();
    while let Ok(c) = cmds.try_recv() {
        not_running(c, state);
    }
}

fn not_running(c: Cmd, state: AgentState) {
    let err = || {
        WireError::new(
            ErrorCode::BadRequest,
            format!("the agent is not running ({})", state.as_str()),
        )
    };
    match c {
        Cmd::Prompt { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Cmd::Cancel { reply, .. }
        | Cmd::Answer { reply, .. }
        | Cmd::Close { reply, .. }
        | Cmd::Configure { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
    }
}

/// Ends the agent: SIGTERM to its process group, SIGKILL after 2 s.
async fn kill(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .is_err()
    {
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.kill().await;
    }
}

fn exit_text(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("the agent exited with status {c}"),
            (_, Some(sig)) => format!("the agent was killed by signal {sig}"),
            _ => "the agent exited".into(),
        },
        Err(e) => format!("waiting for the agent: {e}"),
    }
}

/// Awaits `fut` while recording what the agent sends, watching the process and the host.
async fn guarded<T>(
    s: &mut Session,
    rx: &mut mpsc::Receiver<FromAgent>,
    child: &mut Child,
    shutdown: &CancellationToken,
    fut: impl Future<Output = Result<T, agent_client_protocol::Error>>,
) -> Result<Result<T, String>, Stop> {
    let fut = tokio::time::timeout(SETUP_TIMEOUT, fut);
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            Some(m) = rx.recv() => on_agent(s, m).await,
            r = &mut fut => return Ok(match r {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the agent did not answer in time".into()),
            }),
            st = child.wait() => {
                s.fail(exit_text(st)).await;
                return Err(Stop::Ended);
            }
            _ = shutdown.cancelled() => return Err(Stop::Shutdown),
        }
    }
}

async fn on_agent(s: &mut Session, m: FromAgent) {
    match m {
        FromAgent::Update(params) => {
            if s.replaying {
                return;
            }
            let update = params.get("update").cloned().unwrap_or(params);
            s.emit("update", update).await;
        }
        FromAgent::Permission(req, responder) => {
            if s.replaying {
                let _ = responder.respond(RequestPermissionResponse::new(
                    RequestPermissionOutcome::Cancelled,
                ));
                return;
            }
            s.on_permission(*req, responder).await;
            s.refresh().await;
        }
        FromAgent::Terminal(req) => s.on_terminal(req).await,
    }
}

async fn drive(
    s: &mut Session,
    cx: ConnectionTo<Agent>,
    mut rx: mpsc::Receiver<FromAgent>,
    mut cmds: mpsc::Receiver<Cmd>,
    child: &mut Child,
    start: Start,
    shutdown: &CancellationToken,
) -> Stop {
    match setup(s, &cx, &mut rx, child, &start, shutdown).await {
        Ok(Some(sid)) => run_loop(s, cx, sid, rx, &mut cmds, child, start, shutdown).await,
        Ok(None) => {
            refuse_all(&mut cmds, s.state);
            Stop::Ended
        }
        Err(stop) => {
            if let Stop::Ended = stop {
                refuse_all(&mut cmds, s.state);
            }
            stop
        }
    }
}

/// Whether the agent advertises `sessionCapabilities.resume`.
fn can_resume(init: &agent_client_protocol::v1::schema::InitializeResponse) -> bool {
    serde_json::to_value(&init.agent_capabilities.session_capabilities)
        .ok()
        .and_then(|v| v.get("resume").cloned())
        .is_some_and(|v| !v.is_null())
}

/// `initialize`, then after a restart `session/load` or `session/resume` (what the agent can),
/// else `session/new`.
async fn setup(
    s: &mut Session,
    cx: &ConnectionTo<Agent>,
    rx: &mut mpsc::Receiver<FromAgent>,
    child: &mut Child,
    start: &Start,
    shutdown: &CancellationToken,
) -> Result<Option<SessionId>, Stop> {
    let init = InitializeRequest::new(ProtocolVersion::V1)
        .client_capabilities(ClientCapabilities::new().terminal(true))
        .client_info(Implementation::new("peer", env!("CARGO_PKG_VERSION")));
    let init = match guarded(s, rx, child, shutdown, cx.send_request(init).block_task()).await? {
        Ok(i) => i,
        Err(e) => {
            s.fail(format!("initialize failed: {e}")).await;
            return Ok(None);
        }
    };
    let cwd = PathBuf::from(&s.h.row.worktree);
    for id in &start.stale_approvals {
        s.resolved.insert(*id, "host restart".into());
        s.emit(
            "permission_resolved",
            json!({"approval": id, "outcome": "cancelled", "optionId": null, "by": "host restart", "device": null}),
        )
        .await;
    }
    if start.cut_turn {
        s.emit(
            "turn_end",
            json!({"stopReason": "interrupted", "reason": "the host restarted during the turn"}),
        )
        .await;
    }
    if let Some(old) = &start.resume {
        if init.agent_capabilities.load_session {
            s.replaying = true;
            let req = LoadSessionRequest::new(SessionId::new(old.as_str()), cwd.clone());
            let r = guarded(s, rx, child, shutdown, cx.send_request(req).block_task()).await;
            s.replaying = false;
            match r? {
                Ok(_) => {
                    s.emit(
                        "resumed",
                        json!({"method": "session/load", "agentSession": old}),
                    )
                    .await;
                    return Ok(Some(SessionId::new(old.as_str())));
                }
                Err(e) => {
                    s.emit(
                        "resumed",
                        json!({"method": "session/new", "note": format!("session/load failed ({e}): the agent starts a new conversation; the transcript is kept")}),
                    )
                    .await;
                }
            }
        } else if can_resume(&init) {
            let params = json!({"sessionId": old, "cwd": cwd, "mcpServers": []});
            let r = match UntypedMessage::new("session/resume", params) {
                Ok(req) => {
                    guarded(s, rx, child, shutdown, cx.send_request(req).block_task()).await?
                }
                Err(e) => Err(e.to_string()),
            };
            match r {
                Ok(_) => {
                    s.emit(
                        "resumed",
                        json!({"method": "session/resume", "agentSession": old}),
                    )
                    .await;
                    return Ok(Some(SessionId::new(old.as_str())));
                }
                Err(e) => {
                    s.emit(
                        "resumed",
                        json!({"method": "session/new", "note": format!("session/resume failed ({e}): the agent starts a new conversation; the transcript is kept")}),
                    )
                    .await;
                }
            }
        } else {
            s.emit(
                "resumed",
                json!({"method": "session/new", "note": "the agent can neither load nor resume sessions: it starts a new conversation; the transcript is kept"}),
            )
            .await;
        }
    }
    let new = NewSessionRequest::new(cwd);
    match guarded(s, rx, child, shutdown, cx.send_request(new).block_task()).await? {
        Ok(r) => {
            let sid = r.session_id;
            if let Err(e) = s.store.set_acp_session(s.h.row.id, sid.0.to_string()).await {
                warn!("recording the agent's session id: {e}");
            }
            s.emit(
                "started",
                json!({
                    "agentSession": sid.0.as_ref(),
                    "agentInfo": serde_json::to_value(&init.agent_info).unwrap_or(Value::Null),
                    "loadSession": init.agent_capabilities.load_session,
                    "modes": serde_json::to_value(&r.modes).unwrap_or(Value::Null),
                    "configOptions": serde_json::to_value(&r.config_options).unwrap_or(Value::Null),
                }),
            )
            .await;
            Ok(Some(sid))
        }
        Err(e) => {
            s.fail(format!("session/new failed: {e}")).await;
            Ok(None)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_loop(
    s: &mut Session,
    cx: ConnectionTo<Agent>,
    sid: SessionId,
    mut rx: mpsc::Receiver<FromAgent>,
    cmds: &mut mpsc::Receiver<Cmd>,
    child: &mut Child,
    start: Start,
    shutdown: &CancellationToken,
) -> Stop {
    s.ready = true;
    s.acp_sid = Some(sid.0.to_string());
    if let Some((text, by)) = start.prompt {
        s.emit(
            "prompt",
            json!({"text": text, "by": by.name, "device": by.device, "queued": false}),
        )
        .await;
        s.queue.push_back((text, by));
    }
    let mut turn: PromptFuture = Box::pin(std::future::pending());
    // Configuration requests wait for the agent's answer here, not in the actor.
    let mut pending_requests: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    loop {
        if !s.in_flight
            && let Some((text, _by)) = s.queue.pop_front()
        {
            s.end_grants();
            s.emit("turn_start", json!({"text": text})).await;
            let req = PromptRequest::new(
                sid.clone(),
                vec![ContentBlock::Text(TextContent::new(text))],
            );
            turn = Box::pin(cx.send_request(req).block_task());
            s.in_flight = true;
            s.interrupted = false;
        }
        s.refresh().await;
        let deadline = s.next_deadline();
        tokio::select! {
            biased;
            Some(m) = rx.recv() => on_agent(s, m).await,
            r = &mut turn, if s.in_flight => {
                s.in_flight = false;
                s.end_grants();
                turn = Box::pin(std::future::pending());
                match r {
                    Ok(resp) => {
                        let reason = serde_json::to_value(resp.stop_reason).unwrap_or(Value::Null);
                        s.emit("turn_end", json!({"stopReason": reason})).await;
                    }
                    Err(e) => {
                        // A dead agent fails the request first; let the exit explain it.
                        if let Ok(st) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
                            while let Ok(m) = rx.try_recv() {
                                on_agent(s, m).await;
                            }
                            s.in_flight = true;
                            s.fail(exit_text(st)).await;
                            refuse_all(cmds, s.state);
                            return Stop::Ended;
                        }
                        s.emit("turn_end", json!({"stopReason": "error", "error": e.to_string()})).await;
                    }
                }
                s.resolve_all("turn ended").await;
            }
            c = cmds.recv() => {
                let Some(c) = c else { return Stop::Shutdown };
                if let Cmd::Configure { method, mut params, reply } = c {
                    if let Value::Object(m) = &mut params {
                        m.insert("sessionId".into(), Value::String(sid.0.to_string()));
                    }
                    match UntypedMessage::new(method, params) {
                        Ok(req) => {
                            let sent = cx.send_request(req).block_task();
                            pending_requests.spawn(async move {
                                let res = sent.await.map(|_| ()).map_err(|e| {
                                    WireError::new(ErrorCode::BadRequest, format!("the agent refused: {e}"))
                                });
                                let _ = reply.send(res);
                            });
                        }
                        Err(e) => {
                            let _ = reply.send(Err(WireError::new(ErrorCode::Internal, e.to_string())));
                        }
                    }
                    continue;
                }
                if let Some(stop) = on_cmd(s, &cx, &sid, c).await {
                    return stop;
                }
            }
            Some(_) = pending_requests.join_next(), if !pending_requests.is_empty() => {}
            st = child.wait() => {
                // Updates sent just before the exit are still queued: record them first.
                while let Ok(m) = rx.try_recv() {
                    on_agent(s, m).await;
                }
                s.fail(exit_text(st)).await;
                refuse_all(cmds, s.state);
                return Stop::Ended;
            }
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                s.on_timeouts().await;
            }
            _ = shutdown.cancelled() => return Stop::Shutdown,
        }
    }
}

async fn on_cmd(
    s: &mut Session,
    cx: &ConnectionTo<Agent>,
    sid: &SessionId,
    c: Cmd,
) -> Option<Stop> {
    match c {
        Cmd::Prompt { text, by, reply } => {
            let queued = s.in_flight || !s.queue.is_empty();
            s.emit(
                "prompt",
                json!({"text": text, "by": by.name, "device": by.device, "queued": queued}),
            )
            .await;
            s.queue.push_back((text, by));
            let _ = reply.send(Ok(queued));
        }
        Cmd::Cancel { by, reply } => {
            if !s.in_flight {
                let _ = reply.send(Err(WireError::new(
                    ErrorCode::BadRequest,
                    "no turn is running",
                )));
                return None;
            }
            s.emit("cancel", json!({"by": by.name, "device": by.device}))
                .await;
            if let Err(e) = cx.send_notification(CancelNotification::new(sid.clone())) {
                warn!("sending session/cancel: {e}");
            }
            // Agents do not always stop the commands of a cancelled turn: the host does.
            s.end_grants();
            s.terms.kill_all();
            s.resolve_all(&format!("cancelled by {}", by.name)).await;
            s.drop_queue().await;
            let _ = reply.send(Ok(()));
        }
        Cmd::Answer {
            approval,
            option,
            by,
            reply,
        } => {
            let res = match s.pending.get(&approval) {
                Some(p) => {
                    if let Some(o) = &option
                        && !p.options.iter().any(|x| x.option_id.0.as_ref() == o)
                    {
                        let _ = reply.send(Err(WireError::new(
                            ErrorCode::BadRequest,
                            format!("approval {approval} has no option {o:?}"),
                        )));
                        return None;
                    }
                    s.resolve(approval, option, &by).await;
                    Ok(())
                }
                None => Err(match s.resolved.get(&approval) {
                    Some(who) => WireError::new(
                        ErrorCode::Conflict,
                        format!("approval {approval} was already answered by {who}"),
                    ),
                    None => WireError::new(
                        ErrorCode::NotFound,
                        format!("no pending approval {approval}"),
                    ),
                }),
            };
            let _ = reply.send(res);
        }
        Cmd::Close { by, reply } => {
            s.emit("closed", json!({"by": by.name, "device": by.device}))
                .await;
            s.resolve_all("session closed").await;
            s.drop_queue().await;
            if s.in_flight {
                s.in_flight = false;
                s.emit("turn_end", json!({"stopReason": "closed"})).await;
            }
            s.set_state(AgentState::Done, None).await;
            let _ = reply.send(Ok(()));
            return Some(Stop::Ended);
        }
        Cmd::Configure { reply, .. } => {
            let _ = reply.send(Err(WireError::new(
                ErrorCode::Internal,
                "configuration request in the wrong place",
            )));
        }
    }
    None
}
