//! From events to notices, sans-IO: which agent and PTY events are worth telling a person who
//! is not looking, in what words, and the push payload that carries them.
//!
//! Agent events arrive in each session's order. A `permission` event is a notice only if no
//! policy rule answers it: the policy answers in the same step, so its `permission_resolved` is
//! the session's very next event. A `permission` is therefore held as a candidate until the
//! session's next event (dropped if that resolves it) or [`SETTLE`] (when nothing follows, as
//! with a second approval while one is already pending).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::proto::{
    AgentEvent, AgentEventKind, AgentState, ExitInfo, Notice, NoticeKind, NoticeSession, StopReason,
};
use crate::webpush::Urgency;
use crate::webpush::ece::MAX_DATA;

/// How long a `permission` waits for the session's next event before it is a notice.
pub const SETTLE: Duration = Duration::from_millis(300);
/// The longest title and body a notice carries, characters.
pub const MAX_TITLE: usize = 80;
/// See [`MAX_TITLE`].
pub const MAX_BODY: usize = 240;

#[derive(Debug)]
struct Candidate {
    session: u64,
    approval: u64,
    notice: Notice,
    deadline: Instant,
}

#[derive(Debug, Default)]
struct AgentTrack {
    /// Approvals asked and not answered.
    open: BTreeSet<u64>,
    /// The text of the agent's last message in this turn.
    words: String,
    /// The last update was a message chunk (a new chunk after anything else starts a new
    /// message).
    in_message: bool,
}

/// Turns events into notices. One per host.
#[derive(Debug, Default)]
pub struct Deriver {
    candidates: Vec<Candidate>,
    agents: HashMap<u64, AgentTrack>,
}

/// Cuts `s` to at most `max` characters (with `…`), on one line.
pub fn clip(s: &str, max: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn notice(
    kind: NoticeKind,
    session: NoticeSession,
    title: String,
    body: String,
    at_ms: u64,
) -> Notice {
    Notice {
        kind,
        session,
        title: clip(&title, MAX_TITLE),
        body: clip(&body, MAX_BODY),
        at_ms,
        approval: None,
    }
}

/// What a tool call is, in a few words: its title, else its kind.
fn tool_title(tool_call: &str) -> String {
    let v: Value = serde_json::from_str(tool_call).unwrap_or(Value::Null);
    let title = v.get("title").and_then(Value::as_str).unwrap_or("").trim();
    if !title.is_empty() {
        return title.to_string();
    }
    match v.get("kind").and_then(Value::as_str) {
        Some(kind) => format!("a tool call ({kind})"),
        None => "a tool call".into(),
    }
}

fn turn_failure(reason: &StopReason) -> Option<(String, String)> {
    Some(match reason {
        StopReason::EndTurn
        | StopReason::Cancelled
        | StopReason::Closed
        // The agent failed: its own notice follows.
        | StopReason::Failed => return None,
        StopReason::MaxTokens => ("ran out of tokens".into(), String::new()),
        StopReason::MaxTurnRequests => ("made too many requests in one turn".into(), String::new()),
        StopReason::Refusal => ("refused to go on".into(), String::new()),
        StopReason::Interrupted { reason } => ("was cut off".into(), reason.clone()),
        StopReason::Error { error } => ("stopped with an error".into(), error.clone()),
        StopReason::Other { name } => (format!("stopped ({name})"), String::new()),
    })
}

impl Deriver {
    /// Takes the next stored event of agent session `ev.session`, whose agent is `agent`.
    pub fn agent_event(&mut self, ev: &AgentEvent, agent: &str, now: Instant) -> Vec<Notice> {
        let id = ev.session;
        let mut out = Vec::new();
        if let Some(i) = self.candidates.iter().position(|c| c.session == id) {
            let c = self.candidates.remove(i);
            let answered_at_once = matches!(
                ev.event,
                AgentEventKind::PermissionResolved { approval, .. } if approval == c.approval
            );
            if !answered_at_once {
                out.push(c.notice);
            }
        }
        let session = NoticeSession::Agent(id);
        let track = self.agents.entry(id).or_default();
        match &ev.event {
            AgentEventKind::Permission {
                approval,
                tool_call,
                ..
            } => {
                track.open.insert(*approval);
                let mut n = notice(
                    NoticeKind::Approval,
                    session,
                    format!("{agent} needs approval"),
                    tool_title(tool_call),
                    ev.at_ms,
                );
                n.approval = Some(*approval);
                self.candidates.push(Candidate {
                    session: id,
                    approval: *approval,
                    notice: n,
                    deadline: now + SETTLE,
                });
            }
            AgentEventKind::PermissionResolved { approval, .. } => {
                track.open.remove(approval);
            }
            AgentEventKind::TurnStart { .. } => {
                track.words.clear();
                track.in_message = false;
            }
            AgentEventKind::Update { update } => {
                let v: Value = serde_json::from_str(update).unwrap_or(Value::Null);
                let chunk = (v.get("sessionUpdate").and_then(Value::as_str)
                    == Some("agent_message_chunk"))
                .then(|| v.pointer("/content/text").and_then(Value::as_str))
                .flatten();
                match chunk {
                    Some(text) => {
                        if !track.in_message {
                            track.words.clear();
                        }
                        track.in_message = true;
                        if track.words.len() < 4 * MAX_BODY {
                            track.words.push_str(text);
                        }
                    }
                    None => track.in_message = false,
                }
            }
            AgentEventKind::TurnEnd { stop_reason } => {
                let words = std::mem::take(&mut track.words);
                track.in_message = false;
                if *stop_reason == StopReason::EndTurn {
                    let body = if words.trim().is_empty() {
                        "The turn is over.".to_string()
                    } else {
                        words
                    };
                    out.push(notice(
                        NoticeKind::TurnEnd,
                        session,
                        format!("{agent} finished"),
                        body,
                        ev.at_ms,
                    ));
                } else if let Some((what, detail)) = turn_failure(stop_reason) {
                    out.push(notice(
                        NoticeKind::TurnFailed,
                        session,
                        format!("{agent} {what}"),
                        if detail.is_empty() { words } else { detail },
                        ev.at_ms,
                    ));
                }
            }
            AgentEventKind::State {
                state: AgentState::Failed,
                detail,
            } => {
                out.push(notice(
                    NoticeKind::AgentFailed,
                    session,
                    format!("{agent} stopped"),
                    detail
                        .clone()
                        .unwrap_or_else(|| "The agent is not running.".into()),
                    ev.at_ms,
                ));
                self.forget(id);
            }
            AgentEventKind::State {
                state: AgentState::Done,
                ..
            } => self.forget(id),
            _ => {}
        }
        out
    }

    fn forget(&mut self, id: u64) {
        self.agents.remove(&id);
        self.candidates.retain(|c| c.session != id);
    }

    /// Candidates whose time is up.
    pub fn tick(&mut self, now: Instant) -> Vec<Notice> {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.candidates)
            .into_iter()
            .partition(|c| c.deadline <= now);
        self.candidates = keep;
        due.into_iter().map(|c| c.notice).collect()
    }

    /// When [`Deriver::tick`] has work next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.candidates.iter().map(|c| c.deadline).min()
    }

    /// Whether approval `approval` of agent session `session` is still unanswered.
    pub fn is_open(&self, session: u64, approval: u64) -> bool {
        self.agents
            .get(&session)
            .is_some_and(|t| t.open.contains(&approval))
    }
}

/// The notice for a PTY session that ended; `what` is its name or command line.
pub fn session_ended(id: u64, what: &str, status: &ExitInfo, at_ms: u64) -> Notice {
    let how = match &status.signal {
        Some(sig) => format!("killed by {sig}"),
        None => format!("exit {}", status.code),
    };
    notice(
        NoticeKind::SessionEnded,
        NoticeSession::Pty(id),
        format!("Session {id} ended ({how})"),
        what.to_string(),
        at_ms,
    )
}

/// The notice for a PTY session's bell.
pub fn bell(id: u64, what: &str, at_ms: u64) -> Notice {
    notice(
        NoticeKind::Bell,
        NoticeSession::Pty(id),
        format!("Bell in session {id}"),
        what.to_string(),
        at_ms,
    )
}

/// The tag a device's notification carries: one per host and session, so a newer notice
/// replaces an older one for the same session.
pub fn tag(host_id: &str, session: NoticeSession) -> String {
    let short = &host_id[..host_id.len().min(16)];
    match session {
        NoticeSession::Pty(id) => format!("peer-{short}-p{id}"),
        NoticeSession::Agent(id) => format!("peer-{short}-a{id}"),
    }
}

/// How urgent a kind is, and how long the push service keeps it for a device that is off.
pub fn delivery(kind: NoticeKind) -> (Urgency, u32) {
    match kind {
        NoticeKind::Approval => (Urgency::High, 12 * 3600),
        NoticeKind::TurnEnd | NoticeKind::TurnFailed | NoticeKind::AgentFailed => {
            (Urgency::Normal, 24 * 3600)
        }
        NoticeKind::SessionEnded => (Urgency::Low, 24 * 3600),
        NoticeKind::Bell => (Urgency::Normal, 3600),
    }
}

/// The JSON a device's service worker gets (protocol.md §17.4), at most
/// [`MAX_DATA`] bytes: the body is shortened until it fits.
pub fn payload(n: &Notice, host_id: &str, host_name: &str) -> Vec<u8> {
    let mut body = n.body.clone();
    loop {
        let v = serde_json::json!({
            "v": 1,
            "host": host_id,
            "host_name": clip(host_name, 64),
            "kind": n.kind,
            "session": n.session,
            "title": n.title,
            "body": body,
            "tag": tag(host_id, n.session),
            "at_ms": n.at_ms,
            "approval": n.approval,
        });
        let bytes = v.to_string().into_bytes();
        if bytes.len() <= MAX_DATA || body.is_empty() {
            return bytes;
        }
        let keep = body.chars().count() * 3 / 4;
        body = clip(&body, keep);
        if keep <= 1 {
            body.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, event: AgentEventKind) -> AgentEvent {
        AgentEvent {
            session: 7,
            seq,
            at_ms: 1000 + seq,
            event,
        }
    }

    fn permission(approval: u64) -> AgentEventKind {
        AgentEventKind::Permission {
            approval,
            tool_call: r#"{"toolCallId":"t","title":"Run echo hi","kind":"execute"}"#.into(),
            options: "[]".into(),
            what: None,
        }
    }

    fn resolved(approval: u64, by: &str) -> AgentEventKind {
        AgentEventKind::PermissionResolved {
            approval,
            option_id: Some("allow".into()),
            forwarded: None,
            by: by.into(),
            device: None,
        }
    }

    fn state(state: AgentState) -> AgentEventKind {
        AgentEventKind::State {
            state,
            detail: None,
        }
    }

    #[test]
    fn an_approval_the_policy_answers_at_once_is_no_notice() {
        let mut d = Deriver::default();
        let t = Instant::now();
        assert!(d.agent_event(&ev(1, permission(1)), "claude", t).is_empty());
        assert!(d.is_open(7, 1));
        assert!(
            d.agent_event(&ev(2, resolved(1, "policy (reads allowed)")), "claude", t)
                .is_empty()
        );
        assert!(!d.is_open(7, 1));
        assert!(d.tick(t + SETTLE * 2).is_empty());
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn an_approval_that_waits_is_a_notice_at_the_next_event_or_after_the_settle_time() {
        let mut d = Deriver::default();
        let t = Instant::now();
        assert!(d.agent_event(&ev(1, permission(1)), "claude", t).is_empty());
        let out = d.agent_event(&ev(2, state(AgentState::WaitingApproval)), "claude", t);
        assert_eq!(out.len(), 1);
        let n = &out[0];
        assert_eq!(n.kind, NoticeKind::Approval);
        assert_eq!(n.session, NoticeSession::Agent(7));
        assert_eq!(
            (n.title.as_str(), n.body.as_str()),
            ("claude needs approval", "Run echo hi")
        );
        assert_eq!((n.approval, n.at_ms), (Some(1), 1001));
        // A second one while the first waits: nothing follows it, the settle time does.
        assert!(d.agent_event(&ev(3, permission(2)), "claude", t).is_empty());
        assert_eq!(d.next_deadline(), Some(t + SETTLE));
        assert!(d.tick(t + SETTLE / 2).is_empty());
        assert_eq!(d.tick(t + SETTLE)[0].approval, Some(2));
        // A person's answer later closes it.
        d.agent_event(&ev(4, resolved(2, "phone")), "claude", t);
        assert!(d.is_open(7, 1) && !d.is_open(7, 2));
    }

    #[test]
    fn turns_that_end_say_how_with_the_agents_last_words() {
        let mut d = Deriver::default();
        let t = Instant::now();
        let chunk = |text: &str| {
            AgentEventKind::Update {
            update: serde_json::json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}).to_string(),
        }
        };
        let tool = AgentEventKind::Update {
            update: r#"{"sessionUpdate":"tool_call","toolCallId":"x"}"#.into(),
        };
        d.agent_event(
            &ev(1, AgentEventKind::TurnStart { text: "go".into() }),
            "codex",
            t,
        );
        d.agent_event(&ev(2, chunk("Looking")), "codex", t);
        d.agent_event(&ev(3, tool), "codex", t);
        d.agent_event(&ev(4, chunk("All tests ")), "codex", t);
        d.agent_event(&ev(5, chunk("pass.\n\nDone")), "codex", t);
        let end = |reason| AgentEventKind::TurnEnd {
            stop_reason: reason,
        };
        let out = d.agent_event(&ev(6, end(StopReason::EndTurn)), "codex", t);
        assert_eq!(out[0].kind, NoticeKind::TurnEnd);
        assert_eq!(
            (out[0].title.as_str(), out[0].body.as_str()),
            ("codex finished", "All tests pass. Done")
        );
        for quiet in [
            StopReason::Cancelled,
            StopReason::Closed,
            StopReason::Failed,
        ] {
            assert!(d.agent_event(&ev(7, end(quiet)), "codex", t).is_empty());
        }
        let out = d.agent_event(
            &ev(
                8,
                end(StopReason::Error {
                    error: "rate limited".into(),
                }),
            ),
            "codex",
            t,
        );
        assert_eq!(out[0].kind, NoticeKind::TurnFailed);
        assert_eq!(
            (out[0].title.as_str(), out[0].body.as_str()),
            ("codex stopped with an error", "rate limited")
        );
        let failed = AgentEventKind::State {
            state: AgentState::Failed,
            detail: Some("the agent exited with status 3".into()),
        };
        let out = d.agent_event(&ev(9, failed), "codex", t);
        assert_eq!(out[0].kind, NoticeKind::AgentFailed);
        assert_eq!(out[0].body, "the agent exited with status 3");
    }

    #[test]
    fn payloads_fit_one_padded_record_and_name_host_and_session() {
        let mut n = session_ended(
            3,
            "make test",
            &ExitInfo {
                code: 2,
                signal: None,
            },
            5,
        );
        assert_eq!(n.title, "Session 3 ended (exit 2)");
        let host = "ab".repeat(32);
        let v: Value = serde_json::from_slice(&payload(&n, &host, "studio")).expect("json");
        assert_eq!(v["session"], serde_json::json!({"pty": 3}));
        assert_eq!(v["tag"], format!("peer-{}-p3", &host[..16]));
        assert_eq!(v["kind"], "session_ended");
        // Quotes and control characters grow in JSON: still one record.
        n.body = "\"\u{1}".repeat(MAX_BODY);
        let p = payload(&n, &host, &"h".repeat(500));
        assert!(p.len() <= MAX_DATA, "{}", p.len());
        let v: Value = serde_json::from_slice(&p).expect("json");
        assert!(v["body"].as_str().expect("body").chars().count() < MAX_BODY);
        assert_eq!(clip("a\n b   c", 10), "a b c");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
