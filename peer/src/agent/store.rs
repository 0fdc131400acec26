//! Agent sessions and their transcripts in the host's SQLite database.
//!
//! One thread owns a connection and serves a bounded queue of writes and reads in order, so
//! a read sees every event queued before it and the async runtime never waits on the disk.
//! Consecutive event writes are committed in one transaction.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::proto::{AgentEvent, AgentState};

/// Queue depth between the sessions and the database thread.
const QUEUE: usize = 4096;
/// Events written per transaction at most.
const BATCH: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agent_sessions (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL,
    repo        TEXT NOT NULL,
    worktree    TEXT NOT NULL,
    wt_name     TEXT NOT NULL,
    branch      TEXT NOT NULL,
    base        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT,
    acp_session TEXT
);
CREATE TABLE IF NOT EXISTS agent_events (
    session INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL,
    PRIMARY KEY (session, seq)
) WITHOUT ROWID;
";

/// A stored agent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Id.
    pub id: u64,
    /// Agent name.
    pub agent: String,
    /// Repository path.
    pub repo: String,
    /// Worktree path.
    pub worktree: String,
    /// The worktree's name inside the repository.
    pub wt_name: String,
    /// Branch.
    pub branch: String,
    /// Base commit, hex.
    pub base: String,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Last recorded state.
    pub state: AgentState,
    /// Failure reason.
    pub detail: Option<String>,
    /// The agent's own session id, once known.
    pub acp_session: Option<String>,
}

/// Runs once an event is committed (publishes it to live clients).
pub type OnStored = Box<dyn FnOnce() + Send>;

enum Op {
    Event(AgentEvent, Option<OnStored>),
    State(u64, AgentState, Option<String>),
    AcpSession(u64, String),
    Insert(SessionRow, oneshot::Sender<rusqlite::Result<u64>>),
    Read {
        session: u64,
        from: u64,
        to: u64,
        reply: oneshot::Sender<rusqlite::Result<Vec<AgentEvent>>>,
    },
    Sessions(oneshot::Sender<rusqlite::Result<Vec<SessionRow>>>),
    Kinds {
        session: u64,
        kinds: Vec<&'static str>,
        reply: oneshot::Sender<rusqlite::Result<Vec<AgentEvent>>>,
    },
    Flush(oneshot::Sender<()>),
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("agent database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The database thread is gone.
    #[error("agent database thread stopped")]
    Gone,
}

/// Handle to the database thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    tx: SyncSender<Op>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Op")
    }
}

impl Store {
    /// Opens the database at `path` (creating the tables) and starts its thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute_batch(SCHEMA)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("peer-agent-db".into())
            .spawn(move || serve(db, rx))
            .map_err(|e| StoreError::Db(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        Ok(Store { tx })
    }

    /// Sends without blocking the runtime: a full queue waits on a blocking thread.
    async fn put(&self, op: Op) -> Result<(), StoreError> {
        match self.tx.try_send(op) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(op)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(op).map_err(|_| StoreError::Gone))
                    .await
                    .map_err(|_| StoreError::Gone)?
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(StoreError::Gone),
        }
    }

    /// Appends an event; `on_stored` runs on the database thread once the event is committed
    /// (or, if writing failed, once that is logged), in sequence order.
    pub async fn append(
        &self,
        ev: AgentEvent,
        on_stored: Option<OnStored>,
    ) -> Result<(), StoreError> {
        self.put(Op::Event(ev, on_stored)).await
    }

    /// Records a session's state.
    pub async fn set_state(
        &self,
        id: u64,
        state: AgentState,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        self.put(Op::State(id, state, detail)).await
    }

    /// Records the agent's own session id.
    pub async fn set_acp_session(&self, id: u64, acp: String) -> Result<(), StoreError> {
        self.put(Op::AcpSession(id, acp)).await
    }

    /// Inserts a session row; its `id` is ignored and the new id returned.
    pub async fn insert(&self, row: SessionRow) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.put(Op::Insert(row, reply)).await?;
        Ok(rx.await.map_err(|_| StoreError::Gone)??)
    }

    /// Events `from..to` of a session, in order.
    pub async fn read(
        &self,
        session: u64,
        from: u64,
        to: u64,
    ) -> Result<Vec<AgentEvent>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.put(Op::Read {
            session,
            from,
            to,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| StoreError::Gone)??)
    }

    /// Every stored session.
    pub async fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.put(Op::Sessions(reply)).await?;
        Ok(rx.await.map_err(|_| StoreError::Gone)??)
    }

    /// A session's events of the given kinds, in order.
    pub async fn events_of_kinds(
        &self,
        session: u64,
        kinds: Vec<&'static str>,
    ) -> Result<Vec<AgentEvent>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.put(Op::Kinds {
            session,
            kinds,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| StoreError::Gone)??)
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (reply, rx) = oneshot::channel();
        if self.put(Op::Flush(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn serve(mut db: Connection, rx: Receiver<Op>) {
    let mut pending: Vec<(AgentEvent, Option<OnStored>)> = Vec::new();
    while let Ok(op) = rx.recv() {
        let mut next = Some(op);
        // Gather the events already queued into one transaction.
        while let Some(op) = next.take() {
            match op {
                Op::Event(ev, done) => {
                    pending.push((ev, done));
                    if pending.len() < BATCH {
                        next = rx.try_recv().ok();
                    }
                    if next.is_none() || !matches!(next, Some(Op::Event(..))) {
                        write_events(&mut db, &mut pending);
                    }
                }
                other => {
                    write_events(&mut db, &mut pending);
                    run(&db, other);
                }
            }
        }
    }
    write_events(&mut db, &mut pending);
}

fn write_events(db: &mut Connection, pending: &mut Vec<(AgentEvent, Option<OnStored>)>) {
    if pending.is_empty() {
        return;
    }
    let res = (|| -> rusqlite::Result<()> {
        let tx = db.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO agent_events (session, seq, at, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (ev, _) in pending.iter() {
                stmt.execute(params![ev.session, ev.seq, ev.at_ms, ev.kind, ev.data])?;
            }
        }
        tx.commit()
    })();
    if let Err(e) = res {
        tracing::error!("writing {} agent events: {e}", pending.len());
    }
    for (_, done) in pending.drain(..) {
        if let Some(done) = done {
            done();
        }
    }
}

fn run(db: &Connection, op: Op) {
    match op {
        Op::Event(..) => {}
        Op::State(id, state, detail) => {
            if let Err(e) = db.execute(
                "UPDATE agent_sessions SET state = ?1, detail = ?2 WHERE id = ?3",
                params![state.as_str(), detail, id],
            ) {
                tracing::error!("agent session {id} state: {e}");
            }
        }
        Op::AcpSession(id, acp) => {
            if let Err(e) = db.execute(
                "UPDATE agent_sessions SET acp_session = ?1 WHERE id = ?2",
                params![acp, id],
            ) {
                tracing::error!("agent session {id}: {e}");
            }
        }
        Op::Insert(r, reply) => {
            let res = db
                .execute(
                    "INSERT INTO agent_sessions (agent, repo, worktree, wt_name, branch, base, created_at, state, detail, acp_session)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        r.agent,
                        r.repo,
                        r.worktree,
                        r.wt_name,
                        r.branch,
                        r.base,
                        r.created_at,
                        r.state.as_str(),
                        r.detail,
                        r.acp_session
                    ],
                )
                .map(|_| db.last_insert_rowid() as u64);
            let _ = reply.send(res);
        }
        Op::Read {
            session,
            from,
            to,
            reply,
        } => {
            let _ = reply.send(read(db, session, from, to));
        }
        Op::Sessions(reply) => {
            let _ = reply.send(sessions(db));
        }
        Op::Kinds {
            session,
            kinds,
            reply,
        } => {
            let res = (|| {
                let mut stmt = db.prepare_cached(
                    "SELECT session, seq, at, kind, data FROM agent_events WHERE session = ?1 ORDER BY seq",
                )?;
                let rows = stmt.query_map([session], event_row)?;
                let mut out = Vec::new();
                for r in rows {
                    let ev = r?;
                    if kinds.contains(&ev.kind.as_str()) {
                        out.push(ev);
                    }
                }
                Ok(out)
            })();
            let _ = reply.send(res);
        }
        Op::Flush(reply) => {
            let _ = reply.send(());
        }
    }
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentEvent> {
    Ok(AgentEvent {
        session: r.get(0)?,
        seq: r.get(1)?,
        at_ms: r.get(2)?,
        kind: r.get(3)?,
        data: r.get(4)?,
    })
}

fn read(db: &Connection, session: u64, from: u64, to: u64) -> rusqlite::Result<Vec<AgentEvent>> {
    let mut stmt = db.prepare_cached(
        "SELECT session, seq, at, kind, data FROM agent_events WHERE session = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
    )?;
    let rows = stmt.query_map(
        params![session, from.min(i64::MAX as u64), to.min(i64::MAX as u64)],
        event_row,
    )?;
    rows.collect()
}

fn sessions(db: &Connection) -> rusqlite::Result<Vec<SessionRow>> {
    let mut stmt = db.prepare(
        "SELECT id, agent, repo, worktree, wt_name, branch, base, created_at, state, detail, acp_session FROM agent_sessions ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let state: String = r.get(8)?;
        Ok(SessionRow {
            id: r.get(0)?,
            agent: r.get(1)?,
            repo: r.get(2)?,
            worktree: r.get(3)?,
            wt_name: r.get(4)?,
            branch: r.get(5)?,
            base: r.get(6)?,
            created_at: r.get(7)?,
            state: AgentState::parse(&state).unwrap_or(AgentState::Failed),
            detail: r.get(9)?,
            acp_session: r.get(10)?,
        })
    })?;
    rows.collect()
}

/// The highest stored sequence number of a session plus one (0 if none), read directly.
pub fn next_seq(db_path: &Path, session: u64) -> rusqlite::Result<u64> {
    let db = Connection::open(db_path)?;
    let max: Option<u64> = db
        .query_row(
            "SELECT MAX(seq) FROM agent_events WHERE session = ?1",
            [session],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(max.map_or(0, |m| m + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> SessionRow {
        SessionRow {
            id: 0,
            agent: "fake".into(),
            repo: "/r".into(),
            worktree: "/w".into(),
            wt_name: "w".into(),
            branch: "b".into(),
            base: "00".into(),
            created_at: 1,
            state: AgentState::Starting,
            detail: None,
            acp_session: None,
        }
    }

    #[tokio::test]
    async fn events_round_trip_in_order_and_survive_reopen() {
        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("peer.db");
        let store = Store::open(&path).expect("open");
        let id = store.insert(row()).await.expect("insert");
        for seq in 0..2000u64 {
            store
                .append(
                    AgentEvent {
                        session: id,
                        seq,
                        at_ms: seq,
                        kind: "update".into(),
                        data: format!("{{\"n\":{seq}}}"),
                    },
                    None,
                )
                .await
                .expect("append");
        }
        store
            .set_state(id, AgentState::Idle, None)
            .await
            .expect("state");
        let evs = store.read(id, 1990, u64::MAX).await.expect("read");
        assert_eq!(evs.len(), 10);
        assert_eq!(evs[0].seq, 1990);
        store.flush().await;
        drop(store);
        let store = Store::open(&path).expect("reopen");
        let rows = store.sessions().await.expect("sessions");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, AgentState::Idle);
        assert_eq!(next_seq(&path, id).expect("next"), 2000);
        assert_eq!(store.read(id, 0, 2000).await.expect("all").len(), 2000);
    }
}
