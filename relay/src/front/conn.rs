//! Connection admission: per-IP token buckets for new TCP connections, global and per-IP caps
//! on open ones, and a handle on every open connection so stopping can close it.
//!
//! Descriptors: an open connection costs its socket; until the connection is owned by a task
//! this server can stop (a relay client registered with iroh, a route's task), it also costs a
//! duplicate used to force-close it (see [`KillSwitch`]).

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, Weak,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::time::Instant;
use tracing::debug;

use super::buckets::{IpKey, RateBuckets};
use super::limits::Limits;

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server is stopping.
    ShuttingDown,
    /// `max_connections` are open.
    GlobalCap,
    /// `max_connections_per_ip` are open from this IP.
    PerIpCap,
    /// This IP opened connections faster than `new_connections_per_ip` allows.
    RateLimited,
    /// The process is at the end of its descriptor reserve (see `Limits::fd_reserve`).
    FdLimit,
}

#[derive(Debug, Default)]
struct TrackerState {
    closed: bool,
    next_id: u64,
    open: usize,
    per_ip: HashMap<IpKey, usize>,
    buckets: Option<RateBuckets<IpKey>>,
    slots: HashMap<u64, Weak<SlotInner>>,
}

/// Admits TCP connections and tracks the open ones.
#[derive(Debug)]
pub(crate) struct ConnTracker {
    limits: Limits,
    state: Mutex<TrackerState>,
}

impl ConnTracker {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        let state = TrackerState {
            buckets: limits.new_connections_per_ip.map(RateBuckets::new),
            ..TrackerState::default()
        };
        Arc::new(Self {
            limits,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides whether a new connection from `peer` may be served; if so, returns its slot,
    /// which counts it as open until the slot (and all its clones) are dropped.
    ///
    /// `force_closable`: keep a duplicate of the socket so [`Slot::kill`] works after an
    /// upgrade (not needed for a connection that will never be upgraded).
    pub(crate) fn admit(
        self: &Arc<Self>,
        stream: &tokio::net::TcpStream,
        peer: SocketAddr,
        force_closable: bool,
    ) -> Result<Slot, Refusal> {
        let key = IpKey::of(peer.ip());
        let now = Instant::now();
        let mut state = self.state();
        if state.closed {
            return Err(Refusal::ShuttingDown);
        }
        if let Some(buckets) = &mut state.buckets
            && !buckets.take(key, now)
        {
            return Err(Refusal::RateLimited);
        }
        if self
            .limits
            .max_connections
            .is_some_and(|max| state.open >= max)
        {
            return Err(Refusal::GlobalCap);
        }
        let from_ip = state.per_ip.get(&key).copied().unwrap_or(0);
        if self
            .limits
            .max_connections_per_ip
            .is_some_and(|max| from_ip >= max)
        {
            return Err(Refusal::PerIpCap);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open += 1;
        *state.per_ip.entry(key).or_insert(0) += 1;
        let inner = Arc::new(SlotInner {
            id,
            peer,
            key,
            tracker: self.clone(),
            kill: if force_closable {
                KillSwitch::new(stream)
            } else {
                KillSwitch::none()
            },
            relay: AtomicU8::new(RELAY_NONE),
        });
        state.slots.insert(id, Arc::downgrade(&inner));
        Ok(Slot(inner))
    }

    fn release(&self, id: u64, key: IpKey) {
        let mut state = self.state();
        state.open = state.open.saturating_sub(1);
        state.slots.remove(&id);
        if let Some(count) = state.per_ip.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.per_ip.remove(&key);
            }
        }
    }

    /// The slot of the open connection `id`, if it is still open.
    pub(crate) fn slot(&self, id: u64) -> Option<Slot> {
        self.state()
            .slots
            .get(&id)
            .and_then(Weak::upgrade)
            .map(Slot)
    }

    /// Number of open connections (including ones upgraded to relay clients or routes).
    pub(crate) fn open_count(&self) -> usize {
        self.state().open
    }

    /// Refuses every new connection from now on.
    pub(crate) fn close(&self) {
        self.state().closed = true;
    }

    /// Shuts down every open connection's socket, whoever holds it.
    pub(crate) fn kill_all(&self) {
        let slots: Vec<_> = self
            .state()
            .slots
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for slot in slots {
            slot.kill.kill();
        }
    }
}

const RELAY_NONE: u8 = 0;
const RELAY_UPGRADING: u8 = 1;
const RELAY_ADMITTED: u8 = 2;

/// One open TCP connection, counted against the limits while any clone of it lives.
///
/// The connection task holds one; a request to `/relay` carries another into iroh's relay
/// handler (as a request extension) and from there into the access control, which keeps it
/// until the relay client disconnects; routes keep theirs in [`super::RequestContext`].
#[derive(Clone)]
pub(crate) struct Slot(Arc<SlotInner>);

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("id", &self.0.id)
            .field("peer", &self.0.peer)
            .finish()
    }
}

struct SlotInner {
    id: u64,
    peer: SocketAddr,
    key: IpKey,
    tracker: Arc<ConnTracker>,
    kill: KillSwitch,
    relay: AtomicU8,
}

impl fmt::Debug for SlotInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotInner")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Drop for SlotInner {
    fn drop(&mut self) {
        self.tracker.release(self.id, self.key);
    }
}

impl Slot {
    pub(crate) fn id(&self) -> u64 {
        self.0.id
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.0.peer
    }

    /// Shuts the connection's socket down (both directions), if it still can.
    pub(crate) fn kill(&self) {
        self.0.kill.kill();
    }

    /// The connection is now owned by something this server can stop without touching the
    /// socket (a route's task, see [`super::RequestContext::spawn`]): closes the duplicate
    /// descriptor kept to force-close it.
    pub(crate) fn release_kill_switch(&self) {
        self.0.kill.disarm();
    }

    pub(crate) fn downgrade(&self) -> WeakSlot {
        WeakSlot(Arc::downgrade(&self.0))
    }

    /// The connection asked to become a relay client; the handshake is running.
    pub(crate) fn set_relay_upgrading(&self) {
        self.0.relay.store(RELAY_UPGRADING, Ordering::Release);
    }

    /// The `/relay` request was answered without an upgrade: a plain HTTP connection again.
    pub(crate) fn clear_relay_upgrading(&self) {
        let _ = self.0.relay.compare_exchange(
            RELAY_UPGRADING,
            RELAY_NONE,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The access control admitted the relay client.
    ///
    /// From now on iroh's relay owns it and ends it with `Clients::disconnect` (on a policy
    /// change or shutdown), so the duplicate descriptor is closed: an idle relay client costs
    /// one descriptor, not two.
    pub(crate) fn set_relay_admitted(&self) {
        self.0.relay.store(RELAY_ADMITTED, Ordering::Release);
        self.0.kill.disarm();
    }

    fn relay_upgrading(&self) -> bool {
        self.0.relay.load(Ordering::Acquire) == RELAY_UPGRADING
    }
}

/// A [`Slot`] that does not keep the connection counted.
#[derive(Debug, Clone)]
pub(crate) struct WeakSlot(Weak<SlotInner>);

impl WeakSlot {
    /// Closes the connection if it is still in the relay handshake. Returns whether it did.
    pub(crate) fn kill_if_relay_upgrading(&self) -> bool {
        match self.0.upgrade().map(Slot) {
            Some(slot) if slot.relay_upgrading() => {
                debug!(peer = %slot.peer(), "relay handshake timed out; closing the connection");
                slot.kill();
                true
            }
            _ => false,
        }
    }
}

/// A duplicate of the connection's socket, used only to shut it down, until the connection is
/// owned by something that can be stopped otherwise.
///
/// After an HTTP upgrade the socket belongs to whoever took the upgrade (iroh's relay handler
/// or a route), and iroh-relay 1.4.1 runs its relay handshake in a task of its own that neither
/// times out nor can be cancelled. `shutdown(2)` on a duplicate affects the shared socket, so
/// the owner sees the connection end. The duplicate (not the bare descriptor number) is what
/// makes this safe: a number alone could by then name another connection's socket, because
/// the owner may close its copy at any moment and the number is reused by the next `accept`.
///
/// Once the relay client is admitted (iroh can disconnect it) or a route's task owns the
/// connection (cancelling the task closes it), the duplicate is closed: [`Self::disarm`].
#[derive(Debug)]
struct KillSwitch {
    #[cfg(unix)]
    socket: Mutex<Option<std::net::TcpStream>>,
}

impl KillSwitch {
    fn new(stream: &tokio::net::TcpStream) -> Self {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd as _;
            let socket = match stream.as_fd().try_clone_to_owned() {
                Ok(fd) => Some(std::net::TcpStream::from(fd)),
                Err(err) => {
                    debug!(%err, "cannot duplicate the socket; it cannot be force-closed");
                    None
                }
            };
            Self {
                socket: Mutex::new(socket),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            Self {}
        }
    }

    fn none() -> Self {
        Self {
            #[cfg(unix)]
            socket: Mutex::new(None),
        }
    }

    #[cfg(unix)]
    fn socket(&self) -> MutexGuard<'_, Option<std::net::TcpStream>> {
        self.socket.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kill(&self) {
        #[cfg(unix)]
        if let Some(socket) = &*self.socket() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Closes the duplicate; [`Self::kill`] does nothing from now on.
    fn disarm(&self) {
        #[cfg(unix)]
        drop(self.socket().take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(refusal: Refusal) -> std::io::Error {
        std::io::Error::other(format!("{refusal:?}"))
    }

    #[tokio::test]
    async fn kill_switch_works_until_the_connection_is_owned_elsewhere() -> std::io::Result<()> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let tracker = ConnTracker::new(Limits::unlimited());
        let step = std::time::Duration::from_secs(5);

        // Armed: killing the slot ends the connection, whoever holds the socket.
        let mut client = tokio::net::TcpStream::connect(addr).await?;
        let (server, peer) = listener.accept().await?;
        let slot = tracker.admit(&server, peer, true).map_err(refused)?;
        slot.kill();
        let mut byte = [0u8; 1];
        assert_eq!(
            tokio::time::timeout(step, client.read(&mut byte)).await??,
            0
        );

        // An admitted relay client: the duplicate is closed, a kill no longer reaches it.
        let mut client = tokio::net::TcpStream::connect(addr).await?;
        let (mut server, peer) = listener.accept().await?;
        let slot = tracker.admit(&server, peer, true).map_err(refused)?;
        slot.set_relay_admitted();
        slot.kill();
        server.write_all(b"x").await?;
        tokio::time::timeout(step, client.read_exact(&mut byte)).await??;
        assert_eq!(&byte, b"x");

        // Not force-closable (a connection in the descriptor reserve): a kill does nothing.
        let mut client = tokio::net::TcpStream::connect(addr).await?;
        let (mut server, peer) = listener.accept().await?;
        let slot = tracker.admit(&server, peer, false).map_err(refused)?;
        slot.kill();
        server.write_all(b"y").await?;
        tokio::time::timeout(step, client.read_exact(&mut byte)).await??;
        assert_eq!(&byte, b"y");
        assert_eq!(tracker.open_count(), 3);
        Ok(())
    }
}
