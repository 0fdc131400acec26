//! Two iroh endpoints that can only talk through an [`EmbeddedRelay`] exchange bytes.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context as _, ensure};
use iroh::{
    Endpoint, EndpointAddr, RelayConfig, RelayMap, RelayMode, RelayUrl, Watcher as _,
    endpoint::presets,
};
use peer_relay::EmbeddedRelay;
use tokio::time::timeout;

const ALPN: &[u8] = b"peer-relay/test/0";
const STEP: Duration = Duration::from_secs(20);

/// A relay-only endpoint (no IP transports) that knows only `relay`.
async fn relay_only_endpoint(relay: &RelayUrl, alpns: Vec<Vec<u8>>) -> anyhow::Result<Endpoint> {
    // `quic: None`: the plain-HTTP relay has no QUIC address discovery to probe.
    let relay_map = RelayMap::from(RelayConfig::new(relay.clone(), None));
    let endpoint = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Custom(relay_map))
        .clear_ip_transports()
        .alpns(alpns)
        .bind()
        .await?;
    Ok(endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_flow_through_the_relay() -> anyhow::Result<()> {
    let relay = EmbeddedRelay::spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let bound = relay.http_addr();
    assert_eq!(bound.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(bound.port(), 0, "port 0 is replaced by the real port");
    let url = relay.url_for(IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(url.as_str(), format!("http://127.0.0.1:{}/", bound.port()));

    let server = relay_only_endpoint(&url, vec![ALPN.to_vec()]).await?;
    let client = relay_only_endpoint(&url, vec![]).await?;
    // Relay-only: no UDP sockets at all, so no direct path can exist.
    assert!(server.bound_sockets().is_empty());
    assert!(client.bound_sockets().is_empty());

    // The listener must be registered with the relay before anyone can reach it there.
    timeout(STEP, server.online())
        .await
        .context("server never came online at the relay")?;
    assert_eq!(
        server.addr().relay_urls().collect::<Vec<_>>(),
        vec![&url],
        "server advertises the relay as its home"
    );

    let accept = tokio::spawn({
        let server = server.clone();
        async move {
            let incoming = server.accept().await.context("endpoint closed")?;
            let conn = incoming.await?;
            ensure!(conn.alpn() == ALPN);
            let (mut send, mut recv) = conn.accept_bi().await?;
            let request = recv.read_to_end(1024).await?;
            send.write_all(b"pong:").await?;
            send.write_all(&request).await?;
            send.finish()?;
            // Wait for the client to close, so our reply is not cut off.
            let reason = conn.closed().await;
            anyhow::Ok((conn.remote_id(), reason))
        }
    });

    // Dial with nothing but the id and the relay URL.
    let addr = EndpointAddr::new(server.id()).with_relay_url(url.clone());
    let conn = timeout(STEP, client.connect(addr, ALPN))
        .await
        .context("connect timed out")??;
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(b"ping").await?;
    send.finish()?;
    let reply = timeout(STEP, recv.read_to_end(1024))
        .await
        .context("reply timed out")??;
    assert_eq!(reply, b"pong:ping");

    let paths = conn.paths();
    let selected: Vec<_> = paths.iter().filter(|p| p.is_selected()).collect();
    assert_eq!(selected.len(), 1, "exactly one selected path: {paths:?}");
    assert!(
        selected[0].is_relay(),
        "selected path is the relay: {paths:?}"
    );
    assert!(
        paths.iter().all(|p| p.is_relay()),
        "no direct paths: {paths:?}"
    );

    conn.close(42u32.into(), b"done");
    let (remote_id, reason) = timeout(STEP, accept)
        .await
        .context("server task hung")???;
    assert_eq!(remote_id, client.id());
    match reason {
        iroh::endpoint::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, 42u32.into());
            assert_eq!(&close.reason[..], b"done");
        }
        other => panic!("unexpected close reason: {other:?}"),
    }

    client.close().await;
    server.close().await;
    relay.shutdown().await;
    Ok(())
}

/// Waits until `endpoint` reports no connected home relay.
async fn wait_disconnected(endpoint: &Endpoint) {
    let mut status = endpoint.home_relay_status();
    while status.get().iter().any(|relay| relay.is_connected()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_relay_disconnects_clients() -> anyhow::Result<()> {
    for graceful in [true, false] {
        let relay = EmbeddedRelay::spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let url = relay.url_for(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let client = relay_only_endpoint(&url, vec![]).await?;
        timeout(STEP, client.online())
            .await
            .context("client never came online")?;
        if graceful {
            relay.shutdown().await;
        } else {
            drop(relay);
        }
        timeout(Duration::from_secs(5), wait_disconnected(&client))
            .await
            .with_context(|| format!("client still connected (graceful: {graceful})"))?;
        client.close().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_relay_frees_its_port() -> anyhow::Result<()> {
    let relay = EmbeddedRelay::spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let addr = relay.http_addr();
    drop(relay);
    // The listener task is aborted on drop; rebinding the same port must work shortly after.
    let mut last_err = None;
    for _ in 0..50 {
        match EmbeddedRelay::spawn(addr).await {
            Ok(again) => {
                assert_eq!(again.http_addr(), addr);
                again.shutdown().await;
                return Ok(());
            }
            Err(err) => last_err = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(anyhow::anyhow!(
        "port {addr} still busy after drop: {last_err:?}"
    ))
}
