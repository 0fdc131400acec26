//! Holds many relayed iroh endpoints on one relay to measure what each costs the relay.
//!
//! `cargo run --release -p peer-relay --example relay_load -- http://127.0.0.1:3340/ 500 [RELAY_PID]`
//! connects that many relay-only endpoints, waits until each is online, and prints the relay's
//! RSS (read from `/proc/PID/status`) before and after.

use std::time::{Duration, Instant};

use iroh::endpoint::presets;
use iroh::{Endpoint, RelayConfig, RelayMode};

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url: iroh::RelayUrl = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3340/".into())
        .parse()?;
    let n: usize = args.next().unwrap_or_else(|| "500".into()).parse()?;
    let pid: Option<u32> = args.next().map(|p| p.parse()).transpose()?;
    let before = pid.and_then(rss_kib);
    let started = Instant::now();
    let mut endpoints = Vec::with_capacity(n);
    for i in 0..n {
        let ep = Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Custom(
                [RelayConfig::new(url.clone(), None)].into_iter().collect(),
            ))
            .clear_ip_transports()
            .bind()
            .await?;
        if tokio::time::timeout(Duration::from_secs(20), ep.online())
            .await
            .is_err()
        {
            println!("endpoint {} never got online", i + 1);
            break;
        }
        endpoints.push(ep);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = pid.and_then(rss_kib);
    println!(
        "{} relayed endpoints online in {:.1} s",
        endpoints.len(),
        started.elapsed().as_secs_f64()
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "relay RSS {:.1} MiB -> {:.1} MiB: {:.1} KiB per relayed connection",
            b as f64 / 1024.0,
            a as f64 / 1024.0,
            a.saturating_sub(b) as f64 / endpoints.len().max(1) as f64
        );
    }
    for ep in endpoints {
        ep.close().await;
    }
    Ok(())
}
