//! How `peer agent attach` shows events to a person.

use serde_json::Value;

use super::attach::Open;
use peer::agent::view::to_view;
use peer::proto::AgentEventKind;

#[derive(Default)]
pub(super) struct Printer {
    /// The kind of chunk being printed inline, if any.
    inline: Option<String>,
}

impl Printer {
    fn line(&mut self, s: String) {
        if self.inline.take().is_some() {
            println!();
        }
        println!("{s}");
    }

    pub(super) fn print(&mut self, ev: &AgentEventKind, open: &Open) {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match ev {
            AgentEventKind::Update { update } => {
                let d: Value = serde_json::from_str(update).unwrap_or(Value::Null);
                self.update(&d);
            }
            AgentEventKind::Prompt { text, queued, .. } => self.line(format!(
                "> {text}{}",
                if *queued { "  (queued)" } else { "" }
            )),
            AgentEventKind::Permission {
                approval,
                tool_call,
                ..
            } => {
                let tool: Value = serde_json::from_str(tool_call).unwrap_or(Value::Null);
                let mut text = format!("? approval {approval}: {}", s(&tool, "title"));
                if let Some(opts) = open.get(approval) {
                    for (i, o) in opts.iter().enumerate() {
                        text.push_str(&format!("\n    {}) {}", i + 1, o.1));
                    }
                    text.push_str("\n  answer with a number (or y / n)");
                }
                self.line(text)
            }
            AgentEventKind::PermissionResolved {
                approval,
                option_id,
                by,
                ..
            } => self.line(format!(
                "✓ approval {approval}: {} by {by}",
                option_id.as_deref().unwrap_or("cancelled"),
            )),
            AgentEventKind::TurnEnd { stop_reason } => {
                self.line(format!("-- turn ended: {}", stop_reason.as_str()))
            }
            AgentEventKind::State { state, .. } => self.line(format!("-- {}", state.as_str())),
            AgentEventKind::Error { message } => self.line(format!("!! {message}")),
            AgentEventKind::TurnStart { .. } | AgentEventKind::Started { .. } => {}
            other => {
                let (kind, d) = to_view(other);
                self.line(format!("[{kind}] {d}"))
            }
        }
    }

    /// An ACP `SessionUpdate`.
    fn update(&mut self, d: &Value) {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let kind = s(d, "sessionUpdate");
        match kind.as_str() {
            "agent_message_chunk" | "agent_thought_chunk" | "user_message_chunk" => {
                let text = d.get("content").map(|c| s(c, "text")).unwrap_or_default();
                if self.inline.as_deref() != Some(kind.as_str()) {
                    if self.inline.is_some() {
                        println!();
                    }
                    let who = match kind.as_str() {
                        "agent_message_chunk" => "agent",
                        "agent_thought_chunk" => "thinking",
                        _ => "user",
                    };
                    print!("{who}: ");
                    self.inline = Some(kind.clone());
                }
                print!("{text}");
            }
            "tool_call" => self.line(format!(
                "⚙ {} [{}] {}",
                s(d, "title"),
                s(d, "kind"),
                s(d, "status")
            )),
            "tool_call_update" => {
                let mut line = format!("  ↳ {} {}", s(d, "toolCallId"), s(d, "status"));
                for c in d
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if s(c, "type") == "diff" {
                        line.push_str(&format!(" (diff {})", s(c, "path")));
                    }
                }
                self.line(line)
            }
            "plan" => {
                let entries: Vec<String> = d
                    .get("entries")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|e| format!("  [{}] {}", s(e, "status"), s(e, "content")))
                    .collect();
                self.line(format!("plan:\n{}", entries.join("\n")))
            }
            other => self.line(format!("[{other}]")),
        }
    }
}
