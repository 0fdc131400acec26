//! A front server's life: [`Front::spawn`] binds the listeners and starts the accept loop;
//! [`Front::shutdown`] (or [`Front::abort`], for `Drop`) stops it and closes every connection.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::Full;
use iroh_relay::{
    KeyCache,
    http::RELAY_PROBE_PATH,
    server::{
        ClientRateLimit, Handlers, Metrics as RelayMetrics, RelayService, http_server::BytesBody,
    },
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::{
    sync::CancellationToken,
    task::{AbortOnDropHandle, TaskTracker},
};
use tracing::{Instrument as _, debug, info, info_span, warn};

use super::{
    config::{FrontConfig, WebApp, validate_prefix},
    conn::{ConnTracker, Refusal},
    fds::{FdBudget, Headroom, Throttled},
    metrics::FrontMetrics,
    relay_access::RelayAccess,
    service::serve_connection,
    shared::Shared,
    statics::{StaticFiles, Statics},
    web_app::EmbeddedApp,
};
use crate::{RelayError, access::AccessPolicy};

/// How often at most the accept loop logs a recurring problem (with a count).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A running front server (the engine of [`crate::EmbeddedRelay`]).
#[derive(Debug)]
pub(crate) struct Front {
    pub(crate) http_addr: Option<SocketAddr>,
    pub(crate) https_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    accept_task: Option<AbortOnDropHandle<()>>,
}

/// How long stopping keeps disconnecting relay clients that register late.
const STRAGGLER_TIMEOUT: Duration = Duration::from_secs(2);

impl Front {
    pub(crate) async fn spawn(config: FrontConfig) -> Result<Self, RelayError> {
        if config.http_bind.is_none() && config.https.is_none() {
            return Err(RelayError::NoListener);
        }
        for (prefix, _) in &config.routes {
            validate_prefix(prefix).map_err(|reason| RelayError::InvalidConfig { reason })?;
        }
        let mut routes = config.routes;
        let mut seen = std::collections::HashSet::new();
        if let Some((prefix, _)) = routes.iter().find(|(prefix, _)| !seen.insert(*prefix)) {
            return Err(RelayError::InvalidConfig {
                reason: format!("route prefix {prefix:?} is given twice"),
            });
        }
        routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let max_age = config.static_max_age.unwrap_or(Duration::from_secs(5 * 60));
        let statics = match config.web_app {
            WebApp::Off => None,
            WebApp::BuiltIn => Some(Statics::Embedded(EmbeddedApp::built_in(max_age))),
            WebApp::Dir(dir) => {
                let root =
                    tokio::fs::canonicalize(&dir)
                        .await
                        .map_err(|source| RelayError::WebRoot {
                            path: dir.clone(),
                            source,
                        })?;
                let meta =
                    tokio::fs::metadata(&root)
                        .await
                        .map_err(|source| RelayError::WebRoot {
                            path: dir.clone(),
                            source,
                        })?;
                if !meta.is_dir() {
                    return Err(RelayError::WebRoot {
                        path: dir,
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotADirectory,
                            "not a directory",
                        ),
                    });
                }
                Some(Statics::Dir(StaticFiles::new(root, max_age)))
            }
        };

        let http_listener = match config.http_bind {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let https_listener = match &config.https {
            Some((addr, tls)) => {
                let mut tls = Arc::clone(tls);
                if tls.alpn_protocols.is_empty() {
                    let mut with_alpn = (*tls).clone();
                    with_alpn.alpn_protocols = vec![b"http/1.1".to_vec()];
                    tls = Arc::new(with_alpn);
                }
                Some((bind(*addr).await?, TlsAcceptor::from(tls)))
            }
            None => None,
        };
        let http_addr = local_addr(http_listener.as_ref())?;
        let https_addr = local_addr(https_listener.as_ref().map(|(l, _)| l))?;

        let metrics = Arc::new(FrontMetrics::default());
        let tracker = ConnTracker::new(config.limits.clone());
        let access = Arc::new(RelayAccess::new(
            config.access,
            tracker.clone(),
            metrics.clone(),
        ));
        let relay_metrics = Arc::new(RelayMetrics::default());
        let relay = RelayService::new(
            relay_handlers(),
            HeaderMap::new(),
            config
                .limits
                .relay_client_rx_bytes_per_second
                .map(ClientRateLimit::new),
            KeyCache::new(KEY_CACHE_CAPACITY),
            access.clone(),
            relay_metrics.clone(),
        );
        let shared = Arc::new(Shared {
            relay,
            relay_metrics,
            access,
            tracker,
            metrics,
            statics,
            routes,
            metrics_exposure: config.metrics,
            fds: FdBudget::new(config.limits.fd_reserve),
            limits: config.limits,
            accept_log: Throttled::new(LOG_EVERY),
            fd_log: Throttled::new(LOG_EVERY),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        if let Some(addr) = http_addr {
            info!(%addr, "front server listening (HTTP)");
        }
        if let Some(addr) = https_addr {
            info!(%addr, "front server listening (HTTPS)");
        }
        debug!(
            fd_limit = shared.fds.limit(),
            fd_reserve = shared.fds.reserve(),
            "descriptor reserve"
        );
        let accept_task = tokio::spawn(
            accept_loop(shared.clone(), http_listener, https_listener)
                .instrument(info_span!("peer-relay-accept")),
        );
        Ok(Self {
            http_addr,
            https_addr,
            shared,
            accept_task: Some(AbortOnDropHandle::new(accept_task)),
        })
    }

    /// Connected relay clients.
    pub(crate) fn relay_client_count(&self) -> usize {
        self.shared.access.client_count()
    }

    pub(crate) fn metrics_text(&self) -> String {
        self.shared.render_metrics()
    }

    pub(crate) fn access_mode(&self) -> crate::AccessMode {
        self.shared.access.mode()
    }

    /// Admits `endpoint` (one of the relay's own services) whatever the access policy.
    pub(crate) fn admit_service(&self, endpoint: iroh_base::EndpointId) {
        self.shared.access.admit_service(endpoint);
    }

    /// Replaces the access policy and disconnects relay clients it no longer admits.
    pub(crate) fn set_access_policy(&self, policy: AccessPolicy) -> usize {
        let revoked = self.shared.access.set_policy(policy);
        for (endpoint, connection) in &revoked {
            info!(endpoint = %endpoint.fmt_short(), "access revoked; disconnecting relay client");
            self.shared
                .relay
                .clients()
                .disconnect(*endpoint, Some(*connection));
        }
        revoked.len()
    }

    /// Waits until the accept loop ends, which only happens on shutdown or if it panicked.
    pub(crate) async fn join(&mut self) -> Result<(), RelayError> {
        let Some(task) = self.accept_task.as_mut() else {
            return Ok(());
        };
        let result = task.await;
        self.accept_task = None;
        result.map_err(|source| RelayError::Task { source })
    }

    /// Stops accepting, lets connections finish for a moment, then closes everything: relay
    /// clients, upgraded routes, stalled handshakes. Returns once all tasks have ended.
    pub(crate) async fn shutdown(&mut self) {
        let shared = &self.shared;
        shared.access.close();
        shared.tracker.close();
        shared.cancel.cancel();
        if let Some(task) = self.accept_task.take() {
            // The listeners are dropped with the loop.
            let _ = task.await;
        }
        let grace = shared.limits.shutdown_grace;
        // Disconnects every registered relay client (bounded: a stuck client is force-closed
        // below).
        if tokio::time::timeout(grace, shared.relay.shutdown())
            .await
            .is_err()
        {
            warn!("relay clients did not disconnect in time; closing their sockets");
        }
        for (prefix, route) in &shared.routes {
            debug!(prefix, "stopping route");
            if tokio::time::timeout(grace, route.shutdown()).await.is_err() {
                warn!(prefix, "route did not stop in time");
            }
        }
        shared.tasks.close();
        let _ = tokio::time::timeout(grace, shared.tasks.wait()).await;
        // Whatever is left (late relay clients, stalled handshakes, connections ignoring the
        // graceful close) is closed at the socket.
        let deadline = tokio::time::Instant::now() + STRAGGLER_TIMEOUT;
        loop {
            shared.tracker.kill_all();
            for endpoint in shared.access.connected() {
                shared.relay.clients().disconnect(endpoint, None);
            }
            let done = shared.access.client_count() == 0 && shared.tracker.open_count() == 0;
            if done || tokio::time::Instant::now() >= deadline {
                if !done {
                    warn!(
                        relay_clients = shared.access.client_count(),
                        connections = shared.tracker.open_count(),
                        "connections still open after shutdown"
                    );
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = tokio::time::timeout(grace, shared.tasks.wait()).await;
        info!("front server stopped");
    }

    /// The synchronous part of stopping, for `Drop`: stop accepting and close every socket.
    pub(crate) fn abort(&mut self) {
        let shared = &self.shared;
        shared.access.close();
        shared.tracker.close();
        shared.cancel.cancel();
        // Aborting the accept loop drops the listeners.
        self.accept_task = None;
        for endpoint in shared.access.connected() {
            shared.relay.clients().disconnect(endpoint, None);
        }
        shared.tracker.kill_all();
        // A client admitted a moment ago may register only after this; a short-lived task
        // catches it (and covers platforms without socket duplication).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = shared.clone();
            runtime.spawn(async move {
                let deadline = tokio::time::Instant::now() + STRAGGLER_TIMEOUT;
                while tokio::time::Instant::now() < deadline
                    && (shared.access.client_count() > 0 || shared.tracker.open_count() > 0)
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    shared.tracker.kill_all();
                    for endpoint in shared.access.connected() {
                        shared.relay.clients().disconnect(endpoint, None);
                    }
                }
            });
        }
    }
}

/// Public keys remembered by the relay service (it keeps parsed keys of active clients).
const KEY_CACHE_CAPACITY: usize = 64 * 1024;

async fn bind(addr: SocketAddr) -> Result<TcpListener, RelayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RelayError::Bind { addr, source })
}

fn local_addr(listener: Option<&TcpListener>) -> Result<Option<SocketAddr>, RelayError> {
    listener
        .map(|l| {
            l.local_addr().map_err(|source| RelayError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
        })
        .transpose()
}

/// The relay service's own handlers: latency probes and the captive-portal check.
fn relay_handlers() -> Handlers {
    fn body(bytes: &'static [u8]) -> BytesBody {
        Box::new(Full::new(bytes::Bytes::from_static(bytes)))
    }
    let mut handlers = Handlers::default();
    handlers.insert(
        (Method::GET, RELAY_PROBE_PATH),
        Box::new(|_request, response| {
            Ok(response
                .status(StatusCode::OK)
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
                .header(header::CACHE_CONTROL, "no-store")
                .body(body(b""))?)
        }),
    );
    handlers.insert(
        (Method::GET, "/generate_204"),
        Box::new(|_request, response| {
            Ok(response
                .status(StatusCode::NO_CONTENT)
                .header(header::CACHE_CONTROL, "no-store")
                .body(body(b""))?)
        }),
    );
    handlers
}

async fn accept_next(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    http: Option<TcpListener>,
    https: Option<(TcpListener, TlsAcceptor)>,
) {
    let (https_listener, acceptor) = match https {
        Some((listener, acceptor)) => (Some(listener), Some(acceptor)),
        None => (None, None),
    };
    loop {
        let (accepted, tls) = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => break,
            accepted = accept_next(http.as_ref()) => (accepted, None),
            accepted = accept_next(https_listener.as_ref()) => (accepted, acceptor.clone()),
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Typically out of file descriptors (the reserve was eaten by something else):
                // back off instead of spinning, and say so at most once per LOG_EVERY.
                shared.metrics.accept_failed();
                if let Some(count) = shared.accept_log.hit() {
                    warn!(
                        %err,
                        failures = count,
                        fd_limit = shared.fds.limit(),
                        "accept failed (failures: since the last such line)"
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let headroom = shared.fds.classify_stream(&stream);
        if headroom == Headroom::Exhausted {
            shared.metrics.refused(Refusal::FdLimit);
            if let Some(count) = shared.fd_log.hit() {
                warn!(
                    refused = count,
                    fd_limit = shared.fds.limit(),
                    reserve = shared.fds.reserve(),
                    "out of file descriptors: closing new connections at accept \
                     (refused: since the last such line)"
                );
            }
            let _ = stream.set_zero_linger();
            drop(stream);
            continue;
        }
        let in_reserve = headroom == Headroom::Reserve;
        // A connection in the reserve is never upgraded, so it needs no duplicate to be
        // force-closed (and costs one descriptor).
        let slot = match shared.tracker.admit(&stream, peer, !in_reserve) {
            Ok(slot) => slot,
            Err(refusal) => {
                shared.metrics.refused(refusal);
                if refusal != Refusal::ShuttingDown {
                    debug!(%peer, ?refusal, "connection refused");
                }
                // Closed at once; no linger on a refused client.
                let _ = stream.set_zero_linger();
                drop(stream);
                continue;
            }
        };
        shared.metrics.accepted();
        let conn_shared = shared.clone();
        shared.tasks.spawn(
            serve_connection(conn_shared, stream, peer, slot, tls, in_reserve)
                .instrument(info_span!("conn", %peer)),
        );
    }
    debug!("accept loop stopped");
}
