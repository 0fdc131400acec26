//! The database's schema and its migrations, numbered by SQLite's `PRAGMA user_version`.
//!
//! | version | what |
//! | --- | --- |
//! | 0 | nothing yet, or a database made before versions were counted (the tables of version 1, perhaps without `devices.psk`) |
//! | 1 | tables `devices`, `audit`, `agent_sessions`, `agent_events` |
//! | 2 | `agent_events` rows hold typed events: `kind` is the variant's snake_case name, `data` the JSON of its fields (earlier: the camelCase JSON objects of protocol version 1) |
//! | 3 | `agent_sessions.model`: the local model server and model a session runs on (JSON), if any |
//! | 4 | table `push_subscriptions`: a device's Web Push subscription and the VAPID key to sign with (`host/push`) |
//! | 5 | `agent_sessions.subdir`: the directory inside the worktree the agent works in (`''`: the worktree); an index of `audit` by time |
//! | 6 | table `pty_sessions`: ended PTY sessions, with their exit status and last output (`host/ended.rs`) |
//!
//! Each step runs in one transaction with the version it reaches, so a failed migration
//! leaves the database as it was. A database of a newer version is refused.

use rusqlite::{Connection, Transaction, params};
use tracing::{info, warn};

use super::DbError;

/// The newest schema version.
pub const VERSION: u32 = 6;

const V1: &str = "
CREATE TABLE IF NOT EXISTS devices (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    paired_at  INTEGER NOT NULL,
    last_seen  INTEGER,
    revoked_at INTEGER,
    psk        BLOB
);
CREATE TABLE IF NOT EXISTS audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    device BLOB,
    event  TEXT NOT NULL,
    detail TEXT NOT NULL
);
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

const V4: &str = "
CREATE TABLE IF NOT EXISTS push_subscriptions (
    device        BLOB PRIMARY KEY,
    endpoint      TEXT NOT NULL,
    p256dh        BLOB NOT NULL,
    auth          BLOB NOT NULL,
    vapid_private BLOB NOT NULL,
    vapid_public  BLOB NOT NULL,
    kinds         TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
";

const V6: &str = "
CREATE TABLE IF NOT EXISTS pty_sessions (
    id         INTEGER PRIMARY KEY,
    name       TEXT,
    command    TEXT NOT NULL,
    cwd        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ended_at   INTEGER NOT NULL,
    exit_code  INTEGER NOT NULL,
    signal     TEXT,
    cols       INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    output_end INTEGER NOT NULL,
    facts      TEXT NOT NULL,
    tail       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS pty_sessions_ended ON pty_sessions (ended_at);
";

/// Rows converted per query in the migration to version 2.
const PAGE: i64 = 1000;

/// Brings the database to [`VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > VERSION {
        return Err(DbError::Newer {
            found,
            known: VERSION,
        });
    }
    if found < 1 {
        step(conn, 1, v1)?;
    }
    if found < 2 {
        step(conn, 2, v2)?;
    }
    if found < 3 {
        step(conn, 3, v3)?;
    }
    if found < 4 {
        step(conn, 4, |c| Ok(c.execute_batch(V4)?))?;
    }
    if found < 5 {
        step(conn, 5, v5)?;
    }
    if found < 6 {
        step(conn, 6, |c| Ok(c.execute_batch(V6)?))?;
    }
    Ok(())
}

fn step(
    conn: &mut Connection,
    to: u32,
    f: fn(&Transaction<'_>) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let tx = conn.transaction()?;
    f(&tx)?;
    tx.pragma_update(None, "user_version", to)?;
    tx.commit()?;
    Ok(())
}

fn has_table(c: &Connection, name: &str) -> rusqlite::Result<bool> {
    c.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .exists([name])
}

/// Version 1: the tables; a database of an earlier peer (no `user_version`) is adopted as it
/// is, with the column later versions added.
fn v1(c: &Transaction<'_>) -> Result<(), DbError> {
    let adopted = has_table(c, "devices")? || has_table(c, "agent_sessions")?;
    c.execute_batch(V1)?;
    let has_psk = c
        .prepare("SELECT 1 FROM pragma_table_info('devices') WHERE name = 'psk'")?
        .exists([])?;
    if !has_psk {
        c.execute_batch("ALTER TABLE devices ADD COLUMN psk BLOB")?;
    }
    if adopted {
        info!("adopted a database made by an earlier version of peer");
    }
    Ok(())
}

/// Version 2: transcripts hold typed events. Rows of the earlier JSON form are converted;
/// one that cannot be is left as it was (and read as a warning).
fn v2(c: &Transaction<'_>) -> Result<(), DbError> {
    let (mut converted, mut kept) = (0u64, 0u64);
    let mut after: (i64, i64) = (i64::MIN, i64::MIN);
    loop {
        let rows: Vec<(i64, i64, String, String)> = {
            let mut stmt = c.prepare(
                "SELECT session, seq, kind, data FROM agent_events WHERE (session, seq) > (?1, ?2)
                 ORDER BY session, seq LIMIT ?3",
            )?;
            stmt.query_map(params![after.0, after.1, PAGE], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let Some(last) = rows.last() else { break };
        after = (last.0, last.1);
        let mut update = c.prepare_cached(
            "UPDATE agent_events SET kind = ?1, data = ?2 WHERE session = ?3 AND seq = ?4",
        )?;
        for (session, seq, kind, data) in rows {
            let event = serde_json::from_str(&data)
                .ok()
                .and_then(|v| crate::agent::view::from_view(&kind, &v));
            match event {
                Some(ev) => {
                    let (kind, data) = crate::agent::store::encode_event(&ev);
                    update.execute(params![kind, data, session, seq])?;
                    converted += 1;
                }
                None => {
                    warn!(
                        session,
                        seq, kind, "an agent event of an unknown form is kept as it is"
                    );
                    kept += 1;
                }
            }
        }
    }
    if converted + kept > 0 {
        info!(
            converted,
            kept, "agent transcripts converted to typed events"
        );
    }
    Ok(())
}

/// Version 3: a session may run on a local model server; which one is kept with it.
fn v3(c: &Transaction<'_>) -> Result<(), DbError> {
    c.execute_batch("ALTER TABLE agent_sessions ADD COLUMN model TEXT")?;
    Ok(())
}

/// Version 5: an agent session may work in a directory inside its worktree; audit queries by
/// time (`peer audit --since`).
fn v5(c: &Transaction<'_>) -> Result<(), DbError> {
    let has = c
        .prepare("SELECT 1 FROM pragma_table_info('agent_sessions') WHERE name = 'subdir'")?
        .exists([])?;
    if !has {
        c.execute_batch("ALTER TABLE agent_sessions ADD COLUMN subdir TEXT NOT NULL DEFAULT ''")?;
    }
    c.execute_batch("CREATE INDEX IF NOT EXISTS audit_at ON audit (at)")?;
    Ok(())
}

#[cfg(test)]
mod tests;
