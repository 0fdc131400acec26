//! Pairing a device, and the PTY session commands of a client: `ls`, `new`, `kill`, `attach`.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use peer::client::{self, AttachEnd, AttachIo, Attacher, Dialer, HostConn, KnownHosts};
use peer::paths::Paths;
use peer::proto::{CreateSession, Reply, Request, SessionInfo, SessionState};

use super::{AttachArgs, terminal};

pub(super) async fn load_device(paths: &Paths) -> Result<iroh::SecretKey> {
    let p = paths.clone();
    let (key, _) = tokio::task::spawn_blocking(move || client::load_device_key(&p)).await??;
    Ok(key)
}

pub(super) async fn pair_with(
    paths: &Paths,
    url: &str,
    name: Option<String>,
    relay_only: bool,
) -> Result<u8> {
    let device = load_device(paths).await?;
    let name = name.unwrap_or_else(peer::host::default_host_name);
    let result = client::pair(url, &device, &name, relay_only).await?;
    let mut hosts = KnownHosts::load(paths.hosts_file())?;
    let stored = hosts.upsert(result.host.clone());
    hosts.save()?;
    outln!(
        "paired with {stored} as {} — short code {} (check that the host shows the same)",
        result.role.as_str(),
        result.code
    );
    Ok(0)
}

pub(super) fn list_hosts(paths: &Paths, json: bool) -> Result<u8> {
    let hosts = KnownHosts::load(paths.hosts_file())?;
    if json {
        // The relay token is a secret: say whether there is one, not what it is.
        let mut list = serde_json::to_value(&hosts.hosts)?;
        for (value, host) in list.as_array_mut().into_iter().flatten().zip(&hosts.hosts) {
            if let Some(obj) = value.as_object_mut() {
                obj.insert(
                    "relay_token".into(),
                    serde_json::Value::Bool(host.relay_token.is_some()),
                );
            }
        }
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if hosts.hosts.is_empty() {
        outln!("no paired hosts; run `peer pair URL`");
    }
    for h in &hosts.hosts {
        outln!(
            "{:<20} {} {:<8} {}",
            h.name,
            &h.endpoint_id[..10.min(h.endpoint_id.len())],
            h.role.as_str(),
            h.relay_urls.join(" ")
        );
    }
    Ok(0)
}

/// The host name that means the host on this machine, reached through its control socket.
pub(super) const LOCAL: &str = "local";

/// Connects to `host` (a paired host's name or id prefix, or [`LOCAL`]). With no host named,
/// the host running on this machine is used if its control socket answers (no pairing needed:
/// the local user is its owner), else the only paired host.
pub(super) async fn connect(
    paths: &Paths,
    host: Option<&str>,
    relay_only: bool,
) -> Result<(Dialer, HostConn)> {
    let forced = host == Some(LOCAL);
    let socket = paths.control_socket();
    if forced || (host.is_none() && !relay_only && socket.exists()) {
        let dialer = Dialer::local(socket);
        match dialer.connect().await {
            Ok(conn) => return Ok((dialer, conn)),
            Err(e) if forced => {
                return Err(e).context("connecting to the host on this machine");
            }
            Err(e) => tracing::info!("the host on this machine does not answer ({e})"),
        }
    }
    let hosts = KnownHosts::load(paths.hosts_file())?;
    let known = hosts.find(host)?.clone();
    let device = load_device(paths).await?;
    let dialer = Dialer::new(&known, device, relay_only)
        .await?
        .save_routes_to(paths.hosts_file());
    let conn = dialer
        .connect()
        .await
        .with_context(|| format!("connecting to {}", known.name))?;
    Ok((dialer, conn))
}

/// Closes the connection and the endpoint so the host sees a clean goodbye at once.
pub(super) async fn hang_up(dialer: Dialer, conn: HostConn) {
    conn.close();
    tokio::time::timeout(Duration::from_secs(1), dialer.close())
        .await
        .ok();
}

/// Starts a session; `hold_output` when this client attaches to it at once from offset 0
/// ([`CreateSession::hold_output`]).
pub(super) async fn create(
    conn: &HostConn,
    name: Option<String>,
    cwd: Option<String>,
    command: Vec<String>,
    hold_output: bool,
) -> Result<SessionInfo> {
    let size = terminal::size().unwrap_or_default();
    let env = std::env::var("TERM")
        .ok()
        .map(|t| vec![("TERM".to_string(), t)])
        .unwrap_or_default();
    match conn
        .request(Request::CreateSession(CreateSession {
            name,
            command,
            cwd,
            env,
            size,
            hold_output,
        }))
        .await?
    {
        Reply::Created(info) => Ok(info),
        other => bail!("unexpected reply: {other:?}"),
    }
}

/// `[HOST] [ID]`: a lone numeric argument is an id.
pub(super) fn split_host_id(args: &[String]) -> Result<(Option<String>, Option<u64>)> {
    let parse = |s: &String| {
        s.parse::<u64>()
            .map_err(|_| anyhow!("{s:?} is not a session id"))
    };
    Ok(match args {
        [] => (None, None),
        [one] => match one.parse::<u64>() {
            Ok(id) => (None, Some(id)),
            Err(_) => (Some(one.clone()), None),
        },
        [host, id, ..] => (Some(host.clone()), Some(parse(id)?)),
    })
}

pub(super) async fn attach(paths: &Paths, args: AttachArgs, relay_only: bool) -> Result<u8> {
    let (host, id) = split_host_id(&args.args)?;
    let (dialer, conn) = connect(paths, host.as_deref(), relay_only).await?;
    let target = pick_session(&conn, &args, id).await;
    let (session, from) = match target {
        Ok(t) => t,
        Err(e) => {
            hang_up(dialer, conn).await;
            return Err(e);
        }
    };

    let mut term = terminal::Terminal::setup()?;
    let size = terminal::size();
    let io = AttachIo {
        input: term.input(),
        resize: term.resizes()?,
        output: Box::new(terminal::DirectStdout::new()),
        notice: Box::new(terminal::notice),
        size,
        escape: true,
        screen: args.replay.is_none().then_some(args.scrollback),
        // Guesses are drawn on a terminal; output to a file or a pipe gets none.
        predict: if size.is_some() {
            args.predict
        } else {
            peer::client::PredictMode::Never
        },
    };
    let mut attacher = Attacher::new(dialer, conn);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term_sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let end = tokio::select! {
        end = attacher.run(session, from, io) => end,
        _ = hup.recv() => Ok(AttachEnd::Detached),
        _ = term_sig.recv() => Ok(AttachEnd::Detached),
    };
    drop(term);
    let dialer = attacher.into_dialer();
    tokio::time::timeout(Duration::from_secs(1), dialer.close())
        .await
        .ok();
    match end? {
        AttachEnd::Detached => {
            eprintln!("[detached from session {session}]");
            Ok(0)
        }
        AttachEnd::Exited(status) => {
            eprintln!("[session {session} {}]", ended_text(&status));
            Ok(match status.signal {
                Some(_) => 255,
                None => u8::try_from(status.code).unwrap_or(255),
            })
        }
    }
}

/// `exited (3)`, `killed (SIGHUP)`.
fn ended_text(e: &peer::proto::ExitInfo) -> String {
    match &e.signal {
        Some(sig) => format!("killed ({sig})"),
        None => format!("exited ({})", e.code),
    }
}

/// The session `peer attach` goes to, and the offset to start from.
pub(super) async fn pick_session(
    conn: &HostConn,
    args: &AttachArgs,
    id: Option<u64>,
) -> Result<(u64, u64)> {
    Ok(if args.new {
        if id.is_some() {
            bail!("--new takes no session id");
        }
        let info = create(
            conn,
            args.name.clone(),
            args.cwd.clone(),
            args.command.clone(),
            true,
        )
        .await?;
        (info.id, 0)
    } else {
        let Reply::Sessions(list) = conn.request(Request::ListSessions).await? else {
            bail!("unexpected reply");
        };
        let info = match id {
            Some(id) => list
                .into_iter()
                .find(|s| s.id == id)
                .ok_or_else(|| anyhow!("no session {id} on this host; `peer ls` lists them"))?,
            None => {
                let mut running: Vec<_> = list
                    .into_iter()
                    .filter(|s| s.state == SessionState::Running)
                    .collect();
                match running.len() {
                    0 => bail!("no running sessions; start one with `peer attach --new`"),
                    1 => running.remove(0),
                    _ => bail!(
                        "several sessions run ({}); name one",
                        running
                            .iter()
                            .map(|s| s.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
        };
        match args.replay {
            Some(bytes) => (info.id, info.output_end.saturating_sub(bytes)),
            // A picture of the screen as it is now.
            None => (info.id, u64::MAX),
        }
    })
}

pub(super) fn print_sessions(list: &[SessionInfo], json: bool) -> Result<()> {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&list.iter().map(session_json).collect::<Vec<_>>())?
        );
        return Ok(());
    }
    outln!(
        "{:>4}  {:<12} {:<14} {:>8} {:>6}  COMMAND",
        "ID",
        "NAME",
        "STATE",
        "ATTACHED",
        "IDLE"
    );
    let now = peer::util::now_ms();
    for s in list {
        let state = match &s.state {
            SessionState::Running => "running".to_string(),
            SessionState::Exited(e) => ended_text(e),
        };
        let f = &s.screen;
        let idle = match f.last_output_ms {
            0 => "-".to_string(),
            t => short_duration(now.saturating_sub(t)),
        };
        let what = match &f.title {
            Some(t) if !t.is_empty() => format!("{} — {t}", s.command.join(" ")),
            _ => s.command.join(" "),
        };
        outln!(
            "{:>4}  {:<12} {:<14} {:>8} {:>6}  {}",
            s.id,
            s.name.as_deref().unwrap_or("-"),
            state,
            s.attached,
            idle,
            what
        );
        let mut detail = Vec::new();
        if let Some(cwd) = &f.cwd {
            detail.push(cwd.clone());
        }
        if let Some(line) = &f.last_line {
            detail.push(format!("│ {line}"));
        }
        if f.bells > 0 {
            detail.push(format!("bells: {}", f.bells));
        }
        if !detail.is_empty() {
            println!("{:>6}{}", "", detail.join("  "));
        }
    }
    Ok(())
}

/// `3s`, `5m`, `2h`, `4d`.
fn short_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

pub(super) fn session_json(s: &SessionInfo) -> serde_json::Value {
    let (state, code, signal) = match &s.state {
        SessionState::Running => ("running", None, None),
        SessionState::Exited(e) => ("exited", Some(e.code), e.signal.clone()),
    };
    serde_json::json!({
        "id": s.id,
        "name": s.name,
        "command": s.command,
        "cwd": s.cwd,
        "created_at_ms": s.created_at_ms,
        "state": state,
        "exit_code": code,
        "signal": signal,
        "cols": s.size.cols,
        "rows": s.size.rows,
        "attached": s.attached,
        "output_bytes": s.output_end,
        "title": s.screen.title,
        "cwd_now": s.screen.cwd,
        "last_line": s.screen.last_line,
        "last_output_ms": s.screen.last_output_ms,
        "bells": s.screen.bells,
        "last_bell_ms": s.screen.last_bell_ms,
        "ended_at_ms": s.ended_at_ms,
    })
}
