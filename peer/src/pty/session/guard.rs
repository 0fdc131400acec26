//! Attachments' places in a session's output: each attached stream's position, which holds the
//! PTY reader back while it lags, and the places kept for clients that vanished.

use std::sync::Arc;
use std::time::Duration;

use super::{LAG_GRACE, PtySession, State};

/// An attachment's place in the output.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reader {
    /// The next offset it will send.
    pub(super) offset: u64,
    /// The client's token.
    pub(super) token: u64,
    /// Set once its client vanished: until when the place is kept.
    pub(super) parked: Option<std::time::Instant>,
    /// The same client attached again on another stream: this one holds nothing back any more
    /// and leaves no place behind.
    pub(super) superseded: bool,
    /// When it was registered.
    pub(super) since: std::time::Instant,
    /// Where the attachment started.
    pub(super) from: u64,
    /// What its client said it received (`Received`), if it says.
    pub(super) received: Option<u64>,
}

impl Reader {
    /// The first offset this reader's client may not have received: what it said it
    /// received, or else a guess, `in_flight` before what was sent.
    pub(super) fn keep_from(&self, in_flight: u64) -> u64 {
        match self.received {
            Some(r) => r.min(self.offset),
            None => self.offset.saturating_sub(in_flight),
        }
        .max(self.from)
    }

    /// Until when this reader may hold back a chunk read at `chunk_at`: a live one for
    /// [`LAG_GRACE`] per chunk (counted from its attaching, if that came later), a parked one
    /// until its place expires, a superseded one not at all.
    pub(super) fn holds_until(&self, chunk_at: std::time::Instant) -> Option<std::time::Instant> {
        match (self.superseded, self.parked) {
            (true, _) => None,
            (false, Some(until)) => Some(until),
            (false, None) => Some(chunk_at.max(self.since) + LAG_GRACE),
        }
    }
}

impl PtySession {
    /// Counts an attached stream that will send output from `from`; the guard reports its
    /// progress (see [`AttachGuard::advance`]) and uncounts it on drop. The same client's
    /// earlier places are taken over: a parked one is gone, a stream still open (its client
    /// moved to a new one before the old one ended) holds nothing back and parks nothing.
    pub fn attach_guard(self: &Arc<Self>, from: u64, token: u64) -> AttachGuard {
        let mut st = self.shared.state.lock();
        let id = register(&mut st, from, token);
        drop(st);
        // A reader waiting for the creator may go on if this attachment starts later.
        self.shared.room.notify_waiters();
        AttachGuard {
            session: self.clone(),
            id,
            parked: false,
        }
    }
}

/// Registers an attachment at `from` (under the state lock); returns its id.
pub(super) fn register(st: &mut State, from: u64, token: u64) -> u64 {
    st.attached += 1;
    st.creator_hold = None;
    let now = std::time::Instant::now();
    st.readers.retain(|_, r| match r.parked {
        Some(until) => r.token != token && until > now,
        None => true,
    });
    for r in st.readers.values_mut() {
        if r.token == token {
            r.superseded = true;
        }
    }
    let id = st.next_reader;
    st.next_reader += 1;
    st.readers.insert(
        id,
        Reader {
            offset: from,
            token,
            parked: None,
            superseded: false,
            since: now,
            from,
            received: None,
        },
    );
    id
}

/// An attached stream: counted while alive, and holding back the PTY reader while it lags.
#[derive(Debug)]
pub struct AttachGuard {
    session: Arc<PtySession>,
    id: u64,
    parked: bool,
}

impl AttachGuard {
    pub(super) fn new(session: Arc<PtySession>, id: u64) -> AttachGuard {
        AttachGuard {
            session,
            id,
            parked: false,
        }
    }

    /// Names this attachment's place (for [`PtySession::repaint`]).
    pub fn reader_id(&self) -> u64 {
        self.id
    }

    /// Records that everything before `offset` was sent.
    pub fn advance(&self, offset: u64) {
        self.update(|r| r.offset = offset);
    }

    /// Records that the client said it received everything before `offset`; from then on the
    /// place it keeps is exactly there.
    pub fn received(&self, offset: u64) {
        self.update(|r| r.received = r.received.max(Some(offset)));
    }

    /// Output resumes at `offset` after a gap notice or a picture: everything before it was
    /// sent (as [`AttachGuard::advance`]), and a client that says what it received needs
    /// none of it kept.
    pub fn resume_at(&self, offset: u64) {
        self.update(|r| {
            r.offset = offset;
            if let Some(received) = &mut r.received {
                *received = (*received).max(offset);
            }
        });
    }

    /// Changes this attachment's place, and wakes the PTY reader to look at it again.
    fn update(&self, f: impl FnOnce(&mut Reader)) {
        let shared = &self.session.shared;
        if let Some(r) = shared.state.lock().readers.get_mut(&self.id) {
            f(r);
        }
        shared.room.notify_waiters();
    }

    /// The client vanished without detaching: stop counting the attachment, but keep its
    /// place for `hold` ([`ATTACH_HOLD`]), or until the client attaches again, holding the
    /// process back as if the client were still reading. A place the client has already taken
    /// over with a newer attachment is simply gone.
    pub fn park(mut self, hold: Duration) {
        let shared = &self.session.shared;
        let mut st = shared.state.lock();
        st.attached = st.attached.saturating_sub(1);
        match st.readers.get_mut(&self.id) {
            Some(r) if !r.superseded => r.parked = Some(std::time::Instant::now() + hold),
            _ => {
                st.readers.remove(&self.id);
            }
        }
        drop(st);
        self.parked = true;
        shared.room.notify_waiters();
    }
}

impl Drop for AttachGuard {
    fn drop(&mut self) {
        if self.parked {
            return;
        }
        let shared = &self.session.shared;
        let mut st = shared.state.lock();
        st.attached = st.attached.saturating_sub(1);
        st.readers.remove(&self.id);
        drop(st);
        shared.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(offset: u64, from: u64, received: Option<u64>) -> Reader {
        Reader {
            offset,
            token: 1,
            parked: None,
            superseded: false,
            since: std::time::Instant::now(),
            from,
            received,
        }
    }

    #[test]
    fn a_reader_keeps_what_its_client_said_it_received_or_else_a_guess() {
        // No word from the client: `in_flight` before what was sent, not before the start.
        assert_eq!(reader(10_000, 0, None).keep_from(4096), 5904);
        assert_eq!(reader(10_000, 8000, None).keep_from(4096), 8000);
        // Its word, however far behind what was sent.
        assert_eq!(reader(10_000, 0, Some(100)).keep_from(4096), 100);
        // Never past what was sent, never before the start.
        assert_eq!(reader(10_000, 0, Some(20_000)).keep_from(4096), 10_000);
        assert_eq!(reader(10_000, 8000, Some(100)).keep_from(4096), 8000);
    }
}
