//! One test per rule of the approval policy.

use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::agent::config::{Policy, PolicyMode};
use crate::agent::grants::tests::canon;

fn choices() -> Vec<Choice> {
    [
        ("once", OptionKind::AllowOnce),
        ("always", OptionKind::AllowAlways),
        ("no", OptionKind::RejectOnce),
        ("never", OptionKind::RejectAlways),
    ]
    .into_iter()
    .map(|(id, kind)| Choice {
        id: id.into(),
        kind,
    })
    .collect()
}

fn ask_with(tool_call: Value, choices: Vec<Choice>) -> Ask {
    Ask {
        tool_call,
        choices,
        options: "[]".into(),
        at_ms: 7,
    }
}

fn ask(tool_call: Value) -> Ask {
    ask_with(tool_call, choices())
}

fn person(name: &str) -> Decider {
    Decider::Person {
        name: name.into(),
        device: Some(format!("{name}-id")),
    }
}

fn plain() -> Approvals {
    Approvals::new(Rules::default(), None, 1)
}

fn with_policy(p: Policy) -> Approvals {
    Approvals::new(Rules::new(&p).expect("rules"), None, 1)
}

/// The answers sent to the agent, in order.
fn answers(effects: &[Effect]) -> Vec<(u64, Option<String>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Answer { approval, option } => Some((*approval, option.clone())),
            _ => None,
        })
        .collect()
}

/// The `permission_resolved` events, as (approval, option_id, forwarded, by).
fn resolved(effects: &[Effect]) -> Vec<(u64, Option<String>, Option<String>, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(AgentEventKind::PermissionResolved {
                approval,
                option_id,
                forwarded,
                by,
                ..
            }) => Some((*approval, option_id.clone(), forwarded.clone(), by.clone())),
            _ => None,
        })
        .collect()
}

/// The audit rows, as (event, detail).
fn audits(effects: &[Effect]) -> Vec<(&'static str, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Audit { event, detail, .. } => Some((*event, detail.clone())),
            _ => None,
        })
        .collect()
}

fn root() -> PathBuf {
    canon(&std::env::temp_dir())
}

/// Whether a `terminal/create` of `sh -c script` in the worktree would be allowed (and
/// consumes a one-turn grant if so).
fn runs(a: &mut Approvals, script: &str) -> bool {
    let root = root();
    let args = vec!["-c".to_string(), script.to_string()];
    a.may_run("/bin/sh", &args, &root, &root, canon).is_ok()
}

fn shell(cmd: &str) -> Value {
    json!({"title": cmd, "kind": "execute", "rawInput": {"command": cmd}})
}

#[test]
fn a_request_is_recorded_numbered_and_waits_for_a_person() {
    let mut a = Approvals::new(Rules::default(), None, 4);
    let (id, fx) = a.ask(ask(shell("ls")), Instant::now());
    assert_eq!(id, 4);
    assert_eq!(
        fx,
        vec![Effect::Emit(AgentEventKind::Permission {
            approval: 4,
            tool_call: shell("ls").to_string(),
            options: "[]".into(),
            what: Some(vec![crate::proto::ToolAction::Run {
                command: "ls".into(),
                cwd: None
            }]),
        })]
    );
    assert_eq!(a.pending(), 1);
    let list = a.pending_list();
    assert_eq!((list[0].approval, list[0].at_ms), (4, 7));
    // Listings carry the event's reading of the tool call.
    assert_eq!(
        list[0].what,
        [crate::proto::ToolAction::Run {
            command: "ls".into(),
            cwd: None
        }]
    );
    assert_eq!(a.ask(ask(shell("ls")), Instant::now()).0, 5);
}

#[test]
fn the_first_answer_wins_and_a_second_is_a_conflict_naming_the_winner() {
    let mut a = plain();
    let (id, _) = a.ask(ask(shell("ls")), Instant::now());
    let fx = a
        .answer(id, Some("no".into()), person("phone"))
        .expect("first");
    assert_eq!(answers(&fx), [(id, Some("no".into()))]);
    assert_eq!(
        resolved(&fx),
        [(id, Some("no".into()), None, "phone".into())]
    );
    // What was answered, and to what, is audited.
    assert_eq!(
        audits(&fx),
        [(
            "agent.answer",
            format!("approval {id}: rejected once (no): run ls")
        )]
    );
    assert_eq!(
        a.answer(id, Some("once".into()), person("laptop")),
        Err(AnswerError::Conflict {
            approval: id,
            winner: "phone".into()
        })
    );
    assert_eq!(
        a.answer(99, None, person("laptop")),
        Err(AnswerError::NotFound(99))
    );
    assert_eq!(a.pending(), 0);
}

#[test]
fn an_option_the_request_does_not_have_is_refused_with_the_valid_ones() {
    let mut a = plain();
    let mut q = ask(shell("ls"));
    q.options = r#"[{"optionId":"once","name":"Allow once","kind":"allow_once"}]"#.into();
    let (id, _) = a.ask(q, Instant::now());
    let err = a
        .answer(id, Some("maybe".into()), person("phone"))
        .expect_err("no such option");
    assert_eq!(
        err.to_string(),
        format!(
            "approval {id} has no option \"maybe\"; its options: once (Allow once), always, no, never"
        )
    );
    assert_eq!(a.pending(), 1);
}

#[test]
fn always_makes_a_grant_of_the_session_and_the_agent_is_sent_once() {
    let mut a = plain();
    let (id, _) = a.ask(ask(shell("cargo test")), Instant::now());
    let fx = a
        .answer(id, Some("always".into()), person("phone"))
        .expect("answer");
    assert_eq!(answers(&fx), [(id, Some("once".into()))]);
    assert_eq!(
        resolved(&fx),
        [(
            id,
            Some("always".into()),
            Some("once".into()),
            "phone".into()
        )]
    );
    assert!(fx.contains(&Effect::Emit(AgentEventKind::Grant {
        grant: 1,
        scope: GrantScope::Command {
            command: "cargo test".into()
        },
        allow: true,
        by: "phone".into(),
        device: Some("phone-id".into()),
        approval: Some(id),
    })));
    assert!(audits(&fx).iter().any(|(e, d)| *e == "agent.grant"
        && d == &format!("grant 1: always allow cargo test (from approval {id})")));
    // The next request for that command (with more arguments) is answered by the grant.
    let (id2, fx) = a.ask(ask(shell("cargo test --release")), Instant::now());
    assert_eq!(answers(&fx), [(id2, Some("once".into()))]);
    assert_eq!(resolved(&fx)[0].3, "grant 1 (always: cargo test)");
    assert!(audits(&fx)[0].1.contains("by grant 1 (always: cargo test)"));
    assert_eq!(a.grants()[0].used, 1);
    // And so is a command the agent asks to run without asking first.
    assert!(runs(&mut a, "cargo test -p x"));
    // Another command still waits for a person.
    let (_, fx) = a.ask(ask(shell("cargo publish")), Instant::now());
    assert!(answers(&fx).is_empty());
    // Revoked: gone (in the next turn, when the one-turn grant of the answer is gone too).
    a.end(End::TurnStart);
    let fx = a.revoke_grant(1, person("laptop")).expect("revoke");
    assert!(matches!(
        fx[0],
        Effect::Emit(AgentEventKind::GrantRevoked { grant: 1, .. })
    ));
    assert_eq!(
        a.revoke_grant(1, person("laptop")),
        Err(GrantError::NotFound(1))
    );
    let (_, fx) = a.ask(ask(shell("cargo test")), Instant::now());
    assert!(answers(&fx).is_empty());
    assert!(!runs(&mut a, "cargo test"));
}

#[test]
fn never_makes_a_reject_grant_and_always_for_a_compound_command_counts_once_visibly() {
    let mut a = plain();
    let (id, _) = a.ask(ask(shell("git push")), Instant::now());
    let fx = a
        .answer(id, Some("never".into()), person("phone"))
        .expect("answer");
    assert_eq!(answers(&fx), [(id, Some("no".into()))]);
    let (id2, fx) = a.ask(ask(shell("git push origin main")), Instant::now());
    assert_eq!(answers(&fx), [(id2, Some("no".into()))]);
    assert_eq!(resolved(&fx)[0].3, "grant 1 (never: git push)");
    assert!(!runs(&mut a, "git push -u origin"));

    let (id, _) = a.ask(ask(shell("make && make install")), Instant::now());
    let fx = a
        .answer(id, Some("always".into()), person("phone"))
        .expect("answer");
    assert!(
        fx.iter().any(|e| matches!(e,
        Effect::Emit(AgentEventKind::Warning { message }) if message.contains("counts this once")))
    );
    assert_eq!(a.grants().len(), 1, "no grant for a compound command");
    // It still runs once, this turn.
    assert!(runs(&mut a, "make && make install"));
    assert!(!runs(&mut a, "make && make install"));
    // Without a once option the choice goes as it is.
    let only_always = vec![Choice {
        id: "always".into(),
        kind: OptionKind::AllowAlways,
    }];
    let (id, _) = a.ask(
        ask_with(json!({"kind": "edit"}), only_always),
        Instant::now(),
    );
    let fx = a
        .answer(id, Some("always".into()), person("phone"))
        .expect("answer");
    assert_eq!(answers(&fx), [(id, Some("always".into()))]);
    assert_eq!(resolved(&fx)[0].2, None);
    assert_eq!(
        a.grants()[1].scope,
        GrantScope::Kind {
            kind: "edit".into()
        }
    );
}

#[test]
fn the_deny_list_rejects_and_beats_allow_rules_and_grants() {
    let mut a = with_policy(Policy {
        mode: PolicyMode::AllowReads,
        deny: vec!["cargo test".into()],
        allow: vec!["cargo".into()],
        ..Policy::default()
    });
    a.add_grant(GrantScope::Session, true, person("phone"), None, 1)
        .expect("grant");
    let (id, fx) = a.ask(ask(shell("cargo test -q")), Instant::now());
    assert_eq!(answers(&fx), [(id, Some("no".into()))]);
    assert_eq!(resolved(&fx)[0].3, "policy (deny: cargo test)");
    assert_eq!(audits(&fx)[0].0, "agent.policy");
    // Reads are allowed once, by the policy.
    let (id, fx) = a.ask(
        ask(json!({"title": "cat a", "kind": "read"})),
        Instant::now(),
    );
    assert_eq!(answers(&fx), [(id, Some("once".into()))]);
    assert_eq!(resolved(&fx)[0].3, "policy (allow kind: read)");
    // A denied command never runs, whatever was granted.
    assert_eq!(
        a.may_run("cargo", &["test".to_string()], &root(), &root(), canon)
            .err(),
        Some(GateError::Denied("policy (deny: cargo test)".into()))
    );
    // A denied request without reject options is cancelled; an allowed one without an
    // allow_once option waits for a person.
    let (id, fx) = a.ask(ask_with(shell("cargo test"), vec![]), Instant::now());
    assert_eq!(answers(&fx), [(id, None)]);
    let always = vec![Choice {
        id: "always".into(),
        kind: OptionKind::AllowAlways,
    }];
    let (_, fx) = a.ask(ask_with(json!({"kind": "read"}), always), Instant::now());
    assert!(answers(&fx).is_empty());
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn a_request_left_unanswered_past_its_deadline_is_rejected() {
    let t0 = Instant::now();
    let mut a = Approvals::new(Rules::default(), Some(Duration::from_secs(5)), 1);
    let (id, fx) = a.ask(ask(shell("ls")), t0);
    let due = t0 + Duration::from_secs(5);
    assert_eq!(fx.last(), Some(&Effect::Deadline(Some(due))));
    let (id2, fx) = a.ask(ask(shell("ls")), t0 + Duration::from_secs(1));
    // The earliest deadline did not move.
    assert!(!fx.iter().any(|e| matches!(e, Effect::Deadline(_))));
    assert!(a.expire(t0 + Duration::from_secs(4)).is_empty());
    let fx = a.expire(due);
    assert_eq!(answers(&fx), [(id, Some("no".into()))]);
    assert_eq!(resolved(&fx)[0].3, "timeout");
    assert!(audits(&fx)[0].1.contains("by timeout"));
    assert_eq!(
        fx.last(),
        Some(&Effect::Deadline(Some(t0 + Duration::from_secs(6))))
    );
    // Answered in time, the other one disarms the deadline.
    let fx = a
        .answer(id2, Some("once".into()), person("phone"))
        .expect("answer");
    assert_eq!(fx.last(), Some(&Effect::Deadline(None)));
    assert_eq!(
        a.answer(id, None, person("phone")),
        Err(AnswerError::Conflict {
            approval: id,
            winner: "timeout".into()
        })
    );
}

#[test]
fn an_unknown_outcome_never_approves() {
    let mut a = plain();
    let odd = vec![
        Choice {
            id: "later".into(),
            kind: OptionKind::Unknown,
        },
        Choice {
            id: "once".into(),
            kind: OptionKind::AllowOnce,
        },
    ];
    // A person's choice of an option of unknown kind goes to the agent as it is, but starts
    // nothing and grants nothing.
    let (id, _) = a.ask(ask_with(shell("ls"), odd), Instant::now());
    let fx = a
        .answer(id, Some("later".into()), person("phone"))
        .expect("answer");
    assert_eq!(answers(&fx), [(id, Some("later".into()))]);
    assert!(audits(&fx)[0].1.contains("unknown kind"));
    assert!(!runs(&mut a, "ls"));
    assert!(a.grants().is_empty());
    // Cancelled, rejected, or allowed by a rule: no one-turn grant either.
    let (id, _) = a.ask(ask(shell("ls")), Instant::now());
    a.answer(id, None, person("phone")).expect("answer");
    assert!(!runs(&mut a, "ls"));
    let (id, _) = a.ask(ask(shell("ls")), Instant::now());
    a.answer(id, Some("no".into()), person("phone"))
        .expect("answer");
    assert!(!runs(&mut a, "ls"));
    let mut reads = with_policy(Policy {
        allow_kinds: vec!["execute".into()],
        ..Policy::default()
    });
    let (_, fx) = reads.ask(ask(shell("ls")), Instant::now());
    assert_eq!(resolved(&fx)[0].1.as_deref(), Some("once"));
    // (the rule itself allows the command)
    assert!(runs(&mut reads, "ls"));
    // A person's allow does.
    let (id, _) = a.ask(ask(shell("ls")), Instant::now());
    a.answer(id, Some("once".into()), person("phone"))
        .expect("answer");
    assert!(runs(&mut a, "ls"));
}

#[test]
fn a_one_turn_grant_is_consumed_once_and_covers_only_its_command() {
    let mut a = plain();
    let (id, _) = a.ask(ask(shell("echo hi")), Instant::now());
    a.answer(id, Some("once".into()), person("phone"))
        .expect("answer");
    assert!(!runs(&mut a, "rm -rf ~"), "another command");
    let root = root();
    let args = vec!["-c".to_string(), "echo hi".to_string()];
    let taken = a
        .may_run("/bin/sh", &args, &root, &root, canon)
        .expect("covered");
    assert_eq!(taken.approval(), id);
    assert_eq!(
        a.may_run("/bin/sh", &args, &root, &root, canon).err(),
        Some(GateError::NoGrant),
        "used up"
    );
    // A command that failed to start gives its grant back.
    a.give_back(taken);
    assert!(runs(&mut a, "echo hi"));
    // A shown cwd must be the one used.
    let tool = json!({"kind": "execute", "rawInput": {"command": "ls", "cwd": "/"}});
    let (id, _) = a.ask(ask(tool), Instant::now());
    a.answer(id, Some("once".into()), person("phone"))
        .expect("answer");
    assert_eq!(
        a.may_run("ls", &[], &root, &root, canon).err(),
        Some(GateError::Mismatch)
    );
    assert!(a.may_run("ls", &[], Path::new("/"), &root, canon).is_ok());
    // An approved edit is no licence to run anything.
    let (id, _) = a.ask(ask(json!({"kind": "edit", "title": "ls"})), Instant::now());
    a.answer(id, Some("once".into()), person("phone"))
        .expect("answer");
    assert!(!runs(&mut a, "ls"));
}

#[test]
fn one_turn_grants_are_dropped_when_a_turn_starts_ends_or_is_cancelled() {
    for end in [
        End::TurnStart,
        End::TurnEnd,
        End::Cancel { by: "phone".into() },
        End::AgentExit,
        End::Close,
    ] {
        let mut a = plain();
        let (id, _) = a.ask(ask(shell("ls")), Instant::now());
        a.answer(id, Some("once".into()), person("phone"))
            .expect("answer");
        a.end(end.clone());
        assert!(!runs(&mut a, "ls"), "{end:?}");
    }
}

#[test]
fn the_end_of_a_turn_answers_everything_pending_cancelled() {
    for (end, by) in [
        (End::TurnEnd, "turn ended"),
        (End::Cancel { by: "phone".into() }, "cancelled by phone"),
        (End::AgentExit, "the agent exited"),
        (End::Close, "session closed"),
    ] {
        let mut a = Approvals::new(Rules::default(), Some(Duration::from_secs(5)), 1);
        let (one, _) = a.ask(ask(shell("a")), Instant::now());
        let (two, _) = a.ask(ask(shell("b")), Instant::now());
        let fx = a.end(end);
        assert_eq!(answers(&fx), [(one, None), (two, None)]);
        assert_eq!(
            resolved(&fx),
            [(one, None, None, by.into()), (two, None, None, by.into())]
        );
        assert_eq!(fx.last(), Some(&Effect::Deadline(None)));
        assert_eq!(a.pending(), 0);
        assert!(matches!(
            a.answer(one, None, person("phone")),
            Err(AnswerError::Conflict { .. })
        ));
    }
    // A turn's start leaves pending requests alone.
    let mut a = plain();
    a.ask(ask(shell("a")), Instant::now());
    assert!(a.end(End::TurnStart).is_empty());
    assert_eq!(a.pending(), 1);
}

#[test]
fn requests_lost_in_a_host_restart_are_recorded_and_numbering_goes_on() {
    let mut a = plain();
    let fx = a.lost(&[2, 3]);
    assert_eq!(
        resolved(&fx),
        [
            (2, None, None, "host restart".into()),
            (3, None, None, "host restart".into())
        ]
    );
    assert!(answers(&fx).is_empty(), "nobody to answer");
    assert_eq!(a.ask(ask(shell("ls")), Instant::now()).0, 4);
    assert!(matches!(
        a.answer(2, None, person("phone")),
        Err(AnswerError::Conflict { .. })
    ));
}

#[test]
fn grants_made_by_hand_are_checked_and_numbered() {
    let mut a = plain();
    assert!(matches!(
        a.add_grant(
            GrantScope::Command {
                command: "rm $X".into()
            },
            true,
            person("p"),
            None,
            1
        ),
        Err(GrantError::Bad(_))
    ));
    let (g, fx) = a
        .add_grant(
            GrantScope::Kind {
                kind: "fetch".into(),
            },
            false,
            person("p"),
            None,
            5,
        )
        .expect("grant");
    assert_eq!((g.grant, g.at_ms, g.allow), (1, 5, false));
    assert!(fx.contains(&Effect::Grants));
    let (id, fx) = a.ask(
        ask(json!({"kind": "fetch", "rawInput": {"url": "https://x"}})),
        Instant::now(),
    );
    assert_eq!(answers(&fx), [(id, Some("no".into()))]);
}
