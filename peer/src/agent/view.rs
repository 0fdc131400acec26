//! The JSON view of an agent event: `kind` plus a JSON object with ACP's camelCase names and
//! the ACP objects inline, as `peer agent attach --json` prints events and as peer stored them
//! before events were typed (protocol version 1). [`to_view`] renders a typed event so;
//! [`from_view`] reads one back (the database migration uses it for old rows).

use serde_json::{Map, Value, json};

use crate::proto::{AgentEventKind, AgentState, GrantScope, ResumeMethod, StopReason};

/// Parses JSON text an event carries; text that is not JSON stays a string.
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn parse_opt(text: &Option<String>) -> Value {
    text.as_deref().map_or(Value::Null, parse)
}

/// The event's kind name and JSON object, as protocol version 1 had them. A
/// [`AgentEventKind::Truncated`] is shown as the event it stands for:
/// `{"truncated": true, "bytes": N}`.
pub fn to_view(ev: &AgentEventKind) -> (&str, Value) {
    let data = match ev {
        AgentEventKind::State { state, detail } => {
            json!({"state": state.as_str(), "detail": detail})
        }
        AgentEventKind::Started {
            agent_session,
            agent_info,
            load_session,
            modes,
            config_options,
        } => json!({
            "agentSession": agent_session,
            "agentInfo": parse_opt(agent_info),
            "loadSession": load_session,
            "modes": parse_opt(modes),
            "configOptions": parse_opt(config_options),
        }),
        AgentEventKind::Resumed {
            method,
            agent_session,
            note,
        } => {
            let mut m = Map::new();
            m.insert("method".into(), method.as_str().into());
            if let Some(a) = agent_session {
                m.insert("agentSession".into(), a.as_str().into());
            }
            if let Some(n) = note {
                m.insert("note".into(), n.as_str().into());
            }
            Value::Object(m)
        }
        AgentEventKind::Prompt {
            text,
            by,
            device,
            queued,
        } => json!({"text": text, "by": by, "device": device, "queued": queued}),
        AgentEventKind::TurnStart { text } => json!({ "text": text }),
        AgentEventKind::TurnEnd { stop_reason } => match stop_reason {
            StopReason::Interrupted { reason } => {
                json!({"stopReason": "interrupted", "reason": reason})
            }
            StopReason::Error { error } => json!({"stopReason": "error", "error": error}),
            other => json!({ "stopReason": other.as_str() }),
        },
        AgentEventKind::Update { update } => parse(update),
        AgentEventKind::Permission {
            approval,
            tool_call,
            options,
            what,
        } => {
            let mut v = json!({"approval": approval, "toolCall": parse(tool_call),
                               "options": parse(options)});
            // The host's reading (ToolAction's JSON); events recorded before hosts said it have
            // none.
            if let (Some(what), Some(m)) = (what, v.as_object_mut()) {
                m.insert("what".into(), json!(what));
            }
            v
        }
        AgentEventKind::PermissionResolved {
            approval,
            option_id,
            forwarded,
            by,
            device,
        } => json!({
            "approval": approval,
            "outcome": if option_id.is_some() { "selected" } else { "cancelled" },
            "optionId": option_id,
            "forwarded": forwarded,
            "by": by,
            "device": device,
        }),
        AgentEventKind::Cancel { by, device } | AgentEventKind::Closed { by, device } => {
            json!({"by": by, "device": device})
        }
        AgentEventKind::QueueCleared { dropped } => json!({ "dropped": dropped }),
        AgentEventKind::Error { message } | AgentEventKind::Warning { message } => {
            json!({ "message": message })
        }
        AgentEventKind::Terminal {
            terminal,
            approval,
            command,
            args,
            cwd,
        } => json!({"terminal": terminal, "approval": approval, "command": command,
                    "args": args, "cwd": cwd}),
        AgentEventKind::TerminalRefused {
            command,
            args,
            cwd,
            reason,
        } => json!({"request": {"command": command, "args": args, "cwd": cwd}, "reason": reason}),
        AgentEventKind::Truncated { kind, bytes } => {
            return (kind, json!({"truncated": true, "bytes": bytes}));
        }
        AgentEventKind::Grant {
            grant,
            scope,
            allow,
            by,
            device,
            approval,
        } => json!({"grant": grant, "scope": scope_view(scope), "allow": allow, "by": by,
                    "device": device, "approval": approval}),
        AgentEventKind::GrantRevoked { grant, by, device } => {
            json!({"grant": grant, "by": by, "device": device})
        }
    };
    (ev.name(), data)
}

/// A grant's scope in the JSON view: `{"session": true}`, `{"kind": K}`, `{"command": C}`.
pub fn scope_view(scope: &GrantScope) -> Value {
    match scope {
        GrantScope::Session => json!({"session": true}),
        GrantScope::Kind { kind } => json!({ "kind": kind }),
        GrantScope::Command { command } => json!({ "command": command }),
    }
}

fn scope_from_view(v: Option<&Value>) -> Option<GrantScope> {
    let v = v?;
    if let Some(k) = v.get("kind").and_then(Value::as_str) {
        return Some(GrantScope::Kind { kind: k.into() });
    }
    if let Some(c) = v.get("command").and_then(Value::as_str) {
        return Some(GrantScope::Command { command: c.into() });
    }
    (v.get("session") == Some(&Value::Bool(true))).then_some(GrantScope::Session)
}

/// Reads an event in the JSON view (what [`to_view`] makes, and what protocol version 1
/// stored). `None` for a kind it does not know or a field it cannot read.
pub fn from_view(kind: &str, d: &Value) -> Option<AgentEventKind> {
    let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    let text = |k: &str| d.get(k).filter(|v| !v.is_null()).map(Value::to_string);
    let u = |k: &str| d.get(k).and_then(Value::as_u64);
    let b = |k: &str| d.get(k).and_then(Value::as_bool).unwrap_or(false);
    let by = || s("by").unwrap_or_default();
    if d.get("truncated") == Some(&Value::Bool(true))
        && d.get("sessionUpdate").is_none()
        && let Some(bytes) = u("bytes")
    {
        return Some(AgentEventKind::Truncated {
            kind: kind.to_string(),
            bytes,
        });
    }
    Some(match kind {
        "state" => AgentEventKind::State {
            state: AgentState::parse(&s("state")?)?,
            detail: s("detail"),
        },
        "started" => AgentEventKind::Started {
            agent_session: s("agentSession").unwrap_or_default(),
            agent_info: text("agentInfo"),
            load_session: b("loadSession"),
            modes: text("modes"),
            config_options: text("configOptions"),
        },
        "resumed" => AgentEventKind::Resumed {
            method: ResumeMethod::parse(&s("method")?)?,
            agent_session: s("agentSession"),
            note: s("note"),
        },
        "prompt" => AgentEventKind::Prompt {
            text: s("text").unwrap_or_default(),
            by: by(),
            device: s("device"),
            queued: b("queued"),
        },
        "turn_start" => AgentEventKind::TurnStart {
            text: s("text").unwrap_or_default(),
        },
        "turn_end" => AgentEventKind::TurnEnd {
            stop_reason: match StopReason::from_name(&s("stopReason").unwrap_or_default()) {
                StopReason::Interrupted { .. } => StopReason::Interrupted {
                    reason: s("reason").unwrap_or_default(),
                },
                StopReason::Error { .. } => StopReason::Error {
                    error: s("error").unwrap_or_default(),
                },
                other => other,
            },
        },
        "update" => AgentEventKind::Update {
            update: d.to_string(),
        },
        "permission" => AgentEventKind::Permission {
            approval: u("approval")?,
            tool_call: text("toolCall").unwrap_or_else(|| "{}".into()),
            options: text("options").unwrap_or_else(|| "[]".into()),
            what: d
                .get("what")
                .and_then(|w| serde_json::from_value(w.clone()).ok()),
        },
        "permission_resolved" => AgentEventKind::PermissionResolved {
            approval: u("approval")?,
            option_id: s("optionId"),
            forwarded: s("forwarded"),
            by: by(),
            device: s("device"),
        },
        "cancel" => AgentEventKind::Cancel {
            by: by(),
            device: s("device"),
        },
        "closed" => AgentEventKind::Closed {
            by: by(),
            device: s("device"),
        },
        "queue_cleared" => AgentEventKind::QueueCleared {
            dropped: u32::try_from(u("dropped").unwrap_or(0)).unwrap_or(u32::MAX),
        },
        "error" => AgentEventKind::Error {
            message: s("message").unwrap_or_default(),
        },
        "warning" => AgentEventKind::Warning {
            message: s("message").unwrap_or_default(),
        },
        "terminal" => AgentEventKind::Terminal {
            terminal: s("terminal").unwrap_or_default(),
            approval: u("approval").unwrap_or(0),
            command: s("command").unwrap_or_default(),
            args: strings(d.get("args")),
            cwd: s("cwd").unwrap_or_default(),
        },
        "terminal_refused" => {
            let req = d.get("request");
            let rs = |k: &str| {
                req.and_then(|r| r.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            AgentEventKind::TerminalRefused {
                command: rs("command").unwrap_or_default(),
                args: strings(req.and_then(|r| r.get("args"))),
                cwd: rs("cwd"),
                reason: s("reason").unwrap_or_default(),
            }
        }
        "grant" => AgentEventKind::Grant {
            grant: u("grant")?,
            scope: scope_from_view(d.get("scope"))?,
            allow: b("allow"),
            by: by(),
            device: s("device"),
            approval: u("approval"),
        },
        "grant_revoked" => AgentEventKind::GrantRevoked {
            grant: u("grant")?,
            by: by(),
            device: s("device"),
        },
        _ => return None,
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One event of every kind, with every optional field set one way or the other.
    pub(crate) fn every_kind() -> Vec<AgentEventKind> {
        vec![
            AgentEventKind::State {
                state: AgentState::Failed,
                detail: Some("the agent exited with status 3".into()),
            },
            AgentEventKind::State {
                state: AgentState::Idle,
                detail: None,
            },
            AgentEventKind::Started {
                agent_session: "s-1".into(),
                agent_info: Some(r#"{"name":"fake","version":"1"}"#.into()),
                load_session: true,
                modes: Some(r#"{"currentModeId":"code","availableModes":[]}"#.into()),
                config_options: None,
            },
            AgentEventKind::Resumed {
                method: ResumeMethod::Load,
                agent_session: Some("s-1".into()),
                note: None,
            },
            AgentEventKind::Resumed {
                method: ResumeMethod::New,
                agent_session: None,
                note: Some("the agent starts a new conversation".into()),
            },
            AgentEventKind::Prompt {
                text: "hello".into(),
                by: "phone".into(),
                device: Some("ab".into()),
                queued: true,
            },
            AgentEventKind::TurnStart {
                text: "hello".into(),
            },
            AgentEventKind::TurnEnd {
                stop_reason: StopReason::EndTurn,
            },
            AgentEventKind::TurnEnd {
                stop_reason: StopReason::Interrupted {
                    reason: "the host restarted during the turn".into(),
                },
            },
            AgentEventKind::TurnEnd {
                stop_reason: StopReason::Error {
                    error: "boom".into(),
                },
            },
            AgentEventKind::Update {
                update: r#"{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"hi"}}"#
                    .into(),
            },
            AgentEventKind::Permission {
                approval: 1,
                tool_call: r#"{"toolCallId":"t1","title":"cargo test","kind":"execute"}"#.into(),
                options: r#"[{"optionId":"allow","name":"Allow","kind":"allow_once"}]"#.into(),
                what: None,
            },
            AgentEventKind::Permission {
                approval: 2,
                tool_call: r#"{"toolCallId":"t2","title":"make","kind":"execute"}"#.into(),
                options: "[]".into(),
                what: Some(vec![crate::proto::ToolAction::Run {
                    command: "make".into(),
                    cwd: Some("/w".into()),
                }]),
            },
            AgentEventKind::PermissionResolved {
                approval: 1,
                option_id: Some("always".into()),
                forwarded: Some("allow".into()),
                by: "phone".into(),
                device: Some("ab".into()),
            },
            AgentEventKind::PermissionResolved {
                approval: 2,
                option_id: None,
                forwarded: None,
                by: "turn ended".into(),
                device: None,
            },
            AgentEventKind::Cancel {
                by: "phone".into(),
                device: Some("ab".into()),
            },
            AgentEventKind::QueueCleared { dropped: 2 },
            AgentEventKind::Error {
                message: "the agent exited with status 3".into(),
            },
            AgentEventKind::Closed {
                by: "phone".into(),
                device: None,
            },
            AgentEventKind::Terminal {
                terminal: "term-1".into(),
                approval: 3,
                command: "/bin/sh".into(),
                args: vec!["-lc".into(), "ls".into()],
                cwd: "/w".into(),
            },
            AgentEventKind::TerminalRefused {
                command: "rm".into(),
                args: vec!["-rf".into()],
                cwd: None,
                reason: "not approved".into(),
            },
            AgentEventKind::Warning {
                message: "careful".into(),
            },
            AgentEventKind::Truncated {
                kind: "update".into(),
                bytes: 300_000,
            },
            AgentEventKind::Grant {
                grant: 1,
                scope: GrantScope::Command {
                    command: "cargo test".into(),
                },
                allow: true,
                by: "phone".into(),
                device: Some("ab".into()),
                approval: Some(3),
            },
            AgentEventKind::Grant {
                grant: 2,
                scope: GrantScope::Session,
                allow: false,
                by: "laptop".into(),
                device: None,
                approval: None,
            },
            AgentEventKind::Grant {
                grant: 3,
                scope: GrantScope::Kind {
                    kind: "edit".into(),
                },
                allow: true,
                by: "laptop".into(),
                device: None,
                approval: None,
            },
            AgentEventKind::GrantRevoked {
                grant: 1,
                by: "phone".into(),
                device: None,
            },
        ]
    }

    #[test]
    fn every_kind_reads_back_from_its_view() {
        for ev in every_kind() {
            let (kind, data) = to_view(&ev);
            assert_eq!(from_view(kind, &data).as_ref(), Some(&ev), "{kind} {data}");
        }
    }

    #[test]
    fn the_view_is_what_version_1_sent() {
        let ev = AgentEventKind::PermissionResolved {
            approval: 1,
            option_id: Some("always".into()),
            forwarded: Some("allow".into()),
            by: "phone".into(),
            device: None,
        };
        let (k, d) = to_view(&ev);
        assert_eq!(k, "permission_resolved");
        assert_eq!(
            d.to_string(),
            r#"{"approval":1,"outcome":"selected","optionId":"always","forwarded":"allow","by":"phone","device":null}"#
        );
        let ev = AgentEventKind::Truncated {
            kind: "update".into(),
            bytes: 9,
        };
        let (k, d) = to_view(&ev);
        assert_eq!(
            (k, d.to_string().as_str()),
            ("update", r#"{"truncated":true,"bytes":9}"#)
        );
        let (_, d) = to_view(&AgentEventKind::TurnEnd {
            stop_reason: StopReason::Cancelled,
        });
        assert_eq!(d.to_string(), r#"{"stopReason":"cancelled"}"#);
        // The host's reading of a tool call, when the event has one.
        let (_, d) = to_view(&AgentEventKind::Permission {
            approval: 2,
            tool_call: "{}".into(),
            options: "[]".into(),
            what: Some(vec![crate::proto::ToolAction::Run {
                command: "make".into(),
                cwd: None,
            }]),
        });
        assert_eq!(
            d.to_string(),
            r#"{"approval":2,"toolCall":{},"options":[],"what":[{"run":{"command":"make","cwd":null}}]}"#
        );
        assert_eq!(from_view("some_future_kind", &json!({})), None);
    }
}
