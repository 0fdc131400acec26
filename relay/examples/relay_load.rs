//! Holds many relayed connections on one relay to measure what each costs the relay.
//!
//! ```sh
//! relay_load URL N [RELAY_PID] [--raw] [--hold SECS]
//! ```
//!
//! Connects `N` clients to the relay at `URL`, waits until each is connected, and prints the
//! relay's RSS (from `/proc/RELAY_PID/status`) and open descriptors before and after.
//!
//! - default: relay-only iroh endpoints (what a host or a device is; each pings the relay);
//! - `--raw`: bare relay-protocol clients (`iroh_relay::client`), each answering the relay's
//!   pings from a task: far cheaper for this process, so one process holds thousands;
//! - `--hold SECS`: keep the clients connected that long before closing them (several load
//!   processes in parallel then add up; `bench/relay_scale.sh` measures the relay meanwhile).
//!
//! The relay must admit that many connections from one address:
//! `peer-relay --conn-rate 0 --max-conns 0 --max-conns-per-ip 0`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt as _, StreamExt as _};
use iroh::endpoint::presets;
use iroh::{Endpoint, RelayConfig, RelayMode, RelayUrl, SecretKey};
use iroh_relay::{
    client::{Client, ClientBuilder},
    protos::relay::{ClientToRelayMsg, RelayToClientMsg},
};
use tokio::task::JoinSet;

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// One bare relay client, kept connected by answering the relay's pings.
async fn hold(mut client: Client) {
    while let Some(Ok(message)) = client.next().await {
        if let RelayToClientMsg::Ping(data) = message
            && client.send(ClientToRelayMsg::Pong(data)).await.is_err()
        {
            break;
        }
    }
}

/// What keeps the connections open.
enum Held {
    Endpoints(Vec<Endpoint>),
    Raw(JoinSet<()>),
}

impl Held {
    fn len(&self) -> usize {
        match self {
            Self::Endpoints(endpoints) => endpoints.len(),
            Self::Raw(tasks) => tasks.len(),
        }
    }

    async fn close(self) {
        match self {
            Self::Endpoints(endpoints) => {
                for endpoint in endpoints {
                    endpoint.close().await;
                }
            }
            Self::Raw(mut tasks) => tasks.shutdown().await,
        }
    }
}

async fn connect_endpoints(url: &RelayUrl, n: usize) -> anyhow::Result<Held> {
    let mut endpoints = Vec::with_capacity(n);
    for i in 0..n {
        let endpoint = Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Custom(
                [RelayConfig::new(url.clone(), None)].into_iter().collect(),
            ))
            .clear_ip_transports()
            .bind()
            .await?;
        if tokio::time::timeout(Duration::from_secs(20), endpoint.online())
            .await
            .is_err()
        {
            println!("endpoint {} never got online", i + 1);
            break;
        }
        endpoints.push(endpoint);
    }
    Ok(Held::Endpoints(endpoints))
}

async fn connect_raw(url: &RelayUrl, n: usize) -> anyhow::Result<Held> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let dns = iroh::dns::DnsResolver::new();
    let mut tasks = JoinSet::new();
    let mut refused = 0usize;
    // 64 handshakes at a time.
    let indices: Vec<usize> = (0..n).collect();
    for wave in indices.chunks(64) {
        let attempts = wave.iter().map(|_| {
            ClientBuilder::new(url.clone(), SecretKey::generate(), dns.clone())
                .tls_client_config(tls.clone())
        });
        let attempts: Vec<_> = attempts.collect();
        let results =
            futures_util::future::join_all(attempts.iter().map(ClientBuilder::connect)).await;
        for result in results {
            match result {
                Ok(client) => {
                    tasks.spawn(hold(client));
                }
                Err(err) => {
                    refused += 1;
                    if refused == 1 {
                        println!("refused: {err}");
                    }
                }
            }
        }
    }
    if refused > 0 {
        println!("{refused} clients refused");
    }
    Ok(Held::Raw(tasks))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut positional = Vec::new();
    let mut raw = false;
    let mut hold_for = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--raw" => raw = true,
            "--hold" => {
                let secs: u64 = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--hold SECS"))?
                    .parse()?;
                hold_for = Some(Duration::from_secs(secs));
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let url: RelayUrl = positional
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3340/".into())
        .parse()?;
    let n: usize = positional.next().unwrap_or_else(|| "500".into()).parse()?;
    let pid: Option<u32> = positional.next().map(|p| p.parse()).transpose()?;
    // This process holds the other end of every connection.
    let limit = peer_relay::fd_limit::raise_soft_limit()?;
    if (limit.after.soft as usize) < n + 256 {
        println!(
            "warning: this process may open only {} descriptors",
            limit.after.soft
        );
    }

    let before = pid.map(|p| (status_kib(p, "VmRSS:"), open_fds(p)));
    let started = Instant::now();
    let held = if raw {
        connect_raw(&url, n).await?
    } else {
        connect_endpoints(&url, n).await?
    };
    println!(
        "{} relayed {} online in {:.1} s",
        held.len(),
        if raw { "clients" } else { "endpoints" },
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let (Some(pid), Some((Some(rss_before), fds_before))) = (pid, before) {
        let rss_after = status_kib(pid, "VmRSS:").unwrap_or(0);
        let fds_after = open_fds(pid);
        let count = held.len().max(1) as f64;
        println!(
            "relay RSS {:.1} MiB -> {:.1} MiB: {:.1} KiB per relayed connection",
            rss_before as f64 / 1024.0,
            rss_after as f64 / 1024.0,
            rss_after.saturating_sub(rss_before) as f64 / count
        );
        if let (Some(b), Some(a)) = (fds_before, fds_after) {
            println!(
                "relay descriptors {b} -> {a}: {:.2} per relayed connection",
                a.saturating_sub(b) as f64 / count
            );
        }
    }
    if let Some(hold_for) = hold_for {
        tokio::time::sleep(hold_for).await;
    }
    held.close().await;
    Ok(())
}
