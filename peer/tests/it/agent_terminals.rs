//! The host runs commands for an agent (ACP `terminal/*`) only with an approval of that command
//! in the same turn: a real `peer host`, the `peer` CLI, the scripted agent (`peer-fake-agent`,
//! prompts `run`, `runin`, `swap`, `sneak`) and a real git repository.

use std::path::PathBuf;

use peer_testkit::agents::{agent_host, events, find};
use peer_testkit::{TestClient, TestHost};
use serde_json::Value;

fn agent_text(evs: &[Value]) -> String {
    evs.iter()
        .filter(|e| e["kind"] == "update" && e["data"]["sessionUpdate"] == "agent_message_chunk")
        .map(|e| e["data"]["content"]["text"].as_str().unwrap_or(""))
        .collect()
}

struct S {
    client: TestClient,
    id: String,
    next: u64,
    _host: TestHost,
    _repo: tempfile::TempDir,
}

impl S {
    /// Sends `prompt`; answers its approval with `answer` if given; returns the turn's events.
    fn turn(&mut self, prompt: &str, answer: Option<&str>) -> Vec<Value> {
        self.client.ok(&["agent", "send", &self.id, prompt]);
        if let Some(option) = answer {
            let evs = events(&self.client, &self.id, self.next, "waiting_approval");
            let n = find(&evs, "permission").last().expect("permission")["data"]["approval"]
                .to_string();
            self.client.ok(&["agent", "approve", &self.id, &n, option]);
        }
        // The session may still be idle from before when the attach catches up: wait for the
        // turn's end.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let evs = loop {
            let evs = events(&self.client, &self.id, self.next, "idle");
            if !find(&evs, "turn_end").is_empty() {
                break evs;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no turn end: {evs:#?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        self.next = evs.last().and_then(|e| e["seq"].as_u64()).expect("seq") + 1;
        evs
    }
}

#[test]
fn commands_run_only_with_an_approval_of_that_command_in_the_same_turn() {
    let fake = peer_testkit::fake_agent_binary();
    let (host, client, repo) = agent_host(&format!("[agents.fake]\ncommand = [{fake:?}]\n"));
    let id = client
        .ok(&[
            "agent",
            "new",
            "--agent",
            "fake",
            "--repo",
            &repo.path().to_string_lossy(),
        ])
        .trim()
        .to_string();
    let first = events(&client, &id, 0, "idle");
    let list: Vec<Value> =
        serde_json::from_str(&client.ok(&["agent", "ls", "--json"])).expect("json");
    let wt = PathBuf::from(list[0]["worktree"].as_str().expect("worktree"));
    let mut s = S {
        client,
        id,
        next: first.len() as u64,
        _host: host,
        _repo: repo,
    };

    // Allowed: runs in the worktree, output and exit status come back.
    let evs = s.turn("run pwd; echo hi > ran.txt", Some("allow"));
    let text = agent_text(&evs);
    assert!(text.starts_with("exit 0: "), "{text}");
    let real_wt = std::fs::canonicalize(&wt).expect("canonical");
    assert!(text.contains(&*real_wt.to_string_lossy()), "{text}");
    assert_eq!(
        std::fs::read_to_string(wt.join("ran.txt")).expect("ran"),
        "hi\n"
    );
    let term = find(&evs, "terminal");
    assert_eq!(term.len(), 1);
    assert_eq!(
        term[0]["data"]["approval"],
        find(&evs, "permission")[0]["data"]["approval"]
    );

    // Rejected: the agent does not even try.
    let evs = s.turn("run echo no > rejected.txt", Some("reject"));
    assert_eq!(agent_text(&evs), "not allowed");
    assert!(!wt.join("rejected.txt").exists());

    // Not asked at all: refused.
    let evs = s.turn("sneak echo x > sneak.txt", None);
    let text = agent_text(&evs);
    assert!(text.starts_with("refused: not approved"), "{text}");
    assert_eq!(find(&evs, "terminal_refused").len(), 1);
    assert!(!wt.join("sneak.txt").exists());

    // An approval given (and not used) in an earlier turn is gone.
    let evs = s.turn("ask", Some("allow"));
    assert!(agent_text(&evs).contains("permission: allow"));
    let evs = s.turn("sneak cargo test", None);
    assert!(
        agent_text(&evs).starts_with("refused: not approved"),
        "{}",
        agent_text(&evs)
    );

    // Allowed one command, asked to run another: refused.
    let evs = s.turn("swap echo x > swapped.txt", Some("allow"));
    let text = agent_text(&evs);
    assert!(text.contains("not the one that was allowed"), "{text}");
    assert!(!wt.join("swapped.txt").exists());

    // One approval, one command: the same approval does not run it twice.
    let evs = s.turn("run echo twice >> twice.txt", Some("always"));
    assert!(agent_text(&evs).starts_with("exit 0"));
    let resolved = find(&evs, "permission_resolved")[0];
    assert_eq!(resolved["data"]["optionId"], "always");
    assert_eq!(resolved["data"]["forwarded"], "allow");
    let evs = s.turn("sneak echo twice >> twice.txt", None);
    assert!(agent_text(&evs).starts_with("refused"));
    assert_eq!(
        std::fs::read_to_string(wt.join("twice.txt")).expect("twice"),
        "twice\n"
    );

    // A cwd outside the worktree: refused even when allowed; inside: fine.
    let evs = s.turn("runin / pwd", Some("allow"));
    let text = agent_text(&evs);
    assert!(text.contains("outside the session's worktree"), "{text}");
    std::fs::create_dir(wt.join("sub")).expect("mkdir");
    let evs = s.turn("runin sub pwd", Some("allow"));
    let text = agent_text(&evs);
    assert!(
        text.starts_with("exit 0: ") && text.trim_end().ends_with("/sub"),
        "{text}"
    );
}
