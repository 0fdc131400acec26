//! Ended PTY sessions, remembered in `peer.db` (table `pty_sessions`): their exit status, end
//! time, command, name, directory, screen facts and last output ([`TAIL`] bytes), so that they
//! stay listed — and can be attached to, to read what they printed last — across host restarts
//! until someone forgets them (`KillSession`). The newest `keep` are kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, params};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, warn};

use super::streams::{AttachEnd, FrameSink};
use crate::db::{Db, DbError};
use crate::proto::{
    Attach, Attached, ExitInfo, Exited, Frame, Gap, MAX_CHUNK, Output, ScreenFacts, SessionInfo,
    SessionState, WinSize,
};
use crate::pty::{PtyEvent, PtySession, SessionManager};

/// Output kept per ended session: its last bytes.
pub const TAIL: usize = 64 * 1024;
/// Ended sessions kept by default.
pub const DEFAULT_KEEP: usize = 50;

/// An ended session as remembered.
#[derive(Debug)]
pub(crate) struct EndedSession {
    pub(crate) info: SessionInfo,
    /// The last output bytes; they end at `info.output_end`.
    pub(crate) tail: Vec<u8>,
}

/// The remembered ended sessions: a copy of the table in memory.
#[derive(Debug)]
pub(crate) struct Ended {
    db: Db,
    keep: usize,
    rows: Mutex<BTreeMap<u64, Arc<EndedSession>>>,
}

impl Ended {
    /// Loads the table, keeping the newest `keep` rows (at least one).
    pub(crate) async fn load(db: Db, keep: usize) -> Result<Ended, DbError> {
        let keep = keep.max(1);
        let rows = db
            .call(move |c| {
                trim(c, keep)?;
                read_all(c)
            })
            .await?;
        Ok(Ended {
            db,
            keep,
            rows: Mutex::new(rows.into_iter().map(|r| (r.info.id, Arc::new(r))).collect()),
        })
    }

    /// One past the highest remembered id (1 when none).
    pub(crate) fn next_id(&self) -> u64 {
        self.rows.lock().keys().next_back().map_or(1, |id| id + 1)
    }

    /// A remembered session.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<EndedSession>> {
        self.rows.lock().get(&id).cloned()
    }

    /// The remembered sessions the live table does not hold, oldest id first.
    pub(crate) fn list_except(&self, live: &[SessionInfo]) -> Vec<SessionInfo> {
        self.rows
            .lock()
            .values()
            .filter(|r| !live.iter().any(|l| l.id == r.info.id))
            .map(|r| r.info.clone())
            .collect()
    }

    /// Writes `session` down if it has ended (again: the row is replaced).
    pub(crate) async fn remember(&self, session: &PtySession) {
        let mut info = session.info();
        let SessionState::Exited(_) = info.state else {
            return;
        };
        // A background process may still print after the exit: the kept output and its end
        // offset are read together.
        let (tail, end) = session.tail_with_end(TAIL);
        info.output_end = end;
        let id = info.id;
        let row = Arc::new(EndedSession { info, tail });
        self.rows.lock().insert(id, row.clone());
        let keep = self.keep;
        let res = self
            .db
            .call(move |c| {
                insert(c, &row)?;
                trim(c, keep)
            })
            .await;
        match res {
            Ok(gone) => {
                let mut rows = self.rows.lock();
                for id in gone {
                    rows.remove(&id);
                }
                debug!(session = id, "ended session remembered");
            }
            Err(e) => warn!(session = id, "cannot remember an ended session: {e}"),
        }
    }

    /// Forgets session `id`; whether it was remembered.
    pub(crate) async fn forget(&self, id: u64) -> Result<bool, DbError> {
        let known = self.rows.lock().remove(&id).is_some();
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        let deleted = self
            .db
            .call(move |c| c.execute("DELETE FROM pty_sessions WHERE id = ?1", [id]))
            .await?;
        Ok(known || deleted > 0)
    }

    /// Remembers every ended session of `sessions` (host shutdown: the ones it just killed, and
    /// again those whose row may still be on its way to disk). With `only_new` (events were
    /// missed), those already remembered are left alone, so a flood of other events that keeps
    /// the listener behind costs no disk writes.
    pub(crate) async fn remember_all(&self, sessions: &SessionManager, only_new: bool) {
        for info in sessions.list() {
            if only_new && self.rows.lock().contains_key(&info.id) {
                continue;
            }
            if let (SessionState::Exited(_), Ok(s)) = (&info.state, sessions.get(info.id)) {
                self.remember(&s).await;
            }
        }
    }

    /// Remembers each session as it ends, until `stop`.
    pub(crate) async fn follow(
        self: Arc<Self>,
        sessions: Arc<SessionManager>,
        mut events: tokio::sync::broadcast::Receiver<PtyEvent>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                e = events.recv() => e,
            };
            match event {
                Ok(PtyEvent::Exited { session, .. }) => {
                    if let Ok(s) = sessions.get(session) {
                        self.remember(&s).await;
                    }
                }
                Ok(_) => {}
                // Events were missed: look at every session instead.
                Err(RecvError::Lagged(_)) => self.remember_all(&sessions, true).await,
                Err(RecvError::Closed) => return,
            }
        }
    }
}

/// Serves an attachment to a remembered session: `Attached`, a `Gap` if the client asked for
/// output older than what is kept, the kept output from where the client is, then `Exited`.
pub(crate) async fn serve_attach<S: FrameSink>(
    ended: &EndedSession,
    attach: &Attach,
    send: &mut S,
) -> Result<(), AttachEnd> {
    let end = ended.info.output_end;
    let start = end.saturating_sub(ended.tail.len() as u64);
    let asked = attach.from_offset;
    // "Only new output" (or a picture) of a session that has ended: what it printed last.
    let from = if asked == u64::MAX {
        start
    } else {
        asked.min(end)
    };
    let gone = |r: Result<(), ()>| r.map_err(|()| AttachEnd::Gone);
    gone(
        send.send(Frame::Attached(Attached {
            info: ended.info.clone(),
            start_offset: from.max(start),
            input_acked: 0,
        }))
        .await,
    )?;
    if from < start {
        gone(send.send(Frame::Gap(Gap { from, to: start })).await)?;
    }
    let skip = usize::try_from(from.max(start) - start).unwrap_or(usize::MAX);
    let mut offset = from.max(start);
    for chunk in ended.tail.get(skip..).unwrap_or_default().chunks(MAX_CHUNK) {
        gone(
            send.send(Frame::Output(Output {
                offset,
                data: chunk.to_vec(),
            }))
            .await,
        )?;
        offset += chunk.len() as u64;
    }
    let status = match &ended.info.state {
        SessionState::Exited(e) => e.clone(),
        SessionState::Running => ExitInfo {
            code: 255,
            signal: None,
        },
    };
    gone(
        send.send(Frame::Exited(Exited {
            status,
            end_offset: end,
        }))
        .await,
    )
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn insert(c: &Connection, r: &EndedSession) -> rusqlite::Result<()> {
    let i = &r.info;
    let (code, signal) = match &i.state {
        SessionState::Exited(e) => (e.code, e.signal.clone()),
        SessionState::Running => (255, None),
    };
    c.execute(
        "INSERT OR REPLACE INTO pty_sessions (id, name, command, cwd, created_at, ended_at,
         exit_code, signal, cols, rows, output_end, facts, tail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            to_i64(i.id),
            i.name,
            json(&i.command),
            i.cwd,
            to_i64(i.created_at_ms),
            to_i64(i.ended_at_ms.unwrap_or_else(crate::util::now_ms)),
            code,
            signal,
            i.size.cols,
            i.size.rows,
            to_i64(i.output_end),
            json(&i.screen),
            r.tail,
        ],
    )?;
    Ok(())
}

/// JSON text of the few values kept as JSON.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Deletes all but the newest `keep` rows; returns the ids it deleted.
fn trim(c: &Connection, keep: usize) -> rusqlite::Result<Vec<u64>> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let gone: Vec<i64> = c
        .prepare("SELECT id FROM pty_sessions ORDER BY ended_at DESC, id DESC LIMIT -1 OFFSET ?1")?
        .query_map([keep], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &gone {
        c.execute("DELETE FROM pty_sessions WHERE id = ?1", [id])?;
    }
    Ok(gone.into_iter().map(|id| id as u64).collect())
}

fn read_all(c: &Connection) -> rusqlite::Result<Vec<EndedSession>> {
    let mut stmt = c.prepare(
        "SELECT id, name, command, cwd, created_at, ended_at, exit_code, signal, cols, rows,
         output_end, facts, tail FROM pty_sessions ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let command: String = r.get(2)?;
        let facts: String = r.get(11)?;
        let ended_at: i64 = r.get(5)?;
        let tail: Vec<u8> = r.get(12)?;
        let output_end = (r.get::<_, i64>(10)? as u64).max(tail.len() as u64);
        Ok(EndedSession {
            info: SessionInfo {
                id: r.get::<_, i64>(0)? as u64,
                name: r.get(1)?,
                command: serde_json::from_str(&command).unwrap_or_default(),
                cwd: r.get(3)?,
                created_at_ms: r.get::<_, i64>(4)? as u64,
                state: SessionState::Exited(ExitInfo {
                    code: r.get(6)?,
                    signal: r.get(7)?,
                }),
                size: WinSize {
                    cols: r.get(8)?,
                    rows: r.get(9)?,
                },
                attached: 0,
                output_end,
                screen: serde_json::from_str::<ScreenFacts>(&facts).unwrap_or_default(),
                last_activity_ms: ended_at as u64,
                ended_at_ms: Some(ended_at as u64),
            },
            tail,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests;
