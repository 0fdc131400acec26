//! Measures the browser path as a phone would use it: keystroke echo through the mobile bridge
//! (WebSocket + Noise + browser channel), and how many bridged sockets a host holds at once.
//!
//! `cargo run --release -p peer-testkit --example bridge_bench -- URL [--echo N] [--sockets M]
//!  [--bridge ws://HOST:PORT] [--host-pid PID]` where URL is a pairing URL printed by
//! `peer host`. `bench/pty_bench.py` runs it beside ssh and the native paths.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use peer::proto::{
    Attach, CreateSession, Frame, Input, Reply, Request, RequestFrame, ResponseFrame, WinSize,
};
use peer_pairing::{NoiseKeypair, PairingPayload};
use peer_testkit::browser::{BrowserClient, MessageTransport, WsTransport};

struct Args {
    url: String,
    bridge: Option<String>,
    echo: usize,
    sockets: usize,
    host_pid: Option<u32>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        url: String::new(),
        bridge: None,
        echo: 200,
        sockets: 0,
        host_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--echo" => a.echo = it.next().context("--echo N")?.parse()?,
            "--sockets" => a.sockets = it.next().context("--sockets M")?.parse()?,
            "--bridge" => a.bridge = Some(it.next().context("--bridge URL")?),
            "--host-pid" => a.host_pid = Some(it.next().context("--host-pid PID")?.parse()?),
            url if !url.starts_with("--") => a.url = url.to_owned(),
            other => bail!("unknown argument {other}"),
        }
    }
    if a.url.is_empty() {
        bail!(
            "usage: bridge_bench PAIRING_URL [--echo N] [--sockets M] [--bridge ws://…] [--host-pid PID]"
        );
    }
    Ok(a)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The next frame that is not output.
async fn next_control<T: MessageTransport>(c: &mut BrowserClient<T>) -> Result<Frame> {
    loop {
        match c.recv().await? {
            (_, Frame::Output(_)) => {}
            (_, m) => return Ok(m),
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let payload = PairingPayload::from_url(&a.url)?;
    let base = match &a.bridge {
        Some(b) => b.trim_end_matches('/').to_owned(),
        None => a
            .url
            .split('#')
            .next()
            .context("url")?
            .trim_end_matches('/')
            .replacen("http://", "ws://", 1),
    };
    let socket_url = format!("{base}/bridge/{}", hex::encode(payload.host_id));
    let key = NoiseKeypair::generate();
    let (mut b, paired) = BrowserClient::pair(
        WsTransport::connect(&socket_url).await?,
        &payload,
        &key,
        "bench",
    )
    .await?;
    next_control(&mut b).await?; // hello

    let raw = "stty raw -echo; printf READY; cat";
    b.send(
        0,
        &Frame::Request(RequestFrame {
            id: 1,
            request: Request::CreateSession(CreateSession {
                name: Some("bridge-bench".into()),
                command: vec!["sh".into(), "-c".into(), raw.into()],
                cwd: None,
                env: vec![],
                size: WinSize { cols: 80, rows: 24 },
                hold_output: true,
            }),
        }),
    )
    .await?;
    let session = loop {
        if let Frame::Response(ResponseFrame { id: 1, result }) = next_control(&mut b).await? {
            match result {
                Ok(Reply::Created(info)) => break info.id,
                other => bail!("create: {other:?}"),
            }
        }
    };
    let attach = Frame::Attach(Attach {
        session,
        from_offset: 0,
        client_token: 1,
        size: None,
        screen: None,
        echo_acks: false,
    });
    b.send(1, &attach).await?;
    let mut seen = Vec::new();
    while !seen.windows(5).any(|w| w == b"READY") {
        if let (_, Frame::Output(o)) = b.recv().await? {
            seen.extend_from_slice(&o.data);
        }
    }
    let mut lat = Vec::with_capacity(a.echo);
    for i in 0..a.echo + 20 {
        let t0 = Instant::now();
        let key = Frame::Input(Input {
            seq: i as u64 + 1,
            data: b"x".to_vec(),
        });
        b.send(1, &key).await?;
        loop {
            if let (_, Frame::Output(o)) = b.recv().await?
                && o.data.contains(&b'x')
            {
                break;
            }
        }
        if i >= 20 {
            lat.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    lat.sort_by(|x, y| x.total_cmp(y));
    let q = |f: f64| lat[((f * lat.len() as f64) as usize).min(lat.len() - 1)];
    println!(
        "bridge echo: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs ({} keystrokes)",
        q(0.5),
        q(0.9),
        q(0.99),
        lat.len()
    );

    if a.sockets > 0 {
        let before = a.host_pid.and_then(rss_kib);
        let mut held = Vec::new();
        let started = Instant::now();
        for i in 0..a.sockets {
            // Spread the sockets over 127.0.0.0/8 so the bridge's per-address cap (32) is not
            // what we measure.
            let ip = IpAddr::V4(Ipv4Addr::new(
                127,
                1,
                (i / 30 / 250) as u8,
                (i / 30 % 250 + 1) as u8,
            ));
            let opened = async {
                let t = WsTransport::connect_from(&socket_url, ip).await?;
                let mut c = BrowserClient::connect(
                    t,
                    &payload.host_id,
                    &payload.host_noise_key,
                    &key,
                    &paired.device_psk,
                )
                .await?;
                next_control(&mut c).await?;
                anyhow::Ok(c)
            };
            match tokio::time::timeout(Duration::from_secs(20), opened).await {
                Ok(Ok(c)) => held.push(c),
                Ok(Err(e)) => {
                    println!("socket {} failed: {e:#}", i + 1);
                    break;
                }
                Err(_) => {
                    println!("socket {} timed out", i + 1);
                    break;
                }
            }
            if (i + 1) % 250 == 0
                && let Some(rss) = a.host_pid.and_then(rss_kib)
            {
                println!("{} sockets: host RSS {:.1} MiB", i + 1, rss as f64 / 1024.0);
            }
        }
        let after = a.host_pid.and_then(rss_kib);
        println!(
            "held {} bridged sockets at once (opened in {:.1} s)",
            held.len(),
            started.elapsed().as_secs_f64()
        );
        if let (Some(b0), Some(b1)) = (before, after) {
            println!(
                "host RSS {:.1} MiB → {:.1} MiB: {:.1} KiB per bridged socket",
                b0 as f64 / 1024.0,
                b1 as f64 / 1024.0,
                (b1.saturating_sub(b0)) as f64 / held.len().max(1) as f64
            );
        }
    }
    Ok(())
}
