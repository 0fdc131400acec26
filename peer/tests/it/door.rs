//! The host's unauthenticated surface under a flood: pairing attempts with wrong codes from
//! many fresh keys, and session connections with forged proofs, are refused with the
//! rate-limit refusal past their budget and audited within a budget, while a paired device
//! keeps being served.

use std::time::{Duration, Instant};

use iroh::SecretKey;
use peer::client::{Dialer, KnownHost, PairError, pair};
use peer::net;
use peer::proto::close::quic as close;
use peer::proto::{
    ALPN_SESSION, AuditQuery, ClientHello, Frame, LocalReply, LocalRequest, PROTOCOL_VERSION,
    Refusal, Reply, Request, Role, write_frame,
};
use peer_pairing::{PairingPayload, PairingSecret};
use peer_testkit::WsBrowser;
use peer_testkit::browser::{BrowserClient, BrowserError, WsTransport};

/// A session connection from a fresh key that presents a forged proof; its close code.
async fn forged_hello(host: &KnownHost) -> u32 {
    let ep = peer_testkit::loopback_endpoint().await;
    let id = host.endpoint_id.parse().expect("id");
    let addr = net::dial_addr(id, &[], &host.direct_addrs, false);
    let conn = ep.connect(addr, ALPN_SESSION).await.expect("connect");
    let (mut send, _recv) = conn.open_bi().await.expect("bi");
    let hello = Frame::ClientHello(ClientHello {
        protocol: PROTOCOL_VERSION,
        device: *SecretKey::generate().public().as_bytes(),
        proof: vec![7; 64],
    });
    write_frame(&mut send, &hello).await.expect("hello");
    let err = tokio::time::timeout(Duration::from_secs(15), conn.closed())
        .await
        .expect("the host closes a forged hello");
    let code = net::app_close(&err).map(|(code, _)| code);
    ep.close().await;
    code.expect("an application close")
}

async fn audit(home: &std::path::Path, kind: &str) -> Vec<peer::proto::AuditRow> {
    let paths = peer::paths::Paths::at(home.to_path_buf());
    let query = AuditQuery {
        limit: 1000,
        kind: Some(kind.into()),
        ..AuditQuery::default()
    };
    match peer::client::local_request(&paths, LocalRequest::AuditQuery(query)).await {
        Ok(LocalReply::Audit(rows)) => rows,
        other => panic!("audit: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_pairings_and_forged_proofs_is_refused_while_a_paired_device_works() {
    let (home, host) = peer_testkit::in_process_host().await;
    let device = SecretKey::generate();
    let (url, _) = host
        .pairing_url(Role::Operator, Duration::from_secs(60))
        .expect("url");
    let known = pair(&url, &device, "good", false).await.expect("pair").host;
    let dialer = Dialer::new(&known, device.clone(), false)
        .await
        .expect("dialer");
    let live = dialer.connect().await.expect("connect");

    // A pairing code the host never issued: the right host, a wrong secret.
    let mut wrong = PairingPayload::from_url(&url).expect("payload");
    wrong.secret = PairingSecret::generate();
    let wrong = wrong.to_url("http://localhost/").expect("url");

    // 100 attempts, each from a fresh device key and a fresh endpoint key, 20 at a time.
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let batch = (0..20).map(|_| {
            let wrong = wrong.clone();
            tokio::spawn(async move { pair(&wrong, &SecretKey::generate(), "x", false).await })
        });
        for r in futures_util::future::join_all(batch).await {
            outcomes.push(r.expect("task"));
        }
    }
    let flood_secs = started.elapsed().as_secs_f64();
    let unknown = outcomes
        .iter()
        .filter(|r| matches!(r, Err(PairError::Refused(Refusal::Unknown))))
        .count();
    let limited = outcomes
        .iter()
        .filter(|r| matches!(r, Err(PairError::Refused(Refusal::RateLimited))))
        .count();
    eprintln!("pairing flood: {unknown} unknown, {limited} rate-limited in {flood_secs:.1} s");
    // None pairs. On a loaded machine a few of 20 simultaneous connections time out or are
    // lost before their refusal arrives (seen: 11 of 100 under a full test run); the rest are
    // refused with a reason.
    assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
    assert!(unknown + limited >= 80, "{outcomes:?}");
    // 20 at once from one address, then one every 2 s (measured: 36 and 64 in a 35 s flood
    // on a loaded machine).
    assert!(unknown >= 20, "{unknown}");
    assert!(
        unknown as f64 <= 21.0 + 0.5 * flood_secs,
        "{unknown} let through in {flood_secs:.1} s"
    );
    assert!(limited > 0, "{limited} of 100 in {flood_secs:.1} s");
    // The refusal says why, in words.
    let words = Refusal::RateLimited.to_string();
    assert!(words.contains("too many attempts"), "{words}");

    // The paired device: its live connection and a new one are served.
    assert!(matches!(
        live.request(Request::ListSessions).await,
        Ok(Reply::Sessions(_))
    ));

    // Forged proofs from fresh keys: refused as not paired, then as rate-limited.
    let mut codes = Vec::new();
    for _ in 0..40 {
        codes.push(forged_hello(&known).await);
    }
    let not_paired = codes.iter().filter(|c| **c == close::NOT_PAIRED).count();
    let rate_limited = codes.iter().filter(|c| **c == close::RATE_LIMITED).count();
    eprintln!("auth flood: {not_paired} not paired, {rate_limited} rate-limited");
    assert_eq!(not_paired + rate_limited, 40, "{codes:?}");
    // 20 at once, then one every 2 s (measured: 23 and 17).
    assert!(not_paired >= 20 && rate_limited >= 5, "{codes:?}");

    let fresh = dialer
        .connect()
        .await
        .expect("a paired device connects during the flood");
    assert!(matches!(
        fresh.request(Request::ListSessions).await,
        Ok(Reply::Sessions(_))
    ));

    // Audited within the budget: 30 rows a minute and one that says more were not recorded
    // (or fewer if the minute turned), no secret.
    let refused = audit(home.path(), "connect.refused").await;
    assert!(
        (30..=62).contains(&refused.len()),
        "{} rows: {refused:?}",
        refused.len()
    );
    assert!(
        refused
            .iter()
            .any(|r| r.detail.contains("device proof does not verify"))
    );
    assert!(refused.iter().any(|r| r.detail.contains("too many failed")));
    assert!(refused.iter().all(
        |r| r.detail.starts_with("native from 127.0.0.1") || r.detail.contains("not recorded")
    ));
    let failed = audit(home.path(), "pair.failed").await;
    assert!((30..=62).contains(&failed.len()), "{}", failed.len());
    let secret = hex::encode(PairingPayload::from_url(&url).expect("p").secret.as_bytes());
    assert!(failed.iter().all(|r| !r.detail.contains(&secret)));
    host.shutdown().await;
}

/// One browser pairing attempt with `payload` from `source` and a fresh key; the refusal.
async fn browser_attempt(url: &str, payload: &PairingPayload, source: &str) -> Option<Refusal> {
    let t = WsTransport::connect_from(url, source.parse().expect("ip"))
        .await
        .expect("ws");
    let key = peer_pairing::NoiseKeypair::generate();
    match BrowserClient::pair(t, payload, &key, "x").await {
        Err(BrowserError::Refused(r)) => Some(r),
        Err(e) => panic!("{e:?}"),
        Ok(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pairings_are_limited_per_address_and_a_paired_browser_gets_in() {
    let (home, host) = peer_testkit::in_process_host().await;
    let (b, c) = WsBrowser::pair(&host).await;
    drop(c);
    // The used code again, from fresh keys at one address, all at once (one after the other,
    // a loaded machine is slow enough for the address's bucket to refill between them): `Used`
    // 20 times, then the limit.
    let attempts = (0..25).map(|_| {
        let (url, payload) = (b.url.clone(), b.payload.clone());
        tokio::spawn(async move { browser_attempt(&url, &payload, "127.0.0.2").await })
    });
    let refusals: Vec<Option<Refusal>> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let used = refusals
        .iter()
        .filter(|r| **r == Some(Refusal::Used))
        .count();
    let limited = refusals
        .iter()
        .filter(|r| **r == Some(Refusal::RateLimited))
        .count();
    assert_eq!(used + limited, 25, "{refusals:?}");
    assert!((20..25).contains(&used), "{refusals:?}");
    // Another address has its own budget.
    assert_eq!(
        browser_attempt(&b.url, &b.payload, "127.0.0.3").await,
        Some(Refusal::Used)
    );
    // The paired browser, from the flooding address, gets in.
    let again = BrowserClient::connect(
        WsTransport::connect_from(&b.url, "127.0.0.2".parse().expect("ip"))
            .await
            .expect("ws"),
        &b.payload.host_id,
        &b.payload.host_noise_key,
        &b.key,
        &b.psk,
    )
    .await;
    assert!(again.is_ok(), "{:?}", again.err());
    let failed = audit(home.path(), "pair.failed").await;
    assert!(
        failed
            .iter()
            .any(|r| r.detail.starts_with("browser from 127.0.0.2: ")
                && r.detail.contains("too many attempts"))
    );
    host.shutdown().await;
}
