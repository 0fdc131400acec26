//! The bridge end to end on loopback: a real iroh host, a real HTTP server with the bridge
//! behind it, a real WebSocket client.

mod common;

use std::time::Duration;

use anyhow::{Result, ensure};
use futures_util::{SinkExt, StreamExt};
use iroh::{EndpointAddr, SecretKey};
use peer_mobile_bridge::{BridgeConfig, close};
use tokio::time::Instant;
use tokio_websockets::{ClientBuilder, Config, Message};

use common::*;

fn config() -> BridgeConfig {
    BridgeConfig {
        connect_timeout: Duration::from_secs(5),
        ..BridgeConfig::default()
    }
}

async fn bridge_and_host() -> Result<(TestBridge, TestHost)> {
    let bridge = TestBridge::start(config()).await?;
    let host = TestHost::start(HostMode::Echo).await?;
    bridge.addrs.insert(host.addr());
    Ok((bridge, host))
}

fn random_bytes(n: usize, seed: &mut u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            // xorshift: cheap, deterministic.
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn round_trip_many_messages_both_ways() -> Result<()> {
    let (bridge, _host) = bridge_and_host().await?;
    let ws = bridge.connect(_host.id()).await?;
    let (mut tx, mut rx) = ws.split();

    let mut seed = 0x1234_5678_9abc_def1;
    // Empty messages are not Noise messages (a zero length is a close record on the stream).
    let mut sizes: Vec<usize> = vec![1, 2, 100, 65535, 65534, 40_000, 65535];
    sizes.extend((0..300).map(|i| 1 + (i * 997) % 5000));
    let messages: Vec<Vec<u8>> = sizes.iter().map(|&n| random_bytes(n, &mut seed)).collect();
    let expected: Vec<Vec<u8>> = messages.iter().map(|m| m.to_ascii_uppercase()).collect();
    let total: u64 = messages.iter().map(|m| m.len() as u64).sum();

    // Send everything while reading concurrently: the echo must come back in order.
    let sender = async {
        for m in messages {
            tx.send(Message::binary(m)).await?;
        }
        anyhow::Ok(tx)
    };
    let receiver = async {
        for (i, want) in expected.iter().enumerate() {
            let msg = tokio::time::timeout(WAIT, rx.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("ended"))??;
            ensure!(msg.is_binary(), "message {i} not binary");
            ensure!(
                msg.as_payload()[..] == want[..],
                "message {i} differs ({} bytes)",
                want.len()
            );
        }
        anyhow::Ok(rx)
    };
    let (tx, rx) = tokio::try_join!(sender, receiver)?;
    let mut ws = rx.reunite(tx).map_err(|_| anyhow::anyhow!("reunite"))?;

    // Host-initiated messages of every size up to the maximum.
    for n in [1usize, 65535, 12345] {
        send_binary(&mut ws, format!("!send {n}").into_bytes()).await?;
        let got = recv_binary(&mut ws).await?;
        ensure!(got == pattern(n), "host message of {n} bytes differs");
    }

    // The counters are bumped just after each write completes: allow them a moment.
    let commands: u64 = ["!send 1", "!send 65535", "!send 12345"]
        .iter()
        .map(|c| c.len() as u64)
        .sum();
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = bridge.bridge.stats();
        if stats.bytes_to_host == total + commands
            && stats.bytes_to_browser == total + 1 + 65535 + 12345
        {
            ensure!(stats.active == 1, "{stats:?}");
            ensure!(stats.host_connections == 1, "{stats:?}");
            break;
        }
        ensure!(Instant::now() < deadline, "byte counts: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    ws.close().await?;
    bridge.wait_idle().await?;
    ensure!(bridge.bridge.stats().served == 1);
    Ok(())
}

#[tokio::test]
async fn bytes_pass_through_unmodified() -> Result<()> {
    let (bridge, mut host) = bridge_and_host().await?;
    let mut ws = bridge.connect(host.id()).await?;

    // Every byte value, plus random data: the host must receive exactly what was sent.
    let mut all: Vec<u8> = (0..=255u8).collect();
    all.extend((0..=255u8).rev());
    let mut seed = 42;
    let sent = vec![
        all,
        random_bytes(65535, &mut seed),
        vec![0u8; 1000],
        vec![7],
    ];
    for m in &sent {
        send_binary(&mut ws, m.clone()).await?;
        ensure!(host.next_event().await? == HostEvent::Message(m.clone()));
        ensure!(recv_binary(&mut ws).await? == m.to_ascii_uppercase());
    }
    // And the browser receives exactly what the host sent.
    send_binary(&mut ws, b"!send 65535".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == pattern(65535));
    // An empty message is refused: it is no Noise message.
    send_binary(&mut ws, vec![]).await?;
    let (code, _) = recv_close(&mut ws).await?;
    ensure!(code == close::BAD_MESSAGE, "closed with {code}");
    Ok(())
}

#[tokio::test]
async fn a_close_record_from_the_host_closes_the_socket_with_its_code_after_what_came_before()
-> Result<()> {
    let (bridge, _host) = bridge_and_host().await?;
    for code in [close::REVOKED, close::SHUTTING_DOWN] {
        let mut ws = bridge.connect(_host.id()).await?;
        send_binary(&mut ws, format!("!closerec {code}").into_bytes()).await?;
        ensure!(recv_binary(&mut ws).await? == b"BYE".to_vec());
        let (got, reason) = recv_close(&mut ws).await?;
        ensure!(got == code && reason == "why", "closed with {got} {reason}");
    }
    // Codes outside the host's range are not passed on.
    let mut ws = bridge.connect(_host.id()).await?;
    send_binary(&mut ws, b"!closerec 1000".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"BYE".to_vec());
    let (got, _) = recv_close(&mut ws).await?;
    ensure!(got == close::HOST_ERROR, "closed with {got}");
    Ok(())
}

#[tokio::test]
async fn one_host_connection_for_many_sockets() -> Result<()> {
    let (bridge, host) = bridge_and_host().await?;
    // Sockets opened at the same moment share one dial.
    let mut sockets = Vec::new();
    let opened = futures_util::future::try_join_all((0..5u8).map(|i| {
        let bridge = &bridge;
        let host = host.id();
        async move {
            let mut ws = bridge.connect(host).await?;
            send_binary(&mut ws, vec![b'a' + i]).await?;
            ensure!(recv_binary(&mut ws).await? == vec![b'A' + i]);
            anyhow::Ok(ws)
        }
    }))
    .await?;
    sockets.extend(opened);
    ensure!(host.connections.load(std::sync::atomic::Ordering::SeqCst) == 1);
    ensure!(bridge.bridge.stats().host_connections == 1);
    for mut ws in sockets {
        ws.close().await?;
    }
    bridge.wait_idle().await?;
    // A later socket still reuses the connection.
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"again".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"AGAIN");
    ensure!(host.connections.load(std::sync::atomic::Ordering::SeqCst) == 1);
    Ok(())
}

#[tokio::test]
async fn oversized_message_closes_4002() -> Result<()> {
    let (bridge, _host) = bridge_and_host().await?;
    for n in [65536usize, 100_000] {
        let mut ws = bridge.connect(_host.id()).await?;
        send_binary(&mut ws, b"ok".to_vec()).await?;
        ensure!(recv_binary(&mut ws).await? == b"OK");
        send_binary(&mut ws, vec![7u8; n]).await?;
        let (code, reason) = recv_close(&mut ws).await?;
        ensure!(code == close::BAD_MESSAGE, "{n} bytes: {code} {reason}");
    }
    // A fragmented message over the limit (each frame small) gets 4002 as well.
    let (mut ws, _) = ClientBuilder::new()
        .uri(&bridge.url(_host.id()))?
        .config(Config::default().frame_size(16 * 1024))
        .connect()
        .await?;
    send_binary(&mut ws, vec![1u8; 300_000]).await?;
    let (code, _) = recv_close(&mut ws).await?;
    ensure!(code == close::BAD_MESSAGE, "fragmented: {code}");
    // A single frame announcing more than WS_READ_LIMIT is refused by the WebSocket layer
    // before it is buffered, with the standard 1009.
    let mut ws = bridge.connect(_host.id()).await?;
    let _ = send_binary(&mut ws, vec![1u8; 1 << 20]).await;
    let (code, _) = recv_close(&mut ws).await?;
    ensure!(code == 1009, "huge frame: {code}");
    bridge.wait_idle().await
}

#[tokio::test]
async fn text_message_closes_4002() -> Result<()> {
    let (bridge, mut host) = bridge_and_host().await?;
    let mut ws = bridge.connect(host.id()).await?;
    ws.send(Message::text("hello")).await?;
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::BAD_MESSAGE, "{code} {reason}");
    // The host's stream ends too.
    ensure!(matches!(
        host.next_event().await?,
        HostEvent::StreamEnded(_)
    ));
    bridge.wait_idle().await
}

#[tokio::test]
async fn offline_host_closes_4001_within_connect_timeout() -> Result<()> {
    let connect_timeout = Duration::from_millis(700);
    let bridge = TestBridge::start(BridgeConfig {
        connect_timeout,
        ..BridgeConfig::default()
    })
    .await?;
    // An address where nothing answers QUIC: a UDP socket that never replies.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let offline = SecretKey::from_bytes(&[9u8; 32]).public();
    bridge
        .addrs
        .insert(EndpointAddr::new(offline).with_ip_addr(silent.local_addr()?));

    let start = Instant::now();
    let mut ws = bridge.connect(offline).await?;
    let (code, reason) = recv_close(&mut ws).await?;
    let took = start.elapsed();
    ensure!(code == close::HOST_UNREACHABLE, "{code} {reason}");
    ensure!(
        took < connect_timeout + Duration::from_secs(2),
        "took {took:?}"
    );

    // A host id the bridge has no address for at all fails at once.
    let unknown = SecretKey::from_bytes(&[10u8; 32]).public();
    let start = Instant::now();
    let mut ws = bridge.connect(unknown).await?;
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::HOST_UNREACHABLE, "{code} {reason}");
    ensure!(start.elapsed() < connect_timeout + Duration::from_secs(2));

    bridge.wait_idle().await?;
    ensure!(bridge.bridge.stats().host_connections == 0);
    Ok(())
}

#[tokio::test]
async fn host_finishing_the_stream_closes_1000() -> Result<()> {
    let (bridge, mut host) = bridge_and_host().await?;
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"hi".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"HI");
    send_binary(&mut ws, b"!fin".to_vec()).await?;
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::NORMAL, "{code} {reason}");
    // The bridge finished its side too: the host's read ends cleanly.
    ensure!(host.next_event().await? == HostEvent::Message(b"hi".to_vec()));
    ensure!(host.next_event().await? == HostEvent::Message(b"!fin".to_vec()));
    ensure!(host.next_event().await? == HostEvent::StreamEnded(true));
    bridge.wait_idle().await
}

#[tokio::test]
async fn browser_close_ends_the_host_stream() -> Result<()> {
    let (bridge, mut host) = bridge_and_host().await?;
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"x".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"X");
    ensure!(host.next_event().await? == HostEvent::Message(b"x".to_vec()));
    ws.close().await?;
    ensure!(host.next_event().await? == HostEvent::StreamEnded(true));
    bridge.wait_idle().await?;

    // Dropping the TCP connection without a close frame ends it too.
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"y".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"Y");
    ensure!(host.next_event().await? == HostEvent::Message(b"y".to_vec()));
    drop(ws);
    ensure!(matches!(
        host.next_event().await?,
        HostEvent::StreamEnded(_)
    ));
    bridge.wait_idle().await
}

#[tokio::test]
async fn host_errors_close_1011() -> Result<()> {
    let (bridge, host) = bridge_and_host().await?;
    // The host resets the stream.
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"!reset".to_vec()).await?;
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::HOST_ERROR, "{code} {reason}");

    // The host closes the connection after answering: other sockets see it too, and the
    // dead connection is dropped from the cache.
    let mut other = bridge.connect(host.id()).await?;
    send_binary(&mut other, b"o".to_vec()).await?;
    ensure!(recv_binary(&mut other).await? == b"O");
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"!close".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"BYE");
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::HOST_ERROR, "{code} {reason}");
    ensure!(reason.contains("shutting down"), "{reason}");
    let (code, _) = recv_close(&mut other).await?;
    ensure!(code == close::HOST_ERROR, "{code}");
    bridge.wait_idle().await?;
    ensure!(bridge.bridge.stats().host_connections == 0);

    // The next socket dials afresh.
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"new".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"NEW");
    ensure!(host.connections.load(std::sync::atomic::Ordering::SeqCst) == 2);
    Ok(())
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test]
async fn host_refusing_the_alpn_closes_4004() -> Result<()> {
    let bridge = TestBridge::start(config()).await?;
    // The host accepts the ALPN but closes with an application code.
    let refusing = TestHost::start(HostMode::Refuse).await?;
    bridge.addrs.insert(refusing.addr());
    let mut ws = bridge.connect(refusing.id()).await?;
    send_binary(&mut ws, b"hello".to_vec()).await?;
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::HOST_REFUSED, "{code} {reason}");
    ensure!(reason == "bridge not served here", "{reason}");

    // The host does not offer the ALPN at all (its accept loop runs; the TLS handshake fails).
    let other = loopback_endpoint(vec![b"something/else".to_vec()]).await?;
    bridge.addrs.insert(other.addr());
    let accepting = other.clone();
    let _accept = AbortOnDrop(tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let _ = incoming.await;
        }
    }));
    let mut ws = bridge.connect(other.id()).await?;
    let start = Instant::now();
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::HOST_REFUSED, "{code} {reason}");
    ensure!(reason.contains("peer/bridge/1"), "{reason}");
    ensure!(
        start.elapsed() < Duration::from_secs(2),
        "not refused at once"
    );
    bridge.wait_idle().await
}

#[tokio::test]
async fn per_ip_cap_refuses_the_33rd() -> Result<()> {
    let (bridge, host) = bridge_and_host().await?;
    let mut sockets = Vec::new();
    for i in 0..32 {
        let mut ws = bridge.connect(host.id()).await?;
        send_binary(&mut ws, format!("s{i}").into_bytes()).await?;
        ensure!(recv_binary(&mut ws).await? == format!("S{i}").into_bytes());
        sockets.push(ws);
    }
    let refused = bridge.connect(host.id()).await;
    let err = refused
        .err()
        .ok_or_else(|| anyhow::anyhow!("33rd admitted"))?;
    let status = match err.downcast_ref::<tokio_websockets::Error>() {
        Some(tokio_websockets::Error::Upgrade(
            tokio_websockets::upgrade::Error::DidNotSwitchProtocols(s),
        )) => *s,
        _ => anyhow::bail!("unexpected error: {err}"),
    };
    ensure!(status == 429, "{status}");
    ensure!(bridge.bridge.stats().refused == 1);

    // Closing one frees a place.
    let mut first = sockets.remove(0);
    first.close().await?;
    let deadline = Instant::now() + WAIT;
    while bridge.bridge.stats().admitted != 31 {
        ensure!(Instant::now() < deadline, "admission not released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"late".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"LATE");
    Ok(())
}

#[tokio::test]
async fn global_cap_refuses_with_503_or_4008() -> Result<()> {
    let cfg = BridgeConfig {
        max_connections: 2,
        ..config()
    };
    let host = TestHost::start(HostMode::Echo).await?;

    let bridge = TestBridge::start(cfg).await?;
    bridge.addrs.insert(host.addr());
    let _a = bridge.connect(host.id()).await?;
    let _b = bridge.connect(host.id()).await?;
    let err = bridge
        .connect(host.id())
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("third admitted"))?;
    ensure!(
        matches!(
            err.downcast_ref::<tokio_websockets::Error>(),
            Some(tokio_websockets::Error::Upgrade(
                tokio_websockets::upgrade::Error::DidNotSwitchProtocols(503)
            ))
        ),
        "{err}"
    );

    // A server that upgrades first closes the refused socket with 4008.
    let late = TestBridge::start_with(cfg, Admit::AfterUpgrade).await?;
    late.addrs.insert(host.addr());
    let _a = late.connect(host.id()).await?;
    let _b = late.connect(host.id()).await?;
    let mut ws = late.connect(host.id()).await?;
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::TOO_MANY, "{code} {reason}");
    Ok(())
}

#[tokio::test]
async fn idle_socket_closes_4003() -> Result<()> {
    let idle = Duration::from_millis(400);
    let bridge = TestBridge::start(BridgeConfig {
        idle_timeout: idle,
        ..config()
    })
    .await?;
    let mut host = TestHost::start(HostMode::Echo).await?;
    bridge.addrs.insert(host.addr());
    let mut ws = bridge.connect(host.id()).await?;

    // Traffic keeps it open past the timeout.
    let start = Instant::now();
    while start.elapsed() < idle * 3 {
        send_binary(&mut ws, b"tick".to_vec()).await?;
        ensure!(recv_binary(&mut ws).await? == b"TICK");
        tokio::time::sleep(idle / 4).await;
    }
    // Silence closes it.
    let quiet = Instant::now();
    let (code, reason) = recv_close(&mut ws).await?;
    ensure!(code == close::IDLE_TIMEOUT, "{code} {reason}");
    let took = quiet.elapsed();
    ensure!(took >= idle / 2 && took < idle * 4, "closed after {took:?}");
    // The host's stream ends with it.
    loop {
        if let HostEvent::StreamEnded(clean) = host.next_event().await? {
            ensure!(clean);
            break;
        }
    }
    bridge.wait_idle().await?;
    // With no socket left, the host connection is dropped after the idle time as well.
    let deadline = Instant::now() + WAIT;
    while bridge.bridge.stats().host_connections != 0 {
        ensure!(Instant::now() < deadline, "host connection kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test]
async fn bad_paths_get_404() -> Result<()> {
    let bridge = TestBridge::start(config()).await?;
    let url = format!("ws://{}/bridge/nothex", bridge.http);
    let err = connect_url(&url)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("connected"))?;
    ensure!(
        matches!(
            err.downcast_ref::<tokio_websockets::Error>(),
            Some(tokio_websockets::Error::Upgrade(
                tokio_websockets::upgrade::Error::DidNotSwitchProtocols(404)
            ))
        ),
        "{err}"
    );
    ensure!(bridge.bridge.stats().admitted == 0);
    Ok(())
}

/// Sends until a send has been stuck for a while; returns the bytes sent until then.
async fn send_until_stuck(ws: &mut Client, limit: u64) -> Result<u64> {
    let chunk = vec![0x5au8; 65535];
    let mut sent = 0u64;
    loop {
        match tokio::time::timeout(Duration::from_millis(500), send_binary(ws, chunk.clone())).await
        {
            Ok(r) => r?,
            Err(_) => return Ok(sent),
        }
        sent += chunk.len() as u64;
        ensure!(sent < limit, "{sent} bytes taken without pushing back");
    }
}

#[tokio::test]
async fn a_stalled_host_pushes_back_on_the_browser() -> Result<()> {
    let bridge = TestBridge::start(config()).await?;
    let host = TestHost::start(HostMode::Stall).await?;
    bridge.addrs.insert(host.addr());
    let mut ws = bridge.connect(host.id()).await?;
    // The host never reads: QUIC flow control stops the bridge, which stops reading the
    // WebSocket, which fills the TCP buffers. Bounded by windows and buffers, not by the
    // amount sent.
    let sent = send_until_stuck(&mut ws, 256 << 20).await?;
    let stats = bridge.bridge.stats();
    ensure!(stats.bytes_to_host <= sent, "{stats:?}");
    ensure!(
        sent - stats.bytes_to_host <= 64 << 20,
        "{sent} sent, {stats:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_slow_browser_pushes_back_on_the_host() -> Result<()> {
    let (bridge, host) = bridge_and_host().await?;
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"!flood".to_vec()).await?;
    // The browser reads nothing: the bridge stops reading the host's stream, and the host's
    // writes stall once the QUIC window is full.
    let mut last = 0;
    let deadline = Instant::now() + WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = host.flooded.load(std::sync::atomic::Ordering::SeqCst);
        if now == last && now > 0 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the host never stalled ({now} bytes)"
        );
        last = now;
    }
    ensure!(last < 256 << 20, "{last} bytes written before stalling");
    let at_browser = bridge.bridge.stats().bytes_to_browser;
    ensure!(
        last - at_browser <= 64 << 20,
        "{last} written, {at_browser} forwarded"
    );
    // Reading again lets it flow, unmodified.
    for _ in 0..20 {
        ensure!(recv_binary(&mut ws).await? == pattern(65535));
    }
    Ok(())
}

/// The bridge replaces a host connection on which what it sent has gone unanswered for 2 s
/// (a host killed and restarted); a connection that is merely quiet (nothing sent either way,
/// no keep-alives on these endpoints) is healthy and is kept, with its sockets.
#[tokio::test]
async fn a_quiet_healthy_host_connection_is_kept() -> Result<()> {
    let (bridge, host) = bridge_and_host().await?;
    let mut ws = bridge.connect(host.id()).await?;
    send_binary(&mut ws, b"before".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"BEFORE");
    tokio::time::sleep(Duration::from_secs(3)).await;
    send_binary(&mut ws, b"after".to_vec()).await?;
    ensure!(recv_binary(&mut ws).await? == b"AFTER");
    let mut other = bridge.connect(host.id()).await?;
    send_binary(&mut other, b"other".to_vec()).await?;
    ensure!(recv_binary(&mut other).await? == b"OTHER");
    ensure!(host.connections.load(std::sync::atomic::Ordering::SeqCst) == 1);
    ensure!(bridge.bridge.stats().host_connections == 1);
    Ok(())
}
