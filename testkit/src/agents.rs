//! Helpers of the agent tests: git repositories to run agents in, and transcripts read through
//! the CLI.

use std::path::Path;

use serde_json::Value;

use crate::{TestClient, TestHost, pair};

/// A git repository in `dir` with one commit holding `files` (path, content).
pub fn git_repo(dir: &Path, files: &[(&str, &str)]) {
    let repo = git2::Repository::init(dir).expect("init");
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.write().expect("index write");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let sig = git2::Signature::now("t", "t@example.com").expect("sig");
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .expect("commit");
}

/// Events from `from` until the session is in one of `until` (after catching up), as
/// `peer agent attach --json` prints them.
pub fn events(client: &TestClient, id: &str, from: u64, until: &str) -> Vec<Value> {
    let out = client.ok(&[
        "agent",
        "attach",
        id,
        "--json",
        "--no-input",
        "--from",
        &from.to_string(),
        "--until",
        until,
    ]);
    out.lines()
        .map(|l| serde_json::from_str(l).expect("event json"))
        .collect()
}

/// The events of one kind.
pub fn find<'a>(evs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["kind"] == kind).collect()
}

/// A `peer host` whose `host/agents.toml` is `agents_toml`, a client paired with it, and a git
/// repository with one committed file (`a.txt`) to start agents in.
pub fn agent_host(agents_toml: &str) -> (TestHost, TestClient, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join("host")).expect("mkdir");
    std::fs::write(home.path().join("host/agents.toml"), agents_toml).expect("agents.toml");
    let mut host = TestHost::start_in(home, &[]);
    let client = TestClient::new();
    pair(&mut host, &client, "phone");
    let repo = tempfile::tempdir().expect("tempdir");
    git_repo(repo.path(), &[("a.txt", "one\n")]);
    (host, client, repo)
}

/// Events from `from` until one of kind `kind` has come and the session is in one of `until`
/// (an attach that catches up may end at a state recorded before the awaited event).
pub fn events_with(
    client: &TestClient,
    id: &str,
    from: u64,
    until: &str,
    kind: &str,
    timeout: std::time::Duration,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let evs = events(client, id, from, until);
        if !find(&evs, kind).is_empty() {
            return evs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {kind} event: {evs:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether process `pid` runs (and is no zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// The pid the scripted agent of session `id` wrote last (`<PEER_HOME>/host/agent-state/<id>`).
pub fn fake_agent_pid(host: &TestHost, id: &str) -> Option<u32> {
    std::fs::read_to_string(
        host.home
            .path()
            .join("host/agent-state")
            .join(id)
            .join("fake-agent.pid"),
    )
    .ok()
    .and_then(|s| s.trim().parse().ok())
}
