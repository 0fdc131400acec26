//! Notifications: agent and terminal events that a person who is not looking wants to hear
//! about, sent end to end encrypted as Web Push to the devices that asked, and streamed to
//! `peer watch`.
//!
//! - [`notices`]: which events are notices, in what words (sans-IO), and the push payload.
//! - [`presence`]: who is looking at which session (notices for them are held, not sent).
//! - [`store`]: the `push_subscriptions` table.
//! - [`deliver`]: the HTTP client and one message's delivery with retries.
//! - `actor`: the task that ties them together. Nothing it does can hold up the host: events
//!   reach it over broadcast channels (a listener that falls behind loses the oldest), requests
//!   over a bounded queue, and each device's deliveries run one at a time in tasks of its own.

pub mod deliver;
pub mod notices;
pub mod presence;
pub mod store;

mod actor;
mod watch;

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeroize::Zeroizing;

use crate::agent::AgentManager;
use crate::db::Db;
use crate::host::devices::{DeviceKey, Devices};
use crate::proto::{ErrorCode, Notice, NoticeKind, NoticeSession, PushStatus, Request, WireError};
use crate::pty::SessionManager;
use crate::webpush::{Subscription, VapidKey};
pub(crate) use watch::run as run_watch;

/// Requests queued for the notifier at most.
const COMMANDS: usize = 256;
/// Notices buffered per watch stream.
const WATCHERS: usize = 256;
/// Terminal sessions a device may ask bells of at most.
const MAX_BELLS: usize = 64;

/// How the host sends pushes.
#[derive(Debug, Clone, Default)]
pub struct PushConfig {
    /// Tests only: accept `http://127.0.0.1:PORT/…` (and `https://` on loopback) as push
    /// endpoints, and resolve names without refusing private addresses.
    pub allow_loopback_http: bool,
    /// Tests only: certificates (DER) trusted besides the web PKI roots.
    pub extra_roots: Vec<Vec<u8>>,
}

/// A device's subscription, ready to use.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    sub: Arc<Subscription>,
    key: Arc<VapidKey>,
    kinds: BTreeSet<NoticeKind>,
}

/// What the notifier is asked to do.
#[derive(Debug)]
pub(crate) enum Cmd {
    Set {
        device: DeviceKey,
        reg: Registered,
    },
    Remove {
        device: DeviceKey,
    },
    Kinds {
        device: DeviceKey,
        kinds: BTreeSet<NoticeKind>,
    },
    Bell {
        device: DeviceKey,
        session: u64,
        on: bool,
        reply: oneshot::Sender<Result<(), WireError>>,
    },
    Status {
        device: DeviceKey,
        reply: oneshot::Sender<PushStatus>,
    },
    /// The device stopped looking: at `session` (an attachment ended; `lost` unless it
    /// detached), or at everything (`None`: its app went to the background).
    Away {
        device: DeviceKey,
        session: Option<NoticeSession>,
        lost: bool,
    },
    /// A client killed this terminal session: its end is no news.
    Killed {
        session: u64,
    },
}

/// What the notifier needs of the host.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub agents: AgentManager,
    pub sessions: Arc<SessionManager>,
    pub devices: Devices,
    /// The host's endpoint id, hex.
    pub host_id: String,
    pub host_name: String,
}

/// Handle to the notifier; cheap to clone.
#[derive(Debug, Clone)]
pub struct Push {
    cmds: mpsc::Sender<Cmd>,
    presence: Arc<presence::Presence>,
    watchers: broadcast::Sender<Arc<Notice>>,
    db: Db,
    allow_loopback_http: bool,
}

fn internal(e: impl std::fmt::Display) -> WireError {
    WireError::new(ErrorCode::Internal, e.to_string())
}

fn bad(e: impl std::fmt::Display) -> WireError {
    WireError::new(ErrorCode::BadRequest, e.to_string())
}

impl Push {
    /// Loads the stored subscriptions and starts the notifier on `tasks`; it stops with
    /// `shutdown`.
    pub(crate) async fn start(
        cfg: &PushConfig,
        db: Db,
        src: Sources,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Push {
        let (cmds, rx) = mpsc::channel(COMMANDS);
        let push = Push {
            cmds,
            presence: Arc::default(),
            watchers: broadcast::channel(WATCHERS).0,
            db: db.clone(),
            allow_loopback_http: cfg.allow_loopback_http,
        };
        let mut subs = Vec::new();
        match store::load(&db).await {
            Ok(rows) => {
                for row in rows {
                    match push.registered(
                        &row.endpoint,
                        &row.p256dh,
                        &row.auth,
                        &row.vapid_private,
                        &row.vapid_public,
                        &row.kinds,
                    ) {
                        Ok(reg) => subs.push((row.device, reg)),
                        Err(e) => {
                            tracing::warn!(device = %hex::encode(&row.device[..4]), "a stored push subscription is not usable: {}", e.message)
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("reading push subscriptions: {e}"),
        }
        let client = match deliver::client(cfg) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("no push notifications: the HTTP client cannot start: {e}");
                None
            }
        };
        let actor = actor::Actor::new(
            src,
            db,
            client,
            push.presence.clone(),
            push.watchers.clone(),
            subs,
        );
        tasks.spawn(actor.run(rx, shutdown));
        push
    }

    fn registered(
        &self,
        endpoint: &str,
        p256dh: &[u8],
        auth: &[u8],
        vapid_private: &[u8; 32],
        vapid_public: &[u8],
        kinds: &[NoticeKind],
    ) -> Result<Registered, WireError> {
        let sub =
            Subscription::new(endpoint, p256dh, auth, self.allow_loopback_http).map_err(bad)?;
        let key = VapidKey::from_raw(vapid_private, vapid_public).map_err(bad)?;
        Ok(Registered {
            sub: Arc::new(sub),
            key: Arc::new(key),
            kinds: kinds.iter().copied().collect(),
        })
    }

    async fn tell(&self, cmd: Cmd) -> Result<(), WireError> {
        self.cmds
            .send(cmd)
            .await
            .map_err(|_| internal("notifications are not running"))
    }

    async fn status(&self, device: DeviceKey) -> Result<PushStatus, WireError> {
        let (reply, rx) = oneshot::channel();
        self.tell(Cmd::Status { device, reply }).await?;
        rx.await
            .map_err(|_| internal("notifications are not running"))
    }

    /// Serves a `Push*` request of `device`; the answer is the device's status afterwards.
    pub(crate) async fn handle(
        &self,
        device: DeviceKey,
        req: Request,
    ) -> Result<PushStatus, WireError> {
        match req {
            Request::PushRegister(r) => {
                if r.kinds.len() > 64 {
                    return Err(bad("too many kinds"));
                }
                let reg = self.registered(
                    &r.endpoint,
                    &r.p256dh,
                    &r.auth,
                    &r.vapid_private,
                    &r.vapid_public,
                    &r.kinds,
                )?;
                let row = store::Row {
                    device,
                    endpoint: r.endpoint,
                    p256dh: r.p256dh,
                    auth: Zeroizing::new(r.auth),
                    vapid_private: Zeroizing::new(r.vapid_private),
                    vapid_public: r.vapid_public,
                    kinds: reg.kinds.iter().copied().collect(),
                };
                store::save(&self.db, row).await.map_err(internal)?;
                self.tell(Cmd::Set { device, reg }).await?;
            }
            Request::PushUnregister => {
                store::delete(&self.db, device).await.map_err(internal)?;
                self.tell(Cmd::Remove { device }).await?;
            }
            Request::PushKinds { kinds } => {
                if kinds.len() > 64 {
                    return Err(bad("too many kinds"));
                }
                let kinds: BTreeSet<NoticeKind> = kinds.into_iter().collect();
                let list: Vec<NoticeKind> = kinds.iter().copied().collect();
                store::set_kinds(&self.db, device, &list)
                    .await
                    .map_err(internal)?;
                self.tell(Cmd::Kinds { device, kinds }).await?;
            }
            Request::PushFocus { visible } => {
                self.presence.set_visible(device, visible);
                if !visible {
                    self.tell(Cmd::Away {
                        device,
                        session: None,
                        lost: true,
                    })
                    .await?;
                }
            }
            Request::PushBell { session, on } => {
                let (reply, rx) = oneshot::channel();
                self.tell(Cmd::Bell {
                    device,
                    session,
                    on,
                    reply,
                })
                .await?;
                rx.await
                    .map_err(|_| internal("notifications are not running"))??;
            }
            Request::PushStatus => {}
            other => {
                return Err(internal(format!("{other:?} is not a push request")));
            }
        }
        self.status(device).await
    }

    /// Counts an attachment of `device` to `session` as looking at it, until the guard drops.
    pub(crate) fn attach(
        &self,
        device: DeviceKey,
        session: NoticeSession,
    ) -> presence::PresenceGuard {
        self.presence.attach(device, session, self.cmds.clone())
    }

    /// A client is about to kill terminal session `session`, which is running: its end is no
    /// news to anyone. (Told before the kill, and asked whether it runs now: by the time the
    /// notifier hears of it the session may have ended of the kill already.)
    pub(crate) fn killed(&self, session: u64) {
        let _ = self.cmds.try_send(Cmd::Killed { session });
    }

    /// Every notice from now on.
    pub(crate) fn watch(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.watchers.subscribe()
    }
}
