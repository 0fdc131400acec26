//! The host daemon: identity, endpoint, embedded relay, pairing, sessions, control socket.

mod accept;
mod agent_stream;
mod attach;
mod browser;
mod control;
pub mod devices;
pub(crate) mod door;
mod ended;
mod failover;
mod listen;
pub mod pairing;
pub mod push;
mod routes;
mod session_conn;
mod streams;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use iroh::{Endpoint, RelayUrl, SecretKey};
use peer_pairing::{HostIdentity, PairingPayload, PayloadError, RelayToken};
use peer_relay::pin::Fingerprint;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::keystore::{self, KeyStore};
use crate::net;
use crate::paths::{Paths, ensure_private_dir, write_private_file};
use crate::proto::{ALPN_BRIDGE, ALPN_PAIR, ALPN_SESSION};
use crate::proto::{HostStatus, Role};
use crate::pty::SessionManager;
use devices::Devices;
pub use ended::DEFAULT_KEEP as DEFAULT_KEEP_ENDED;
use pairing::Pairings;

/// Default output buffer per session.
pub const DEFAULT_BUFFER: usize = 8 * 1024 * 1024;
/// Default lifetime of a pairing code.
pub const DEFAULT_PAIRING_TTL: Duration = Duration::from_secs(300);
/// How long start-up waits for an external relay to accept the host before going on without.
const RELAY_WAIT: Duration = Duration::from_secs(5);
/// Most external relays a host uses: the pairing payload carries at most four.
pub const MAX_RELAYS: usize = routes::MAX_RELAYS;

/// How a host is set up.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// State directory.
    pub paths: Paths,
    /// Display name.
    pub name: String,
    /// IP to bind the endpoint and the embedded relay to; `::` (the default): every address of
    /// both families (IPv4 only on a machine without IPv6).
    pub listen: IpAddr,
    /// UDP port of the endpoint (`None`: the one used last time, else random).
    pub port: Option<u16>,
    /// TCP port of the embedded relay (`None`: the one used last time, else random).
    pub relay_port: Option<u16>,
    /// External relays instead of the embedded one (at most [`MAX_RELAYS`]): the host keeps a
    /// home relay among them and fails over; devices dial through any of them.
    pub relays: Vec<RelayUrl>,
    /// Token the external relays want (token mode); also handed to paired devices.
    pub relay_token: Option<RelayToken>,
    /// SHA-256 of the external relays' certificate: trust exactly it (self-signed relays); also
    /// handed to paired devices.
    pub relay_cert_sha256: Option<Fingerprint>,
    /// The IP written into URLs for the embedded relay (`None`: picked from the interfaces).
    pub advertise: Option<IpAddr>,
    /// No direct paths.
    pub relay_only: bool,
    /// Output buffer per session, bytes.
    pub buffer_bytes: usize,
    /// Scrollback lines the screen model keeps per session (what snapshots can draw).
    pub scrollback_lines: usize,
    /// Most sessions at once.
    pub max_sessions: usize,
    /// Ended sessions remembered (the newest), with their exit status and last output.
    pub keep_ended: usize,
    /// The binary that runs session keepers (`/proc/self/exe` for `peer host`): shells then
    /// outlive the host and the next host adopts them. `None` (`--kill-sessions-on-exit`, and
    /// hosts run inside another program, such as tests): sessions are the host's own and end
    /// with it.
    pub keeper_exe: Option<std::path::PathBuf>,
    /// Keep the host key in a file even where an OS keyring exists (tests).
    pub file_keys: bool,
    /// The web app the embedded front serves at `/`: the one built into the binary (default),
    /// a directory (`--web-root`), or none.
    pub web_app: peer_relay::WebApp,
    /// Base of pairing links (the web app's URL); `None`: the first relay URL.
    pub app_url: Option<String>,
    /// How long an attachment whose client vanished keeps its place.
    pub attach_hold: Duration,
    /// How notifications are sent.
    pub push: push::PushConfig,
}

impl HostConfig {
    /// Defaults for a home.
    pub fn new(paths: Paths) -> Self {
        HostConfig {
            paths,
            name: default_host_name(),
            listen: listen::BOTH,
            port: None,
            relay_port: None,
            relays: Vec::new(),
            relay_token: None,
            relay_cert_sha256: None,
            advertise: None,
            relay_only: false,
            buffer_bytes: DEFAULT_BUFFER,
            scrollback_lines: crate::pty::screen::DEFAULT_SCROLLBACK,
            max_sessions: 256,
            keep_ended: ended::DEFAULT_KEEP,
            keeper_exe: None,
            file_keys: false,
            web_app: peer_relay::WebApp::BuiltIn,
            app_url: None,
            attach_hold: crate::pty::ATTACH_HOLD,
            push: push::PushConfig::default(),
        }
    }
}

/// Checks a web app URL for pairing links: `http://` or `https://`, a host, and a path that
/// ends with `/` (added if missing), no fragment. Returns it normalized.
pub fn check_app_url(url: &str) -> Result<String, String> {
    let u: http::Uri = url
        .parse()
        .map_err(|e| format!("--app-url {url:?} is not a URL: {e}"))?;
    if !matches!(u.scheme_str(), Some("http" | "https")) || u.host().is_none() {
        return Err(format!(
            "--app-url {url:?} must be an http:// or https:// URL"
        ));
    }
    if url.contains('#') || u.query().is_some() {
        return Err(format!(
            "--app-url {url:?} may not have a query or fragment (the pairing code goes there)"
        ));
    }
    let mut s = url.to_owned();
    if !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

/// The machine's host name, or "peer host".
pub fn default_host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "peer host".into())
}

/// Something the host wants its operator to see.
#[derive(Debug, Clone)]
pub enum HostEvent {
    /// A device paired.
    Paired {
        /// Its name.
        name: String,
        /// Its id, hex.
        device: String,
        /// Its role.
        role: Role,
        /// The short code both sides show.
        code: String,
    },
    /// A pairing attempt failed.
    PairingFailed(String),
}

/// State shared by all connection handlers.
#[derive(Debug)]
pub struct HostShared {
    pub(crate) name: String,
    pub(crate) instance: u64,
    pub(crate) identity: HostIdentity,
    /// The endpoint; replaced when relay failover rebinds it ([`failover`]).
    pub(crate) endpoint: tokio::sync::watch::Sender<Endpoint>,
    /// Counts relay failovers: connections close (asking their clients to come back) when it
    /// changes, just before the endpoint is replaced.
    pub(crate) relocations: tokio::sync::watch::Sender<u64>,
    pub(crate) devices: Devices,
    pub(crate) sessions: Arc<SessionManager>,
    /// Ended sessions, remembered across restarts.
    pub(crate) ended: Arc<ended::Ended>,
    pub(crate) pairings: Pairings,
    /// Limits on pairing attempts and failed authentication.
    pub(crate) door: door::Door,
    pub(crate) shutdown: CancellationToken,
    pub(crate) relay_urls: Vec<RelayUrl>,
    pub(crate) web_base: String,
    pub(crate) key_store: KeyStore,
    pub(crate) events: mpsc::Sender<HostEvent>,
    pub(crate) relay_only: bool,
    /// Handed to devices in the pairing payload.
    pub(crate) relay_token: Option<RelayToken>,
    pub(crate) relay_cert_sha256: Option<Fingerprint>,
    pub(crate) agents: crate::agent::AgentManager,
    pub(crate) push: push::Push,
    /// How long an attachment whose client vanished keeps its place.
    pub(crate) attach_hold: Duration,
}

/// A running host.
#[derive(Debug)]
pub struct Host {
    shared: Arc<HostShared>,
    tasks: TaskTracker,
    relay: Option<peer_relay::EmbeddedRelay>,
    events: Option<mpsc::Receiver<HostEvent>>,
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Another host runs with this state directory.
    #[error("a host is already running for {0} (its control socket answers)")]
    AlreadyRunning(String),
    /// State directory problems.
    #[error("state directory: {0}")]
    Io(#[from] std::io::Error),
    /// Key problems.
    #[error(transparent)]
    Key(#[from] keystore::KeyStoreError),
    /// The database cannot be opened.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The device table cannot be read.
    #[error(transparent)]
    Devices(#[from] devices::DeviceError),
    /// The agent registry or the agent database.
    #[error(transparent)]
    Agents(#[from] crate::agent::AgentError),
    /// Network problems.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// The embedded relay failed.
    #[error("embedded relay: {0}")]
    Relay(String),
    /// The settings do not fit together.
    #[error("{0}")]
    Config(String),
    /// The external relay cannot be used.
    #[error("cannot use the relay: {0}")]
    RelayRefused(#[from] net::RelayProblem),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ports {
    udp: Option<u16>,
    relay: Option<u16>,
}

impl Host {
    /// Starts a host: loads or creates its identity, binds, and begins serving.
    pub async fn start(cfg: HostConfig) -> Result<Host, HostError> {
        if cfg.relays.is_empty() && (cfg.relay_token.is_some() || cfg.relay_cert_sha256.is_some()) {
            return Err(HostError::Config(
                "a relay token or certificate pin needs an external relay (--relay URL); \
                 the embedded relay admits everyone and speaks plain HTTP"
                    .into(),
            ));
        }
        if cfg.relays.len() > MAX_RELAYS {
            return Err(HostError::Config(format!(
                "at most {MAX_RELAYS} relays (--relay) fit in a pairing code, not {}",
                cfg.relays.len()
            )));
        }
        let dir = cfg.paths.host_dir();
        ensure_private_dir(&dir)?;
        let sock = cfg.paths.control_socket();
        if tokio::net::UnixStream::connect(&sock).await.is_ok() {
            return Err(HostError::AlreadyRunning(
                cfg.paths.root().display().to_string(),
            ));
        }

        let kdir = dir.clone();
        let file_keys = cfg.file_keys;
        let (identity, key_store) = tokio::task::spawn_blocking(move || {
            keystore::load_or_create(
                &kdir,
                "host",
                file_keys,
                || {
                    let id = HostIdentity::generate();
                    let bytes = id.to_bytes();
                    (id, bytes)
                },
                |b| HostIdentity::from_bytes(b).map_err(|e| e.to_string()),
            )
        })
        .await
        .map_err(|e| HostError::Io(std::io::Error::other(e)))??;

        let ports_path = dir.join("ports.json");
        let saved: Ports = std::fs::read(&ports_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();

        let secret = SecretKey::from_bytes(identity.iroh_secret.as_bytes());
        // The embedded front: relay, this host's mobile bridge and the web app on one port.
        let bridge_route = peer_relay::BridgeRoute::only_host(secret.public());
        let front_ip = listen::front_ip(cfg.listen);
        let front = |port| {
            peer_relay::FrontConfig::http(SocketAddr::new(front_ip, port))
                .route(peer_relay::BRIDGE_PREFIX, bridge_route.clone())
                .web_app(cfg.web_app.clone())
        };
        let relay = match cfg.relays.is_empty() {
            false => None,
            true => {
                let port = cfg.relay_port.or(saved.relay).unwrap_or(0);
                let relay = match peer_relay::EmbeddedRelay::spawn_with(front(port)).await {
                    Ok(r) => r,
                    // The remembered port is taken: take any.
                    Err(e) if cfg.relay_port.is_none() && port != 0 => {
                        warn!("relay port {port} unavailable ({e}); using a new one");
                        peer_relay::EmbeddedRelay::spawn_with(front(0))
                            .await
                            .map_err(|e| HostError::Relay(e.to_string()))?
                    }
                    Err(e) => return Err(HostError::Relay(e.to_string())),
                };
                Some(relay)
            }
        };

        let alpns = vec![
            ALPN_PAIR.to_vec(),
            ALPN_SESSION.to_vec(),
            ALPN_BRIDGE.to_vec(),
        ];
        let udp = listen::udp_port(cfg.listen, cfg.port.or(saved.udp).unwrap_or(0));
        let relay_urls = match &relay {
            None => cfg.relays.clone(),
            Some(r) => listen::advertised(cfg.advertise, front_ip)
                .into_iter()
                .take(MAX_RELAYS)
                .map(|ip| r.url_for(ip))
                .collect(),
        };
        // The host's own dial to its embedded relay stays on this machine.
        let local_relays = match &relay {
            Some(r) => vec![r.url_for(listen::loopback_for(front_ip))],
            None => relay_urls.clone(),
        };
        let bind = |port| net::EndpointOptions {
            secret: secret.clone(),
            relays: local_relays.clone(),
            bind: Some(SocketAddr::new(cfg.listen, port)),
            relay_only: cfg.relay_only,
            alpns: alpns.clone(),
        };
        let auth = net::RelayAuth {
            token: cfg.relay_token.clone(),
            pin: cfg.relay_cert_sha256,
            ..net::RelayAuth::default()
        };
        let endpoint = match net::bind_endpoint_with(bind(udp), &auth).await {
            Ok(e) => e,
            Err(e) if cfg.port.is_none() && udp != 0 => {
                warn!("UDP port {udp} unavailable ({e}); using a new one");
                net::bind_endpoint_with(bind(0), &auth).await?
            }
            Err(e) => return Err(e.into()),
        };
        if !cfg.relays.is_empty() {
            // A relay that refuses this host or fails the pin is a setup error: say so now
            // rather than serve a pairing code nobody can use. An unreachable relay may come
            // back; iroh keeps trying.
            tokio::select! {
                online = tokio::time::timeout(RELAY_WAIT, endpoint.online()) => {
                    if online.is_err() {
                        warn!(relays = ?cfg.relays, "no relay is reachable yet; carrying on");
                    }
                }
                problem = auth.fatal(&endpoint) => {
                    endpoint.close().await;
                    return Err(problem.into());
                }
            }
        }
        let bound_udp = endpoint.bound_sockets().first().map(|s| s.port());
        let rebind = failover::Rebind {
            opts: bind(bound_udp.unwrap_or(0)),
            auth: auth.clone(),
        };
        let ports = Ports {
            udp: bound_udp,
            relay: relay.as_ref().map(|r| r.http_addr().port()),
        };
        if let Ok(b) = serde_json::to_vec(&ports) {
            let _ = write_private_file(&ports_path, &b);
        }

        let db_path = cfg.paths.host_db();
        let db = tokio::task::spawn_blocking(move || crate::db::Db::open(&db_path))
            .await
            .map_err(|_| crate::db::DbError::Gone)??;
        let devices = Devices::load(db.clone()).await?;
        let web_base = match (&cfg.app_url, relay_urls.first()) {
            (Some(app), _) => app.clone(),
            (None, Some(u)) => u.to_string(),
            (None, None) => "peer:".into(),
        };
        let (events_tx, events_rx) = mpsc::channel(64);
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let agents = crate::agent::AgentManager::start(
            &cfg.paths,
            db.clone(),
            tasks.clone(),
            shutdown.clone(),
        )
        .await?;
        let mut sessions =
            SessionManager::new(cfg.buffer_bytes, cfg.scrollback_lines, cfg.max_sessions);
        if let Some(exe) = &cfg.keeper_exe {
            sessions = sessions.with_keepers(crate::pty::keeper::Keepers::new(
                exe.clone(),
                cfg.paths.host_dir().join("keepers"),
            ));
        }
        let sessions = Arc::new(sessions);
        let ended = Arc::new(ended::Ended::load(db.clone(), cfg.keep_ended).await?);
        sessions.reserve_ids(ended.next_id());
        let adopted = sessions.adopt_all().await;
        if adopted > 0 {
            info!(
                sessions = adopted,
                "took over sessions kept from an earlier host"
            );
        }
        tasks.spawn(
            ended
                .clone()
                .follow(sessions.clone(), sessions.events(), shutdown.clone()),
        );
        let sources = push::Sources {
            agents: agents.clone(),
            sessions: sessions.clone(),
            devices: devices.clone(),
            host_id: hex::encode(endpoint.id().as_bytes()),
            host_name: cfg.name.clone(),
        };
        let push = push::Push::start(&cfg.push, db, sources, &tasks, shutdown.clone()).await;
        let shared = Arc::new(HostShared {
            name: cfg.name.clone(),
            // Below 2^53, so that a JavaScript number holds it exactly.
            instance: rand::random::<u64>() >> 11,
            identity,
            endpoint: tokio::sync::watch::Sender::new(endpoint),
            relocations: tokio::sync::watch::Sender::new(0),
            devices,
            sessions,
            ended,
            pairings: Pairings::default(),
            door: door::Door::default(),
            shutdown,
            relay_urls,
            web_base,
            key_store,
            events: events_tx,
            relay_only: cfg.relay_only,
            relay_token: cfg.relay_token.clone(),
            relay_cert_sha256: cfg.relay_cert_sha256,
            agents,
            push,
            attach_hold: cfg.attach_hold,
        });

        // The embedded front hands this host's browser sockets straight to it.
        bridge_route.set_handler(Arc::new(browser::io::LocalSockets::new(&shared)));

        tasks.spawn(accept::accept_loop(shared.clone(), tasks.clone()));
        tasks.spawn(failover::keep_home_relay(shared.clone(), rebind));
        let listener = control::bind(&sock)?;
        tasks.spawn(control::serve(shared.clone(), listener, sock));
        if let Err(e) = shared.agents.resume().await {
            shared.shutdown.cancel();
            return Err(e.into());
        }
        info!(
            id = %shared.endpoint().id(),
            relays = ?shared.relay_urls,
            "host started"
        );
        Ok(Host {
            shared,
            tasks,
            relay,
            events: Some(events_rx),
        })
    }

    /// Events for the operator (pairings). Can be taken once.
    pub fn take_events(&mut self) -> Option<mpsc::Receiver<HostEvent>> {
        self.events.take()
    }

    /// A fresh one-time pairing URL and its expiry (unix seconds).
    pub fn pairing_url(&self, role: Role, ttl: Duration) -> Result<(String, u64), PayloadError> {
        self.shared.pairing_url(role, ttl)
    }

    /// The host's endpoint id.
    pub fn endpoint_id(&self) -> iroh::EndpointId {
        self.shared.endpoint().id()
    }

    /// Where the host key is kept.
    pub fn key_store(&self) -> &KeyStore {
        &self.shared.key_store
    }

    /// Status, as `peer status` shows it, without the GPUs (the control socket asks
    /// `nvidia-smi` for those).
    pub fn status(&self) -> HostStatus {
        self.shared.status()
    }

    /// Stops: tells every client why, hands kept sessions to their keepers and kills the
    /// others, closes the endpoint.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.tasks.close();
        // Connection handlers close their connections with SHUTTING_DOWN on cancel.
        let _ = tokio::time::timeout(Duration::from_secs(3), self.tasks.wait()).await;
        self.shared.agents.flush().await;
        // Kept sessions go on in their keepers (the next host takes them over); the host's own
        // end with it.
        self.shared.sessions.release_all().await;
        // The sessions just killed are listed, as ended, after the next start.
        self.shared
            .ended
            .remember_all(&self.shared.sessions, false)
            .await;
        self.shared.endpoint().close().await;
        if let Some(relay) = self.relay {
            relay.shutdown().await;
        }
    }
}

impl HostShared {
    /// The endpoint now (failover may replace it).
    pub(crate) fn endpoint(&self) -> Endpoint {
        self.endpoint.borrow().clone()
    }

    fn pairing_url(&self, role: Role, ttl: Duration) -> Result<(String, u64), PayloadError> {
        let (secret, expires_at) = self.pairings.issue(role, ttl);
        let payload = PairingPayload {
            host_id: *self.endpoint().id().as_bytes(),
            host_noise_key: self.identity.noise.public(),
            secret,
            expires_at,
            relay_urls: self.relay_urls_home_first(),
            direct_addrs: self.direct_addrs(),
            host_name: pairing::clean_name(&self.name).map(|n| n.chars().take(32).collect()),
            relay_cert_sha256: self.relay_cert_sha256.map(|f| f.0),
            relay_token: self.relay_token.clone(),
        };
        Ok((payload.to_url(&self.web_base)?, expires_at))
    }

    fn status(&self) -> HostStatus {
        let endpoint = self.endpoint();
        let addr = endpoint.addr();
        HostStatus {
            host_name: self.name.clone(),
            endpoint_id: endpoint.id().to_string(),
            relay_urls: self.relay_urls.iter().map(|u| u.to_string()).collect(),
            direct_addrs: addr.ip_addrs().map(|a| a.to_string()).collect(),
            key_store: self.key_store.to_string(),
            sessions: self.sessions.len() as u32,
            connections: self.devices.live_count(),
            // Filled in by the control socket, which may wait for nvidia-smi.
            gpus: vec![],
        }
    }
}
