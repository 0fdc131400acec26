//! Ended PTY sessions are remembered in `peer.db`: listed with their exit status and last
//! output after a host restart, attachable (their last output, then the exit status), until
//! `peer kill` forgets them; the newest `--keep-ended N` are kept.

use std::time::{Duration, Instant};

use peer_testkit::*;
use serde_json::Value;

fn sessions(client: &TestClient) -> Vec<Value> {
    let ls = client.ok(&["ls", "--json"]);
    match serde_json::from_str(&ls).expect("json") {
        Value::Array(list) => list,
        other => panic!("not a list: {other}"),
    }
}

fn find(list: &[Value], id: u64) -> Option<&Value> {
    list.iter().find(|s| s["id"] == id)
}

/// Starts `sh -c script` and waits until the list shows it ended; returns its id.
fn run_to_end(client: &TestClient, script: &str) -> u64 {
    let id: u64 = client
        .ok(&["new", "--", "sh", "-c", script])
        .trim()
        .parse()
        .expect("id");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if find(&sessions(client), id).is_some_and(|s| s["state"] == "exited") {
            return id;
        }
        assert!(Instant::now() < deadline, "session {id} never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ended_sessions_are_listed_after_a_host_restart_until_forgotten_and_capped() {
    let mut host = TestHost::start(&["--keep-ended", "2"]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    let first = run_to_end(&client, "printf 'last words\\n'; exit 3");

    let host = host.restart(&[]);
    let list = sessions(&client);
    let s = find(&list, first).unwrap_or_else(|| panic!("{first} not listed: {list:?}"));
    assert_eq!(s["state"], "exited", "{s}");
    assert_eq!(s["exit_code"], 3, "{s}");
    assert_eq!(s["last_line"], "last words", "{s}");
    assert!(s["ended_at_ms"].as_u64().is_some(), "{s}");
    assert!(client.ok(&["ls"]).contains("exited (3)"));

    // Attaching shows what it printed last, and ends with its status.
    let mut a = client.spawn(&["attach", &first.to_string()]);
    assert_eq!(a.wait_exit(Duration::from_secs(20)), 3, "{}", a.stderr());
    assert!(a.stdout().contains("last words"), "{:?}", a.stdout());
    assert!(a.stderr().contains("exited (3)"), "{}", a.stderr());

    // Forgotten with `peer kill`; a new session does not take a remembered id.
    client.ok(&["kill", &first.to_string()]);
    assert!(find(&sessions(&client), first).is_none());
    let out = client.cli(&["kill", &first.to_string()]);
    assert!(!out.status.success(), "a forgotten session is gone");

    let ids: Vec<u64> = [4, 5, 6]
        .iter()
        .map(|code| run_to_end(&client, &format!("exit {code}")))
        .collect();
    assert!(ids[0] > first, "{ids:?} after {first}");
    let _host = host.restart(&[]);
    let list = sessions(&client);
    let kept: Vec<(u64, u64)> = list
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().expect("id"),
                s["exit_code"].as_u64().expect("code"),
            )
        })
        .collect();
    assert_eq!(kept, [(ids[1], 5), (ids[2], 6)], "the newest two: {list:?}");
}
