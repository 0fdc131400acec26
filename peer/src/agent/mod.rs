//! AI coding agents on the host, driven over the Agent Client Protocol (ACP).
//!
//! A new agent session gets its own git worktree on a new branch ([`git`]), an agent process
//! started from the registry ([`config`]) with the worktree as its cwd, and an actor that
//! records every event in the host's database ([`store`]) and broadcasts it to attached
//! clients. Sessions survive host restarts: they are started again at boot, with
//! `session/load` or `session/resume` where the agent supports it.

pub mod approvals;
pub mod config;
pub mod git;
pub mod grants;
pub mod local;
mod session;
pub mod store;
pub mod terminal;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use config::{AgentConfig, Redactor};
pub use session::{Actor, AttachedGuard, NOT_APPROVED, SessionHandle};
use session::{Cmd, Start};
use store::{SessionRow, Store};

use crate::db::{Db, DbError};
use crate::machine::models;
use crate::paths::Paths;
use crate::proto::{
    AgentDef, AgentDiff, AgentEvent, AgentEventKind, AgentSessionInfo, AgentState, ErrorCode,
    ModelServer, NewAgentSession, WireError,
};
use local::LocalChoice;

/// Agent sessions that may run at once.
pub const MAX_AGENT_SESSIONS: usize = 64;
/// Agent sessions a listing shows at most.
pub const MAX_LISTED: usize = 200;
/// Longest prompt, bytes.
pub const MAX_PROMPT: usize = 128 * 1024;

/// Why the agent subsystem could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The registry file is wrong.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] DbError),
}

/// The host's agent sessions.
#[derive(Debug, Clone)]
pub struct AgentManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: AgentConfig,
    store: Store,
    worktrees: PathBuf,
    sessions: Mutex<BTreeMap<u64, Arc<SessionHandle>>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// Every session's events, once stored ([`AgentManager::events`]).
    events: tokio::sync::broadcast::Sender<Arc<AgentEvent>>,
}

fn bad(m: impl Into<String>) -> WireError {
    WireError::new(ErrorCode::BadRequest, m)
}

fn internal(e: impl std::fmt::Display) -> WireError {
    WireError::new(ErrorCode::Internal, e.to_string())
}

impl AgentManager {
    /// Loads the registry (`<host dir>/agents.toml`); sessions live in `db`.
    /// [`Self::resume`] then brings back the sessions that were live when the host last
    /// stopped.
    pub async fn start(
        paths: &Paths,
        db: Db,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<AgentManager, AgentError> {
        let cfg_path = paths.host_dir().join("agents.toml");
        let config = tokio::task::spawn_blocking(move || AgentConfig::load(&cfg_path))
            .await
            .map_err(|_| DbError::Gone)??;
        let mgr = AgentManager {
            inner: Arc::new(Inner {
                config,
                store: Store::new(db),
                worktrees: paths.host_dir().join("worktrees"),
                sessions: Mutex::new(BTreeMap::new()),
                tasks,
                shutdown,
                events: tokio::sync::broadcast::channel(session::ALL_EVENTS).0,
            }),
        };
        Ok(mgr)
    }

    /// A session's private directory (the process cwd of agents with `cwd = "state"`).
    fn state_dir(&self, id: u64) -> PathBuf {
        self.inner
            .worktrees
            .with_file_name("agent-state")
            .join(id.to_string())
    }

    /// Starts the agents of the sessions that were live when the host last stopped.
    pub async fn resume(&self) -> Result<(), AgentError> {
        self.resume_all().await
    }

    /// Every session's events from now on, each once it is stored (what notifications are
    /// made of). A listener that falls behind loses the oldest and is told so.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<Arc<AgentEvent>> {
        self.inner.events.subscribe()
    }

    /// Secret redaction for logs and the audit log.
    pub fn redactor(&self) -> &Redactor {
        &self.inner.config.redactor
    }

    /// Waits until every event so far is on disk.
    pub async fn flush(&self) {
        self.inner.store.flush().await;
    }

    async fn resume_all(&self) -> Result<(), AgentError> {
        let rows = self.inner.store.sessions().await?;
        for row in rows {
            let id = row.id;
            let next_seq = self.inner.store.next_seq(id).await?;
            let state = row.state;
            let live = !matches!(state, AgentState::Done | AgentState::Failed);
            let spec = self.inner.config.agents.get(&row.agent).cloned();
            let provider = spec.as_ref().and_then(|s| s.provider.clone());
            let (h, cmds) = SessionHandle::new(
                row.clone(),
                next_seq,
                state,
                provider,
                self.inner.events.clone(),
            );
            self.inner.sessions.lock().insert(id, h.clone());
            if !live {
                continue;
            }
            let Some(spec) = spec else {
                warn!(session = id, agent = %row.agent, "agent no longer in the registry");
                let why = format!("the agent {:?} is no longer in the registry", row.agent);
                self.inner
                    .store
                    .set_state(id, AgentState::Failed, Some(why))
                    .await?;
                h.mark(AgentState::Failed);
                continue;
            };
            let spec = match &row.model {
                None => spec,
                Some(m) => match local::apply(&row.agent, &spec, m) {
                    Ok(s) => s,
                    Err(why) => {
                        warn!(session = id, "{why}");
                        self.inner
                            .store
                            .set_state(id, AgentState::Failed, Some(why))
                            .await?;
                        h.mark(AgentState::Failed);
                        continue;
                    }
                },
            };
            // Approvals that were pending when the host stopped died with the old process.
            let (stale_approvals, next_approval) =
                open_approvals(&self.inner.store.approvals(id).await?);
            info!(
                session = id,
                state = state.as_str(),
                "resuming agent session"
            );
            let start = Start {
                spec,
                policy: self.inner.config.policy.clone(),
                redactor: self.inner.config.redactor.clone(),
                resume: row.acp_session.clone(),
                cut_turn: matches!(state, AgentState::Running | AgentState::WaitingApproval),
                interrupted: matches!(
                    state,
                    AgentState::Running | AgentState::WaitingApproval | AgentState::Interrupted
                ),
                stale_approvals,
                next_approval,
                prompt: None,
                state_dir: self.state_dir(id),
            };
            self.spawn(h, start, cmds);
        }
        Ok(())
    }

    fn spawn(&self, h: Arc<SessionHandle>, start: Start, cmds: tokio::sync::mpsc::Receiver<Cmd>) {
        let store = self.inner.store.clone();
        let shutdown = self.inner.shutdown.child_token();
        self.inner
            .tasks
            .spawn(session::run(h, store, start, cmds, shutdown));
    }

    /// The registry, with what is installed and logged in on this machine.
    pub async fn agents(&self) -> Vec<AgentDef> {
        let cfg = self.inner.config.clone();
        tokio::task::spawn_blocking(move || cfg.list())
            .await
            .unwrap_or_default()
    }

    /// Probes the model servers this host can reach (at most about
    /// [`crate::machine::models::PROBE_TIMEOUT`]).
    pub async fn model_servers(&self) -> Vec<ModelServer> {
        models::discover(&self.inner.config.models.endpoints()).await
    }

    /// What `local:…` names: probes the servers and picks the model.
    async fn local_choice(&self, agent: &str, wanted: &str) -> Result<LocalChoice, WireError> {
        let name = wanted.strip_prefix("local:").ok_or_else(|| {
            bad(format!(
                "model {wanted:?}: only local models can be chosen here (local:MODEL or \
                 local:SERVER/MODEL); the agent's own models are switched in the session"
            ))
        })?;
        if name.is_empty() || name.len() > 300 || name.chars().any(char::is_control) {
            return Err(bad("bad model name"));
        }
        let servers = self.model_servers().await;
        let (i, model) = models::resolve(&servers, name)
            .map_err(|e| WireError::new(ErrorCode::NotFound, format!("agent {agent:?}: {e}")))?;
        let server = &servers[i];
        let api_key_env = self
            .inner
            .config
            .models
            .servers
            .get(&server.name)
            .filter(|_| server.configured)
            .and_then(|s| s.api_key_env.clone());
        Ok(LocalChoice {
            server: server.name.clone(),
            endpoint: server.url.clone(),
            model,
            models: server.models.iter().map(|m| m.id.clone()).collect(),
            api_key_env,
        })
    }

    /// Agent sessions by id: every one that is not done or failed, and the newest of those
    /// that are, [`MAX_LISTED`] in all (so the list fits in one frame).
    pub fn sessions(&self) -> Vec<AgentSessionInfo> {
        let all: Vec<AgentSessionInfo> = self
            .inner
            .sessions
            .lock()
            .values()
            .map(|h| h.info())
            .collect();
        let ended = all
            .iter()
            .filter(|s| matches!(s.state, AgentState::Done | AgentState::Failed))
            .count();
        let mut skip = (all.len().saturating_sub(MAX_LISTED)).min(ended);
        all.into_iter()
            .filter(|s| {
                let drop = skip > 0 && matches!(s.state, AgentState::Done | AgentState::Failed);
                if drop {
                    skip -= 1;
                }
                !drop
            })
            .collect()
    }

    /// One session.
    pub fn get(&self, id: u64) -> Result<Arc<SessionHandle>, WireError> {
        self.inner
            .sessions
            .lock()
            .get(&id)
            .cloned()
            .ok_or_else(|| WireError::new(ErrorCode::NotFound, format!("no agent session {id}")))
    }

    /// Events `from..to` from the database.
    pub async fn read_events(
        &self,
        id: u64,
        from: u64,
        to: u64,
    ) -> Result<Vec<AgentEvent>, WireError> {
        self.inner.store.read(id, from, to).await.map_err(internal)
    }

    /// Starts a new session: worktree, agent process, ACP session, and the first prompt.
    pub async fn create(
        &self,
        req: NewAgentSession,
        by: Actor,
    ) -> Result<AgentSessionInfo, WireError> {
        let spec = self
            .inner
            .config
            .agents
            .get(&req.agent)
            .cloned()
            .ok_or_else(|| {
                WireError::new(
                    ErrorCode::NotFound,
                    format!("no agent named {:?} on this host", req.agent),
                )
            })?;
        if req.repo.is_empty() || req.repo.len() > 4096 || req.repo.contains('\0') {
            return Err(bad("bad repository path"));
        }
        let repo = PathBuf::from(&req.repo);
        if !repo.is_absolute() {
            return Err(bad("the repository path must be absolute"));
        }
        if req
            .base
            .as_ref()
            .is_some_and(|b| b.is_empty() || b.len() > 256 || b.contains('\0'))
        {
            return Err(bad("bad base branch"));
        }
        if let Some(p) = &req.prompt {
            check_prompt(p)?;
        }
        let provider = spec.provider.clone();
        let (spec, model) = match &req.model {
            None => (spec, None),
            Some(wanted) => {
                if spec.local.is_none() {
                    // Said before probing anything.
                    return Err(bad(local::no_local(&req.agent)));
                }
                let choice = self.local_choice(&req.agent, wanted).await?;
                let spec = local::apply(&req.agent, &spec, &choice).map_err(bad)?;
                (spec, Some(choice))
            }
        };
        let live = self
            .sessions()
            .iter()
            .filter(|s| !matches!(s.state, AgentState::Done | AgentState::Failed))
            .count();
        if live >= MAX_AGENT_SESSIONS {
            return Err(WireError::new(
                ErrorCode::Limit,
                format!("at most {MAX_AGENT_SESSIONS} agent sessions may run at once"),
            ));
        }
        let program = spec.command.first().cloned().unwrap_or_default();
        let found = {
            let p = program.clone();
            tokio::task::spawn_blocking(move || config::which(&p).is_some())
                .await
                .map_err(internal)?
        };
        if !found {
            return Err(WireError::new(
                ErrorCode::SpawnFailed,
                format!(
                    "{program} (agent {:?}) is not installed on the host (not on its PATH)",
                    req.agent
                ),
            ));
        }
        let tag = format!("{}-{:08x}", req.agent, rand::random::<u32>());
        let branch = format!("peer/{tag}");
        let wt_name = format!("peer-{tag}");
        let dir = self.inner.worktrees.join(&tag);
        let base = req.base.clone();
        let wt = tokio::task::spawn_blocking(move || {
            git::create_worktree(&repo, base.as_deref(), &branch, &wt_name, &dir)
        })
        .await
        .map_err(internal)?
        .map_err(|e| match e {
            git::GitError::Bad(m) => bad(m),
            other => internal(other),
        })?;
        let mut row = SessionRow {
            id: 0,
            agent: req.agent.clone(),
            repo: wt.repo.to_string_lossy().into_owned(),
            worktree: wt.path.to_string_lossy().into_owned(),
            wt_name: wt.name.clone(),
            branch: wt.branch.clone(),
            base: wt.base.clone(),
            created_at: crate::util::now_ms(),
            state: AgentState::Starting,
            detail: None,
            acp_session: None,
            model,
        };
        row.id = self
            .inner
            .store
            .insert(row.clone())
            .await
            .map_err(internal)?;
        let (h, cmds) = SessionHandle::new(
            row,
            0,
            AgentState::Starting,
            provider,
            self.inner.events.clone(),
        );
        self.inner.sessions.lock().insert(h.row.id, h.clone());
        let info = h.info();
        let start = Start {
            spec,
            policy: self.inner.config.policy.clone(),
            redactor: self.inner.config.redactor.clone(),
            resume: None,
            cut_turn: false,
            interrupted: false,
            stale_approvals: vec![],
            next_approval: 1,
            prompt: req.prompt.map(|p| (p, by)),
            state_dir: self.state_dir(h.row.id),
        };
        self.spawn(h, start, cmds);
        Ok(info)
    }

    async fn ask<T>(
        &self,
        id: u64,
        make: impl FnOnce(oneshot::Sender<Result<T, WireError>>) -> Cmd,
    ) -> Result<T, WireError> {
        let h = self.get(id)?;
        let (tx, rx) = oneshot::channel();
        let not_running = || {
            bad(format!(
                "agent session {id} is not running ({})",
                h.info().state.as_str()
            ))
        };
        h.cmds.send(make(tx)).await.map_err(|_| not_running())?;
        rx.await.map_err(|_| not_running())?
    }

    /// Sends a prompt; `Ok(true)` if it was queued behind a running turn.
    pub async fn prompt(&self, id: u64, text: String, by: Actor) -> Result<bool, WireError> {
        check_prompt(&text)?;
        self.ask(id, |reply| Cmd::Prompt { text, by, reply }).await
    }

    /// Cancels the running turn.
    pub async fn cancel(&self, id: u64, by: Actor) -> Result<(), WireError> {
        self.ask(id, |reply| Cmd::Cancel { by, reply }).await
    }

    /// Answers an approval; `Conflict` if someone else answered first.
    pub async fn answer(
        &self,
        id: u64,
        approval: u64,
        option: Option<String>,
        by: Actor,
    ) -> Result<(), WireError> {
        if option.as_ref().is_some_and(|o| o.len() > 256) {
            return Err(bad("option id too long"));
        }
        self.ask(id, |reply| Cmd::Answer {
            approval,
            option,
            by,
            reply,
        })
        .await
    }

    /// Sends an ACP session configuration request (`session/set_mode` or
    /// `session/set_config_option`) and waits for the agent's answer.
    pub async fn configure(
        &self,
        id: u64,
        method: &'static str,
        params: serde_json::Value,
    ) -> Result<(), WireError> {
        self.ask(id, |reply| Cmd::Configure {
            method,
            params,
            reply,
        })
        .await
    }

    /// The worktree's changes against the base commit.
    pub async fn diff(&self, id: u64) -> Result<AgentDiff, WireError> {
        let h = self.get(id)?;
        let (wt, base, branch) = (
            PathBuf::from(&h.row.worktree),
            h.row.base.clone(),
            h.row.branch.clone(),
        );
        tokio::task::spawn_blocking(move || git::diff(&wt, &base, &branch))
            .await
            .map_err(internal)?
            .map_err(|e| match e {
                git::GitError::Bad(m) => bad(m),
                other => internal(other),
            })
    }

    /// Stops a session (state `done`) and optionally removes its worktree and branch.
    pub async fn close(&self, id: u64, remove_worktree: bool, by: Actor) -> Result<(), WireError> {
        let h = self.get(id)?;
        let state = h.info().state;
        if !matches!(state, AgentState::Done | AgentState::Failed) {
            self.ask(id, |reply| Cmd::Close { by, reply }).await?;
        } else if state == AgentState::Failed {
            self.inner
                .store
                .set_state(id, AgentState::Done, h.info().detail)
                .await
                .map_err(internal)?;
            h.mark(AgentState::Done);
        }
        if remove_worktree {
            let (repo, name, branch) = (
                PathBuf::from(&h.row.repo),
                h.row.wt_name.clone(),
                h.row.branch.clone(),
            );
            tokio::task::spawn_blocking(move || git::remove_worktree(&repo, &name, &branch))
                .await
                .map_err(internal)?
                .map_err(internal)?;
        }
        Ok(())
    }
}

/// From a session's `permission` and `permission_resolved` events: the approvals still open,
/// and the number the next one gets.
fn open_approvals(events: &[AgentEvent]) -> (Vec<u64>, u64) {
    let mut open = BTreeSet::new();
    let mut max = 0;
    for ev in events {
        match ev.event {
            AgentEventKind::Permission { approval, .. } => {
                open.insert(approval);
                max = max.max(approval);
            }
            AgentEventKind::PermissionResolved { approval, .. } => {
                open.remove(&approval);
                max = max.max(approval);
            }
            _ => {}
        }
    }
    (open.into_iter().collect(), max + 1)
}

fn check_prompt(p: &str) -> Result<(), WireError> {
    if p.trim().is_empty() {
        return Err(bad("empty prompt"));
    }
    if p.len() > MAX_PROMPT {
        return Err(bad(format!("prompt longer than {MAX_PROMPT} bytes")));
    }
    Ok(())
}
