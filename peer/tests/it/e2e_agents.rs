//! Agent sessions end to end: a real `peer host`, the `peer` CLI as client, our scripted ACP
//! agent (`peer-fake-agent`) and real git repositories in temp directories.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use peer_testkit::agents::{agent_host, events, events_with, find};
use peer_testkit::{TestClient, TestHost, pair};
use serde_json::Value;

struct Setup {
    host: TestHost,
    client: TestClient,
    repo: tempfile::TempDir,
    _agent_state: tempfile::TempDir,
}

fn setup_with(policy: &str) -> Setup {
    setup_full(policy, "")
}

/// `env` is extra TOML inline-table entries for the fake agent's environment.
fn setup_full(policy: &str, env: &str) -> Setup {
    let fake = peer_testkit::fake_agent_binary();
    let agent_state = tempfile::tempdir().expect("tempdir");
    let (host, client, repo) = agent_host(&format!(
        "{policy}\n[agents.fake]\ncommand = [{fake:?}]\nenv = {{ PEER_FAKE_AGENT_STATE = {:?}{env} }}\n",
        agent_state.path().to_string_lossy()
    ));
    Setup {
        host,
        client,
        repo,
        _agent_state: agent_state,
    }
}

fn setup() -> Setup {
    setup_with("")
}

impl Setup {
    fn new_session(&self, prompt: &str) -> String {
        let repo = self.repo.path().to_string_lossy().into_owned();
        self.client
            .ok(&["agent", "new", "--agent", "fake", "--repo", &repo, prompt])
            .trim()
            .to_string()
    }
}

fn session_json(client: &TestClient, id: &str) -> Value {
    let out = client.ok(&["agent", "ls", "--json"]);
    let list: Vec<Value> = serde_json::from_str(&out).expect("json");
    list.into_iter()
        .find(|s| s["id"].as_u64().map(|n| n.to_string()).as_deref() == Some(id))
        .expect("session listed")
}

fn kinds(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

fn agent_text(evs: &[Value]) -> String {
    evs.iter()
        .filter(|e| e["kind"] == "update" && e["data"]["sessionUpdate"] == "agent_message_chunk")
        .map(|e| e["data"]["content"]["text"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn every_event_kind_is_recorded_in_order_and_catch_up_starts_anywhere() {
    let s = setup();
    let agents = s.client.ok(&["agents", "--json"]);
    let agents: Vec<Value> = serde_json::from_str(&agents).expect("json");
    let names: BTreeSet<&str> = agents.iter().filter_map(|a| a["name"].as_str()).collect();
    for n in [
        "claude",
        "codex",
        "gemini",
        "opencode",
        "qwen",
        "fast-agent",
        "fake",
    ] {
        assert!(names.contains(n), "{n} missing from {names:?}");
    }
    let fake = agents.iter().find(|a| a["name"] == "fake").expect("fake");
    assert_eq!(fake["installed"], true);
    // An agent that is not installed is refused before any worktree is made.
    let repo = s.repo.path().to_string_lossy().into_owned();
    let out = s
        .client
        .cli(&["agent", "new", "--agent", "opencode", "--repo", &repo, "hi"]);
    if agents
        .iter()
        .any(|a| a["name"] == "opencode" && a["installed"] == false)
    {
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not installed"));
    }
    let out = s
        .client
        .cli(&["agent", "new", "--agent", "nope", "--repo", &repo]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no agent named"));
    let out = s.client.cli(&[
        "agent",
        "new",
        "--agent",
        "fake",
        "--repo",
        "/nonexistent/repo",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("/nonexistent/repo does not exist on the host")
    );
    let not_repo = tempfile::tempdir().expect("tempdir");
    let out = s.client.cli(&[
        "agent",
        "new",
        "--agent",
        "fake",
        "--repo",
        &not_repo.path().to_string_lossy(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not in a git repository"));

    let id = s.new_session("all");
    let evs = events(&s.client, &id, 0, "idle");
    // Sequence numbers start at 0 and have no holes.
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["seq"], i as u64, "{evs:?}");
    }
    let k = kinds(&evs);
    for want in [
        "state",
        "started",
        "prompt",
        "turn_start",
        "update",
        "turn_end",
    ] {
        assert!(k.iter().any(|x| x == want), "no {want} in {k:?}");
    }
    let updates: BTreeSet<&str> = find(&evs, "update")
        .iter()
        .filter_map(|e| e["data"]["sessionUpdate"].as_str())
        .collect();
    for want in [
        "user_message_chunk",
        "agent_thought_chunk",
        "agent_message_chunk",
        "tool_call",
        "tool_call_update",
        "plan",
        "available_commands_update",
        "current_mode_update",
        "session_info_update",
        "usage_update",
        "some_future_kind",
    ] {
        assert!(updates.contains(want), "no {want} in {updates:?}");
    }
    let diff = find(&evs, "update")
        .into_iter()
        .find(|e| e["data"]["sessionUpdate"] == "tool_call_update")
        .expect("tool call update");
    assert_eq!(diff["data"]["content"][0]["type"], "diff");
    assert_eq!(diff["data"]["content"][0]["newText"], "two");
    assert_eq!(find(&evs, "turn_end")[0]["data"]["stopReason"], "end_turn");
    let states: Vec<&str> = find(&evs, "state")
        .iter()
        .filter_map(|e| e["data"]["state"].as_str())
        .collect();
    assert_eq!(states, ["starting", "running", "idle"]);

    // Catch-up from an old sequence number gives exactly the tail.
    let from = 5u64;
    let tail = events(&s.client, &id, from, "idle");
    assert_eq!(tail.len(), evs.len() - from as usize);
    assert_eq!(tail[..], evs[from as usize..]);

    let info = session_json(&s.client, &id);
    assert_eq!(info["state"], "idle");
    assert_eq!(info["next_seq"], evs.len() as u64);
    assert!(
        Path::new(info["worktree"].as_str().expect("worktree"))
            .join("a.txt")
            .exists()
    );
}

#[test]
fn an_approval_answered_by_two_clients_at_once_has_exactly_one_winner() {
    let mut s = setup();
    let second = TestClient::new();
    s.host.fresh_url();
    pair(&mut s.host, &second, "laptop");

    let id = s.new_session("ask");
    let evs = events(&s.client, &id, 0, "waiting_approval");
    let ask = find(&evs, "permission")[0].clone();
    assert_eq!(ask["data"]["approval"], 1);
    assert_eq!(ask["data"]["toolCall"]["kind"], "execute");
    // Nobody is attached, and the agent keeps waiting for an answer.
    std::thread::sleep(Duration::from_millis(1500));
    let info = session_json(&second, &id);
    assert_eq!(info["pending_approvals"], 1);
    assert_eq!(info["state"], "waiting_approval");
    assert_eq!(info["attached"], 0);

    // Both answer at the same moment, with different options.
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| s.client.cli(&["agent", "approve", &id, "1", "allow"]));
        let b = sc.spawn(|| second.cli(&["agent", "approve", &id, "1", "reject"]));
        (a.join().expect("a"), b.join().expect("b"))
    });
    assert_ne!(
        a.status.success(),
        b.status.success(),
        "exactly one answer wins: {a:?} {b:?}"
    );
    let loser = if a.status.success() { &b } else { &a };
    let winner = if a.status.success() {
        "phone"
    } else {
        "laptop"
    };
    let chosen = if a.status.success() {
        "allow"
    } else {
        "reject"
    };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("already answered by"), "{err}");

    let evs = events(&s.client, &id, 0, "idle");
    let resolved = find(&evs, "permission_resolved");
    assert_eq!(resolved.len(), 1, "{evs:?}");
    assert_eq!(resolved[0]["data"]["by"], winner);
    assert_eq!(resolved[0]["data"]["optionId"], chosen);
    assert!(agent_text(&evs).contains(&format!("permission: {chosen}")));

    // A viewer sees everything and may not prompt or answer.
    let viewer = TestClient::new();
    let out = s.host.cli(&["pair", "--no-wait", "--role", "viewer"]);
    let url = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("pairing URL: ").map(str::to_owned))
        .expect("url");
    viewer.ok(&["pair", &url, "--name", "tv"]);
    assert!(!events(&viewer, &id, 0, "idle").is_empty());
    let out = viewer.cli(&["agent", "send", &id, "hi"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("viewer"));
    assert!(!viewer.cli(&["agent", "cancel", &id]).status.success());
}

#[test]
fn prompts_queue_behind_a_turn_and_cancel_ends_it() {
    let s = setup();
    let id = s.new_session("ask");
    events(&s.client, &id, 0, "waiting_approval");
    // A prompt during the turn waits, visibly.
    let out = s.client.cli(&["agent", "send", &id, "second"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("queued"));
    assert_eq!(session_json(&s.client, &id)["queued_prompts"], 1);
    s.client.ok(&["agent", "approve", &id, "1", "allow"]);
    let evs = events(&s.client, &id, 0, "idle");
    let prompts = find(&evs, "prompt");
    assert_eq!(prompts[1]["data"]["queued"], true);
    assert_eq!(find(&evs, "turn_end").len(), 2);
    assert!(agent_text(&evs).contains("echo: second"));

    // Cancel mid-turn: the agent ends the turn `cancelled`; the approval is answered too.
    let from = session_json(&s.client, &id)["next_seq"]
        .as_u64()
        .expect("seq");
    s.client.ok(&["agent", "send", &id, "ask"]);
    events(&s.client, &id, from, "waiting_approval");
    s.client.ok(&["agent", "send", &id, "dropped"]);
    s.client.ok(&["agent", "cancel", &id]);
    let evs = events(&s.client, &id, from, "idle");
    let k = kinds(&evs);
    assert!(k.contains(&"cancel".to_string()), "{k:?}");
    assert!(k.contains(&"queue_cleared".to_string()), "{k:?}");
    let resolved = find(&evs, "permission_resolved");
    assert_eq!(resolved[0]["data"]["outcome"], "cancelled");
    assert_eq!(
        find(&evs, "turn_end").last().expect("turn end")["data"]["stopReason"],
        "cancelled"
    );
    assert!(!agent_text(&evs).contains("echo: dropped"));
    // Nothing to cancel now.
    assert!(!s.client.cli(&["agent", "cancel", &id]).status.success());
}

#[test]
fn an_agent_that_crashes_mid_turn_fails_the_session_clearly() {
    let s = setup();
    let id = s.new_session("crash");
    let evs = events(&s.client, &id, 0, "failed");
    assert!(agent_text(&evs).contains("about to crash"));
    let err = find(&evs, "error");
    assert!(
        err[0]["data"]["message"]
            .as_str()
            .expect("message")
            .contains("exited with status 3"),
        "{err:?}"
    );
    assert_eq!(
        find(&evs, "turn_end").last().expect("end")["data"]["stopReason"],
        "failed"
    );
    let info = session_json(&s.client, &id);
    assert_eq!(info["state"], "failed");
    let out = s.client.cli(&["agent", "send", &id, "hello"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn a_host_restart_keeps_the_transcript_and_marks_the_cut_turn_interrupted() {
    restart_mid_approval(false);
}

/// The same with SIGKILL: no chance to write anything on the way down. What a client saw was
/// committed before it was sent, so it is all there after the restart.
#[test]
fn a_host_crash_keeps_the_transcript_and_marks_the_cut_turn_interrupted() {
    restart_mid_approval(true);
}

fn restart_mid_approval(crash: bool) {
    let s = setup();
    let id = s.new_session("hello");
    let before = events(&s.client, &id, 0, "idle");
    s.client.ok(&["agent", "send", &id, "ask"]);
    let before_restart = events(&s.client, &id, 0, "waiting_approval");
    let Setup {
        host,
        client,
        repo,
        _agent_state,
    } = s;
    let host = if crash {
        host.crash_restart(&[])
    } else {
        host.restart(&[])
    };
    let after = events(&client, &id, 0, "interrupted");
    // Everything recorded before the restart is there, unchanged.
    assert_eq!(after[..before_restart.len()], before_restart[..]);
    assert_eq!(after[..before.len()], before[..]);
    let tail = &after[before_restart.len()..];
    let k = kinds(tail);
    assert!(k.contains(&"turn_end".to_string()), "{k:?}");
    let end = find(tail, "turn_end")[0];
    assert_eq!(end["data"]["stopReason"], "interrupted");
    let resolved = find(tail, "permission_resolved")[0];
    assert_eq!(resolved["data"]["by"], "host restart");

    // The agent starts when needed (here: the prompt) and loads its conversation: it
    // remembers both earlier prompts.
    let from = before_restart.len() as u64;
    client.ok(&["agent", "send", &id, "history"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let all = loop {
        let all = events(&client, &id, from, "idle");
        if agent_text(&all).contains("history: ") {
            break all;
        }
        assert!(std::time::Instant::now() < deadline, "{all:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let resumed = find(&all, "resumed")[0];
    assert_eq!(resumed["data"]["method"], "session/load");
    assert!(
        agent_text(&all).contains("history: 2 prompts"),
        "{}",
        agent_text(&all)
    );
    drop((host, repo));
}

#[test]
fn diffs_of_the_worktree_and_removal_of_worktree_and_branch() {
    let s = setup();
    let id = s.new_session("write notes.txt hello world");
    let evs = events(&s.client, &id, 0, "idle");
    let call = find(&evs, "update")
        .into_iter()
        .find(|e| e["data"]["sessionUpdate"] == "tool_call")
        .expect("tool call");
    assert_eq!(call["data"]["content"][0]["newText"], "hello world\n");

    let d: Value =
        serde_json::from_str(&s.client.ok(&["agent", "diff", &id, "--json"])).expect("json");
    let files = d["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{d}");
    assert_eq!(files[0]["path"], "notes.txt");
    assert_eq!(files[0]["status"], "added");
    assert!(
        files[0]["patch"]
            .as_str()
            .expect("patch")
            .contains("+hello world")
    );
    // The user's own checkout is untouched.
    assert!(!s.repo.path().join("notes.txt").exists());

    let info = session_json(&s.client, &id);
    let wt = info["worktree"].as_str().expect("wt").to_string();
    let branch = info["branch"].as_str().expect("branch").to_string();
    assert!(Path::new(&wt).join("notes.txt").exists());
    s.client.ok(&["agent", "close", &id, "--remove"]);
    assert!(!Path::new(&wt).exists());
    let repo = git2::Repository::open(s.repo.path()).expect("open");
    assert!(repo.find_branch(&branch, git2::BranchType::Local).is_err());
    assert_eq!(session_json(&s.client, &id)["state"], "done");
}

#[test]
fn the_audit_log_records_who_did_what_without_secrets() {
    let s = setup_with("[policy]\ndeny = [\"cargo test\"]\n");
    let id = s.new_session("echo key sk-abcdefghijklmnopqrstuvwxyz123456");
    events(&s.client, &id, 0, "idle");
    // The deny list answers without asking anyone.
    s.client.ok(&["agent", "send", &id, "ask"]);
    let evs = events(&s.client, &id, 0, "idle");
    let resolved = find(&evs, "permission_resolved");
    assert_eq!(resolved[0]["data"]["optionId"], "reject");
    assert!(
        resolved[0]["data"]["by"]
            .as_str()
            .expect("by")
            .contains("policy (deny: cargo test)")
    );

    let out = s.host.cli(&["audit", "--json"]);
    assert!(out.status.success());
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let events: Vec<&str> = rows.iter().filter_map(|r| r["event"].as_str()).collect();
    for want in [
        "pair",
        "connect",
        "agent.new",
        "agent.prompt",
        "agent.attach",
    ] {
        assert!(events.contains(&want), "{want} not in {events:?}");
    }
    let new = rows
        .iter()
        .find(|r| r["event"] == "agent.new")
        .expect("agent.new");
    assert_eq!(new["device_name"], "phone");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("sk-abcdefghijklmnopqrstuvwxyz123456"));
    assert!(text.contains("[redacted]"));
    // The transcript itself keeps what the user typed.
    assert!(agent_text(&evs).contains("sk-abcdefghijklmnopqrstuvwxyz123456"));
}

#[test]
fn the_interactive_attach_prompts_answers_inline_and_knows_slash_commands() {
    let s = setup();
    let id = s.new_session("hello");
    events(&s.client, &id, 0, "idle");
    let mut a = s.client.spawn(&["agent", "attach", &id]);
    let t = Duration::from_secs(20);
    a.wait_for("echo: hello", t);
    a.type_str("second prompt\n");
    a.wait_for("echo: second prompt", t);
    // An approval, answered inline with its option number.
    a.type_str("ask\n");
    a.wait_for("? approval 1: cargo test", t);
    a.type_str("1\n");
    a.wait_for("permission: allow", t);
    a.wait_for("✓ approval 1: Allow once (phone)", t);
    // Mode switch: the agent confirms with a current_mode_update.
    a.type_str("/mode plan\n");
    a.wait_for("-- mode: plan", t);
    // The fake agent has no options: the refusal is shown, the attach goes on.
    a.type_str("/model big\n");
    let deadline = std::time::Instant::now() + t;
    while !a.stderr().contains("the agent refused") {
        assert!(std::time::Instant::now() < deadline, "{}", a.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    // A new session of the same agent and repository, attached at once.
    a.type_str("/new fresh start\n");
    a.wait_for("echo: fresh start", t);
    let list: Vec<Value> =
        serde_json::from_str(&s.client.ok(&["agent", "ls", "--json"])).expect("json");
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["repo"], list[0]["repo"]);
    drop(a);
    let out = s.client.ok(&["agent", "mode", &id, "code"]);
    assert!(out.is_empty());
}

#[test]
fn the_policy_allows_reads_and_times_out_unanswered_requests() {
    let s = setup_with("[policy]\nmode = \"allow_reads\"\ntimeout_secs = 1\n");
    let id = s.new_session("read");
    let evs = events(&s.client, &id, 0, "idle");
    let resolved = find(&evs, "permission_resolved");
    assert_eq!(resolved[0]["data"]["optionId"], "allow");
    assert_eq!(resolved[0]["data"]["by"], "policy (allow kind: read)");
    assert!(agent_text(&evs).contains("permission: allow"));

    let from = evs.len() as u64;
    s.client.ok(&["agent", "send", &id, "ask"]);
    let evs = events(&s.client, &id, from, "idle");
    let resolved = find(&evs, "permission_resolved");
    assert_eq!(resolved[0]["data"]["by"], "timeout");
    assert_eq!(resolved[0]["data"]["optionId"], "reject");
    assert!(agent_text(&evs).contains("permission: reject"));
}

#[test]
fn after_a_restart_agents_without_load_are_resumed_or_started_anew() {
    for (env, method, remembered) in [
        (
            ", FAKE_AGENT_LOAD = \"0\", FAKE_AGENT_RESUME = \"1\"",
            "session/resume",
            1,
        ),
        (", FAKE_AGENT_LOAD = \"0\"", "session/new", 0),
    ] {
        let s = setup_full("", env);
        let id = s.new_session("hello");
        let before = events(&s.client, &id, 0, "idle");
        let Setup {
            host,
            client,
            repo,
            _agent_state,
        } = s;
        let host = host.restart(&[]);
        let after = events(&client, &id, 0, "idle");
        assert_eq!(after[..before.len()], before[..]);
        // No turn was cut off.
        assert!(find(&after[before.len()..], "turn_end").is_empty());
        // The agent starts again when needed (the attach above, or the prompt).
        let from = after.len() as u64;
        client.ok(&["agent", "send", &id, "history"]);
        let evs = events_with(
            &client,
            &id,
            from,
            "idle",
            "turn_end",
            Duration::from_secs(30),
        );
        let all = events(&client, &id, before.len() as u64, "idle");
        let resumed = find(&all, "resumed")[0];
        assert_eq!(resumed["data"]["method"], method, "{env}");
        assert!(
            agent_text(&evs).contains(&format!("history: {remembered} prompts")),
            "{env}: {}",
            agent_text(&evs)
        );
        drop((host, repo, _agent_state));
    }
}
