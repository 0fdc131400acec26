//! A self-hosted `peer-relay` in token mode with a self-signed certificate: the host presents the
//! relay token and pins the certificate, hands both to devices in the pairing code, and native
//! clients (relay only) and browsers (through the relay's own bridge) get through; a client
//! without the token or with a wrong pin is refused with a clear error.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use peer_pairing::{NoiseKeypair, PairingPayload};
use peer_testkit::browser::{BrowserClient, WsTransport};
use peer_testkit::*;

const TOKEN: &str = "test-relay-token-0123456789abcdef";

/// `peer-relay --dev-tls --access token` on loopback: HTTPS for relay clients, plain HTTP for
/// the test's browser WebSocket and metrics.
struct TokenRelay {
    child: Child,
    _dir: tempfile::TempDir,
    https_url: String,
    http_addr: String,
    fingerprint: String,
}

impl TokenRelay {
    fn start() -> TokenRelay {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, format!("{TOKEN}\n")).expect("tokens file");
        let mut child = Command::new(relay_binary())
            .args([
                "--http-bind",
                "127.0.0.1:0",
                "--https-bind",
                "127.0.0.1:0",
                "--dev-tls",
                "--quic-bind",
                "off",
                "--access",
                "token",
                "--tokens-file",
            ])
            .arg(&tokens)
            .arg("--allow-root")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn peer-relay");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let (mut https_url, mut http_addr, mut fingerprint) = (None, None, None);
        while https_url.is_none() || http_addr.is_none() || fingerprint.is_none() {
            let line = lines.next().expect("relay output").expect("line");
            if let Some(u) = line.strip_prefix("relay URL: ") {
                if let Some(rest) = u.strip_prefix("http://") {
                    http_addr = Some(rest.trim().trim_end_matches('/').to_owned());
                } else {
                    https_url = Some(u.trim().to_owned());
                }
            }
            if let Some(f) = line.strip_prefix("self-signed certificate, SHA-256 fingerprint: ") {
                fingerprint = Some(f.trim().to_owned());
            }
        }
        std::thread::spawn(move || for _ in lines {});
        TokenRelay {
            child,
            _dir: dir,
            https_url: https_url.unwrap_or_default(),
            http_addr: http_addr.unwrap_or_default(),
            fingerprint: fingerprint.unwrap_or_default(),
        }
    }

    /// The relay's Prometheus text (loopback may read it).
    fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.http_addr).expect("connect metrics");
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("metrics");
        text
    }

    fn metric(&self, name: &str) -> u64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }
}

impl Drop for TokenRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_host(relay: &TokenRelay) -> TestHost {
    TestHost::start(&[
        "--relay",
        &relay.https_url,
        "--relay-only",
        "--relay-token",
        TOKEN,
        "--relay-cert-sha256",
        &relay.fingerprint,
    ])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_browser_clients_use_a_token_relay_with_a_pinned_certificate() {
    let relay = tokio::task::block_in_place(TokenRelay::start);
    let mut host = tokio::task::block_in_place(|| start_host(&relay));

    // The pairing code carries the relay URL, the certificate pin and the token.
    let payload = PairingPayload::from_url(&host.url).expect("payload");
    assert_eq!(payload.relay_urls, std::slice::from_ref(&relay.https_url));
    assert!(payload.direct_addrs.is_empty(), "relay-only host");
    let pin = peer_relay::pin::Fingerprint::parse(&relay.fingerprint).expect("fingerprint");
    assert_eq!(payload.relay_cert_sha256, Some(pin.0));
    assert_eq!(
        payload.relay_token.as_ref().map(|t| t.as_str()),
        Some(TOKEN)
    );

    tokio::task::block_in_place(|| {
        // A native client pairs from the URL and attaches through the relay only.
        let client = TestClient::new();
        let out = client.ok(&["--relay-only", "pair", &host.url, "--name", "laptop"]);
        let code = short_code(&out).expect("short code");
        let line = host.wait_line("paired laptop ", Duration::from_secs(10));
        assert_eq!(short_code(&line), Some(code));

        // The token is kept in the private hosts file, and `peer hosts --json` does not show it.
        let hosts = client.hosts_file();
        let text = std::fs::read_to_string(&hosts).expect("hosts.json");
        assert!(text.contains(TOKEN), "{text}");
        assert!(text.contains(&hex::encode(pin.0)), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&hosts)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let listed = client.ok(&["hosts", "--json"]);
        assert!(!listed.contains(TOKEN), "{listed}");
        assert!(listed.contains("\"relay_token\": true"), "{listed}");

        let marker = "TOKEN-RELAY-MARKER-77";
        let mut a = client.spawn(&["--relay-only", "attach", "--new", "--", "sh"]);
        a.type_str(&format!("echo {marker} | tr A-Z a-z\n"));
        a.wait_for(&marker.to_lowercase(), Duration::from_secs(20));
        a.type_str("exit\n");
        assert_eq!(a.wait_exit(Duration::from_secs(10)), 0, "{}", a.stderr());
    });
    assert_eq!(
        relay.metric("peer_relay_relay_clients_denied_total"),
        0,
        "nobody was refused"
    );

    // A browser pairs through peer-relay's own bridge, whose endpoint dials the host through
    // the same token relay.
    let url = tokio::task::block_in_place(|| host.fresh_url());
    let payload = PairingPayload::from_url(&url).expect("payload");
    let ws = WsTransport::connect(&format!(
        "ws://{}/bridge/{}",
        relay.http_addr,
        hex::encode(payload.host_id)
    ))
    .await
    .expect("ws");
    let key = NoiseKeypair::generate();
    let (mut b, paired) = BrowserClient::pair(ws, &payload, &key, "phone")
        .await
        .expect("pair through the bridge");
    let line =
        tokio::task::block_in_place(|| host.wait_line("paired phone ", Duration::from_secs(10)));
    assert_eq!(short_code(&line), Some(paired.code.clone()), "{line}");
    let mut out = Vec::new();
    until(&mut b, &mut out, |m, _| is_hello(m)).await;
    let session = browser_create_shell(&mut b, &mut out, 1).await;
    browser_attach_and_echo(&mut b, &mut out, session, 7, "BRIDGE-TOKEN-MARKER-31").await;
    assert_eq!(relay.metric("peer_relay_relay_clients_denied_total"), 0);
    drop(b);
    tokio::task::block_in_place(|| drop(host));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_and_wrong_pin_are_refused_with_clear_errors() {
    let relay = tokio::task::block_in_place(TokenRelay::start);
    let host = tokio::task::block_in_place(|| start_host(&relay));
    let payload = PairingPayload::from_url(&host.url).expect("payload");

    tokio::task::block_in_place(|| {
        let client = TestClient::new();

        // The same code without the token: the relay refuses the device.
        let mut stripped = payload.clone();
        stripped.relay_token = None;
        let url = stripped.to_url("https://peer.example/").expect("url");
        let started = std::time::Instant::now();
        let out = client.cli(&["--relay-only", "pair", &url, "--name", "laptop"]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("refused this endpoint") && err.contains("needs a relay token"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the refusal should end the attempt early, took {:?}",
            started.elapsed()
        );
        assert!(relay.metric("peer_relay_relay_clients_denied_total") >= 1);

        // A wrong token: refused too, and said so.
        let mut wrong = payload.clone();
        wrong.relay_token =
            Some(peer_pairing::RelayToken::new("not-the-relay-token-000000").expect("token"));
        let out = client.cli(&[
            "--relay-only",
            "pair",
            &wrong.to_url("https://peer.example/").expect("url"),
        ]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("refused this endpoint") && err.contains("token was not accepted"),
            "{err}"
        );

        // A wrong pin: the relay's real certificate is refused, never trusted another way.
        let mut pinned_wrong = payload.clone();
        pinned_wrong.relay_cert_sha256 = Some([0x5a; 32]);
        let out = client.cli(&[
            "--relay-only",
            "pair",
            &pinned_wrong.to_url("https://peer.example/").expect("url"),
        ]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("presented a TLS certificate with SHA-256")
                && err.contains(&relay.fingerprint)
                && err.contains(&"5A:".repeat(31)),
            "{err}"
        );
        // Nothing was stored by the failed attempts.
        assert!(!client.hosts_file().exists());

        // The same mistakes on the host: it does not start.
        let other = TestClient::new();
        let out = other.cli(&[
            "host",
            "--listen",
            "127.0.0.1",
            "--relay",
            &relay.https_url,
            "--relay-only",
            "--relay-cert-sha256",
            &relay.fingerprint,
        ]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("needs a relay token"), "{err}");
        let out = other.cli(&[
            "host",
            "--listen",
            "127.0.0.1",
            "--relay",
            &relay.https_url,
            "--relay-token",
            TOKEN,
            "--relay-cert-sha256",
            &"00".repeat(32),
        ]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("is pinned to"), "{}", stderr(&out));
        let out = other.cli(&["host", "--relay-token", TOKEN]);
        assert!(!out.status.success(), "a token without --relay");
        // A token file is read and its token presented: a wrong one is refused by the relay.
        let file = other.home.path().join("relay-token");
        std::fs::write(&file, "# a comment\n\nnot-the-relay-token-111111\n").expect("token file");
        let file = file.to_str().expect("utf-8 path");
        let host_with_file = |file: &str| {
            other.cli(&[
                "host",
                "--listen",
                "127.0.0.1",
                "--relay",
                &relay.https_url,
                "--relay-token-file",
                file,
                "--relay-cert-sha256",
                &relay.fingerprint,
            ])
        };
        let out = host_with_file(file);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("token was not accepted"),
            "{}",
            stderr(&out)
        );
        std::fs::write(file, "short\n").expect("token file");
        let out = host_with_file(file);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("invalid relay token"),
            "{}",
            stderr(&out)
        );
        drop(host);
    });
}
