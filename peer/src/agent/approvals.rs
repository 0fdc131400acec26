//! The approval policy of one agent session, as a sans-IO state machine.
//!
//! [`Approvals`] holds the pending `session/request_permission` requests, who answered the
//! ones that are done, the host's [`Rules`], the session's grants ([`SessionGrant`]: what a
//! person allowed or rejected "always") and the one-turn grants for `terminal/create`. Every
//! input (a request, an answer, the clock, the end of a turn, a grant made or revoked) returns
//! [`Effect`]s, in order, for the session's actor to carry out: answer the agent, record an
//! event, write an audit row, move the wake-up deadline. It does no I/O and reads the clock
//! only through its arguments, so each rule is a unit test below.
//!
//! The rules (protocol.md §16.2 and §16.8, docs/agents.md):
//! - the first answer wins; a later one is refused with [`AnswerError::Conflict`] naming the
//!   winner;
//! - the policy's rules and the session's grants answer a request when it arrives
//!   ([`super::rules::judge`]): a rejection beats an allow, whatever their order;
//! - a request still pending at its deadline is rejected, `by: "timeout"`;
//! - a cancelled or ended turn, the agent's exit and the session's close answer every pending
//!   request `cancelled`;
//! - a person's `allow_always` / `reject_always` choice makes a grant of the session (for the
//!   tool call's one plain command, or for its kind), which answers later requests it covers;
//!   the agent is sent the request's `allow_once` / `reject_once` option instead, so the host,
//!   not the agent, remembers (and a revoked grant is gone). An "always" that no grant can
//!   hold (a compound command) counts once, with a `warning` event saying so;
//! - only a person's choice of an allow option, a rule or a grant approves anything; an option
//!   of a kind this host does not know, a cancellation or a timeout never does. A person's
//!   allow leaves a one-turn grant for one `terminal/create` of the command shown;
//! - one-turn grants are dropped when a turn starts, ends or is cancelled, and each is consumed
//!   once;
//! - every decision of the policy, every answer and every grant is audited.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod types;

pub use types::*;

use super::grants::Grant;
use super::rules::{Rules, SessionGrant, Subject, Verdict, always_scope, judge, scope_text};
use crate::proto::{AgentEventKind, GrantInfo, GrantScope, JsonText, ToolAction};
use crate::tool::what::describe;

#[derive(Debug)]
struct Pending {
    choices: Vec<Choice>,
    tool_call: Value,
    options: JsonText,
    at_ms: u64,
    deadline: Option<Instant>,
    /// The host's reading of the tool call, made once: the `permission` event and the
    /// listings carry the same one.
    what: Vec<ToolAction>,
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

    /// `id (name)` of each option, for errors.
    fn valid(&self) -> Vec<String> {
        let names: Vec<(String, String)> = serde_json::from_str::<Value>(&self.options)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|o| {
                let f = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                (f("optionId"), f("name"))
            })
            .collect();
        self.choices
            .iter()
            .map(|c| match names.iter().find(|(id, _)| *id == c.id) {
                Some((_, n)) if !n.is_empty() => format!("{} ({n})", c.id),
                _ => c.id.clone(),
            })
            .collect()
    }
}

/// A one-turn grant taken by [`Approvals::may_run`]; [`Approvals::give_back`] returns it if
/// its command could not be started.
#[derive(Debug)]
pub struct Taken {
    index: usize,
    grant: Grant,
}

/// Why a `terminal/create` may run.
#[derive(Debug)]
pub enum Permit {
    /// A person allowed this command in this turn.
    Turn(Taken),
    /// A rule or a grant of the session allows it; the text says which.
    Policy(String),
}

impl Permit {
    /// The approval that allowed it (0: a rule or a grant did).
    pub fn approval(&self) -> u64 {
        match self {
            Permit::Turn(t) => t.grant.approval,
            Permit::Policy(_) => 0,
        }
    }
}

/// One session's approvals: see the module docs.
#[derive(Debug)]
pub struct Approvals {
    rules: Rules,
    timeout: Option<Duration>,
    pending: BTreeMap<u64, Pending>,
    answered: HashMap<u64, String>,
    next: u64,
    turn_grants: Vec<Grant>,
    grants: Vec<SessionGrant>,
    next_grant: u64,
    session: u64,
    deadline: Option<Instant>,
}

impl Approvals {
    /// The host's rules and timeout; approval numbers start at `next_approval`.
    pub fn new(rules: Rules, timeout: Option<Duration>, next_approval: u64) -> Approvals {
        Approvals {
            rules,
            timeout,
            pending: BTreeMap::new(),
            answered: HashMap::new(),
            next: next_approval.max(1),
            turn_grants: Vec::new(),
            grants: Vec::new(),
            next_grant: 1,
            session: 0,
            deadline: None,
        }
    }

    /// The session's grants as they were (from its `grant` and `grant_revoked` events).
    pub fn with_grants(mut self, session: u64, grants: Vec<SessionGrant>, next_grant: u64) -> Self {
        self.session = session;
        self.next_grant = next_grant.max(1);
        self.grants = grants;
        self
    }

    /// Requests waiting for an answer.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Requests waiting for an answer, by number.
    pub fn pending_list(&self) -> Vec<PendingView> {
        self.pending
            .iter()
            .map(|(id, p)| PendingView {
                approval: *id,
                tool_call: p.tool_call.to_string(),
                options: p.options.clone(),
                at_ms: p.at_ms,
                what: p.what.clone(),
            })
            .collect()
    }

    /// The session's grants, by number.
    pub fn grants(&self) -> Vec<GrantInfo> {
        self.grants.iter().map(|g| g.info.clone()).collect()
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

    /// The agent asks. Returns the request's number; the rules or a grant may answer it at
    /// once.
    pub fn ask(&mut self, ask: Ask, now: Instant) -> (u64, Vec<Effect>) {
        let id = self.next;
        self.next += 1;
        let what = describe(&ask.tool_call).what;
        let mut effects = vec![Effect::Emit(AgentEventKind::Permission {
            approval: id,
            tool_call: ask.tool_call.to_string(),
            options: ask.options.clone(),
            what: Some(what.clone()),
        })];
        let verdict = judge(
            &self.rules,
            &mut self.grants,
            &Subject::of_tool(&ask.tool_call),
        );
        let p = Pending {
            choices: ask.choices,
            tool_call: ask.tool_call,
            options: ask.options,
            at_ms: ask.at_ms,
            deadline: self.timeout.map(|t| now + t),
            what,
        };
        // An allow needs an allow_once option; without one a person decides.
        let decision = match &verdict {
            Some(Verdict::Reject(by)) => Some((p.reject(), by.clone())),
            Some(Verdict::Allow(by)) => p
                .first(&[OptionKind::AllowOnce])
                .map(|o| (Some(o), by.clone())),
            None => None,
        };
        if verdict
            .as_ref()
            .is_some_and(|v| v.by().starts_with("grant "))
        {
            effects.push(Effect::Grants);
        }
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
                valid: p.valid(),
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

    /// A turn starts or ends, is cancelled, the agent exits or the session closes: one-turn
    /// grants are dropped and (except at a turn's start) every pending request is answered
    /// `cancelled`.
    pub fn end(&mut self, end: End) -> Vec<Effect> {
        self.turn_grants.clear();
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
        // "Always" is kept by the host (a grant), not by the agent: the "once" option goes.
        let forward = match kind {
            OptionKind::AllowAlways => p.first(&[OptionKind::AllowOnce]).or(option.clone()),
            OptionKind::RejectAlways => p.first(&[OptionKind::RejectOnce]).or(option.clone()),
            _ => option.clone(),
        };
        let person = matches!(by, Decider::Person { .. });
        if person && kind.allows() {
            self.turn_grants
                .extend(Grant::from_tool_call(id, &p.tool_call));
        }
        self.answered.insert(id, by.name().to_string());
        let what = describe(&p.tool_call).summary();
        let mut effects = vec![
            Effect::Answer {
                approval: id,
                option: forward.clone(),
            },
            Effect::Emit(AgentEventKind::PermissionResolved {
                approval: id,
                forwarded: (forward != option).then_some(forward).flatten(),
                option_id: option.clone(),
                by: by.name().to_string(),
                device: by.device(),
            }),
        ];
        let outcome = match (kind, &option) {
            (_, None) => "cancelled".to_string(),
            (k, Some(o)) => format!(
                "{} ({o})",
                match k {
                    OptionKind::AllowOnce => "allowed once",
                    OptionKind::AllowAlways => "allowed always",
                    OptionKind::RejectOnce => "rejected once",
                    OptionKind::RejectAlways => "rejected always",
                    OptionKind::Unknown => "answered with an option of unknown kind",
                }
            ),
        };
        match &by {
            Decider::Person { device, .. } => effects.push(Effect::Audit {
                device: device.clone(),
                event: "agent.answer",
                detail: format!("approval {id}: {outcome}: {what}"),
            }),
            Decider::Policy(rule) => effects.push(Effect::Audit {
                device: None,
                event: "agent.policy",
                detail: format!("approval {id}: {outcome} by {rule}: {what}"),
            }),
            Decider::Host(h) if h == "timeout" => effects.push(Effect::Audit {
                device: None,
                event: "agent.policy",
                detail: format!("approval {id}: {outcome} by timeout: {what}"),
            }),
            Decider::Host(_) => {}
        }
        if person && matches!(kind, OptionKind::AllowAlways | OptionKind::RejectAlways) {
            let allow = kind == OptionKind::AllowAlways;
            match always_scope(&p.tool_call) {
                Ok(scope) => {
                    if let Ok((_, more)) = self.add_grant(scope, allow, by.clone(), Some(id), 0) {
                        effects.extend(more);
                    }
                }
                Err(why) => effects.push(Effect::Emit(AgentEventKind::Warning {
                    message: format!(
                        "approval {id}: \u{201c}always\u{201d} counts this once: {why}; `peer agent \
                         grants add` makes a grant of your own"
                    ),
                })),
            }
        }
        effects
    }

    /// Makes a grant of the session (`approval`: the approval whose "always" answer made it;
    /// `at_ms`: when, 0 for the time its event is recorded).
    pub fn add_grant(
        &mut self,
        scope: GrantScope,
        allow: bool,
        by: Decider,
        approval: Option<u64>,
        at_ms: u64,
    ) -> Result<(GrantInfo, Vec<Effect>), GrantError> {
        let info = GrantInfo {
            session: self.session,
            grant: self.next_grant,
            scope: scope.clone(),
            allow,
            by: by.name().to_string(),
            approval,
            at_ms,
            used: 0,
        };
        let g = SessionGrant::new(info.clone()).map_err(GrantError::Bad)?;
        self.next_grant += 1;
        let detail = format!(
            "grant {}: {} {}{}",
            info.grant,
            if allow {
                "always allow"
            } else {
                "always reject"
            },
            scope_text(&scope),
            approval.map_or(String::new(), |a| format!(" (from approval {a})"))
        );
        self.grants.push(g);
        let effects = vec![
            Effect::Emit(AgentEventKind::Grant {
                grant: info.grant,
                scope,
                allow,
                by: by.name().to_string(),
                device: by.device(),
                approval,
            }),
            Effect::Audit {
                device: by.device(),
                event: "agent.grant",
                detail,
            },
            Effect::Grants,
        ];
        Ok((info, effects))
    }

    /// Revokes a grant of the session.
    pub fn revoke_grant(&mut self, grant: u64, by: Decider) -> Result<Vec<Effect>, GrantError> {
        let i = self
            .grants
            .iter()
            .position(|g| g.info.grant == grant)
            .ok_or(GrantError::NotFound(grant))?;
        let g = self.grants.remove(i);
        Ok(vec![
            Effect::Emit(AgentEventKind::GrantRevoked {
                grant,
                by: by.name().to_string(),
                device: by.device(),
            }),
            Effect::Audit {
                device: by.device(),
                event: "agent.grant",
                detail: format!("grant {grant} revoked: {}", g.what()),
            },
            Effect::Grants,
        ])
    }

    /// Whether `command args` may run in `cwd` (resolved; `root` is the worktree; `canon`
    /// resolves a directory a tool call showed): a rule or grant that rejects it wins; else a
    /// one-turn grant of this command is consumed; else a rule or grant of the session that
    /// allows it.
    pub fn may_run(
        &mut self,
        command: &str,
        args: &[String],
        cwd: &Path,
        root: &Path,
        canon: impl Fn(&Path) -> std::path::PathBuf,
    ) -> Result<Permit, GateError> {
        let verdict = judge(
            &self.rules,
            &mut self.grants,
            &Subject::of_command(command, args),
        );
        if let Some(Verdict::Reject(by)) = verdict {
            return Err(GateError::Denied(by));
        }
        if let Some(index) = self
            .turn_grants
            .iter()
            .position(|g| g.allows(command, args, cwd, root, &canon))
        {
            return Ok(Permit::Turn(Taken {
                index,
                grant: self.turn_grants.remove(index),
            }));
        }
        match verdict {
            Some(Verdict::Allow(by)) => Ok(Permit::Policy(by)),
            _ if self.turn_grants.is_empty() => Err(GateError::NoGrant),
            _ => Err(GateError::Mismatch),
        }
    }

    /// Returns a one-turn grant whose command failed to start: it stays usable in this turn.
    pub fn give_back(&mut self, permit: Permit) {
        if let Permit::Turn(taken) = permit {
            let i = taken.index.min(self.turn_grants.len());
            self.turn_grants.insert(i, taken.grant);
        }
    }
}

#[cfg(test)]
mod tests;
