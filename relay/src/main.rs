//! `peer-relay`: runs the peer relay server until SIGINT or SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context as _;
use clap::Parser;
use peer_relay::EmbeddedRelay;
use tracing::info;
use tracing_subscriber::EnvFilter;

/// Relay for peer: forwards end-to-end encrypted QUIC packets between a peer host and its
/// clients when they cannot reach each other directly. The relay only ever sees ciphertext.
#[derive(Debug, Parser)]
#[command(
    name = "peer-relay",
    version,
    after_help = "Serves plain HTTP (no TLS) and admits every endpoint. \
                  Log verbosity follows RUST_LOG (default: info), e.g. RUST_LOG=debug.\n\n\
                  Example: peer-relay --http-bind 0.0.0.0:3340 --advertise-ip 192.168.1.10"
)]
struct Args {
    /// Address and port to serve the relay on (plain HTTP). Port 0 picks a free port.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:3340",
        env = "PEER_RELAY_HTTP_BIND"
    )]
    http_bind: SocketAddr,

    /// IP address clients reach this machine at; only used to print the relay URL.
    /// Defaults to the bind address, or 127.0.0.1 when binding to all interfaces.
    #[arg(long, value_name = "IP")]
    advertise_ip: Option<IpAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    // Install the handlers before starting, so an early signal is not lost.
    let mut signals = Signals::install()?;
    let mut relay = EmbeddedRelay::spawn(args.http_bind).await?;
    let bound = relay.http_addr();
    let host = args.advertise_ip.unwrap_or(if bound.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        bound.ip()
    });
    println!("peer-relay listening on {bound}");
    println!("relay URL: {}", relay.url_for(host));

    tokio::select! {
        result = relay.join() => {
            result.context("relay server failed")?;
            anyhow::bail!("relay server stopped unexpectedly");
        }
        name = signals.recv() => info!("received {name}, shutting down"),
    }
    relay.shutdown().await;
    info!("relay stopped");
    Ok(())
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
                terminate: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for the next signal and returns its name.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}
