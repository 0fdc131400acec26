//! `peer watch`: the notices of one or every paired host as they happen (an agent needs
//! approval, a turn ended, a session ended), printed, and handed to a command of yours.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use peer::client::{ClientError, Dialer, KnownHost, KnownHosts};
use peer::paths::Paths;
use peer::proto::{Frame, Notice, NoticeKind, NoticeSession};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::session::load_device;

/// Commands of `--exec` running at once at most; the next notice waits for one to end.
const MAX_EXEC: usize = 8;
/// The longest wait between reconnects.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub(super) struct WatchArgs {
    /// Host name or id prefix (default: every paired host).
    host: Option<String>,
    /// Only these kinds, comma-separated: approval, turn_end, turn_failed, agent_failed,
    /// session_ended, bell.
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Run CMD with `sh -c` for every notice. It gets PEER_HOST, PEER_HOST_ID, PEER_KIND,
    /// PEER_SESSION (pty:N or agent:N), PEER_TITLE, PEER_BODY, PEER_APPROVAL and PEER_NOTICE
    /// (the JSON line) in its environment.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// Stop after this many notices.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// A notice and the host it came from.
struct FromHost {
    host: KnownHost,
    notice: Notice,
}

pub(super) async fn run(paths: &Paths, a: WatchArgs, relay_only: bool) -> Result<u8> {
    let kinds = a
        .kinds
        .iter()
        .map(|k| {
            NoticeKind::parse(k.trim()).ok_or_else(|| {
                let all: Vec<&str> = NoticeKind::ALL.iter().map(|k| k.as_str()).collect();
                anyhow!("unknown kind {k:?} (one of {})", all.join(", "))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let known = KnownHosts::load(paths.hosts_file())?;
    let hosts: Vec<KnownHost> = match &a.host {
        Some(h) => vec![known.find(Some(h))?.clone()],
        None => known.hosts.clone(),
    };
    if hosts.is_empty() {
        bail!("no paired host: pair with `peer pair URL` first");
    }
    let device = load_device(paths).await?;
    let (tx, mut rx) = mpsc::channel::<FromHost>(64);
    let mut watchers = JoinSet::new();
    for host in hosts {
        let (tx, device, kinds) = (tx.clone(), device.clone(), kinds.clone());
        watchers.spawn(watch_host(host, device, kinds, relay_only, tx));
    }
    drop(tx);
    let mut execs: JoinSet<()> = JoinSet::new();
    let mut seen = 0u64;
    while let Some(FromHost { host, notice }) = rx.recv().await {
        let line = json!({
            "host": host.name,
            "host_id": host.endpoint_id,
            "kind": notice.kind,
            "session": notice.session,
            "title": notice.title,
            "body": notice.body,
            "at_ms": notice.at_ms,
            "approval": notice.approval,
        })
        .to_string();
        if a.json {
            println!("{line}");
        } else {
            println!("{}", human(&host.name, &notice));
        }
        if let Some(cmd) = &a.exec {
            while execs.len() >= MAX_EXEC {
                execs.join_next().await;
            }
            execs.spawn(exec(cmd.clone(), host, notice, line));
        }
        seen += 1;
        if a.count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    watchers.shutdown().await;
    while execs.join_next().await.is_some() {}
    Ok(0)
}

fn human(host: &str, n: &Notice) -> String {
    let session = match n.session {
        NoticeSession::Pty(id) => format!("session {id}"),
        NoticeSession::Agent(id) => format!("agent session {id}"),
    };
    if n.body.is_empty() {
        format!("[{host}] {} ({session})", n.title)
    } else {
        format!("[{host}] {}: {} ({session})", n.title, n.body)
    }
}

async fn exec(cmd: String, host: KnownHost, n: Notice, line: String) {
    let session_id = match n.session {
        NoticeSession::Pty(id) | NoticeSession::Agent(id) => id,
    };
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("PEER_HOST", &host.name)
        .env("PEER_HOST_ID", &host.endpoint_id)
        .env("PEER_KIND", n.kind.as_str())
        .env("PEER_SESSION", n.session.to_string())
        .env("PEER_SESSION_ID", session_id.to_string())
        .env("PEER_TITLE", &n.title)
        .env("PEER_BODY", &n.body)
        .env(
            "PEER_APPROVAL",
            n.approval.map(|a| a.to_string()).unwrap_or_default(),
        )
        .env("PEER_NOTICE", &line)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await;
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("peer: --exec command ended with {s}"),
        Err(e) => eprintln!("peer: --exec command could not start: {e}"),
    }
}

/// Keeps a notice stream to `host` open, reconnecting with backoff, until the host refuses
/// this device (revoked, not paired) or the receiver goes.
async fn watch_host(
    host: KnownHost,
    device: iroh::SecretKey,
    kinds: Vec<NoticeKind>,
    relay_only: bool,
    tx: mpsc::Sender<FromHost>,
) {
    let dialer = match Dialer::new(&host, device, relay_only).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("peer: {}: {e}", host.name);
            return;
        }
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let err = match stream(&host, &dialer, kinds.clone(), &tx).await {
            Ok(()) => return,
            Err(e) => e,
        };
        if !err.is_retryable() {
            eprintln!("peer: {}: {err}; not watching it any more", host.name);
            return;
        }
        eprintln!("peer: {}: {err}; reconnecting", host.name);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

/// One connection's notice stream. `Ok` when the receiver is gone.
async fn stream(
    host: &KnownHost,
    dialer: &Dialer,
    kinds: Vec<NoticeKind>,
    tx: &mpsc::Sender<FromHost>,
) -> Result<(), ClientError> {
    let conn = dialer.connect().await?;
    let (_send, mut reader) = conn.watch(kinds).await?;
    eprintln!("watching {}", host.name);
    loop {
        match reader.read().await {
            Ok(Frame::Notice(notice)) => {
                let item = FromHost {
                    host: host.clone(),
                    notice,
                };
                if tx.send(item).await.is_err() {
                    conn.close();
                    return Ok(());
                }
            }
            Ok(Frame::Error(e)) => return Err(e.into()),
            Ok(other) => {
                return Err(ClientError::Protocol(format!(
                    "unexpected {:?} frame on a notice stream",
                    other.frame_type()
                )));
            }
            Err(e) => return Err(conn.read_error(e)),
        }
    }
}
