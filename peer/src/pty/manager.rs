//! The host's table of PTY sessions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::broadcast;

use super::session::{PtySession, SessionConfig, SpawnError};
use crate::proto::{CreateSession, SessionEvent, SessionInfo};

/// Session events kept for a listener that lags (then it misses the oldest).
const EVENT_QUEUE: usize = 256;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No session has this id.
    #[error("no session {0}")]
    NotFound(u64),
    /// The host runs as many sessions as it allows.
    #[error("the host already has {0} sessions; kill one first")]
    TooMany(usize),
    /// Starting the process failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// All PTY sessions of a host, running and ended.
#[derive(Debug)]
pub struct SessionManager {
    next_id: AtomicU64,
    sessions: Mutex<BTreeMap<u64, Arc<PtySession>>>,
    config: SessionConfig,
    max_sessions: usize,
}

impl SessionManager {
    /// A manager whose sessions keep `buffer_bytes` of output and `scrollback` lines in their
    /// screen model each.
    pub fn new(buffer_bytes: usize, scrollback: usize, max_sessions: usize) -> Self {
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        SessionManager {
            next_id: AtomicU64::new(1),
            sessions: Mutex::new(BTreeMap::new()),
            config: SessionConfig {
                buffer_bytes,
                scrollback,
                events,
            },
            max_sessions,
        }
    }

    /// What happens in sessions from now on: bells, title changes, exits (for
    /// notifications). A listener that falls more than 256 events behind misses the oldest.
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        self.config.events.subscribe()
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<PtySession>>> {
        self.sessions.lock()
    }

    /// Starts a session (fork and exec run off the async runtime).
    pub async fn create(&self, req: CreateSession) -> Result<Arc<PtySession>, SessionError> {
        let count = self.table().len();
        if count >= self.max_sessions {
            return Err(SessionError::TooMany(count));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let config = self.config.clone();
        let session = tokio::task::spawn_blocking(move || PtySession::spawn(id, &req, &config))
            .await
            .map_err(|e| SpawnError::Pty(format!("spawn task failed: {e}")))??;
        self.table().insert(id, session.clone());
        Ok(session)
    }

    /// A session by id.
    pub fn get(&self, id: u64) -> Result<Arc<PtySession>, SessionError> {
        self.table()
            .get(&id)
            .cloned()
            .ok_or(SessionError::NotFound(id))
    }

    /// All sessions, oldest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        let sessions: Vec<_> = self.table().values().cloned().collect();
        sessions.iter().map(|s| s.info()).collect()
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Kills a running session, or forgets an ended one.
    pub async fn kill(&self, id: u64) -> Result<(), SessionError> {
        let session = self.get(id)?;
        if session.exit().is_some() {
            self.table().remove(&id);
            return Ok(());
        }
        session.kill().await;
        Ok(())
    }

    /// Kills every running session at once (host shutdown).
    pub async fn kill_all(&self) {
        let sessions: Vec<_> = self.table().values().cloned().collect();
        let mut kills = tokio::task::JoinSet::new();
        for s in sessions {
            kills.spawn(async move { s.kill().await });
        }
        kills.join_all().await;
    }
}
