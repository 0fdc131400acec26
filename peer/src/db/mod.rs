//! The host's database, `host/peer.db`: one owner for every table.
//!
//! [`Db::open`] opens the file once (mode 0600, WAL), brings its schema up to date
//! ([`schema`]), and starts the thread `peer-db`, which holds the only connection. Every query
//! of the host runs on that thread, in the order it was queued, so a read sees every write
//! queued before it and the async runtime never waits on the disk:
//!
//! - [`Db::call`] runs a closure on the connection and returns its result;
//! - [`Db::write`] runs a write and returns once it is committed;
//! - [`Db::queue`] queues a write and returns at once; a callback runs after the commit.
//!
//! Consecutive writes are committed in one transaction (at most [`BATCH`]). A bounded queue
//! ([`QUEUE`]) sits in front of the thread; when it is full the caller waits on a blocking
//! thread, never on the runtime. The thread ends when the last handle is dropped, after
//! writing what was queued.
//!
//! The tables' queries live with their users: devices and the audit log in
//! `host/devices.rs`, agent sessions and transcripts in `agent/store.rs`.

pub mod schema;

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use rusqlite::Connection;
use tokio::sync::oneshot;

/// Jobs queued for the database thread at most.
pub const QUEUE: usize = 4096;
/// Writes committed in one transaction at most.
pub const BATCH: usize = 512;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file could not be created or its mode set.
    #[error("database file: {0}")]
    Io(#[from] std::io::Error),
    /// The batch a write was in could not be committed.
    #[error("database commit: {0}")]
    Commit(String),
    /// A newer version of peer made the database.
    #[error("the database has schema version {found}; this peer knows up to {known}: upgrade peer")]
    Newer {
        /// The database's `user_version`.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The database thread is gone.
    #[error("the database thread stopped")]
    Gone,
}

/// A write: runs inside the batch's transaction.
type WriteFn = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;
/// Runs after a write's batch is committed, with the write's outcome.
pub type Done = Box<dyn FnOnce(Result<(), DbError>) + Send>;

enum Job {
    Call(Box<dyn FnOnce(&mut Connection) + Send>),
    Write(WriteFn, Option<Done>),
}

/// Handle to the database thread; cheap to clone.
#[derive(Clone)]
pub struct Db {
    tx: SyncSender<Job>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    /// Opens (or creates) the database at `path`, migrates it, and starts its thread.
    /// Blocking: call it off the async runtime.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = open_file(path)?;
        Self::start(conn)
    }

    fn start(conn: Connection) -> Result<Db, DbError> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("peer-db".into())
            .spawn(move || serve(conn, rx))?;
        Ok(Db { tx })
    }

    /// Queues a job without blocking the runtime: a full queue waits on a blocking thread.
    async fn put(&self, job: Job) -> Result<(), DbError> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(job).map_err(|_| DbError::Gone))
                    .await
                    .map_err(|_| DbError::Gone)?
            }
            Err(TrySendError::Disconnected(_)) => Err(DbError::Gone),
        }
    }

    /// Runs `f` on the connection, after everything queued before, and returns its result.
    /// `f` runs outside any batch: it opens its own transaction if it needs one.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DbError> {
        let (reply, rx) = oneshot::channel();
        self.put(Job::Call(Box::new(move |c| {
            let _ = reply.send(f(c));
        })))
        .await?;
        Ok(rx.await.map_err(|_| DbError::Gone)??)
    }

    /// Runs the write `f` (batched with its neighbours) and returns once it is committed.
    pub async fn write(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    ) -> Result<(), DbError> {
        let (reply, rx) = oneshot::channel();
        let done: Done = Box::new(move |r| {
            let _ = reply.send(r);
        });
        self.put(Job::Write(Box::new(f), Some(done))).await?;
        rx.await.map_err(|_| DbError::Gone)?
    }

    /// Queues the write `f` and returns once it is queued. `done` runs on the database thread
    /// once the write's batch is committed (or failed: failures are logged), in queue order.
    pub async fn queue(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
        done: Option<Done>,
    ) -> Result<(), DbError> {
        self.put(Job::Write(Box::new(f), done)).await
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let _ = self.call(|_| Ok(())).await;
    }
}

/// Opens the file: created 0600 (device records, the audit log and transcripts are private),
/// WAL, and the schema brought up to date.
fn open_file(path: &Path) -> Result<Connection, DbError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // Created with the right mode before SQLite sees it; an older file gets it too.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // What is deleted (forgotten terminal output, revoked devices' keys) is overwritten with
    // zeros, not left in the file's free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

fn serve(mut conn: Connection, rx: Receiver<Job>) {
    let mut batch: Vec<(WriteFn, Option<Done>)> = Vec::new();
    while let Ok(job) = rx.recv() {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Write(w, done) => {
                    batch.push((w, done));
                    // Gather the writes already queued into one transaction.
                    if batch.len() < BATCH {
                        next = rx.try_recv().ok();
                    }
                    if !matches!(next, Some(Job::Write(..))) {
                        commit(&mut conn, &mut batch);
                    }
                }
                Job::Call(f) => {
                    commit(&mut conn, &mut batch);
                    f(&mut conn);
                }
            }
        }
    }
    commit(&mut conn, &mut batch);
}

/// Runs the batch in one transaction; each write's `done` gets its own error, or the
/// commit's.
fn commit(conn: &mut Connection, batch: &mut Vec<(WriteFn, Option<Done>)>) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    let mut outcomes: Vec<(rusqlite::Result<()>, Option<Done>)> = Vec::with_capacity(n);
    let committed = match conn.transaction() {
        Ok(tx) => {
            for (w, done) in batch.drain(..) {
                outcomes.push((w(&tx), done));
            }
            tx.commit().map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    if !batch.is_empty() {
        // No transaction: each write on its own.
        tracing::error!("starting a transaction for {n} writes: {committed:?}");
        for (w, done) in batch.drain(..) {
            outcomes.push((w(conn), done));
        }
        return finish(outcomes, &Ok(()), n);
    }
    finish(outcomes, &committed, n);
}

fn finish(
    outcomes: Vec<(rusqlite::Result<()>, Option<Done>)>,
    committed: &Result<(), String>,
    n: usize,
) {
    if let Err(e) = committed {
        tracing::error!("committing {n} database writes: {e}");
    }
    for (res, done) in outcomes {
        let res = match (res, committed) {
            (Err(e), _) => {
                tracing::error!("database write: {e}");
                Err(DbError::Sqlite(e))
            }
            (Ok(()), Err(e)) => Err(DbError::Commit(e.clone())),
            (Ok(()), Ok(())) => Ok(()),
        };
        if let Some(done) = done {
            done(res);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn jobs_run_in_order_and_writes_are_batched() {
        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("peer.db");
        let db = Db::open(&path).expect("open");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        db.call(|c| c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
            .await
            .expect("create");
        let done = Arc::new(AtomicU64::new(0));
        for n in 0..2000u64 {
            let d = done.clone();
            db.queue(
                move |c| c.execute("INSERT INTO t (n) VALUES (?1)", [n]).map(|_| ()),
                Some(Box::new(move |r| {
                    if r.is_ok() {
                        // Callbacks run in queue order.
                        let _ = d.compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst);
                    }
                })),
            )
            .await
            .expect("queue");
        }
        // A read sees every write queued before it.
        let count: u64 = db
            .call(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
            .await
            .expect("count");
        assert_eq!(count, 2000);
        assert_eq!(done.load(Ordering::SeqCst), 2000);
        // A failing write fails alone; its neighbours are committed.
        let dup = db.write(|c| c.execute("INSERT INTO t (n) VALUES (1)", []).map(|_| ()));
        let ok = db.write(|c| c.execute("INSERT INTO t (n) VALUES (5000)", []).map(|_| ()));
        let (dup, ok) = tokio::join!(dup, ok);
        assert!(matches!(dup, Err(DbError::Sqlite(_))), "{dup:?}");
        ok.expect("the other write");
        db.flush().await;
        drop(db);
        let db = Db::open(&path).expect("reopen");
        let count: u64 = db
            .call(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
            .await
            .expect("count");
        assert_eq!(count, 2001);
    }
}
