//! End to end over the direct path: the real `peer` binaries, two state directories, loopback.

use std::time::Duration;

use peer_testkit::*;

#[test]
fn pair_attach_detach_reattach_and_exit_status() {
    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    assert!(client.ok(&["hosts"]).contains("operator"));

    // Create and attach in one step; type, see the echo.
    let mut a = client.spawn(&["attach", "--new", "--", "sh"]);
    a.type_str("echo hi-$((40+2))\n");
    a.wait_for("hi-42", Duration::from_secs(20));
    // Output that appears only after we detach.
    a.type_str("(sleep 1; echo while-$((2*3))-detached) &\n");
    a.type_str("\n~.");
    assert_eq!(
        a.wait_exit(Duration::from_secs(10)),
        0,
        "stderr: {}",
        a.stderr()
    );
    assert!(
        a.stderr().contains("detached from session 1"),
        "{}",
        a.stderr()
    );
    assert!(!a.stdout().contains("while-6-detached"));

    std::thread::sleep(Duration::from_millis(1500));
    let ls = client.ok(&["ls", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&ls).expect("json");
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["state"], "running");
    assert_eq!(list[0]["attached"], 0);

    // Reattach: the output produced while detached is replayed.
    let mut b = client.spawn(&["attach", "1"]);
    b.wait_for("while-6-detached", Duration::from_secs(20));
    b.type_str("exit 3\n");
    assert_eq!(
        b.wait_exit(Duration::from_secs(10)),
        3,
        "stderr: {}",
        b.stderr()
    );

    // The ended session is listed with its status until it is forgotten.
    let ls = client.ok(&["ls"]);
    assert!(ls.contains("exited (3)"), "{ls}");
    client.ok(&["kill", "1"]);
    assert!(!client.ok(&["ls"]).contains("exited (3)"));

    // A command that does not exist is a clear error, and the host keeps serving.
    let out = client.cli(&["new", "--", "/no/such/program"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot start \"/no/such/program\""), "{err}");
    assert!(client.ok(&["ls"]).contains("ID"));
}

#[test]
fn stream_survives_a_client_sleep_byte_exact() {
    // A 32 MiB buffer holds the whole stream, so the resume can be exact.
    let mut host = TestHost::start(&["--buffer", "33554432"]);
    let client = TestClient::new();
    pair(&mut host, &client, "sleeper");

    let n = 3_000_000; // 20.9 MB of output
    let expected = seq_pty_output(n);
    let mut a = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    a.wait_len(2_000_000, Duration::from_secs(60));
    // The laptop sleeps twice the idle timeout: the connection dies on both sides even when
    // a loaded machine delays the host's timers by seconds.
    signal(a.child.id(), "STOP");
    std::thread::sleep(2 * peer::net::IDLE_TIMEOUT);
    signal(a.child.id(), "CONT");
    assert_eq!(
        a.wait_exit(Duration::from_secs(120)),
        0,
        "stderr: {}",
        a.stderr()
    );
    let got = a.out.lock().expect("lock").clone();
    assert_eq!(got.len(), expected.len(), "stderr: {}", a.stderr());
    assert_eq!(sha256(&got), sha256(&expected));
    assert!(
        a.stderr().contains("reconnected"),
        "no reconnect happened: {}",
        a.stderr()
    );
}

#[test]
fn output_older_than_the_buffer_is_reported_plainly() {
    // A buffer much smaller than the output, and room enough for the screen model (which
    // never holds the program back) to follow it.
    let mut host = TestHost::start(&["--buffer", "65536"]);
    let client = TestClient::new();
    pair(&mut host, &client, "late");
    let id = client.ok(&[
        "new",
        "--",
        "sh",
        "-c",
        "seq 1 40000; echo END-OF-RUN; sleep 60",
    ]);
    assert_eq!(id.trim(), "1");
    std::thread::sleep(Duration::from_millis(1500));
    let mut a = client.spawn(&["attach", "1", "--replay", "1000000"]);
    a.wait_for("END-OF-RUN", Duration::from_secs(20));
    a.type_str("\n~.");
    a.wait_exit(Duration::from_secs(10));
    assert!(
        a.stderr().contains("bytes of output were lost"),
        "{}",
        a.stderr()
    );
    // Only what the buffer holds was replayed.
    assert!(a.stdout_len() <= 65536, "{}", a.stdout_len());

    // Without --replay: a picture of the screen as it is, with what scrolled off above it
    // (the host's model saw every byte), and nothing reported lost.
    let t = std::time::Instant::now();
    let mut b = client.spawn(&["attach", "1"]);
    b.wait_for("END-OF-RUN", Duration::from_secs(20));
    let took = t.elapsed();
    b.type_str("\n~.");
    b.wait_exit(Duration::from_secs(10));
    let out = b.stdout();
    assert!(!b.stderr().contains("lost"), "{}", b.stderr());
    // 1000 lines of scrollback: 39000 … 40000 and the screen.
    assert!(
        out.contains("\n39500\r\n") || out.contains("39500"),
        "{out}"
    );
    assert!(out.contains("40000"), "{out}");
    assert!(b.stdout_len() < 100_000, "{}", b.stdout_len());
    eprintln!(
        "attach with a picture: {} bytes written to the terminal, {took:?} to the last line (process start included)",
        b.stdout_len()
    );
}

#[test]
fn host_restart_is_explained_to_attached_clients() {
    // Sessions that do not outlive the host (the default keeps them: `keeper.rs`).
    let mut host = TestHost::start(&["--kill-sessions-on-exit"]);
    let client = TestClient::new();
    pair(&mut host, &client, "watcher");
    let mut a = client.spawn(&["attach", "--new", "--", "sh"]);
    a.type_str("echo ready-$((3*3))\n");
    a.wait_for("ready-9", Duration::from_secs(20));
    // SIGTERM: the host tells its clients it is going away, kills the session, then comes
    // back on the same ports and remembers how the session ended.
    let host = host.restart(&["--no-pairing"]);
    assert_eq!(a.wait_exit(Duration::from_secs(30)), 255);
    let err = a.stderr();
    assert!(err.contains("shutting down"), "{err}");
    assert!(err.contains("session 1 killed (Hangup)"), "{err}");
    // The device is still paired after the restart.
    assert!(client.ok(&["ls"]).contains("ID"));
    drop(host);
}

#[test]
fn a_slow_client_throttles_the_process_instead_of_losing_output() {
    // A 64 KiB buffer and a 2 MB stream: only backpressure can deliver every byte.
    let mut host = TestHost::start(&["--buffer", "65536"]);
    let client = TestClient::new();
    pair(&mut host, &client, "slow");
    let n = 300_000;
    let expected = seq_pty_output(n);
    let mut a = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    a.wait_len(100_000, Duration::from_secs(60));
    // Stalled well within the host's lag grace (even on a loaded machine): the process waits
    // for us. Without backpressure the 64 KiB buffer would overflow many times over meanwhile.
    signal(a.child.id(), "STOP");
    std::thread::sleep(Duration::from_millis(300));
    signal(a.child.id(), "CONT");
    assert_eq!(a.wait_exit(Duration::from_secs(60)), 0, "{}", a.stderr());
    let got = a.out.lock().expect("lock").clone();
    assert!(!a.stderr().contains("lost"), "{}", a.stderr());
    assert_eq!(sha256(&got), sha256(&expected));
}

#[test]
fn attach_new_gets_the_first_byte_even_when_the_process_outruns_the_buffer() {
    // `head` fills the 64 KiB buffer many times over before the attach stream can arrive; the
    // host holds the output from offset 0 for the creator's attachment (`hold_output`).
    let mut host = TestHost::start(&["--buffer", "65536"]);
    let client = TestClient::new();
    pair(&mut host, &client, "creator");
    let n = 3_000_000;
    let expected = vec![0u8; n];
    for _ in 0..3 {
        let mut a = client.spawn(&[
            "attach",
            "--new",
            "--",
            "head",
            "-c",
            &n.to_string(),
            "/dev/zero",
        ]);
        assert_eq!(a.wait_exit(Duration::from_secs(60)), 0, "{}", a.stderr());
        let got = a.out.lock().expect("lock").clone();
        assert!(!a.stderr().contains("lost"), "{}", a.stderr());
        assert_eq!(sha256(&got), sha256(&expected));
    }
}

#[test]
fn exited_follows_the_last_byte_even_while_another_client_lags() {
    let mut host = TestHost::start(&["--buffer", "65536"]);
    let client = TestClient::new();
    pair(&mut host, &client, "pair-of-eyes");
    // The process writes once the test says so: both clients attached, the slow one stalling.
    let dir = tempfile::tempdir().expect("tempdir");
    let go = dir.path().join("go");
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; \
         head -c 3000000 /dev/zero | tr '\\0' x; echo; echo DONE",
        go.display()
    );
    let id = client.ok(&["new", "--", "sh", "-c", &script]);
    let id = id.trim();
    let mut slow = client.spawn(&["attach", id, "--replay", "0"]);
    let mut fast = client.spawn(&["attach", id, "--replay", "0"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ls = client.ok(&["ls", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&ls).expect("json");
        if list[0]["attached"] == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never both attached: {list}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The slow client keeps stalling for a bit less than the host's lag grace, so it stays
    // "live" and holds the PTY reader back again and again, up to the very end: the stream
    // (3 MB) is more than its QUIC stream window (1.25 MB) and the host's buffer together.
    let slow_pid = slow.child.id();
    let stop = StopOnDrop::default();
    let stop2 = stop.0.clone();
    let staller = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            signal(slow_pid, "STOP");
            std::thread::sleep(Duration::from_millis(1200));
            signal(slow_pid, "CONT");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    std::fs::write(&go, b"").expect("go");
    let mut expected = vec![b'x'; 3_000_000];
    expected.extend_from_slice(b"\r\nDONE\r\n");
    assert_eq!(
        fast.wait_exit(Duration::from_secs(30)),
        0,
        "{}",
        fast.stderr()
    );
    let got = fast.out.lock().expect("lock").clone();
    assert_eq!(got.len(), expected.len(), "{}", fast.stderr());
    assert_eq!(sha256(&got), sha256(&expected));
    drop(stop);
    let _ = staller.join();
    signal(slow_pid, "CONT");
    // The slow client was held for, not dropped: it lost nothing either.
    assert_eq!(
        slow.wait_exit(Duration::from_secs(60)),
        0,
        "{}",
        slow.stderr()
    );
    assert!(!slow.stderr().contains("lost"), "{}", slow.stderr());
    assert_eq!(sha256(&slow.out.lock().expect("lock")), sha256(&expected));
}

/// Set on drop: a helper thread's stop flag that a failing assertion sets too.
#[derive(Default)]
struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `peer attach` reads the keyboard on its runtime, without a thread of its own in between (a
/// wake-up of another thread per keystroke), from stdin opened anew: the non-blocking mode that
/// takes does not reach the stdin it shares with its parent (a shell would find its own input
/// non-blocking after the attach).
#[test]
fn attach_reads_the_keyboard_on_its_runtime_and_leaves_the_shared_stdin_blocking() {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    let shared = reader.try_clone().expect("dup");
    let a = client.spawn_reading(
        &[
            "attach",
            "--new",
            "--",
            "sh",
            "-c",
            "stty raw -echo; printf READY; exec cat",
        ],
        reader.into(),
    );
    a.wait_for("READY", Duration::from_secs(20));
    writer.write_all(b"ping-1").expect("type");
    a.wait_for("ping-1", Duration::from_secs(20));

    let pid = a.child.id();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect();
    assert!(
        !threads.iter().any(|t| t == "stdin"),
        "a reader thread: {threads:?}"
    );
    let flags =
        nix::fcntl::fcntl(shared.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).expect("flags");
    assert_eq!(
        flags & nix::libc::O_NONBLOCK,
        0,
        "the shared stdin became non-blocking"
    );
}

/// A ^C typed into a flood stops it at once: the client attaches anew near the output's end and
/// drops the old stream, instead of writing out everything the host had sent before the ^C (as
/// much as the stream's window, 1.25 MB) and what it still held behind that; and what follows
/// the ^C, the shell's prompt, is not skipped. A paste that holds a 0x03 is no typed ^C: it
/// interrupts the program, and nothing is skipped.
#[test]
fn ctrl_c_into_a_flood_skips_what_was_sent_before_it() {
    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    let mut a = client.spawn(&[
        "attach",
        "--new",
        "--",
        "env",
        "PS1=P-READY$ ",
        "bash",
        "--norc",
        "--noprofile",
        "-i",
    ]);
    a.wait_for("P-READY$ ", Duration::from_secs(20));
    a.type_str("yes\n");
    a.wait_len(10_000_000, Duration::from_secs(60));
    // Pasted: one read of more than a few keys.
    let before = a.stdout_len();
    a.type_str("\x03                              ");
    a.wait_for_after(before, "P-READY$ ", Duration::from_secs(60));
    assert!(!a.stderr().contains("skipping"), "{}", a.stderr());
    a.type_str("\x15yes\n");
    a.wait_len(a.stdout_len() + 10_000_000, Duration::from_secs(60));
    let before = a.stdout_len();
    a.type_str("\x03");
    a.wait_err("skipping the rest of the flood", Duration::from_secs(20));
    a.wait_for_after(before, "P-READY$ ", Duration::from_secs(20));
    let after = a.stdout_len() - before;
    // Without the skip, up to the stream's window and the host's 8 MiB buffer; with it, the
    // 80 KiB tail and what `yes` printed until the ^C reached the PTY (typically under 300 KB;
    // once 1.1 MB in a debug build on a loaded machine).
    assert!(
        after < 4 * 1024 * 1024,
        "{after} bytes after the ^C; stderr: {}",
        a.stderr()
    );
    // (`yes` ended with 130: the shell's own status is the one said.)
    a.type_str("exit 7\n");
    assert_eq!(a.wait_exit(Duration::from_secs(30)), 7, "{}", a.stderr());
    assert!(!a.stderr().contains("reconnect"), "{}", a.stderr());
}
