//! Relay access control, HTTPS relay clients, and stopping with clients connected — with real
//! iroh endpoints on loopback.

mod common;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use iroh::{SecretKey, tls::CaTlsConfig};
use peer_relay::{
    AccessMode, AccessPolicy, EmbeddedRelay, FrontConfig, RelayToken,
    pin::Fingerprint,
    tls::{CertResolver, TlsIdentity, server_config},
};
use tokio::time::timeout;

use common::*;

const TOKEN: &str = "relay-token-for-tests-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_mode_admits_everyone() -> anyhow::Result<()> {
    let relay = EmbeddedRelay::spawn_with(FrontConfig::http(any_port())).await?;
    assert_eq!(relay.access_mode(), AccessMode::Open);
    let url = relay.url_for(loopback(1));
    let server = relay_endpoint(&url, None, None, vec![ALPN.to_vec()]).await?;
    let client = relay_endpoint(&url, Some("any-token-is-ignored-here"), None, vec![]).await?;
    timeout(STEP, client.online())
        .await
        .context("client online")?;
    ping_through(&client, &server, &url).await?;
    assert_eq!(relay.relay_client_count(), 2);
    // Each relay client keeps its TCP connection counted against the limits.
    let text = relay.metrics_text();
    assert!(
        metric(&text, "peer_relay_connections_open").is_some_and(|n| n >= 2),
        "{text}"
    );
    assert_eq!(metric(&text, "peer_relay_relay_clients"), Some(2));
    client.close().await;
    server.close().await;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_admits_listed_endpoints_only() -> anyhow::Result<()> {
    let host_key = SecretKey::generate();
    let phone_key = SecretKey::generate();
    let relay = EmbeddedRelay::spawn_with(FrontConfig::http(any_port()).access(
        AccessPolicy::allowlist([host_key.public(), phone_key.public()]),
    ))
    .await?;
    let url = relay.url_for(loopback(1));

    let host = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(host_key)
        .relay_mode(iroh::RelayMode::Custom(iroh::RelayMap::from(
            iroh::RelayConfig::new(url.clone(), None),
        )))
        .clear_ip_transports()
        .alpns(vec![ALPN.to_vec()])
        .bind()
        .await?;
    let phone = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(phone_key)
        .relay_mode(iroh::RelayMode::Custom(iroh::RelayMap::from(
            iroh::RelayConfig::new(url.clone(), None),
        )))
        .clear_ip_transports()
        .bind()
        .await?;
    ping_through(&phone, &host, &url).await?;

    // A stranger is refused by the relay, and its status says so.
    let stranger = relay_endpoint(&url, Some(TOKEN), None, vec![]).await?;
    let reason = wait_relay_error(&stranger, Duration::from_secs(10)).await?;
    assert!(
        reason.contains("this relay does not serve this endpoint"),
        "{reason}"
    );
    assert!(
        timeout(Duration::from_secs(1), stranger.online())
            .await
            .is_err()
    );
    let text = relay.metrics_text();
    assert!(metric(&text, "peer_relay_relay_clients_denied_total").is_some_and(|n| n >= 1));
    assert_eq!(metric(&text, "peer_relay_relay_clients"), Some(2));

    // Revoking the phone disconnects it.
    let revoked = relay.set_access_policy(AccessPolicy::allowlist([host.id()]));
    assert_eq!(revoked, 1);
    wait_disconnected(&phone, Duration::from_secs(5)).await?;
    assert!(
        timeout(Duration::from_secs(5), async {
            while relay.relay_client_count() != 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok()
    );

    for endpoint in [stranger, phone, host] {
        endpoint.close().await;
    }
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_mode_admits_token_holders_and_listed_endpoints() -> anyhow::Result<()> {
    let host_key = SecretKey::generate();
    let relay = EmbeddedRelay::spawn_with(FrontConfig::http(any_port()).access(
        AccessPolicy::token([RelayToken::new(TOKEN)?], [host_key.public()]),
    ))
    .await?;
    let url = relay.url_for(loopback(1));

    // The listed host needs no token; the phone presents one (iroh sends it as a Bearer token
    // to the relays in its relay map).
    let host = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(host_key)
        .relay_mode(iroh::RelayMode::Custom(iroh::RelayMap::from(
            iroh::RelayConfig::new(url.clone(), None),
        )))
        .clear_ip_transports()
        .alpns(vec![ALPN.to_vec()])
        .bind()
        .await?;
    let phone = relay_endpoint(&url, Some(TOKEN), None, vec![]).await?;
    ping_through(&phone, &host, &url).await?;

    let no_token = relay_endpoint(&url, None, None, vec![]).await?;
    let wrong_token =
        relay_endpoint(&url, Some("relay-token-for-tests-012345678X"), None, vec![]).await?;
    for stranger in [&no_token, &wrong_token] {
        let reason = wait_relay_error(stranger, Duration::from_secs(10)).await?;
        assert!(reason.starts_with("denied:"), "{reason}");
    }
    let text = relay.metrics_text();
    assert!(metric(&text, "peer_relay_relay_clients_denied_total").is_some_and(|n| n >= 2));
    assert!(!text.contains(TOKEN));

    for endpoint in [no_token, wrong_token, phone, host] {
        endpoint.close().await;
    }
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_endpoints_get_in_whatever_the_policy() -> anyhow::Result<()> {
    // The relay's own mobile bridge has an endpoint of its own that must get through a
    // token relay without a token, also after the policy is reloaded.
    let relay = EmbeddedRelay::spawn_with(
        FrontConfig::http(any_port()).access(AccessPolicy::token([RelayToken::new(TOKEN)?], [])),
    )
    .await?;
    let url = relay.url_for(loopback(1));
    let bridge_key = SecretKey::generate();
    relay.admit_service_endpoint(bridge_key.public());
    let bridge = iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(bridge_key)
        .relay_mode(iroh::RelayMode::Custom(iroh::RelayMap::from(
            iroh::RelayConfig::new(url.clone(), None),
        )))
        .clear_ip_transports()
        .bind()
        .await?;
    let host = relay_endpoint(&url, Some(TOKEN), None, vec![ALPN.to_vec()]).await?;
    ping_through(&bridge, &host, &url).await?;

    // A reload to a policy that admits nobody disconnects the host, not the service.
    let revoked = relay.set_access_policy(AccessPolicy::allowlist([]));
    assert_eq!(revoked, 1);
    wait_disconnected(&host, Duration::from_secs(5)).await?;
    assert!(
        timeout(Duration::from_secs(5), async {
            while relay.relay_client_count() != 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok(),
        "the service endpoint stays connected"
    );
    for endpoint in [host, bridge] {
        endpoint.close().await;
    }
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_clients_over_https_trusting_a_self_signed_cert() -> anyhow::Result<()> {
    let identity = TlsIdentity::self_signed(&["127.0.0.1".to_owned()])?;
    let tls = server_config(CertResolver::new(&identity)?)?;
    // HTTPS and HTTP listeners share one relay.
    let relay = EmbeddedRelay::spawn_with(
        FrontConfig::http(any_port())
            .with_https(any_port(), tls)
            .access(AccessPolicy::token([RelayToken::new(TOKEN)?], [])),
    )
    .await?;
    let https_url = relay.https_url("127.0.0.1").context("https url")?;
    let http_url = relay.url_for(loopback(1));
    let roots = Some(vec![identity.certificate().clone()]);

    let server =
        relay_endpoint(&https_url, Some(TOKEN), roots.clone(), vec![ALPN.to_vec()]).await?;
    let client = relay_endpoint(&https_url, Some(TOKEN), roots.clone(), vec![]).await?;
    timeout(STEP, client.online())
        .await
        .context("client online over HTTPS")?;
    ping_through(&client, &server, &https_url).await?;

    // A client on the plain-HTTP listener reaches the server (connected over HTTPS) through the
    // same relay: it dials the server's id at the HTTP URL.
    let http_client = relay_endpoint(&http_url, Some(TOKEN), None, vec![]).await?;
    timeout(STEP, http_client.online())
        .await
        .context("http client online")?;
    let accept = tokio::spawn({
        let server = server.clone();
        async move {
            let conn = server.accept().await.context("closed")?.await?;
            let (mut send, mut recv) = conn.accept_bi().await?;
            let got = recv.read_to_end(64).await?;
            send.write_all(&got).await?;
            send.finish()?;
            let _ = conn.closed().await;
            anyhow::Ok(())
        }
    });
    let conn = timeout(
        STEP,
        http_client.connect(
            iroh::EndpointAddr::new(server.id()).with_relay_url(http_url.clone()),
            ALPN,
        ),
    )
    .await
    .context("connect timed out")??;
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(b"mixed").await?;
    send.finish()?;
    assert_eq!(timeout(STEP, recv.read_to_end(64)).await??, b"mixed");
    conn.close(0u32.into(), b"");
    timeout(STEP, accept).await???;

    // A client that does not trust the certificate cannot use the relay.
    let other = TlsIdentity::self_signed(&["127.0.0.1".to_owned()])?;
    let untrusting = relay_endpoint(
        &https_url,
        Some(TOKEN),
        Some(vec![other.certificate().clone()]),
        vec![],
    )
    .await?;
    assert!(
        timeout(Duration::from_secs(3), untrusting.online())
            .await
            .is_err(),
        "an endpoint that does not trust the certificate came online"
    );

    for endpoint in [untrusting, http_client, client, server] {
        endpoint.close().await;
    }
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_clients_can_pin_the_certificate_by_fingerprint() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // What `peer-relay --dev-tls --dev-tls-dir DIR` does.
    let identity = TlsIdentity::dev(Some(dir.path()), &peer_relay::tls::dev_names([]))?;
    let printed = identity.fingerprint();
    let tls = server_config(CertResolver::new(&identity)?)?;
    let relay = EmbeddedRelay::spawn_with(FrontConfig::new().with_https(any_port(), tls)).await?;
    let url = relay.https_url("127.0.0.1").context("https url")?;

    let pinned = |fingerprint: Fingerprint| {
        CaTlsConfig::custom_server_cert_verifier(Arc::new(move |provider| {
            Ok(peer_relay::pin::verifier(fingerprint, provider))
        }))
    };
    let pin = Fingerprint::parse(&printed)?;
    let server = relay_endpoint_ca(&url, None, Some(pinned(pin)), vec![ALPN.to_vec()]).await?;
    let client = relay_endpoint_ca(&url, None, Some(pinned(pin)), vec![]).await?;
    ping_through(&client, &server, &url).await?;

    // Another fingerprint: the relay is not trusted.
    let mut wrong = pin;
    wrong.0[0] ^= 1;
    let mistrusting = relay_endpoint_ca(&url, None, Some(pinned(wrong)), vec![]).await?;
    assert!(
        timeout(Duration::from_secs(3), mistrusting.online())
            .await
            .is_err(),
        "a wrong pin was accepted"
    );
    for endpoint in [mistrusting, client, server] {
        endpoint.close().await;
    }
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_disconnects_https_relay_clients() -> anyhow::Result<()> {
    for graceful in [true, false] {
        let identity = TlsIdentity::self_signed(&["127.0.0.1".to_owned()])?;
        let tls = server_config(CertResolver::new(&identity)?)?;
        let relay =
            EmbeddedRelay::spawn_with(FrontConfig::new().with_https(any_port(), tls)).await?;
        let url = relay.https_url("127.0.0.1").context("https url")?;
        let roots = Some(vec![identity.certificate().clone()]);
        let a = relay_endpoint(&url, None, roots.clone(), vec![]).await?;
        let b = relay_endpoint(&url, None, roots, vec![]).await?;
        timeout(STEP, a.online()).await.context("a online")?;
        timeout(STEP, b.online()).await.context("b online")?;
        let addr = relay.https_addr().context("addr")?;
        if graceful {
            timeout(Duration::from_secs(10), relay.shutdown())
                .await
                .context("shutdown hung")?;
        } else {
            drop(relay);
        }
        for endpoint in [&a, &b] {
            wait_disconnected(endpoint, Duration::from_secs(5))
                .await
                .with_context(|| format!("graceful: {graceful}"))?;
        }
        // The port is free again (listener closed).
        let mut rebound = None;
        for _ in 0..50 {
            if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
                rebound = Some(listener);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(rebound.is_some(), "port still bound (graceful: {graceful})");
        a.close().await;
        b.close().await;
    }
    Ok(())
}
