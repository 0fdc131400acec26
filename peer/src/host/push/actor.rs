//! The notifier: turns events into notices, gives them to watch streams, and to each device
//! with a subscription that wants them and is not looking, one delivery at a time per device.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::deliver::{self, Outcome, Outgoing};
use super::notices::{self, Deriver};
use super::presence::{HOLD, Looking, Presence};
use super::{Cmd, MAX_BELLS, Registered, Sources};
use crate::db::Db;
use crate::host::devices::DeviceKey;
use crate::proto::{
    AgentEvent, ErrorCode, Notice, NoticeKind, NoticeSession, PushStatus, WireError,
};
use crate::pty::PtyEvent;
use crate::util::now_ms;
use crate::webpush::{origin, topic};

/// Messages waiting per device at most (the oldest goes first).
const QUEUE: usize = 16;

#[derive(Debug, Default)]
struct DeviceQueue {
    waiting: VecDeque<Outgoing>,
    busy: bool,
}

/// A notice held for a device that was looking at its session.
#[derive(Debug)]
struct Held {
    notice: Notice,
    since: Instant,
}

pub(super) struct Actor {
    src: Sources,
    db: Db,
    client: Option<reqwest::Client>,
    presence: Arc<Presence>,
    watchers: broadcast::Sender<Arc<Notice>>,
    deriver: Deriver,
    subs: HashMap<DeviceKey, Registered>,
    errors: HashMap<DeviceKey, String>,
    bells: HashMap<DeviceKey, BTreeSet<u64>>,
    held: HashMap<(DeviceKey, NoticeSession), Held>,
    queues: HashMap<DeviceKey, DeviceQueue>,
    killed: BTreeSet<u64>,
    deliveries: JoinSet<(DeviceKey, Outcome)>,
}

/// Sleeps until `d`, or for ever.
async fn sleep_until(d: Option<Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    pub(super) fn new(
        src: Sources,
        db: Db,
        client: Option<reqwest::Client>,
        presence: Arc<Presence>,
        watchers: broadcast::Sender<Arc<Notice>>,
        subs: Vec<(DeviceKey, Registered)>,
    ) -> Actor {
        Actor {
            src,
            db,
            client,
            presence,
            watchers,
            deriver: Deriver::default(),
            subs: subs.into_iter().collect(),
            errors: HashMap::new(),
            bells: HashMap::new(),
            held: HashMap::new(),
            queues: HashMap::new(),
            killed: BTreeSet::new(),
            deliveries: JoinSet::new(),
        }
    }

    pub(super) async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, shutdown: CancellationToken) {
        let mut agents = self.src.agents.events();
        let mut ptys = self.src.sessions.events();
        let mut revoked = self.src.devices.revocations();
        loop {
            tokio::select! {
                // Requests first: a client's kill must be known before the exit it causes.
                biased;
                _ = shutdown.cancelled() => break,
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd),
                    None => break,
                },
                ev = agents.recv() => match ev {
                    Ok(ev) => self.on_agent(&ev),
                    Err(RecvError::Lagged(n)) => warn!("notifications missed {n} agent events"),
                    Err(RecvError::Closed) => agents = self.src.agents.events(),
                },
                ev = ptys.recv() => match ev {
                    Ok(ev) => self.on_pty(ev),
                    Err(RecvError::Lagged(n)) => warn!("notifications missed {n} terminal events"),
                    Err(RecvError::Closed) => ptys = self.src.sessions.events(),
                },
                key = revoked.recv() => match key {
                    Ok(key) => self.forget(&key, None),
                    Err(RecvError::Lagged(_)) => self.forget_revoked(),
                    Err(RecvError::Closed) => revoked = self.src.devices.revocations(),
                },
                Some(done) = self.deliveries.join_next(), if !self.deliveries.is_empty() => {
                    if let Ok((device, outcome)) = done {
                        self.on_delivered(device, outcome).await;
                    }
                }
                () = sleep_until(self.deriver.next_deadline()) => {
                    for n in self.deriver.tick(Instant::now()) {
                        self.notify(n);
                    }
                }
            }
        }
        self.deliveries.shutdown().await;
    }

    fn on_agent(&mut self, ev: &AgentEvent) {
        let agent = self
            .src
            .agents
            .get(ev.session)
            .map(|h| h.info().agent)
            .unwrap_or_else(|_| "the agent".into());
        for n in self.deriver.agent_event(ev, &agent, Instant::now()) {
            self.notify(n);
        }
    }

    fn what(&self, session: u64) -> String {
        match self.src.sessions.get(session) {
            Ok(s) => {
                let info = s.info();
                info.name.unwrap_or_else(|| info.command.join(" "))
            }
            Err(_) => format!("session {session}"),
        }
    }

    fn on_pty(&mut self, ev: PtyEvent) {
        match ev {
            PtyEvent::Exited {
                session,
                what,
                status,
            } => {
                for bells in self.bells.values_mut() {
                    bells.remove(&session);
                }
                if self.killed.remove(&session) {
                    return;
                }
                let n = notices::session_ended(session, &what, &status, now_ms());
                self.notify(n);
            }
            PtyEvent::Bell { session } => {
                let n = notices::bell(session, &self.what(session), now_ms());
                self.notify(n);
            }
        }
    }

    /// Who gets `n`: every watch stream; each device whose subscription wants it, now or (if
    /// it is looking at the session) held for a while.
    fn notify(&mut self, n: Notice) {
        debug!(kind = n.kind.as_str(), session = %n.session, "notice");
        let _ = self.watchers.send(Arc::new(n.clone()));
        let devices: Vec<DeviceKey> = self.subs.keys().copied().collect();
        for device in devices {
            if !self.wants(&device, &n) {
                continue;
            }
            match self.presence.looking(&device, n.session) {
                Looking::Now => {
                    self.held.insert(
                        (device, n.session),
                        Held {
                            notice: n.clone(),
                            since: Instant::now(),
                        },
                    );
                }
                Looking::JustLeft => {}
                Looking::No => self.enqueue(device, &n),
            }
        }
        let now = Instant::now();
        self.held.retain(|_, h| now.duration_since(h.since) < HOLD);
    }

    fn wants(&self, device: &DeviceKey, n: &Notice) -> bool {
        let Some(reg) = self.subs.get(device) else {
            return false;
        };
        match (n.kind, n.session) {
            (NoticeKind::Bell, NoticeSession::Pty(id)) => {
                self.bells.get(device).is_some_and(|b| b.contains(&id))
            }
            (kind, _) => reg.kinds.contains(&kind),
        }
    }

    /// Still worth telling: an approval that was answered meanwhile is not.
    fn current(&self, n: &Notice) -> bool {
        match (n.kind, n.session, n.approval) {
            (NoticeKind::Approval, NoticeSession::Agent(s), Some(a)) => self.deriver.is_open(s, a),
            _ => true,
        }
    }

    fn enqueue(&mut self, device: DeviceKey, n: &Notice) {
        let Some(reg) = self.subs.get(&device) else {
            return;
        };
        let (urgency, ttl) = notices::delivery(n.kind);
        let out = Outgoing {
            tag: notices::tag(&self.src.host_id, n.session),
            payload: notices::payload(n, &self.src.host_id, &self.src.host_name),
            urgency,
            ttl,
            topic: topic(
                &reg.sub.auth,
                &format!("{}/{}", self.src.host_id, n.session),
            ),
            expires: Instant::now() + std::time::Duration::from_secs(u64::from(ttl)),
        };
        let q = self.queues.entry(device).or_default();
        q.waiting.retain(|o| o.tag != out.tag);
        q.waiting.push_back(out);
        while q.waiting.len() > QUEUE {
            q.waiting.pop_front();
        }
        self.pump(device);
    }

    /// Starts the device's next delivery unless one runs.
    fn pump(&mut self, device: DeviceKey) {
        let (Some(client), Some(reg)) = (self.client.clone(), self.subs.get(&device)) else {
            self.queues.remove(&device);
            return;
        };
        if self.src.devices.is_revoked(&device) {
            self.forget(&device, None);
            return;
        }
        let (sub, key) = (reg.sub.clone(), reg.key.clone());
        let Some(q) = self.queues.get_mut(&device) else {
            return;
        };
        if q.busy {
            return;
        }
        let Some(out) = q.waiting.pop_front() else {
            return;
        };
        q.busy = true;
        self.deliveries.spawn(async move {
            let outcome = deliver::deliver(client, sub, key, out).await;
            (device, outcome)
        });
    }

    async fn on_delivered(&mut self, device: DeviceKey, outcome: Outcome) {
        if let Some(q) = self.queues.get_mut(&device) {
            q.busy = false;
        }
        let short = hex::encode(&device[..4]);
        match outcome {
            Outcome::Delivered => {
                debug!(device = %short, "push delivered");
                self.errors.remove(&device);
            }
            Outcome::Gone(why) => {
                info!(device = %short, "push subscription gone: {why}");
                self.forget(
                    &device,
                    Some(format!("the subscription was removed: {why}")),
                );
                // Queued, not waited for: the notifier does not wait on the disk.
                if let Err(e) = super::store::queue_delete(&self.db, device).await {
                    warn!("deleting a push subscription: {e}");
                }
                return;
            }
            Outcome::Failed(why) => {
                warn!(device = %short, "push not delivered: {why}");
                self.errors.insert(device, why);
            }
        }
        self.pump(device);
    }

    /// Drops everything of `device` (revoked, unregistered, or its subscription is gone).
    fn forget(&mut self, device: &DeviceKey, why: Option<String>) {
        self.subs.remove(device);
        self.queues.remove(device);
        self.bells.remove(device);
        self.held.retain(|(d, _), _| d != device);
        match why {
            Some(why) => {
                self.errors.insert(*device, why);
            }
            None => {
                self.errors.remove(device);
            }
        }
    }

    fn forget_revoked(&mut self) {
        let revoked: Vec<DeviceKey> = self
            .subs
            .keys()
            .filter(|d| self.src.devices.is_revoked(d))
            .copied()
            .collect();
        for d in revoked {
            self.presence.forget(&d);
            self.forget(&d, None);
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Set { device, reg } => {
                self.queues.remove(&device);
                self.errors.remove(&device);
                self.subs.insert(device, reg);
            }
            Cmd::Remove { device } => self.forget(&device, None),
            Cmd::Kinds { device, kinds } => {
                if let Some(reg) = self.subs.get_mut(&device) {
                    reg.kinds = kinds;
                }
            }
            Cmd::Bell {
                device,
                session,
                on,
                reply,
            } => {
                let res = self.bell(device, session, on);
                let _ = reply.send(res);
            }
            Cmd::Status { device, reply } => {
                let _ = reply.send(self.status(&device));
            }
            Cmd::Away {
                device,
                session,
                lost,
            } => self.away(device, session, lost),
            Cmd::Killed { session } => {
                self.killed.insert(session);
            }
        }
    }

    fn bell(&mut self, device: DeviceKey, session: u64, on: bool) -> Result<(), WireError> {
        if on && self.src.sessions.get(session).is_err() {
            return Err(WireError::new(
                ErrorCode::NotFound,
                format!("no session {session}"),
            ));
        }
        let bells = self.bells.entry(device).or_default();
        if on {
            if bells.len() >= MAX_BELLS {
                return Err(WireError::new(
                    ErrorCode::Limit,
                    format!("bells of at most {MAX_BELLS} sessions"),
                ));
            }
            bells.insert(session);
        } else {
            bells.remove(&session);
        }
        Ok(())
    }

    /// The device stopped looking. Lost (the connection died, or the app went to the
    /// background): what was held for it and is still current goes out now. Left (it
    /// detached): it saw what was held.
    fn away(&mut self, device: DeviceKey, session: Option<NoticeSession>, lost: bool) {
        let now = Instant::now();
        let keys: Vec<(DeviceKey, NoticeSession)> = self
            .held
            .keys()
            .filter(|(d, s)| *d == device && session.is_none_or(|x| x == *s))
            .copied()
            .collect();
        for key in keys {
            if self.presence.attached_and_visible(&key.0, key.1) {
                // Still looking through another attachment (a reconnect that overlapped).
                continue;
            }
            let Some(h) = self.held.remove(&key) else {
                continue;
            };
            if lost && now.duration_since(h.since) < HOLD && self.current(&h.notice) {
                self.enqueue(device, &h.notice);
            }
        }
    }

    fn status(&self, device: &DeviceKey) -> PushStatus {
        let reg = self.subs.get(device);
        PushStatus {
            registered: reg.is_some(),
            endpoint_origin: reg.map(|r| origin(&r.sub.endpoint)),
            kinds: reg
                .map(|r| r.kinds.iter().copied().collect())
                .unwrap_or_default(),
            bell_sessions: self
                .bells
                .get(device)
                .map(|b| b.iter().copied().collect())
                .unwrap_or_default(),
            last_error: self.errors.get(device).cloned(),
        }
    }
}
