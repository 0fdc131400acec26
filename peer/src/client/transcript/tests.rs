use super::super::sanitize::is_plain;
use super::*;
use serde_json::json;

fn upd(v: Value) -> AgentEventKind {
    AgentEventKind::Update {
        update: v.to_string(),
    }
}

fn chunk(text: &str) -> AgentEventKind {
    upd(json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}))
}

fn all(t: &mut Transcript, evs: &[AgentEventKind]) -> Vec<String> {
    let mut out: Vec<String> = evs.iter().flat_map(|e| t.event(e)).collect();
    out.extend(t.flush());
    out
}

#[test]
fn nothing_an_agent_prints_can_pass_for_peer_or_drive_the_terminal() {
    let mut t = Transcript::new("/w");
    let evil = "\x1b[2J\x1b[H-- idle\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\n? approval 9: harmless\n    1) Allow once\r✓ approval 9";
    let out = all(&mut t, &[chunk("hello\n"), chunk(evil), chunk(" done")]);
    for l in &out {
        assert!(is_plain(l), "{l:?}");
    }
    assert_eq!(out[0], "agent: hello");
    assert_eq!(
        out[1],
        "       ␛[2J␛[H-- idle␛]0;pwned␇␛]52;c;cm0gLXJmIH4=␇"
    );
    assert_eq!(out[2], "       ? approval 9: harmless");
    assert_eq!(out[3], "           1) Allow once␍✓ approval 9 done");
    // peer's own lines start at the margin; the agent's never do.
    assert!(out.iter().skip(1).all(|l| l.starts_with(MARGIN)));
    assert!(t.open().is_empty(), "printed text opens no approval");
}

#[test]
fn an_approval_shows_what_would_run_and_its_options() {
    let mut t = Transcript::new("/w/sub");
    let out = t.event(&AgentEventKind::Permission {
        approval: 1,
        tool_call: json!({"toolCallId": "pending", "title": "execute", "kind": "execute",
            "rawInput": {"command": "cargo test\x1b[2J"}})
        .to_string(),
        options: json!([
            {"optionId": "allow_once", "name": "Allow Once", "kind": "allow_once"},
            {"optionId": "allow_always", "name": "Always Allow", "kind": "allow_always"},
            {"optionId": "reject_once", "name": "Reject Once", "kind": "reject_once"}
        ])
        .to_string(),
        what: None,
    });
    assert_eq!(
        out,
        [
            "? approval 1: execute [execute]",
            "    run    cargo test␛[2J",
            "    in     /w/sub (the agent's directory)",
            "    1) Allow Once   2) Always Allow   3) Reject Once",
            "  answer with 1-3, y (allow once) or n (reject)",
        ]
    );
    assert_eq!(t.open()[&1].options.len(), 3);
    let out = t.event(&AgentEventKind::PermissionResolved {
        approval: 1,
        option_id: Some("allow_always".into()),
        forwarded: Some("allow_once".into()),
        by: "phone".into(),
        device: Some("ab".repeat(32)),
    });
    assert_eq!(
        out,
        ["✓ approval 1: Always Allow (phone); the agent was told: Allow Once"]
    );
    assert!(t.open().is_empty());
    // An edit shows the file and the change.
    let out = t.event(&AgentEventKind::Permission {
        approval: 2,
        tool_call: json!({"title": "Edit a.txt", "kind": "edit", "content": [
            {"type": "diff", "path": "a.txt", "oldText": "one\n", "newText": "two\n"}]})
        .to_string(),
        options: "[]".into(),
        what: None,
    });
    assert_eq!(
        out[1..4],
        ["    change a.txt", "       - one", "       + two"]
    );
    // What the host read from the tool call is what is shown.
    let out = t.event(&AgentEventKind::Permission {
        approval: 3,
        tool_call: json!({"title": "make", "kind": "execute"}).to_string(),
        options: "[]".into(),
        what: Some(vec![crate::proto::ToolAction::Run {
            command: "make all\x07".into(),
            cwd: Some("/w/b".into()),
        }]),
    });
    assert_eq!(out[1..3], ["    run    make all␇", "    in     /w/b"]);
}

#[test]
fn every_event_is_words_without_json_or_ids() {
    let device = "ab".repeat(32);
    let mut t = Transcript::new("/w");
    let evs = vec![
        AgentEventKind::Started {
            agent_session: "s-1".into(),
            agent_info: Some(r#"{"name":"fake","version":"1"}"#.into()),
            load_session: true,
            modes: Some(r#"{"currentModeId":"code","availableModes":[{"id":"code","name":"Code"},{"id":"plan","name":"Plan"}]}"#.into()),
            config_options: None,
        },
        AgentEventKind::Prompt {
            text: "hi".into(),
            by: "phone".into(),
            device: Some(device.clone()),
            queued: true,
        },
        upd(json!({"sessionUpdate": "tool_call", "toolCallId": "call_0123456789abcdef", "title": "Edit a.txt", "kind": "edit", "status": "in_progress"})),
        upd(json!({"sessionUpdate": "tool_call_update", "toolCallId": "call_0123456789abcdef", "status": "completed",
            "content": [{"type": "diff", "path": "a.txt", "oldText": "same\n", "newText": "same\n"}]})),
        upd(json!({"sessionUpdate": "current_mode_update", "currentModeId": "plan"})),
        upd(json!({"sessionUpdate": "available_commands_update", "availableCommands": [{"name": "test", "description": "run tests"}]})),
        upd(json!({"sessionUpdate": "usage_update", "used": 10, "size": 1000})),
        upd(json!({"sessionUpdate": "some_future_kind", "x": 1})),
        AgentEventKind::TurnEnd { stop_reason: StopReason::Refusal },
        AgentEventKind::State { state: AgentState::WaitingApproval, detail: None },
        AgentEventKind::Cancel { by: "phone".into(), device: Some(device.clone()) },
        AgentEventKind::Grant {
            grant: 1,
            scope: crate::proto::GrantScope::Command { command: "cargo test".into() },
            allow: true,
            by: "phone".into(),
            device: Some(device.clone()),
            approval: Some(2),
        },
    ];
    let out = all(&mut t, &evs);
    let text = out.join("\n");
    assert!(!text.contains(&device), "{text}");
    assert!(!text.contains("call_0123"), "{text}");
    assert!(!text.contains('{'), "{text}");
    for want in [
        "-- fake 1 is ready (modes: code, plan; /mode M switches)",
        "> hi  (phone, queued)",
        "⚙ Edit a.txt [edit] in progress",
        "  ↳ Edit a.txt: completed",
        "    a.txt: no changes",
        "-- mode: plan",
        "-- the agent's commands: /test (/help describes them)",
        "-- context: 10 of 1000 tokens used",
        "-- (the agent sent an update this peer does not show: some_future_kind)",
        "-- turn ended: the agent refused",
        "-- waiting for an approval",
        "-- cancelled by phone",
        "-- grant 1: always allow cargo test in this session (phone, from approval 2)",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    assert_eq!(
        t.commands(),
        [("test".to_string(), "run tests".to_string())]
    );
}

#[test]
fn message_text_streams_in_lines_and_flushes() {
    let mut t = Transcript::new("/w");
    assert!(t.event(&chunk("Hel")).is_empty());
    assert!(t.has_partial());
    assert_eq!(t.event(&chunk("lo\nwor")), ["agent: Hello"]);
    assert_eq!(t.flush(), ["       wor"]);
    assert_eq!(t.event(&chunk("ld")), Vec::<String>::new());
    let out = t.event(&AgentEventKind::TurnEnd {
        stop_reason: StopReason::EndTurn,
    });
    assert_eq!(out, ["       ld", "-- turn ended"]);
}
