//! SCRATCH: verifies facts for target/iroh-api-notes.md. Delete after.
#![allow(missing_docs, clippy::unwrap_used)]

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    str::FromStr,
    time::{Duration, Instant},
};

use iroh::{
    Endpoint, EndpointAddr, EndpointId, PublicKey, RelayConfig, RelayMap, RelayMode, RelayUrl,
    SecretKey, TransportAddr, Watcher,
    endpoint::{
        AfterHandshakeOutcome, ApplicationClose, ConnectError, ConnectingError, Connection,
        ConnectionError, EndpointHooks, IncomingAddr, PortmapperConfig, QuicTransportConfig,
        ReadError, ReadExactError, VarInt, WriteError, presets,
    },
};
use peer_relay::EmbeddedRelay;
use tokio::time::timeout;

const ALPN: &[u8] = b"scratch/0";
const ALPN2: &[u8] = b"scratch/1";
const T: Duration = Duration::from_secs(20);

fn map(url: &RelayUrl) -> RelayMap {
    RelayMap::from(RelayConfig::new(url.clone(), None))
}

async fn relay() -> (EmbeddedRelay, RelayUrl) {
    let r = EmbeddedRelay::spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let u = r.url_for(IpAddr::V4(Ipv4Addr::LOCALHOST));
    (r, u)
}

async fn relay_only(url: &RelayUrl, alpns: &[&[u8]]) -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Custom(map(url)))
        .clear_ip_transports()
        .alpns(alpns.iter().map(|a| a.to_vec()).collect())
        .bind()
        .await
        .unwrap()
}

/// Q1 + Q2: bind to loopback, bound_sockets, addr() right after bind, direct path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q1_bind_and_direct_path() {
    let a = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .unwrap()
        .portmapper_config(PortmapperConfig::Disabled)
        .alpns(vec![ALPN.to_vec()])
        .bind()
        .await
        .unwrap();
    println!("a.bound_sockets() = {:?}", a.bound_sockets());
    println!("a.addr() immediately = {:?}", a.addr());
    let mut w = a.watch_addr();
    let a_addr: EndpointAddr = w.get();
    println!("a.watch_addr().get() = {a_addr:?}");
    assert_eq!(a.bound_sockets().len(), 1);
    assert!(a.addr().ip_addrs().any(|s| *s == a.bound_sockets()[0]));

    // Default IP transports (0.0.0.0:0 and [::]:0) only replaced for v4 when bind_addr v4 given.
    let d = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .bind_addr("127.0.0.1:0")
        .unwrap()
        .portmapper_config(PortmapperConfig::Disabled)
        .bind()
        .await
        .unwrap();
    println!(
        "bind_addr v4 without clear_ip_transports: {:?}",
        d.bound_sockets()
    );
    let e = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .bind_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        .unwrap()
        .portmapper_config(PortmapperConfig::Disabled)
        .bind()
        .await
        .unwrap();
    println!(
        "bind 0.0.0.0:0: bound={:?} addr={:?}",
        e.bound_sockets(),
        e.addr()
    );
    let b = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .unwrap()
        .bind()
        .await
        .unwrap();
    let acc = tokio::spawn({
        let a = a.clone();
        async move { a.accept().await.unwrap().await.unwrap() }
    });
    let conn = b.connect(a.addr(), ALPN).await.unwrap();
    let _server_conn = acc.await.unwrap();
    let paths = conn.paths();
    for p in paths.iter() {
        println!(
            "direct path: id={:?} remote={:?} local={:?} selected={} ip={} relay={} rtt={:?}",
            p.id(),
            p.remote_addr(),
            p.local_addr(),
            p.is_selected(),
            p.is_ip(),
            p.is_relay(),
            p.rtt()
        );
    }
    assert!(paths.iter().any(|p| p.is_selected() && p.is_ip()));
    let info = b.remote_info(a.id()).await;
    println!("remote_info: {info:?}");
    b.close().await;
    a.close().await;
    d.close().await;
    e.close().await;
}

/// Q2: relay + loopback IP: which path is selected?
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q2_relay_and_ip() {
    let (r, url) = relay().await;
    let mk = |alpns: Vec<Vec<u8>>| {
        let url = url.clone();
        async move {
            Endpoint::builder(presets::Minimal)
                .relay_mode(RelayMode::Custom(map(&url)))
                .clear_ip_transports()
                .bind_addr("127.0.0.1:0")
                .unwrap()
                .portmapper_config(PortmapperConfig::Disabled)
                .alpns(alpns)
                .bind()
                .await
                .unwrap()
        }
    };
    let a = mk(vec![ALPN.to_vec()]).await;
    let b = mk(vec![]).await;
    timeout(T, a.online()).await.unwrap();
    println!("a.addr() after online = {:?}", a.addr());
    let acc = tokio::spawn({
        let a = a.clone();
        async move {
            let c = a.accept().await.unwrap().await.unwrap();
            c.closed().await
        }
    });
    // Only the relay URL: does it upgrade to the direct path?
    let conn = b
        .connect(EndpointAddr::new(a.id()).with_relay_url(url.clone()), ALPN)
        .await
        .unwrap();
    let dump = |c: &Connection, tag: &str| {
        for p in c.paths().iter() {
            println!(
                "{tag}: remote={} selected={} ip={} relay={}",
                p.remote_addr(),
                p.is_selected(),
                p.is_ip(),
                p.is_relay()
            );
        }
    };
    dump(&conn, "at connect");
    tokio::time::sleep(Duration::from_secs(2)).await;
    dump(&conn, "after 2s");
    conn.close(0u32.into(), b"");
    let _ = acc.await;
    b.close().await;
    a.close().await;
    r.shutdown().await;
}

/// Q3 + Q4: close codes, stream reset/stop, endpoint.close(), idle timeout on dead relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q4_close_reset_stop() {
    let (r, url) = relay().await;
    let a = relay_only(&url, &[ALPN]).await;
    let b = relay_only(&url, &[]).await;
    timeout(T, a.online()).await.unwrap();
    let dial = EndpointAddr::new(a.id()).with_relay_url(url.clone());

    // --- stream reset / stop
    let srv = tokio::spawn({
        let a = a.clone();
        async move {
            let c = a.accept().await.unwrap().await.unwrap();
            // stream 1: peer resets
            let (_s1, mut r1) = c.accept_bi().await.unwrap();
            let mut buf = [0u8; 64];
            let n = r1.read(&mut buf).await.unwrap();
            println!("read before reset: {n:?}");
            let err = r1.read(&mut buf).await.unwrap_err();
            println!("read after peer reset: {err:?}");
            assert!(matches!(err, ReadError::Reset(code) if code == VarInt::from_u32(7)));
            // stream 2: we stop
            let (_s2, mut r2) = c.accept_bi().await.unwrap();
            let mut b2 = [0u8; 1];
            r2.read_exact(&mut b2).await.unwrap();
            r2.stop(VarInt::from_u32(9)).unwrap();
            // stream 3: finished early
            let (_s3, mut r3) = c.accept_bi().await.unwrap();
            let mut b3 = [0u8; 10];
            let e = r3.read_exact(&mut b3).await.unwrap_err();
            println!("read_exact short: {e:?}");
            assert!(matches!(e, ReadExactError::FinishedEarly(3)));
            c.closed().await
        }
    });
    let c = b.connect(dial.clone(), ALPN).await.unwrap();
    let (mut s1, _r1) = c.open_bi().await.unwrap();
    s1.set_priority(5).unwrap();
    println!("priority = {:?}", s1.priority());
    s1.write_all(b"hello").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s1.reset(VarInt::from_u32(7)).unwrap();

    let (mut s2, _r2) = c.open_bi().await.unwrap();
    s2.write_all(b"x").await.unwrap();
    let stopped = timeout(T, s2.stopped()).await.unwrap();
    println!("stopped() -> {stopped:?}");
    assert_eq!(stopped.unwrap(), Some(VarInt::from_u32(9)));
    let werr = s2.write_all(b"more").await.unwrap_err();
    println!("write after stop: {werr:?}");
    assert!(matches!(werr, WriteError::Stopped(code) if code == VarInt::from_u32(9)));

    let (mut s3, _r3) = c.open_bi().await.unwrap();
    s3.write_all(b"abc").await.unwrap();
    s3.finish().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // --- endpoint.close() sends what?
    b.close().await;
    let reason = timeout(T, srv).await.unwrap().unwrap();
    println!("server sees after client endpoint.close(): {reason:?}");
    match &reason {
        ConnectionError::ApplicationClosed(ApplicationClose { error_code, reason }) => {
            println!("  code={error_code} reason={reason:?}")
        }
        _ => println!("  not ApplicationClosed"),
    }
    println!("client conn close_reason = {:?}", c.close_reason());

    // --- idle timeout: dead relay
    let cfg = QuicTransportConfig::builder()
        .max_idle_timeout(Some(Duration::from_secs(3).try_into().unwrap()))
        .keep_alive_interval(Duration::from_secs(1))
        .build();
    let b2 = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Custom(map(&url)))
        .clear_ip_transports()
        .transport_config(cfg.clone())
        .bind()
        .await
        .unwrap();
    let a_srv = tokio::spawn({
        let a = a.clone();
        async move {
            let c = a.accept().await.unwrap().await.unwrap();
            let t = Instant::now();
            let r = c.closed().await;
            (r, t.elapsed())
        }
    });
    let c2 = b2.connect(dial.clone(), ALPN).await.unwrap();
    let (mut s, _rr) = c2.open_bi().await.unwrap();
    s.write_all(b"x").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    r.shutdown().await;
    let why = timeout(Duration::from_secs(60), c2.closed()).await.unwrap();
    println!(
        "dialer (idle 3s) after relay shutdown: {why:?} after {:?}",
        t0.elapsed()
    );
    let (sr, st) = timeout(Duration::from_secs(60), a_srv)
        .await
        .unwrap()
        .unwrap();
    println!("listener (default idle) after relay shutdown: {sr:?} after {st:?}");
    b2.close().await;
    a.close().await;
}

#[derive(Debug)]
struct DenyAll;
impl EndpointHooks for DenyAll {
    async fn after_handshake<'a>(&'a self, conn: &'a Connection) -> AfterHandshakeOutcome {
        println!(
            "hook sees remote {} alpn {:?}",
            conn.remote_id(),
            conn.alpn()
        );
        AfterHandshakeOutcome::Reject {
            error_code: VarInt::from_u32(403),
            reason: b"not paired".to_vec(),
        }
    }
}

/// Q5: Incoming -> Accepting -> Connection, alpn, remote id, refuse, hooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q5_accept_refuse() {
    let (r, url) = relay().await;
    let a = relay_only(&url, &[ALPN, ALPN2]).await;
    let b = relay_only(&url, &[]).await;
    timeout(T, a.online()).await.unwrap();
    let dial = EndpointAddr::new(a.id()).with_relay_url(url.clone());

    let srv = tokio::spawn({
        let a = a.clone();
        let bid = b.id();
        async move {
            // 1st: inspect and accept
            let incoming = a.accept().await.unwrap();
            let ra = incoming.remote_addr();
            println!(
                "Incoming.remote_addr = {ra:?}, validated={}",
                incoming.remote_addr_validated()
            );
            if let IncomingAddr::Relay { endpoint_id, .. } = &ra {
                assert_eq!(*endpoint_id, bid);
            }
            let mut accepting = incoming.accept().unwrap();
            let alpn = accepting.alpn().await.unwrap();
            println!("Accepting.alpn = {:?}", String::from_utf8_lossy(&alpn));
            let conn = accepting.await.unwrap();
            println!(
                "conn.alpn = {:?} remote_id = {}",
                String::from_utf8_lossy(conn.alpn()),
                conn.remote_id()
            );
            assert_eq!(conn.remote_id(), bid);
            conn.close(0u32.into(), b"bye");
            // 2nd: refuse
            let incoming = a.accept().await.unwrap();
            incoming.refuse();
            // 3rd: ignore
            let incoming = a.accept().await.unwrap();
            incoming.ignore();
        }
    });
    let c = b.connect(dial.clone(), ALPN2).await.unwrap();
    println!("dialer conn.alpn = {:?}", String::from_utf8_lossy(c.alpn()));
    let _ = c.closed().await;
    let err = timeout(T, b.connect(dial.clone(), ALPN))
        .await
        .unwrap()
        .unwrap_err();
    println!("refused connect error: {err:?}");
    println!("refused connect display: {err:#}");
    if let ConnectError::Connecting {
        source: ConnectingError::ConnectionError { source, .. },
        ..
    } = &err
    {
        println!("  inner ConnectionError: {source:?}");
    }
    let t0 = Instant::now();
    let res = timeout(Duration::from_secs(30), b.connect(dial.clone(), ALPN)).await;
    println!(
        "ignored connect: {:?} after {:?}",
        res.as_ref()
            .map(|r| r.as_ref().err().map(|e| e.to_string())),
        t0.elapsed()
    );
    srv.await.unwrap();

    // Unknown ALPN
    let err = timeout(T, b.connect(dial.clone(), b"nope")).await;
    println!(
        "unknown alpn: {:?}",
        err.map(|r| r.err().map(|e| format!("{e:#}")))
    );

    // Hook rejection
    let h = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Custom(map(&url)))
        .clear_ip_transports()
        .alpns(vec![ALPN.to_vec()])
        .hooks(DenyAll)
        .bind()
        .await
        .unwrap();
    timeout(T, h.online()).await.unwrap();
    let hsrv = tokio::spawn({
        let h = h.clone();
        async move {
            let inc = h.accept().await.unwrap();
            let res = inc.await;
            println!(
                "hooked accept result: {:?}",
                res.err().map(|e| e.to_string())
            );
        }
    });
    let hc = b
        .connect(EndpointAddr::new(h.id()).with_relay_url(url.clone()), ALPN)
        .await;
    match hc {
        Ok(c) => println!(
            "dialer to hooked: connected, then closed with {:?}",
            c.closed().await
        ),
        Err(e) => println!("dialer to hooked: err {e:#}"),
    }
    hsrv.await.unwrap();
    h.close().await;
    b.close().await;
    a.close().await;
    r.shutdown().await;
}

/// Q6: dial a relay URL that is not in the dialer's relay map; and no relay at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q6_relay_not_in_map() {
    let (r, url) = relay().await;
    let a = relay_only(&url, &[ALPN]).await;
    timeout(T, a.online()).await.unwrap();
    let acc = tokio::spawn({
        let a = a.clone();
        async move {
            let c = a.accept().await.unwrap().await.unwrap();
            c.closed().await
        }
    });
    // Dialer's map holds some other (dead) relay only.
    let other: RelayUrl = "http://127.0.0.1:9/".parse().unwrap();
    let b = relay_only(&other, &[]).await;
    let dial = EndpointAddr::new(a.id()).with_relay_url(url.clone());
    let res = timeout(T, b.connect(dial.clone(), ALPN)).await;
    match res {
        Ok(Ok(c)) => {
            println!("relay not in map: CONNECTED; paths:");
            for p in c.paths().iter() {
                println!("  {} selected={}", p.remote_addr(), p.is_selected());
            }
            c.close(0u32.into(), b"");
        }
        Ok(Err(e)) => println!("relay not in map: error {e:#}"),
        Err(_) => println!("relay not in map: timeout"),
    }
    let _ = acc.await;
    // RelayMode::Disabled + no IP transports
    let n = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_ip_transports()
        .bind()
        .await;
    match n {
        Ok(n) => {
            let t0 = Instant::now();
            let res = timeout(T, n.connect(dial.clone(), ALPN)).await;
            println!(
                "disabled relays, no IP: {:?} after {:?}",
                res.map(|r| r.err().map(|e| format!("{e:#}"))),
                t0.elapsed()
            );
            n.close().await;
        }
        Err(e) => println!("disabled relays + no IP: bind error {e:#}"),
    }
    // Empty EndpointAddr with Minimal (no address lookup)
    let res = timeout(T, b.connect(EndpointAddr::new(a.id()), ALPN)).await;
    println!(
        "no addrs: {:?}",
        res.map(|r| r.err().map(|e| format!("{e:#}")))
    );
    b.close().await;
    a.close().await;
    r.shutdown().await;
}

/// Q7: keys.
#[test]
fn q7_keys() {
    let sk = SecretKey::from_bytes(&[7u8; 32]);
    let sk2 = SecretKey::from([7u8; 32]);
    assert_eq!(sk.to_bytes(), [7u8; 32]);
    assert_eq!(sk2.public(), sk.public());
    let pk: PublicKey = sk.public();
    let id: EndpointId = pk;
    let bytes: [u8; 32] = *id.as_bytes();
    let back = PublicKey::from_bytes(&bytes).unwrap();
    assert_eq!(back, id);
    let s = id.to_string();
    println!("Display = {s} (len {})", s.len());
    println!("fmt_short = {}", id.fmt_short());
    println!("to_z32 = {}", id.to_z32());
    println!("Debug = {id:?}");
    assert_eq!(PublicKey::from_str(&s).unwrap(), id);
    assert_eq!(s.parse::<EndpointId>().unwrap(), id);
    assert!(
        PublicKey::from_str(&s.to_uppercase()).is_err(),
        "uppercase hex rejected?"
    );
    println!(
        "uppercase hex parse: {:?}",
        PublicKey::from_str(&s.to_uppercase()).map(|_| ())
    );
    // z32 via FromStr?
    println!(
        "FromStr(z32): {:?}",
        PublicKey::from_str(&id.to_z32()).map(|p| p == id)
    );
    assert_eq!(PublicKey::from_z32(&id.to_z32()).unwrap(), id);
    // RFC4648 base32 via FromStr
    let b32 = data_b32(&bytes);
    println!(
        "FromStr(base32 {b32}): {:?}",
        PublicKey::from_str(&b32).map(|p| p == id)
    );
    let sks = SecretKey::from_str(&"07".repeat(32)).unwrap();
    assert_eq!(sks.to_bytes(), [7u8; 32]);
    println!("SecretKey Debug = {sk:?}");
    let bad = PublicKey::from_bytes(&[0xffu8; 32]);
    println!("invalid point: {:?}", bad.map(|_| ()));
    let _ = TransportAddr::Ip("127.0.0.1:1".parse().unwrap());
}

fn data_b32(b: &[u8]) -> String {
    // minimal RFC4648 base32 no padding, lowercase
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for &x in b {
        buf = (buf << 8) | x as u32;
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Q10: online() with a custom relay that is down; then comes up; network_change().
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q10_online_relay_down() {
    // Reserve a port, then free it: relay is "down".
    let probe = EmbeddedRelay::spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let addr = probe.http_addr();
    let url = probe.url_for(IpAddr::V4(Ipv4Addr::LOCALHOST));
    probe.shutdown().await;

    let e = relay_only(&url, &[ALPN]).await;
    let res = timeout(Duration::from_secs(8), e.online()).await;
    println!("online() with relay down, 8s timeout: {res:?}");
    println!("home_relay_status: {:?}", e.home_relay_status().get());
    println!("addr: {:?}", e.addr());

    // Relay comes up on the same port.
    let r = EmbeddedRelay::spawn(addr).await.unwrap();
    let t0 = Instant::now();
    let res = timeout(Duration::from_secs(10), e.online()).await;
    println!(
        "online() after relay came up (no nudge), 10s: {res:?} after {:?}",
        t0.elapsed()
    );
    if res.is_err() {
        e.network_change().await;
        let t1 = Instant::now();
        let res = timeout(Duration::from_secs(30), e.online()).await;
        println!(
            "online() after network_change(): {res:?} after {:?}",
            t1.elapsed()
        );
    }
    println!("home_relay_status: {:?}", e.home_relay_status().get());

    // Relay goes away while online.
    r.shutdown().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "after relay shutdown, status: {:?}",
        e.home_relay_status().get()
    );
    println!("after relay shutdown, addr: {:?}", e.addr());
    e.close().await;
}

async fn direct_ep(disable_relay: bool, clear: bool, alpn: bool) -> Endpoint {
    let mut b = Endpoint::builder(presets::Minimal).portmapper_config(PortmapperConfig::Disabled);
    if disable_relay {
        b = b.relay_mode(RelayMode::Disabled);
    }
    if clear {
        b = b.clear_ip_transports();
    }
    b = b.bind_addr("127.0.0.1:0").unwrap();
    if alpn {
        b = b.alpns(vec![ALPN.to_vec()]);
    }
    b.bind().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q1b_variants() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    for (dis, clear) in [(true, true), (true, false), (false, true)] {
        let a = direct_ep(dis, clear, true).await;
        let b = direct_ep(dis, clear, false).await;
        let acc = tokio::spawn({
            let a = a.clone();
            async move {
                let inc = a.accept().await.unwrap();
                println!("  incoming from {:?}", inc.remote_addr());
                let c = inc.await;
                println!("  accept result ok={}", c.is_ok());
            }
        });
        let t0 = Instant::now();
        let addr = EndpointAddr::new(a.id()).with_ip_addr(a.bound_sockets()[0]);
        let res = timeout(Duration::from_secs(8), b.connect(addr, ALPN)).await;
        println!(
            "disable_relay={dis} clear_ip={clear}: {:?} in {:?}",
            res.map(|r| r
                .map(|c| c
                    .paths()
                    .iter()
                    .map(|p| p.remote_addr().to_string())
                    .collect::<Vec<_>>())
                .map_err(|e| e.to_string())),
            t0.elapsed()
        );
        acc.abort();
        b.close().await;
        a.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q5b_alpn_noaddr_offline() {
    let (r, url) = relay().await;
    let a = relay_only(&url, &[ALPN]).await;
    timeout(T, a.online()).await.unwrap();
    let acc = tokio::spawn({
        let a = a.clone();
        async move {
            while let Some(inc) = a.accept().await {
                let res = inc.await;
                println!(
                    "  server accept: {:?}",
                    res.map(|c| c.remote_id()).map_err(|e| format!("{e:#}"))
                );
            }
        }
    });
    let b = relay_only(&url, &[]).await;
    let dial = EndpointAddr::new(a.id()).with_relay_url(url.clone());
    let t0 = Instant::now();
    let res = timeout(T, b.connect(dial.clone(), b"nope")).await;
    println!(
        "unknown alpn: {:?} in {:?}",
        res.map(|r| r.err().map(|e| format!("{e:#}"))),
        t0.elapsed()
    );
    if let Ok(Err(ConnectError::Connecting {
        source: ConnectingError::ConnectionError { source, .. },
        ..
    })) = timeout(T, b.connect(dial.clone(), b"nope")).await
    {
        println!("  inner: {source:?}");
    }

    let fresh = relay_only(&url, &[]).await;
    let t0 = Instant::now();
    let res = timeout(T, fresh.connect(EndpointAddr::new(a.id()), ALPN)).await;
    println!(
        "no addrs (fresh ep): {:?} in {:?}",
        res.map(|r| r.err().map(|e| format!("{e:#}"))),
        t0.elapsed()
    );

    // Offline peer: id that never registered at the relay.
    let ghost = SecretKey::generate().public();
    let t0 = Instant::now();
    let res = timeout(
        Duration::from_secs(60),
        fresh.connect(EndpointAddr::new(ghost).with_relay_url(url.clone()), ALPN),
    )
    .await;
    println!(
        "offline peer via relay: {:?} in {:?}",
        res.map(|r| r.err().map(|e| format!("{e:#}"))),
        t0.elapsed()
    );

    // Offline peer with short idle timeout on dialer
    let cfg = QuicTransportConfig::builder()
        .max_idle_timeout(Some(Duration::from_secs(5).try_into().unwrap()))
        .build();
    let short = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Custom(map(&url)))
        .clear_ip_transports()
        .transport_config(cfg)
        .bind()
        .await
        .unwrap();
    let t0 = Instant::now();
    let res = timeout(
        Duration::from_secs(60),
        short.connect(EndpointAddr::new(ghost).with_relay_url(url.clone()), ALPN),
    )
    .await;
    println!(
        "offline peer, idle 5s: {:?} in {:?}",
        res.map(|r| r.err().map(|e| format!("{e:#}"))),
        t0.elapsed()
    );
    acc.abort();
    for e in [short, fresh, b, a] {
        e.close().await;
    }
    r.shutdown().await;
}
