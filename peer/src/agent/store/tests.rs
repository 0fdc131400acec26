use super::*;

pub(crate) fn row() -> SessionRow {
    SessionRow {
        id: 0,
        agent: "fake".into(),
        repo: "/r".into(),
        worktree: "/w".into(),
        wt_name: "w".into(),
        branch: "b".into(),
        base: "00".into(),
        created_at: 1,
        state: AgentState::Starting,
        detail: None,
        acp_session: None,
        subdir: String::new(),
        model: None,
    }
}

#[test]
fn every_kind_is_stored_under_its_name_and_reads_back() {
    for ev in crate::agent::view::tests::every_kind() {
        let (kind, data) = encode_event(&ev);
        assert_eq!(kind, ev.name());
        assert!(data.starts_with('{'), "{data}");
        assert_eq!(decode_event(kind, &data).expect("decode"), ev, "{data}");
    }
    let (kind, data) = encode_event(&AgentEventKind::QueueCleared { dropped: 2 });
    assert_eq!((kind, data.as_str()), ("queue_cleared", r#"{"dropped":2}"#));
    assert!(decode_event("no_such_kind", "{}").is_err());
}

#[test]
fn the_queue_approvals_and_grants_are_rebuilt_from_the_transcript() {
    let ev = |seq: u64, event: AgentEventKind| AgentEvent {
        session: 1,
        seq,
        at_ms: seq * 10,
        event,
    };
    let prompt = |t: &str| AgentEventKind::Prompt {
        text: t.into(),
        by: "phone".into(),
        device: Some("ab".into()),
        queued: true,
    };
    let evs = vec![
        ev(0, prompt("one")),
        ev(1, AgentEventKind::TurnStart { text: "one".into() }),
        ev(2, prompt("two")),
        ev(3, prompt("three")),
        ev(4, AgentEventKind::QueueCleared { dropped: 2 }),
        ev(5, prompt("four")),
        ev(6, prompt("five")),
        ev(
            7,
            AgentEventKind::TurnStart {
                text: "four".into(),
            },
        ),
        ev(
            8,
            AgentEventKind::Permission {
                approval: 1,
                tool_call: "{}".into(),
                options: "[]".into(),
                what: None,
            },
        ),
        ev(
            9,
            AgentEventKind::Permission {
                approval: 2,
                tool_call: "{}".into(),
                options: "[]".into(),
                what: None,
            },
        ),
        ev(
            10,
            AgentEventKind::PermissionResolved {
                approval: 1,
                option_id: None,
                forwarded: None,
                by: "x".into(),
                device: None,
            },
        ),
        ev(
            11,
            AgentEventKind::Grant {
                grant: 1,
                scope: crate::proto::GrantScope::Session,
                allow: true,
                by: "phone".into(),
                device: None,
                approval: None,
            },
        ),
        ev(
            12,
            AgentEventKind::Grant {
                grant: 2,
                scope: crate::proto::GrantScope::Kind {
                    kind: "edit".into(),
                },
                allow: true,
                by: "phone".into(),
                device: None,
                approval: Some(1),
            },
        ),
        ev(
            13,
            AgentEventKind::GrantRevoked {
                grant: 1,
                by: "phone".into(),
                device: None,
            },
        ),
    ];
    let r = Restored::fold(1, &evs);
    assert_eq!(
        r.queue,
        [(
            "five".to_string(),
            Some("ab".to_string()),
            "phone".to_string()
        )]
    );
    assert_eq!(r.open_approvals, [2]);
    assert_eq!(r.next_approval, 3);
    assert_eq!(r.grants.len(), 1);
    assert_eq!((r.grants[0].grant, r.grants[0].at_ms), (2, 120));
    assert_eq!(r.next_grant, 3);
    assert_eq!(Restored::fold(1, &[]).next_approval, 1);
}

#[tokio::test]
async fn a_local_model_is_kept_and_an_unreadable_one_fails_the_session() {
    let t = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&t.path().join("peer.db")).expect("open");
    let store = Store::new(db.clone());
    let choice = LocalChoice {
        server: "ollama".into(),
        endpoint: "http://127.0.0.1:11434/v1".into(),
        model: "qwen2.5-coder:7b".into(),
        models: vec!["qwen2.5-coder:7b".into()],
        api_key_env: None,
    };
    let a = store
        .insert(SessionRow {
            model: Some(choice.clone()),
            ..row()
        })
        .await
        .expect("insert");
    let b = store.insert(row()).await.expect("insert");
    db.call(move |c| {
        c.execute(
            "UPDATE agent_sessions SET model = '{\"server\":' WHERE id = ?1",
            [b],
        )?;
        Ok(())
    })
    .await
    .expect("spoil");
    let rows = store.sessions().await.expect("sessions");
    assert_eq!(rows[0].id, a);
    assert_eq!(rows[0].model, Some(choice));
    assert_eq!(rows[0].state, AgentState::Starting);
    assert_eq!(rows[1].model, None);
    assert_eq!(rows[1].state, AgentState::Failed);
    assert!(
        rows[1]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("unreadable"))
    );
}

#[tokio::test]
async fn events_round_trip_in_order_and_survive_reopen() {
    let t = tempfile::tempdir().expect("tempdir");
    let path = t.path().join("peer.db");
    let store = Store::new(Db::open(&path).expect("open"));
    let id = store.insert(row()).await.expect("insert");
    for seq in 0..2000u64 {
        let event = AgentEventKind::Update {
            update: format!("{{\"n\":{seq}}}"),
        };
        let ev = AgentEvent {
            session: id,
            seq,
            at_ms: seq,
            event,
        };
        store.append(ev, None).await.expect("append");
    }
    store
        .set_state(id, AgentState::Idle, None)
        .await
        .expect("state");
    let evs = store.read(id, 1990, u64::MAX).await.expect("read");
    assert_eq!(evs.len(), 10);
    assert_eq!(evs[0].seq, 1990);
    assert_eq!(
        evs[0].event,
        AgentEventKind::Update {
            update: "{\"n\":1990}".into()
        }
    );
    store.flush().await;
    drop(store);
    let store = Store::new(Db::open(&path).expect("reopen"));
    let rows = store.sessions().await.expect("sessions");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, AgentState::Idle);
    assert_eq!(rows[0].model, None);
    assert_eq!(store.next_seq(id).await.expect("next"), 2000);
    assert_eq!(store.read(id, 0, 2000).await.expect("all").len(), 2000);
}
