//! Errors on the browser channel are as small as their cause: a bad frame ends its channel,
//! late frames for a closed channel are ignored, only a bad envelope (or a revocation, a
//! message too large, a host shutting down) ends the socket, always with the host's `Close`
//! frame first and then a WebSocket close code that says why.

use std::time::Duration;

use peer::proto::close::ws;
use peer::proto::{CloseReason, CreateSession, ErrorCode, Frame, WinSize};
use peer_testkit::browser::{BrowserClient, WsTransport};
use peer_testkit::{WsBrowser, attach, input, until};

async fn create(c: &mut BrowserClient<WsTransport>, id: u32, command: &[&str]) -> u64 {
    let create = CreateSession {
        name: None,
        command: command.iter().map(|s| s.to_string()).collect(),
        cwd: None,
        env: vec![],
        size: WinSize { cols: 80, rows: 24 },
        hold_output: true,
    };
    peer_testkit::browser_create(c, &mut Vec::new(), id, create).await
}

/// Reads until the socket ends; returns the `Close` frame seen on channel 0 (if any) and the
/// WebSocket close code.
async fn read_to_close(c: &mut BrowserClient<WsTransport>) -> (Option<CloseReason>, Option<u16>) {
    let mut said = None;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok((channel, frame)) = c.recv().await {
            if let (0, Frame::Close(reason)) = (channel, frame) {
                said = Some(reason);
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the socket stayed open");
    let code = c.transport().close_reason().await.map(|(code, _)| code);
    (said, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_ends_its_channel_and_late_frames_for_a_closed_channel_are_ignored() {
    let (_home, host) = peer_testkit::in_process_host().await;
    let (_b, mut c) = WsBrowser::pair(&host).await;
    let short = create(&mut c, 1, &["sh", "-c", "echo short-lived"]).await;
    let shell = create(&mut c, 2, &["sh"]).await;

    // Channel 1 watches a session that ends; channels 2 and 3 a shell.
    c.send(1, &attach(short, 0, 11)).await.expect("attach");
    c.send(2, &attach(shell, 0, 12)).await.expect("attach");
    c.send(3, &attach(shell, 0, 13)).await.expect("attach");
    until(&mut c, &mut Vec::new(), |m, _| {
        matches!(m, Some((1, Frame::Exited(_))))
    })
    .await;

    // After `Exited`: detach, input and resize for channel 1 are ignored, never fatal.
    c.send(1, &Frame::Detach).await.expect("detach");
    c.send(1, &input(1, b"late\r")).await.expect("input");
    c.send(1, &Frame::Resize(WinSize { cols: 90, rows: 30 }))
        .await
        .expect("resize");

    // An unknown frame type on channel 3 ends channel 3 with an error it can read.
    c.send_plain(&[3, 0x7e, 1, 2]).await.expect("garbage");
    let err = until(&mut c, &mut Vec::new(), |m, _| {
        matches!(m, Some((3, Frame::Error(_))))
    })
    .await;
    let Some((3, Frame::Error(e))) = err else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::Protocol);
    assert!(e.message.contains("unknown frame type 0x7e"), "{e:?}");
    // A frame of the wrong kind on an open channel ends that channel too.
    c.send(4, &attach(shell, 0, 14)).await.expect("attach");
    c.send(4, &Frame::Ping(1)).await.expect("ping");
    let err = until(&mut c, &mut Vec::new(), |m, _| {
        matches!(m, Some((4, Frame::Error(_))))
    })
    .await;
    assert!(matches!(err, Some((4, Frame::Error(e))) if e.code == ErrorCode::Protocol));
    // Channel 0 answers a ping, and a frame that does not belong there is an error, not an end.
    c.send(0, &Frame::Ping(42)).await.expect("ping");
    c.send(0, &Frame::Detach).await.expect("detach on 0");
    let pong = until(&mut c, &mut Vec::new(), |m, _| {
        matches!(m, Some((0, Frame::Pong(42))))
    })
    .await;
    assert!(pong.is_some());

    // The socket, and channel 2, live on.
    let mut out = Vec::new();
    c.send(2, &input(1, b"echo still-$((20+3))\r"))
        .await
        .expect("input");
    until(&mut c, &mut out, |_, o| {
        peer_testkit::contains(o, b"still-23")
    })
    .await;
    drop(c);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_close_reason_arrives_before_the_close_every_time() {
    let (_home, host) = peer_testkit::in_process_host().await;
    let (b, c) = WsBrowser::pair(&host).await;
    drop(c);
    for i in 0..100 {
        let mut c = b.connect().await;
        // Not an envelope: the channel number's varint never ends.
        c.send_plain(&[0x80]).await.expect("send");
        let (said, code) = read_to_close(&mut c).await;
        let said = said.unwrap_or_else(|| panic!("attempt {i}: no Close frame before the close"));
        assert_eq!(said.code, ws::PROTOCOL, "attempt {i}: {said:?}");
        assert_eq!(code, Some(ws::PROTOCOL), "attempt {i}");
    }
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cause_has_its_own_close_code() {
    let (home, host) = peer_testkit::in_process_host().await;
    let (b, c) = WsBrowser::pair(&host).await;
    drop(c);

    // A message larger than a Noise message: 4103.
    let mut c = b.connect().await;
    use peer_testkit::browser::MessageTransport;
    c.transport()
        .send(&vec![0u8; 70_000])
        .await
        .expect("send big");
    let (_, code) = read_to_close(&mut c).await;
    assert_eq!(code, Some(ws::TOO_LARGE));

    // Shutting down: 4104, said in the channel first.
    let (home2, host2) = peer_testkit::in_process_host().await;
    let (b2, c2) = WsBrowser::pair(&host2).await;
    drop(c2);
    let mut c2 = b2.connect().await;
    let stop = tokio::spawn(host2.shutdown());
    let (said, code) = read_to_close(&mut c2).await;
    assert_eq!(said.map(|s| s.code), Some(ws::SHUTTING_DOWN));
    assert_eq!(code, Some(ws::SHUTTING_DOWN));
    stop.await.expect("shutdown");
    drop(home2);

    // Revoked: 4100, said in the channel first; the next handshake is refused (4101).
    let mut c = b.connect().await;
    let paths = peer::paths::Paths::at(home.path().to_path_buf());
    let id = hex::encode(b.key.public());
    peer::client::local_request(&paths, peer::proto::LocalRequest::RevokeDevice { id })
        .await
        .expect("revoke");
    let (said, code) = read_to_close(&mut c).await;
    assert_eq!(said.map(|s| s.code), Some(ws::REVOKED));
    assert_eq!(code, Some(ws::REVOKED));
    let mut t = WsTransport::connect(&b.url).await.expect("ws");
    let refused = BrowserClient::connect(
        WsTransport::connect(&b.url).await.expect("ws"),
        &b.payload.host_id,
        &b.payload.host_noise_key,
        &b.key,
        &b.psk,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(peer_testkit::browser::BrowserError::Refused(
                peer::proto::Refusal::Revoked
            ))
        ),
        "{refused:?}"
    );
    let _ = t.send(b"not a handshake").await;
    let closed = tokio::time::timeout(Duration::from_secs(10), t.close_reason())
        .await
        .expect("closed");
    assert_eq!(closed.map(|(code, _)| code), Some(ws::REFUSED));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_browser_pairing_is_audited_with_its_reason_only() {
    let (home, host) = peer_testkit::in_process_host().await;
    let (b, c) = WsBrowser::pair(&host).await;
    drop(c);
    // Another browser with the same, used code.
    let t = WsTransport::connect(&b.url).await.expect("ws");
    let key = peer_pairing::NoiseKeypair::generate();
    let again = BrowserClient::pair(t, &b.payload, &key, "late").await;
    assert!(
        matches!(
            again,
            Err(peer_testkit::browser::BrowserError::Refused(
                peer::proto::Refusal::Used
            ))
        ),
        "{:?}",
        again.err()
    );
    let paths = peer::paths::Paths::at(home.path().to_path_buf());
    let reply = peer::client::local_request(&paths, peer::proto::LocalRequest::Audit { limit: 50 })
        .await
        .expect("audit");
    let peer::proto::LocalReply::Audit(rows) = reply else {
        panic!("unexpected reply: {reply:?}")
    };
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.event == "pair.failed")
        .map(|r| r.detail.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert!(
        failed[0].starts_with("browser from ") && failed[0].contains("already used"),
        "{failed:?}"
    );
    let secret = hex::encode(b.payload.secret.as_bytes());
    assert!(rows.iter().all(|r| !r.detail.contains(&secret)));
    host.shutdown().await;
}
