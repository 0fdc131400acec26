//! The browser path end to end: the browser test client (WebSocket + Noise + the browser
//! channel) through a real `peer-relay` process (its mobile bridge and its relay) to a real
//! `peer host`, with a recording proxy in front of the relay.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use peer::proto::{Frame, Refusal, Reply, Request, ResponseFrame};
use peer_pairing::{NoiseKeypair, PairingPayload};
use peer_testkit::browser::{BrowserClient, BrowserError, WsTransport};
use peer_testkit::proxy::CaptureProxy;
use peer_testkit::*;

struct Relay {
    child: Child,
    port: u16,
}

impl Relay {
    fn start(port: u16) -> Relay {
        let mut child = Command::new(relay_binary())
            .args(["--http-bind", &format!("127.0.0.1:{port}"), "--allow-root"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn peer-relay");
        let out = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
        let url = loop {
            let line = lines.next().expect("relay printed its URL").expect("line");
            if let Some(u) = line.strip_prefix("relay URL: ") {
                break u.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let port = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the relay URL");
        Relay { child, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ws(proxy: &CaptureProxy, host_id: &[u8; 32]) -> std::io::Result<WsTransport> {
    WsTransport::connect(&format!(
        "ws://{}/bridge/{}",
        proxy.addr,
        hex::encode(host_id)
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_through_peer_relay_pairs_attaches_resumes_and_leaks_nothing() {
    let mut relay = Relay::start(0);
    let proxy = CaptureProxy::start(([127, 0, 0, 1], relay.port).into()).await;
    let relay_url = format!("http://{}/", proxy.addr);
    let mut host = tokio::task::block_in_place(|| TestHost::start(&["--relay", &relay_url]));
    let payload = PairingPayload::from_url(&host.url).expect("payload");
    let key = NoiseKeypair::generate();

    // Pair from the printed URL, as the phone would.
    let (mut b, paired) = BrowserClient::pair(
        ws(&proxy, &payload.host_id).await.expect("ws"),
        &payload,
        &key,
        "phone",
    )
    .await
    .expect("pair through the bridge");
    let line =
        tokio::task::block_in_place(|| host.wait_line("paired phone ", Duration::from_secs(10)));
    assert_eq!(short_code(&line), Some(paired.code.clone()), "{line}");

    let mut out = Vec::new();
    until(&mut b, &mut out, |m, _| is_hello(m)).await;
    let session = browser_create_shell(&mut b, &mut out, 1).await;
    let token = 4242;
    let attach = |from: u64| attach(session, from, token);
    let marker = "BRIDGE-MARKER-93c1";
    browser_attach_and_echo(&mut b, &mut out, session, token, marker).await;

    // A stream of 3 MB; the socket dies in the middle; a new socket resumes exactly.
    let n = 400_000u64;
    b.send(
        1,
        &input(2, format!("seq 1 {n}; echo SEQ-DONE\r").as_bytes()),
    )
    .await
    .expect("type");
    until(&mut b, &mut out, |_, o| o.len() > 500_000).await;
    drop(b);
    let mut b = BrowserClient::connect(
        ws(&proxy, &payload.host_id).await.expect("ws"),
        &payload.host_id,
        &payload.host_noise_key,
        &key,
        &paired.device_psk,
    )
    .await
    .expect("reconnect");
    let mut more = Vec::new();
    until(&mut b, &mut more, |m, _| is_hello(m)).await;
    b.send(1, &attach(out.len() as u64))
        .await
        .expect("re-attach");
    until(&mut b, &mut more, |_, o| contains(o, b"SEQ-DONE\r\n")).await;
    out.extend_from_slice(&more);
    let start = out
        .windows(5)
        .position(|w| w == b"seq 1")
        .expect("the command echo");
    let from = start
        + out[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("eol")
        + 2;
    let got = &out[from..];
    let expected = seq_pty_output(n);
    assert_eq!(
        sha256(&got[..expected.len()]),
        sha256(&expected),
        "byte-exact across the socket break"
    );

    // A native laptop attached over the direct path while the relay goes away and comes back.
    let laptop = TestClient::new();
    tokio::task::block_in_place(|| {
        host.fresh_url();
        pair(&mut host, &laptop, "laptop");
    });
    let mut native = laptop.spawn(&["attach", "--new", "--", "sh"]);
    native.type_str("echo native-$((1+1))\n");
    tokio::task::block_in_place(|| native.wait_for("native-2", Duration::from_secs(20)));

    // The relay restarts: the bridged browser reconnects and resumes.
    let port = relay.port;
    relay.kill();
    let relay2 = Relay::start(port);
    assert_eq!(relay2.port, port);
    drop(b);
    let before = out.len() as u64;
    let mut b = None;
    for _ in 0..100 {
        if let Ok(t) = ws(&proxy, &payload.host_id).await
            && let Ok(c) = BrowserClient::connect(
                t,
                &payload.host_id,
                &payload.host_noise_key,
                &key,
                &paired.device_psk,
            )
            .await
        {
            b = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut b = b.expect("the browser got back in after the relay restart");
    let mut after = Vec::new();
    until(&mut b, &mut after, |m, _| is_hello(m)).await;
    b.send(1, &attach(before)).await.expect("attach");
    b.send(1, &input(3, b"echo after-$((2+3))-restart\r"))
        .await
        .expect("type");
    until(&mut b, &mut after, |_, o| contains(o, b"after-5-restart")).await;
    // The native session never noticed: same connection, no reconnect.
    native.type_str("echo native-$((2+2))-still\n");
    tokio::task::block_in_place(|| native.wait_for("native-4-still", Duration::from_secs(20)));
    assert!(
        !native.stderr().contains("reconnect"),
        "{}",
        native.stderr()
    );

    // Hostile input at the bridge.
    // A code that was used already.
    let again = BrowserClient::pair(
        ws(&proxy, &payload.host_id).await.expect("ws"),
        &payload,
        &NoiseKeypair::generate(),
        "x",
    )
    .await;
    assert!(
        matches!(again, Err(BrowserError::Refused(Refusal::Used))),
        "{again:?}"
    );
    // The right host id with a wrong host key: message 1 does not decrypt.
    let mut bad = payload.clone();
    bad.host_noise_key = NoiseKeypair::generate().public();
    let r = BrowserClient::connect(
        ws(&proxy, &payload.host_id).await.expect("ws"),
        &bad.host_id,
        &bad.host_noise_key,
        &key,
        &paired.device_psk,
    )
    .await;
    assert!(
        matches!(r, Err(BrowserError::Refused(Refusal::Handshake))),
        "{r:?}"
    );
    // A host that does not exist: the bridge closes with 4001.
    let nobody = *iroh::SecretKey::generate().public().as_bytes();
    let mut t = ws(&proxy, &nobody).await.expect("ws");
    use peer_testkit::browser::MessageTransport;
    let _ = t.send(b"hello?").await;
    let closed = tokio::time::timeout(Duration::from_secs(30), t.close_reason())
        .await
        .expect("closed in time");
    assert!(matches!(closed, Some((4001, _))), "{closed:?}");
    // Not a bridge path at all.
    let err = WsTransport::connect(&format!("ws://{}/bridge/not-a-key", proxy.addr)).await;
    assert!(err.is_err());

    // What crossed the relay (host and bridge both talk through the proxy): no marker, no
    // output, no keys.
    let seen = proxy.captured();
    assert!(
        seen.len() > 3_000_000,
        "the stream did not cross the relay: {}",
        seen.len()
    );
    for needle in [
        marker.as_bytes(),
        marker.to_lowercase().as_bytes(),
        b"399999\r\n",
        b"SEQ-DONE",
    ] {
        assert!(
            !contains(&seen, needle),
            "the relay saw {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(
        !contains(&seen, &paired.device_psk),
        "the relay saw the device psk"
    );
    assert!(
        !contains(&seen, payload.secret.as_bytes()),
        "the relay saw the pairing secret"
    );
    drop(b);
    drop(relay2);
    tokio::task::block_in_place(|| drop(host));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_host_serves_its_own_bridge_on_the_relay_port() {
    let mut host = tokio::task::block_in_place(|| TestHost::start(&[]));
    let payload = PairingPayload::from_url(&host.url).expect("payload");
    // The pairing URL's base is the embedded front, where relay, bridge and web app live.
    let base = host
        .url
        .split('#')
        .next()
        .expect("base")
        .trim_end_matches('/')
        .to_owned();
    let bridge = format!(
        "{}/bridge/{}",
        base.replacen("http://", "ws://", 1),
        hex::encode(payload.host_id)
    );
    let key = NoiseKeypair::generate();
    let t = WsTransport::connect(&bridge).await.expect("ws");
    let (mut b, paired) = BrowserClient::pair(t, &payload, &key, "tablet")
        .await
        .expect("pair");
    let line =
        tokio::task::block_in_place(|| host.wait_line("paired tablet ", Duration::from_secs(10)));
    assert_eq!(short_code(&line), Some(paired.code.clone()));
    let mut out = Vec::new();
    until(&mut b, &mut out, |m, _| is_hello(m)).await;
    b.send(0, &request(1, Request::ListSessions))
        .await
        .expect("ls");
    let r = until(&mut b, &mut out, |m, _| {
        matches!(m, Some((_, Frame::Response(_))))
    })
    .await;
    assert!(
        matches!(
            r,
            Some((
                0,
                Frame::Response(ResponseFrame {
                    result: Ok(Reply::Sessions(_)),
                    ..
                })
            ))
        ),
        "{r:?}"
    );

    // Another host's id is not served by this host's bridge.
    let other = *iroh::SecretKey::generate().public().as_bytes();
    let wrong = format!(
        "{}/bridge/{}",
        base.replacen("http://", "ws://", 1),
        hex::encode(other)
    );
    assert!(WsTransport::connect(&wrong).await.is_err());

    // A flood of sockets from one address: past the per-IP cap the bridge says no, while the
    // paired browser keeps being served.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        match WsTransport::connect(&bridge).await {
            Ok(t) => held.push(t),
            Err(_) => refused += 1,
        }
    }
    // The cap is 32 sockets per address, and the paired browser holds one.
    assert_eq!(held.len(), 31, "{refused} refused");
    assert_eq!(refused, 9);
    b.send(0, &request(2, Request::ListSessions))
        .await
        .expect("ls");
    until(&mut b, &mut out, |m, _| {
        matches!(m, Some((_, Frame::Response(ResponseFrame { id: 2, .. }))))
    })
    .await;
    drop(held);

    // Revoked on the host: the live socket ends and the browser is refused from then on.
    let out = tokio::task::block_in_place(|| {
        host.cli(&["devices", "revoke", &hex::encode(key.public())[..12]])
    });
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("revoked tablet"),
        "{out:?}"
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while b.recv().await.is_ok() {}
    })
    .await;
    assert!(ended.is_ok(), "revoked socket stayed open");
    let t = WsTransport::connect(&bridge).await.expect("ws");
    let r = BrowserClient::connect(
        t,
        &payload.host_id,
        &payload.host_noise_key,
        &key,
        &paired.device_psk,
    )
    .await;
    assert!(
        matches!(r, Err(BrowserError::Refused(Refusal::Revoked))),
        "{r:?}"
    );
    tokio::task::block_in_place(|| drop(host));
}

/// A paired browser's next socket through `bridge` (a `ws://…/bridge/<id>` URL), as the app
/// makes them (`web/src/conn.ts`): a handshake (here: up to the host's hello) not done within
/// 1.2 s is given up, and the next attempt follows 100 ms after a failure.
async fn app_reconnect(
    bridge: &str,
    payload: &PairingPayload,
    key: &NoiseKeypair,
    psk: &[u8; 32],
) -> BrowserClient<WsTransport> {
    loop {
        let attempt = async {
            let t = WsTransport::connect(bridge).await.ok()?;
            let mut c =
                BrowserClient::connect(t, &payload.host_id, &payload.host_noise_key, key, psk)
                    .await
                    .ok()?;
            loop {
                match c.recv().await {
                    Ok((0, Frame::HostHello(_))) => return Some(c),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        };
        if let Ok(Some(c)) = tokio::time::timeout(Duration::from_millis(1200), attempt).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bridge of an external `peer-relay` kept its QUIC connection to a host that was killed
/// with SIGKILL (no goodbye) until the connection's idle timeout, and gave every new socket a
/// stream on it: a browser got back to the restarted host only after 6 to 9 s. The bridge now
/// notices that the host answers a new connection but not the old one, and moves every socket
/// over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_behind_peer_relay_is_back_soon_after_its_host_is_killed_and_restarted() {
    let relay = RelayProcess::start(&[]);
    let relay_url = relay.url();
    let host = tokio::task::block_in_place(|| TestHost::start(&["--relay", &relay_url]));
    let payload = PairingPayload::from_url(&host.url).expect("payload");
    let bridge = format!(
        "ws://{}/bridge/{}",
        relay.http_addr,
        hex::encode(payload.host_id)
    );
    let key = NoiseKeypair::generate();
    let t = WsTransport::connect(&bridge).await.expect("ws");
    let (mut b, paired) = BrowserClient::pair(t, &payload, &key, "phone")
        .await
        .expect("pair through the bridge");
    let mut out = Vec::new();
    until(&mut b, &mut out, |m, _| is_hello(m)).await;
    // A second browser (another tab) on the same cached host connection.
    let t = WsTransport::connect(&bridge).await.expect("ws");
    let mut b2 = BrowserClient::connect(
        t,
        &payload.host_id,
        &payload.host_noise_key,
        &key,
        &paired.device_psk,
    )
    .await
    .expect("second browser");
    until(&mut b2, &mut out, |m, _| is_hello(m)).await;

    let killed = std::time::Instant::now();
    let host = tokio::task::block_in_place(|| host.crash_restart(&["--no-pairing"]));
    let restarted = killed.elapsed();
    // Each browser as the app: it gives its socket up after 4.5 s without a word from the host
    // (it pings every 2 s), or when the bridge closes it, and makes a new one.
    let back_again = |mut b: BrowserClient<WsTransport>| {
        let (bridge, payload, key, psk) = (&bridge, &payload, &key, &paired.device_psk);
        async move {
            let _ = tokio::time::timeout_at((killed + Duration::from_millis(4500)).into(), async {
                while b.recv().await.is_ok() {}
            })
            .await;
            let b = app_reconnect(bridge, payload, key, psk).await;
            (b, killed.elapsed())
        }
    };
    let ((mut b, back), (_b2, back2)) = tokio::join!(back_again(b), back_again(b2));
    eprintln!(
        "host back {restarted:?} after the kill, the browsers {back:?} and {back2:?} after it"
    );
    b.send(0, &request(1, Request::ListSessions))
        .await
        .expect("ls");
    until(&mut b, &mut out, |m, _| {
        matches!(m, Some((_, Frame::Response(ResponseFrame { id: 1, .. }))))
    })
    .await;
    // Expected: 2 s of unanswered keep-alives, a dial, a reconnect (2.5 to 3.5 s after the
    // kill here). Before: not until QUIC's idle timeout (6 s, renewed by what the new sockets
    // sent on the dead connection: 6 to 11 s).
    for back in [back, back2] {
        assert!(
            back < restarted + Duration::from_secs(5),
            "a browser was back {back:?} after the kill, the host {restarted:?}"
        );
    }
    tokio::task::block_in_place(|| drop(host));
}
