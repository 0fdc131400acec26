//! Starting a new agent session: the checks, the repository (a directory inside it means that
//! repository, with that directory as the agent's cwd), the worktree (with the checkout's
//! uncommitted changes if asked), the session's row and its actor, and what a person should
//! know before going on.

use std::sync::Arc;

use super::session::{Actor, SessionHandle, Start};
use super::store::SessionRow;
use super::{AgentManager, MAX_AGENT_SESSIONS, bad, check_prompt, config, git, internal, local};
use crate::proto::{AgentStarted, AgentState, ErrorCode, StartAgent, WireError};

fn git_error(e: git::GitError) -> WireError {
    match e {
        git::GitError::Bad(m) => bad(m),
        other => internal(other),
    }
}

impl AgentManager {
    /// Starts a new session: worktree, agent process, ACP session, and the first prompt.
    pub async fn start_session(
        &self,
        req: StartAgent,
        by: Actor,
    ) -> Result<AgentStarted, WireError> {
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
        let path = super::expand_home(&req.repo);
        if !path.is_absolute() {
            return Err(bad(
                "the repository path must be absolute or start with ~/ (a path on the host)",
            ));
        }
        if req
            .base
            .as_ref()
            .is_some_and(|b| b.is_empty() || b.len() > 256 || b.contains('\0'))
        {
            return Err(bad("bad base branch"));
        }
        if req.with_changes && req.base.is_some() {
            return Err(bad(
                "--with-changes brings the checkout's changes against its HEAD: leave out --base",
            ));
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
        let (found, logged_in) = {
            let (p, sp) = (program.clone(), spec.clone());
            tokio::task::spawn_blocking(move || {
                (config::which(&p).is_some(), config::logged_in(&sp))
            })
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
        let (base, with_changes) = (req.base.clone(), req.with_changes);
        let (wt, located, carried) = tokio::task::spawn_blocking(move || {
            let located = git::locate(&path)?;
            let wt = git::create_worktree(&located.root, base.as_deref(), &branch, &wt_name, &dir)?;
            let carried = if with_changes && located.uncommitted > 0 {
                match git::carry_changes(&located.root, &wt.path) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = git::remove_worktree(&located.root, &wt.name, &wt.branch);
                        return Err(e);
                    }
                }
            } else {
                0
            };
            // A directory that is not in the commit is made, empty.
            let _ = std::fs::create_dir_all(wt.path.join(&located.subdir));
            Ok::<_, git::GitError>((wt, located, carried))
        })
        .await
        .map_err(internal)?
        .map_err(git_error)?;
        let mut warnings = Vec::new();
        if !logged_in {
            warnings.push(format!(
                "no login for {} was found on the host; it may fail to start{}",
                req.agent,
                spec.login_hint
                    .as_deref()
                    .map(|h| format!(" (to log in: {h})"))
                    .unwrap_or_default()
            ));
        }
        if located.uncommitted > 0 && !with_changes {
            warnings.push(format!(
                "{} has {} file(s) with uncommitted changes; the worktree starts from {} \
                 without them (--with-changes brings them)",
                located.root.display(),
                located.uncommitted,
                &wt.base[..wt.base.len().min(10)]
            ));
        }
        if carried > 0 {
            warnings.push(format!(
                "{carried} file(s) with uncommitted changes were copied into the worktree"
            ));
        }
        let subdir = located.subdir.to_string_lossy().into_owned();
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
            subdir,
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
        let cwd = h.row.cwd().to_string_lossy().into_owned();
        let start = Start {
            spec,
            rules: self.inner.config.rules.clone(),
            approval_timeout: self.approval_timeout(),
            sessions: self.inner.config.sessions,
            redactor: self.inner.config.redactor.clone(),
            resume: None,
            cut_turn: false,
            interrupted: false,
            stale_approvals: vec![],
            next_approval: 1,
            grants: vec![],
            next_grant: 1,
            queue: vec![],
            prompt: req.prompt.map(|p| (p, by)),
            start_now: true,
            state_dir: self.state_dir(h.row.id),
        };
        self.spawn(Arc::clone(&h), start, cmds);
        Ok(AgentStarted {
            info,
            cwd,
            warnings,
        })
    }
}
