//! Agent sessions and their transcripts: the tables `agent_sessions` and `agent_events` of the
//! host's database ([`crate::db`]).
//!
//! An event is stored as `kind`, the snake_case name of its [`AgentEventKind`] variant, and
//! `data`, the JSON of the variant's fields (serde's form: ACP objects are JSON text inside
//! it). Writes are queued to the database thread and committed in batches; a session's events
//! are published to clients only once committed (see [`Store::append`]).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::local::LocalChoice;
use crate::db::{Db, DbError, Done};
use crate::proto::{AgentEvent, AgentEventKind, AgentState};

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
    /// The local model it runs on, if any.
    pub model: Option<LocalChoice>,
}

/// Runs on the database thread once an event is committed (publishes it to live clients).
pub type OnStored = Box<dyn FnOnce() + Send>;

/// The `kind` and `data` columns of an event.
pub fn encode_event(ev: &AgentEventKind) -> (&'static str, String) {
    let name = ev.name();
    let data = match serde_json::to_value(ev) {
        Ok(Value::Object(mut m)) => m.remove(name).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (name, data.to_string())
}

/// Reads the `kind` and `data` columns of an event.
pub fn decode_event(kind: &str, data: &str) -> Result<AgentEventKind, serde_json::Error> {
    let data: Value = serde_json::from_str(data)?;
    let mut tagged = Map::new();
    tagged.insert(kind.to_string(), data);
    serde_json::from_value(Value::Object(tagged))
}

/// The agent tables, through the database thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// The agent tables of `db`.
    pub fn new(db: Db) -> Store {
        Store { db }
    }

    /// Queues an event; `on_stored` runs on the database thread once it is committed (or, if
    /// writing failed, once that is logged), in sequence order.
    pub async fn append(&self, ev: AgentEvent, on_stored: Option<OnStored>) -> Result<(), DbError> {
        let done = on_stored.map(|f| -> Done { Box::new(move |_| f()) });
        self.db
            .queue(
                move |c| {
                    let (kind, data) = encode_event(&ev.event);
                    c.prepare_cached(
                        "INSERT OR REPLACE INTO agent_events (session, seq, at, kind, data)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![ev.session, ev.seq, ev.at_ms, kind, data])?;
                    Ok(())
                },
                done,
            )
            .await
    }

    /// Records a session's state.
    pub async fn set_state(
        &self,
        id: u64,
        state: AgentState,
        detail: Option<String>,
    ) -> Result<(), DbError> {
        self.db
            .queue(
                move |c| {
                    c.execute(
                        "UPDATE agent_sessions SET state = ?1, detail = ?2 WHERE id = ?3",
                        params![state.as_str(), detail, id],
                    )?;
                    Ok(())
                },
                None,
            )
            .await
    }

    /// Records the agent's own session id.
    pub async fn set_acp_session(&self, id: u64, acp: String) -> Result<(), DbError> {
        self.db
            .queue(
                move |c| {
                    c.execute(
                        "UPDATE agent_sessions SET acp_session = ?1 WHERE id = ?2",
                        params![acp, id],
                    )?;
                    Ok(())
                },
                None,
            )
            .await
    }

    /// Inserts a session row; its `id` is ignored and the new id returned.
    pub async fn insert(&self, r: SessionRow) -> Result<u64, DbError> {
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO agent_sessions (agent, repo, worktree, wt_name, branch, base,
                         created_at, state, detail, acp_session, model)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                        r.acp_session,
                        r.model.as_ref().and_then(|m| serde_json::to_string(m).ok())
                    ],
                )?;
                Ok(c.last_insert_rowid() as u64)
            })
            .await
    }

    /// Events `from..to` of a session, in order.
    pub async fn read(&self, session: u64, from: u64, to: u64) -> Result<Vec<AgentEvent>, DbError> {
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT session, seq, at, kind, data FROM agent_events
                     WHERE session = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
                )?;
                let rows = stmt.query_map(
                    params![session, from.min(i64::MAX as u64), to.min(i64::MAX as u64)],
                    event_row,
                )?;
                rows.collect()
            })
            .await
    }

    /// A session's `permission` and `permission_resolved` events, in order.
    pub async fn approvals(&self, session: u64) -> Result<Vec<AgentEvent>, DbError> {
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT session, seq, at, kind, data FROM agent_events
                     WHERE session = ?1 AND kind IN ('permission', 'permission_resolved')
                     ORDER BY seq",
                )?;
                let rows = stmt.query_map([session], event_row)?;
                rows.collect()
            })
            .await
    }

    /// Every stored session.
    pub async fn sessions(&self) -> Result<Vec<SessionRow>, DbError> {
        self.db.call(|c| sessions(c)).await
    }

    /// The highest stored sequence number of a session plus one (0 if none).
    pub async fn next_seq(&self, session: u64) -> Result<u64, DbError> {
        self.db
            .call(move |c| {
                let max: Option<u64> = c
                    .query_row(
                        "SELECT MAX(seq) FROM agent_events WHERE session = ?1",
                        [session],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                Ok(max.map_or(0, |m| m + 1))
            })
            .await
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        self.db.flush().await;
    }
}

/// An event row. A row that does not decode (written by hand, or by a version this one does
/// not know) is read as a warning, so the transcript keeps its numbering.
fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentEvent> {
    let (session, seq, at_ms): (u64, u64, u64) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let kind: String = r.get(3)?;
    let data: String = r.get(4)?;
    let event = decode_event(&kind, &data).unwrap_or_else(|e| {
        tracing::warn!(session, seq, kind, "unreadable agent event: {e}");
        AgentEventKind::Warning {
            message: format!("event {seq} ({kind}) could not be read: {e}"),
        }
    });
    Ok(AgentEvent {
        session,
        seq,
        at_ms,
        event,
    })
}

fn sessions(db: &Connection) -> rusqlite::Result<Vec<SessionRow>> {
    let mut stmt = db.prepare(
        "SELECT id, agent, repo, worktree, wt_name, branch, base, created_at, state, detail,
             acp_session, model
         FROM agent_sessions ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let state: String = r.get(8)?;
        let mut state = AgentState::parse(&state).unwrap_or(AgentState::Failed);
        let mut detail: Option<String> = r.get(9)?;
        // A session on a local model whose record cannot be read must not start on the
        // agent's own (provider's) model instead: it fails, and says why.
        let model = match r.get::<_, Option<String>>(11)? {
            None => None,
            Some(j) => match serde_json::from_str::<LocalChoice>(&j) {
                Ok(m) => Some(m),
                Err(e) => {
                    state = AgentState::Failed;
                    detail = Some(format!("its local model record is unreadable: {e}"));
                    None
                }
            },
        };
        Ok(SessionRow {
            id: r.get(0)?,
            agent: r.get(1)?,
            repo: r.get(2)?,
            worktree: r.get(3)?,
            wt_name: r.get(4)?,
            branch: r.get(5)?,
            base: r.get(6)?,
            created_at: r.get(7)?,
            state,
            detail,
            acp_session: r.get(10)?,
            model,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row() -> SessionRow {
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
            model: None,
        }
    }

    #[test]
    fn every_kind_is_stored_under_its_name_and_reads_back() {
        for ev in crate::agent::view::tests::every_kind() {
            let (kind, data) = encode_event(&ev);
            assert_eq!(kind, ev.name());
            assert!(data.starts_with('{'), "{data}");
            assert_eq!(decode_event(kind, &data).expect("decode"), ev, "{data}");
        }
        let (kind, data) = encode_event(&AgentEventKind::QueueCleared { dropped: 2 });
        assert_eq!((kind, data.as_str()), ("queue_cleared", r#"{"dropped":2}"#));
        assert!(decode_event("no_such_kind", "{}").is_err());
    }

    #[tokio::test]
    async fn a_local_model_is_kept_and_an_unreadable_one_fails_the_session() {
        let t = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&t.path().join("peer.db")).expect("open");
        let store = Store::new(db.clone());
        let choice = LocalChoice {
            server: "ollama".into(),
            endpoint: "http://127.0.0.1:11434/v1".into(),
            model: "qwen2.5-coder:7b".into(),
            models: vec!["qwen2.5-coder:7b".into()],
            api_key_env: None,
        };
        let a = store
            .insert(SessionRow {
                model: Some(choice.clone()),
                ..row()
            })
            .await
            .expect("insert");
        let b = store.insert(row()).await.expect("insert");
        db.call(move |c| {
            c.execute(
                "UPDATE agent_sessions SET model = '{\"server\":' WHERE id = ?1",
                [b],
            )?;
            Ok(())
        })
        .await
        .expect("spoil");
        let rows = store.sessions().await.expect("sessions");
        assert_eq!(rows[0].id, a);
        assert_eq!(rows[0].model, Some(choice));
        assert_eq!(rows[0].state, AgentState::Starting);
        assert_eq!(rows[1].model, None);
        assert_eq!(rows[1].state, AgentState::Failed);
        assert!(
            rows[1]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("unreadable"))
        );
    }

    #[tokio::test]
    async fn events_round_trip_in_order_and_survive_reopen() {
        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("peer.db");
        let store = Store::new(Db::open(&path).expect("open"));
        let id = store.insert(row()).await.expect("insert");
        for seq in 0..2000u64 {
            let event = AgentEventKind::Update {
                update: format!("{{\"n\":{seq}}}"),
            };
            let ev = AgentEvent {
                session: id,
                seq,
                at_ms: seq,
                event,
            };
            store.append(ev, None).await.expect("append");
        }
        store
            .set_state(id, AgentState::Idle, None)
            .await
            .expect("state");
        let evs = store.read(id, 1990, u64::MAX).await.expect("read");
        assert_eq!(evs.len(), 10);
        assert_eq!(evs[0].seq, 1990);
        assert_eq!(
            evs[0].event,
            AgentEventKind::Update {
                update: "{\"n\":1990}".into()
            }
        );
        store.flush().await;
        drop(store);
        let store = Store::new(Db::open(&path).expect("reopen"));
        let rows = store.sessions().await.expect("sessions");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, AgentState::Idle);
        assert_eq!(rows[0].model, None);
        assert_eq!(store.next_seq(id).await.expect("next"), 2000);
        assert_eq!(store.read(id, 0, 2000).await.expect("all").len(), 2000);
    }
}
