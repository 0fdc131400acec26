//! A browser is as durable as a native client: when its socket vanishes, its attachment keeps
//! its place (holding the program back) for the attach hold, so a phone offline for less loses
//! nothing, and one offline for longer gets everything the buffer still has after a gap notice.
//! Abandoned pairings do not lock a code.

use std::time::Duration;

use peer::proto::{CreateSession, Frame, Reply, Request, ResponseFrame, Role, WinSize};
use peer_testkit::browser::{BrowserClient, WsTransport};
use peer_testkit::{WsBrowser, attach, is_hello, seq_pty_output, sha256, until};

/// Lines of `seq` in the stream: about 26 MB through a PTY.
const LINES: u64 = 3_300_000;

/// Runs `seq 1 LINES` in a new session attached on channel 1; after 2 MB the socket is dropped
/// for `offline`; then a new socket resumes. Returns what arrived and the gaps seen.
async fn stream_with_a_break(host: &peer::host::Host, offline: Duration) -> (Vec<u8>, Vec<u64>) {
    let (b, mut c) = WsBrowser::pair(host).await;
    let create = Request::CreateSession(CreateSession {
        name: None,
        command: vec!["seq".into(), "1".into(), LINES.to_string()],
        cwd: None,
        env: vec![],
        size: WinSize { cols: 80, rows: 24 },
        hold_output: true,
    });
    c.send(0, &peer_testkit::request(1, create))
        .await
        .expect("create");
    let created = until(&mut c, &mut Vec::new(), |m, _| {
        matches!(m, Some((0, Frame::Response(_))))
    })
    .await;
    let Some((
        _,
        Frame::Response(ResponseFrame {
            result: Ok(Reply::Created(info)),
            ..
        }),
    )) = created
    else {
        panic!("create: {created:?}")
    };
    let token = 41;
    c.send(1, &attach(info.id, 0, token)).await.expect("attach");
    let mut out = Vec::new();
    let mut gaps = Vec::new();
    until(&mut c, &mut out, |_, o| o.len() > 2_000_000).await;
    // The phone goes offline without a goodbye.
    drop(c);
    tokio::time::sleep(offline).await;
    let mut c: BrowserClient<WsTransport> = b.connect().await;
    c.send(1, &attach(info.id, out.len() as u64, token))
        .await
        .expect("re-attach");
    loop {
        match until(&mut c, &mut out, |m, _| {
            matches!(m, Some((1, Frame::Exited(_) | Frame::Gap(_))))
        })
        .await
        {
            Some((_, Frame::Gap(g))) => gaps.push(g.to - g.from),
            Some((_, Frame::Exited(_))) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    (out, gaps)
}

async fn nothing_lost_after(offline: Duration) {
    let (_home, host) = peer_testkit::in_process_host().await;
    let (out, gaps) = stream_with_a_break(&host, offline).await;
    assert!(gaps.is_empty(), "offline {offline:?}: gaps {gaps:?}");
    let expected = seq_pty_output(LINES);
    assert_eq!(out.len(), expected.len(), "offline {offline:?}");
    assert_eq!(sha256(&out), sha256(&expected), "offline {offline:?}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_half_a_second_loses_nothing() {
    nothing_lost_after(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_five_seconds_loses_nothing() {
    nothing_lost_after(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_thirty_seconds_loses_nothing() {
    nothing_lost_after(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_past_the_hold_gets_a_gap_then_the_rest_exactly() {
    // A short hold, so the test does not wait the default 35 s.
    let (_home, host) =
        peer_testkit::in_process_host_with(|cfg| cfg.attach_hold = Duration::from_secs(2)).await;
    let (out, gaps) = stream_with_a_break(&host, Duration::from_secs(6)).await;
    let [lost] = gaps[..] else {
        panic!("expected one gap notice, got {gaps:?}")
    };
    let expected = seq_pty_output(LINES);
    assert_eq!(out.len() as u64 + lost, expected.len() as u64);
    // What arrived is the stream's start and its end, with exactly `lost` bytes between.
    let split = out
        .iter()
        .zip(&expected)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(split >= 2_000_000);
    assert_eq!(
        sha256(&out[split..]),
        sha256(&expected[split + lost as usize..])
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_abandoned_pairings_leave_the_code_usable() {
    let (_home, host) = peer_testkit::in_process_host().await;
    let (url, _) = host
        .pairing_url(Role::Operator, Duration::from_secs(60))
        .expect("url");
    let payload = peer_pairing::PairingPayload::from_url(&url).expect("payload");
    let base = url.split('#').next().expect("base");
    let ws = format!(
        "{}bridge/{}",
        base.replacen("http://", "ws://", 1),
        hex::encode(payload.host_id)
    );
    // A person opens the link, the handshake completes, and the tab closes before confirming:
    // three times.
    for _ in 0..3 {
        use peer_testkit::browser::MessageTransport;
        let mut t = WsTransport::connect(&ws).await.expect("ws");
        let key = peer_pairing::NoiseKeypair::generate();
        let (state, msg1) = peer_pairing::Initiator::start(
            &key,
            &payload.host_noise_key,
            payload.secret.as_bytes(),
            &peer_pairing::bridge_prologue(&payload.host_id),
            &peer_pairing::hello_payload(&payload.secret.pairing_id()),
        )
        .expect("start");
        t.send(&msg1).await.expect("msg1");
        let answer = t.recv().await.expect("answer").expect("message 2");
        assert_eq!(answer[0], 0, "the host went on with the handshake");
        state.finish(&answer[1..]).expect("message 2 verifies");
        drop(t);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The fourth attempt, confirmed, pairs.
    let t = WsTransport::connect(&ws).await.expect("ws");
    let (mut c, paired) = BrowserClient::pair(
        t,
        &payload,
        &peer_pairing::NoiseKeypair::generate(),
        "phone",
    )
    .await
    .expect("the code still pairs");
    assert_eq!(paired.role, Role::Operator);
    until(&mut c, &mut Vec::new(), |m, _| is_hello(m)).await;
    host.shutdown().await;
}
