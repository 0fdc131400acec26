//! The session's actor: one `select!` over what the agent sends, the running turn, client
//! commands, the agent process, the approval deadline and the host's shutdown. Each arm hands
//! its input to a method of [`Session`] and goes round again.

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
use serde_json::Value;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::acp::{FromAgent, PermResponder};
use super::handle::{Actor, Cmd, SessionHandle};
use crate::agent::approvals::{AnswerError, Approvals, Decider, End};
use crate::agent::store::Store;
use crate::agent::terminal::Terminals;
use crate::proto::{AgentEventKind, AgentState, ErrorCode, StopReason, WireError};

type PromptFuture =
    Pin<Box<dyn Future<Output = Result<PromptResponse, agent_client_protocol::Error>> + Send>>;

/// How the actor stopped.
pub(super) enum Stop {
    /// The host shuts down: leave the stored state as it is.
    Shutdown,
    /// The session ended (closed or failed); the state is recorded.
    Ended,
}

/// The actor's own state.
pub(super) struct Session {
    pub(super) h: Arc<SessionHandle>,
    pub(super) store: Store,
    pub(super) next_seq: u64,
    pub(super) state: AgentState,
    pub(super) detail: Option<String>,
    /// Pending approvals, the policy and the terminal grants.
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
    /// The ACP session is set up.
    pub(super) ready: bool,
    /// The agent's ACP session id, once set up.
    pub(super) acp_sid: Option<String>,
    /// Commands the host runs for the agent (`terminal/*`).
    pub(super) terms: Terminals,
}

impl Session {
    pub(super) fn new(h: Arc<SessionHandle>, store: Store, approvals: Approvals) -> Session {
        let (state, next_seq) = h.start_point();
        Session {
            store,
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
            ready: false,
            acp_sid: None,
            terms: Terminals::new(h.row.worktree.clone().into()),
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

    /// A client's command. `Some` if the session ends.
    async fn on_cmd(
        &mut self,
        cx: &ConnectionTo<Agent>,
        sid: &SessionId,
        c: Cmd,
        requests: &mut JoinSet<()>,
    ) -> Option<Stop> {
        match c {
            Cmd::Prompt { text, by, reply } => {
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
            }
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
            }
            Cmd::Close { by, reply } => {
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
        }
        None
    }
}

/// Sleeps until `d`, or for ever.
async fn sleep_until(d: Option<tokio::time::Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The session's life once the ACP session is set up: until it is closed, the agent exits, or
/// the host shuts down.
pub(super) async fn run_loop(
    s: &mut Session,
    cx: ConnectionTo<Agent>,
    sid: SessionId,
    mut rx: mpsc::Receiver<FromAgent>,
    cmds: &mut mpsc::Receiver<Cmd>,
    child: &mut Child,
    shutdown: &CancellationToken,
) -> Stop {
    s.ready = true;
    s.acp_sid = Some(sid.0.to_string());
    let mut turn: PromptFuture = Box::pin(std::future::pending());
    // Configuration requests waiting for the agent's answer.
    let mut requests: JoinSet<()> = JoinSet::new();
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
        tokio::select! {
            biased;
            Some(m) = rx.recv() => s.on_agent(m).await,
            r = &mut turn, if s.in_flight => {
                turn = Box::pin(std::future::pending());
                if let Some(stop) = s.on_turn_end(r, child, &mut rx).await {
                    refuse_all(cmds, s.state);
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
                refuse_all(cmds, s.state);
                return Stop::Ended;
            }
            _ = sleep_until(s.deadline) => {
                let effects = s.approvals.expire(std::time::Instant::now());
                s.apply(effects).await;
            }
            _ = shutdown.cancelled() => return Stop::Shutdown,
        }
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
