use std::time::Duration;

use super::*;
use crate::proto::CreateSession;

struct Frames(Vec<Frame>);

impl FrameSink for Frames {
    async fn send(&mut self, frame: Frame) -> Result<(), ()> {
        self.0.push(frame);
        Ok(())
    }
}

/// A session running `sh -c script`, once it has ended.
async fn ended(m: &SessionManager, script: &str) -> Arc<PtySession> {
    let mut events = m.events();
    let s = m
        .create(CreateSession {
            name: Some("job".into()),
            command: ["sh", "-c", script].map(String::from).to_vec(),
            cwd: Some("/".into()),
            env: vec![],
            size: WinSize::default(),
            hold_output: false,
        })
        .await
        .expect("create");
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("in time")
            .expect("event");
        if matches!(ev, PtyEvent::Exited { session, .. } if session == s.id()) {
            return s;
        }
    }
}

/// A bytes-only attach of `session` from `from_offset`.
fn attach(session: u64, from_offset: u64) -> Attach {
    Attach {
        session,
        from_offset,
        client_token: 1,
        size: None,
        screen: None,
        echo_acks: false,
    }
}

/// `sh -c script` run to its end and remembered, as read back.
async fn remembered(script: &str) -> (tempfile::TempDir, Arc<PtySession>, Arc<EndedSession>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = SessionManager::new(256 * 1024, 100, 8);
    let e = Ended::load(open(&dir), 5).await.expect("load");
    let s = ended(&m, script).await;
    e.remember(&s).await;
    let row = e.get(s.id()).expect("row");
    (dir, s, row)
}

fn open(dir: &tempfile::TempDir) -> Db {
    Db::open(&dir.path().join("peer.db")).expect("db")
}

#[tokio::test]
async fn ended_sessions_outlive_the_table_in_memory_up_to_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = SessionManager::new(64 * 1024, 100, 8);
    {
        let e = Ended::load(open(&dir), 2).await.expect("load");
        for code in [3, 4, 5] {
            let s = ended(&m, &format!("printf 'bye %s' {code}; exit {code}")).await;
            e.remember(&s).await;
        }
        assert_eq!(e.list_except(&[]).len(), 2, "the cap holds in memory");
    }
    let e = Ended::load(open(&dir), 2).await.expect("reload");
    let list = e.list_except(&[]);
    let codes: Vec<_> = list
        .iter()
        .map(|i| match &i.state {
            SessionState::Exited(x) => x.code,
            SessionState::Running => 0,
        })
        .collect();
    assert_eq!(codes, [4, 5], "the newest two: {list:?}");
    let last = &list[1];
    assert_eq!(last.name.as_deref(), Some("job"));
    assert_eq!(last.command, ["sh", "-c", "printf 'bye %s' 5; exit 5"]);
    assert!(last.ended_at_ms.is_some_and(|t| t >= last.created_at_ms));
    assert_eq!(last.screen.last_line.as_deref(), Some("bye 5"));
    assert_eq!(e.get(last.id).expect("row").tail, b"bye 5");
    assert_eq!(e.next_id(), last.id + 1);

    assert!(e.forget(last.id).await.expect("forget"));
    assert!(
        !e.forget(last.id).await.expect("again"),
        "already forgotten"
    );
    let e = Ended::load(open(&dir), 2).await.expect("reload");
    assert_eq!(e.list_except(&[]).len(), 1, "forgotten on disk too");
    // A live session of the same id hides the remembered row.
    let live = e.list_except(&[]);
    assert!(e.list_except(&live).is_empty());
}

#[tokio::test]
async fn attaching_to_a_remembered_session_replays_its_last_output_then_its_exit() {
    let (_dir, s, row) = remembered("printf 'one two'; exit 3").await;
    let end = row.info.output_end;
    assert_eq!(end, 7);

    // From the start, from the middle, and "from now on" (what it printed last).
    for (from, start, want) in [
        (0, 0, &b"one two"[..]),
        (4, 4, b"two"),
        (u64::MAX, 0, b"one two"),
    ] {
        let mut out = Frames(vec![]);
        serve_attach(&row, &attach(s.id(), from), &mut out)
            .await
            .map_err(|_| ())
            .expect("served");
        let mut bytes = Vec::new();
        let mut exit = None;
        for f in out.0 {
            match f {
                Frame::Attached(a) => assert_eq!(a.start_offset, start),
                Frame::Output(o) => bytes.extend_from_slice(&o.data),
                Frame::Exited(x) => exit = Some((x.status.code, x.end_offset)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(bytes, want, "from {from}");
        assert_eq!(exit, Some((3, end)));
    }
}

#[tokio::test]
async fn output_older_than_what_is_kept_is_a_gap() {
    // 100000 bytes: more than the tail keeps.
    let (_dir, s, row) = remembered("head -c 100000 /dev/zero | tr '\\0' x; exit 0").await;
    assert_eq!(row.tail.len(), TAIL);
    let mut out = Frames(vec![]);
    serve_attach(&row, &attach(s.id(), 10), &mut out)
        .await
        .map_err(|_| ())
        .expect("served");
    let start = row.info.output_end - TAIL as u64;
    assert!(
        matches!(&out.0[1], Frame::Gap(g) if g.from == 10 && g.to == start),
        "{:?}",
        &out.0[1]
    );
    assert!(matches!(&out.0[2], Frame::Output(o) if o.offset == start));
}
