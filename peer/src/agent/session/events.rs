//! How the actor records what happens: numbered events, the derived state, failures, and the
//! approval policy's effects.

use std::sync::Arc;

use agent_client_protocol::v1::schema::{
    PermissionOptionKind, RequestPermissionOutcome, RequestPermissionRequest,
    RequestPermissionResponse, SelectedPermissionOutcome,
};
use serde_json::Value;
use tracing::{debug, warn};

use super::acp::PermResponder;
use super::actor::{Proc, Session};
use crate::agent::approvals::{Ask, Choice, Effect, End, OptionKind};
use crate::agent::store::OnStored;
use crate::proto::{AgentEvent, AgentEventKind, AgentState, MAX_EVENT_DATA};
use crate::util::now_ms;

impl Session {
    /// Numbers and records an event (one over [`MAX_EVENT_DATA`] as
    /// [`AgentEventKind::Truncated`]); clients see it once it is stored.
    pub(super) async fn emit(&mut self, event: AgentEventKind) {
        let ev = AgentEvent {
            session: self.h.row.id,
            seq: self.next_seq,
            at_ms: now_ms(),
            event: event.bounded(MAX_EVENT_DATA),
        };
        self.next_seq += 1;
        // A number a client has seen is never given to another event, even if the host dies
        // right after: the database thread publishes it after the commit.
        let (h, live) = (self.h.clone(), Arc::new(ev.clone()));
        let publish: OnStored = Box::new(move || h.publish(live));
        if let Err(e) = self.store.append(ev, Some(publish)).await {
            warn!(session = self.h.row.id, "recording event: {e}");
        }
    }

    /// The state that what is going on makes.
    pub(super) fn derived_state(&self) -> AgentState {
        match self.state {
            AgentState::Done | AgentState::Failed => self.state,
            _ if self.process == Proc::Starting => AgentState::Starting,
            _ if self.in_flight && self.approvals.pending() > 0 => AgentState::WaitingApproval,
            _ if self.in_flight => AgentState::Running,
            _ if self.interrupted => AgentState::Interrupted,
            _ => AgentState::Idle,
        }
    }

    /// Recomputes the state from what is going on and records a change.
    pub(super) async fn refresh(&mut self) {
        let state = self.derived_state();
        let detail = if state == self.state {
            self.detail.clone()
        } else {
            None
        };
        self.set_state(state, detail).await;
    }

    /// Records a state change (and refreshes what listings show).
    pub(super) async fn set_state(&mut self, state: AgentState, detail: Option<String>) {
        self.h
            .set_pending(self.approvals.pending_list(), self.queue.len());
        if state == self.state && detail == self.detail {
            return;
        }
        self.state = state;
        self.detail = detail.clone();
        self.h.set_state(state, detail.clone());
        if let Err(e) = self
            .store
            .set_state(self.h.row.id, state, detail.clone())
            .await
        {
            warn!(session = self.h.row.id, "recording state: {e}");
        }
        self.emit(AgentEventKind::State { state, detail }).await;
    }

    /// The agent failed (could not start, failed ACP setup, or exited): the turn ends
    /// `failed`, approvals and queued prompts are dropped, state `failed`. The error says what
    /// the agent last wrote on stderr.
    pub(super) async fn fail(&mut self, why: String) {
        if matches!(self.state, AgentState::Failed | AgentState::Done) {
            debug!(session = self.h.row.id, "after the end: {why}");
            return;
        }
        // Let the stderr reader take in the agent's last words.
        if let Some(t) = self.stderr_task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), t).await;
        }
        let tail = super::life::stderr_text(&self.stderr);
        let last = self.stderr.lock().back().cloned();
        warn!(session = self.h.row.id, "agent failed: {why}");
        self.emit(AgentEventKind::Error {
            message: match &tail {
                Some(t) => format!("{why}; its last lines on stderr:\n{t}"),
                None => why.clone(),
            },
        })
        .await;
        let why = match last {
            Some(l) => format!("{why} (stderr: {l})"),
            None => why,
        };
        if self.in_flight {
            self.in_flight = false;
            self.emit(AgentEventKind::TurnEnd {
                stop_reason: crate::proto::StopReason::Failed,
            })
            .await;
        }
        let effects = self.approvals.end(End::AgentExit);
        self.apply(effects).await;
        self.drop_queue().await;
        self.set_state(AgentState::Failed, Some(why)).await;
    }

    pub(super) async fn drop_queue(&mut self) {
        if !self.queue.is_empty() {
            let dropped = u32::try_from(self.queue.len()).unwrap_or(u32::MAX);
            self.queue.clear();
            self.emit(AgentEventKind::QueueCleared { dropped }).await;
        }
    }

    /// Carries out what the approval policy decided, in order.
    pub(super) async fn apply(&mut self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Answer { approval, option } => {
                    let Some(r) = self.responders.remove(&approval) else {
                        continue;
                    };
                    let outcome = match option {
                        Some(o) => {
                            RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(o))
                        }
                        None => RequestPermissionOutcome::Cancelled,
                    };
                    if let Err(e) = r.respond(RequestPermissionResponse::new(outcome)) {
                        debug!("answering a permission request: {e}");
                    }
                }
                Effect::Emit(ev) => self.emit(ev).await,
                Effect::Deadline(d) => self.deadline = d.map(tokio::time::Instant::from_std),
                Effect::Audit {
                    device,
                    event,
                    detail,
                } => self.audit(device, event, detail).await,
                Effect::Grants => self.h.set_grants(self.approvals.grants()),
            }
        }
    }

    /// Writes a row of the host's audit log, about this session, secrets redacted.
    pub(super) async fn audit(
        &mut self,
        device: Option<String>,
        event: &'static str,
        detail: String,
    ) {
        let device = device
            .and_then(|d| hex::decode(d).ok())
            .filter(|d| d.len() == 32);
        let detail = self.redactor.redact(&format!("{} {detail}", self.h.row.id));
        if let Err(e) = self.store.audit(device, event, detail).await {
            warn!(session = self.h.row.id, "audit log: {e}");
        }
    }

    /// `session/request_permission`: a pending approval, unless the policy answers it.
    pub(super) async fn on_permission(
        &mut self,
        req: RequestPermissionRequest,
        responder: PermResponder,
    ) {
        let choices = req
            .options
            .iter()
            .map(|o| Choice {
                id: o.option_id.0.to_string(),
                kind: match o.kind {
                    PermissionOptionKind::AllowOnce => OptionKind::AllowOnce,
                    PermissionOptionKind::AllowAlways => OptionKind::AllowAlways,
                    PermissionOptionKind::RejectOnce => OptionKind::RejectOnce,
                    PermissionOptionKind::RejectAlways => OptionKind::RejectAlways,
                    _ => OptionKind::Unknown,
                },
            })
            .collect();
        let ask = Ask {
            tool_call: serde_json::to_value(&req.tool_call).unwrap_or(Value::Null),
            choices,
            options: serde_json::to_string(&req.options).unwrap_or_else(|_| "[]".into()),
            at_ms: now_ms(),
        };
        let (id, effects) = self.approvals.ask(ask, std::time::Instant::now());
        self.responders.insert(id, responder);
        self.apply(effects).await;
    }
}
