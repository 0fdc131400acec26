//! The host connection cache: one QUIC connection per host, shared by all its sockets.
//!
//! Each host with at least one socket (or a live connection) has a [`HostSlot`] in the map. A
//! socket registers as a user of the slot ([`SlotUse`]) for its whole life; the slot's async
//! mutex serialises dialing, so concurrent sockets to one host share one dial. Every cached
//! connection has a watcher task (owned by the bridge's `JoinSet`) that drops it from the cache
//! when it closes, and closes it after it has carried no socket for the linger time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use std::time::Duration;

use iroh::endpoint::{
    ConnectError, ConnectWithOptsError, ConnectingError, Connection, ConnectionError, RecvStream,
    SendStream, TransportErrorCode, VarInt,
};
use iroh::{EndpointAddr, EndpointId};
use tokio::sync::Notify;
use tracing::debug;

use crate::{BRIDGE_ALPN, Inner, close};

/// TLS alert `no_application_protocol`: the host does not serve our ALPN.
const TLS_NO_APPLICATION_PROTOCOL: u8 = 120;

/// Application close code the bridge uses when it drops an idle host connection.
const CLOSE_IDLE: u32 = 0;

/// How a socket's attempt to reach its host failed: the WebSocket close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

impl Failure {
    pub(crate) fn new(code: u16, reason: impl Into<String>) -> Self {
        Failure {
            code,
            reason: reason.into(),
        }
    }
}

/// One host's cache entry.
pub(crate) struct HostSlot {
    id: EndpointId,
    /// The cached connection. Held across the dial, so one dial serves every waiting socket.
    conn: tokio::sync::Mutex<Option<Connection>>,
    /// Sockets currently using (or about to use) this slot. Changed under the map lock.
    users: AtomicUsize,
    /// Poked when `users` becomes zero or leaves zero (wakes the watcher's linger timer).
    activity: Notify,
}

/// The cache itself.
#[derive(Default)]
pub(crate) struct Hosts {
    slots: Mutex<HashMap<EndpointId, Arc<HostSlot>>>,
    /// Live cached connections (one watcher each).
    live: AtomicUsize,
}

impl Hosts {
    pub(crate) fn live_connections(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// A socket's registration with its host's slot; unregisters on drop.
pub(crate) struct SlotUse {
    inner: Arc<Inner>,
    slot: Arc<HostSlot>,
}

impl Drop for SlotUse {
    fn drop(&mut self) {
        let mut slots = self.inner.hosts.slots.lock();
        if self.slot.users.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.slot.activity.notify_one();
            // No connection and no user: nothing will clean this slot up later, so now.
            let empty = matches!(self.slot.conn.try_lock(), Ok(c) if c.is_none());
            if empty
                && slots
                    .get(&self.slot.id)
                    .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
            {
                slots.remove(&self.slot.id);
            }
        }
    }
}

/// Registers a socket with `id`'s slot, creating the slot if needed.
pub(crate) fn use_slot(inner: &Arc<Inner>, id: EndpointId) -> SlotUse {
    let mut slots = inner.hosts.slots.lock();
    let slot = slots
        .entry(id)
        .or_insert_with(|| {
            Arc::new(HostSlot {
                id,
                conn: tokio::sync::Mutex::new(None),
                users: AtomicUsize::new(0),
                activity: Notify::new(),
            })
        })
        .clone();
    if slot.users.fetch_add(1, Ordering::AcqRel) == 0 {
        slot.activity.notify_one();
    }
    SlotUse {
        inner: inner.clone(),
        slot,
    }
}

/// Opens a bidirectional stream to the slot's host, dialing (or redialing a dead cached
/// connection) as needed. The caller bounds the time this takes.
pub(crate) async fn open_stream(u: &SlotUse) -> Result<(SendStream, RecvStream), Failure> {
    let mut stale = None;
    loop {
        let (conn, fresh) = connection(u, stale).await?;
        match conn.open_bi().await {
            Ok(streams) => return Ok(streams),
            // A cached connection died under us: dial once more.
            Err(_) if !fresh => stale = Some(conn.stable_id()),
            Err(e) => return Err(connection_failure(&e, false)),
        }
    }
}

/// The cached connection to the slot's host, or a new one. `stale` names a cached connection
/// known to be dead. Returns the connection and whether it was just dialed.
async fn connection(u: &SlotUse, stale: Option<usize>) -> Result<(Connection, bool), Failure> {
    let mut cached = u.slot.conn.lock().await;
    if let Some(c) = cached.as_ref() {
        if c.close_reason().is_none() && Some(c.stable_id()) != stale {
            return Ok((c.clone(), false));
        }
        *cached = None;
    }
    let addr: EndpointAddr = (u.inner.resolve)(u.slot.id);
    let conn = u
        .inner
        .endpoint
        .connect(addr, BRIDGE_ALPN)
        .await
        .map_err(|e| connect_failure(&e))?;
    debug!(host = %u.slot.id.fmt_short(), "connected to host");
    *cached = Some(conn.clone());
    u.inner.hosts.live.fetch_add(1, Ordering::Relaxed);
    let watcher = watch(
        Arc::downgrade(&u.inner),
        u.slot.clone(),
        conn.clone(),
        u.inner.config.idle_timeout,
    );
    let mut tasks = u.inner.watchers.lock();
    while tasks.try_join_next().is_some() {}
    tasks.spawn(watcher);
    Ok((conn, true))
}

/// Drops `conn` from the cache when it closes, and closes it after `linger` without users.
async fn watch(inner: Weak<Inner>, slot: Arc<HostSlot>, conn: Connection, linger: Duration) {
    loop {
        let idle = slot.users.load(Ordering::Acquire) == 0;
        tokio::select! {
            _ = conn.closed() => break,
            _ = slot.activity.notified() => {}
            _ = tokio::time::sleep(linger), if idle => {
                let mut cached = slot.conn.lock().await;
                let ours = cached.as_ref().is_some_and(|c| c.stable_id() == conn.stable_id());
                if !ours {
                    // Replaced after it died; nothing left to watch.
                    break;
                }
                if slot.users.load(Ordering::Acquire) == 0 {
                    *cached = None;
                    conn.close(VarInt::from_u32(CLOSE_IDLE), b"idle");
                    debug!(host = %slot.id.fmt_short(), "closed idle host connection");
                    break;
                }
            }
        }
    }
    {
        let mut cached = slot.conn.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| c.stable_id() == conn.stable_id())
        {
            *cached = None;
        }
    }
    if let Some(inner) = inner.upgrade() {
        inner.hosts.live.fetch_sub(1, Ordering::Relaxed);
        let mut slots = inner.hosts.slots.lock();
        let empty = matches!(slot.conn.try_lock(), Ok(c) if c.is_none());
        if empty
            && slot.users.load(Ordering::Acquire) == 0
            && slots.get(&slot.id).is_some_and(|s| Arc::ptr_eq(s, &slot))
        {
            slots.remove(&slot.id);
        }
    }
}

/// Truncates `s` to at most `max` bytes, at a character boundary.
pub(crate) fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The WebSocket close for a failed dial.
fn connect_failure(e: &ConnectError) -> Failure {
    match e {
        ConnectError::Connecting {
            source: ConnectingError::ConnectionError { source, .. },
            ..
        }
        | ConnectError::Connection { source, .. } => connection_failure(source, false),
        ConnectError::Connect {
            source: ConnectWithOptsError::EndpointClosed { .. },
            ..
        } => Failure::new(close::GOING_AWAY, "the bridge is shutting down"),
        other => Failure::new(
            close::HOST_UNREACHABLE,
            format!("host unreachable: {other}"),
        ),
    }
}

/// The WebSocket close for a lost host connection. `heard` says whether the host has sent
/// anything on this socket's stream: a host that closes before answering refused the bridge;
/// one that closes later failed.
pub(crate) fn connection_failure(e: &ConnectionError, heard: bool) -> Failure {
    match e {
        ConnectionError::ApplicationClosed(c) => {
            let text = String::from_utf8_lossy(&c.reason);
            if heard {
                Failure::new(close::HOST_ERROR, format!("host closed: {text}"))
            } else if text.is_empty() {
                Failure::new(
                    close::HOST_REFUSED,
                    format!("host refused the bridge (code {})", c.error_code),
                )
            } else {
                Failure::new(close::HOST_REFUSED, text)
            }
        }
        ConnectionError::ConnectionClosed(c)
            if c.error_code == TransportErrorCode::crypto(TLS_NO_APPLICATION_PROTOCOL) =>
        {
            Failure::new(close::HOST_REFUSED, "host does not serve peer/bridge/1")
        }
        ConnectionError::LocallyClosed => {
            Failure::new(close::GOING_AWAY, "the bridge is shutting down")
        }
        other if heard => Failure::new(close::HOST_ERROR, format!("host connection lost: {other}")),
        other => Failure::new(
            close::HOST_UNREACHABLE,
            format!("host unreachable: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_utf8;

    #[test]
    fn truncates_at_char_boundaries() {
        assert_eq!(truncate_utf8("abc", 120), "abc");
        assert_eq!(truncate_utf8("abcdef", 3), "abc");
        // 'é' is two bytes: cutting inside it backs off.
        assert_eq!(truncate_utf8("aé", 2), "a");
        let long = "x".repeat(300);
        assert_eq!(truncate_utf8(&long, 120).len(), 120);
    }
}
