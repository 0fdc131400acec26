//! End to end through the relay only, with a proxy in front of a real relay server that records
//! everything the relay forwards.

use std::time::Duration;

use peer_testkit::proxy::CaptureProxy;
use peer_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_sees_no_plaintext_and_outage_is_survived() {
    let relay = peer_relay::EmbeddedRelay::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("relay");
    let proxy = CaptureProxy::start(relay.http_addr()).await;
    let relay_url = format!("http://{}/", proxy.addr);

    tokio::task::block_in_place(|| {
        let mut host = TestHost::start(&[
            "--relay",
            &relay_url,
            "--relay-only",
            "--buffer",
            "33554432",
        ]);
        let client = TestClient::new();
        pair_with(&mut host, &client, "phone", &["--relay-only"]);

        // A marker typed in the session and printed by it.
        let marker = "MARKER-5f1d3a-TYPED";
        let mut a = client.spawn(&["--relay-only", "attach", "--new", "--", "sh"]);
        a.type_str(&format!("echo {marker} | tr A-Z a-z\n"));
        a.wait_for(&marker.to_lowercase(), Duration::from_secs(20));
        a.type_str("exit\n");
        assert_eq!(a.wait_exit(Duration::from_secs(10)), 0, "{}", a.stderr());

        // 20 MB through the relay, with the relay unreachable for longer than the idle timeout
        // in the middle.
        let n = 3_000_000;
        let expected = seq_pty_output(n);
        let mut b = client.spawn(&[
            "--relay-only",
            "attach",
            "--new",
            "--",
            "seq",
            "1",
            &n.to_string(),
        ]);
        b.wait_len(2_000_000, Duration::from_secs(60));
        proxy.cut();
        std::thread::sleep(Duration::from_secs(8));
        proxy.restore();
        assert_eq!(b.wait_exit(Duration::from_secs(120)), 0, "{}", b.stderr());
        let got = b.out.lock().expect("lock").clone();
        assert_eq!(got.len(), expected.len(), "stderr: {}", b.stderr());
        assert_eq!(sha256(&got), sha256(&expected));
        assert!(b.stderr().contains("reconnected"), "{}", b.stderr());
        // The terminal gets the stream and the client's own words, no library log lines.
        assert!(
            !b.stderr().contains("WARN") && !b.stderr().contains("ERROR"),
            "library logs on the terminal: {}",
            b.stderr()
        );
        drop(host);
    });

    let seen = proxy.captured();
    assert!(
        seen.len() > 20_000_000,
        "the stream did not cross the relay: {} bytes",
        seen.len()
    );
    assert!(
        !contains(&seen, b"MARKER-5f1d3a-TYPED"),
        "the relay saw the typed marker"
    );
    assert!(
        !contains(&seen, b"marker-5f1d3a-typed"),
        "the relay saw the printed marker"
    );
    assert!(
        !contains(&seen, b"2999999\r\n"),
        "the relay saw plaintext output"
    );
    relay.shutdown().await;
}
