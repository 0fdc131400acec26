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
use crate::proto::{AgentEvent, AgentEventKind, AgentState, GrantInfo};

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
    /// The directory inside the worktree the agent works in (`""`: the worktree itself).
    pub subdir: String,
}

impl SessionRow {
    /// The agent's working directory: the worktree, or the directory inside it.
    pub fn cwd(&self) -> std::path::PathBuf {
        let wt = std::path::Path::new(&self.worktree);
        if self.subdir.is_empty() {
            wt.to_path_buf()
        } else {
            wt.join(&self.subdir)
        }
    }
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
                         created_at, state, detail, acp_session, subdir, model)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
                        r.subdir,
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

    /// What a session's actor needs from its transcript to go on after a restart:
    /// [`Restored::fold`] of its `prompt`, `turn_start`, `queue_cleared`, `permission`,
    /// `permission_resolved`, `grant` and `grant_revoked` events.
    pub async fn restore(&self, session: u64) -> Result<Restored, DbError> {
        let evs = self
            .db
            .call(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT session, seq, at, kind, data FROM agent_events
                     WHERE session = ?1 AND kind IN ('prompt', 'turn_start', 'queue_cleared',
                         'permission', 'permission_resolved', 'grant', 'grant_revoked')
                     ORDER BY seq",
                )?;
                let rows = stmt.query_map([session], event_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        Ok(Restored::fold(session, &evs))
    }

    /// Appends a row to the host's audit log (`device`: 32 bytes of a device id).
    pub async fn audit(
        &self,
        device: Option<Vec<u8>>,
        event: &'static str,
        detail: String,
    ) -> Result<(), DbError> {
        self.db
            .queue(
                move |c| {
                    c.prepare_cached(
                        "INSERT INTO audit (at, device, event, detail) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        crate::util::now_secs(),
                        device,
                        event,
                        detail
                    ])?;
                    Ok(())
                },
                None,
            )
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

/// A session's state that lives in its transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Prompts that were waiting (sent, or queued behind a turn) and never reached the agent.
    pub queue: Vec<(String, Option<String>, String)>,
    /// Approvals that were pending.
    pub open_approvals: Vec<u64>,
    /// The number the next approval gets.
    pub next_approval: u64,
    /// Grants made and not revoked.
    pub grants: Vec<GrantInfo>,
    /// The number the next grant gets.
    pub next_grant: u64,
}

impl Restored {
    /// Folds a session's events, in order. The queue: every `prompt` joins it, every
    /// `turn_start` takes its oldest prompt to the agent, `queue_cleared` empties it (the
    /// actor keeps exactly this discipline). Queue entries are (text, device id, device name).
    pub fn fold(session: u64, events: &[AgentEvent]) -> Restored {
        let mut queue = std::collections::VecDeque::new();
        let mut open = std::collections::BTreeSet::new();
        let mut max_approval = 0;
        let mut grants: Vec<GrantInfo> = Vec::new();
        let mut max_grant = 0;
        for ev in events {
            match &ev.event {
                AgentEventKind::Prompt {
                    text, by, device, ..
                } => queue.push_back((text.clone(), device.clone(), by.clone())),
                AgentEventKind::TurnStart { .. } => {
                    queue.pop_front();
                }
                AgentEventKind::QueueCleared { .. } => queue.clear(),
                AgentEventKind::Permission { approval, .. } => {
                    open.insert(*approval);
                    max_approval = max_approval.max(*approval);
                }
                AgentEventKind::PermissionResolved { approval, .. } => {
                    open.remove(approval);
                    max_approval = max_approval.max(*approval);
                }
                AgentEventKind::Grant {
                    grant,
                    scope,
                    allow,
                    by,
                    approval,
                    ..
                } => {
                    max_grant = max_grant.max(*grant);
                    grants.push(GrantInfo {
                        session,
                        grant: *grant,
                        scope: scope.clone(),
                        allow: *allow,
                        by: by.clone(),
                        approval: *approval,
                        at_ms: ev.at_ms,
                        used: 0,
                    });
                }
                AgentEventKind::GrantRevoked { grant, .. } => {
                    grants.retain(|g| g.grant != *grant);
                }
                _ => {}
            }
        }
        Restored {
            queue: queue.into_iter().collect(),
            open_approvals: open.into_iter().collect(),
            next_approval: max_approval + 1,
            grants,
            next_grant: max_grant + 1,
        }
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
             acp_session, subdir, model
         FROM agent_sessions ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let state: String = r.get(8)?;
        let mut state = AgentState::parse(&state).unwrap_or(AgentState::Failed);
        let mut detail: Option<String> = r.get(9)?;
        // A session on a local model whose record cannot be read must not start on the
        // agent's own (provider's) model instead: it fails, and says why.
        let model = match r.get::<_, Option<String>>(12)? {
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
            subdir: r.get(11)?,
            model,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests;
