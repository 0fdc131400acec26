//! A browser is as durable as a native client: when its socket vanishes, its attachment keeps
//! its place (holding the program back) for the attach hold, so a phone offline for less loses
//! nothing, and one offline for longer gets everything the buffer still has after a gap notice.
//! Abandoned pairings do not lock a code.

use std::time::Duration;

use peer::proto::{
    CreateSession, Frame, OUTPUT_WINDOW, Reply, Request, ResponseFrame, Role, WinSize,
};
use peer_testkit::browser::{BrowserClient, WsTransport};
use peer_testkit::{WsBrowser, attach, is_hello, seq_pty_output, sha256, until};

/// Lines of `seq` in the stream: about 26 MB through a PTY.
const LINES: u64 = 3_300_000;

/// Starts `seq 1 LINES` in a new session that holds its output for the first attachment;
/// returns its id.
async fn create_seq(c: &mut BrowserClient<WsTransport>) -> u64 {
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
    let created = until(c, &mut Vec::new(), |m, _| {
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
    info.id
}

/// How the phone goes offline.
#[derive(Clone, Copy, Debug)]
enum Vanish {
    /// Its socket closes (the app was closed, or the network said goodbye).
    Closed,
    /// Its socket stays open and nothing more comes or goes (the radio went): only the host's
    /// silence limit ends it.
    Silent,
}

/// Runs `seq 1 LINES` in a new session attached on channel 1; after 2 MB the phone vanishes
/// for `offline`; then a new socket resumes. Returns what arrived and the gaps seen.
async fn stream_with_a_break(
    host: &peer::host::Host,
    offline: Duration,
    vanish: Vanish,
) -> (Vec<u8>, Vec<u64>) {
    let (b, mut c) = WsBrowser::pair(host).await;
    let id = create_seq(&mut c).await;
    let token = 41;
    c.send(1, &attach(id, 0, token)).await.expect("attach");
    let mut out = Vec::new();
    let mut gaps = Vec::new();
    until_acking(&mut c, &mut out, |_, o| o.len() > 2_000_000).await;
    match vanish {
        Vanish::Closed => {
            drop(c);
            tokio::time::sleep(offline).await;
        }
        Vanish::Silent => {
            tokio::time::sleep(offline).await;
            drop(c);
        }
    }
    let mut c: BrowserClient<WsTransport> = b.connect().await;
    c.send(1, &attach(id, out.len() as u64, token))
        .await
        .expect("re-attach");
    loop {
        match until_acking(&mut c, &mut out, |m, _| {
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

/// [`until`], reading as the web app does: after each output, a `Received` for its end on
/// its channel once a quarter of the output window arrived since the last one.
async fn until_acking(
    c: &mut BrowserClient<WsTransport>,
    out: &mut Vec<u8>,
    mut pred: impl FnMut(Option<(u32, &Frame)>, &[u8]) -> bool,
) -> Option<(u32, Frame)> {
    let mut acked = 0;
    loop {
        let (channel, frame) = tokio::time::timeout(Duration::from_secs(20), c.recv())
            .await
            .expect("timely message")
            .expect("message");
        if let Frame::Output(o) = &frame {
            out.extend_from_slice(&o.data);
            let end = o.offset + o.data.len() as u64;
            if end - acked.min(end) >= OUTPUT_WINDOW / 4 {
                c.send(channel, &Frame::Received(end))
                    .await
                    .expect("received");
                acked = end;
            }
            if pred(None, out) {
                return None;
            }
        } else if pred(Some((channel, &frame)), out) {
            return Some((channel, frame));
        }
    }
}

async fn nothing_lost_after(offline: Duration, vanish: Vanish) {
    let (_home, host) = peer_testkit::in_process_host().await;
    let (out, gaps) = stream_with_a_break(&host, offline, vanish).await;
    assert!(gaps.is_empty(), "offline {offline:?}: gaps {gaps:?}");
    let expected = seq_pty_output(LINES);
    assert_eq!(out.len(), expected.len(), "offline {offline:?}");
    assert_eq!(sha256(&out), sha256(&expected), "offline {offline:?}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_half_a_second_loses_nothing() {
    nothing_lost_after(Duration::from_millis(500), Vanish::Closed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_five_seconds_loses_nothing() {
    nothing_lost_after(Duration::from_secs(5), Vanish::Closed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_thirty_seconds_loses_nothing() {
    nothing_lost_after(Duration::from_secs(30), Vanish::Closed).await;
}

/// A socket that just goes quiet is closed by the host's silence limit, before the lag grace
/// would have let the program run past what the phone has not received: its place is kept as
/// for a socket that closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_twenty_seconds_without_a_word_loses_nothing() {
    nothing_lost_after(Duration::from_secs(20), Vanish::Silent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_past_the_hold_gets_a_gap_then_the_rest_exactly() {
    // A short hold, so the test does not wait the default 35 s.
    let (_home, host) =
        peer_testkit::in_process_host_with(|cfg| cfg.attach_hold = Duration::from_secs(2)).await;
    let (out, gaps) = stream_with_a_break(&host, Duration::from_secs(6), Vanish::Closed).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_says_what_it_received_gets_at_most_the_window_past_it() {
    let (_home, host) = peer_testkit::in_process_host().await;
    let (_b, mut c) = WsBrowser::pair(&host).await;
    let id = create_seq(&mut c).await;
    c.send(1, &attach(id, 0, 5)).await.expect("attach");
    c.send(1, &Frame::Received(0)).await.expect("received");
    let mut out = Vec::new();
    // Output until `out` holds `want` bytes, then nothing more for a second while the client
    // says nothing more.
    let window_full = async |c: &mut BrowserClient<WsTransport>, out: &mut Vec<u8>, want: u64| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let wait = if out.len() as u64 >= want {
                Duration::from_secs(1)
            } else {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            };
            match tokio::time::timeout(wait, c.recv()).await {
                Err(_) => break,
                Ok(Ok((1, Frame::Output(o)))) => {
                    assert_eq!(o.offset, out.len() as u64);
                    out.extend_from_slice(&o.data);
                }
                // The pairing's ping may be answered late.
                Ok(Ok((1, Frame::Attached(_)) | (0, Frame::Pong(_)))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(out.len() as u64, want);
    };
    // The program has 26 MB for it; exactly the window comes.
    window_full(&mut c, &mut out, OUTPUT_WINDOW).await;
    c.send(1, &Frame::Received(OUTPUT_WINDOW / 2))
        .await
        .expect("received");
    window_full(&mut c, &mut out, OUTPUT_WINDOW / 2 + OUTPUT_WINDOW).await;
    // An offset said twice, or an older one, changes nothing.
    c.send(1, &Frame::Received(OUTPUT_WINDOW / 4))
        .await
        .expect("received");
    window_full(&mut c, &mut out, OUTPUT_WINDOW / 2 + OUTPUT_WINDOW).await;
    // Saying it received all of it lets the rest come, in order, to the end.
    c.send(1, &Frame::Received(out.len() as u64))
        .await
        .expect("received");
    until_acking(&mut c, &mut out, |m, _| match m {
        None | Some((0, Frame::Pong(_))) => false,
        Some((1, Frame::Exited(_))) => true,
        other => panic!("unexpected {other:?}"),
    })
    .await;
    assert_eq!(sha256(&out), sha256(&seq_pty_output(LINES)));
    host.shutdown().await;
}
