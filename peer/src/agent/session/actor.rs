//! The session's actor: one `select!` over what the agent sends, the running turn, client
//! commands, the agent process, the approval deadline, idleness and the host's shutdown. Each
//! arm hands its input to a method of [`Session`] and goes round again.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use agent_client_protocol::Agent;
use agent_client_protocol::UntypedMessage;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, PromptRequest, PromptResponse, RequestPermissionOutcome,
    RequestPermissionResponse, SessionId, TextContent,
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::warn;

use super::acp::{FromAgent, PermResponder};
use super::handle::{Actor, Cmd, SessionHandle};
use crate::agent::approvals::{AnswerError, Approvals, Decider, End, GrantError};
use crate::agent::config::Redactor;
use crate::agent::store::Store;
use crate::agent::terminal::Terminals;
use crate::proto::{AgentEventKind, AgentState, ErrorCode, StopReason, WireError};

type PromptFuture =
    Pin<Box<dyn Future<Output = Result<PromptResponse, agent_client_protocol::Error>> + Send>>;

/// How a live phase stopped.
pub(super) enum Stop {
    /// The host shuts down: leave the stored state as it is.
    Shutdown,
    /// The session ended (closed or failed); the state is recorded.
    Ended,
    /// The agent process is no longer needed (idle, or its start was cancelled); why, for
    /// the state's detail. The session goes on.
    Idle(String),
}

/// Where the agent process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proc {
    /// Not running.
    Stopped,
    /// Started; `initialize` and the session's setup run.
    Starting,
    /// Set up: serving turns.
    Ready,
}

/// The actor's own state.
pub(super) struct Session {
    pub(super) h: Arc<SessionHandle>,
    pub(super) store: Store,
    pub(super) redactor: Redactor,
    pub(super) next_seq: u64,
    pub(super) state: AgentState,
    pub(super) detail: Option<String>,
    /// Pending approvals, the policy, the session's grants and the terminal grants.
    pub(super) approvals: Approvals,
    /// The agent's permission requests, by approval number, until answered.
    pub(super) responders: HashMap<u64, PermResponder>,
    /// When the approvals next need [`Approvals::expire`].
    pub(super) deadline: Option<tokio::time::Instant>,
    pub(super) queue: VecDeque<(String, Actor)>,
    /// A `session/prompt` is in flight.
    pub(super) in_flight: bool,
    /// The host restarted during a turn; no turn has run since.
    pub(super) interrupted: bool,
    /// Replayed history during `session/load` is not recorded again.
    pub(super) replaying: bool,
    /// The agent process.
    pub(super) process: Proc,
    /// The agent's ACP session id, once set up.
    pub(super) acp_sid: Option<String>,
    /// The agent ever set up an ACP session for this session.
    pub(super) ever_started: bool,
    /// The agent can load or resume its session (so it may be stopped when idle).
    pub(super) resumable: bool,
    /// The newest lines of the agent's stderr, and the task that reads them.
    pub(super) stderr: Arc<Mutex<VecDeque<String>>>,
    pub(super) stderr_task: Option<AbortOnDropHandle<()>>,
    /// The warning about fast-agent's stored approvals was given.
    pub(super) warned_auths: bool,
    /// Commands the host runs for the agent (`terminal/*`).
    pub(super) terms: Terminals,
}

impl Session {
    pub(super) fn new(
        h: Arc<SessionHandle>,
        store: Store,
        approvals: Approvals,
        redactor: Redactor,
    ) -> Session {
        let (state, next_seq) = h.start_point();
        Session {
            store,
            redactor,
            next_seq,
            state,
            detail: h.row.detail.clone(),
            approvals,
            responders: HashMap::new(),
            deadline: None,
            queue: VecDeque::new(),
            in_flight: false,
            interrupted: false,
            replaying: false,
            process: Proc::Stopped,
            acp_sid: None,
            ever_started: h.row.acp_session.is_some(),
            resumable: false,
            stderr: Arc::new(Mutex::new(VecDeque::new())),
            stderr_task: None,
            warned_auths: false,
            terms: Terminals::new(h.row.cwd(), h.row.worktree.clone().into()),
            h,
        }
    }

    /// What the agent sent.
    pub(super) async fn on_agent(&mut self, m: FromAgent) {
        match m {
            FromAgent::Update(params) => {
                if self.replaying {
                    return;
                }
                let update = params.get("update").cloned().unwrap_or(params);
                self.emit(AgentEventKind::Update {
                    update: update.to_string(),
                })
                .await;
            }
            FromAgent::Permission(req, responder) => {
                if self.replaying {
                    let _ = responder.respond(RequestPermissionResponse::new(
                        RequestPermissionOutcome::Cancelled,
                    ));
                    return;
                }
                self.on_permission(*req, responder).await;
                self.refresh().await;
            }
            FromAgent::Terminal(req) => self.on_terminal(req).await,
        }
    }

    /// Records what the agent sent before it exited, then the failure.
    async fn on_exit(
        &mut self,
        st: std::io::Result<std::process::ExitStatus>,
        rx: &mut mpsc::Receiver<FromAgent>,
    ) {
        while let Ok(m) = rx.try_recv() {
            self.on_agent(m).await;
        }
        self.fail(exit_text(st)).await;
    }

    /// Sends the next queued prompt if no turn runs.
    fn next_turn(&mut self) -> Option<String> {
        if self.in_flight {
            return None;
        }
        let (text, _by) = self.queue.pop_front()?;
        self.in_flight = true;
        self.interrupted = false;
        Some(text)
    }

    /// The running turn's `session/prompt` returned. `Some` if the agent is gone.
    async fn on_turn_end(
        &mut self,
        r: Result<PromptResponse, agent_client_protocol::Error>,
        child: &mut Child,
        rx: &mut mpsc::Receiver<FromAgent>,
    ) -> Option<Stop> {
        self.in_flight = false;
        let stop_reason = match r {
            Ok(resp) => StopReason::from_name(
                serde_json::to_value(resp.stop_reason)
                    .ok()
                    .as_ref()
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ),
            Err(e) => {
                // A dead agent fails the request first; let the exit explain it.
                if let Ok(st) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
                    self.in_flight = true;
                    self.on_exit(st, rx).await;
                    return Some(Stop::Ended);
                }
                StopReason::Error {
                    error: e.to_string(),
                }
            }
        };
        self.emit(AgentEventKind::TurnEnd { stop_reason }).await;
        let effects = self.approvals.end(End::TurnEnd);
        self.apply(effects).await;
        None
    }

    /// A prompt: recorded, queued, and sent when no turn runs.
    pub(super) async fn on_prompt(
        &mut self,
        text: String,
        by: Actor,
        reply: oneshot::Sender<Result<bool, WireError>>,
    ) {
        let queued = self.in_flight || !self.queue.is_empty();
        self.emit(AgentEventKind::Prompt {
            text: text.clone(),
            by: by.name.clone(),
            device: by.device.clone(),
            queued,
        })
        .await;
        self.queue.push_back((text, by));
        let _ = reply.send(Ok(queued));
        self.refresh().await;
    }

    /// A client closes the session: pending approvals and queued prompts go, state `done`.
    pub(super) async fn close(&mut self, by: Actor) {
        self.emit(AgentEventKind::Closed {
            by: by.name,
            device: by.device,
        })
        .await;
        let effects = self.approvals.end(End::Close);
        self.apply(effects).await;
        self.drop_queue().await;
        if self.in_flight {
            self.in_flight = false;
            self.emit(AgentEventKind::TurnEnd {
                stop_reason: StopReason::Closed,
            })
            .await;
        }
        self.set_state(AgentState::Done, None).await;
    }

    /// The commands that need no agent process: answers and grants.
    pub(super) async fn on_common(&mut self, c: Cmd) {
        match c {
            Cmd::Answer {
                approval,
                option,
                by,
                reply,
            } => {
                let by = Decider::Person {
                    name: by.name,
                    device: by.device,
                };
                let res = match self.approvals.answer(approval, option, by) {
                    Ok(effects) => {
                        self.apply(effects).await;
                        Ok(())
                    }
                    Err(e) => {
                        let code = match e {
                            AnswerError::Conflict { .. } => ErrorCode::Conflict,
                            AnswerError::NotFound(_) => ErrorCode::NotFound,
                            AnswerError::NoSuchOption { .. } => ErrorCode::BadRequest,
                        };
                        Err(WireError::new(code, e.to_string()))
                    }
                };
                let _ = reply.send(res);
                self.refresh().await;
            }
            Cmd::AddGrant {
                scope,
                allow,
                by,
                reply,
            } => {
                let by = Decider::Person {
                    name: by.name,
                    device: by.device,
                };
                let at = crate::util::now_ms();
                let res = match self.approvals.add_grant(scope, allow, by, None, at) {
                    Ok((info, effects)) => {
                        self.apply(effects).await;
                        Ok(info)
                    }
                    Err(e) => Err(grant_error(e)),
                };
                let _ = reply.send(res);
            }
            Cmd::RevokeGrant { grant, by, reply } => {
                let by = Decider::Person {
                    name: by.name,
                    device: by.device,
                };
                let res = match self.approvals.revoke_grant(grant, by) {
                    Ok(effects) => {
                        self.apply(effects).await;
                        Ok(())
                    }
                    Err(e) => Err(grant_error(e)),
                };
                let _ = reply.send(res);
            }
            Cmd::Wake => {}
            other => other.refuse(WireError::new(
                ErrorCode::BadRequest,
                "the agent is not running",
            )),
        }
    }

    /// A client's command while the agent runs. `Some` if the live phase ends.
    async fn on_cmd(
        &mut self,
        cx: &ConnectionTo<Agent>,
        sid: &SessionId,
        c: Cmd,
        requests: &mut JoinSet<()>,
    ) -> Option<Stop> {
        match c {
            Cmd::Prompt { text, by, reply } => self.on_prompt(text, by, reply).await,
            Cmd::Cancel { by, reply } => {
                if !self.in_flight {
                    let _ = reply.send(Err(WireError::new(
                        ErrorCode::BadRequest,
                        "no turn is running",
                    )));
                    return None;
                }
                self.emit(AgentEventKind::Cancel {
                    by: by.name.clone(),
                    device: by.device.clone(),
                })
                .await;
                if let Err(e) = cx.send_notification(CancelNotification::new(sid.clone())) {
                    warn!("sending session/cancel: {e}");
                }
                // Agents do not always stop the commands of a cancelled turn: the host does.
                self.terms.kill_all();
                let effects = self.approvals.end(End::Cancel { by: by.name });
                self.apply(effects).await;
                self.drop_queue().await;
                let _ = reply.send(Ok(()));
            }
            Cmd::Close { by, reply } => {
                self.close(by).await;
                let _ = reply.send(Ok(()));
                return Some(Stop::Ended);
            }
            Cmd::Configure {
                method,
                mut params,
                reply,
            } => {
                if let Value::Object(m) = &mut params {
                    m.insert("sessionId".into(), Value::String(sid.0.to_string()));
                }
                match UntypedMessage::new(method, params) {
                    Ok(req) => {
                        // The answer is awaited here, not in the actor.
                        let sent = cx.send_request(req).block_task();
                        requests.spawn(async move {
                            let res = sent.await.map(|_| ()).map_err(|e| {
                                WireError::new(
                                    ErrorCode::BadRequest,
                                    format!("the agent refused: {e}"),
                                )
                            });
                            let _ = reply.send(res);
                        });
                    }
                    Err(e) => {
                        let _ = reply.send(Err(WireError::new(ErrorCode::Internal, e.to_string())));
                    }
                }
            }
            other => self.on_common(other).await,
        }
        None
    }

    /// Whether the agent may be stopped now: it can resume, and nothing runs or waits.
    fn idle(&self) -> bool {
        self.resumable
            && !self.in_flight
            && self.queue.is_empty()
            && self.approvals.pending() == 0
            && self.terms.is_empty()
    }
}

fn grant_error(e: GrantError) -> WireError {
    match e {
        GrantError::NotFound(_) => WireError::new(ErrorCode::NotFound, e.to_string()),
        GrantError::Bad(_) => WireError::new(ErrorCode::BadRequest, e.to_string()),
    }
}

/// Sleeps until `d`, or for ever.
async fn sleep_until(d: Option<tokio::time::Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The session's life once the ACP session is set up: until it is closed, the agent exits or
/// is stopped for idleness, or the host shuts down. `deferred` commands came before the agent
/// was ready.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_loop(
    s: &mut Session,
    cx: ConnectionTo<Agent>,
    sid: SessionId,
    mut rx: mpsc::Receiver<FromAgent>,
    cmds: &mut mpsc::Receiver<Cmd>,
    child: &mut Child,
    shutdown: &CancellationToken,
    deferred: Vec<Cmd>,
    idle_stop: Option<Duration>,
) -> Stop {
    s.process = Proc::Ready;
    s.acp_sid = Some(sid.0.to_string());
    let mut turn: PromptFuture = Box::pin(std::future::pending());
    // Configuration requests waiting for the agent's answer.
    let mut requests: JoinSet<()> = JoinSet::new();
    for c in deferred {
        if let Some(stop) = s.on_cmd(&cx, &sid, c, &mut requests).await {
            return stop;
        }
    }
    let mut last_activity = tokio::time::Instant::now();
    loop {
        if let Some(text) = s.next_turn() {
            let effects = s.approvals.end(End::TurnStart);
            s.apply(effects).await;
            s.emit(AgentEventKind::TurnStart { text: text.clone() })
                .await;
            let req = PromptRequest::new(
                sid.clone(),
                vec![ContentBlock::Text(TextContent::new(text))],
            );
            turn = Box::pin(cx.send_request(req).block_task());
        }
        s.refresh().await;
        let idle_at = match idle_stop {
            Some(d) if s.idle() && requests.is_empty() => Some(last_activity + d),
            _ => None,
        };
        tokio::select! {
            biased;
            Some(m) = rx.recv() => s.on_agent(m).await,
            r = &mut turn, if s.in_flight => {
                turn = Box::pin(std::future::pending());
                if let Some(stop) = s.on_turn_end(r, child, &mut rx).await {
                    return stop;
                }
            }
            c = cmds.recv() => {
                let Some(c) = c else { return Stop::Shutdown };
                if let Some(stop) = s.on_cmd(&cx, &sid, c, &mut requests).await {
                    return stop;
                }
            }
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            st = child.wait() => {
                // Updates sent just before the exit are still queued: recorded first.
                s.on_exit(st, &mut rx).await;
                return Stop::Ended;
            }
            _ = sleep_until(s.deadline) => {
                let effects = s.approvals.expire(std::time::Instant::now());
                s.apply(effects).await;
            }
            _ = sleep_until(idle_at) => {
                let secs = idle_stop.map_or(0, |d| d.as_secs());
                return Stop::Idle(format!(
                    "the agent was stopped after {secs} s without a turn; it starts again when needed"
                ));
            }
            _ = shutdown.cancelled() => return Stop::Shutdown,
        }
        last_activity = tokio::time::Instant::now();
    }
}

/// Refuses every command still queued, and any that comes: the session is over.
pub(super) fn refuse_all(cmds: &mut mpsc::Receiver<Cmd>, state: AgentState) {
    cmds.close();
    while let Ok(c) = cmds.try_recv() {
        c.refuse(WireError::new(
            ErrorCode::BadRequest,
            format!("the agent is not running ({})", state.as_str()),
        ));
    }
}

/// Why the agent process ended, in words.
pub(super) fn exit_text(status: std::io::Result<std::process::ExitStatus>) -> String {
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
