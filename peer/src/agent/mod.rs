//! AI coding agents on the host, driven over the Agent Client Protocol (ACP).
//!
//! A new agent session gets its own git worktree on a new branch ([`git`], `start.rs`), an
//! agent process started from the registry ([`config`]) in the worktree, and an actor that
//! records every event in the host's database ([`store`]) and broadcasts it to attached
//! clients. Sessions survive host restarts: their actors come back at boot, and the agent
//! process is started again when it is needed (a prompt, queued work, an attachment), with
//! `session/load` or `session/resume` where the agent supports it. The approval policy is
//! [`approvals`] with [`rules`] and grants; [`what`] says what a tool call would do.

pub mod approvals;
pub mod config;
pub mod git;
pub mod grants;
pub mod local;
pub mod rules;
mod session;
mod start;
pub mod store;
pub mod terminal;
pub mod view;

use std::collections::BTreeMap;
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
use store::Store;

use crate::db::{Db, DbError};
use crate::machine::models;
use crate::paths::Paths;
use crate::proto::{
    AgentDef, AgentDiff, AgentEvent, AgentEventKind, AgentSessionInfo, AgentState, ErrorCode,
    GrantInfo, GrantScope, ModelServer, NewAgentSession, PendingApproval, StartAgent, WireError,
};
use local::LocalChoice;
use rules::SessionGrant;

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
            // The title: the first prompt is among the first events (state, started, prompt).
            h.set_title_from(&self.inner.store.read(id, 0, 16).await?);
            self.inner.sessions.lock().insert(id, h.clone());
            if !live {
                continue;
            }
            let Some(spec) = spec else {
                warn!(session = id, agent = %row.agent, "agent no longer in the registry");
                let why = format!("the agent {:?} is no longer in the registry", row.agent);
                self.fail_detached(&h, why).await?;
                continue;
            };
            let spec = match &row.model {
                None => spec,
                Some(m) => match local::apply(&row.agent, &spec, m) {
                    Ok(s) => s,
                    Err(why) => {
                        warn!(session = id, "{why}");
                        self.fail_detached(&h, why).await?;
                        continue;
                    }
                },
            };
            // Approvals that were pending when the host stopped died with the old process;
            // prompts that never reached the agent are sent once it is back; grants stay.
            let restored = self.inner.store.restore(id).await?;
            let grants = restored
                .grants
                .into_iter()
                .filter_map(|g| match SessionGrant::new(g) {
                    Ok(g) => Some(g),
                    Err(e) => {
                        warn!(session = id, "a stored grant is not usable: {e}");
                        None
                    }
                })
                .collect();
            let queue: Vec<(String, Actor)> = restored
                .queue
                .into_iter()
                .map(|(text, device, name)| (text, Actor { device, name }))
                .collect();
            let start_now = state == AgentState::Starting || !queue.is_empty();
            info!(
                session = id,
                state = state.as_str(),
                queued = queue.len(),
                "agent session back{}",
                if start_now {
                    "; starting its agent"
                } else {
                    ""
                }
            );
            let start = Start {
                spec,
                rules: self.inner.config.rules.clone(),
                approval_timeout: self.approval_timeout(),
                sessions: self.inner.config.sessions,
                redactor: self.inner.config.redactor.clone(),
                resume: row.acp_session.clone(),
                cut_turn: matches!(state, AgentState::Running | AgentState::WaitingApproval),
                interrupted: matches!(
                    state,
                    AgentState::Running | AgentState::WaitingApproval | AgentState::Interrupted
                ),
                stale_approvals: restored.open_approvals,
                next_approval: restored.next_approval,
                grants,
                next_grant: restored.next_grant,
                queue,
                prompt: None,
                start_now,
                state_dir: self.state_dir(id),
            };
            self.spawn(h, start, cmds);
        }
        Ok(())
    }

    fn approval_timeout(&self) -> Option<std::time::Duration> {
        let t = self.inner.config.policy.timeout_secs;
        (t > 0).then(|| std::time::Duration::from_secs(t))
    }

    /// Fails a session that has no actor (at host start): recorded, stored and shown.
    async fn fail_detached(&self, h: &Arc<SessionHandle>, why: String) -> Result<(), AgentError> {
        self.record_detached(
            h,
            vec![
                AgentEventKind::Error {
                    message: why.clone(),
                },
                AgentEventKind::State {
                    state: AgentState::Failed,
                    detail: Some(why.clone()),
                },
            ],
        )
        .await;
        self.inner
            .store
            .set_state(h.row.id, AgentState::Failed, Some(why.clone()))
            .await?;
        h.set_state(AgentState::Failed, Some(why));
        Ok(())
    }

    /// Records events of a session that has no actor (done, failed, or not started yet), in
    /// order after what is stored.
    async fn record_detached(&self, h: &Arc<SessionHandle>, events: Vec<AgentEventKind>) {
        let _one = h.detached.lock().await;
        self.inner.store.flush().await;
        for (seq, event) in (h.info().next_seq..).zip(events) {
            let ev = AgentEvent {
                session: h.row.id,
                seq,
                at_ms: crate::util::now_ms(),
                event,
            };
            let (h2, live) = (h.clone(), Arc::new(ev.clone()));
            let publish: store::OnStored = Box::new(move || h2.publish(live));
            if let Err(e) = self.inner.store.append(ev, Some(publish)).await {
                warn!(session = h.row.id, "recording event: {e}");
            }
        }
        self.inner.store.flush().await;
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
        let req = StartAgent {
            agent: req.agent,
            repo: req.repo,
            base: req.base,
            prompt: req.prompt,
            with_changes: false,
            model: req.model,
        };
        Ok(self.start_session(req, by).await?.info)
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

    /// Every approval waiting for an answer, by session.
    pub fn approvals(&self) -> Vec<PendingApproval> {
        let hs: Vec<Arc<SessionHandle>> = self.inner.sessions.lock().values().cloned().collect();
        hs.iter().flat_map(|h| h.pending()).collect()
    }

    /// The grants of one session, or of every session that is not done or failed.
    pub fn grants(&self, session: Option<u64>) -> Result<Vec<GrantInfo>, WireError> {
        match session {
            Some(id) => Ok(self.get(id)?.grants()),
            None => {
                let hs: Vec<Arc<SessionHandle>> =
                    self.inner.sessions.lock().values().cloned().collect();
                Ok(hs
                    .iter()
                    .filter(|h| !matches!(h.info().state, AgentState::Done | AgentState::Failed))
                    .flat_map(|h| h.grants())
                    .collect())
            }
        }
    }

    /// Makes a grant in a session.
    pub async fn add_grant(
        &self,
        id: u64,
        scope: GrantScope,
        allow: bool,
        by: Actor,
    ) -> Result<GrantInfo, WireError> {
        self.ask(id, |reply| Cmd::AddGrant {
            scope,
            allow,
            by,
            reply,
        })
        .await
    }

    /// Revokes a grant of a session.
    pub async fn revoke_grant(&self, id: u64, grant: u64, by: Actor) -> Result<(), WireError> {
        self.ask(id, |reply| Cmd::RevokeGrant { grant, by, reply })
            .await
    }

    /// Someone attached to session `id`: its agent starts if it is stopped.
    pub fn wake(&self, id: u64) {
        if let Ok(h) = self.get(id) {
            let _ = h.cmds.try_send(Cmd::Wake);
        }
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
            // No actor: the events are recorded here, so a client waiting for `done` sees it.
            let detail = h.info().detail;
            self.record_detached(
                &h,
                vec![
                    AgentEventKind::Closed {
                        by: by.name,
                        device: by.device,
                    },
                    AgentEventKind::State {
                        state: AgentState::Done,
                        detail: detail.clone(),
                    },
                ],
            )
            .await;
            self.inner
                .store
                .set_state(id, AgentState::Done, detail.clone())
                .await
                .map_err(internal)?;
            h.set_state(AgentState::Done, detail);
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

fn check_prompt(p: &str) -> Result<(), WireError> {
    if p.trim().is_empty() {
        return Err(bad("empty prompt"));
    }
    if p.len() > MAX_PROMPT {
        return Err(bad(format!("prompt longer than {MAX_PROMPT} bytes")));
    }
    Ok(())
}

/// `~` and `~/…` name the host user's home directory (`$HOME`); other paths are as given.
pub(crate) fn expand_home(path: &str) -> PathBuf {
    let rest = match path.strip_prefix('~') {
        Some("") => "",
        Some(r) if r.starts_with('/') => &r[1..],
        _ => return PathBuf::from(path),
    };
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(rest),
        None => PathBuf::from(path),
    }
}

#[cfg(test)]
mod home_tests {
    use super::expand_home;
    use std::path::PathBuf;

    #[test]
    fn a_tilde_names_the_home_directory() {
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            return;
        };
        let home = PathBuf::from(home);
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("~/src/app"), home.join("src/app"));
        assert_eq!(expand_home("/srv/app"), PathBuf::from("/srv/app"));
        // `~user` is not expanded (a relative path, refused by the caller).
        assert_eq!(expand_home("~bob/x"), PathBuf::from("~bob/x"));
    }
}
