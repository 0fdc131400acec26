//! The shared face of a session: what lists and attachers read, and the actor's mailbox.

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::agent::approvals::PendingView;
use crate::agent::store::SessionRow;
use crate::proto::{
    AgentEvent, AgentEventKind, AgentSessionInfo, AgentState, GrantInfo, GrantScope, ModelPlace,
    PendingApproval, WireError,
};

/// Events buffered per session for live attachers; one that falls further behind catches up
/// from the database.
const LIVE_BUFFER: usize = 1024;
/// Events buffered for listeners of every session ([`crate::agent::AgentManager::events`]).
pub const ALL_EVENTS: usize = 1024;

/// Who did something: a device, the policy, the host.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Device id, hex, if a device.
    pub device: Option<String>,
    /// Display name.
    pub name: String,
}

/// Commands from clients to a session's actor.
#[derive(Debug)]
pub(crate) enum Cmd {
    Prompt {
        text: String,
        by: Actor,
        reply: oneshot::Sender<Result<bool, WireError>>,
    },
    Cancel {
        by: Actor,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    Answer {
        approval: u64,
        option: Option<String>,
        by: Actor,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    Close {
        by: Actor,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    /// An ACP request about the session (`session/set_mode`, `session/set_config_option`);
    /// `params` get the `sessionId` added.
    Configure {
        method: &'static str,
        params: Value,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    /// Make a grant.
    AddGrant {
        scope: GrantScope,
        allow: bool,
        by: Actor,
        reply: oneshot::Sender<Result<GrantInfo, WireError>>,
    },
    /// Revoke a grant.
    RevokeGrant {
        grant: u64,
        by: Actor,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    /// Someone attached: start the agent if it is stopped (no answer).
    Wake,
}

impl Cmd {
    /// Answers the command with `err`, whatever it was.
    pub(crate) fn refuse(self, err: WireError) {
        match self {
            Cmd::Prompt { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Cmd::Cancel { reply, .. }
            | Cmd::Answer { reply, .. }
            | Cmd::Close { reply, .. }
            | Cmd::Configure { reply, .. }
            | Cmd::RevokeGrant { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Cmd::AddGrant { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Cmd::Wake => {}
        }
    }
}

#[derive(Debug)]
struct Snapshot {
    state: AgentState,
    detail: Option<String>,
    next_seq: u64,
    pending: Vec<PendingApproval>,
    grants: Vec<GrantInfo>,
    queued: u32,
    attached: u32,
    /// The first line of the first prompt.
    title: Option<String>,
}

/// The shared face of a session: what lists and attachers read, and the actor's mailbox.
#[derive(Debug)]
pub struct SessionHandle {
    pub(crate) row: SessionRow,
    place: ModelPlace,
    snap: Mutex<Snapshot>,
    events: broadcast::Sender<Arc<AgentEvent>>,
    /// The manager's channel of every session's events.
    all: broadcast::Sender<Arc<AgentEvent>>,
    pub(crate) cmds: mpsc::Sender<Cmd>,
    /// Held while events are recorded for a session without an actor (done or failed).
    pub(crate) detached: tokio::sync::Mutex<()>,
}

/// Counts an attachment while alive.
#[derive(Debug)]
pub struct AttachedGuard(Arc<SessionHandle>);

impl Drop for AttachedGuard {
    fn drop(&mut self) {
        let mut s = self.0.snap.lock();
        s.attached = s.attached.saturating_sub(1);
    }
}

impl SessionHandle {
    /// `provider`: where the agent's own model runs, for a session without a local one; `all`:
    /// the manager's channel of every session's events.
    pub(crate) fn new(
        row: SessionRow,
        next_seq: u64,
        state: AgentState,
        provider: Option<String>,
        all: broadcast::Sender<Arc<AgentEvent>>,
    ) -> (Arc<SessionHandle>, mpsc::Receiver<Cmd>) {
        let (tx, rx) = mpsc::channel(64);
        let detail = row.detail.clone();
        let place = match &row.model {
            Some(m) => m.place(),
            None => ModelPlace::Provider { provider },
        };
        let h = Arc::new(SessionHandle {
            row,
            place,
            snap: Mutex::new(Snapshot {
                state,
                detail,
                next_seq,
                pending: Vec::new(),
                grants: Vec::new(),
                queued: 0,
                attached: 0,
                title: None,
            }),
            events: broadcast::channel(LIVE_BUFFER).0,
            all,
            cmds: tx,
            detached: tokio::sync::Mutex::new(()),
        });
        (h, rx)
    }

    /// The session as lists show it.
    pub fn info(&self) -> AgentSessionInfo {
        let s = self.snap.lock();
        AgentSessionInfo {
            id: self.row.id,
            agent: self.row.agent.clone(),
            repo: self.row.repo.clone(),
            worktree: self.row.worktree.clone(),
            branch: self.row.branch.clone(),
            base: self.row.base.clone(),
            state: s.state,
            detail: s.detail.clone(),
            created_at_ms: self.row.created_at,
            next_seq: s.next_seq,
            pending_approvals: u32::try_from(s.pending.len()).unwrap_or(u32::MAX),
            queued_prompts: s.queued,
            attached: s.attached,
            model: self.place.clone(),
            title: s.title.clone(),
        }
    }

    /// Live events from now on, and the sequence number of the first one.
    pub fn subscribe(self: &Arc<Self>) -> (broadcast::Receiver<Arc<AgentEvent>>, u64) {
        let s = self.snap.lock();
        (self.events.subscribe(), s.next_seq)
    }

    /// Takes the session's title from its stored events (after a host restart).
    pub(crate) fn set_title_from(&self, events: &[AgentEvent]) {
        let title = events.iter().find_map(|e| title_of(&e.event));
        let mut s = self.snap.lock();
        if s.title.is_none() {
            s.title = title;
        }
    }

    /// Counts an attachment until the guard drops.
    pub fn attached(self: &Arc<Self>) -> AttachedGuard {
        self.snap.lock().attached += 1;
        AttachedGuard(self.clone())
    }

    /// The state and sequence number the session starts its actor with.
    pub(crate) fn start_point(&self) -> (AgentState, u64) {
        let s = self.snap.lock();
        (s.state, s.next_seq)
    }

    /// Pending approvals and the count of queued prompts, for listings.
    pub(crate) fn set_pending(&self, pending: Vec<PendingView>, queued: usize) {
        let cwd = self.row.cwd().to_string_lossy().into_owned();
        let list = pending
            .into_iter()
            .map(|p| PendingApproval {
                session: self.row.id,
                approval: p.approval,
                tool_call: p.tool_call,
                options: p.options,
                cwd: cwd.clone(),
                at_ms: p.at_ms,
                what: p.what,
            })
            .collect();
        let mut s = self.snap.lock();
        s.pending = list;
        s.queued = u32::try_from(queued).unwrap_or(u32::MAX);
    }

    /// The session's grants, for listings.
    pub(crate) fn set_grants(&self, grants: Vec<GrantInfo>) {
        self.snap.lock().grants = grants;
    }

    /// Approvals waiting for an answer.
    pub fn pending(&self) -> Vec<PendingApproval> {
        self.snap.lock().pending.clone()
    }

    /// The session's grants.
    pub fn grants(&self) -> Vec<GrantInfo> {
        self.snap.lock().grants.clone()
    }

    /// A new state, for listings.
    pub(crate) fn set_state(&self, state: AgentState, detail: Option<String>) {
        let mut s = self.snap.lock();
        s.state = state;
        s.detail = detail;
    }

    /// An event is stored: attachers may see it. Runs on the database thread, in sequence
    /// order, under the lock that [`SessionHandle::subscribe`] takes, so a subscriber either
    /// gets the event live or finds it stored below its starting point.
    pub(crate) fn publish(&self, ev: Arc<AgentEvent>) {
        let mut s = self.snap.lock();
        s.next_seq = ev.seq + 1;
        if s.title.is_none() {
            s.title = title_of(&ev.event);
        }
        let _ = self.all.send(ev.clone());
        let _ = self.events.send(ev);
    }
}

/// A session's title from its first prompt: the first non-empty line, at most 120 characters.
pub(crate) fn title_of(ev: &AgentEventKind) -> Option<String> {
    let AgentEventKind::Prompt { text, .. } = ev else {
        return None;
    };
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut t: String = line.chars().take(120).collect();
    if t.len() < line.len() {
        t.push('…');
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_the_first_line_of_the_first_prompt() {
        let p = |text: &str| AgentEventKind::Prompt {
            text: text.into(),
            by: "phone".into(),
            device: None,
            queued: false,
        };
        assert_eq!(
            title_of(&p("\n  fix the bug \nin main.rs")).as_deref(),
            Some("fix the bug")
        );
        assert_eq!(title_of(&p(" \n ")), None);
        let long = "x".repeat(200);
        let t = title_of(&p(&long)).expect("a title");
        assert_eq!(t.chars().count(), 121);
        assert!(t.ends_with('…'));
        assert_eq!(
            title_of(&AgentEventKind::Warning {
                message: "w".into()
            }),
            None
        );
    }
}
