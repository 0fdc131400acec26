//! Databases made by earlier versions of peer are adopted and keep their rows.

use rusqlite::{Connection, params};

use super::*;
use crate::agent::store::Store;
use crate::db::Db;
use crate::host::devices::Devices;
use crate::proto::{AgentEventKind, AgentState, ResumeMethod, StopReason};

/// The tables exactly as the previous version created them (no `user_version`); `psk` was
/// added to `devices` by a later `ALTER TABLE`, so a database from before that has none.
fn previous_version(path: &std::path::Path, with_psk: bool) {
    let c = Connection::open(path).expect("open");
    c.execute_batch(
        "
CREATE TABLE IF NOT EXISTS devices (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    paired_at  INTEGER NOT NULL,
    last_seen  INTEGER,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    device BLOB,
    event  TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_sessions (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL,
    repo        TEXT NOT NULL,
    worktree    TEXT NOT NULL,
    wt_name     TEXT NOT NULL,
    branch      TEXT NOT NULL,
    base        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT,
    acp_session TEXT
);
CREATE TABLE IF NOT EXISTS agent_events (
    session INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL,
    PRIMARY KEY (session, seq)
) WITHOUT ROWID;
",
    )
    .expect("schema");
    if with_psk {
        c.execute_batch("ALTER TABLE devices ADD COLUMN psk BLOB")
            .expect("psk");
    }
    c.execute(
        "INSERT INTO devices (id, name, role, paired_at) VALUES (?1, 'phone', 'operator', 5)",
        [[7u8; 32].as_slice()],
    )
    .expect("device");
    c.execute(
        "INSERT INTO audit (at, device, event, detail) VALUES (5, ?1, 'pair', 'phone as operator')",
        [[7u8; 32].as_slice()],
    )
    .expect("audit");
    c.execute(
        "INSERT INTO agent_sessions (agent, repo, worktree, wt_name, branch, base, created_at,
             state, detail, acp_session)
         VALUES ('fake', '/r', '/w', 'w', 'peer/fake-1', '00', 1, 'waiting_approval', NULL, 's-1')",
        [],
    )
    .expect("session");
    // Events as the previous version wrote them: camelCase JSON, ACP objects inline.
    let rows = [
        ("state", r#"{"state":"starting","detail":null}"#),
        (
            "started",
            r#"{"agentSession":"s-1","agentInfo":{"name":"fake","version":"0.1"},"loadSession":true,"modes":null,"configOptions":null}"#,
        ),
        (
            "prompt",
            r#"{"text":"ask","by":"phone","device":"0707","queued":false}"#,
        ),
        ("turn_start", r#"{"text":"ask"}"#),
        (
            "update",
            r#"{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"hi"}}"#,
        ),
        (
            "permission",
            r#"{"approval":1,"toolCall":{"toolCallId":"t","title":"cargo test","kind":"execute"},"options":[{"optionId":"allow","name":"Allow","kind":"allow_once"}]}"#,
        ),
        (
            "permission_resolved",
            r#"{"approval":1,"outcome":"selected","optionId":"always","forwarded":"allow","by":"phone","device":"0707"}"#,
        ),
        ("turn_end", r#"{"stopReason":"end_turn"}"#),
        (
            "turn_end",
            r#"{"stopReason":"interrupted","reason":"the host restarted during the turn"}"#,
        ),
        (
            "resumed",
            r#"{"method":"session/load","agentSession":"s-1"}"#,
        ),
        ("update", r#"{"truncated":true,"bytes":300000}"#),
        (
            "terminal_refused",
            r#"{"request":{"command":"rm","args":["-rf"],"cwd":null},"reason":"not approved"}"#,
        ),
        ("queue_cleared", r#"{"dropped":2}"#),
        ("some_future_kind", r#"{"x":1}"#),
    ];
    for (seq, (kind, data)) in rows.iter().enumerate() {
        c.execute(
            "INSERT INTO agent_events (session, seq, at, kind, data) VALUES (1, ?1, ?2, ?3, ?4)",
            params![seq as i64, 100 + seq as i64, kind, data],
        )
        .expect("event");
    }
}

fn version(path: &std::path::Path) -> u32 {
    Connection::open(path)
        .expect("open")
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version")
}

#[tokio::test]
async fn a_database_of_the_previous_version_is_adopted_and_keeps_its_rows() {
    for with_psk in [true, false] {
        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("peer.db");
        previous_version(&path, with_psk);
        assert_eq!(version(&path), 0);
        let db = Db::open(&path).expect("open");

        let devices = Devices::load(db.clone()).await.expect("devices");
        assert_eq!(devices.get_name(&[7; 32]).as_deref(), Some("phone"));
        let audit = devices.audit_events(10).await.expect("audit");
        assert_eq!(
            audit,
            [("pair".to_string(), "phone as operator".to_string())]
        );

        let store = Store::new(db.clone());
        let sessions = store.sessions().await.expect("sessions");
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].state, AgentState::WaitingApproval);
        assert_eq!(sessions[0].acp_session.as_deref(), Some("s-1"));
        assert_eq!(sessions[0].subdir, "");
        assert_eq!(store.next_seq(1).await.expect("next"), 14);
        let evs = store.read(1, 0, u64::MAX).await.expect("events");
        let kinds: Vec<AgentEventKind> = evs.into_iter().map(|e| e.event).collect();
        assert_eq!(
            kinds[..13],
            [
                AgentEventKind::State {
                    state: AgentState::Starting,
                    detail: None
                },
                AgentEventKind::Started {
                    agent_session: "s-1".into(),
                    agent_info: Some(r#"{"name":"fake","version":"0.1"}"#.into()),
                    load_session: true,
                    modes: None,
                    config_options: None,
                },
                AgentEventKind::Prompt {
                    text: "ask".into(),
                    by: "phone".into(),
                    device: Some("0707".into()),
                    queued: false
                },
                AgentEventKind::TurnStart { text: "ask".into() },
                AgentEventKind::Update {
                    update: r#"{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"hi"}}"#
                        .into()
                },
                AgentEventKind::Permission {
                    approval: 1,
                    tool_call: r#"{"toolCallId":"t","title":"cargo test","kind":"execute"}"#.into(),
                    options: r#"[{"optionId":"allow","name":"Allow","kind":"allow_once"}]"#.into(),
                    what: None,
                },
                AgentEventKind::PermissionResolved {
                    approval: 1,
                    option_id: Some("always".into()),
                    forwarded: Some("allow".into()),
                    by: "phone".into(),
                    device: Some("0707".into()),
                },
                AgentEventKind::TurnEnd {
                    stop_reason: StopReason::EndTurn
                },
                AgentEventKind::TurnEnd {
                    stop_reason: StopReason::Interrupted {
                        reason: "the host restarted during the turn".into()
                    }
                },
                AgentEventKind::Resumed {
                    method: ResumeMethod::Load,
                    agent_session: Some("s-1".into()),
                    note: None
                },
                AgentEventKind::Truncated {
                    kind: "update".into(),
                    bytes: 300_000
                },
                AgentEventKind::TerminalRefused {
                    command: "rm".into(),
                    args: vec!["-rf".into()],
                    cwd: None,
                    reason: "not approved".into()
                },
                AgentEventKind::QueueCleared { dropped: 2 },
            ]
        );
        // A row of a kind no version wrote is kept, and read as a warning in its place.
        assert!(
            matches!(&kinds[13], AgentEventKind::Warning { message } if message.contains("some_future_kind")),
            "{:?}",
            kinds[13]
        );
        db.flush().await;
        drop((db, devices, store));
        assert_eq!(version(&path), VERSION);
        // Opening again changes nothing.
        let db = Db::open(&path).expect("reopen");
        let again = Store::new(db).read(1, 0, u64::MAX).await.expect("events");
        assert_eq!(again.len(), 14);
        assert_eq!(again[10].event, kinds[10]);
    }
}

#[test]
fn a_new_database_gets_every_table_and_a_newer_one_is_refused() {
    let mut c = Connection::open_in_memory().expect("open");
    migrate(&mut c).expect("migrate");
    for t in [
        "devices",
        "audit",
        "agent_sessions",
        "agent_events",
        "push_subscriptions",
        "pty_sessions",
    ] {
        assert!(has_table(&c, t).expect("query"), "{t}");
    }
    let v: u32 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(v, VERSION);
    c.pragma_update(None, "user_version", VERSION + 1)
        .expect("set");
    assert!(matches!(
        migrate(&mut c),
        Err(DbError::Newer { found, .. }) if found == VERSION + 1
    ));
}
