//! The session's ACP connection: the client's handlers, which only forward what the agent
//! sends to the actor (the crate's dispatch loop is sequential and must never wait for a
//! person), and the setup: `initialize`, then `session/load`, `session/resume` or
//! `session/new`.

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    ClientCapabilities, CreateTerminalRequest, CreateTerminalResponse, Implementation,
    InitializeRequest, InitializeResponse, KillTerminalRequest, KillTerminalResponse,
    LoadSessionRequest, NewSessionRequest, ReleaseTerminalRequest, ReleaseTerminalResponse,
    RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse, SessionId,
    TerminalOutputRequest, TerminalOutputResponse, WaitForTerminalExitRequest,
    WaitForTerminalExitResponse,
};
use agent_client_protocol::{
    Agent, ByteStreams, Client, JsonRpcMessage, JsonRpcNotification, Responder, UntypedMessage, V1,
};
use serde_json::{Value, json};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::actor::{Session, Stop, exit_text};
use super::handle::Cmd;
use crate::proto::{AgentEventKind, ErrorCode, ResumeMethod, WireError};

/// `session/update` with its parameters kept as JSON: every update kind, known or not, is
/// recorded as the agent sent it.
#[derive(Debug, Clone)]
pub(super) struct RawUpdate {
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

pub(super) type PermResponder = Responder<RequestPermissionResponse, V1>;

/// What the agent sends, on its way to the actor.
pub(super) enum FromAgent {
    Update(Value),
    Permission(Box<RequestPermissionRequest>, PermResponder),
    Terminal(TermReq),
}

/// The ACP client `terminal/*` requests, with their responders.
pub(super) enum TermReq {
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

/// The error of a request that arrives while the session ends.
fn gone() -> agent_client_protocol::Error {
    agent_client_protocol::Error::new(-32603, "the session is ending")
}

impl FromAgent {
    /// Answers a request the actor will never see: a permission `cancelled`, anything else
    /// with an error.
    fn refuse(self) {
        match self {
            FromAgent::Update(_) => {}
            FromAgent::Permission(_, r) => {
                let _ = r.respond(RequestPermissionResponse::new(
                    RequestPermissionOutcome::Cancelled,
                ));
            }
            FromAgent::Terminal(t) => t.refuse(gone()),
        }
    }
}

impl TermReq {
    /// Answers the request with `e`.
    fn refuse(self, e: agent_client_protocol::Error) {
        let _ = match self {
            TermReq::Create(_, r) => r.respond_with_error(e),
            TermReq::Output(_, r) => r.respond_with_error(e),
            TermReq::Wait(_, r) => r.respond_with_error(e),
            TermReq::Kill(_, r) => r.respond_with_error(e),
            TermReq::Release(_, r) => r.respond_with_error(e),
        };
    }
}

/// The one body of every handler of the client: it hands what the agent sent (with the
/// responder, for a request) to the actor and returns; if the actor is gone a request is
/// refused.
async fn hand_over(
    tx: &mpsc::Sender<FromAgent>,
    m: FromAgent,
) -> Result<(), agent_client_protocol::Error> {
    if let Err(mpsc::error::SendError(m)) = tx.send(m).await {
        m.refuse();
    }
    Ok(())
}

/// Runs the ACP client over the agent's pipes until `main` returns; what the agent sends goes
/// to `tx`.
pub(super) async fn connect<R>(
    stdin: ChildStdin,
    stdout: ChildStdout,
    tx: mpsc::Sender<FromAgent>,
    main: impl AsyncFnOnce(ConnectionTo<Agent>) -> Result<R, agent_client_protocol::Error>,
) -> Result<R, agent_client_protocol::Error> {
    use agent_client_protocol::on_receive_request as req;
    type Cx = ConnectionTo<Agent>;
    let (t0, t1, t2, t3, t4, t5) = (
        tx.clone(),
        tx.clone(),
        tx.clone(),
        tx.clone(),
        tx.clone(),
        tx.clone(),
    );
    Client
        .v1()
        .name("peer-host")
        .on_receive_notification(
            async move |n: RawUpdate, _: Cx| hand_over(&tx, FromAgent::Update(n.params)).await,
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |q: RequestPermissionRequest, r, _: Cx| {
                hand_over(&t0, FromAgent::Permission(Box::new(q), r)).await
            },
            req!(),
        )
        .on_receive_request(
            async move |q: CreateTerminalRequest, r, _: Cx| {
                hand_over(&t1, FromAgent::Terminal(TermReq::Create(q, r))).await
            },
            req!(),
        )
        .on_receive_request(
            async move |q: TerminalOutputRequest, r, _: Cx| {
                hand_over(&t2, FromAgent::Terminal(TermReq::Output(q, r))).await
            },
            req!(),
        )
        .on_receive_request(
            async move |q: WaitForTerminalExitRequest, r, _: Cx| {
                hand_over(&t3, FromAgent::Terminal(TermReq::Wait(q, r))).await
            },
            req!(),
        )
        .on_receive_request(
            async move |q: KillTerminalRequest, r, _: Cx| {
                hand_over(&t4, FromAgent::Terminal(TermReq::Kill(q, r))).await
            },
            req!(),
        )
        .on_receive_request(
            async move |q: ReleaseTerminalRequest, r, _: Cx| {
                hand_over(&t5, FromAgent::Terminal(TermReq::Release(q, r))).await
            },
            req!(),
        )
        .connect_with(
            ByteStreams::new(stdin.compat_write(), stdout.compat()),
            main,
        )
        .await
}

/// What the setup needs besides the session.
pub(super) struct Setup<'a> {
    pub cx: &'a ConnectionTo<Agent>,
    pub rx: &'a mut mpsc::Receiver<FromAgent>,
    pub child: &'a mut Child,
    pub shutdown: &'a CancellationToken,
    pub cmds: &'a mut mpsc::Receiver<Cmd>,
    /// When the agent must be set up.
    pub deadline: tokio::time::Instant,
    pub timeout_secs: u64,
    /// Commands that need the agent ready, carried out once it is.
    pub deferred: Vec<Cmd>,
}

impl Setup<'_> {
    /// Awaits `fut` while recording what the agent sends, answering clients, and watching the
    /// process, the deadline and the host. A close or a cancel acts at once.
    async fn guarded<T>(
        &mut self,
        s: &mut Session,
        fut: impl Future<Output = Result<T, agent_client_protocol::Error>>,
    ) -> Result<Result<T, String>, Stop> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                Some(m) = self.rx.recv() => s.on_agent(m).await,
                r = &mut fut => {
                    if r.is_err()
                        && let Ok(st) = tokio::time::timeout(
                            std::time::Duration::from_millis(500),
                            self.child.wait(),
                        )
                        .await
                    {
                        // The request failed because the agent is gone: say how it went.
                        s.fail(exit_text(st)).await;
                        return Err(Stop::Ended);
                    }
                    return Ok(r.map_err(|e| e.to_string()));
                }
                st = self.child.wait() => {
                    s.fail(exit_text(st)).await;
                    return Err(Stop::Ended);
                }
                c = self.cmds.recv() => {
                    let Some(c) = c else { return Err(Stop::Shutdown) };
                    match c {
                        Cmd::Prompt { text, by, reply } => s.on_prompt(text, by, reply).await,
                        Cmd::Close { by, reply } => {
                            s.close(by).await;
                            let _ = reply.send(Ok(()));
                            return Err(Stop::Ended);
                        }
                        Cmd::Cancel { by, reply } => {
                            // The start is given up: the agent is stopped, what waited for it
                            // is dropped; a later prompt starts it again.
                            s.emit(AgentEventKind::Cancel {
                                by: by.name.clone(),
                                device: by.device.clone(),
                            })
                            .await;
                            s.drop_queue().await;
                            for c in self.deferred.drain(..) {
                                c.refuse(WireError::new(ErrorCode::BadRequest, "the start was cancelled"));
                            }
                            let _ = reply.send(Ok(()));
                            return Err(Stop::Idle(format!(
                                "the start was cancelled by {}; the agent starts again when needed",
                                by.name
                            )));
                        }
                        c @ Cmd::Configure { .. } => self.deferred.push(c),
                        other => s.on_common(other).await,
                    }
                }
                _ = tokio::time::sleep_until(self.deadline) => {
                    return Ok(Err(format!(
                        "the agent did not start within {} s (`start_timeout_secs` in agents.toml)",
                        self.timeout_secs
                    )));
                }
                _ = self.shutdown.cancelled() => return Err(Stop::Shutdown),
            }
        }
    }

    /// `initialize`, then after a restart `session/load` or `session/resume` (what the agent
    /// can), else `session/new`. `Ok(None)`: the session failed (recorded).
    pub(super) async fn run(
        &mut self,
        s: &mut Session,
        resume: Option<&str>,
    ) -> Result<Option<SessionId>, Stop> {
        let init = InitializeRequest::new(ProtocolVersion::V1)
            .client_capabilities(ClientCapabilities::new().terminal(true))
            .client_info(Implementation::new("peer", env!("CARGO_PKG_VERSION")));
        let sent = self.cx.send_request(init).block_task();
        let init = match self.guarded(s, sent).await? {
            Ok(i) => i,
            Err(e) => {
                s.fail(format!("initialize failed: {e}")).await;
                return Ok(None);
            }
        };
        s.resumable = init.agent_capabilities.load_session || can_resume(&init);
        if let Some(old) = resume
            && let Some(sid) = self.reattach(s, &init, old).await?
        {
            return Ok(Some(sid));
        }
        let new = NewSessionRequest::new(s.h.row.cwd());
        let sent = self.cx.send_request(new).block_task();
        match self.guarded(s, sent).await? {
            Ok(r) => {
                let sid = r.session_id;
                if let Err(e) = s.store.set_acp_session(s.h.row.id, sid.0.to_string()).await {
                    warn!("recording the agent's session id: {e}");
                }
                s.ever_started = true;
                let text = |v: Option<Value>| v.filter(|v| !v.is_null()).map(|v| v.to_string());
                s.emit(AgentEventKind::Started {
                    agent_session: sid.0.to_string(),
                    agent_info: text(serde_json::to_value(&init.agent_info).ok()),
                    load_session: init.agent_capabilities.load_session,
                    modes: text(serde_json::to_value(&r.modes).ok()),
                    config_options: text(serde_json::to_value(&r.config_options).ok()),
                })
                .await;
                Ok(Some(sid))
            }
            Err(e) => {
                s.fail(format!("session/new failed: {e}")).await;
                Ok(None)
            }
        }
    }

    /// After a restart: `session/load` if the agent can, else `session/resume`; `None` if
    /// neither worked (a new session follows).
    async fn reattach(
        &mut self,
        s: &mut Session,
        init: &InitializeResponse,
        old: &str,
    ) -> Result<Option<SessionId>, Stop> {
        let cwd = s.h.row.cwd();
        let (method, result) = if init.agent_capabilities.load_session {
            // The history the agent replays is in the transcript already.
            s.replaying = true;
            let req = LoadSessionRequest::new(SessionId::new(old), cwd);
            let sent = self.cx.send_request(req).block_task();
            let r = self.guarded(s, sent).await;
            s.replaying = false;
            (ResumeMethod::Load, r?.map(|_| ()))
        } else if can_resume(init) {
            let params = json!({"sessionId": old, "cwd": cwd, "mcpServers": []});
            let r = match UntypedMessage::new("session/resume", params) {
                Ok(req) => {
                    let sent = self.cx.send_request(req).block_task();
                    self.guarded(s, sent).await?.map(|_| ())
                }
                Err(e) => Err(e.to_string()),
            };
            (ResumeMethod::Resume, r)
        } else {
            s.emit(AgentEventKind::Resumed {
                method: ResumeMethod::New,
                agent_session: None,
                note: Some(
                    "the agent can neither load nor resume sessions: it starts a new \
                     conversation; the transcript is kept"
                        .into(),
                ),
            })
            .await;
            return Ok(None);
        };
        let event = match &result {
            Ok(()) => AgentEventKind::Resumed {
                method,
                agent_session: Some(old.to_string()),
                note: None,
            },
            Err(e) => AgentEventKind::Resumed {
                method: ResumeMethod::New,
                agent_session: None,
                note: Some(format!(
                    "{} failed ({e}): the agent starts a new conversation; the transcript is kept",
                    method.as_str()
                )),
            },
        };
        s.emit(event).await;
        Ok(result.ok().map(|()| SessionId::new(old)))
    }
}

/// Whether the agent advertises `sessionCapabilities.resume`.
fn can_resume(init: &InitializeResponse) -> bool {
    serde_json::to_value(&init.agent_capabilities.session_capabilities)
        .ok()
        .and_then(|v| v.get("resume").cloned())
        .is_some_and(|v| !v.is_null())
}
