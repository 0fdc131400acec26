//! Agent sessions over the browser channel: a browser starts an agent, attaches an agent
//! channel from sequence 0 and receives the transcript, then answers an approval.

use std::time::Duration;

use peer::agent::view::to_view;
use peer::proto::{
    ALPN_BRIDGE, AgentAttach, AgentEvent, AgentEventKind, Frame, NewAgentSession, Reply, Request,
    ResponseFrame, Role,
};
use peer_pairing::{NoiseKeypair, PairingPayload};
use peer_testkit::browser::{BrowserClient, QuicTransport};
use peer_testkit::until;

/// The browser client and the agent events that arrived while it waited for a response.
struct B {
    c: BrowserClient<QuicTransport>,
    pending: std::collections::VecDeque<AgentEvent>,
}

impl B {
    async fn next(&mut self) -> (u32, Frame) {
        let mut out = Vec::new();
        until(&mut self.c, &mut out, |m, _| m.is_some())
            .await
            .expect("a frame")
    }

    async fn next_event(&mut self) -> AgentEvent {
        if let Some(ev) = self.pending.pop_front() {
            return ev;
        }
        loop {
            if let (channel, Frame::AgentEvent(event)) = self.next().await {
                assert_eq!(channel, 2);
                return event;
            }
        }
    }

    async fn request(&mut self, id: u32, request: Request) -> Reply {
        self.c
            .send(0, &peer_testkit::request(id, request))
            .await
            .expect("send");
        loop {
            match self.next().await {
                (0, Frame::Response(ResponseFrame { id: got, result })) if got == id => {
                    return result.expect("request ok");
                }
                (_, Frame::AgentEvent(event)) => self.pending.push_back(event),
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_runs_an_agent_and_answers_its_approval() {
    let fake = peer_testkit::fake_agent_binary();
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join("host")).expect("mkdir");
    std::fs::write(
        home.path().join("host/agents.toml"),
        format!("[agents.fake]\ncommand = [{fake:?}]\n"),
    )
    .expect("agents.toml");
    let mut cfg = peer::host::HostConfig::new(peer::paths::Paths::at(home.path().to_path_buf()));
    cfg.listen = "127.0.0.1".parse().expect("ip");
    cfg.file_keys = true;
    let host = peer::host::Host::start(cfg).await.expect("host");

    let repo = tempfile::tempdir().expect("repo");
    {
        let r = git2::Repository::init(repo.path()).expect("init");
        std::fs::write(repo.path().join("f"), "x\n").expect("write");
        let mut index = r.index().expect("index");
        index.add_path(std::path::Path::new("f")).expect("add");
        index.write().expect("write");
        let tree = r
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("sig");
        r.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .expect("commit");
    }

    let (endpoint, conn) = peer_testkit::dial_direct(&host, ALPN_BRIDGE).await;
    let (url, _) = host
        .pairing_url(Role::Operator, Duration::from_secs(60))
        .expect("url");
    let payload = PairingPayload::from_url(&url).expect("payload");
    let (send, recv) = conn.open_bi().await.expect("bi");
    let (c, _) = BrowserClient::pair(
        QuicTransport::new(send, recv),
        &payload,
        &NoiseKeypair::generate(),
        "phone",
    )
    .await
    .expect("pair");
    let mut b = B {
        c,
        pending: Default::default(),
    };

    let reply = b
        .request(
            1,
            Request::NewAgentSession(NewAgentSession {
                agent: "fake".into(),
                repo: repo.path().to_string_lossy().into_owned(),
                base: None,
                prompt: Some("ask".into()),
                model: None,
            }),
        )
        .await;
    let Reply::AgentSession(info) = reply else {
        panic!("unexpected {reply:?}")
    };
    let attach = Frame::AgentAttach(AgentAttach {
        session: info.id,
        from_seq: 0,
    });
    b.c.send(2, &attach).await.expect("attach");

    let mut seq = 0;
    let approval = loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), b.next_event())
            .await
            .expect("event in time");
        assert_eq!(ev.seq, seq, "events in order without holes");
        seq += 1;
        if let AgentEventKind::Permission { approval, .. } = ev.event {
            break approval;
        }
    };
    let reply = b
        .request(
            2,
            Request::AgentAnswer {
                session: info.id,
                approval,
                option: Some("allow".into()),
            },
        )
        .await;
    assert_eq!(reply, Reply::AgentAnswered);
    let mut said = String::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), b.next_event())
            .await
            .expect("event in time");
        assert_eq!(ev.seq, seq);
        seq += 1;
        let (kind, d) = to_view(&ev.event);
        if kind == "permission_resolved" {
            assert_eq!(d["by"], "phone");
        }
        if let Some(t) = d["content"]["text"].as_str() {
            said.push_str(t);
        }
        if kind == "turn_end" {
            assert_eq!(d["stopReason"], "end_turn");
            break;
        }
    }
    assert!(said.contains("permission: allow"), "{said}");
    host.shutdown().await;
    endpoint.close().await;
}
