//! A session's life around its agent process: dormant (no process; commands answered by the
//! actor itself), live (the process started, set up and serving turns, until it exits, is
//! stopped for idleness or the start is cancelled), and what happens when a session that never
//! started ends (its empty worktree and branch are removed).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use parking_lot::Mutex;
use tokio::io::AsyncBufReadExt;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info, warn};

use super::actor::{Proc, Session, Stop};
use super::handle::Cmd;
use super::{AGENT_GRACE, Start, acp, actor};
use crate::agent::config::{AgentCwd, STATE_VAR};
use crate::agent::git;
use crate::agent::terminal::Terminals;
use crate::proto::{AgentEventKind, AgentState, ErrorCode, WireError};

/// Lines of the agent's stderr kept to explain a failure.
const STDERR_LINES: usize = 12;
/// Characters of one kept stderr line at most.
const STDERR_LINE: usize = 300;

/// Why a dormant session wakes.
pub(super) enum Wake {
    /// Start the agent; then carry out this command, if any.
    Start(Option<Cmd>),
    /// The session was closed.
    Ended,
    /// The host shuts down.
    Shutdown,
}

/// How a live phase ended.
pub(super) enum Live {
    /// The agent process was stopped; the session goes on, dormant.
    Stopped,
    /// The session ended (closed or failed); the state is recorded.
    Ended,
    /// The host shuts down.
    Shutdown,
}

/// Answers commands while no agent process runs, until one needs the agent.
pub(super) async fn dormant(
    s: &mut Session,
    cmds: &mut mpsc::Receiver<Cmd>,
    shutdown: &CancellationToken,
) -> Wake {
    loop {
        let c = tokio::select! {
            c = cmds.recv() => c,
            _ = shutdown.cancelled() => return Wake::Shutdown,
        };
        let Some(c) = c else { return Wake::Shutdown };
        match c {
            Cmd::Prompt { text, by, reply } => {
                s.on_prompt(text, by, reply).await;
                return Wake::Start(None);
            }
            Cmd::Wake => return Wake::Start(None),
            c @ Cmd::Configure { .. } => return Wake::Start(Some(c)),
            Cmd::Close { by, reply } => {
                s.close(by).await;
                let _ = reply.send(Ok(()));
                return Wake::Ended;
            }
            Cmd::Cancel { reply, .. } => {
                let _ = reply.send(Err(WireError::new(
                    ErrorCode::BadRequest,
                    "no turn is running",
                )));
            }
            other => s.on_common(other).await,
        }
    }
}

/// Starts the agent and serves it until it exits, is stopped, or the session ends.
pub(super) async fn live(
    s: &mut Session,
    start: &Start,
    resume: Option<&str>,
    cmds: &mut mpsc::Receiver<Cmd>,
    shutdown: &CancellationToken,
    deferred: Option<Cmd>,
) -> Live {
    s.process = Proc::Starting;
    s.set_state(AgentState::Starting, None).await;
    let (mut child, stdin, stdout) = match spawn_agent(s, start).await {
        Ok(spawned) => spawned,
        Err(why) => {
            if let Some(c) = deferred {
                c.refuse(WireError::new(ErrorCode::BadRequest, why.clone()));
            }
            s.process = Proc::Stopped;
            s.fail(why).await;
            return Live::Ended;
        }
    };
    // The agent's log: drained so it never blocks, redacted before it reaches ours, and its
    // last lines kept to explain a failure.
    s.stderr.lock().clear();
    s.stderr_task = child.stderr.take().map(|stderr| {
        let (id, redactor, tail) = (s.h.row.id, s.redactor.clone(), s.stderr.clone());
        AbortOnDropHandle::new(tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = redactor.redact(&line);
                debug!(session = id, "agent: {line}");
                keep_line(&tail, &line);
            }
        }))
    });
    let secs = start
        .spec
        .start_timeout_secs
        .unwrap_or(start.sessions.start_timeout_secs)
        .max(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let idle_stop = (start.sessions.idle_stop_secs > 0)
        .then(|| Duration::from_secs(start.sessions.idle_stop_secs));
    let (tx, mut rx) = mpsc::channel(256);
    let result = acp::connect(stdin, stdout, tx, async |cx| {
        let mut setup = acp::Setup {
            cx: &cx,
            rx: &mut rx,
            child: &mut child,
            shutdown,
            cmds: &mut *cmds,
            deadline,
            timeout_secs: secs,
            deferred: deferred.into_iter().collect(),
        };
        let sid = match setup.run(s, resume).await {
            Ok(Some(sid)) => sid,
            Ok(None) => return Ok(Stop::Ended),
            Err(stop) => return Ok(stop),
        };
        let deferred = std::mem::take(&mut setup.deferred);
        Ok(actor::run_loop(
            s, cx, sid, rx, cmds, &mut child, shutdown, deferred, idle_stop,
        )
        .await)
    })
    .await;
    let stop = match result {
        Ok(stop) => stop,
        Err(e) => {
            // A pipe that broke because the agent exited: say how it exited.
            let why = match tokio::time::timeout(Duration::from_millis(500), child.wait()).await {
                Ok(status) => format!(
                    "{} (agent connection: {e})",
                    super::actor::exit_text(status)
                ),
                Err(_) => format!("agent connection failed: {e}"),
            };
            s.fail(why).await;
            Stop::Ended
        }
    };
    // The commands the host ran for the agent end with it.
    s.terms.kill_all();
    s.terms = Terminals::new(s.h.row.cwd(), PathBuf::from(&s.h.row.worktree));
    kill(&mut child).await;
    s.stderr_task = None;
    s.process = Proc::Stopped;
    s.in_flight = false;
    match stop {
        Stop::Idle(why) => {
            info!(session = s.h.row.id, "agent stopped: {why}");
            let state = s.derived_state();
            s.set_state(state, Some(why)).await;
            Live::Stopped
        }
        Stop::Ended => Live::Ended,
        Stop::Shutdown => {
            debug!(session = s.h.row.id, "agent stopped for host shutdown");
            Live::Shutdown
        }
    }
}

fn keep_line(tail: &Mutex<VecDeque<String>>, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    let mut t = tail.lock();
    if t.len() == STDERR_LINES {
        t.pop_front();
    }
    t.push_back(crate::tool::what::truncate(line, STDERR_LINE));
}

/// Starts the agent process: in the worktree (or the session's private directory), in its
/// own process group, with piped stdio.
async fn spawn_agent(
    s: &mut Session,
    start: &Start,
) -> Result<
    (
        Child,
        tokio::process::ChildStdin,
        tokio::process::ChildStdout,
    ),
    String,
> {
    let Some(program) = start.spec.command.first() else {
        return Err("the agent definition has no command".into());
    };
    let wt = PathBuf::from(&s.h.row.worktree);
    // fast-agent keeps "always allow" answers here, and honours them without asking; the
    // host never passes such answers on and runs no command that no approval, rule or grant
    // of the host allows, but a repository that ships this file is suspicious.
    let auths = wt.join(".fast-agent").join("auths.md");
    if !s.warned_auths && tokio::fs::try_exists(&auths).await.unwrap_or(false) {
        s.warned_auths = true;
        warn!(
            session = s.h.row.id,
            "the worktree contains {}",
            auths.display()
        );
        let message = format!(
            "the worktree contains {}: stored tool approvals of fast-agent, which the host \
             ignores (every command still needs an approval, a rule or a grant of the host)",
            auths.display()
        );
        s.emit(AgentEventKind::Warning { message }).await;
    }
    let row = &s.h.row;
    let process_cwd = match start.spec.cwd {
        AgentCwd::Worktree => row.cwd(),
        AgentCwd::State => start.state_dir.clone(),
    };
    tokio::fs::create_dir_all(&start.state_dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", start.state_dir.display()))?;
    let dir = start.state_dir.to_string_lossy();
    let mut child = tokio::process::Command::new(program)
        .args(&start.spec.command[1..])
        .envs(
            start
                .spec
                .env
                .iter()
                .map(|(k, v)| (k, v.replace(STATE_VAR, &dir))),
        )
        .env("PEER_AGENT_SESSION", row.id.to_string())
        .env("PEER_AGENT_STATE", &start.state_dir)
        .current_dir(&process_cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the agent's pipes are missing".into());
    };
    info!(session = row.id, agent = %row.agent, pid = ?child.id(), "agent started");
    Ok((child, stdin, stdout))
}

/// Ends the agent: SIGTERM to its process group, SIGKILL after [`AGENT_GRACE`].
async fn kill(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let Some(pid) = child.id() else { return };
    if !crate::util::terminate_group(pid, Signal::SIGTERM, AGENT_GRACE, child.wait()).await {
        let _ = child.kill().await;
    }
}

/// A session that ended (closed or failed) without its agent ever starting leaves nothing
/// worth keeping: its worktree and branch are removed, if nothing was changed in it.
pub(super) async fn after_end(s: &mut Session) {
    if s.ever_started {
        return;
    }
    let row = s.h.row.clone();
    let res = tokio::task::spawn_blocking(move || {
        let wt = Path::new(&row.worktree);
        if wt.exists() && !git::diff(wt, &row.base, &row.branch)?.files.is_empty() {
            return Ok(false);
        }
        git::remove_worktree(Path::new(&row.repo), &row.wt_name, &row.branch)?;
        Ok::<bool, git::GitError>(true)
    })
    .await;
    match res {
        Ok(Ok(true)) => {
            let message = format!(
                "the agent never started: its worktree {} and branch {} were removed",
                s.h.row.worktree, s.h.row.branch
            );
            s.emit(AgentEventKind::Warning { message }).await;
        }
        Ok(Ok(false)) => {}
        Ok(Err(e)) => warn!(session = s.h.row.id, "removing the unused worktree: {e}"),
        Err(e) => warn!(session = s.h.row.id, "removing the unused worktree: {e}"),
    }
}

/// The kept stderr lines, for a failure's message.
pub(super) fn stderr_text(tail: &Arc<Mutex<VecDeque<String>>>) -> Option<String> {
    let t = tail.lock();
    (!t.is_empty()).then(|| {
        t.iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}
