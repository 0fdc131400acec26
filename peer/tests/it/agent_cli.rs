//! The CLI as a tool people script and type into: what typed lines mean in `peer agent
//! attach`, Ctrl-C, reconnecting, errors said once, library logs off the terminal, a closed
//! stdout. A real `peer host`, the `peer` CLI and the scripted agent.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peer_testkit::agents::{agent_host, events, events_with, find, git_repo};
use peer_testkit::impair::{Impairment, UdpImpairProxy, route_only_through};
use peer_testkit::{TestClient, TestHost, pair};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn setup() -> (TestHost, TestClient, tempfile::TempDir, tempfile::TempDir) {
    let fake = peer_testkit::fake_agent_binary();
    let state = tempfile::tempdir().expect("tempdir");
    let (host, client, repo) = agent_host(&format!(
        "[agents.fake]\ncommand = [{fake:?}]\nenv = {{ PEER_FAKE_AGENT_STATE = {:?} }}\n",
        state.path().to_string_lossy()
    ));
    (host, client, repo, state)
}

fn new(client: &TestClient, repo: &tempfile::TempDir, prompt: &str) -> String {
    let r = repo.path().to_string_lossy().into_owned();
    client
        .ok(&["agent", "new", "--agent", "fake", "--repo", &r, prompt])
        .trim()
        .to_string()
}

fn prompts(client: &TestClient, id: &str) -> Vec<String> {
    find(
        &events(client, id, 0, "idle,waiting_approval,running"),
        "prompt",
    )
    .iter()
    .map(|e| e["data"]["text"].as_str().unwrap_or("").to_string())
    .collect()
}

#[test]
fn typed_lines_answer_approvals_only_when_one_waits_and_slash_lines_are_checked() {
    let (_host, client, repo, _state) = setup();
    let id = new(&client, &repo, "hello");
    events(&client, &id, 0, "idle");
    let mut a = client.spawn(&["agent", "attach", &id]);
    a.wait_for("agent: echo: hello", T);
    // A digit with no approval waiting is not sent unless confirmed.
    a.type_str("1\n");
    a.wait_err("no approval is waiting", T);
    a.type_str("n\n");
    a.wait_err("-- not sent", T);
    // An approval: a number that is no option is refused, y allows once.
    a.type_str("ask\n");
    a.wait_for("? approval 1: cargo test [execute]", T);
    a.type_str("7\n");
    a.wait_err("approval 1 has options 1-3; nothing was sent", T);
    a.type_str("y\n");
    a.wait_for("✓ approval 1: Allow once (phone)", T);
    a.wait_for("agent: permission: allow", T);
    // An unknown /command is sent only after a confirmation; //text sends /text.
    a.type_str("/foo bar\n");
    a.wait_err("/foo is not a command of peer or of the agent", T);
    a.type_str("y\n");
    a.wait_for("agent: echo: /foo bar", T);
    a.type_str("//baz\n");
    a.wait_for("agent: echo: /baz", T);
    // The agent's own commands: listed, in /help, sent as they are.
    a.type_str("all\n");
    a.wait_for("-- the agent's commands: /test (/help describes them)", T);
    a.type_str("/help\n");
    a.wait_err("/test       run tests", T);
    a.type_str("/test now\n");
    a.wait_for("agent: echo: /test now", T);
    a.type_str("/diff\n");
    a.wait_err("-- no changes in the worktree", T);
    let sent = prompts(&client, &id);
    assert!(
        !sent
            .iter()
            .any(|p| p == "1" || p == "7" || p == "n" || p == "y"),
        "{sent:?}"
    );
    // Every event in words: no JSON, no tool call ids, no device ids.
    let out = a.stdout();
    assert!(!out.contains("{\""), "{out}");
    assert!(
        !out.contains("t-ask") && !out.contains("toolCallId"),
        "{out}"
    );
    assert!(out.contains("-- mode: code"), "{out}");
    assert!(out.contains("plan:\n  ✓ step 1\n  ○ step 2"), "{out}");

    // Ctrl-C cancels the turn and says so; twice detaches.
    a.type_str("wait\n");
    a.wait_for("agent: waiting", T);
    a.signal("INT");
    a.wait_err(
        "-- cancelling the turn (Ctrl-C again within 2 s detaches)",
        T,
    );
    a.wait_for("-- turn ended: cancelled", T);
    a.signal("INT");
    std::thread::sleep(Duration::from_millis(200));
    a.signal("INT");
    a.wait_err("-- detached; the session goes on", T);
    assert_eq!(a.wait_exit(T), 0);
}

#[test]
fn an_attach_reconnects_after_a_host_restart_and_catches_up() {
    let (host, client, repo, _state) = setup();
    let id = new(&client, &repo, "hello");
    events(&client, &id, 0, "idle");
    let mut a = client.spawn(&["agent", "attach", &id, "--no-input"]);
    a.wait_for("agent: echo: hello", T);
    let host = host.restart(&[]);
    a.wait_err("connection lost", T);
    client.ok(&["agent", "send", &id, "after the restart"]);
    a.wait_err("reconnected; catching up from event", T);
    a.wait_for("agent: echo: after the restart", T);
    // Each event once.
    assert_eq!(
        a.stdout().matches("agent: echo: hello").count(),
        1,
        "{}",
        a.stdout()
    );
    assert!(
        a.child.try_wait().expect("wait").is_none(),
        "the attach ended"
    );
    drop((a, host));
}

/// A network loss, not a host restart: the attached CLI's only path to the host goes through a
/// proxy that drops every packet until the CLI notices (the connection's idle timeout), while
/// another device sends prompts and the agent asks for an approval. When packets flow again
/// the CLI reconnects, shows every event exactly once, and answers the approval asked during
/// the loss.
#[test]
fn an_attach_reconnects_after_a_network_loss_and_catches_up_once() {
    // The host on `::1` only and the proxy in front of it on 127.0.0.1, as in `faults`: the
    // client learns no other way to the host.
    let state = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join("host")).expect("mkdir");
    std::fs::write(
        home.path().join("host/agents.toml"),
        format!(
            "[agents.fake]\ncommand = [{:?}]\nenv = {{ PEER_FAKE_AGENT_STATE = {:?} }}\n",
            peer_testkit::fake_agent_binary(),
            state.path().to_string_lossy()
        ),
    )
    .expect("agents.toml");
    let mut host = TestHost::start_in(home, &["--listen", "::1"]);
    let client = TestClient::new();
    pair(&mut host, &client, "phone");
    let laptop = TestClient::new();
    host.fresh_url();
    pair(&mut host, &laptop, "laptop");
    let repo = tempfile::tempdir().expect("tempdir");
    git_repo(repo.path(), &[("a.txt", "one\n")]);
    let id = new(&client, &repo, "hello");
    events(&client, &id, 0, "idle");
    let clear = Impairment {
        delay: Duration::from_millis(1),
        loss: 0.0,
    };
    let front = "127.0.0.1:0".parse().expect("addr");
    let proxy = UdpImpairProxy::start(front, host.udp_addr("::1".parse().expect("ip")), clear);
    route_only_through(&client, proxy.addr);
    let mut a = client.spawn(&["agent", "attach", &id]);
    a.wait_for("agent: echo: hello", T);
    assert!(
        proxy.bytes_to_client() > 0,
        "the attach did not go through the proxy"
    );

    proxy.set(Impairment { loss: 1.0, ..clear });
    let cut = Instant::now();
    for i in 1..=3 {
        laptop.ok(&["agent", "send", &id, &format!("during the loss {i}")]);
    }
    laptop.ok(&["agent", "send", &id, "ask"]);
    events_with(&laptop, &id, 0, "waiting_approval", "permission", T);
    a.wait_err("connection lost", T);
    let noticed = cut.elapsed();
    let got_during = proxy.bytes_to_client();
    proxy.set(clear);
    let back = Instant::now();
    a.wait_err("reconnected; catching up from event", T);
    a.wait_for("? approval 1: cargo test [execute]", T);
    eprintln!(
        "network loss: noticed after {} ms, caught up {} ms after the link came back",
        noticed.as_millis(),
        back.elapsed().as_millis()
    );
    assert!(proxy.bytes_to_client() > got_during);
    let out = a.stdout();
    for line in [
        "agent: echo: hello",
        "agent: echo: during the loss 1",
        "agent: echo: during the loss 2",
        "agent: echo: during the loss 3",
        "? approval 1: cargo test [execute]",
    ] {
        assert_eq!(out.matches(line).count(), 1, "{line:?} in:\n{out}");
    }
    // Events in the order the host recorded them.
    let at = |l: &str| out.find(l).unwrap_or(usize::MAX);
    assert!(
        at("during the loss 1") < at("during the loss 2")
            && at("during the loss 2") < at("during the loss 3")
            && at("during the loss 3") < at("? approval 1:"),
        "{out}"
    );
    // The approval asked while the link was down is answered from the reconnected attach.
    a.type_str("y\n");
    a.wait_for("✓ approval 1: Allow once (phone)", T);
    a.wait_for("agent: permission: allow", T);
    assert!(
        a.child.try_wait().expect("wait").is_none(),
        "the attach ended"
    );
    drop((a, host));
}

#[test]
fn errors_are_said_once_library_logs_stay_off_the_terminal_and_a_closed_stdout_ends_quietly() {
    let (_host, client, repo, _state) = setup();
    let out = client.cli_quiet(&["agent", "new", "--agent", "nosuch", "--repo", "/tmp"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("no agent named \"nosuch\"").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let id = new(&client, &repo, "hello");
    events(&client, &id, 0, "idle");
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        let out = client.cli_quiet(&["agent", "ls"]);
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "a client command wrote to stderr"
        );
    }
    eprintln!(
        "{n} × `peer agent ls` without -v: nothing on stderr ({} ms)",
        t.elapsed().as_millis()
    );
    let out = client.cli_quiet(&["-vv", "agent", "ls"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DEBUG"),
        "-vv logs to stderr"
    );

    // `peer agent attach --json | head -1`: the reader goes away; peer ends, no panic.
    let mut child = Command::new(peer_testkit::peer_binary())
        .env("PEER_HOME", client.home.path())
        .env("PEER_KEY_STORE", "file")
        .env_remove("RUST_LOG")
        .args(["agent", "attach", &id, "--json", "--no-input"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a line");
    let _: Value = serde_json::from_str(&first).expect("json line");
    drop(stdout);
    client.ok(&["agent", "send", &id, "flood 1000"]);
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "peer kept running with nobody reading"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(141), "{err}");
    assert_eq!(err, "");
    // (The flood is more than a pipe holds: read the state, not the events.)
    let deadline = Instant::now() + T;
    loop {
        let list: Vec<Value> =
            serde_json::from_str(&client.ok(&["agent", "ls", "--json"])).expect("json");
        if list[0]["state"] == "idle" && list[0]["next_seq"].as_u64() > Some(1000) {
            break;
        }
        assert!(Instant::now() < deadline, "{list:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
