//! An agent session's events as a person reads them in `peer agent attach`: words, not JSON;
//! tool-call titles, not ids; device names, not 64-hex ids; for every approval what would run
//! or change ([`crate::tool::what`]). Sans-IO: [`Transcript::event`] returns the lines to
//! print.
//!
//! Whatever came from the agent or another device is made visible by [`super::sanitize`]
//! and indented, so a line that starts at the left margin with `?`, `✓`, `--` or `!!` is
//! always peer's own: an agent can print "? approval 9" but it shows up inside its message,
//! after the message's margin.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::sanitize::{block, inline};
use crate::proto::{AgentEventKind, AgentState, ResumeMethod, StopReason};
use crate::tool::scope_text;
use crate::tool::what::{Described, DiffLine, What, describe_with, truncate};

/// Width of the margin in front of continued message lines.
const MARGIN: &str = "       ";

/// One option of an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// `optionId`.
    pub id: String,
    /// Its name, as the agent gave it.
    pub name: String,
    /// `allow_once`, `allow_always`, `reject_once`, `reject_always`, or what the agent said.
    pub kind: String,
}

/// An open approval.
#[derive(Debug, Clone)]
pub struct Open {
    /// The options, in order.
    pub options: Vec<Opt>,
    /// What it would do.
    pub what: Described,
}

/// Reads a `PermissionOption` list.
pub fn options(json: &str) -> Vec<Opt> {
    serde_json::from_str::<Value>(json)
        .ok()
        .as_ref()
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .map(|o| {
                    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    Opt {
                        id: s("optionId"),
                        name: s("name"),
                        kind: s("kind"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The lines that show an approval: its title, what it would run or change (the command and
/// its directory, `cwd` when the tool call names none; the files and their changes; the URL),
/// and its options, numbered.
pub fn approval_lines(approval: u64, what: &Described, opts: &[Opt], cwd: &str) -> Vec<String> {
    let title = if what.title.is_empty() {
        what.kind.clone()
    } else {
        what.title.clone()
    };
    let mut out = vec![format!(
        "? approval {approval}: {} [{}]",
        inline(&truncate(&title, 200)),
        inline(&what.kind)
    )];
    for w in &what.what {
        match w {
            What::Run { command, cwd: own } => {
                out.push(format!("    run    {}", inline(command)));
                match own {
                    Some(c) => out.push(format!("    in     {}", inline(c))),
                    None => out.push(format!(
                        "    in     {} (the agent's directory)",
                        inline(cwd)
                    )),
                }
            }
            What::Edit { path, diff } => {
                out.push(format!("    change {}", inline(path)));
                if diff.is_empty() {
                    out.push(format!("{MARGIN}(no change shown)"));
                }
                for l in diff {
                    out.push(match l {
                        DiffLine::Same(t) => format!("{MARGIN}  {}", inline(t)),
                        DiffLine::Del(t) => format!("{MARGIN}- {}", inline(t)),
                        DiffLine::Add(t) => format!("{MARGIN}+ {}", inline(t)),
                        DiffLine::Cut(t) => format!("{MARGIN}{}", inline(t)),
                    });
                }
            }
            What::File { path } => out.push(format!("    file   {}", inline(path))),
            What::Fetch { url } => out.push(format!("    fetch  {}", inline(url))),
            What::Search { query } => out.push(format!("    search {}", inline(query))),
        }
    }
    if what.what.is_empty() {
        out.push("    (the agent shows nothing more than the title)".into());
    }
    if !opts.is_empty() {
        let list: Vec<String> = opts
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let name = if o.name.is_empty() { &o.id } else { &o.name };
                format!("{}) {}", i + 1, inline(name))
            })
            .collect();
        out.push(format!("    {}", list.join("   ")));
    }
    out
}

/// What an attached terminal has seen of a session.
#[derive(Debug, Default)]
pub struct Transcript {
    /// The agent's directory, for commands that name none.
    cwd: String,
    /// The kind of message being streamed (`agent`, `thinking`, `user`) and the part of its
    /// current line not printed yet.
    inline: Option<(&'static str, String)>,
    /// Whether the current message has printed a line already (continued lines get the margin).
    started: bool,
    /// Tool call titles by id.
    tools: HashMap<String, String>,
    /// Approvals waiting for an answer.
    open: BTreeMap<u64, Open>,
    /// Options of every approval seen, for naming the answer.
    names: HashMap<u64, Vec<Opt>>,
    /// The agent's own commands (`available_commands_update`): name and description.
    commands: Vec<(String, String)>,
}

fn stop_words(r: &StopReason) -> Option<String> {
    Some(match r {
        StopReason::EndTurn => return None,
        StopReason::MaxTokens => "the agent hit its token limit".into(),
        StopReason::MaxTurnRequests => "the agent hit its limit of requests per turn".into(),
        StopReason::Refusal => "the agent refused".into(),
        StopReason::Cancelled => "cancelled".into(),
        StopReason::Failed => "the agent failed".into(),
        StopReason::Interrupted { reason } => format!("interrupted ({})", inline(reason)),
        StopReason::Closed => "the session was closed".into(),
        StopReason::Error { error } => format!("error: {}", inline(error)),
        StopReason::Other { name } => inline(&name.replace('_', " ")),
    })
}

fn state_words(s: AgentState) -> &'static str {
    match s {
        AgentState::Starting => "starting",
        AgentState::Running => "running",
        AgentState::WaitingApproval => "waiting for an approval",
        AgentState::Idle => "idle",
        AgentState::Done => "done",
        AgentState::Failed => "failed",
        AgentState::Interrupted => "interrupted (ready for a prompt)",
    }
}

/// The start of a message's first line: `agent: `, padded to the margin.
fn head(who: &str) -> String {
    format!(
        "{who}: {}",
        " ".repeat(MARGIN.len().saturating_sub(who.len() + 2))
    )
}

/// A multi-line text from someone else: the first line after `first`, the others after
/// the margin.
fn indented(first: &str, text: &str) -> Vec<String> {
    let text = block(text);
    let mut out = Vec::new();
    for (i, l) in text.split('\n').enumerate() {
        out.push(if i == 0 {
            format!("{first}{l}")
        } else {
            format!("{MARGIN}{l}")
        });
    }
    out
}

impl Transcript {
    /// A transcript of a session whose agent works in `cwd`.
    pub fn new(cwd: &str) -> Transcript {
        Transcript {
            cwd: cwd.to_string(),
            ..Transcript::default()
        }
    }

    /// Approvals waiting for an answer, oldest first.
    pub fn open(&self) -> &BTreeMap<u64, Open> {
        &self.open
    }

    /// The agent's own commands: name and description.
    pub fn commands(&self) -> &[(String, String)] {
        &self.commands
    }

    /// Whether part of a line of a message is waiting to be printed.
    pub fn has_partial(&self) -> bool {
        self.inline.as_ref().is_some_and(|(_, p)| !p.is_empty())
    }

    /// Prints what is pending of the message being streamed (a line not ended yet).
    pub fn flush(&mut self) -> Vec<String> {
        let Some((who, partial)) = self.inline.as_mut() else {
            return Vec::new();
        };
        if partial.is_empty() {
            return Vec::new();
        }
        let text = std::mem::take(partial);
        let first = if self.started {
            MARGIN.to_string()
        } else {
            head(who)
        };
        self.started = true;
        vec![format!("{first}{}", block(&text))]
    }

    /// Ends the message being streamed.
    fn end_inline(&mut self) -> Vec<String> {
        let out = self.flush();
        self.inline = None;
        self.started = false;
        out
    }

    fn chunk(&mut self, who: &'static str, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.inline.as_ref().is_some_and(|(w, _)| *w != who) {
            out.extend(self.end_inline());
        }
        let (_, partial) = self.inline.get_or_insert((who, String::new()));
        partial.push_str(text);
        // Complete lines go out now; the rest waits for more or a flush.
        while let Some(i) = self.inline.as_ref().and_then(|(_, p)| p.find('\n')) {
            let Some((_, partial)) = self.inline.as_mut() else {
                break;
            };
            let line: String = partial.drain(..=i).collect();
            let line = line.trim_end_matches('\n');
            let first = if self.started {
                MARGIN.to_string()
            } else {
                head(who)
            };
            self.started = true;
            out.push(format!("{first}{}", block(line)));
        }
        out
    }

    /// The lines that show one event.
    pub fn event(&mut self, ev: &AgentEventKind) -> Vec<String> {
        if let AgentEventKind::Update { update } = ev {
            let d: Value = serde_json::from_str(update).unwrap_or(Value::Null);
            let kind = d.get("sessionUpdate").and_then(Value::as_str).unwrap_or("");
            let text = || {
                d.get("content")
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            match kind {
                "agent_message_chunk" => return self.chunk("agent", &text()),
                "agent_thought_chunk" => return self.chunk("thinking", &text()),
                "user_message_chunk" => return self.chunk("user", &text()),
                _ => {}
            }
        }
        let mut out = self.end_inline();
        out.extend(self.lines(ev));
        out
    }

    fn lines(&mut self, ev: &AgentEventKind) -> Vec<String> {
        match ev {
            AgentEventKind::Update { update } => {
                let d: Value = serde_json::from_str(update).unwrap_or(Value::Null);
                self.update(&d)
            }
            AgentEventKind::State { state, detail } => vec![match detail {
                Some(d) => format!("-- {}: {}", state_words(*state), inline(d)),
                None => format!("-- {}", state_words(*state)),
            }],
            AgentEventKind::Started {
                agent_info, modes, ..
            } => {
                let info: Value = agent_info
                    .as_deref()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or(Value::Null);
                let s = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("");
                let name = [s("title"), s("name")]
                    .into_iter()
                    .find(|n| !n.is_empty())
                    .unwrap_or("the agent");
                let modes: Vec<String> = modes
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())
                    .and_then(|m| m.get("availableModes").and_then(Value::as_array).cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|m| m.get("id").and_then(Value::as_str).map(inline))
                    .collect();
                let mut line = format!("-- {} {} is ready", inline(name), inline(s("version")));
                if !modes.is_empty() {
                    line.push_str(&format!(" (modes: {}; /mode M switches)", modes.join(", ")));
                }
                vec![line.replace("  ", " ")]
            }
            AgentEventKind::Resumed { method, note, .. } => vec![match method {
                ResumeMethod::Load => "-- the agent reloaded the conversation".to_string(),
                ResumeMethod::Resume => "-- the agent resumed the conversation".to_string(),
                ResumeMethod::New => format!(
                    "!! the agent starts a new conversation: {}",
                    inline(note.as_deref().unwrap_or("it lost the old one"))
                ),
            }],
            AgentEventKind::Prompt {
                text, by, queued, ..
            } => {
                let mut lines = indented("> ", text);
                let who = format!(
                    "  ({}{})",
                    inline(by),
                    if *queued { ", queued" } else { "" }
                );
                if let Some(last) = lines.last_mut() {
                    last.push_str(&who);
                }
                lines
            }
            AgentEventKind::TurnStart { .. } => vec![],
            AgentEventKind::TurnEnd { stop_reason } => match stop_words(stop_reason) {
                Some(w) => vec![format!("-- turn ended: {w}")],
                None => vec!["-- turn ended".into()],
            },
            AgentEventKind::Permission {
                approval,
                tool_call,
                options: opts,
                what: said,
            } => {
                let tool: Value = serde_json::from_str(tool_call).unwrap_or(Value::Null);
                // The host's reading, when it sent one (events recorded before it did: ours).
                let mut what = describe_with(&tool, said.as_deref());
                if what.title.is_empty()
                    && let Some(t) = tool
                        .get("toolCallId")
                        .and_then(Value::as_str)
                        .and_then(|id| self.tools.get(id))
                {
                    what.title = t.clone();
                }
                let opts = options(opts);
                let mut lines = approval_lines(*approval, &what, &opts, &self.cwd);
                lines.push(format!(
                    "  answer with 1-{}{}",
                    opts.len().max(1),
                    if opts.iter().any(|o| o.kind.starts_with("allow"))
                        && opts.iter().any(|o| o.kind.starts_with("reject"))
                    {
                        ", y (allow once) or n (reject)"
                    } else {
                        ""
                    }
                ));
                self.names.insert(*approval, opts.clone());
                self.open.insert(
                    *approval,
                    Open {
                        options: opts,
                        what,
                    },
                );
                lines
            }
            AgentEventKind::PermissionResolved {
                approval,
                option_id,
                forwarded,
                by,
                ..
            } => {
                self.open.remove(approval);
                let opts = self.names.get(approval);
                let name = |id: &str| {
                    opts.and_then(|o| o.iter().find(|o| o.id == id))
                        .map(|o| {
                            if o.name.is_empty() {
                                o.id.clone()
                            } else {
                                o.name.clone()
                            }
                        })
                        .unwrap_or_else(|| id.to_string())
                };
                let kind = option_id.as_deref().and_then(|id| {
                    opts.and_then(|o| o.iter().find(|o| o.id == id))
                        .map(|o| o.kind.clone())
                });
                let mark = match kind.as_deref() {
                    Some(k) if k.starts_with("allow") => "✓",
                    _ => "✗",
                };
                let what = match option_id {
                    Some(id) => inline(&name(id)),
                    None => "cancelled".into(),
                };
                let mut line = format!("{mark} approval {approval}: {what} ({})", inline(by));
                if let Some(f) = forwarded {
                    line.push_str(&format!("; the agent was told: {}", inline(&name(f))));
                }
                vec![line]
            }
            AgentEventKind::Cancel { by, .. } => vec![format!("-- cancelled by {}", inline(by))],
            AgentEventKind::QueueCleared { dropped } => {
                vec![format!("-- {dropped} queued prompt(s) dropped, not sent")]
            }
            AgentEventKind::Error { message } => indented("!! ", message),
            AgentEventKind::Closed { by, .. } => vec![format!("-- closed by {}", inline(by))],
            AgentEventKind::Terminal {
                approval,
                command,
                args,
                cwd,
                ..
            } => {
                let mut argv = vec![command.clone()];
                argv.extend(args.iter().cloned());
                vec![format!(
                    "⚙ ran {} (in {}), allowed by {}",
                    inline(&truncate(&crate::tool::command::join(&argv), 500)),
                    inline(cwd),
                    if *approval == 0 {
                        "a rule or grant".to_string()
                    } else {
                        format!("approval {approval}")
                    }
                )]
            }
            AgentEventKind::TerminalRefused {
                command,
                args,
                reason,
                ..
            } => {
                let mut argv = vec![command.clone()];
                argv.extend(args.iter().cloned());
                vec![format!(
                    "!! refused to run {}: {}",
                    inline(&truncate(&crate::tool::command::join(&argv), 500)),
                    inline(reason)
                )]
            }
            AgentEventKind::Warning { message } => indented("!! ", message),
            AgentEventKind::Truncated { kind, bytes } => vec![format!(
                "-- (a {} event of {bytes} bytes is too big to show)",
                inline(kind)
            )],
            AgentEventKind::Grant {
                grant,
                scope,
                allow,
                by,
                approval,
                ..
            } => vec![format!(
                "-- grant {grant}: {} {} in this session ({}{}); `peer agent grants` lists and revokes",
                if *allow {
                    "always allow"
                } else {
                    "always reject"
                },
                inline(&scope_text(scope)),
                inline(by),
                approval.map_or(String::new(), |a| format!(", from approval {a}"))
            )],
            AgentEventKind::GrantRevoked { grant, by, .. } => {
                vec![format!("-- grant {grant} revoked by {}", inline(by))]
            }
        }
    }

    /// An ACP `SessionUpdate` other than message chunks.
    fn update(&mut self, d: &Value) -> Vec<String> {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let kind = s(d, "sessionUpdate");
        match kind.as_str() {
            "tool_call" => {
                let id = s(d, "toolCallId");
                let title = s(d, "title");
                if !title.is_empty() {
                    self.tools.insert(id.clone(), title.clone());
                }
                let mut out = vec![format!(
                    "⚙ {} [{}] {}",
                    inline(&truncate(
                        if title.is_empty() {
                            "a tool call"
                        } else {
                            &title
                        },
                        200
                    )),
                    inline(&s(d, "kind")),
                    inline(&s(d, "status").replace('_', " "))
                )];
                out.extend(self.tool_content(d));
                out
            }
            "tool_call_update" => {
                let id = s(d, "toolCallId");
                if let Some(t) = d.get("title").and_then(Value::as_str) {
                    self.tools.insert(id.clone(), t.to_string());
                }
                let title = self
                    .tools
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "a tool call".into());
                let status = s(d, "status").replace('_', " ");
                let mut out = vec![format!(
                    "  ↳ {}{}",
                    inline(&truncate(&title, 200)),
                    if status.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", inline(&status))
                    }
                )];
                out.extend(self.tool_content(d));
                out
            }
            "plan" => {
                let mut out = vec!["plan:".to_string()];
                for e in d
                    .get("entries")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let mark = match s(e, "status").as_str() {
                        "completed" => "✓",
                        "in_progress" => "▸",
                        _ => "○",
                    };
                    out.push(format!("  {mark} {}", inline(&s(e, "content"))));
                }
                out
            }
            "available_commands_update" => {
                self.commands = d
                    .get("availableCommands")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| (inline(&s(c, "name")), inline(&s(c, "description"))))
                    .collect();
                let names: Vec<String> =
                    self.commands.iter().map(|(n, _)| format!("/{n}")).collect();
                vec![format!(
                    "-- the agent's commands: {} (/help describes them)",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                )]
            }
            "current_mode_update" => vec![format!("-- mode: {}", inline(&s(d, "currentModeId")))],
            "config_option_update" => vec!["-- the agent's options changed".into()],
            "session_info_update" => match d.get("title").and_then(Value::as_str) {
                Some(t) => vec![format!("-- title: {}", inline(t))],
                None => vec![],
            },
            "usage_update" => {
                let n = |k: &str| d.get(k).and_then(Value::as_u64);
                match (n("used"), n("size")) {
                    (Some(u), Some(z)) => vec![format!("-- context: {u} of {z} tokens used")],
                    _ => vec![],
                }
            }
            other => vec![format!(
                "-- (the agent sent an update this peer does not show: {})",
                inline(if other.is_empty() { "unnamed" } else { other })
            )],
        }
    }

    /// What a tool call carries: diffs (files and their changes, or "no changes") and text.
    fn tool_content(&self, d: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for c in d
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match c.get("type").and_then(Value::as_str) {
                Some("diff") => {
                    let path = c.get("path").and_then(Value::as_str).unwrap_or("");
                    let old = c.get("oldText").and_then(Value::as_str);
                    let new = c.get("newText").and_then(Value::as_str).unwrap_or("");
                    let lines = crate::tool::what::diff_lines(old, new);
                    let (add, del) = lines.iter().fold((0, 0), |(a, r), l| match l {
                        DiffLine::Add(_) => (a + 1, r),
                        DiffLine::Del(_) => (a, r + 1),
                        _ => (a, r),
                    });
                    out.push(if lines.is_empty() {
                        format!("    {}: no changes", inline(path))
                    } else if old.is_none() {
                        format!("    {}: new file, {add} line(s)", inline(path))
                    } else {
                        format!("    {}: +{add} -{del}", inline(path))
                    });
                }
                Some("content") => {
                    let text = c
                        .get("content")
                        .and_then(|b| b.get("text"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let lines: Vec<&str> = text.lines().collect();
                    for l in lines.iter().take(5) {
                        out.push(format!("    │ {}", block(&truncate(l, 300))));
                    }
                    if lines.len() > 5 {
                        out.push(format!("    │ … {} more lines", lines.len() - 5));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
