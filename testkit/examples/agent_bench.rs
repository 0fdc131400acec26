//! Measures agent sessions through a real `peer host` on loopback, with the scripted
//! `peer-fake-agent`:
//!
//! - event latency: the agent stamps a message with the time (`ping`), the client reads it off
//!   the agent event stream; p50/p99 over many pings;
//! - catch-up: attach from sequence 0 to a transcript of 10,000+ events, time to the last one;
//! - host RSS with 10 idle agent sessions (and the agents' own RSS, separately).
//!
//! `cargo build --release -p peer -p peer-testkit --bins --examples && target/release/examples/agent_bench
//!  [--pings N] [--events N] [--sessions N]`. It finds `peer` and `peer-fake-agent` next to
//! its own directory (`target/release/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use peer::client::{Dialer, HostConn, KnownHosts};
use peer::proto::{AgentEvent, AgentEventKind, AgentState, Frame, NewAgentSession, Reply, Request};

/// Child processes of `pid`, whichever of its threads started them.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn git_repo(dir: &Path) -> Result<()> {
    let repo = git2::Repository::init(dir)?;
    std::fs::write(dir.join("README"), "bench\n")?;
    let mut index = repo.index()?;
    index.add_path(Path::new("README"))?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("bench", "bench@example.com")?;
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])?;
    Ok(())
}

async fn new_session(conn: &HostConn, repo: &Path, prompt: Option<&str>) -> Result<u64> {
    let r = conn
        .request(Request::NewAgentSession(NewAgentSession {
            agent: "fake".into(),
            repo: repo.to_string_lossy().into_owned(),
            base: None,
            prompt: prompt.map(str::to_string),
            model: None,
        }))
        .await?;
    let Reply::AgentSession(info) = r else {
        bail!("unexpected reply")
    };
    Ok(info.id)
}

async fn wait_state(conn: &HostConn, id: u64, want: AgentState) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let Reply::AgentSessions(list) = conn.request(Request::ListAgentSessions).await? else {
            bail!("unexpected reply")
        };
        if let Some(s) = list.iter().find(|s| s.id == id)
            && s.state == want
            && s.queued_prompts == 0
        {
            return Ok(s.next_seq);
        }
        if Instant::now() > deadline {
            bail!("session {id} never became {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut pings = 1000usize;
    let mut events = 10_000u64;
    let mut sessions = 10usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pings" => pings = it.next().context("--pings N")?.parse()?,
            "--events" => events = it.next().context("--events N")?.parse()?,
            "--sessions" => sessions = it.next().context("--sessions N")?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let exe = std::env::current_exe()?;
    let bin_dir: PathBuf = exe
        .parent()
        .and_then(Path::parent)
        .context("exe directory")?
        .to_path_buf();
    let peer_bin = bin_dir.join("peer");
    let fake = bin_dir.join("peer-fake-agent");
    if !peer_bin.exists() || !fake.exists() {
        bail!("build first: cargo build --release -p peer -p peer-testkit --bins --examples");
    }
    let host_home = tempfile::tempdir()?;
    let client_home = tempfile::tempdir()?;
    let repo = tempfile::tempdir()?;
    git_repo(repo.path())?;
    std::fs::create_dir_all(host_home.path().join("host"))?;
    std::fs::write(
        host_home.path().join("host/agents.toml"),
        format!("[agents.fake]\ncommand = [{:?}]\n", fake.to_string_lossy()),
    )?;
    let mut host = Command::new(&peer_bin)
        .args(["host", "--listen", "127.0.0.1", "--no-pairing"])
        .env("PEER_HOME", host_home.path())
        .env("PEER_KEY_STORE", "file")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let host_pid = host.id();
    let result = run(
        &peer_bin,
        host_home.path(),
        client_home.path(),
        repo.path(),
        host_pid,
        pings,
        events,
        sessions,
    )
    .await;
    let _ = Command::new("kill").arg(host_pid.to_string()).status();
    let _ = host.wait();
    result
}

#[allow(clippy::too_many_arguments)]
async fn run(
    peer_bin: &Path,
    host_home: &Path,
    client_home: &Path,
    repo: &Path,
    host_pid: u32,
    pings: usize,
    events: u64,
    sessions: usize,
) -> Result<()> {
    // A pairing code from the running host, over its control socket.
    let mut url = None;
    for _ in 0..100 {
        let out = Command::new(peer_bin)
            .arg("pair")
            .env("PEER_HOME", host_home)
            .env("PEER_KEY_STORE", "file")
            .output()?;
        url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("pairing URL: ").map(str::to_owned));
        if url.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = url.context("no pairing URL from the host")?;
    let device = iroh::SecretKey::generate();
    let paired = peer::client::pair(&url, &device, "bench", false).await?;
    let mut hosts = KnownHosts::load(client_home.join("hosts.json"))?;
    hosts.upsert(paired.host.clone());
    let dialer = Dialer::new(&paired.host, device, false).await?;
    let conn = dialer.connect().await?;
    let rss_idle = peer_testkit::vm_rss_kib(host_pid);

    // Latency.
    let id = new_session(&conn, repo, None).await?;
    wait_state(&conn, id, AgentState::Idle).await?;
    let (_send, mut reader, _) = conn.agent_attach(id, u64::MAX).await?;
    let mut lat = Vec::with_capacity(pings);
    for _ in 0..pings {
        conn.request(Request::AgentPrompt {
            session: id,
            text: "ping".into(),
        })
        .await?;
        loop {
            let Frame::AgentEvent(ev) = reader.read().await? else {
                bail!("unexpected frame")
            };
            if matches!(ev.event, AgentEventKind::TurnEnd { .. }) {
                break;
            }
            if let Some(t) = ping_time(&ev) {
                lat.push((now_nanos().saturating_sub(t)) as f64 / 1000.0);
            }
        }
    }
    if lat.is_empty() {
        lat.push(0.0);
    }
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    println!(
        "event latency agent -> client over {} pings: p50 {:.0} µs, p99 {:.0} µs",
        lat.len(),
        p50,
        p99
    );

    // Catch-up.
    let big = new_session(&conn, repo, Some(&format!("flood {events}"))).await?;
    let total = wait_state(&conn, big, AgentState::Idle).await?;
    let t0 = Instant::now();
    let (_s, mut r, _) = conn.agent_attach(big, 0).await?;
    let mut got = 0u64;
    while got < total {
        let Frame::AgentEvent(ev) = r.read().await? else {
            bail!("unexpected frame")
        };
        if ev.seq != got {
            bail!("catch-up out of order: {} after {}", ev.seq, got);
        }
        got += 1;
    }
    let catch = t0.elapsed();
    println!(
        "catch-up of {total} events from sequence 0: {:.0} ms ({:.0} events/s)",
        catch.as_secs_f64() * 1000.0,
        total as f64 / catch.as_secs_f64()
    );
    conn.request(Request::AgentClose {
        session: big,
        remove_worktree: true,
    })
    .await?;
    conn.request(Request::AgentClose {
        session: id,
        remove_worktree: true,
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Idle sessions.
    let before = peer_testkit::vm_rss_kib(host_pid);
    let mut ids = Vec::new();
    for _ in 0..sessions {
        ids.push(new_session(&conn, repo, None).await?);
    }
    for id in &ids {
        wait_state(&conn, *id, AgentState::Idle).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = peer_testkit::vm_rss_kib(host_pid);
    let agents: Vec<u32> = children(host_pid);
    let agent_rss: u64 = agents.iter().map(|p| peer_testkit::vm_rss_kib(*p)).sum();
    println!(
        "host RSS: {:.1} MiB after pairing, {:.1} MiB before and {:.1} MiB with {sessions} idle agent sessions ({} agent processes, {:.1} MiB between them)",
        rss_idle as f64 / 1024.0,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        agents.len(),
        agent_rss as f64 / 1024.0
    );
    conn.close();
    dialer.close().await;
    Ok(())
}

fn ping_time(ev: &AgentEvent) -> Option<u128> {
    let AgentEventKind::Update { update } = &ev.event else {
        return None;
    };
    let v: serde_json::Value = serde_json::from_str(update).ok()?;
    let text = v.get("content")?.get("text")?.as_str()?;
    text.strip_prefix("ping ")?.parse().ok()
}
