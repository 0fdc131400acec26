//! Shells outlive `peer host`: each session's keeper keeps the program and its output while
//! the host is gone (SIGKILL, SIGTERM, a binary replaced between two runs), the next host takes
//! the session over, and a client attached before resumes at its exact byte by itself.

use std::path::Path;
use std::time::{Duration, Instant};

use peer_testkit::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// Bigger than the whole stream, so that what the keeper holds while no host reads covers it.
const BUFFER: &str = "33554432";

fn sessions(client: &TestClient) -> Vec<Value> {
    match serde_json::from_str(&client.ok(&["ls", "--json"])).expect("json") {
        Value::Array(list) => list,
        other => panic!("not a list: {other}"),
    }
}

/// Streams `seq 1 N` to an attached client, restarts the host mid-stream with `restart`, and
/// checks that the client got every byte exactly once.
fn a_stream_survives(restart: impl FnOnce(TestHost) -> TestHost) {
    let mut host = TestHost::start(&["--buffer", BUFFER]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    let n = 2_000_000; // 14.9 MB
    let expected = seq_pty_output(n);
    let mut a = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    a.wait_len(1_000_000, Duration::from_secs(60));
    let host = restart(host);
    assert_eq!(a.wait_exit(Duration::from_secs(120)), 0, "{}", a.stderr());
    let got = a.out.lock().expect("lock").clone();
    assert_eq!(got.len(), expected.len(), "{}", a.stderr());
    assert_eq!(sha256(&got), sha256(&expected));
    assert!(a.stderr().contains("reconnected"), "{}", a.stderr());
    // The ended session is listed by the host that saw it end.
    let list = sessions(&client);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "exited", "{list:?}");
    drop(host);
}

#[test]
fn a_stream_survives_a_sigkilled_host() {
    a_stream_survives(|host| host.crash_restart(&["--no-pairing"]));
}

#[test]
fn a_stream_survives_a_host_stopped_with_sigterm() {
    a_stream_survives(|host| host.restart(&["--no-pairing"]));
}

#[test]
fn a_stream_survives_a_host_binary_replaced_between_two_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("peer");
    std::fs::copy(peer_binary(), &bin).expect("copy peer");
    let mut host = TestHost::start_copy(
        &bin,
        dir.path(),
        tempfile::tempdir().expect("home"),
        &["--buffer", BUFFER],
    );
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    let n = 2_000_000;
    let expected = seq_pty_output(n);
    let mut a = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    a.wait_len(1_000_000, Duration::from_secs(60));
    // An upgrade: stop, put a new file where the binary was (the running keepers keep the old
    // one's pages), start again.
    let host = host.stop_then(|| replace(&bin), &["--no-pairing"]);
    assert_eq!(a.wait_exit(Duration::from_secs(120)), 0, "{}", a.stderr());
    let got = a.out.lock().expect("lock").clone();
    assert_eq!(sha256(&got), sha256(&expected));
    drop(host);
}

/// Writes a copy of the `peer` binary next to `bin` and renames it over `bin` (as package
/// managers and `install` do).
fn replace(bin: &Path) {
    let new = bin.with_extension("new");
    std::fs::copy(peer_binary(), &new).expect("copy peer");
    std::fs::rename(&new, bin).expect("rename over the old binary");
}

#[test]
fn a_shell_keeps_its_pid_environment_and_job_across_a_crash_and_input_is_not_repeated() {
    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    let mut a = client.spawn(&["attach", "--new", "--", "sh"]);
    a.type_str("export KEPT=yes-$((20+22)); sleep 300 & echo pid-$$ job-$! mark-$((1+1))\n");
    a.wait_for("mark-2", T);
    let out = a.stdout();
    let line = out
        .lines()
        .find(|l| l.contains("mark-2") && !l.contains("echo"))
        .unwrap_or_else(|| panic!("{out}"));
    let field = |key: &str| -> String {
        line.split(key)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("{key} in {line:?}"))
            .to_owned()
    };
    let (pid, job) = (field("pid-"), field("job-"));

    let host = host.crash_restart(&["--no-pairing"]);
    // The same client goes on by itself; a keystroke typed while the host was down arrives once.
    a.type_str("echo after-$$-$KEPT-$(kill -0 ");
    a.type_str(&job);
    a.type_str(" && echo alive)\n");
    a.wait_for(
        &format!("after-{pid}-yes-42-alive"),
        Duration::from_secs(60),
    );
    let list = sessions(&client);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "running", "{list:?}");
    let ls = host.cli(&["ls", "--json"]);
    assert!(ls.status.success(), "{ls:?}");

    // A second attach sees the same screen; the first, the second's keystrokes.
    let mut b = client.spawn(&["attach", "1"]);
    b.wait_for("alive", T);
    b.type_str("echo from-b-$((5*5))\n");
    a.wait_for("from-b-25", T);
    let count = a.stdout().matches("after-").count();
    assert_eq!(count, 2, "echoed once and printed once: {:?}", a.stdout());
    a.type_str("exit 7\n");
    assert_eq!(a.wait_exit(T), 7, "{}", a.stderr());
    assert_eq!(b.wait_exit(T), 7, "{}", b.stderr());
    drop(host);
}

#[test]
fn a_host_stops_promptly_while_a_kept_program_floods_and_the_flood_goes_on() {
    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    // Detached: nothing holds the reader back, so the PTY is readable at every look.
    let id = client.ok(&["new", "--", "yes"]);
    let end = |client: &TestClient| -> u64 {
        sessions(client)[0]["output_bytes"]
            .as_u64()
            .expect("output_bytes")
    };
    let deadline = Instant::now() + T;
    while end(&client) < 1_000_000 {
        assert!(Instant::now() < deadline, "no flood");
        std::thread::sleep(Duration::from_millis(50));
    }
    // `restart` asserts that the host stopped within 10 s of SIGTERM: the reader hands the PTY
    // over between two chunks even though the PTY never stops being readable.
    let host = host.restart(&["--no-pairing"]);
    let at = end(&client);
    let deadline = Instant::now() + T;
    while end(&client) < at + 1_000_000 {
        assert!(Instant::now() < deadline, "the flood stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sessions(&client)[0]["state"], "running");
    client.ok(&["kill", id.trim()]);
    drop(host);
}

#[test]
fn kill_sessions_on_exit_ends_shells_with_the_host() {
    let mut host = TestHost::start(&["--kill-sessions-on-exit"]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    let id = client.ok(&["new", "--", "sleep", "300"]);
    let id: u64 = id.trim().parse().expect("id");
    let host = host.restart(&["--no-pairing"]);
    let list = sessions(&client);
    let s = list
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(s["state"], "exited", "{s}");
    drop(host);
}

#[test]
fn a_keeper_whose_state_directory_is_removed_hangs_up_and_goes() {
    let home = tempfile::tempdir().expect("home");
    let home_path = home.path().to_owned();
    let mut host = TestHost::start_in(home, &[]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    // A command line no other process has.
    let marker = format!("sleep 300.{}", std::process::id());
    client.ok(&["new", "--", "sh", "-c", &format!("exec {marker}")]);
    let pgrep = || {
        std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let deadline = Instant::now() + T;
    while !pgrep() {
        assert!(Instant::now() < deadline, "the session never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL the host, then remove its state directory: nothing is left to come back to.
    let pid = host.pid();
    signal(pid, "KILL");
    std::thread::sleep(Duration::from_millis(200));
    std::fs::remove_dir_all(&home_path).expect("remove the state directory");
    let deadline = Instant::now() + Duration::from_secs(15);
    while pgrep() {
        assert!(
            Instant::now() < deadline,
            "the shell outlived its removed state directory"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(host);
}
