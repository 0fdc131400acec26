//! The front server over real sockets on loopback: health, metrics, static files, a plugged-in
//! route with a WebSocket upgrade, HTTPS, connection limits.

mod common;

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use peer_relay::{
    EmbeddedRelay, FrontConfig, Limits, MetricsExposure, RateLimit, RequestContext, RouteFuture,
    RouteHandler, empty_body, full_body,
    tls::{CertResolver, TlsIdentity, server_config},
};
use sha1::Digest as _;
use tokio::{io::AsyncWriteExt as _, net::TcpStream, time::timeout};
use tokio_websockets::Message;

use common::*;

const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics() -> anyhow::Result<()> {
    let relay = EmbeddedRelay::spawn(any_port()).await?;
    let addr = relay.http_addr();

    let health = get(addr, "/healthz").await?;
    assert_eq!(health.status, 200);
    assert_eq!(health.text(), "ok\n");
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(send(addr, "HEAD", "/healthz", "").await?.status, 200);
    assert_eq!(
        send(addr, "POST", "/healthz", "Content-Length: 0\r\n")
            .await?
            .status,
        405
    );

    // The probe path is iroh's.
    let probe = get(addr, "/ping").await?;
    assert_eq!(probe.status, 200);
    assert_eq!(probe.header("access-control-allow-origin"), Some("*"));

    let metrics = get(addr, "/metrics").await?;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4"))
    );
    let text = metrics.text();
    for name in [
        "peer_relay_relay_clients",
        "peer_relay_connections_open",
        "peer_relay_connections_accepted_total",
        "peer_relay_connections_refused_total{reason=\"rate_limited\"}",
        "peer_relay_connections_refused_total{reason=\"per_ip_limit\"}",
        "peer_relay_connections_refused_total{reason=\"global_limit\"}",
        "peer_relay_relay_clients_denied_total",
        "peer_relay_relay_bytes_sent_total",
    ] {
        assert!(metric(&text, name).is_some(), "{name} missing in:\n{text}");
    }
    assert_eq!(
        metric(&text, "peer_relay_http_requests_total{route=\"healthz\"}"),
        Some(3)
    );
    assert_eq!(
        metric(&text, "peer_relay_http_requests_total{route=\"probe\"}"),
        Some(1)
    );
    // This request is being answered on one of them.
    assert!(metric(&text, "peer_relay_connections_open").is_some_and(|n| n >= 1));
    assert_eq!(metric(&text, "peer_relay_relay_clients"), Some(0));
    // Same text through the API.
    assert!(relay.metrics_text().contains("peer_relay_relay_clients 0"));

    // No web root: everything else is a 404.
    assert_eq!(get(addr, "/").await?.status, 404);
    assert_eq!(get(addr, "/index.html").await?.status, 404);
    relay.shutdown().await;

    // Metrics can be switched off.
    let relay =
        EmbeddedRelay::spawn_with(FrontConfig::http(any_port()).metrics(MetricsExposure::Off))
            .await?;
    assert_eq!(get(relay.http_addr(), "/metrics").await?.status, 404);
    relay.shutdown().await;
    Ok(())
}

fn write(dir: &Path, name: &str, contents: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, contents)?;
    Ok(())
}

fn web_root() -> anyhow::Result<(tempfile::TempDir, tempfile::TempDir)> {
    let outside = tempfile::tempdir()?;
    write(outside.path(), "secret.txt", "outside the web root")?;
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    write(root, "index.html", "<!doctype html><title>app</title>")?;
    write(root, "app.js", "console.log('app');")?;
    write(root, "style.css", "body{}")?;
    write(root, "data.json", "{}")?;
    write(root, "icon.svg", "<svg/>")?;
    write(root, "logo.png", "png")?;
    write(root, "app.webmanifest", "{}")?;
    write(root, "core.wasm", "wasm")?;
    write(root, "docs/index.html", "<p>docs</p>")?;
    write(root, "assets/x.js", "x")?;
    write(root, ".env", "SECRET=1")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("escape.txt"))?;
    Ok((dir, outside))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_spa_fallback_and_headers() -> anyhow::Result<()> {
    let (root, _outside) = web_root()?;
    let relay = EmbeddedRelay::spawn_with(
        FrontConfig::http(any_port())
            .web_root(root.path())
            .static_max_age(Duration::from_secs(60)),
    )
    .await?;
    let addr = relay.http_addr();

    let index = get(addr, "/").await?;
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<!doctype html><title>app</title>");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("content-security-policy"), Some(CSP));
    assert_eq!(index.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(index.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    let etag = index.header("etag").context("etag")?.to_owned();

    // Revalidation.
    let again = send(addr, "GET", "/", &format!("If-None-Match: {etag}\r\n")).await?;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    for (path, content_type) in [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/icon.svg", "image/svg+xml"),
        ("/logo.png", "image/png"),
        ("/app.webmanifest", "application/manifest+json"),
        ("/core.wasm", "application/wasm"),
        ("/assets/x.js", "text/javascript; charset=utf-8"),
    ] {
        let response = get(addr, path).await?;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        if path == "/app.webmanifest" {
            assert_eq!(response.header("cache-control"), Some("no-cache"));
        } else {
            assert_eq!(
                response.header("cache-control"),
                Some("public, max-age=60"),
                "{path}"
            );
        }
    }
    assert_eq!(get(addr, "/app.js").await?.text(), "console.log('app');");
    assert_eq!(
        get(addr, "/icon.svg")
            .await?
            .header("content-security-policy"),
        Some(CSP)
    );

    // SPA fallback: unknown paths without an extension get index.html; with one, a 404.
    for path in ["/settings", "/devices/abc/edit", "/assets/"] {
        let response = get(addr, path).await?;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.text(),
            "<!doctype html><title>app</title>",
            "{path}"
        );
        assert_eq!(response.header("content-security-policy"), Some(CSP));
    }
    assert_eq!(get(addr, "/missing.js").await?.status, 404);
    assert_eq!(get(addr, "/assets/missing.css").await?.status, 404);

    // A directory with an index: redirect to the slash form, then its index. No listing.
    let redirect = get(addr, "/docs").await?;
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location"), Some("/docs/"));
    assert_eq!(get(addr, "/docs/").await?.text(), "<p>docs</p>");

    // Dot-files and symlinks out of the root are not served.
    assert_eq!(get(addr, "/.env").await?.status, 404);
    #[cfg(unix)]
    {
        let escape = get(addr, "/escape.txt").await?;
        assert_eq!(escape.status, 404);
        assert!(!escape.text().contains("outside"));
    }

    // Traversal attempts, sent byte for byte.
    for path in [
        "/../Cargo.toml",
        "/../../etc/passwd",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/%2e%2e%2fCargo.toml",
        "/assets/..%2f..%2fCargo.toml",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/..%5c..%5cCargo.toml",
        "//etc/passwd",
        "/assets/./x.js",
        "/%00",
        "/%zz",
    ] {
        let response = get(addr, path).await?;
        assert!(
            response.status == 400 || response.status == 404,
            "{path}: {}",
            response.status
        );
        assert!(!response.text().contains("[package]"), "{path}");
        assert!(!response.text().contains("root:"), "{path}");
    }
    // Absolute-form request targets carry the same path checks.
    let absolute = get(addr, "http://relay.test/../Cargo.toml").await?;
    assert!(absolute.status == 400 || absolute.status == 404);

    // HEAD: headers without a body; other methods are refused.
    let head = send(addr, "HEAD", "/app.js", "").await?;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("19"));
    assert!(head.body.is_empty());
    let post = send(addr, "POST", "/", "Content-Length: 0\r\n").await?;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    let metrics = relay.metrics_text();
    assert!(
        metric(&metrics, "peer_relay_http_requests_total{route=\"static\"}")
            .is_some_and(|n| n > 20)
    );
    relay.shutdown().await;
    Ok(())
}

/// A route for tests: answers plain requests with what it saw, and upgrades `{prefix}/ws` to a
/// WebSocket that echoes text messages.
#[derive(Debug, Default)]
struct EchoRoute {
    hits: AtomicU64,
    upgrades: AtomicU64,
}

fn ws_accept(key: &HeaderValue) -> String {
    let mut sha = sha1::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

impl RouteHandler for EchoRoute {
    fn handle(&self, mut request: Request<Incoming>, peer: SocketAddr) -> RouteFuture {
        self.hits.fetch_add(1, Ordering::Relaxed);
        let context = request.extensions().get::<RequestContext>().cloned();
        let key = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
        let wants_ws = request.uri().path().ends_with("/ws");
        if let (true, Some(key), Some(context)) = (wants_ws, key, context.clone()) {
            self.upgrades.fetch_add(1, Ordering::Relaxed);
            let upgrade = hyper::upgrade::on(&mut request);
            context.spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut ws = tokio_websockets::ServerBuilder::new().serve(TokioIo::new(upgraded));
                while let Some(Ok(message)) = ws.next().await {
                    if let Some(text) = message.as_text() {
                        let reply = format!("echo:{text}");
                        if ws.send(Message::text(reply)).await.is_err() {
                            break;
                        }
                    }
                }
            });
            return Box::pin(async move {
                let mut response = Response::new(empty_body());
                *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                let headers = response.headers_mut();
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                if let Ok(accept) = HeaderValue::from_str(&ws_accept(&key)) {
                    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
                }
                response
            });
        }
        let path = request.uri().path().to_owned();
        let seen_peer = context.map(|c| c.peer_addr());
        Box::pin(async move {
            if path.ends_with("/page") {
                let mut response = Response::new(full_body("<p>route page</p>"));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                return response;
            }
            let body = format!("route saw {path} from {} ({seen_peer:?})", peer.ip());
            Response::new(full_body(body))
        })
    }

    fn write_metrics(&self, out: &mut String) {
        out.push_str("# TYPE peer_test_route_hits_total counter\n");
        out.push_str(&format!(
            "peer_test_route_hits_total {}\n",
            self.hits.load(Ordering::Relaxed)
        ));
    }
}

async fn websocket(
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<TcpStream>>>
{
    let tcp = TcpStream::connect(addr).await?;
    let (ws, response) = tokio_websockets::ClientBuilder::new()
        .uri(&format!("ws://{addr}{path}"))?
        .connect_on(tokio_websockets::MaybeTlsStream::Plain(tcp))
        .await?;
    anyhow::ensure!(response.status() == StatusCode::SWITCHING_PROTOCOLS);
    Ok(ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugged_route_gets_its_prefix_and_can_upgrade() -> anyhow::Result<()> {
    let (root, _outside) = web_root()?;
    let route = Arc::new(EchoRoute::default());
    let relay = EmbeddedRelay::spawn_with(
        FrontConfig::http(any_port())
            .web_root(root.path())
            .route("/bridge", route.clone()),
    )
    .await?;
    let addr = relay.http_addr();

    let plain = get(addr, "/bridge/info?x=1").await?;
    assert_eq!(plain.status, 200);
    assert!(
        plain
            .text()
            .starts_with("route saw /bridge/info from 127.0.0.1"),
        "{}",
        plain.text()
    );
    assert!(
        plain.text().contains("Some(127.0.0.1:"),
        "context present: {}",
        plain.text()
    );
    assert_eq!(plain.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(get(addr, "/bridge").await?.status, 200);
    // HTML from a route gets the CSP too.
    let page = get(addr, "/bridge/page").await?;
    assert_eq!(page.header("content-security-policy"), Some(CSP));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    // Not under the prefix: the SPA fallback answers.
    let elsewhere = get(addr, "/bridges").await?;
    assert_eq!(elsewhere.text(), "<!doctype html><title>app</title>");

    let mut ws = websocket(addr, "/bridge/ws").await?;
    for text in ["hello", "again"] {
        ws.send(Message::text(text.to_owned())).await?;
        let reply = timeout(STEP, ws.next())
            .await
            .context("no echo")?
            .context("closed")??;
        assert_eq!(reply.as_text(), Some(format!("echo:{text}").as_str()));
    }
    assert_eq!(route.upgrades.load(Ordering::Relaxed), 1);

    // The upgraded connection still counts as open, and the route's metrics are appended.
    let text = get(addr, "/metrics").await?.text();
    assert!(
        metric(&text, "peer_relay_connections_open").is_some_and(|n| n >= 2),
        "{text}"
    );
    assert_eq!(metric(&text, "peer_test_route_hits_total"), Some(4));
    assert_eq!(
        metric(&text, "peer_relay_http_requests_total{route=\"route\"}"),
        Some(4)
    );

    // Stopping the server closes the WebSocket (the route's task is owned by the server).
    timeout(Duration::from_secs(10), relay.shutdown())
        .await
        .context("shutdown hung")?;
    let end = timeout(Duration::from_secs(5), ws.next())
        .await
        .context("websocket still open after shutdown")?;
    assert!(
        !matches!(end, Some(Ok(ref m)) if m.as_text().is_some()),
        "unexpected message: {end:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_prefixes_are_checked_and_the_longest_wins() -> anyhow::Result<()> {
    for prefix in [
        "/relay",
        "/metrics",
        "/",
        "/bridge/",
        "bridge",
        "/healthz/x",
    ] {
        let result = EmbeddedRelay::spawn_with(
            FrontConfig::http(any_port()).route(prefix, Arc::new(EchoRoute::default())),
        )
        .await;
        assert!(result.is_err(), "{prefix:?} accepted");
    }
    assert!(EmbeddedRelay::spawn_with(FrontConfig::new()).await.is_err());
    let twice = EmbeddedRelay::spawn_with(
        FrontConfig::http(any_port())
            .route("/a", Arc::new(EchoRoute::default()))
            .route("/bc", Arc::new(EchoRoute::default()))
            .route("/a", Arc::new(EchoRoute::default())),
    )
    .await;
    assert!(twice.is_err(), "a prefix given twice was accepted");
    // Nested prefixes are fine: the longest wins.
    let (outer, inner) = (
        Arc::new(EchoRoute::default()),
        Arc::new(EchoRoute::default()),
    );
    let nested = EmbeddedRelay::spawn_with(
        FrontConfig::http(any_port())
            .route("/a", outer.clone())
            .route("/a/b", inner.clone()),
    )
    .await?;
    for path in ["/a", "/a/x", "/a/b", "/a/b/c", "/a/bc"] {
        assert_eq!(get(nested.http_addr(), path).await?.status, 200, "{path}");
    }
    assert_eq!(outer.hits.load(Ordering::Relaxed), 3);
    assert_eq!(inner.hits.load(Ordering::Relaxed), 2);
    nested.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_static_files_with_a_self_signed_cert() -> anyhow::Result<()> {
    let (root, _outside) = web_root()?;
    let identity = TlsIdentity::self_signed(&["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let tls = server_config(CertResolver::new(&identity)?)?;
    let relay = EmbeddedRelay::spawn_with(
        FrontConfig::new()
            .with_https(any_port(), tls)
            .web_root(root.path()),
    )
    .await?;
    let addr = relay.https_addr().context("https listener")?;
    assert_eq!(
        relay.http_addr(),
        addr,
        "the only listener is the primary one"
    );
    assert!(
        relay
            .url_for(loopback(1))
            .as_str()
            .starts_with("https://127.0.0.1:")
    );
    assert_eq!(
        relay.https_url("relay.test").map(|u| u.to_string()),
        Some(format!("https://relay.test:{}/", addr.port()))
    );

    let cert = identity.certificate().clone();
    let index = get_tls(addr, "/", &cert).await?;
    assert_eq!(index.status, 200);
    assert_eq!(index.header("content-security-policy"), Some(CSP));
    assert_eq!(
        get_tls(addr, "/app.js", &cert).await?.text(),
        "console.log('app');"
    );
    assert_eq!(get_tls(addr, "/healthz", &cert).await?.text(), "ok\n");
    assert_eq!(
        get_tls(addr, "/%2e%2e/Cargo.toml", &cert).await?.status,
        400
    );

    // A client that does not trust the certificate fails the handshake.
    let other = TlsIdentity::self_signed(&["127.0.0.1".to_owned()])?;
    assert!(get_tls(addr, "/", other.certificate()).await.is_err());
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    assert!(get(addr, "/healthz").await.is_err());
    wait_metric(&relay, "peer_relay_tls_handshake_failures_total", |n| {
        n >= 2
    })
    .await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_and_global_caps_refuse_the_excess() -> anyhow::Result<()> {
    let mut limits = Limits::unlimited();
    limits.max_connections_per_ip = Some(2);
    limits.max_connections = Some(4);
    let relay = EmbeddedRelay::spawn_with(FrontConfig::http(any_port()).limits(limits)).await?;
    let addr = relay.http_addr();

    // 127.0.0.3 holds two idle connections; a third from it is closed at once.
    let mut held = vec![
        connect_from(loopback(3), addr).await?,
        connect_from(loopback(3), addr).await?,
    ];
    // Make sure both were accepted before the third arrives.
    wait_open(&relay, 2).await?;
    assert!(refused_from(loopback(3), addr).await?);
    // Another address is still served.
    assert_eq!(get_from(loopback(2), addr, "/healthz").await?.status, 200);

    // Fill the global cap (2 + 2 = 4), then everyone is refused, even a fresh address.
    held.push(connect_from(loopback(4), addr).await?);
    held.push(connect_from(loopback(5), addr).await?);
    wait_open(&relay, 4).await?;
    assert!(refused_from(loopback(6), addr).await?);
    let text = relay.metrics_text();
    assert_eq!(
        metric(
            &text,
            "peer_relay_connections_refused_total{reason=\"per_ip_limit\"}"
        ),
        Some(1)
    );
    assert_eq!(
        metric(
            &text,
            "peer_relay_connections_refused_total{reason=\"global_limit\"}"
        ),
        Some(1)
    );

    // Closing connections frees their places.
    held.clear();
    wait_open(&relay, 0).await?;
    assert_eq!(get_from(loopback(3), addr, "/healthz").await?.status, 200);
    relay.shutdown().await;
    Ok(())
}

async fn wait_open(relay: &EmbeddedRelay, expected: u64) -> anyhow::Result<()> {
    wait_metric(relay, "peer_relay_connections_open", |n| n == expected).await
}

/// Waits until the metric `name` satisfies `ok`: the server counts a connection's fate after the
/// client has already seen it, so a test that just watched a close must not read the count at once.
async fn wait_metric(
    relay: &EmbeddedRelay,
    name: &str,
    ok: impl Fn(u64) -> bool,
) -> anyhow::Result<()> {
    let reached = timeout(Duration::from_secs(5), async {
        loop {
            if metric(&relay.metrics_text(), name).is_some_and(&ok) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    reached.with_context(|| {
        format!(
            "{name} never reached the expected value:\n{}",
            relay.metrics_text()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_refuses_a_flood_while_others_keep_working() -> anyhow::Result<()> {
    let mut limits = Limits::unlimited();
    limits.new_connections_per_ip = Some(RateLimit {
        per_second: 0.5,
        burst: 10,
    });
    let relay = EmbeddedRelay::spawn_with(FrontConfig::http(any_port()).limits(limits)).await?;
    let addr = relay.http_addr();
    let url = relay.url_for(loopback(1));

    // Two relay clients (from 127.0.0.1, which has its own bucket) connected before the flood.
    let server = relay_endpoint(&url, None, None, vec![ALPN.to_vec()]).await?;
    let client = relay_endpoint(&url, None, None, vec![]).await?;
    timeout(STEP, client.online())
        .await
        .context("client online")?;

    // 127.0.0.7 floods: the burst passes, the rest is closed without an answer.
    let mut answered = 0;
    let mut refused = 0;
    for _ in 0..16 {
        if refused_from(loopback(7), addr).await? {
            refused += 1;
        } else {
            answered += 1;
        }
    }
    assert_eq!(answered, 10, "the burst is served");
    assert_eq!(refused, 6);
    // Other addresses are unaffected, and the relay clients still relay.
    assert_eq!(get_from(loopback(8), addr, "/healthz").await?.status, 200);
    ping_through(&client, &server, &url).await?;
    let text = relay.metrics_text();
    // At least the flood's; the endpoints' periodic probes from 127.0.0.1 may add some.
    assert!(
        metric(
            &text,
            "peer_relay_connections_refused_total{reason=\"rate_limited\"}"
        )
        .is_some_and(|n| n >= 6)
    );
    client.close().await;
    server.close().await;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_relay_handshakes_are_closed() -> anyhow::Result<()> {
    let mut limits = Limits::default();
    limits.relay_handshake_timeout = Duration::from_millis(500);
    let relay = EmbeddedRelay::spawn_with(FrontConfig::http(any_port()).limits(limits)).await?;
    let addr = relay.http_addr();

    // A client that upgrades to the relay protocol and then says nothing.
    let mut stalled = TcpStream::connect(addr).await?;
    stalled
        .write_all(
            b"GET /relay HTTP/1.1\r\nHost: relay.test\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: iroh-relay-v2\r\n\r\n",
        )
        .await?;
    wait_closed(&mut stalled, Duration::from_secs(5)).await?;
    wait_open(&relay, 0).await?;
    let text = relay.metrics_text();
    assert_eq!(
        metric(&text, "peer_relay_relay_handshake_timeouts_total"),
        Some(1)
    );
    relay.shutdown().await;
    Ok(())
}
