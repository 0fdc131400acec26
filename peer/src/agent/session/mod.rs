//! One agent session: the actor that owns the session's state (sequence numbers, the approval
//! policy, the prompt queue), and the agent process it starts when there is work and stops when
//! there is none.
//!
//! Everything that changes a session goes through its actor task, one step at a time, so
//! event sequence numbers have no holes, the first answer to an approval wins, and the
//! stored transcript is in the order clients saw it. The ACP dispatch loop never waits for a
//! person: requests are handed to the actor with their responders and the handlers return at
//! once.
//!
//! The actor runs for every session that is not done or failed; the agent process only while
//! it is needed. A session whose agent is stopped is *dormant*: a prompt, pending work (queued
//! prompts after a host restart), a configuration request or an attachment starts the agent
//! (`live`), which loads or resumes its ACP session; an agent that can do that is stopped
//! again after `[sessions] idle_stop_secs` without a turn.
//!
//! - [`handle`]: [`SessionHandle`], the face lists and attachers see, and the commands;
//! - `acp`: the ACP client's handlers and the setup (`initialize`, load / resume / new);
//! - `actor`: the select loop of a live agent and the commands;
//! - `events`: recording events and the derived state, applying the approval policy's effects;
//! - `terminals`: the actor's side of `terminal/*`;
//! - `life`: dormant sessions, starting and stopping the agent process, and what is done when
//!   a session that never started ends.

mod acp;
mod actor;
mod events;
pub(crate) mod handle;
mod life;
mod terminals;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) use handle::Cmd;
pub use handle::{ALL_EVENTS, Actor, AttachedGuard, SessionHandle};
pub use terminals::NOT_APPROVED;

use super::approvals::Approvals;
use super::config::{AgentSpec, Redactor, Sessions};
use super::rules::{Rules, SessionGrant};
use super::store::Store;
use crate::proto::{AgentEventKind, StopReason};
use actor::{Session, refuse_all};

/// How long the agent has after SIGTERM before SIGKILL.
const AGENT_GRACE: Duration = Duration::from_secs(2);

/// How a session starts.
#[derive(Debug)]
pub(crate) struct Start {
    pub spec: AgentSpec,
    pub rules: Rules,
    /// Seconds an approval waits (`None`: for ever).
    pub approval_timeout: Option<Duration>,
    pub sessions: Sessions,
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
    /// The session's grants, and the number of the next one.
    pub grants: Vec<SessionGrant>,
    pub next_grant: u64,
    /// Prompts that never reached the agent (restored from the transcript).
    pub queue: Vec<(String, Actor)>,
    /// A first prompt (a new session).
    pub prompt: Option<(String, Actor)>,
    /// Start the agent at once (a new session, or work left from before a restart).
    pub start_now: bool,
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
    let approvals = Approvals::new(
        start.rules.clone(),
        start.approval_timeout,
        start.next_approval,
    )
    .with_grants(h.row.id, start.grants.clone(), start.next_grant);
    let mut s = Session::new(h.clone(), store, approvals, start.redactor.clone());
    s.interrupted = start.interrupted;
    if s.next_seq == 0 {
        // A new session's transcript starts with its state.
        s.state = crate::proto::AgentState::Idle;
        s.set_state(crate::proto::AgentState::Starting, None).await;
    }
    s.queue = start.queue.iter().cloned().collect::<VecDeque<_>>();
    h.set_grants(s.approvals.grants());
    // What a host restart cut off, recorded without the agent.
    let effects = s.approvals.lost(&start.stale_approvals);
    s.apply(effects).await;
    if start.cut_turn {
        s.emit(AgentEventKind::TurnEnd {
            stop_reason: StopReason::Interrupted {
                reason: "the host restarted during the turn".into(),
            },
        })
        .await;
    }
    if let Some((text, by)) = start.prompt.clone() {
        s.emit(AgentEventKind::Prompt {
            text: text.clone(),
            by: by.name.clone(),
            device: by.device.clone(),
            queued: false,
        })
        .await;
        s.queue.push_back((text, by));
    }
    let mut wake = start.start_now || !s.queue.is_empty();
    if !wake {
        s.refresh().await;
    }
    let mut resume = start.resume.clone();
    let mut deferred: Option<Cmd> = None;
    loop {
        if !wake {
            match life::dormant(&mut s, &mut cmds, &shutdown).await {
                life::Wake::Start(cmd) => deferred = cmd,
                life::Wake::Ended => {
                    life::after_end(&mut s).await;
                    refuse_all(&mut cmds, s.state);
                    return;
                }
                life::Wake::Shutdown => return,
            }
        }
        wake = false;
        match life::live(
            &mut s,
            &start,
            resume.as_deref(),
            &mut cmds,
            &shutdown,
            deferred.take(),
        )
        .await
        {
            life::Live::Stopped => {
                if let Some(sid) = s.acp_sid.clone() {
                    resume = Some(sid);
                }
            }
            life::Live::Ended => {
                life::after_end(&mut s).await;
                refuse_all(&mut cmds, s.state);
                return;
            }
            life::Live::Shutdown => return,
        }
    }
}
