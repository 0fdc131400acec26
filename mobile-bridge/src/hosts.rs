//! The host connection cache: one QUIC connection per host, shared by all its sockets.
//!
//! Each host with at least one socket (or a live connection) has a [`HostSlot`] in the map. A
//! socket registers as a user of the slot ([`SlotUse`]) for its whole life; the slot's async
//! mutex serialises dialing, so concurrent sockets to one host share one dial. Every cached
//! connection has a watcher task (owned by the bridge's `JoinSet`) that drops it from the cache
//! when it closes, and closes it after it has carried no socket for the linger time.
//!
//! A host that dies without a goodbye (SIGKILL, power loss) leaves a cached connection that
//! looks open until QUIC's idle timeout, and opening a stream on it still works (that is
//! local). A live host acknowledges what the bridge sends within a round trip (the bridge's
//! keep-alives, every second in `peer-relay`, and the browsers' messages), so a connection on
//! which what the bridge sent has gone unanswered for [`QUIET`] is suspect: the bridge dials
//! the host afresh (the watcher, while the connection carries sockets; or the next socket that
//! asks for it). If the host answers the new connection while the old one stays silent, the
//! host restarted (or lost the old connection): the new one takes the old one's place in the
//! cache and the old one is closed, so that its sockets end at once and their browsers come
//! back on the new one. If the host does not answer, the old connection stays: the host may
//! come back to it, else the idle timeout ends it. A connection that hears from its host is
//! never replaced, and one on which nothing was sent is never suspect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use iroh::endpoint::{
    ConnectError, ConnectWithOptsError, ConnectingError, Connection, ConnectionError, FrameStats,
    RecvStream, SendStream, TransportErrorCode, VarInt,
};
use iroh::{EndpointAddr, EndpointId};
use tokio::sync::Notify;
use tracing::debug;

use crate::{BRIDGE_ALPN, Inner, close};

/// TLS alert `no_application_protocol`: the host does not serve our ALPN.
const TLS_NO_APPLICATION_PROTOCOL: u8 = 120;

/// Application close code the bridge uses when it drops an idle host connection.
const CLOSE_IDLE: u32 = 0;

/// Application close code the bridge uses when it drops a connection whose host answered a new
/// one but not this one.
const CLOSE_SILENT: u32 = 1;

/// A cached connection on which what the bridge sent has gone unanswered for this long is
/// suspect: a live host acknowledges within a round trip (plus up to 25 ms), so a live
/// connection is never this quiet unless its path is broken.
const QUIET: Duration = Duration::from_secs(2);

/// How often a watcher reads what its connection has heard.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// How long a watcher's dial to the host of a suspect connection may take.
const CHECK_DIAL: Duration = Duration::from_secs(2);

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
    conn: tokio::sync::Mutex<Option<Cached>>,
    /// Sockets currently using (or about to use) this slot. Changed under the map lock.
    users: AtomicUsize,
    /// Poked when `users` becomes zero or leaves zero (wakes the watcher's linger timer).
    activity: Notify,
}

/// A cached connection and what it has heard.
struct Cached {
    conn: Connection,
    heard: Arc<Heard>,
}

impl Cached {
    /// Whether this is `conn` (and not one that replaced it).
    fn is(&self, conn: &Connection) -> bool {
        self.conn.stable_id() == conn.stable_id()
    }
}

/// Whether a connection's host answers, read from the connection's counters: frames the bridge
/// sent that the peer must acknowledge (keep-alive pings, stream data, …), and frames received
/// (only a live peer sends them: a packet that does not decrypt, like a restarted host's
/// stateless reset, counts for nothing). A connection on which nothing was sent is not suspect,
/// however long it idles. The counters are read every [`CHECK_EVERY`] by the watcher and when
/// a socket asks for the connection, so times are as precise as that.
struct Heard {
    last: Mutex<Counts>,
}

struct Counts {
    sent: u64,
    heard: u64,
    /// Since when something sent has had no answer (as first read).
    unanswered: Option<Instant>,
}

impl Heard {
    fn new(conn: &Connection) -> Heard {
        let (sent, heard) = counts(conn);
        Heard {
            last: Mutex::new(Counts {
                sent,
                heard,
                unanswered: None,
            }),
        }
    }

    /// How long what the bridge sent on `conn` has gone without anything heard from the host,
    /// as far as the reads tell (what was sent or heard since the last read counts as now).
    fn quiet(&self, conn: &Connection) -> Duration {
        let (sent, heard) = counts(conn);
        let now = Instant::now();
        let mut last = self.last.lock();
        // Between two reads the order is unknown: something heard counts as the answer to
        // what was sent (a send left unanswered shows at the next reads, as the keep-alives
        // and loss probes that follow it go unanswered too). Taking it the other way would
        // hold a healthy connection that then went idle for silent.
        if heard != last.heard {
            last.unanswered = None;
        } else if sent != last.sent && last.unanswered.is_none() {
            last.unanswered = Some(now);
        }
        last.sent = sent;
        last.heard = heard;
        last.unanswered
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }
}

/// Frames sent on `conn` that the peer must acknowledge, and frames received from it.
fn counts(conn: &Connection) -> (u64, u64) {
    let stats = conn.stats();
    let (tx, rx) = (stats.frame_tx, stats.frame_rx);
    let heard = eliciting(&rx)
        .wrapping_add(rx.acks)
        .wrapping_add(rx.path_acks);
    (eliciting(&tx), heard)
}

/// Frames that a peer acknowledges (all but ACK, CONNECTION_CLOSE and PADDING): keep-alive
/// pings, stream data, and what QUIC sends on its own (connection ids, flow control, path
/// frames), which a probe after a loss may repeat.
fn eliciting(f: &FrameStats) -> u64 {
    [
        f.ping,
        f.stream,
        f.crypto,
        f.reset_stream,
        f.stop_sending,
        f.max_data,
        f.max_stream_data,
        f.max_streams_bidi,
        f.max_streams_uni,
        f.data_blocked,
        f.stream_data_blocked,
        f.streams_blocked_bidi,
        f.streams_blocked_uni,
        f.new_connection_id,
        f.path_new_connection_id,
        f.retire_connection_id,
        f.path_retire_connection_id,
        f.new_token,
        f.path_challenge,
        f.path_response,
        f.datagram,
        f.immediate_ack,
        f.ack_frequency,
        f.observed_addr,
        f.path_abandon,
        f.path_status_available,
        f.path_status_backup,
        f.max_path_id,
        f.paths_blocked,
        f.path_cids_blocked,
        f.add_address,
        f.reach_out,
        f.remove_address,
        u64::from(f.handshake_done),
    ]
    .iter()
    .fold(0u64, |a, n| a.wrapping_add(*n))
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
            Err(e) => {
                return Err(connection_failure(&e, false, u.inner.endpoint.is_closed()));
            }
        }
    }
}

/// The cached connection to the slot's host, or a new one. `stale` names a cached connection
/// known to be dead. A cached connection that has been [`QUIET`] is replaced if the host
/// answers a new one ([`dial`]). Returns the connection and whether it was just dialed.
async fn connection(u: &SlotUse, stale: Option<usize>) -> Result<(Connection, bool), Failure> {
    let mut cached = u.slot.conn.lock().await;
    if let Some(c) = cached.as_ref() {
        let open = c.conn.close_reason().is_none() && Some(c.conn.stable_id()) != stale;
        if open && c.heard.quiet(&c.conn) < QUIET {
            return Ok((c.conn.clone(), false));
        }
        if !open {
            *cached = None;
        }
    }
    let (conn, heard) = dial(&u.inner, &u.slot, &mut cached).await?;
    u.inner.hosts.live.fetch_add(1, Ordering::Relaxed);
    let watcher = watch(
        Arc::downgrade(&u.inner),
        u.slot.clone(),
        conn.clone(),
        heard,
        u.inner.config.idle_timeout,
    );
    let mut tasks = u.inner.watchers.lock();
    while tasks.try_join_next().is_some() {}
    tasks.spawn(watcher);
    Ok((conn, true))
}

/// Dials the slot's host and caches the new connection (the caller watches it). A connection
/// cached before (one that has been quiet) is closed if it has still heard nothing: its
/// sockets end and their browsers come back on the new one. If the dial fails, the old one
/// stays.
async fn dial(
    inner: &Inner,
    slot: &HostSlot,
    cached: &mut Option<Cached>,
) -> Result<(Connection, Arc<Heard>), Failure> {
    let addr: EndpointAddr = (inner.resolve)(slot.id);
    let conn = inner
        .endpoint
        .connect(addr, BRIDGE_ALPN)
        .await
        .map_err(|e| connect_failure(&e))?;
    let heard = Arc::new(Heard::new(&conn));
    let old = cached.replace(Cached {
        conn: conn.clone(),
        heard: heard.clone(),
    });
    match old {
        Some(old) if old.heard.quiet(&old.conn) >= QUIET => {
            old.conn.close(
                VarInt::from_u32(CLOSE_SILENT),
                b"the host stopped answering",
            );
            debug!(host = %slot.id.fmt_short(), "replaced a silent host connection");
        }
        // It heard from the host while the new one was dialed: its sockets stay on it, and it
        // closes once they are gone.
        Some(_) => debug!(host = %slot.id.fmt_short(), "connected to host (again)"),
        None => debug!(host = %slot.id.fmt_short(), "connected to host"),
    }
    Ok((conn, heard))
}

/// Drops `conn` from the cache when it closes, and closes it after `linger` without users.
/// While it carries sockets and has been [`QUIET`], dials the host afresh to replace it, and
/// then watches the new connection instead.
async fn watch(
    inner: Weak<Inner>,
    slot: Arc<HostSlot>,
    mut conn: Connection,
    mut heard: Arc<Heard>,
    linger: Duration,
) {
    let mut idle_since: Option<Instant> = None;
    // After a dial that failed, the next one waits (a host that refuses at once is not dialed
    // every tick).
    let mut next_dial = Instant::now();
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let idle = slot.users.load(Ordering::Acquire) == 0;
        idle_since = match (idle, idle_since) {
            (false, _) => None,
            (true, None) => Some(Instant::now()),
            (true, since) => since,
        };
        let linger_end = idle_since.map(|t| t + linger);
        tokio::select! {
            _ = conn.closed() => break,
            // Users came or went: the linger time starts again when none is left.
            _ = slot.activity.notified() => idle_since = None,
            _ = check.tick() => {
                // Read even while idle, so that a socket that comes later knows.
                let quiet = heard.quiet(&conn);
                if idle || quiet < QUIET || Instant::now() < next_dial {
                    continue;
                }
                let Some(bridge) = inner.upgrade() else { break };
                let mut cached = slot.conn.lock().await;
                let ours = cached
                    .as_ref()
                    .is_some_and(|c| c.is(&conn));
                if !ours {
                    // Replaced by a socket's dial; its sockets stay until they end.
                    continue;
                }
                // A failure (the host is not back yet, or not reachable) is tried again later.
                match tokio::time::timeout(CHECK_DIAL, dial(&bridge, &slot, &mut cached)).await {
                    Ok(Ok((new, new_heard))) => {
                        conn = new;
                        heard = new_heard;
                    }
                    _ => next_dial = Instant::now() + CHECK_DIAL,
                }
            }
            _ = sleep_until_opt(linger_end), if linger_end.is_some() => {
                let mut cached = slot.conn.lock().await;
                let ours = cached
                    .as_ref()
                    .is_some_and(|c| c.is(&conn));
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
        if cached.as_ref().is_some_and(|c| c.is(&conn)) {
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

/// Sleeps until `at`, or forever without one.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
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
        | ConnectError::Connection { source, .. } => connection_failure(source, false, true),
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
/// one that closes later failed. `closing`: the bridge's endpoint is closed, so a connection
/// closed here was closed by the shutdown (else by the bridge, as a silent one).
pub(crate) fn connection_failure(e: &ConnectionError, heard: bool, closing: bool) -> Failure {
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
        ConnectionError::LocallyClosed if closing => {
            Failure::new(close::GOING_AWAY, "the bridge is shutting down")
        }
        ConnectionError::LocallyClosed => Failure::new(
            close::HOST_ERROR,
            "host connection lost: the host stopped answering it",
        ),
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
