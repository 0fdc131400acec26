//! The actor's side of ACP `terminal/*`: `terminal/create` passes the approval gate
//! ([`crate::agent::approvals::Approvals::may_run`]) and the cwd check, the others act on
//! the session's [`crate::agent::terminal::Terminals`]. Every request is answered at once;
//! `wait_for_exit` from a task that [`crate::agent::terminal::Terminals`] owns.

use std::path::{Path, PathBuf};

use agent_client_protocol::v1::schema::{
    CreateTerminalRequest, CreateTerminalResponse, KillTerminalResponse, ReleaseTerminalResponse,
    TerminalExitStatus, TerminalOutputResponse, WaitForTerminalExitResponse,
};
use tracing::warn;

use super::acp::TermReq;
use super::actor::Session;
use crate::agent::approvals::{GateError, Permit};
use crate::agent::terminal::{ExitInfo, Spawn, TermError};
use crate::proto::AgentEventKind;
use crate::tool::command::join;

/// JSON-RPC error code of a refused `terminal/create` (no approval of this command in this
/// turn).
pub const NOT_APPROVED: i32 = -32001;
/// JSON-RPC error code of a bad request (unknown terminal, bad cwd).
const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC error code of a command that could not be started.
const INTERNAL: i32 = -32603;

fn term_error(e: TermError) -> agent_client_protocol::Error {
    agent_client_protocol::Error::new(INVALID_PARAMS, e.to_string())
}

fn exit_status(e: ExitInfo) -> TerminalExitStatus {
    TerminalExitStatus::new().exit_code(e.code).signal(e.signal)
}

/// Resolves symbolic links of a directory a tool call showed (a quick system call; the
/// directory's own name if it does not exist).
fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Session {
    /// `terminal/*` from the agent.
    pub(super) async fn on_terminal(&mut self, req: TermReq) {
        match req {
            TermReq::Create(req, r) => {
                if self.replaying {
                    let _ = r.respond_with_error(agent_client_protocol::Error::new(
                        -32600,
                        "no commands while a session is loading",
                    ));
                    return;
                }
                if self
                    .acp_sid
                    .as_deref()
                    .is_some_and(|ours| ours != req.session_id.0.as_ref())
                {
                    let _ = r.respond_with_error(agent_client_protocol::Error::new(
                        INVALID_PARAMS,
                        format!("unknown session {}", req.session_id.0),
                    ));
                    return;
                }
                let _ = match self.create_terminal(&req).await {
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

    /// Records a refused `terminal/create` and makes its error.
    async fn refuse(
        &mut self,
        req: &CreateTerminalRequest,
        reason: String,
        code: i32,
    ) -> agent_client_protocol::Error {
        warn!(session = self.h.row.id, "terminal refused: {reason}");
        let mut argv = vec![req.command.clone()];
        argv.extend(req.args.iter().cloned());
        self.audit(
            None,
            "agent.terminal",
            format!("refused {}: {reason}", join(&argv)),
        )
        .await;
        self.emit(AgentEventKind::TerminalRefused {
            command: req.command.clone(),
            args: req.args.clone(),
            cwd: req.cwd.as_ref().map(|c| c.to_string_lossy().into_owned()),
            reason: reason.clone(),
        })
        .await;
        agent_client_protocol::Error::new(code, reason)
    }

    /// `terminal/create`: only with an unused approval of this turn that covers the command.
    async fn create_terminal(
        &mut self,
        req: &CreateTerminalRequest,
    ) -> Result<String, agent_client_protocol::Error> {
        let (root, cwd) = match (
            self.terms.resolve_cwd(None).await,
            self.terms.resolve_cwd(req.cwd.as_deref()).await,
        ) {
            (Ok(root), Ok(cwd)) => (root, cwd),
            (Err(e), _) | (_, Err(e)) => {
                return Err(self.refuse(req, e.to_string(), INVALID_PARAMS).await);
            }
        };
        let permit = match self
            .approvals
            .may_run(&req.command, &req.args, &cwd, &root, canon)
        {
            Ok(p) => p,
            Err(e @ (GateError::NoGrant | GateError::Mismatch | GateError::Denied(_))) => {
                return Err(self.refuse(req, e.to_string(), NOT_APPROVED).await);
            }
        };
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
                let by = match &permit {
                    Permit::Turn(_) => format!("approval {}", permit.approval()),
                    Permit::Policy(by) => by.clone(),
                };
                let mut argv = vec![req.command.clone()];
                argv.extend(req.args.iter().cloned());
                self.audit(
                    None,
                    "agent.terminal",
                    format!(
                        "{id}: {} (in {}), allowed by {by}",
                        join(&argv),
                        cwd.display()
                    ),
                )
                .await;
                self.emit(AgentEventKind::Terminal {
                    terminal: id.clone(),
                    approval: permit.approval(),
                    command: req.command.clone(),
                    args: req.args.clone(),
                    cwd: cwd.to_string_lossy().into_owned(),
                })
                .await;
                Ok(id)
            }
            Err(e) => {
                // The approval was for this command; it failed to start, so it stays usable.
                self.approvals.give_back(permit);
                Err(self.refuse(req, e.to_string(), INTERNAL).await)
            }
        }
    }
}
