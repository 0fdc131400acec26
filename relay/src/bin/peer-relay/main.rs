//! `peer-relay`: runs the peer relay server until SIGINT or SIGTERM.
//!
//! This file configures, starts and reports; `cli` holds the flags, `signals` the signals.

mod cli;
mod signals;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context as _;
use clap::Parser as _;
use peer_relay::{
    AccessPolicy, BRIDGE_PREFIX, BridgeRoute, EmbeddedRelay, RelayToken, WebApp,
    config::{CertSource, ConfigFile, Overrides, Settings},
    tls::{CertResolver, TlsIdentity, dev_names, server_config},
};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use self::{
    cli::Args,
    signals::{Signal, Signals},
};

fn main() -> ExitCode {
    let args = Args::parse();
    if args.generate_token {
        println!("{}", RelayToken::generate().as_str());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: not in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("peer-relay: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything loaded from files: done before the runtime starts, and again on SIGHUP.
struct Loaded {
    settings: Settings,
    policy: AccessPolicy,
    /// The certificate to serve, if HTTPS is on.
    identity: Option<TlsIdentity>,
}

fn load(config: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Loaded> {
    let file = match config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let settings = Settings::resolve(file, overrides.clone())?;
    if let Some(path) = &settings.tokens_file {
        warn_if_world_readable(path);
    }
    let policy = settings.access_policy()?;
    let identity = match &settings.https {
        None => None,
        Some((_, CertSource::Files { cert, key })) => {
            Some(TlsIdentity::from_pem_files(cert, key).context("loading the TLS certificate")?)
        }
        Some((addr, CertSource::Dev { dir, names })) => {
            let mut extra = names.clone();
            extra.extend(settings.advertise.clone());
            extra.push(addr.ip().to_string());
            Some(
                TlsIdentity::dev(dir.as_deref(), &dev_names(extra))
                    .context("creating the development certificate")?,
            )
        }
    };
    Ok(Loaded {
        settings,
        policy,
        identity,
    })
}

fn warn_if_world_readable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            warn!(
                path = %path.display(),
                "the tokens file is readable by every user; chmod 600 or 640 it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn refuse_root(allow_root: bool) -> anyhow::Result<()> {
    #[cfg(unix)]
    if nix::unistd::geteuid().is_root() {
        if allow_root {
            warn!("running as root (--allow-root)");
        } else {
            anyhow::bail!(
                "refusing to run as root: the relay faces the internet and needs no privileges. \
                 Run it as an unprivileged user; to bind ports below 1024 use the systemd unit \
                 (peer-relay.service grants only CAP_NET_BIND_SERVICE). --allow-root overrides."
            );
        }
    }
    #[cfg(not(unix))]
    let _ = allow_root;
    Ok(())
}

/// Raises the soft descriptor limit to the hard one, and says so: every connection holds a
/// descriptor, so the usual soft limit of 1024 would cap the relay near a thousand clients.
///
/// Done here, not in the library: the limit belongs to the whole process, and a process that
/// embeds the relay (`peer host`) decides for itself. The library keeps its reserve below
/// whatever limit it finds.
fn raise_fd_limit(settings: &Settings) {
    let limit = match peer_relay::fd_limit::raise_soft_limit() {
        Ok(raised) if raised.after.soft > raised.before.soft => {
            info!(
                from = raised.before.soft,
                to = raised.after.soft,
                hard = raised.after.hard,
                "raised the file descriptor limit (soft RLIMIT_NOFILE) to the hard limit"
            );
            raised.after
        }
        Ok(raised) => {
            info!(
                limit = raised.after.soft,
                hard = raised.after.hard,
                "file descriptor limit (already the hard limit)"
            );
            raised.after
        }
        Err(err) => match peer_relay::fd_limit::current() {
            Ok(limit) => {
                warn!(%err, limit = limit.soft, "cannot raise the file descriptor limit");
                limit
            }
            Err(_) => return,
        },
    };
    let usable = limit.soft.saturating_sub(settings.limits.fd_reserve as u64);
    if let Some(max) = settings.limits.max_connections
        && usable < max as u64
    {
        warn!(
            fd_limit = limit.soft,
            fd_reserve = settings.limits.fd_reserve,
            max_connections = max,
            "the file descriptor limit allows fewer connections than max_connections: \
             raise the hard limit (LimitNOFILE= in the systemd unit, ulimit -Hn)"
        );
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    refuse_root(args.allow_root)?;
    let overrides = args.overrides();
    let loaded = load(args.config.as_deref(), &overrides)?;
    let resolver = loaded
        .identity
        .as_ref()
        .map(CertResolver::new)
        .transpose()?;
    let tls = resolver.clone().map(server_config).transpose()?;
    if args.check {
        println!("configuration OK");
        if let Some(identity) = &loaded.identity {
            println!(
                "certificate SHA-256 fingerprint: {}",
                identity.fingerprint()
            );
        }
        return Ok(());
    }
    raise_fd_limit(&loaded.settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("peer-relay")
        .build()
        .context("starting the async runtime")?;
    let quic = match (args.quic_bind.as_deref(), &tls) {
        (Some("off"), _) | (None, None) => None,
        (Some(addr), None) => {
            anyhow::bail!("--quic-bind {addr} needs HTTPS (--cert/--key or --dev-tls)")
        }
        (addr, Some(_)) => Some(
            addr.unwrap_or("0.0.0.0:7842")
                .parse::<SocketAddr>()
                .context("--quic-bind")?,
        ),
    };
    runtime.block_on(serve(args.config, overrides, loaded, resolver, tls, quic))
}

async fn serve(
    config_path: Option<PathBuf>,
    overrides: Overrides,
    loaded: Loaded,
    resolver: Option<Arc<CertResolver>>,
    tls: Option<Arc<rustls::ServerConfig>>,
    quic: Option<SocketAddr>,
) -> anyhow::Result<()> {
    // Install the handlers before starting, so an early signal is not lost.
    let mut signals = Signals::install()?;
    let Loaded {
        settings,
        policy,
        identity,
    } = loaded;
    // QUIC address discovery is iroh's own server, run with only that service enabled.
    let qad = match (quic, &tls) {
        (Some(bind), Some(tls)) => {
            let mut config = iroh_relay::server::ServerConfig::default();
            let mut quic = iroh_relay::server::QuicConfig::new(bind);
            quic.server_config = Some((**tls).clone());
            config.quic = Some(quic);
            let server = iroh_relay::server::Server::spawn(config)
                .await
                .context("starting QUIC address discovery")?;
            if let Some(addr) = server.quic_addr() {
                println!("QUIC address discovery on {addr} (UDP)");
            }
            Some(server)
        }
        _ => None,
    };
    let bridge_route = BridgeRoute::new();
    let front = settings
        .front_config(tls, policy)
        .route(BRIDGE_PREFIX, bridge_route.clone());
    let mut relay = EmbeddedRelay::spawn_with(front).await?;
    let bridge_endpoint = match start_bridge(&relay, identity.as_ref()).await {
        Ok((endpoint, bridge)) => {
            bridge_route.set_bridge(bridge);
            Some(endpoint)
        }
        Err(e) => {
            warn!("the mobile bridge is off: {e:#}");
            None
        }
    };
    print_summary(&relay, &settings, identity.as_ref());

    loop {
        tokio::select! {
            result = relay.join() => {
                result.context("relay server failed")?;
                anyhow::bail!("relay server stopped unexpectedly");
            }
            signal = signals.recv() => match signal {
                Signal::Reload => {
                    reload(&relay, config_path.clone(), &overrides, &settings, resolver.as_ref())
                        .await;
                }
                Signal::Stop(name) => {
                    info!("received {name}, shutting down");
                    break;
                }
            },
        }
    }
    relay.shutdown().await;
    if let Some(server) = qad
        && let Err(e) = server.shutdown().await
    {
        warn!("QUIC address discovery: {e}");
    }
    if let Some(endpoint) = bridge_endpoint {
        endpoint.close().await;
    }
    info!("relay stopped");
    Ok(())
}

/// The bridge's own iroh endpoint, dialing hosts through this relay (over its HTTP listener, or
/// its HTTPS one with the relay's own certificate pinned).
async fn start_bridge(
    relay: &EmbeddedRelay,
    identity: Option<&TlsIdentity>,
) -> anyhow::Result<(iroh::Endpoint, peer_mobile_bridge::Bridge)> {
    use iroh::endpoint::presets;
    let loopback: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
    let mut builder = iroh::Endpoint::builder(presets::Minimal);
    let https_only = relay.https_addr() == Some(relay.http_addr());
    let url = if https_only {
        let identity = identity.context("HTTPS without a certificate")?;
        let pin = peer_relay::pin::Fingerprint::of(identity.certificate());
        builder = builder.ca_tls_config(iroh::tls::CaTlsConfig::custom_server_cert_verifier(
            Arc::new(move |provider| Ok(peer_relay::pin::verifier(pin, provider))),
        ));
        relay.https_url("127.0.0.1").context("https url")?
    } else {
        relay.url_for(loopback)
    };
    // The bridge's endpoint must get in whatever the access policy: admit its id (proven by the
    // relay handshake) before it connects.
    let secret = iroh::SecretKey::generate();
    relay.admit_service_endpoint(secret.public());
    // Keep-alives every second: a live host acknowledges them, which is how the bridge tells a
    // connection to a host that died (and came back) from a live one.
    let transport = iroh::endpoint::QuicTransportConfig::builder()
        .keep_alive_interval(peer_mobile_bridge::KEEP_ALIVE)
        .build();
    let endpoint = builder
        .secret_key(secret)
        .transport_config(transport)
        .relay_mode(iroh::RelayMode::Custom(
            [iroh::RelayConfig::new(url.clone(), None)]
                .into_iter()
                .collect(),
        ))
        .clear_ip_transports()
        .bind()
        .await
        .context("binding the bridge's endpoint")?;
    let bridge = peer_mobile_bridge::Bridge::new(
        endpoint.clone(),
        Some(url),
        peer_mobile_bridge::BridgeConfig::default(),
    );
    Ok((endpoint, bridge))
}

/// SIGHUP: re-read access settings, tokens and certificate files; keep running on errors.
async fn reload(
    relay: &EmbeddedRelay,
    config_path: Option<PathBuf>,
    overrides: &Overrides,
    current: &Settings,
    resolver: Option<&Arc<CertResolver>>,
) {
    info!("SIGHUP: reloading the configuration");
    let overrides = overrides.clone();
    let loaded =
        tokio::task::spawn_blocking(move || load(config_path.as_deref(), &overrides)).await;
    let loaded = match loaded {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(err)) => {
            warn!("reload failed, keeping the running configuration: {err:#}");
            return;
        }
        Err(err) => {
            warn!(%err, "reload task failed");
            return;
        }
    };
    let new = &loaded.settings;
    if new.http_bind != current.http_bind
        || new.https.as_ref().map(|(a, _)| a) != current.https.as_ref().map(|(a, _)| a)
        || new.web_app != current.web_app
        || new.limits != current.limits
        || new.metrics != current.metrics
    {
        warn!("listeners, web root, limits and metrics exposure change only on restart");
    }
    let disconnected = relay.set_access_policy(loaded.policy);
    info!(
        access = %relay.access_mode(),
        disconnected,
        "access policy reloaded"
    );
    match (resolver, &loaded.identity, &new.https) {
        (Some(resolver), Some(identity), Some((_, CertSource::Files { .. }))) => {
            match resolver.replace(identity) {
                Ok(()) => info!(
                    fingerprint = %identity.fingerprint(),
                    "TLS certificate reloaded"
                ),
                Err(err) => warn!(%err, "keeping the old TLS certificate"),
            }
        }
        (None, Some(_), _) => warn!("HTTPS was turned on: restart to apply"),
        _ => {}
    }
}

fn url_host(settings: &Settings, bound: SocketAddr) -> String {
    let host = match &settings.advertise {
        Some(host) => host.clone(),
        None if !bound.ip().is_unspecified() => bound.ip().to_string(),
        None => "127.0.0.1".to_owned(),
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host,
    }
}

fn print_summary(relay: &EmbeddedRelay, settings: &Settings, identity: Option<&TlsIdentity>) {
    if let Some(addr) = relay.https_addr() {
        let host = url_host(settings, addr);
        println!("peer-relay listening on {addr} (HTTPS)");
        let url = if addr.port() == 443 {
            format!("https://{host}/")
        } else {
            format!("https://{host}:{}/", addr.port())
        };
        println!("relay URL: {url}");
    }
    if settings.http_bind.is_some() {
        let addr = relay.http_addr();
        let host = url_host(settings, addr);
        println!("peer-relay listening on {addr} (HTTP)");
        println!("relay URL: http://{host}:{}/", addr.port());
    }
    if settings.advertise.is_none() {
        println!("(pass --advertise HOST to print the URLs under the name clients use)");
    }
    if let (Some(identity), Some((_, CertSource::Dev { .. }))) = (identity, &settings.https) {
        println!(
            "self-signed certificate, SHA-256 fingerprint: {}",
            identity.fingerprint()
        );
    }
    println!("access: {}", relay.access_mode());
    match &settings.web_app {
        WebApp::Dir(root) => println!("web app: {}", root.display()),
        WebApp::BuiltIn => match peer_relay::built_in_web_app() {
            Ok(_) => println!("web app: built in"),
            Err(why) => println!(
                "web app: not built into this binary ({why}); it serves a page that says how \
                 to get it, or pass --web-root DIR"
            ),
        },
        _ => println!("web app: none (--no-web-app)"),
    }
}
