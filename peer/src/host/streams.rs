//! Session logic shared by native streams and browser channels: requests, attachments, and the
//! output pump. It talks to its peer through [`FrameSink`] and [`FrameSource`], so the same code
//! serves a QUIC stream and a channel multiplexed inside a browser's Noise socket.

use std::future::Future;
use std::sync::Arc;

use iroh::endpoint::{RecvStream, SendStream};

use super::HostShared;
use crate::proto::{
    AgentStarted, ErrorCode, Frame, FrameReader, ReadError, Reply, Request, Role, StartAgent,
    WireError, write_frame,
};
use crate::pty::SessionError;

/// Where an attachment's frames go.
pub trait FrameSink: Send {
    /// Sends one frame; an error means the peer is gone.
    fn send(&mut self, frame: Frame) -> impl Future<Output = Result<(), ()>> + Send;
}

/// Where an attachment's frames come from.
pub trait FrameSource: Send {
    /// The next frame; [`ReadError::Closed`] when the peer is done.
    fn next(&mut self) -> impl Future<Output = Result<Frame, ReadError>> + Send;
}

impl FrameSink for SendStream {
    async fn send(&mut self, frame: Frame) -> Result<(), ()> {
        write_frame(self, &frame).await.map_err(|_| ())
    }
}

impl FrameSource for FrameReader<RecvStream> {
    async fn next(&mut self) -> Result<Frame, ReadError> {
        self.read().await
    }
}

/// Who is on the other end of a stream.
#[derive(Clone)]
pub struct StreamCtx {
    pub(crate) host: Arc<HostShared>,
    pub(crate) role: Role,
    pub(crate) device: [u8; 32],
}

pub(crate) fn protocol_error(e: &ReadError) -> Frame {
    Frame::Error(WireError::new(ErrorCode::Protocol, e.to_string()))
}

pub(crate) fn forbidden() -> WireError {
    WireError::new(ErrorCode::Forbidden, "this device is a viewer on this host")
}

pub(crate) fn session_error(e: SessionError) -> WireError {
    match e {
        SessionError::NotFound(_) => WireError::new(ErrorCode::NotFound, e.to_string()),
        SessionError::TooMany(_) => WireError::new(ErrorCode::Limit, e.to_string()),
        SessionError::Spawn(_) => WireError::new(ErrorCode::SpawnFailed, e.to_string()),
    }
}

/// Answers a request; a refused or failed one is audited (`request.failed`) with its reason.
pub(crate) async fn handle_request(ctx: &StreamCtx, req: Request) -> Result<Reply, WireError> {
    let name = request_name(&req);
    let res = serve_request(ctx, req).await;
    if let Err(e) = &res {
        audit(
            ctx,
            "request.failed",
            format!("{name}: {} ({:?})", e.message, e.code),
        )
        .await;
    }
    res
}

/// A request's name, for the audit log.
fn request_name(req: &Request) -> &'static str {
    match req {
        Request::ListSessions => "list sessions",
        Request::CreateSession(_) => "new session",
        Request::KillSession { .. } => "kill session",
        Request::ListAgents => "list agents",
        Request::NewAgentSession(_) | Request::StartAgent(_) => "new agent session",
        Request::ListAgentSessions => "list agent sessions",
        Request::AgentPrompt { .. } => "agent prompt",
        Request::AgentCancel { .. } => "agent cancel",
        Request::AgentAnswer { .. } => "agent answer",
        Request::AgentDiff { .. } => "agent diff",
        Request::AgentClose { .. } => "agent close",
        Request::AgentSetMode { .. } => "agent mode",
        Request::AgentSetOption { .. } => "agent option",
        Request::RenameSession { .. } => "rename session",
        Request::Unpair => "unpair",
        Request::ListModelServers => "list model servers",
        Request::ListGpus => "list gpus",
        Request::PushRegister(_)
        | Request::PushUnregister
        | Request::PushKinds { .. }
        | Request::PushStatus
        | Request::PushFocus { .. }
        | Request::PushBell { .. } => "push",
        Request::ListApprovals => "list approvals",
        Request::ListGrants { .. } => "list grants",
        Request::AddGrant { .. } => "add grant",
        Request::RevokeGrant { .. } => "revoke grant",
    }
}

async fn serve_request(ctx: &StreamCtx, req: Request) -> Result<Reply, WireError> {
    let sessions = &ctx.host.sessions;
    match req {
        Request::ListSessions => Ok(Reply::Sessions(list_sessions(&ctx.host))),
        Request::CreateSession(c) => {
            if ctx.role != Role::Operator {
                return Err(forbidden());
            }
            validate_create(&c)?;
            let detail = format!("{:?}", c.command);
            let s = sessions.create(c).await.map_err(session_error)?;
            ctx.host
                .devices
                .audit(
                    Some(ctx.device),
                    "session.create",
                    format!("{} {detail}", s.id()),
                )
                .await;
            Ok(Reply::Created(s.info()))
        }
        Request::KillSession { session } => {
            if ctx.role != Role::Operator {
                return Err(forbidden());
            }
            // Only a running session ends because of it (forgetting an ended one kills nothing).
            if sessions.get(session).is_ok_and(|s| s.exit().is_none()) {
                ctx.host.push.killed(session);
            }
            kill_session(&ctx.host, session).await?;
            ctx.host
                .devices
                .audit(Some(ctx.device), "session.kill", session.to_string())
                .await;
            Ok(Reply::Killed)
        }
        Request::RenameSession { session, name } => {
            if ctx.role != Role::Operator {
                return Err(forbidden());
            }
            check_name(name.as_deref())?;
            let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
            let s = sessions.get(session).map_err(session_error)?;
            s.rename(name.clone());
            ctx.host
                .devices
                .audit(
                    Some(ctx.device),
                    "session.rename",
                    format!("{session} {}", name.as_deref().unwrap_or("(no name)")),
                )
                .await;
            Ok(Reply::Renamed(s.info()))
        }
        Request::Unpair => {
            // The device leaves: revoke it, which also closes this connection (possibly before
            // the reply is out; a client takes REVOKED as the same answer).
            audit(ctx, "unpair", "the device asked to be forgotten".into()).await;
            ctx.host
                .devices
                .revoke(&hex::encode(ctx.device))
                .await
                .map_err(|e| WireError::new(ErrorCode::Internal, e.to_string()))?;
            Ok(Reply::Unpaired)
        }
        req @ (Request::PushRegister(_)
        | Request::PushUnregister
        | Request::PushKinds { .. }
        | Request::PushStatus
        | Request::PushFocus { .. }
        | Request::PushBell { .. }) => {
            let what = match &req {
                Request::PushRegister(r) => Some(format!(
                    "register {} for {}",
                    r.endpoint.split('/').take(3).collect::<Vec<_>>().join("/"),
                    crate::host::push::store::kinds_text(&r.kinds)
                )),
                Request::PushUnregister => Some("unregister".to_string()),
                _ => None,
            };
            let status = ctx.host.push.handle(ctx.device, req).await?;
            if let Some(what) = what {
                audit(ctx, "push", what).await;
            }
            Ok(Reply::Push(status))
        }
        Request::ListAgents => Ok(Reply::Agents(ctx.host.agents.agents().await)),
        Request::ListModelServers => Ok(Reply::ModelServers(ctx.host.agents.model_servers().await)),
        Request::ListGpus => Ok(Reply::Gpus(crate::machine::gpu::gpus().await)),
        Request::ListAgentSessions => Ok(Reply::AgentSessions(ctx.host.agents.sessions())),
        Request::AgentDiff { session } => {
            Ok(Reply::AgentDiff(ctx.host.agents.diff(session).await?))
        }
        Request::NewAgentSession(n) => {
            operator_only(ctx)?;
            let n = StartAgent {
                agent: n.agent,
                repo: n.repo,
                base: n.base,
                prompt: n.prompt,
                with_changes: false,
                model: n.model,
            };
            Ok(Reply::AgentSession(start_agent(ctx, n).await?.info))
        }
        Request::StartAgent(n) => {
            operator_only(ctx)?;
            Ok(Reply::AgentStarted(start_agent(ctx, n).await?))
        }
        Request::ListApprovals => Ok(Reply::Approvals(ctx.host.agents.approvals())),
        Request::ListGrants { session } => Ok(Reply::Grants(ctx.host.agents.grants(session)?)),
        Request::AddGrant {
            session,
            scope,
            allow,
        } => {
            operator_only(ctx)?;
            let g = ctx
                .host
                .agents
                .add_grant(session, scope, allow, actor(ctx))
                .await?;
            Ok(Reply::Grants(vec![g]))
        }
        Request::RevokeGrant { session, grant } => {
            operator_only(ctx)?;
            ctx.host
                .agents
                .revoke_grant(session, grant, actor(ctx))
                .await?;
            Ok(Reply::GrantRevoked)
        }
        Request::AgentPrompt { session, text } => {
            operator_only(ctx)?;
            let detail = format!("{session}: {text}");
            let queued = ctx.host.agents.prompt(session, text, actor(ctx)).await?;
            audit(ctx, "agent.prompt", detail).await;
            Ok(Reply::AgentPrompted { queued })
        }
        Request::AgentCancel { session } => {
            operator_only(ctx)?;
            ctx.host.agents.cancel(session, actor(ctx)).await?;
            audit(ctx, "agent.cancel", session.to_string()).await;
            Ok(Reply::AgentCancelled)
        }
        Request::AgentAnswer {
            session,
            approval,
            option,
        } => {
            operator_only(ctx)?;
            // The session audits the answer, with what it approved.
            ctx.host
                .agents
                .answer(session, approval, option, actor(ctx))
                .await?;
            Ok(Reply::AgentAnswered)
        }
        Request::AgentClose {
            session,
            remove_worktree,
        } => {
            operator_only(ctx)?;
            ctx.host
                .agents
                .close(session, remove_worktree, actor(ctx))
                .await?;
            let detail = format!(
                "{session}{}",
                if remove_worktree {
                    " (worktree removed)"
                } else {
                    ""
                }
            );
            audit(ctx, "agent.close", detail).await;
            Ok(Reply::AgentClosed)
        }
        Request::AgentSetMode { session, mode } => {
            operator_only(ctx)?;
            check_id(&mode)?;
            let detail = format!("{session} mode {mode}");
            ctx.host
                .agents
                .configure(
                    session,
                    "session/set_mode",
                    serde_json::json!({ "modeId": mode }),
                )
                .await?;
            audit(ctx, "agent.configure", detail).await;
            Ok(Reply::AgentConfigured)
        }
        Request::AgentSetOption {
            session,
            option,
            value,
        } => {
            operator_only(ctx)?;
            check_id(&option)?;
            check_id(&value)?;
            let detail = format!("{session} {option} = {value}");
            ctx.host
                .agents
                .configure(
                    session,
                    "session/set_config_option",
                    serde_json::json!({ "configId": option, "value": value }),
                )
                .await?;
            audit(ctx, "agent.configure", detail).await;
            Ok(Reply::AgentConfigured)
        }
    }
}

async fn start_agent(ctx: &StreamCtx, n: StartAgent) -> Result<AgentStarted, WireError> {
    let detail = format!(
        "{}{} in {} from {}{}{}",
        n.agent,
        n.model
            .as_deref()
            .map(|m| format!(" on {m}"))
            .unwrap_or_default(),
        n.repo,
        n.base.as_deref().unwrap_or("HEAD"),
        if n.with_changes {
            " with uncommitted changes"
        } else {
            ""
        },
        n.prompt
            .as_deref()
            .map(|p| format!(": {p}"))
            .unwrap_or_default()
    );
    let started = ctx.host.agents.start_session(n, actor(ctx)).await?;
    audit(ctx, "agent.new", format!("{} {detail}", started.info.id)).await;
    Ok(started)
}

/// The live sessions, then the ended ones remembered from earlier runs, by id.
pub(crate) fn list_sessions(host: &HostShared) -> Vec<crate::proto::SessionInfo> {
    let mut list = host.sessions.list();
    let remembered = host.ended.list_except(&list);
    list.extend(remembered);
    list.sort_by_key(|s| s.id);
    list
}

/// Kills a running session, or forgets an ended one (live or remembered).
async fn kill_session(host: &HostShared, session: u64) -> Result<(), WireError> {
    let live = match host.sessions.get(session) {
        Ok(s) => Some(s.exit().is_some()),
        Err(_) => None,
    };
    if live.is_some() {
        // Out of the live table first: the listener that remembers ended sessions finds it
        // gone and cannot write back the row forgotten below.
        host.sessions.kill(session).await.map_err(session_error)?;
    }
    if live != Some(false) {
        // An ended session: forget it, in memory and on disk.
        let remembered = host
            .ended
            .forget(session)
            .await
            .map_err(|e| WireError::new(ErrorCode::Internal, e.to_string()))?;
        if live.is_none() && !remembered {
            return Err(session_error(SessionError::NotFound(session)));
        }
    }
    Ok(())
}

fn check_id(s: &str) -> Result<(), WireError> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(WireError::new(
            ErrorCode::BadRequest,
            "ids are 1-256 printable characters",
        ));
    }
    Ok(())
}

fn operator_only(ctx: &StreamCtx) -> Result<(), WireError> {
    if ctx.role != Role::Operator {
        return Err(forbidden());
    }
    Ok(())
}

/// Who a device is, for agent events.
pub(crate) fn actor(ctx: &StreamCtx) -> crate::agent::Actor {
    let name = ctx.host.devices.get_name(&ctx.device).unwrap_or_else(|| {
        if ctx.device == super::control::LOCAL_DEVICE {
            "this machine".to_string()
        } else {
            hex::encode(&ctx.device[..4])
        }
    });
    crate::agent::Actor {
        device: Some(hex::encode(ctx.device)),
        name,
    }
}

/// Writes an audit row with secrets redacted.
pub(crate) async fn audit(ctx: &StreamCtx, event: &'static str, detail: String) {
    let detail = ctx.host.agents.redactor().redact(&detail);
    ctx.host
        .devices
        .audit(Some(ctx.device), event, detail)
        .await;
}

/// A session name: at most 64 bytes, no control characters.
fn check_name(name: Option<&str>) -> Result<(), WireError> {
    if name.is_some_and(|n| n.len() > 64 || n.chars().any(char::is_control)) {
        return Err(WireError::new(
            ErrorCode::BadRequest,
            "session name must be at most 64 printable characters",
        ));
    }
    Ok(())
}

fn validate_create(c: &crate::proto::CreateSession) -> Result<(), WireError> {
    let bad = |m: &str| Err(WireError::new(ErrorCode::BadRequest, m));
    if c.command.len() > 256 || c.command.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
        return bad("command too long or contains NUL");
    }
    if c.command.first().is_some_and(|p| p.is_empty()) {
        return bad("empty program name");
    }
    check_name(c.name.as_deref())?;
    if c.env.len() > 256
        || c.env.iter().any(|(k, v)| {
            k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') || v.len() > 4096
        })
    {
        return bad("bad environment variable");
    }
    if c.cwd
        .as_ref()
        .is_some_and(|d| d.contains('\0') || d.len() > 4096)
    {
        return bad("bad working directory");
    }
    Ok(())
}

/// Serves one attachment (a native stream after its first frame, or a browser channel) from its
/// first frame (`Attach` or `AgentAttach`) until it ends, and tells the client why if it ended
/// with an error. Returns `false` if the client went away (nothing more can be sent).
pub(crate) async fn serve_attachment<S: FrameSink, R: FrameSource>(
    ctx: &StreamCtx,
    first: Frame,
    send: &mut S,
    reader: &mut R,
) -> bool {
    let end = match first {
        Frame::Attach(attach) => match ctx.host.sessions.get(attach.session) {
            Ok(session) => super::attach::run_attach(ctx, &session, &attach, send, reader).await,
            Err(e) => match ctx.host.ended.get(attach.session) {
                Some(ended) => super::ended::serve_attach(&ended, &attach, send).await,
                None => Err(AttachEnd::Error(session_error(e))),
            },
        },
        Frame::AgentAttach(attach) => super::agent_stream::run(ctx, &attach, send, reader).await,
        Frame::Watch(watch) => super::push::run_watch(ctx, &watch, send, reader).await,
        other => Err(AttachEnd::Error(WireError::new(
            ErrorCode::Protocol,
            format!(
                "expected Attach, AgentAttach or Watch as the first frame, not {:?}",
                other.frame_type()
            ),
        ))),
    };
    match end {
        Ok(()) => true,
        Err(AttachEnd::Gone) => false,
        Err(AttachEnd::Error(e)) => send.send(Frame::Error(e)).await.is_ok(),
    }
}

pub(crate) enum AttachEnd {
    /// Tell the client, then end the stream.
    Error(WireError),
    /// The client or the connection went away.
    Gone,
}
