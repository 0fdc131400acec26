//! Hostile input on every ALPN against an in-process host: garbage, truncated and oversized
//! frames, unknown frame types, forged proofs. Each gets a clear refusal, nothing panics, and
//! a paired client keeps being served throughout.

use std::time::Duration;

use iroh::SecretKey;
use iroh::endpoint::Connection;
use peer::client::{Dialer, KnownHost, pair};
use peer::net;
use peer::proto::close::quic as close;
use peer::proto::{ALPN_PAIR, ALPN_SESSION};
use peer::proto::{
    ClientHello, ErrorCode, Frame, FrameReader, PROTOCOL_VERSION, Reply, Request, Role, write_frame,
};

async fn raw_conn(host: &KnownHost, alpn: &[u8]) -> (iroh::Endpoint, Connection) {
    let ep = peer_testkit::loopback_endpoint().await;
    let id = host.endpoint_id.parse().expect("id");
    let addr = net::dial_addr(id, &[], &host.direct_addrs, false);
    let conn = ep.connect(addr, alpn).await.expect("connect");
    (ep, conn)
}

async fn close_code(conn: &Connection) -> Option<u32> {
    let err = tokio::time::timeout(Duration::from_secs(15), conn.closed())
        .await
        .expect("host closed the connection");
    net::app_close(&err).map(|(code, _)| code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_everywhere_and_the_host_keeps_serving() {
    let (_home, host) = peer_testkit::in_process_host().await;
    let device = SecretKey::generate();
    let (url, _) = host
        .pairing_url(Role::Operator, Duration::from_secs(60))
        .expect("url");
    let paired = pair(&url, &device, "good", false).await.expect("pair");
    let known = paired.host.clone();

    let dialer = Dialer::new(&known, device.clone(), false)
        .await
        .expect("dialer");
    let good = dialer.connect().await.expect("connect");
    assert!(matches!(
        good.request(Request::ListSessions).await,
        Ok(Reply::Sessions(_))
    ));

    // Session ALPN: random bytes instead of a frame.
    let (ep1, c) = raw_conn(&known, ALPN_SESSION).await;
    let (mut s, _r) = c.open_bi().await.expect("bi");
    s.write_all(b"\x00\x00\x00\x05GARBAGE-GARBAGE")
        .await
        .expect("write");
    assert_eq!(close_code(&c).await, Some(close::PROTOCOL));

    // Session ALPN: an absurd length prefix.
    let (ep2, c) = raw_conn(&known, ALPN_SESSION).await;
    let (mut s, _r) = c.open_bi().await.expect("bi");
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 0x01])
        .await
        .expect("write");
    assert_eq!(close_code(&c).await, Some(close::PROTOCOL));

    // Session ALPN: an unknown frame type first.
    let (ep3, c) = raw_conn(&known, ALPN_SESSION).await;
    let (mut s, _r) = c.open_bi().await.expect("bi");
    s.write_all(&[0, 0, 0, 2, 0x7e, 0]).await.expect("write");
    assert_eq!(close_code(&c).await, Some(close::PROTOCOL));

    // Session ALPN: a well-formed hello with a forged proof for the paired device.
    let (ep4, c) = raw_conn(&known, ALPN_SESSION).await;
    let (mut s, _r) = c.open_bi().await.expect("bi");
    let forged = Frame::ClientHello(ClientHello {
        protocol: PROTOCOL_VERSION,
        device: *device.public().as_bytes(),
        proof: vec![7; 64],
    });
    write_frame(&mut s, &forged).await.expect("write");
    assert_eq!(close_code(&c).await, Some(close::NOT_PAIRED));

    // Session ALPN: a connection that never says anything is dropped after the hello timeout.
    // (Not waited for here: 10 s.)

    // Pairing ALPN: garbage instead of a Noise message gets a refusal byte, not a panic.
    let (ep5, c) = raw_conn(&known, ALPN_PAIR).await;
    let (mut s, mut r) = c.open_bi().await.expect("bi");
    s.write_all(&[0, 4, 1, 2, 3, 4]).await.expect("write");
    let answer = peer::proto::read_message(&mut r).await.expect("refusal");
    let Some(peer::proto::StreamMessage::Message(answer)) = answer else {
        panic!("no refusal: {answer:?}")
    };
    assert_eq!(answer[0], peer::proto::Refusal::Handshake as u8);

    // Pairing ALPN: a truncated message, then silence; the host gives up on its own.
    let (ep6, c) = raw_conn(&known, ALPN_PAIR).await;
    let (mut s, _r) = c.open_bi().await.expect("bi");
    s.write_all(&[0xff, 0xff, 1]).await.expect("write");
    s.finish().expect("finish");

    // On the good connection: a garbage attach stream gets an error frame and only that
    // stream ends.
    let (mut s, r) = good
        .connection()
        .expect("quic")
        .open_bi()
        .await
        .expect("bi");
    s.write_all(&[0, 0, 0, 1, 0x15]).await.expect("write");
    let mut reader = FrameReader::new(r);
    match reader.read().await.expect("error frame") {
        Frame::Error(e) => assert_eq!(e.code, ErrorCode::Protocol),
        other => panic!("expected an error frame, got {other:?}"),
    }
    // Attaching to a session that does not exist.
    let err = good
        .attach(peer::proto::Attach {
            session: 999,
            from_offset: 0,
            client_token: 1,
            size: None,
            screen: None,
            echo_acks: false,
        })
        .await
        .expect_err("no such session");
    assert!(err.to_string().contains("no session 999"), "{err}");

    // Through all of it the paired client is served.
    assert!(matches!(
        good.request(Request::ListSessions).await,
        Ok(Reply::Sessions(_))
    ));
    let second = dialer.connect().await.expect("reconnect");
    drop(second);

    for ep in [ep1, ep2, ep3, ep4, ep5, ep6] {
        ep.close().await;
    }
    good.close();
    dialer.close().await;
    host.shutdown().await;
}
