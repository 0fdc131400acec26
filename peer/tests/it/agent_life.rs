//! Nothing lost, nothing stuck: queued prompts across a host restart, starts that hang or
//! fail, agents started when needed and stopped when idle, repositories as people point at
//! them. A real `peer host`, the `peer` CLI, the scripted agent, real git repositories.

use std::path::Path;
use std::time::{Duration, Instant};

use peer_testkit::agents::{
    agent_host, alive, events, events_with, fake_agent_pid, find, git_repo,
};
use peer_testkit::{TestClient, TestHost};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn agent_text(evs: &[Value]) -> String {
    evs.iter()
        .filter(|e| e["kind"] == "update" && e["data"]["sessionUpdate"] == "agent_message_chunk")
        .map(|e| e["data"]["content"]["text"].as_str().unwrap_or(""))
        .collect()
}

fn info(client: &TestClient, id: &str) -> Value {
    let list: Vec<Value> =
        serde_json::from_str(&client.ok(&["agent", "ls", "--json"])).expect("json");
    list.into_iter()
        .find(|s| s["id"].as_u64().map(|n| n.to_string()).as_deref() == Some(id))
        .expect("listed")
}

fn new(client: &TestClient, agent: &str, repo: &Path, prompt: &[&str]) -> String {
    let repo = repo.to_string_lossy().into_owned();
    let mut args = vec!["agent", "new", "--agent", agent, "--repo", &repo];
    args.extend_from_slice(prompt);
    client.ok(&args).trim().to_string()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn branch_exists(repo: &Path, branch: &str) -> bool {
    git2::Repository::open(repo)
        .expect("open")
        .find_branch(branch, git2::BranchType::Local)
        .is_ok()
}

fn setup(toml: &str) -> (TestHost, TestClient, tempfile::TempDir, tempfile::TempDir) {
    let fake = peer_testkit::fake_agent_binary();
    let state = tempfile::tempdir().expect("tempdir");
    let (host, client, repo) = agent_host(&format!(
        "{toml}\n[agents.fake]\ncommand = [{fake:?}]\nenv = {{ PEER_FAKE_AGENT_STATE = {:?} }}\n",
        state.path().to_string_lossy()
    ));
    (host, client, repo, state)
}

#[test]
fn prompts_queued_before_a_host_restart_are_sent_after_it() {
    let (host, client, repo, _state) = setup("");
    let id = new(&client, "fake", repo.path(), &["wait"]);
    events_with(&client, &id, 0, "running", "update", T);
    for p in ["first queued", "second queued"] {
        let out = client.cli(&["agent", "send", &id, p]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("queued"));
    }
    assert_eq!(info(&client, &id)["queued_prompts"], 2);
    let before = events(&client, &id, 0, "running").len() as u64;
    let host = host.restart(&[]);
    let evs = events_with(&client, &id, before, "idle", "turn_end", T);
    let evs = if find(&evs, "turn_end").len() < 3 {
        // The cut turn, then the two queued ones.
        let deadline = Instant::now() + T;
        loop {
            let evs = events(&client, &id, before, "idle");
            if find(&evs, "turn_end").len() >= 3 {
                break evs;
            }
            assert!(Instant::now() < deadline, "{evs:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    } else {
        evs
    };
    let ends: Vec<&str> = find(&evs, "turn_end")
        .iter()
        .map(|e| e["data"]["stopReason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ends, ["interrupted", "end_turn", "end_turn"], "{evs:#?}");
    let starts: Vec<&str> = find(&evs, "turn_start")
        .iter()
        .map(|e| e["data"]["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(starts, ["first queued", "second queued"]);
    assert!(agent_text(&evs).contains("echo: first queuedecho: second queued"));
    assert!(find(&evs, "queue_cleared").is_empty());
    assert_eq!(info(&client, &id)["queued_prompts"], 0);
    drop(host);
}

#[test]
fn a_hanging_start_is_closed_or_cancelled_at_once_and_a_failed_one_says_why() {
    let fake = peer_testkit::fake_agent_binary();
    let (host, client, repo) = agent_host(&format!(
        "[sessions]\nstart_timeout_secs = 120\n\
         [agents.hang]\ncommand = [{fake:?}]\nenv = {{ FAKE_AGENT_HANG_START = \"1\" }}\n\
         [agents.slow]\ncommand = [{fake:?}]\nenv = {{ FAKE_AGENT_HANG_START = \"1\" }}\nstart_timeout_secs = 1\n\
         [agents.fail]\ncommand = [{fake:?}]\nenv = {{ FAKE_AGENT_FAIL_START = \"Error: no credentials; run fake login\" }}\n\
         [agents.nologin]\ncommand = [{fake:?}]\nlogin_env = [\"PEER_TEST_NO_SUCH_KEY\"]\nlogin_hint = \"run fake login\"\n"
    ));
    // Close during a start that hangs: at once, the process is gone, the empty worktree too.
    let id = new(&client, "hang", repo.path(), &[]);
    wait_until("the agent runs", || {
        fake_agent_pid(&host, &id).is_some_and(alive)
    });
    let pid = fake_agent_pid(&host, &id).expect("pid");
    let s = info(&client, &id);
    assert_eq!(s["state"], "starting");
    let t = Instant::now();
    client.ok(&["agent", "close", &id]);
    let close_ms = t.elapsed().as_millis();
    wait_until("the agent is gone", || !alive(pid));
    let gone_ms = t.elapsed().as_millis();
    eprintln!(
        "close during a hanging start: answered in {close_ms} ms, process gone after {gone_ms} ms"
    );
    assert!(
        close_ms < 5000 && gone_ms < 5000,
        "{close_ms} / {gone_ms} ms"
    );
    let evs = events_with(&client, &id, 0, "done", "warning", T);
    assert!(find(&evs, "closed").len() == 1);
    assert!(!Path::new(s["worktree"].as_str().expect("wt")).exists());
    assert!(!branch_exists(
        repo.path(),
        s["branch"].as_str().expect("branch")
    ));

    // Cancel during a start: the process goes, the prompt that waited is dropped, visibly.
    let id = new(&client, "hang", repo.path(), &["waiting for the start"]);
    wait_until("the agent runs", || {
        fake_agent_pid(&host, &id).is_some_and(alive)
    });
    let pid = fake_agent_pid(&host, &id).expect("pid");
    let t = Instant::now();
    client.ok(&["agent", "cancel", &id]);
    wait_until("the agent is gone", || !alive(pid));
    assert!(t.elapsed() < Duration::from_secs(5));
    // (Not attached: an attach would start the agent again.)
    wait_until("idle, start cancelled", || {
        let s = info(&client, &id);
        s["state"] == "idle"
            && s["detail"]
                .as_str()
                .unwrap_or("")
                .contains("start was cancelled by phone")
    });
    client.ok(&["agent", "close", &id]);
    let evs = events(&client, &id, 0, "done");
    assert_eq!(find(&evs, "queue_cleared")[0]["data"]["dropped"], 1);
    assert_eq!(find(&evs, "cancel").len(), 1);

    // A start timeout of its own.
    let id = new(&client, "slow", repo.path(), &[]);
    let evs = events(&client, &id, 0, "failed");
    let err = find(&evs, "error")[0]["data"]["message"]
        .as_str()
        .expect("message")
        .to_string();
    assert!(err.contains("did not start within 1 s"), "{err}");

    // A start that fails shows what the agent said; the session leaves nothing behind.
    let id = new(&client, "fail", repo.path(), &["hello"]);
    let evs = events_with(&client, &id, 0, "failed", "warning", T);
    let err = find(&evs, "error")[0]["data"]["message"]
        .as_str()
        .expect("message")
        .to_string();
    assert!(err.contains("exited with status 7"), "{err}");
    assert!(err.contains("its last lines on stderr"), "{err}");
    assert!(
        err.contains("Error: no credentials; run fake login"),
        "{err}"
    );
    let s = info(&client, &id);
    assert!(
        s["detail"]
            .as_str()
            .expect("detail")
            .contains("(stderr: fake agent: giving up)"),
        "{s}"
    );
    assert!(find(&evs, "queue_cleared").len() == 1);
    assert!(!Path::new(s["worktree"].as_str().expect("wt")).exists());
    assert!(!branch_exists(
        repo.path(),
        s["branch"].as_str().expect("branch")
    ));
    assert!(find(&evs, "warning").iter().any(|w| {
        w["data"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("never started")
    }));
    // Closing the failed session is recorded: a client waiting for `done` sees it.
    client.ok(&["agent", "close", &id]);
    let evs = events(&client, &id, 0, "done");
    let tail: Vec<&str> = evs[evs.len() - 2..]
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(tail, ["closed", "state"]);
    assert_eq!(evs.last().expect("last")["data"]["state"], "done");

    // An agent the host knows needs a login: said at `agent new`, with how.
    let out = client.cli(&[
        "agent",
        "new",
        "--agent",
        "nologin",
        "--repo",
        &repo.path().to_string_lossy(),
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: no login for nologin was found on the host; it may fail to start (to log in: run fake login)"), "{err}");
    drop(host);
}

#[test]
fn agents_start_when_needed_and_stop_when_idle_keeping_their_conversation() {
    let (host, client, repo, _state) = setup("[sessions]\nidle_stop_secs = 1\n");
    let id = new(&client, "fake", repo.path(), &["hello"]);
    events(&client, &id, 0, "idle");
    let first = fake_agent_pid(&host, &id).expect("pid");
    let t = Instant::now();
    wait_until("the idle agent stops", || !alive(first));
    eprintln!(
        "idle agent stopped {} ms after its turn (idle_stop_secs = 1)",
        t.elapsed().as_millis()
    );
    wait_until("the stop is recorded", || {
        info(&client, &id)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("stopped after"))
    });
    let s = info(&client, &id);
    assert_eq!(s["state"], "idle");
    assert!(
        s["detail"]
            .as_str()
            .unwrap_or("")
            .contains("stopped after 1 s without a turn"),
        "{s}"
    );
    // A prompt starts it again; it loads its conversation.
    let from = s["next_seq"].as_u64().expect("seq");
    client.ok(&["agent", "send", &id, "history"]);
    let evs = events_with(&client, &id, from, "idle", "turn_end", T);
    assert_eq!(find(&evs, "resumed")[0]["data"]["method"], "session/load");
    assert!(
        agent_text(&evs).contains("history: 1 prompts"),
        "{}",
        agent_text(&evs)
    );
    let second = fake_agent_pid(&host, &id).expect("pid");
    assert_ne!(first, second);

    // A host restart starts no agent for an idle session; an attach does.
    let host = host.restart(&[]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        fake_agent_pid(&host, &id),
        Some(second),
        "an agent was started at host start"
    );
    assert!(!alive(second));
    let from = info(&client, &id)["next_seq"].as_u64().expect("seq");
    events_with(&client, &id, from, "idle", "resumed", T);
    assert_ne!(fake_agent_pid(&host, &id), Some(second));

    // An agent that can neither load nor resume is never stopped for idleness.
    drop(host);
    let (_host2, client2, repo2, _state2) = {
        let fake = peer_testkit::fake_agent_binary();
        let state = tempfile::tempdir().expect("tempdir");
        let (h, c, r) = agent_host(&format!(
            "[sessions]\nidle_stop_secs = 1\n[agents.fake]\ncommand = [{fake:?}]\nenv = {{ FAKE_AGENT_LOAD = \"0\" }}\n"
        ));
        (h, c, r, state)
    };
    let id = new(&client2, "fake", repo2.path(), &["hello"]);
    events(&client2, &id, 0, "idle");
    let pid = fake_agent_pid(&_host2, &id).expect("pid");
    std::thread::sleep(Duration::from_secs(3));
    assert!(alive(pid), "an agent that cannot resume was stopped");
}

#[test]
fn repositories_as_people_point_at_them() {
    let (_host, client, repo, _state) = setup("");
    // A directory inside the repository: that repository, the agent working in it.
    let deep = tempfile::tempdir().expect("tempdir");
    git_repo(
        deep.path(),
        &[("a.txt", "one\n"), ("sub/dir/keep.txt", "k\n")],
    );
    let out = client.cli(&[
        "agent",
        "new",
        "--agent",
        "fake",
        "--repo",
        &deep.path().join("sub/dir").to_string_lossy(),
        "write made.txt hello",
    ]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    let s = info(&client, &id);
    let wt = Path::new(s["worktree"].as_str().expect("wt")).to_path_buf();
    assert!(
        err.contains(&format!(
            "the agent works in {}",
            wt.join("sub/dir").display()
        )),
        "{err}"
    );
    events(&client, &id, 0, "idle");
    assert_eq!(
        std::fs::read_to_string(wt.join("sub/dir/made.txt")).expect("made"),
        "hello\n"
    );
    assert_eq!(
        std::fs::canonicalize(s["repo"].as_str().expect("repo")).expect("c"),
        std::fs::canonicalize(deep.path()).expect("c")
    );

    // An empty repository, a relative path for a remote host: refused, with the reason.
    let empty = tempfile::tempdir().expect("tempdir");
    git2::Repository::init(empty.path()).expect("init");
    let out = client.cli(&[
        "agent",
        "new",
        "--agent",
        "fake",
        "--repo",
        &empty.path().to_string_lossy(),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no commits yet"),
        "{out:?}"
    );
    let out = client.cli(&["agent", "new", "--agent", "fake", "--repo", "."]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is a relative path, which names a directory on this machine"),
        "{out:?}"
    );

    // Uncommitted changes: warned about, or brought along.
    std::fs::write(repo.path().join("a.txt"), "changed\n").expect("edit");
    std::fs::write(repo.path().join("new.txt"), "untracked\n").expect("new");
    let r = repo.path().to_string_lossy().into_owned();
    let out = client.cli(&["agent", "new", "--agent", "fake", "--repo", &r]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has 2 file(s) with uncommitted changes")
            && err.contains("--with-changes brings them"),
        "{err}"
    );
    let plain = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let wt = info(&client, &plain)["worktree"]
        .as_str()
        .expect("wt")
        .to_string();
    assert_eq!(
        std::fs::read_to_string(Path::new(&wt).join("a.txt")).expect("a"),
        "one\n"
    );
    let out = client.cli(&[
        "agent",
        "new",
        "--agent",
        "fake",
        "--repo",
        &r,
        "--with-changes",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("2 file(s) with uncommitted changes were copied"),
        "{out:?}"
    );
    let with = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let wt = info(&client, &with)["worktree"]
        .as_str()
        .expect("wt")
        .to_string();
    assert_eq!(
        std::fs::read_to_string(Path::new(&wt).join("a.txt")).expect("a"),
        "changed\n"
    );
    assert_eq!(
        std::fs::read_to_string(Path::new(&wt).join("new.txt")).expect("new"),
        "untracked\n"
    );

    // `peer agents` says how to install what is missing.
    let agents: Vec<Value> = serde_json::from_str(&client.ok(&["agents", "--json"])).expect("json");
    let missing: Vec<&Value> = agents.iter().filter(|a| a["installed"] == false).collect();
    if let Some(m) = missing.iter().find(|a| a["name"] == "codex") {
        assert_eq!(
            m["install_hint"],
            "npm install -g @agentclientprotocol/codex-acp"
        );
        assert!(
            client
                .ok(&["agents"])
                .contains("to install: npm install -g @agentclientprotocol/codex-acp")
        );
    }
}
