//! The host's table of PTY sessions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::broadcast;
use tracing::warn;

use super::events::{EVENTS, PtyEvent};
use super::keeper::Keepers;
use super::session::{PtySession, SessionConfig, SpawnError};
use crate::proto::{CreateSession, SessionInfo};

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
    /// Where new sessions' keepers run (`None`: sessions are this process's own).
    keepers: Option<Keepers>,
}

impl SessionManager {
    /// A manager whose sessions keep `buffer_bytes` of output and `scrollback` lines in their
    /// screen model each.
    pub fn new(buffer_bytes: usize, scrollback: usize, max_sessions: usize) -> Self {
        let (events, _) = broadcast::channel(EVENTS);
        SessionManager {
            next_id: AtomicU64::new(1),
            sessions: Mutex::new(BTreeMap::new()),
            config: SessionConfig {
                buffer_bytes,
                scrollback,
                events,
            },
            max_sessions,
            keepers: None,
        }
    }

    /// Starts new sessions under keepers, so that they outlive this process.
    pub fn with_keepers(mut self, keepers: Keepers) -> Self {
        self.keepers = Some(keepers);
        self
    }

    /// Takes over every session whose keeper outlived an earlier host; returns how many.
    pub async fn adopt_all(&self) -> usize {
        let Some(keepers) = self.keepers.clone() else {
            return 0;
        };
        let (kept, next) = tokio::task::spawn_blocking(move || keepers.adopt_all())
            .await
            .unwrap_or_default();
        self.reserve_ids(next);
        let mut adopted = 0;
        for k in kept {
            let id = k.hello.id;
            match PtySession::adopt(k, &self.config, false) {
                Ok(s) => {
                    self.table().insert(id, s);
                    adopted += 1;
                }
                Err(e) => warn!(session = id, "cannot adopt a kept session: {e}"),
            }
        }
        adopted
    }

    /// Host shutdown: hands every kept session back to its keeper and kills the others.
    pub async fn release_all(&self) {
        let sessions: Vec<_> = self.table().values().cloned().collect();
        let mut stops = tokio::task::JoinSet::new();
        for s in sessions {
            stops.spawn(async move {
                if s.is_kept() {
                    s.release().await;
                } else {
                    s.kill().await;
                }
            });
        }
        stops.join_all().await;
    }

    /// Makes the next new session's id at least `next` (ids of sessions remembered from an
    /// earlier run are not given out again).
    pub fn reserve_ids(&self, next: u64) {
        self.next_id.fetch_max(next, Ordering::Relaxed);
    }

    /// Events of every session, from now on.
    pub fn events(&self) -> broadcast::Receiver<PtyEvent> {
        self.config.events.subscribe()
    }

    /// The sender sessions report on (for code that watches a session's output and has
    /// something to say about it, like [`PtyEvent::Bell`]).
    pub fn event_sender(&self) -> broadcast::Sender<PtyEvent> {
        self.config.events.clone()
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
        let keepers = self.keepers.clone();
        let session = tokio::task::spawn_blocking(move || match &keepers {
            Some(k) => PtySession::spawn_kept(id, &req, &config, k),
            None => PtySession::spawn(id, &req, &config),
        })
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ExitInfo, WinSize};

    #[tokio::test]
    async fn a_session_that_ends_says_so_on_the_event_channel() {
        let m = SessionManager::new(64 * 1024, 100, 4);
        let mut events = m.events();
        let s = m
            .create(CreateSession {
                name: None,
                command: ["sh", "-c", "exit 3"].map(String::from).to_vec(),
                cwd: Some("/".into()),
                env: vec![],
                size: WinSize::default(),
                hold_output: false,
            })
            .await
            .expect("create");
        let ev = tokio::time::timeout(std::time::Duration::from_secs(20), events.recv())
            .await
            .expect("in time")
            .expect("event");
        assert_eq!(
            ev,
            PtyEvent::Exited {
                session: s.id(),
                what: "sh -c exit 3".into(),
                status: ExitInfo {
                    code: 3,
                    signal: None
                }
            }
        );
        assert_eq!(
            s.exit().map(|e| e.code),
            Some(3),
            "recorded before it is told"
        );
    }

    #[tokio::test]
    async fn a_bell_outside_an_osc_string_is_an_event_and_a_screen_fact() {
        let m = SessionManager::new(64 * 1024, 100, 4);
        let mut events = m.events();
        // A title ended by BEL (no bell), then a bell, then the end.
        let script = "printf '\\033]0;t\\007x\\007'; sleep 0.5";
        let s = m
            .create(CreateSession {
                name: None,
                command: ["sh", "-c", script].map(String::from).to_vec(),
                cwd: Some("/".into()),
                env: vec![],
                size: WinSize::default(),
                hold_output: false,
            })
            .await
            .expect("create");
        let mut seen = Vec::new();
        loop {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(20), events.recv())
                .await
                .expect("in time")
                .expect("event");
            let end = matches!(ev, PtyEvent::Exited { .. });
            seen.push(ev);
            if end {
                break;
            }
        }
        assert_eq!(seen[0], PtyEvent::Bell { session: s.id() }, "{seen:?}");
        assert_eq!(seen.len(), 2, "one bell: {seen:?}");
        let facts = s.info().screen;
        assert_eq!(facts.bells, 1);
        assert_eq!(facts.title.as_deref(), Some("t"));
        assert_eq!(facts.last_line.as_deref(), Some("x"));
        assert!(facts.last_bell_ms > 0);
    }
}
