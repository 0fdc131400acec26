//! The browser path against an in-process host, with the browser test client dialing the
//! host's bridge ALPN directly (exactly what the mobile bridge relays).

use std::time::Duration;

use peer_testkit::{attach, browser_create_shell, contains, input, is_hello, until};

use peer::host::{Host, HostEvent};
use peer::paths::Paths;
use peer::proto::{ALPN_BRIDGE, Frame, LocalReply, LocalRequest, Refusal, Role};
use peer_pairing::{NoiseKeypair, PairingPayload};
use peer_testkit::browser::{BrowserClient, BrowserError, QuicTransport};

struct Fixture {
    home: tempfile::TempDir,
    host: Host,
    endpoint: iroh::Endpoint,
    conn: iroh::endpoint::Connection,
}

async fn fixture() -> Fixture {
    let (home, host) = peer_testkit::in_process_host().await;
    let (endpoint, conn) = peer_testkit::dial_direct(&host, ALPN_BRIDGE).await;
    Fixture {
        home,
        host,
        endpoint,
        conn,
    }
}

impl Fixture {
    async fn socket(&self) -> QuicTransport {
        let (send, recv) = self.conn.open_bi().await.expect("bi");
        QuicTransport::new(send, recv)
    }

    /// A paired browser's new socket.
    async fn connect(
        &self,
        payload: &PairingPayload,
        key: &NoiseKeypair,
        psk: &[u8; 32],
    ) -> Result<BrowserClient<QuicTransport>, BrowserError> {
        let io = self.socket().await;
        BrowserClient::connect(io, &payload.host_id, &payload.host_noise_key, key, psk).await
    }

    fn payload(&self) -> PairingPayload {
        let (url, _) = self
            .host
            .pairing_url(Role::Operator, Duration::from_secs(60))
            .expect("url");
        PairingPayload::from_url(&url).expect("payload")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pairs_attaches_and_resumes_exactly() {
    let mut f = fixture().await;
    let mut events = f.host.take_events().expect("events");
    let payload = f.payload();
    let key = NoiseKeypair::generate();

    let (mut b, paired) = BrowserClient::pair(f.socket().await, &payload, &key, "phone")
        .await
        .expect("pair");
    assert_eq!(paired.role, Role::Operator);
    match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        Ok(Some(HostEvent::Paired { name, code, .. })) => {
            assert_eq!(name, "phone");
            assert_eq!(code, paired.code, "both sides show the same short code");
        }
        other => panic!("no pairing event: {other:?}"),
    }
    let mut out = Vec::new();
    let hello = until(&mut b, &mut out, |m, _| is_hello(m)).await;
    let Some((_, Frame::HostHello(hello))) = hello else {
        unreachable!()
    };
    assert_ne!(hello.instance, 0);

    let session = browser_create_shell(&mut b, &mut out, 1).await;
    let token = 77;
    let attach = |from| attach(session, from, token);
    b.send(1, &attach(0)).await.expect("attach");
    until(&mut b, &mut out, |m, _| {
        matches!(m, Some((1, Frame::Attached(_))))
    })
    .await;
    b.send(1, &input(1, b"echo hi-$((6*7))\r"))
        .await
        .expect("input");
    until(&mut b, &mut out, |_, o| contains(o, b"hi-42")).await;

    // The socket dies; a new one (device mode, the psk from pairing) resumes at the offset.
    drop(b);
    let mut seen = out.clone();
    let mut b = f
        .connect(&payload, &key, &paired.device_psk)
        .await
        .expect("reconnect");
    let mut more = Vec::new();
    until(&mut b, &mut more, |m, _| is_hello(m)).await;
    b.send(1, &attach(seen.len() as u64)).await.expect("attach");
    let attached = until(&mut b, &mut more, |m, _| {
        matches!(m, Some((_, Frame::Attached(_))))
    })
    .await;
    let Some((_, Frame::Attached(attached))) = attached else {
        unreachable!()
    };
    assert_eq!(
        attached.input_acked, 1,
        "the host remembers which keystrokes it applied"
    );
    // Re-sending keystroke 1 is harmless: it is applied once.
    b.send(1, &input(1, b"echo hi-$((6*7))\r"))
        .await
        .expect("input");
    b.send(1, &input(2, b"echo again-$((5*5))\r"))
        .await
        .expect("input");
    until(&mut b, &mut more, |_, o| contains(o, b"again-25")).await;
    seen.extend_from_slice(&more);

    // A third socket replays everything from 0: what we saw is exactly a prefix of it.
    let mut c = f
        .connect(&payload, &key, &paired.device_psk)
        .await
        .expect("third");
    let mut all = Vec::new();
    until(&mut c, &mut all, |m, _| is_hello(m)).await;
    c.send(9, &peer_testkit::attach(session, 0, 5))
        .await
        .expect("attach");
    until(&mut c, &mut all, |_, o| o.len() >= seen.len()).await;
    assert_eq!(&all[..seen.len()], &seen[..], "nothing lost, nothing twice");
    assert_eq!(
        seen.windows(5).filter(|w| w == b"hi-42").count(),
        1,
        "keystroke applied once"
    );

    // The pairing code was single use.
    let again = BrowserClient::pair(
        f.socket().await,
        &payload,
        &NoiseKeypair::generate(),
        "thief",
    )
    .await;
    assert!(
        matches!(again, Err(BrowserError::Refused(Refusal::Used))),
        "{again:?}"
    );
    // A key the host never paired.
    let stranger = f
        .connect(&payload, &NoiseKeypair::generate(), &paired.device_psk)
        .await;
    assert!(
        matches!(stranger, Err(BrowserError::Refused(Refusal::NotPaired))),
        "{stranger:?}"
    );
    // The right key with a wrong psk.
    let wrong = f.connect(&payload, &key, &[9; 32]).await;
    assert!(matches!(wrong, Err(BrowserError::Crypto)), "{wrong:?}");

    // The browser is listed beside native devices and is revoked the same way.
    let paths = Paths::at(f.home.path().to_path_buf());
    let LocalReply::Devices(list) = peer::client::local_request(&paths, LocalRequest::ListDevices)
        .await
        .expect("devices")
    else {
        panic!("no device list")
    };
    assert!(
        list.iter()
            .any(|d| d.name == "phone" && d.browser && d.connections >= 1)
    );
    let id = hex::encode(key.public());
    let reply = peer::client::local_request(&paths, LocalRequest::RevokeDevice { id })
        .await
        .expect("revoke");
    assert!(
        matches!(reply, LocalReply::Revoked { closed, .. } if closed >= 1),
        "{reply:?}"
    );
    // The live socket ends at once.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if c.recv().await.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "revoked socket stayed open");
    // Through a remote bridge the close code travels in a close record.
    assert_eq!(
        c.transport().closed.as_ref().map(|(code, _)| *code),
        Some(peer::proto::close::ws::REVOKED)
    );
    let revoked = f.connect(&payload, &key, &paired.device_psk).await;
    assert!(
        matches!(revoked, Err(BrowserError::Refused(Refusal::Revoked))),
        "{revoked:?}"
    );

    drop(b);
    f.conn.close(0u32.into(), b"done");
    f.endpoint.close().await;
    f.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_bridge_alpn_is_refused_and_others_are_served() {
    let f = fixture().await;
    // Not a Noise message.
    let mut t = f.socket().await;
    use peer_testkit::browser::MessageTransport;
    t.send(b"definitely not noise").await.expect("send");
    let answer = t.recv().await.expect("answer").expect("refusal");
    assert_eq!(answer[0], Refusal::Handshake as u8);
    // A valid pairing still works on the same bridge connection.
    let payload = f.payload();
    let (_b, paired) =
        BrowserClient::pair(f.socket().await, &payload, &NoiseKeypair::generate(), "ok")
            .await
            .expect("pair");
    assert_eq!(paired.role, Role::Operator);
    f.conn.close(0u32.into(), b"done");
    f.endpoint.close().await;
    f.host.shutdown().await;
}
