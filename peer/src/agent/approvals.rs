//! The approval policy of one agent session, as a sans-IO state machine.
//!
//! [`Approvals`] holds the pending `session/request_permission` requests, who answered the
//! ones that are done, the policy's rules and the grants for `terminal/create`. Every input
//! (a request, an answer, the clock, the end of a turn) returns [`Effect`]s, in order, for the
//! session's actor to carry out: answer the agent, record an event, move the wake-up
//! deadline. It does no I/O and reads the clock only through its arguments, so each rule is a
//! unit test below.
//!
//! The rules (protocol.md §16.2 and §16.8):
//! - the first answer wins; a later one is refused with [`AnswerError::Conflict`] naming the
//!   winner;
//! - the policy's [`Rule`]s answer a request when it arrives; a rejecting rule beats an
//!   allowing one, whatever their order;
//! - a request still pending at its deadline is rejected, `by: "timeout"`;
//! - a cancelled or ended turn, the agent's exit and the session's close answer every pending
//!   request `cancelled`;
//! - an `allow_always` / `reject_always` choice is passed on as the request's `allow_once` /
//!   `reject_once` option, if it has one (an agent that remembers "always" would not ask
//!   again);
//! - only a person's choice of an allow option approves anything: it leaves a [`Grant`] for
//!   one `terminal/create` in the same turn. Rejections, cancellations, policy answers,
//!   timeouts and options of a kind this host does not know leave none;
//! - grants are dropped when a turn starts, ends or is cancelled, and each is consumed once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::config::{Policy, PolicyMode};
use super::grants::Grant;
use crate::proto::{AgentEventKind, JsonText};

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
}

/// Who answered a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// A person, through a device (`AgentAnswer`).
    Person {
        /// Device name.
        name: String,
        /// Device id (hex).
        device: Option<String>,
    },
    /// A rule of the host's policy; the text says which (`policy (deny list: …)`).
    Policy(String),
    /// The host: `timeout`, `turn ended`, `cancelled by NAME`, `the agent exited`, …
    Host(String),
}

impl Decider {
    fn name(&self) -> &str {
        match self {
            Decider::Person { name, .. } | Decider::Policy(name) | Decider::Host(name) => name,
        }
    }

    fn device(&self) -> Option<String> {
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
    #[error("approval {approval} has no option {option:?}")]
    NoSuchOption {
        /// The approval.
        approval: u64,
        /// The option asked for.
        option: String,
    },
}

/// Why a `terminal/create` is not covered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// No grant in this turn.
    #[error("not approved: no one allowed a command in this turn")]
    NoGrant,
    /// Grants, but for other commands.
    #[error("not approved: this command is not the one that was allowed")]
    Mismatch,
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

/// A rule of the policy: it answers a request when it arrives, or lets it wait for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Reject tool calls whose `title` or `rawInput` (as JSON text) contains one of these.
    Deny(Vec<String>),
    /// Allow once tool calls of these kinds (e.g. `read`, `search`); `why` is recorded as
    /// `by: "policy (WHY)"`.
    AllowKinds {
        /// ACP tool call kinds.
        kinds: Vec<String>,
        /// What the rule is, in a few words (`reads allowed`).
        why: String,
    },
}

enum Verdict {
    Reject(String),
    Allow(String),
}

impl Rule {
    fn judge(&self, tool: &Value) -> Option<Verdict> {
        match self {
            Rule::Deny(words) => {
                let haystack = format!(
                    "{} {}",
                    tool.get("title").and_then(Value::as_str).unwrap_or(""),
                    tool.get("rawInput")
                        .map(Value::to_string)
                        .unwrap_or_default()
                );
                words
                    .iter()
                    .find(|w| haystack.contains(w.as_str()))
                    .map(|w| Verdict::Reject(format!("policy (deny list: {w})")))
            }
            Rule::AllowKinds { kinds, why } => {
                let kind = tool.get("kind").and_then(Value::as_str)?;
                kinds
                    .iter()
                    .any(|k| k == kind)
                    .then(|| Verdict::Allow(format!("policy ({why})")))
            }
        }
    }
}

#[derive(Debug)]
struct Pending {
    choices: Vec<Choice>,
    tool_call: Value,
    deadline: Option<Instant>,
}

impl Pending {
    fn first(&self, kinds: &[OptionKind]) -> Option<String> {
        kinds
            .iter()
            .find_map(|k| self.choices.iter().find(|c| c.kind == *k))
            .map(|c| c.id.clone())
    }

    fn reject(&self) -> Option<String> {
        self.first(&[OptionKind::RejectOnce, OptionKind::RejectAlways])
    }
}

/// A grant taken by [`Approvals::take_grant`]; [`Approvals::give_back`] returns it if its
/// command could not be started.
#[derive(Debug)]
pub struct Taken {
    index: usize,
    grant: Grant,
}

impl Taken {
    /// The approval that gave it.
    pub fn approval(&self) -> u64 {
        self.grant.approval
    }
}

/// One session's approvals: see the module docs.
#[derive(Debug)]
pub struct Approvals {
    rules: Vec<Rule>,
    timeout: Option<Duration>,
    pending: BTreeMap<u64, Pending>,
    answered: HashMap<u64, String>,
    next: u64,
    grants: Vec<Grant>,
    deadline: Option<Instant>,
}

impl Approvals {
    /// The host's policy (`agents.toml`); approval numbers start at `next_approval`.
    pub fn new(policy: &Policy, next_approval: u64) -> Approvals {
        let mut rules = Vec::new();
        if !policy.deny.is_empty() {
            rules.push(Rule::Deny(policy.deny.clone()));
        }
        if policy.mode == PolicyMode::AllowReads {
            rules.push(Rule::AllowKinds {
                kinds: vec!["read".into(), "search".into()],
                why: "reads allowed".into(),
            });
        }
        let timeout = (policy.timeout_secs > 0).then(|| Duration::from_secs(policy.timeout_secs));
        Approvals::with_rules(rules, timeout, next_approval)
    }

    /// Explicit rules and timeout.
    pub fn with_rules(rules: Vec<Rule>, timeout: Option<Duration>, next_approval: u64) -> Self {
        Approvals {
            rules,
            timeout,
            pending: BTreeMap::new(),
            answered: HashMap::new(),
            next: next_approval.max(1),
            grants: Vec::new(),
            deadline: None,
        }
    }

    /// Requests waiting for an answer.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// When [`Approvals::expire`] has work next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().filter_map(|p| p.deadline).min()
    }

    /// Appends a [`Effect::Deadline`] if the earliest deadline moved.
    fn deadline_effect(&mut self, effects: &mut Vec<Effect>) {
        let d = self.next_deadline();
        if d != self.deadline {
            self.deadline = d;
            effects.push(Effect::Deadline(d));
        }
    }

    /// The agent asks. Returns the request's number; the policy may answer it at once.
    pub fn ask(&mut self, ask: Ask, now: Instant) -> (u64, Vec<Effect>) {
        let id = self.next;
        self.next += 1;
        let mut effects = vec![Effect::Emit(AgentEventKind::Permission {
            approval: id,
            tool_call: ask.tool_call.to_string(),
            options: ask.options,
        })];
        let verdicts: Vec<Verdict> = self
            .rules
            .iter()
            .filter_map(|r| r.judge(&ask.tool_call))
            .collect();
        let p = Pending {
            choices: ask.choices,
            tool_call: ask.tool_call,
            deadline: self.timeout.map(|t| now + t),
        };
        // A rejecting rule beats an allowing one; an allow needs an allow_once option.
        let decision = match verdicts.iter().find(|v| matches!(v, Verdict::Reject(_))) {
            Some(Verdict::Reject(by)) => Some((p.reject(), by.clone())),
            _ => verdicts.iter().find_map(|v| match v {
                Verdict::Allow(by) => p
                    .first(&[OptionKind::AllowOnce])
                    .map(|o| (Some(o), by.clone())),
                Verdict::Reject(_) => None,
            }),
        };
        self.pending.insert(id, p);
        if let Some((option, by)) = decision {
            effects.extend(self.resolve(id, option, Decider::Policy(by)));
        }
        self.deadline_effect(&mut effects);
        (id, effects)
    }

    /// A client's answer: `Some(optionId)` or `None` (cancelled).
    pub fn answer(
        &mut self,
        approval: u64,
        option: Option<String>,
        by: Decider,
    ) -> Result<Vec<Effect>, AnswerError> {
        let Some(p) = self.pending.get(&approval) else {
            return Err(match self.answered.get(&approval) {
                Some(winner) => AnswerError::Conflict {
                    approval,
                    winner: winner.clone(),
                },
                None => AnswerError::NotFound(approval),
            });
        };
        if let Some(o) = &option
            && !p.choices.iter().any(|c| &c.id == o)
        {
            return Err(AnswerError::NoSuchOption {
                approval,
                option: o.clone(),
            });
        }
        let mut effects = self.resolve(approval, option, by);
        self.deadline_effect(&mut effects);
        Ok(effects)
    }

    /// Rejects the requests whose deadline is not after `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<Effect> {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        let mut effects = Vec::new();
        for id in due {
            let reject = self.pending.get(&id).and_then(Pending::reject);
            effects.extend(self.resolve(id, reject, Decider::Host("timeout".into())));
        }
        self.deadline_effect(&mut effects);
        effects
    }

    /// A turn starts or ends, is cancelled, the agent exits or the session closes: grants are
    /// dropped and (except at a turn's start) every pending request is answered `cancelled`.
    pub fn end(&mut self, end: End) -> Vec<Effect> {
        self.grants.clear();
        let why = match end {
            End::TurnStart => return Vec::new(),
            End::TurnEnd => "turn ended".to_string(),
            End::Cancel { by } => format!("cancelled by {by}"),
            End::AgentExit => "the agent exited".to_string(),
            End::Close => "session closed".to_string(),
        };
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        let mut effects = Vec::new();
        for id in ids {
            effects.extend(self.resolve(id, None, Decider::Host(why.clone())));
        }
        self.deadline_effect(&mut effects);
        effects
    }

    /// Requests that were pending when the host stopped: their agent process is gone, so
    /// they are recorded as cancelled (`host restart`) and answered by nobody.
    pub fn lost(&mut self, approvals: &[u64]) -> Vec<Effect> {
        approvals
            .iter()
            .map(|&approval| {
                let by = "host restart".to_string();
                self.answered.insert(approval, by.clone());
                self.next = self.next.max(approval + 1);
                Effect::Emit(AgentEventKind::PermissionResolved {
                    approval,
                    option_id: None,
                    forwarded: None,
                    by,
                    device: None,
                })
            })
            .collect()
    }

    /// Answers one pending request with `option` (known to be one of its options).
    fn resolve(&mut self, id: u64, option: Option<String>, by: Decider) -> Vec<Effect> {
        let Some(p) = self.pending.remove(&id) else {
            return Vec::new();
        };
        let kind = option.as_ref().map_or(OptionKind::Unknown, |o| {
            p.choices
                .iter()
                .find(|c| &c.id == o)
                .map_or(OptionKind::Unknown, |c| c.kind)
        });
        // "Always" is not passed on: the "once" option goes instead, if there is one.
        let forward = match kind {
            OptionKind::AllowAlways => p.first(&[OptionKind::AllowOnce]).or(option.clone()),
            OptionKind::RejectAlways => p.first(&[OptionKind::RejectOnce]).or(option.clone()),
            _ => option.clone(),
        };
        if matches!(by, Decider::Person { .. }) && kind.allows() {
            self.grants.extend(Grant::from_tool_call(id, &p.tool_call));
        }
        self.answered.insert(id, by.name().to_string());
        vec![
            Effect::Answer {
                approval: id,
                option: forward.clone(),
            },
            Effect::Emit(AgentEventKind::PermissionResolved {
                approval: id,
                forwarded: (forward != option).then_some(forward).flatten(),
                option_id: option,
                by: by.name().to_string(),
                device: by.device(),
            }),
        ]
    }

    /// Consumes the first grant of this turn that covers `command args` in `cwd` (resolved;
    /// `root` is the worktree). `canon` resolves a directory a tool call showed.
    pub fn take_grant(
        &mut self,
        command: &str,
        args: &[String],
        cwd: &Path,
        root: &Path,
        canon: impl Fn(&Path) -> std::path::PathBuf,
    ) -> Result<Taken, GateError> {
        if self.grants.is_empty() {
            return Err(GateError::NoGrant);
        }
        let index = self
            .grants
            .iter()
            .position(|g| g.allows(command, args, cwd, root, &canon))
            .ok_or(GateError::Mismatch)?;
        Ok(Taken {
            index,
            grant: self.grants.remove(index),
        })
    }

    /// Returns a grant whose command failed to start: it stays usable in this turn.
    pub fn give_back(&mut self, taken: Taken) {
        let i = taken.index.min(self.grants.len());
        self.grants.insert(i, taken.grant);
    }
}

#[cfg(test)]
mod tests;
