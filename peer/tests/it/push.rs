//! Notifications: the host sends Web Push to a loopback push service that checks each request
//! as a real one does (VAPID, headers, size) and decrypts it with the test subscription's
//! private key; `peer watch` prints the same notices.

use std::time::{Duration, Instant};

use peer::proto::{
    AgentAttach, ErrorCode, Frame, LocalReply, LocalRequest, NewAgentSession, NoticeKind, Reply,
    Request, WireError,
};
use peer::webpush::{ece, vapid};
use peer_testkit::browser::{BrowserClient, MessageTransport};
use peer_testkit::push::{FakePushService, Received};
use peer_testkit::{TestClient, TestHost, WsBrowser, pair, request, until};

const KINDS: [NoticeKind; 5] = [
    NoticeKind::Approval,
    NoticeKind::TurnEnd,
    NoticeKind::TurnFailed,
    NoticeKind::AgentFailed,
    NoticeKind::SessionEnded,
];

/// An in-process host that trusts `fake` and may send to loopback, with the scripted agent as
/// `fake` (and `policy` as its `[policy]` table).
async fn host(fake: &FakePushService, policy: &str) -> (tempfile::TempDir, peer::host::Host) {
    let cert = fake.cert_der.clone();
    let toml = format!(
        "[policy]\n{policy}\n[agents.fake]\ncommand = [{:?}]\n",
        peer_testkit::fake_agent_binary()
    );
    peer_testkit::in_process_host_with(move |cfg| {
        cfg.push.allow_loopback_http = true;
        cfg.push.extra_roots = vec![cert];
        let dir = cfg.paths.host_dir();
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("agents.toml"), toml).expect("agents.toml");
    })
    .await
}

/// A request on channel 0 and its answer (frames of other channels are skipped).
async fn ask<T: MessageTransport>(
    c: &mut BrowserClient<T>,
    id: u32,
    r: Request,
) -> Result<Reply, WireError> {
    c.send(0, &request(id, r)).await.expect("send");
    let got = until(
        c,
        &mut Vec::new(),
        |m, _| matches!(m, Some((0, Frame::Response(r))) if r.id == id),
    )
    .await;
    match got {
        Some((_, Frame::Response(r))) => r.result,
        other => panic!("no answer: {other:?}"),
    }
}

fn repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("repo");
    peer_testkit::agents::git_repo(repo.path(), &[("a.txt", "one\n")]);
    repo
}

async fn new_agent<T: MessageTransport>(
    c: &mut BrowserClient<T>,
    id: u32,
    repo: &tempfile::TempDir,
    prompt: Option<&str>,
) -> u64 {
    let reply = ask(
        c,
        id,
        Request::NewAgentSession(NewAgentSession {
            agent: "fake".into(),
            repo: repo.path().to_string_lossy().into_owned(),
            base: None,
            prompt: prompt.map(str::to_owned),
            model: None,
        }),
    )
    .await;
    match reply {
        Ok(Reply::AgentSession(info)) => info.id,
        other => panic!("new agent session: {other:?}"),
    }
}

fn kinds(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| r.payload["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn has(kind: &str) -> impl Fn(&[Received]) -> bool + '_ {
    move |got| got.iter().any(|r| r.payload["kind"] == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_needed_reaches_the_phone_within_a_second_encrypted_and_signed() {
    let fake = FakePushService::start().await;
    let (_home, host) = host(&fake, "mode = \"allow_reads\"").await;
    let repo = repo();
    let (_b, mut c) = WsBrowser::pair(&host).await;
    let sub = fake.subscription();
    let Ok(Reply::Push(st)) = ask(&mut c, 1, Request::PushRegister(sub.register(&KINDS))).await
    else {
        panic!("register")
    };
    assert!(st.registered);
    assert_eq!(st.endpoint_origin.as_deref(), Some(fake.origin.as_str()));

    let id = new_agent(&mut c, 2, &repo, Some("ask")).await;
    let got = fake
        .wait_for(Duration::from_secs(30), has("approval"))
        .await
        .unwrap_or_else(|got| {
            panic!(
                "no approval push; got {:?}, rejected {:?}",
                kinds(&got),
                fake.rejected()
            )
        });
    let push = got
        .iter()
        .find(|r| r.payload["kind"] == "approval")
        .expect("approval");
    let p = &push.payload;
    // The right host and session, in words a lock screen can show.
    assert_eq!(p["v"], 1);
    assert_eq!(p["host"], hex::encode(host.endpoint_id().as_bytes()));
    assert_eq!(p["session"], serde_json::json!({ "agent": id }));
    assert_eq!(p["approval"], 1);
    assert_eq!(p["title"], "fake needs approval");
    assert!(
        p["tag"]
            .as_str()
            .expect("tag")
            .ends_with(&format!("-a{id}"))
    );
    // Within 1 s of the agent's request (the host records it as the permission event).
    let delay = push
        .at_ms
        .saturating_sub(p["at_ms"].as_u64().expect("at_ms"));
    println!("approval push arrived {delay} ms after the agent asked");
    assert!(delay < 1000, "approval push took {delay} ms");
    // What the push service sees: fixed size, urgent, opaque topic, signed for its origin.
    let h = |n: &str| push.headers.get(n).cloned().unwrap_or_default();
    assert_eq!(push.body.len(), ece::BODY_LEN);
    assert_eq!(h("content-encoding"), "aes128gcm");
    assert_eq!(h("urgency"), "high");
    assert_eq!(h("ttl"), "43200");
    assert_eq!(h("topic").len(), 22);
    assert_eq!(push.claims["aud"], fake.origin);
    assert_eq!(push.claims["sub"], vapid::SUBJECT);
    assert!(!String::from_utf8_lossy(&push.body).contains("needs approval"));
    // For a check with another implementation (scripts/check-webpush.py).
    if let Ok(path) = std::env::var("PEER_PUSH_CAPTURE") {
        let b64 = |b: &[u8]| data_encoding::BASE64URL_NOPAD.encode(b);
        let capture = serde_json::json!({
            "body": b64(&push.body),
            "ua_private": sub.private_b64(),
            "auth": b64(&sub.auth),
            "authorization": h("authorization"),
            "aud": fake.origin,
            "applicationServerKey": b64(&sub.vapid_public),
        });
        std::fs::write(&path, capture.to_string()).expect("capture");
    }

    // Answered by a person, the turn ends: a second notice, with the agent's last words.
    let Ok(Reply::AgentAnswered) = ask(
        &mut c,
        3,
        Request::AgentAnswer {
            session: id,
            approval: 1,
            option: Some("allow".into()),
        },
    )
    .await
    else {
        panic!("answer")
    };
    let got = fake
        .wait_for(Duration::from_secs(20), has("turn_end"))
        .await
        .unwrap_or_else(|got| panic!("no turn_end push: {:?}", kinds(&got)));
    let end = got
        .iter()
        .find(|r| r.payload["kind"] == "turn_end")
        .expect("turn_end");
    assert_eq!(end.payload["title"], "fake finished");
    assert!(
        end.payload["body"]
            .as_str()
            .expect("body")
            .contains("permission: allow"),
        "{}",
        end.payload
    );
    assert_eq!(
        end.body.len(),
        ece::BODY_LEN,
        "every push has the same size"
    );
    assert_eq!(end.headers["urgency"], "normal");

    // A request the policy answers by itself (reads are allowed) is no news: only the turn's
    // end is sent.
    let before = fake.received().len();
    let Ok(Reply::AgentPrompted { .. }) = ask(
        &mut c,
        4,
        Request::AgentPrompt {
            session: id,
            text: "read".into(),
        },
    )
    .await
    else {
        panic!("prompt")
    };
    let got = fake
        .wait_for(Duration::from_secs(20), |g| {
            g.len() > before && has("turn_end")(&g[before..])
        })
        .await
        .unwrap_or_else(|got| panic!("no second turn_end: {:?}", kinds(&got)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        kinds(&fake.received()[before..]),
        ["turn_end"],
        "{:?}",
        kinds(&got)
    );
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_subscription_is_removed_and_a_revoked_device_gets_nothing_more() {
    let fake = FakePushService::start().await;
    let (home, host) = host(&fake, "").await;
    let (a, mut ca) = WsBrowser::pair(&host).await;
    let (b, mut cb) = WsBrowser::pair(&host).await;
    let (sa, sb) = (fake.subscription(), fake.subscription());
    ask(
        &mut ca,
        1,
        Request::PushRegister(sa.register(&[NoticeKind::SessionEnded])),
    )
    .await
    .expect("register a");
    ask(
        &mut cb,
        1,
        Request::PushRegister(sb.register(&[NoticeKind::SessionEnded])),
    )
    .await
    .expect("register b");
    // The push service says A's subscription is gone (the app was uninstalled, say).
    fake.answer_with(&sa, 410);
    let run = |code: u32| {
        Request::CreateSession(peer::proto::CreateSession {
            name: Some(format!("exit-{code}")),
            command: vec!["sh".into(), "-c".into(), format!("exit {code}")],
            cwd: None,
            env: vec![],
            size: Default::default(),
            hold_output: false,
        })
    };
    ask(&mut ca, 2, run(7)).await.expect("create");
    let got = fake
        .wait_for(Duration::from_secs(20), |g| g.len() >= 2)
        .await
        .unwrap_or_else(|got| panic!("pushes: {:?}, rejected {:?}", kinds(&got), fake.rejected()));
    for r in &got {
        assert_eq!(r.payload["kind"], "session_ended");
        assert_eq!(r.payload["title"], "Session 1 ended (exit 7)");
        assert_eq!(r.payload["body"], "exit-7");
        assert_eq!(r.headers["urgency"], "low");
    }
    // A is forgotten, and told why.
    let t0 = Instant::now();
    let st = loop {
        let Ok(Reply::Push(st)) = ask(&mut ca, 3, Request::PushStatus).await else {
            panic!("status")
        };
        if !st.registered || t0.elapsed() > Duration::from_secs(10) {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!st.registered, "{st:?}");
    assert!(
        st.last_error.as_deref().unwrap_or("").contains("410"),
        "{st:?}"
    );

    // B is revoked on the host: nothing more reaches it.
    let paths = peer::paths::Paths::at(home.path().to_path_buf());
    let revoked = peer::client::local_request(
        &paths,
        LocalRequest::RevokeDevice {
            id: hex::encode(b.key.public()),
        },
    )
    .await
    .expect("revoke");
    assert!(matches!(revoked, LocalReply::Revoked { .. }), "{revoked:?}");
    drop(cb);
    ask(&mut ca, 4, run(8)).await.expect("create");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        fake.received_by(&sb).len(),
        1,
        "a revoked device got a push"
    );
    assert_eq!(
        fake.received_by(&sa).len(),
        1,
        "a gone subscription got a push"
    );

    // Both deletions are on disk: after a restart A is still unregistered.
    drop(ca);
    host.shutdown().await;
    let mut cfg = peer::host::HostConfig::new(paths);
    cfg.listen = "127.0.0.1".parse().expect("ip");
    cfg.file_keys = true;
    cfg.push.allow_loopback_http = true;
    let host = peer::host::Host::start(cfg).await.expect("restart");
    let mut ca = a.connect().await;
    let Ok(Reply::Push(st)) = ask(&mut ca, 1, Request::PushStatus).await else {
        panic!("status")
    };
    assert!(!st.registered, "{st:?}");
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_looking_at_the_session_is_not_told_until_it_looks_away() {
    let fake = FakePushService::start().await;
    let (_home, host) = host(&fake, "").await;
    let repo = repo();
    let (b, mut c) = WsBrowser::pair(&host).await;
    let sub = fake.subscription();
    ask(&mut c, 1, Request::PushRegister(sub.register(&KINDS)))
        .await
        .expect("register");
    let id = new_agent(&mut c, 2, &repo, None).await;
    // Looking at the chat (attached, visible) while the agent asks.
    let attach = |from_seq| {
        Frame::AgentAttach(AgentAttach {
            session: id,
            from_seq,
        })
    };
    c.send(2, &attach(0)).await.expect("attach");
    let prompt = |text: &str| Request::AgentPrompt {
        session: id,
        text: text.into(),
    };
    // (Its events may come before its answer: wait for the event, not the answer.)
    c.send(0, &request(3, prompt("ask"))).await.expect("prompt");
    until(
        &mut c,
        &mut Vec::new(),
        |m, _| matches!(m, Some((2, Frame::AgentEvent(e))) if e.event.name() == "permission"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        fake.received().is_empty(),
        "told while looking: {:?}",
        kinds(&fake.received())
    );

    // The phone's screen goes off: its socket dies without a word. The approval still waits,
    // so it is sent now.
    let t0 = Instant::now();
    drop(c);
    fake.wait_for(Duration::from_secs(10), has("approval"))
        .await
        .unwrap_or_else(|got| panic!("held approval not sent: {:?}", kinds(&got)));
    println!(
        "held approval sent {} ms after the socket died",
        t0.elapsed().as_millis()
    );

    // Back, attached again, but the app says it is in the background: the turn's end is sent.
    let mut c = b.connect().await;
    c.send(2, &attach(u64::MAX)).await.expect("attach");
    ask(&mut c, 1, Request::PushFocus { visible: false })
        .await
        .expect("focus");
    ask(
        &mut c,
        2,
        Request::AgentAnswer {
            session: id,
            approval: 1,
            option: Some("allow".into()),
        },
    )
    .await
    .expect("answer");
    fake.wait_for(Duration::from_secs(20), has("turn_end"))
        .await
        .unwrap_or_else(|got| panic!("no turn_end while hidden: {:?}", kinds(&got)));

    // Visible again and looking: a turn that ends is seen, not pushed, also after the phone
    // leaves the chat on purpose.
    ask(&mut c, 3, Request::PushFocus { visible: true })
        .await
        .expect("focus");
    let before = fake.received().len();
    c.send(0, &request(4, prompt("hello")))
        .await
        .expect("prompt");
    until(
        &mut c,
        &mut Vec::new(),
        |m, _| matches!(m, Some((2, Frame::AgentEvent(e))) if e.event.name() == "turn_end"),
    )
    .await;
    c.send(2, &Frame::Detach).await.expect("detach");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fake.received().len(),
        before,
        "{:?}",
        kinds(&fake.received())
    );

    // Bells are per session: an unknown session is refused.
    let err = ask(
        &mut c,
        5,
        Request::PushBell {
            session: 99,
            on: true,
        },
    )
    .await
    .expect_err("no such session");
    assert_eq!(err.code, ErrorCode::NotFound);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_are_refused_with_a_reason() {
    let fake = FakePushService::start().await;
    let (_home, host) = peer_testkit::in_process_host().await;
    let (_b, mut c) = WsBrowser::pair(&host).await;
    let sub = fake.subscription();
    let mut r = sub.register(&KINDS);
    // This host has no test switch: loopback endpoints are refused.
    let err = ask(&mut c, 1, Request::PushRegister(r.clone()))
        .await
        .expect_err("loopback");
    assert!(err.message.contains("https"), "{err:?}");
    r.endpoint = "https://push.example.com/1".into();
    r.vapid_private = [1; 32];
    let err = ask(&mut c, 2, Request::PushRegister(r.clone()))
        .await
        .expect_err("key pair");
    assert!(err.message.contains("VAPID"), "{err:?}");
    r.vapid_private = sub.vapid_private;
    r.p256dh = vec![4; 65];
    let err = ask(&mut c, 3, Request::PushRegister(r.clone()))
        .await
        .expect_err("p256dh");
    assert!(err.message.contains("p256dh"), "{err:?}");
    let Ok(Reply::Push(st)) = ask(&mut c, 4, Request::PushStatus).await else {
        panic!("status")
    };
    assert!(!st.registered);
    host.shutdown().await;
}

#[test]
fn peer_watch_prints_notices_and_runs_a_command_for_each() {
    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    pair(&mut host, &client, "laptop");
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("notices.txt");
    let mut w = client.spawn(&[
        "watch",
        "--json",
        "--count",
        "2",
        "--kinds",
        "session_ended,approval",
        "--exec",
        &format!(
            "echo \"$PEER_KIND|$PEER_SESSION|$PEER_TITLE|$PEER_BODY|$PEER_HOST\" >> {}",
            file.display()
        ),
    ]);
    let t0 = Instant::now();
    while !w.stderr().contains("watching") {
        assert!(t0.elapsed() < Duration::from_secs(20), "{}", w.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    client.ok(&["new", "--name", "build", "--", "sh", "-c", "exit 5"]);
    client.ok(&["new", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(w.wait_exit(Duration::from_secs(30)), 0, "{}", w.stderr());
    let lines: Vec<serde_json::Value> = w
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", w.stdout());
    let mut titles: Vec<&str> = lines
        .iter()
        .map(|l| l["title"].as_str().expect("title"))
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Session 1 ended (exit 5)",
            "Session 2 ended (killed by Terminated)"
        ]
    );
    assert!(
        lines
            .iter()
            .all(|l| l["kind"] == "session_ended" && l["host_id"].is_string())
    );
    let mut ran: Vec<String> = std::fs::read_to_string(&file)
        .expect("exec output")
        .lines()
        .map(str::to_owned)
        .collect();
    ran.sort();
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(
        ran[0].starts_with("session_ended|pty:1|Session 1 ended (exit 5)|build|"),
        "{ran:?}"
    );
    assert!(ran[1].starts_with("session_ended|pty:2|"), "{ran:?}");

    // A session killed by a client is no news.
    let mut w = client.spawn(&["watch", "--json", "--count", "1"]);
    let t0 = Instant::now();
    while !w.stderr().contains("watching") {
        assert!(t0.elapsed() < Duration::from_secs(20), "{}", w.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let id = client.ok(&["new", "--", "sleep", "600"]);
    client.ok(&["kill", id.trim()]);
    client.ok(&["new", "--", "true"]);
    assert_eq!(w.wait_exit(Duration::from_secs(30)), 0, "{}", w.stderr());
    let line: serde_json::Value = serde_json::from_str(w.stdout().trim()).expect("json");
    assert_eq!(
        line["title"], "Session 4 ended (exit 0)",
        "the killed session 3 said nothing"
    );
}
