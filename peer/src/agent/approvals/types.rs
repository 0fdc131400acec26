//! The approval machine's inputs and outputs: options, requests, deciders, effects, errors.

use std::time::Instant;

use serde_json::Value;

use crate::proto::{AgentEventKind, JsonText, ToolAction};

/// What choosing an option means (ACP `PermissionOptionKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// Allow this once.
    AllowOnce,
    /// Allow this and remember it.
    AllowAlways,
    /// Reject this once.
    RejectOnce,
    /// Reject this and remember it.
    RejectAlways,
    /// A kind this host does not know: never an approval.
    Unknown,
}

impl OptionKind {
    /// Whether choosing it approves the tool call.
    pub fn allows(self) -> bool {
        matches!(self, OptionKind::AllowOnce | OptionKind::AllowAlways)
    }
}

/// One option the agent offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// `optionId`.
    pub id: String,
    /// What it means.
    pub kind: OptionKind,
}

/// A `session/request_permission`, as the policy sees it.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The ACP `ToolCallUpdate`, as JSON.
    pub tool_call: Value,
    /// The options offered, in order.
    pub choices: Vec<Choice>,
    /// The options' JSON text, for the `permission` event.
    pub options: JsonText,
    /// When it arrived, unix milliseconds (for listings).
    pub at_ms: u64,
}

/// Who answered a request, or made or revoked a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// A person, through a device (`AgentAnswer`, `AddGrant`, `RevokeGrant`).
    Person {
        /// Device name.
        name: String,
        /// Device id (hex).
        device: Option<String>,
    },
    /// A rule of the host's policy or a grant; the text says which (`policy (deny: …)`).
    Policy(String),
    /// The host: `timeout`, `turn ended`, `cancelled by NAME`, `the agent exited`, …
    Host(String),
}

impl Decider {
    pub(crate) fn name(&self) -> &str {
        match self {
            Decider::Person { name, .. } | Decider::Policy(name) | Decider::Host(name) => name,
        }
    }

    pub(crate) fn device(&self) -> Option<String> {
        match self {
            Decider::Person { device, .. } => device.clone(),
            _ => None,
        }
    }
}

/// What the session's actor must do, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer the agent's request: `Some(optionId)` selected, `None` cancelled.
    Answer {
        /// The request.
        approval: u64,
        /// The option to send.
        option: Option<String>,
    },
    /// Record this event.
    Emit(AgentEventKind),
    /// The earliest deadline changed: call [`Approvals::expire`] then (`None`: no deadline).
    Deadline(Option<Instant>),
    /// Write a row of the host's audit log (the actor adds the session id).
    Audit {
        /// The device that acted, hex, if one did.
        device: Option<String>,
        /// `agent.answer`, `agent.policy`, `agent.grant`.
        event: &'static str,
        /// What, in words.
        detail: String,
    },
    /// The session's grants changed: listings must be refreshed.
    Grants,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Someone (or something) answered first.
    #[error("approval {approval} was already answered by {winner}")]
    Conflict {
        /// The approval.
        approval: u64,
        /// Who answered it.
        winner: String,
    },
    /// The agent never asked this.
    #[error("no pending approval {0}")]
    NotFound(u64),
    /// The request has no such option.
    #[error("approval {approval} has no option {option:?}; its options: {}", valid.join(", "))]
    NoSuchOption {
        /// The approval.
        approval: u64,
        /// The option asked for.
        option: String,
        /// The options it has (`id (name)`).
        valid: Vec<String>,
    },
}

/// Why a `terminal/create` is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// No grant in this turn, and no rule or grant of the session covers it.
    #[error("not approved: no one allowed a command in this turn")]
    NoGrant,
    /// Grants, but for other commands.
    #[error("not approved: this command is not the one that was allowed")]
    Mismatch,
    /// A rule or a grant rejects it.
    #[error("rejected by {0}")]
    Denied(String),
}

/// Why a grant could not be made or revoked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// No such grant in this session.
    #[error("no grant {0} in this session")]
    NotFound(u64),
    /// The scope is not usable.
    #[error("{0}")]
    Bad(String),
}

/// What ends pending requests and grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A turn starts: the last turn's grants go.
    TurnStart,
    /// The turn ended (`turn ended`).
    TurnEnd,
    /// A client cancelled the turn (`cancelled by NAME`).
    Cancel {
        /// The client's name.
        by: String,
    },
    /// The agent exited (`the agent exited`).
    AgentExit,
    /// A client closed the session (`session closed`).
    Close,
}

/// A pending request, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingView {
    /// Its number.
    pub approval: u64,
    /// The tool call, as JSON text.
    pub tool_call: JsonText,
    /// The options, as JSON text.
    pub options: JsonText,
    /// When it arrived, unix milliseconds.
    pub at_ms: u64,
    /// What it will do, as the host reads it (the `permission` event's `what`).
    pub what: Vec<ToolAction>,
}
