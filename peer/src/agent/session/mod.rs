//! One agent session: the agent process, its ACP connection, and the actor that owns the
//! session's state (sequence numbers, the approval policy, the prompt queue).
//!
//! Everything that changes a session goes through its actor task, one step at a time, so
//! event sequence numbers have no holes, the first answer to an approval wins, and the
//! stored transcript is in the order clients saw it. The ACP dispatch loop never waits for a
//! person: requests are handed to the actor with their responders and the handlers return at
//! once.
//!
//! - [`handle`]: [`SessionHandle`], the face lists and attachers see, and the commands;
//! - `acp`: the ACP client's handlers and the setup (`initialize`, load / resume / new);
//! - `actor`: the select loop and the commands;
//! - `events`: recording events and the derived state, applying the approval policy's effects;
//! - `terminals`: the actor's side of `terminal/*`.
//!
//! This module starts and ends the agent process.

mod acp;
mod actor;
mod events;
pub(crate) mod handle;
mod terminals;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::AsyncBufReadExt;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub(crate) use handle::Cmd;
pub use handle::{ALL_EVENTS, Actor, AttachedGuard, SessionHandle};
pub use terminals::NOT_APPROVED;

use super::approvals::Approvals;
use super::config::{AgentCwd, AgentSpec, Policy, Redactor};
use super::store::Store;
use crate::proto::{AgentEventKind, AgentState};
use actor::{Session, Stop, refuse_all};

/// How long the agent has after SIGTERM before SIGKILL.
const AGENT_GRACE: Duration = Duration::from_secs(2);

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

/// Runs a session until it is closed, fails, or the host shuts down.
pub(crate) async fn run(
    h: Arc<SessionHandle>,
    store: Store,
    start: Start,
    mut cmds: mpsc::Receiver<Cmd>,
    shutdown: CancellationToken,
) {
    let approvals = Approvals::new(&start.policy, start.next_approval);
    let mut s = Session::new(h.clone(), store, approvals);
    s.interrupted = start.interrupted;
    // Always say so, also when a resumed session was stored as starting.
    s.state = AgentState::Idle;
    s.set_state(AgentState::Starting, None).await;
    let (mut child, stdin, stdout) = match spawn_agent(&mut s, &start).await {
        Ok(spawned) => spawned,
        Err(why) => {
            s.fail(why).await;
            refuse_all(&mut cmds, s.state);
            return;
        }
    };
    // The agent's log: drained so it never blocks, redacted before it reaches ours.
    let stderr_task = child.stderr.take().map(|stderr| {
        let (id, redactor) = (h.row.id, start.redactor.clone());
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                debug!(session = id, "agent: {}", redactor.redact(&line));
            }
        }))
    });
    let (tx, mut rx) = mpsc::channel(256);
    let result = acp::connect(stdin, stdout, tx, async |cx| {
        let mut setup = acp::Setup {
            cx: &cx,
            rx: &mut rx,
            child: &mut child,
            shutdown: &shutdown,
        };
        let resume = start.resume.as_deref();
        let sid = match setup
            .run(&mut s, resume, &start.stale_approvals, start.cut_turn)
            .await
        {
            Ok(Some(sid)) => sid,
            Ok(None) | Err(Stop::Ended) => {
                refuse_all(&mut cmds, s.state);
                return Ok(Stop::Ended);
            }
            Err(Stop::Shutdown) => return Ok(Stop::Shutdown),
        };
        if let Some((text, by)) = start.prompt {
            s.emit(AgentEventKind::Prompt {
                text: text.clone(),
                by: by.name.clone(),
                device: by.device.clone(),
                queued: false,
            })
            .await;
            s.queue.push_back((text, by));
        }
        Ok(actor::run_loop(&mut s, cx, sid, rx, &mut cmds, &mut child, &shutdown).await)
    })
    .await;
    let stop = match result {
        Ok(stop) => stop,
        Err(e) => {
            s.fail(format!("agent connection failed: {e}")).await;
            Stop::Ended
        }
    };
    // The commands the host ran for the agent die with the session.
    drop(s);
    kill(&mut child).await;
    drop(stderr_task);
    if let Stop::Shutdown = stop {
        debug!(session = h.row.id, "agent stopped for host shutdown");
    }
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
    let row = &s.h.row;
    let wt = PathBuf::from(&row.worktree);
    // fast-agent keeps "always allow" answers here, and honours them without asking; the
    // host never passes such answers on and runs no command without a fresh approval, but a
    // repository that ships this file is suspicious.
    let auths = wt.join(".fast-agent").join("auths.md");
    if tokio::fs::try_exists(&auths).await.unwrap_or(false) {
        warn!(
            session = row.id,
            "the worktree contains {}",
            auths.display()
        );
        let message = format!(
            "the worktree contains {}: stored tool approvals of fast-agent, which the host \
             ignores (every command still needs an approval in its turn)",
            auths.display()
        );
        s.emit(AgentEventKind::Warning { message }).await;
    }
    let row = &s.h.row;
    let process_cwd = match start.spec.cwd {
        AgentCwd::Worktree => wt,
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
                .map(|(k, v)| (k, v.replace(super::config::STATE_VAR, &dir))),
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
