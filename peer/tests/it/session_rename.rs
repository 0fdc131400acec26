//! Session rows for lists: a PTY session's name can be changed (`RenameSession`), and
//! `last_activity_ms` moves with its output and input.

use std::time::Duration;

use peer::proto::{
    ALPN_BRIDGE, ErrorCode, Frame, Reply, Request, ResponseFrame, Role, SessionInfo, WireError,
};
use peer_pairing::{NoiseKeypair, PairingPayload};
use peer_testkit::browser::{BrowserClient, QuicTransport};
use peer_testkit::{attach, browser_create_shell, contains, input, is_hello, request, until};

/// Sends request `id` on channel 0 and returns the host's answer.
async fn ask(
    b: &mut BrowserClient<QuicTransport>,
    out: &mut Vec<u8>,
    id: u32,
    req: Request,
) -> Result<Reply, WireError> {
    b.send(0, &request(id, req)).await.expect("send");
    match until(
        b,
        out,
        |m, _| matches!(m, Some((0, Frame::Response(r))) if r.id == id),
    )
    .await
    {
        Some((_, Frame::Response(ResponseFrame { result, .. }))) => result,
        other => panic!("no answer to request {id}: {other:?}"),
    }
}

async fn list(b: &mut BrowserClient<QuicTransport>, out: &mut Vec<u8>, id: u32) -> SessionInfo {
    match ask(b, out, id, Request::ListSessions).await {
        Ok(Reply::Sessions(mut s)) if s.len() == 1 => s.remove(0),
        other => panic!("list: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_can_be_renamed_and_show_their_last_activity() {
    let (_home, host) = peer_testkit::in_process_host().await;
    let (_endpoint, conn) = peer_testkit::dial_direct(&host, ALPN_BRIDGE).await;
    let (url, _) = host
        .pairing_url(Role::Operator, Duration::from_secs(60))
        .expect("url");
    let payload = PairingPayload::from_url(&url).expect("payload");
    let (send, recv) = conn.open_bi().await.expect("bi");
    let key = NoiseKeypair::generate();
    let (mut b, _) = BrowserClient::pair(QuicTransport::new(send, recv), &payload, &key, "phone")
        .await
        .expect("pair");
    let mut out = Vec::new();
    until(&mut b, &mut out, |m, _| is_hello(m)).await;
    let session = browser_create_shell(&mut b, &mut out, 1).await;

    let fresh = list(&mut b, &mut out, 2).await;
    assert_eq!(fresh.name, None);
    assert!(fresh.last_activity_ms >= fresh.created_at_ms, "{fresh:?}");

    // Input and output move the last activity on.
    tokio::time::sleep(Duration::from_millis(30)).await;
    b.send(1, &attach(session, 0, 9)).await.expect("attach");
    until(&mut b, &mut out, |m, _| {
        matches!(m, Some((1, Frame::Attached(_))))
    })
    .await;
    b.send(1, &input(1, b"echo act-$((2*21))\r"))
        .await
        .expect("input");
    until(&mut b, &mut out, |_, o| contains(o, b"act-42")).await;
    let busy = list(&mut b, &mut out, 3).await;
    assert!(
        busy.last_activity_ms > fresh.last_activity_ms,
        "{} then {}",
        fresh.last_activity_ms,
        busy.last_activity_ms
    );

    // A name, trimmed; every list shows it; a blank one removes it.
    let renamed = ask(
        &mut b,
        &mut out,
        4,
        Request::RenameSession {
            session,
            name: Some("  build box ".into()),
        },
    )
    .await;
    match renamed {
        Ok(Reply::Renamed(info)) => assert_eq!(info.name.as_deref(), Some("build box")),
        other => panic!("rename: {other:?}"),
    }
    assert_eq!(
        list(&mut b, &mut out, 5).await.name.as_deref(),
        Some("build box")
    );
    let cleared = ask(
        &mut b,
        &mut out,
        6,
        Request::RenameSession {
            session,
            name: Some("   ".into()),
        },
    )
    .await;
    assert!(
        matches!(cleared, Ok(Reply::Renamed(SessionInfo { name: None, .. }))),
        "{cleared:?}"
    );

    // Bad names and unknown sessions are refused with the reason; the session is unchanged.
    for (id, name) in [(7, "bell\x07"), (8, &"x".repeat(65)[..])] {
        let r = ask(
            &mut b,
            &mut out,
            id,
            Request::RenameSession {
                session,
                name: Some(name.into()),
            },
        )
        .await;
        assert!(
            matches!(&r, Err(e) if e.code == ErrorCode::BadRequest),
            "{r:?}"
        );
    }
    let r = ask(
        &mut b,
        &mut out,
        9,
        Request::RenameSession {
            session: session + 100,
            name: Some("ghost".into()),
        },
    )
    .await;
    assert!(
        matches!(&r, Err(e) if e.code == ErrorCode::NotFound),
        "{r:?}"
    );
    assert_eq!(list(&mut b, &mut out, 10).await.name, None);
}
