//! Who is looking at what: a device is looking at a session while it has an attachment to it
//! and its app has not said it went to the background. Notices about that session are then held
//! for it instead of sent ([`HOLD`]).
//!
//! An attachment that ends cleanly (the client detached: it left the session) drops what was
//! held; one that ends otherwise (the connection died: a phone whose screen went off is the
//! common case) sends it, as does the app saying it went to the background.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::Cmd;
use crate::host::devices::DeviceKey;
use crate::proto::NoticeSession;

/// How long a notice held for a device that looks at its session is kept: if the device stops
/// looking within this without having left the session, it gets the notice then. Longer than
/// the 15 s a host waits before it drops a silent browser.
pub const HOLD: Duration = Duration::from_secs(30);
/// A device that left a session (detached) still counts as looking at it this long: it saw
/// the session end, or the approval card, just before it left.
pub const LINGER: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct Table {
    attached: HashMap<(DeviceKey, NoticeSession), u32>,
    hidden: HashSet<DeviceKey>,
    /// When a device last detached from a session.
    left: HashMap<(DeviceKey, NoticeSession), Instant>,
}

/// Whether a device looks at a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looking {
    /// It is attached to it and its app is in front: hold notices about it.
    Now,
    /// It detached from it within [`LINGER`]: it saw what just happened there.
    JustLeft,
    /// No.
    No,
}

/// The table, shared by the attach loops and the notifier.
#[derive(Debug, Default)]
pub struct Presence {
    table: Mutex<Table>,
}

impl Presence {
    /// Whether `device` is looking at `session` now, or left it within [`LINGER`].
    pub fn looking(&self, device: &DeviceKey, session: NoticeSession) -> Looking {
        let t = self.table.lock();
        let key = (*device, session);
        if t.hidden.contains(device) {
            Looking::No
        } else if t.attached.get(&key).is_some_and(|n| *n > 0) {
            Looking::Now
        } else if t.left.get(&key).is_some_and(|at| at.elapsed() < LINGER) {
            Looking::JustLeft
        } else {
            Looking::No
        }
    }

    /// Whether `device` has an attachment to `session` and its app is visible.
    pub fn attached_and_visible(&self, device: &DeviceKey, session: NoticeSession) -> bool {
        let t = self.table.lock();
        !t.hidden.contains(device) && t.attached.get(&(*device, session)).is_some_and(|n| *n > 0)
    }

    /// The device's app says whether it is visible.
    pub fn set_visible(&self, device: DeviceKey, visible: bool) {
        let mut t = self.table.lock();
        if visible {
            t.hidden.remove(&device);
        } else {
            t.hidden.insert(device);
        }
    }

    /// Forgets a device (revoked).
    pub fn forget(&self, device: &DeviceKey) {
        let mut t = self.table.lock();
        t.hidden.remove(device);
        t.attached.retain(|(d, _), _| d != device);
        t.left.retain(|(d, _), _| d != device);
    }

    /// Counts an attachment of `device` to `session` until the guard drops.
    pub(crate) fn attach(
        self: &Arc<Self>,
        device: DeviceKey,
        session: NoticeSession,
        tell: mpsc::Sender<Cmd>,
    ) -> PresenceGuard {
        *self
            .table
            .lock()
            .attached
            .entry((device, session))
            .or_default() += 1;
        PresenceGuard {
            presence: self.clone(),
            device,
            session,
            clean: false,
            tell,
        }
    }
}

/// An attachment, counted while alive. Dropped without [`PresenceGuard::left`], it counts as
/// lost (the notices held for it are sent).
#[derive(Debug)]
pub struct PresenceGuard {
    presence: Arc<Presence>,
    device: DeviceKey,
    session: NoticeSession,
    clean: bool,
    tell: mpsc::Sender<Cmd>,
}

impl PresenceGuard {
    /// The client detached on purpose: it left the session, having seen it.
    pub fn left(mut self) {
        self.clean = true;
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        {
            let mut t = self.presence.table.lock();
            let key = (self.device, self.session);
            if let Some(n) = t.attached.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    t.attached.remove(&key);
                }
            }
            if self.clean {
                t.left.retain(|_, at| at.elapsed() < LINGER);
                t.left.insert(key, Instant::now());
            }
        }
        // Best effort: if the notifier's queue is full, held notices just expire.
        let _ = self.tell.try_send(Cmd::Away {
            device: self.device,
            session: Some(self.session),
            lost: !self.clean,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looking_needs_an_attachment_and_a_visible_app() {
        let p = Arc::new(Presence::default());
        let (tx, mut rx) = mpsc::channel(8);
        let s = NoticeSession::Agent(1);
        assert_eq!(p.looking(&[1; 32], s), Looking::No);
        let a = p.attach([1; 32], s, tx.clone());
        let b = p.attach([1; 32], s, tx.clone());
        assert_eq!(p.looking(&[1; 32], s), Looking::Now);
        assert_eq!(p.looking(&[2; 32], s), Looking::No);
        assert_eq!(p.looking(&[1; 32], NoticeSession::Pty(1)), Looking::No);
        p.set_visible([1; 32], false);
        assert_eq!(p.looking(&[1; 32], s), Looking::No);
        p.set_visible([1; 32], true);
        drop(b);
        assert!(matches!(rx.try_recv(), Ok(Cmd::Away { lost: true, .. })));
        assert!(
            p.attached_and_visible(&[1; 32], s),
            "one attachment is left"
        );
        a.left();
        assert!(matches!(rx.try_recv(), Ok(Cmd::Away { lost: false, .. })));
        assert!(!p.attached_and_visible(&[1; 32], s));
        // Having just left, it saw what happened there.
        assert_eq!(p.looking(&[1; 32], s), Looking::JustLeft);
        let c = p.attach([1; 32], NoticeSession::Pty(9), tx);
        drop(c);
        assert_eq!(
            p.looking(&[1; 32], NoticeSession::Pty(9)),
            Looking::No,
            "lost is not left"
        );
    }
}
