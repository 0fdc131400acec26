//! Fault injection: the network and the processes misbehave on purpose, and every stream is
//! checked byte-exact (SHA-256 of what the PTY produced against what the client printed).
//!
//! Network faults come from a userspace UDP proxy (`common/impair.rs`) between the native client
//! and the host's QUIC socket. The host listens on `[::1]` only and the client, told only of the
//! proxy on `127.0.0.1`, binds an IPv4 socket only: iroh's in-band NAT traversal tells each end
//! the other's socket addresses, and on one loopback the two would otherwise open a direct path
//! around the proxy. The tests count the bytes the proxy forwarded to prove it carried the stream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peer_testkit::impair::{Impairment, UdpImpairProxy, route_only_through};
use peer_testkit::*;

/// A host on `[::1]` only, a paired client, and an impairment proxy that is the client's only
/// way to the host (no relay, no other address).
fn behind_proxy(
    impair: Impairment,
    name: &str,
    extra: &[&str],
) -> (TestHost, TestClient, UdpImpairProxy) {
    let mut args = vec!["--listen", "::1"];
    args.extend_from_slice(extra);
    let mut host = TestHost::start(&args);
    let client = TestClient::new();
    pair(&mut host, &client, name);
    let front: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let proxy = UdpImpairProxy::start(front, host.udp_addr("::1".parse().expect("ip")), impair);
    route_only_through(&client, proxy.addr);
    (host, client, proxy)
}

/// `peer attach --new` to a `cat` on a raw PTY, which prints exactly what is typed; returns the
/// client and where the echo starts in its output.
fn raw_cat(client: &TestClient, flags: &[&str]) -> (Interactive, usize) {
    let mut args = flags.to_vec();
    args.extend_from_slice(&[
        "attach",
        "--new",
        "--",
        "sh",
        "-c",
        "stty raw -echo; echo READY; exec cat",
    ]);
    let a = client.spawn(&args);
    a.wait_for("READY\n", Duration::from_secs(60));
    let start = a.stdout().find("READY\n").expect("marker") + "READY\n".len();
    (a, start)
}

/// 16 letters and digits (xorshift64, so a failure can be replayed).
fn random_chunk(x: &mut u64) -> String {
    (0..16)
        .map(|_| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
            alphabet[(*x % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

/// The echo is exactly what was typed: every keystroke once, in order.
fn assert_echo(a: &Interactive, start: usize, typed: &str) {
    let echoed = a.out.lock().expect("lock")[start..].to_vec();
    assert_eq!(
        sha256(&echoed),
        sha256(typed.as_bytes()),
        "echo differs: {:?}\nclient said: {}",
        String::from_utf8_lossy(&echoed),
        a.stderr()
    );
}

/// A 32 MiB buffer holds every stream below whole, so a resume can always be exact.
const BIG_BUFFER: &str = "33554432";

#[test]
fn delay_and_loss_keep_echo_and_a_stream_exact() {
    let impair = Impairment {
        delay: Duration::from_millis(25),
        loss: 0.05,
    };
    let (_host, client, proxy) = behind_proxy(impair, "lossy", &["--buffer", BIG_BUFFER]);

    // Interactive echo: `cat` on a raw PTY gives back exactly what was typed.
    let (mut a, start) = raw_cat(&client, &[]);
    let mut typed = String::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..40 {
        let chunk = random_chunk(&mut rng);
        a.type_str(&chunk);
        typed.push_str(&chunk);
        // Each keystroke batch waits for its echo, as a person would.
        a.wait_len(start + typed.len(), Duration::from_secs(60));
    }
    assert_echo(&a, start, &typed);
    a.type_str("\r~.");
    assert_eq!(a.wait_exit(Duration::from_secs(60)), 0, "{}", a.stderr());

    // A multi-megabyte stream.
    let n = 300_000; // 2.3 MB
    let expected = seq_pty_output(n);
    let mut b = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    assert_eq!(b.wait_exit(Duration::from_secs(240)), 0, "{}", b.stderr());
    let got = b.out.lock().expect("lock").clone();
    assert_eq!(got.len(), expected.len(), "{}", b.stderr());
    assert_eq!(sha256(&got), sha256(&expected));

    // It all went through the proxy, which really dropped packets.
    assert!(
        proxy.bytes_to_client() > expected.len() as u64,
        "only {} bytes crossed the proxy",
        proxy.bytes_to_client()
    );
    assert!(proxy.dropped_packets() > 0, "the proxy dropped nothing");
    eprintln!(
        "delay/loss: {} bytes to the client, {} to the host, {} packets dropped; client said: {}",
        proxy.bytes_to_client(),
        proxy.bytes_to_host(),
        proxy.dropped_packets(),
        b.stderr()
    );
}

#[test]
fn client_address_change_mid_stream_loses_nothing() {
    let impair = Impairment {
        delay: Duration::from_millis(1),
        loss: 0.0,
    };
    let (_host, client, proxy) = behind_proxy(impair, "roamer", &["--buffer", BIG_BUFFER]);
    let n = 3_000_000; // 25.9 MB
    let expected = seq_pty_output(n);
    let mut a = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    a.wait_len(2_000_000, Duration::from_secs(60));
    let before = proxy.outbound_addr();
    let after = proxy.rebind();
    assert_ne!(before, after);
    let got_at_rebind = a.stdout_len();
    assert_eq!(a.wait_exit(Duration::from_secs(120)), 0, "{}", a.stderr());
    let got = a.out.lock().expect("lock").clone();
    assert_eq!(got.len(), expected.len(), "{}", a.stderr());
    assert_eq!(sha256(&got), sha256(&expected));
    // The host sent the rest of the stream to the client's new address: all of it but what
    // was already in flight to the old one when the address changed (the QUIC windows and the
    // client's pipe; `got_at_rebind` lags the client by that much on a loaded machine).
    const IN_FLIGHT: u64 = 4 << 20;
    let rest = (expected.len() - got_at_rebind) as u64 - IN_FLIGHT;
    assert!(
        proxy.bytes_from_host_since_rebind() > rest,
        "after the rebind the host sent {} bytes to the new address; {rest} were still due",
        proxy.bytes_from_host_since_rebind()
    );
    // QUIC path migration: the same connection went on, no reconnect was needed.
    assert!(!a.stderr().contains("connection lost"), "{}", a.stderr());
    eprintln!("rebind {before} -> {after} at {got_at_rebind} bytes");
}

/// The stall behind the flapping test, made on purpose. The client's address changes, and for
/// the next 6 s the host's full-size datagrams are lost while small ones pass. That takes every
/// PATH_CHALLENGE the host sends to validate the new address (they are padded to 1200 bytes),
/// so it gives up validating ("path migration validation failed" in its QUIC log with
/// `TEST_RUST_LOG=noq_proto=debug`) and keeps the unvalidated address with nothing to fall
/// back to; there it may send only three times what it receives, enough for acknowledgements,
/// never for output. It also takes all output meanwhile, while keystrokes (the remote does not
/// echo them) and their acknowledgements go on: a connection that is alive and carries no
/// output. The client's stall watchdog must notice before the idle timeout would, reconnect
/// and resume exact.
#[test]
fn a_migration_whose_validation_is_lost_is_noticed_and_resumed() {
    let impair = Impairment {
        delay: Duration::from_millis(5),
        loss: 0.0,
    };
    let (_host, client, proxy) = behind_proxy(impair, "unvalidated", &["--buffer", BIG_BUFFER]);
    let n = 1_000_000; // 7.9 MB
    let expected = seq_pty_output(n);
    let script = format!("stty -echo; exec seq 1 {n}");
    let mut a = client.spawn(&["attach", "--new", "--", "sh", "-c", &script]);
    a.wait_len(500_000, Duration::from_secs(60));
    proxy.rebind();
    proxy.drop_full_size_from_host(Duration::from_secs(6));
    let at = (Instant::now(), a.stdout_len());
    let deadline = at.0 + Duration::from_secs(60);
    while a.child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "still stalled; client said: {}",
            a.stderr()
        );
        a.type_str("x");
        std::thread::sleep(Duration::from_millis(250));
    }
    let took = at.0.elapsed();
    let got = a.out.lock().expect("lock").clone();
    assert_eq!(got.len(), expected.len(), "{}", a.stderr());
    assert_eq!(sha256(&got), sha256(&expected));
    assert!(
        a.stderr().contains("stalled"),
        "the stream finished without the watchdog: the fault did not stall it; client said: {}",
        a.stderr()
    );
    eprintln!(
        "rebind at {} bytes, done {took:?} later; client said: {}",
        at.1,
        a.stderr()
    );
}

#[test]
fn host_frozen_past_the_idle_timeout_resumes_exact() {
    let mut host = TestHost::start(&["--buffer", BIG_BUFFER]);
    let client = TestClient::new();
    pair(&mut host, &client, "patient");
    let n = 3_000_000;
    let expected = seq_pty_output(n);
    let mut a = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    a.wait_len(2_000_000, Duration::from_secs(60));
    // The host machine stalls (suspended VM, swap storm) for longer than the idle timeout.
    signal(host.pid(), "STOP");
    std::thread::sleep(Duration::from_secs(8));
    signal(host.pid(), "CONT");
    assert_eq!(a.wait_exit(Duration::from_secs(120)), 0, "{}", a.stderr());
    let got = a.out.lock().expect("lock").clone();
    assert_eq!(got.len(), expected.len(), "{}", a.stderr());
    assert_eq!(sha256(&got), sha256(&expected));
    assert!(a.stderr().contains("reconnected"), "{}", a.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restart_mid_stream_loses_nothing() {
    let relay = peer_relay::EmbeddedRelay::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("relay");
    let relay_addr = relay.http_addr();
    let relay_url = format!("http://{relay_addr}/");
    let n = 3_000_000;
    let expected = seq_pty_output(n);

    let (host, client, mut a) = tokio::task::block_in_place(|| {
        let mut host = TestHost::start(&[
            "--relay",
            &relay_url,
            "--relay-only",
            "--buffer",
            BIG_BUFFER,
        ]);
        let client = TestClient::new();
        pair_with(&mut host, &client, "far", &["--relay-only"]);
        let a = client.spawn(&[
            "--relay-only",
            "attach",
            "--new",
            "--",
            "seq",
            "1",
            &n.to_string(),
        ]);
        a.wait_len(2_000_000, Duration::from_secs(60));
        (host, client, a)
    });
    // The relay process goes away with all its state, and a new one comes up on its port.
    relay.shutdown().await;
    let at_kill = a.stdout_len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_restart = a.stdout_len();
    assert!(
        at_restart < expected.len(),
        "the stream ended while the relay was down ({at_kill} -> {at_restart} bytes)"
    );
    let relay = peer_relay::EmbeddedRelay::spawn(relay_addr)
        .await
        .expect("the relay restarts on its port");

    tokio::task::block_in_place(|| {
        assert_eq!(a.wait_exit(Duration::from_secs(120)), 0, "{}", a.stderr());
        let got = a.out.lock().expect("lock").clone();
        assert_eq!(got.len(), expected.len(), "{}", a.stderr());
        assert_eq!(sha256(&got), sha256(&expected));
        // New connections go through the new relay too.
        assert!(client.ok(&["--relay-only", "ls"]).contains("exited (0)"));
        eprintln!(
            "relay restart at {at_kill} bytes, {at_restart} when it was back; client said: {}",
            a.stderr()
        );
        drop(host);
    });
    relay.shutdown().await;
}

#[test]
fn host_crash_keeps_devices_and_tells_clients_their_sessions_are_gone() {
    // Sessions of the host's own, which die with it (the default keeps them: `keeper.rs`).
    let mut host = TestHost::start(&["--kill-sessions-on-exit"]);
    let client = TestClient::new();
    pair(&mut host, &client, "survivor");
    let mut a = client.spawn(&["attach", "--new", "--", "sh"]);
    a.type_str("echo alive-$((6*7))\n");
    a.wait_for("alive-42", Duration::from_secs(20));

    // SIGKILL: no goodbye to the client, a stale control socket, SQLite mid-flight.
    let host = host.crash_restart(&["--no-pairing"]);
    assert_eq!(a.wait_exit(Duration::from_secs(60)), 255, "{}", a.stderr());
    let err = a.stderr();
    // The stall watchdog (no answer from the host) or the idle timeout, whichever comes first.
    assert!(err.contains("reconnecting"), "{err}");
    assert!(
        err.contains("the host restarted; session 1 ended with it"),
        "{err}"
    );

    // The device is still paired: the host lists it and the client needs no new pairing.
    let devices = host.cli(&["devices"]);
    assert!(devices.status.success(), "{devices:?}");
    assert!(
        String::from_utf8_lossy(&devices.stdout).contains("survivor"),
        "{devices:?}"
    );
    let ls: serde_json::Value = serde_json::from_str(&client.ok(&["ls", "--json"])).expect("json");
    assert_eq!(
        ls,
        serde_json::json!([]),
        "sessions do not survive the host"
    );
    let mut b = client.spawn(&["attach", "--new", "--", "sh", "-c", "echo back-$((1+1))"]);
    assert_eq!(b.wait_exit(Duration::from_secs(30)), 0, "{}", b.stderr());
    assert!(b.stdout().contains("back-2"), "{}", b.stdout());
}

/// `VmRSS` of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Offset of the line of `k` (k ≥ 1) in `seq 1 N` as a PTY shows it.
fn seq_offset(k: u64) -> u64 {
    let (mut off, mut start, mut line) = (0, 1u64, 3u64);
    while start < k {
        let end = (start * 10).min(k);
        off += (end - start) * line;
        start *= 10;
        line += 1;
    }
    off
}

/// Bytes `from..to` of `seq 1 N`'s PTY output (any N large enough).
fn seq_range(from: u64, to: u64) -> Vec<u8> {
    // The last line starting at or before `from` (lines are at least 3 bytes).
    let (mut lo, mut hi) = (1u64, from / 3 + 2);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if seq_offset(mid) <= from {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut out = Vec::with_capacity((to - from) as usize);
    let (mut k, mut skip) = (lo, (from - seq_offset(lo)) as usize);
    while (out.len() as u64) < to - from {
        let line = format!("{k}\r\n");
        out.extend_from_slice(&line.as_bytes()[skip..]);
        skip = 0;
        k += 1;
    }
    out.truncate((to - from) as usize);
    out
}

#[test]
fn seq_ranges_match_seq_output() {
    let whole = seq_pty_output(20_000);
    for (from, to) in [
        (0, 10),
        (3, 31),
        (30, 200),
        (1000, 98_888),
        (5, whole.len()),
    ] {
        assert_eq!(
            seq_range(from as u64, to as u64),
            whole[from..to],
            "{from}..{to}"
        );
    }
}

#[test]
fn frozen_client_during_a_flood_bounds_host_memory_and_learns_the_gap() {
    // The default 8 MiB buffer.
    const BUFFER: u64 = 8 << 20;
    // The place of the frozen client's attachment is kept for 3 s after its connection dies
    // (the default 35 s is tested elsewhere), then the flood runs freely past the buffer.
    let mut host = TestHost::start(&["--attach-hold", "3"]);
    let client = TestClient::new();
    pair(&mut host, &client, "sleepy");
    // A flood for 45 s, ended by `timeout`; the client sleeps through most of it. With
    // `--replay` it is told of the gap instead of getting a picture of the screen.
    let mut a = client.spawn(&[
        "attach",
        "--new",
        "--replay",
        "0",
        "--",
        "timeout",
        "45",
        "seq",
        "1",
        "999999999999",
    ]);
    a.wait_len(2_000_000, Duration::from_secs(60));
    let before = rss(host.pid());
    let frozen_at = a.stdout_len();
    signal(a.child.id(), "STOP");
    let t0 = Instant::now();
    let mut peak = before;
    while t0.elapsed() < Duration::from_secs(60) {
        peak = peak.max(rss(host.pid()));
        std::thread::sleep(Duration::from_millis(250));
    }
    signal(a.child.id(), "CONT");
    // `timeout` ends the flood with status 124, which the client passes on.
    assert_eq!(a.wait_exit(Duration::from_secs(120)), 124, "{}", a.stderr());
    let err = a.stderr();
    let gaps: Vec<u64> = err
        .lines()
        .filter_map(|l| {
            let (head, _) = l.split_once(" bytes of output were lost")?;
            head.rsplit(' ').next()?.parse().ok()
        })
        .collect();
    let [lost] = gaps[..] else {
        panic!("expected to be told of one gap: {err}")
    };
    let got = a.out.lock().expect("lock").clone();
    let total = got.len() as u64 + lost;

    // The host agrees on how much the session printed.
    let ls: serde_json::Value = serde_json::from_str(&client.ok(&["ls", "--json"])).expect("json");
    assert_eq!(ls[0]["output_bytes"].as_u64(), Some(total), "{ls}");

    // What arrived is exactly the flood's start and its end, with `lost` bytes between.
    let produced_start = seq_range(0, got.len() as u64);
    let split = got
        .iter()
        .zip(&produced_start)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(split >= frozen_at, "output differs before the freeze");
    let tail = seq_range(split as u64 + lost, total);
    assert_eq!(
        sha256(&got[split..]),
        sha256(&tail),
        "after the gap the output is not the flood's last {} bytes",
        tail.len()
    );
    // The flood outran the buffer many times over, and the host's memory did not follow it.
    assert!(total > 10 * BUFFER, "the flood printed only {total} bytes");
    let slack = 48 << 20;
    eprintln!(
        "freeze: flood {total} bytes, lost {lost}, received {}; host RSS {} MiB before, peak {} MiB",
        got.len(),
        before >> 20,
        peak >> 20
    );
    assert!(
        peak <= before + BUFFER + slack,
        "host RSS grew from {before} to {peak} bytes during the freeze"
    );
}

#[test]
fn input_typed_while_the_host_is_frozen_arrives_once() {
    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    pair(&mut host, &client, "typist");
    let (mut a, start) = raw_cat(&client, &[]);
    let (mut typed, mut rng) = (String::new(), 7u64);
    for _ in 0..5 {
        let chunk = random_chunk(&mut rng);
        a.type_str(&chunk);
        typed.push_str(&chunk);
        a.wait_len(start + typed.len(), Duration::from_secs(20));
    }
    // Keystrokes typed into a dead connection are queued, re-sent after the resume, and
    // applied once each, whether or not the host had already received them.
    signal(host.pid(), "STOP");
    for _ in 0..20 {
        let chunk = random_chunk(&mut rng);
        a.type_str(&chunk);
        typed.push_str(&chunk);
        std::thread::sleep(Duration::from_millis(400));
    }
    signal(host.pid(), "CONT");
    a.wait_len(start + typed.len(), Duration::from_secs(60));
    // Anything applied twice would show up as extra echo.
    std::thread::sleep(Duration::from_secs(1));
    assert_echo(&a, start, &typed);
    assert!(a.stderr().contains("reconnected"), "{}", a.stderr());
    a.type_str("\r~.");
    assert_eq!(a.wait_exit(Duration::from_secs(30)), 0, "{}", a.stderr());
}

/// Repeated migrations under loss. Now and then (about 1 run in 6 on a loaded 2-core machine,
/// before the client had its stall watchdog) one of the migrations loses its validation and the
/// stream stops for good while the connection stays alive (keep-alive sized packets both ways,
/// so no idle timeout). The watchdog reconnects and resumes; the stream must still be exact.
/// `a_migration_whose_validation_is_lost_is_noticed_and_resumed` makes that stall on purpose.
#[test]
fn a_flapping_address_under_loss_loses_nothing() {
    let impair = Impairment {
        delay: Duration::from_millis(5),
        loss: 0.02,
    };
    let (_host, client, proxy) = behind_proxy(impair, "flappy", &["--buffer", BIG_BUFFER]);
    let n = 1_000_000; // 7.9 MB
    let expected = seq_pty_output(n);
    let mut a = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    a.wait_len(500_000, Duration::from_secs(60));
    // A new source port after every 300 KB the client receives, 20 times.
    let mut rebinds = 0;
    let mut next = a.stdout_len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rebinds < 20 && a.child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let c = |p: &UdpImpairProxy| {
                (
                    p.bytes_to_host(),
                    p.bytes_to_client(),
                    p.bytes_from_host_since_rebind(),
                    p.bytes_to_stale_addresses(),
                )
            };
            let first = c(&proxy);
            std::thread::sleep(Duration::from_secs(5));
            panic!(
                "the stream stalled at {} bytes after {rebinds} rebinds; proxy (to host, to client, from host since rebind, to stale addresses) {first:?} then 5 s later {:?}; client said: {}",
                a.stdout_len(),
                c(&proxy),
                a.stderr()
            );
        }
        if a.stdout_len() >= next {
            proxy.rebind();
            rebinds += 1;
            next = a.stdout_len() + 300_000;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(a.wait_exit(Duration::from_secs(120)), 0, "{}", a.stderr());
    let got = a.out.lock().expect("lock").clone();
    assert_eq!(got.len(), expected.len(), "{}", a.stderr());
    assert_eq!(sha256(&got), sha256(&expected));
    assert!(proxy.bytes_to_client() > expected.len() as u64);
    assert!(rebinds >= 10, "the stream ended after {rebinds} rebinds");
    assert!(!a.stderr().contains("connection lost"), "{}", a.stderr());
    eprintln!("{rebinds} rebinds; client said: {}", a.stderr());
}

/// Starts a relay behind a proxy, a relay-only host and client through it, and a session that
/// prints a line every 20 ms; then, ten times, breaks the path for 7 s with `outage` and
/// measures how long after the path is back the client's output grows again.
async fn output_after_outages(
    outage: impl Fn(&proxy::CaptureProxy),
    restore: impl Fn(&proxy::CaptureProxy),
) -> Vec<Duration> {
    let relay = peer_relay::EmbeddedRelay::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("relay");
    // Host and client both reach the relay through the proxy.
    let proxy = proxy::CaptureProxy::start(relay.http_addr()).await;
    let relay_url = format!("http://{}/", proxy.addr);
    let (host, a) = tokio::task::block_in_place(|| {
        let mut host = TestHost::start(&["--relay", &relay_url, "--relay-only"]);
        let client = TestClient::new();
        pair_with(&mut host, &client, "far", &["--relay-only"]);
        let script = "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.02; done";
        let a = client.spawn(&["--relay-only", "attach", "--new", "--", "sh", "-c", script]);
        a.wait_len(2_000, Duration::from_secs(30));
        (host, a)
    });
    let mut back = Vec::new();
    for _ in 0..10 {
        outage(&proxy);
        tokio::time::sleep(Duration::from_secs(7)).await;
        let at = a.stdout_len();
        restore(&proxy);
        let t0 = Instant::now();
        while a.stdout_len() <= at + 20 {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no output 30 s after the outage: {}",
                a.stderr()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        back.push(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Nothing but the stream reached the terminal: no library log lines among the output.
    let out = String::from_utf8_lossy(&a.out.lock().expect("lock")).into_owned();
    assert!(
        !out.contains("WARN") && !out.contains("ERROR"),
        "logs in the output"
    );
    let err = a.stderr();
    assert!(
        !err.contains("WARN") && !err.contains("ERROR"),
        "library logs on the terminal: {err}"
    );
    eprintln!("client said: {}", a.stderr());
    tokio::task::block_in_place(|| drop(host));
    drop(a);
    relay.shutdown().await;
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_flows_again_within_two_seconds_of_a_relay_path_blackout() {
    // Nothing moves either way for 7 s; the connections stay open.
    let back = output_after_outages(proxy::CaptureProxy::hold, proxy::CaptureProxy::release).await;
    eprintln!("output again after a 7 s blackout: {back:?}");
    let worst = back.iter().max().copied().unwrap_or_default();
    assert!(
        worst <= Duration::from_secs(2),
        "output flowed again after {back:?}"
    );
}

/// Not in CI: it fails today. After the relay's connections are cut, iroh 1.4's relay client
/// (host and client side alike) reconnects with an exponential backoff of up to 16 s that peer
/// cannot configure, so output comes back after 1.3–10 s (docs/benchmarks.md, "Coming back").
/// Run it by hand with `--ignored` to measure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "iroh's relay reconnect backoff (up to 16 s) is not configurable; run by hand"]
async fn output_flows_again_within_two_seconds_of_a_relay_outage() {
    // Every connection to the relay is dropped, and new ones refused, for 7 s.
    let back = output_after_outages(proxy::CaptureProxy::cut, proxy::CaptureProxy::restore).await;
    eprintln!("output again after a 7 s relay outage: {back:?}");
    let worst = back.iter().max().copied().unwrap_or_default();
    assert!(
        worst <= Duration::from_secs(2),
        "output flowed again after {back:?}"
    );
}

/// An idle session on a slow, lossy but healthy link: 150 ms round trip and 3 % loss each way.
/// The stall watchdog's questions to the host may wait for QUIC to resend a lost packet
/// (several times the round trip), and that must not pass for a stall: no reconnect in 40 s of
/// silence, and the connection still carries keystrokes and their echo afterwards.
#[test]
fn an_idle_session_on_a_slow_lossy_link_is_not_taken_for_a_stall() {
    let impair = Impairment {
        delay: Duration::from_millis(75),
        loss: 0.03,
    };
    let (_host, client, proxy) = behind_proxy(impair, "patient-link", &[]);
    let (mut a, start) = raw_cat(&client, &[]);
    let idle_from = (proxy.bytes_to_client(), proxy.dropped_packets());
    std::thread::sleep(Duration::from_secs(40));
    let err = a.stderr();
    assert!(
        !err.contains("stalled") && !err.contains("reconnect"),
        "a healthy idle connection was given up; client said: {err}"
    );
    // Still the same, working connection.
    a.type_str("still-here");
    a.wait_len(start + "still-here".len(), Duration::from_secs(20));
    assert_echo(&a, start, "still-here");
    a.type_str("\r~.");
    assert_eq!(a.wait_exit(Duration::from_secs(20)), 0, "{}", a.stderr());
    assert!(
        !a.stderr().contains("reconnect"),
        "client said: {}",
        a.stderr()
    );
    eprintln!(
        "idle 40 s: {} bytes to the client, {} packets dropped while idle; client said: {}",
        proxy.bytes_to_client() - idle_from.0,
        proxy.dropped_packets() - idle_from.1,
        a.stderr()
    );
}
