//! `peer agents`, `peer agent …` and `peer audit`.

use std::io::Write;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use peer::client::{self, HostConn};
use peer::paths::Paths;
use peer::proto::{
    AgentSessionInfo, LocalReply, LocalRequest, ModelPlace, NewAgentSession, Reply, Request,
};
use serde_json::{Value, json};

use super::{connect, hang_up};

mod attach;
mod render;

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Start an agent in a new worktree of a repository on the host.
    New {
        /// Agent name (see `peer agents`).
        #[arg(long)]
        agent: String,
        /// Absolute path of the git repository on the host.
        #[arg(long)]
        repo: String,
        /// Branch, tag or commit to start from (default: the repository's HEAD).
        #[arg(long)]
        base: Option<String>,
        /// Run it on a model of a model server on the host's machine: `local:MODEL` or
        /// `local:SERVER/MODEL` (see `peer models`).
        #[arg(long)]
        model: Option<String>,
        /// A first prompt.
        prompt: Option<String>,
        #[command(flatten)]
        host: HostOpt,
    },
    /// List agent sessions.
    Ls {
        #[command(flatten)]
        host: HostOpt,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stream a session's conversation; type prompts, answer approvals inline.
    Attach(AttachAgentArgs),
    /// Send a prompt (queued if a turn is running).
    Send {
        /// Agent session id.
        id: u64,
        /// The prompt.
        text: String,
        #[command(flatten)]
        host: HostOpt,
    },
    /// Cancel the running turn.
    Cancel {
        /// Agent session id.
        id: u64,
        #[command(flatten)]
        host: HostOpt,
    },
    /// Answer a pending approval.
    Approve {
        /// Agent session id.
        id: u64,
        /// The approval's number.
        approval: u64,
        /// The option id to choose; without it the request is answered cancelled.
        option: Option<String>,
        #[command(flatten)]
        host: HostOpt,
    },
    /// Show the worktree's changes against its base.
    Diff {
        /// Agent session id.
        id: u64,
        /// Only the list of files.
        #[arg(long)]
        stat: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        host: HostOpt,
    },
    /// Switch the agent's mode (ACP session/set_mode).
    Mode {
        /// Agent session id.
        id: u64,
        /// Mode id, as the agent offered it.
        mode: String,
        #[command(flatten)]
        host: HostOpt,
    },
    /// Set an agent option, e.g. `model` (ACP session/set_config_option).
    Set {
        /// Agent session id.
        id: u64,
        /// Option id.
        option: String,
        /// Value id.
        value: String,
        #[command(flatten)]
        host: HostOpt,
    },
    /// Stop a session; with --remove also delete its worktree and branch.
    Close {
        /// Agent session id.
        id: u64,
        /// Delete the worktree directory and the branch.
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        host: HostOpt,
    },
}

#[derive(Debug, Args)]
pub struct HostOpt {
    /// Host name or id prefix (default: the only paired host).
    #[arg(long)]
    host: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttachAgentArgs {
    /// Agent session id.
    id: u64,
    /// Replay from this event sequence number (default: the whole transcript).
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
    /// Exit once the session is in one of these states (comma-separated, e.g. `idle,failed`).
    #[arg(long)]
    until: Option<String>,
    /// Exit after this many events.
    #[arg(long)]
    count: Option<u64>,
    /// Do not read prompts and answers from standard input.
    #[arg(long)]
    no_input: bool,
    #[command(flatten)]
    host: HostOpt,
}

pub async fn agents(
    paths: &Paths,
    host: Option<String>,
    json: bool,
    relay_only: bool,
) -> Result<u8> {
    let (dialer, conn) = connect(paths, host.as_deref(), relay_only).await?;
    let reply = conn.request(Request::ListAgents).await;
    // The model servers only for people: `peer models --json` lists them for programs.
    let servers = if json {
        None
    } else {
        Some(super::machine::model_servers(&conn).await)
    };
    hang_up(dialer, conn).await;
    let Reply::Agents(list) = reply? else {
        bail!("unexpected reply");
    };
    if json {
        let v: Vec<Value> = list
            .iter()
            .map(|a| {
                json!({"name": a.name, "command": a.command, "installed": a.installed,
                       "needs_login": a.needs_login, "login_hint": a.login_hint,
                       "local_models": a.local_models, "provider": a.provider})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "{:<12} {:<10} {:<8} {:<6} COMMAND",
        "NAME", "INSTALLED", "LOGIN", "LOCAL"
    );
    for a in list {
        println!(
            "{:<12} {:<10} {:<8} {:<6} {}",
            a.name,
            if a.installed { "yes" } else { "no" },
            if a.needs_login { "needed" } else { "ok" },
            if a.local_models { "yes" } else { "-" },
            a.command.join(" ")
        );
        if let (true, Some(h)) = (a.installed && a.needs_login, a.login_hint) {
            println!("             to log in: {h}");
        }
    }
    println!();
    match servers {
        Some(Ok(s)) => super::machine::print_servers(&s),
        Some(Err(e)) => println!("model servers: the host did not list them: {e:#}"),
        None => {}
    }
    Ok(0)
}

pub async fn run(paths: &Paths, cmd: AgentCmd, relay_only: bool) -> Result<u8> {
    let host = match &cmd {
        AgentCmd::New { host, .. }
        | AgentCmd::Ls { host, .. }
        | AgentCmd::Send { host, .. }
        | AgentCmd::Cancel { host, .. }
        | AgentCmd::Approve { host, .. }
        | AgentCmd::Diff { host, .. }
        | AgentCmd::Close { host, .. }
        | AgentCmd::Mode { host, .. }
        | AgentCmd::Set { host, .. } => host.host.clone(),
        AgentCmd::Attach(a) => a.host.host.clone(),
    };
    let (dialer, conn) = connect(paths, host.as_deref(), relay_only).await?;
    let res = run_on(&conn, cmd).await;
    hang_up(dialer, conn).await;
    res
}

async fn run_on(conn: &HostConn, cmd: AgentCmd) -> Result<u8> {
    match cmd {
        AgentCmd::New {
            agent,
            repo,
            base,
            model,
            prompt,
            ..
        } => {
            let repo = std::path::Path::new(&repo);
            // A relative path means one on this machine, which is the host when run there.
            let repo = if repo.is_absolute() {
                repo.to_path_buf()
            } else {
                std::env::current_dir()?.join(repo)
            };
            let r = conn
                .request(Request::NewAgentSession(NewAgentSession {
                    agent,
                    repo: repo.to_string_lossy().into_owned(),
                    base,
                    prompt,
                    model,
                }))
                .await?;
            let Reply::AgentSession(info) = r else {
                bail!("unexpected reply");
            };
            println!("{}", info.id);
            eprintln!("worktree {} on branch {}", info.worktree, info.branch);
            eprintln!("model: {}", super::machine::place_text(&info.model));
            Ok(0)
        }
        AgentCmd::Ls { json, .. } => {
            let Reply::AgentSessions(list) = conn.request(Request::ListAgentSessions).await? else {
                bail!("unexpected reply");
            };
            print_sessions(&list, json)?;
            Ok(0)
        }
        AgentCmd::Send { id, text, .. } => {
            let r = conn
                .request(Request::AgentPrompt { session: id, text })
                .await?;
            if let Reply::AgentPrompted { queued: true } = r {
                eprintln!("queued: a turn is running");
            }
            Ok(0)
        }
        AgentCmd::Cancel { id, .. } => {
            conn.request(Request::AgentCancel { session: id }).await?;
            Ok(0)
        }
        AgentCmd::Approve {
            id,
            approval,
            option,
            ..
        } => {
            conn.request(Request::AgentAnswer {
                session: id,
                approval,
                option,
            })
            .await?;
            Ok(0)
        }
        AgentCmd::Diff { id, stat, json, .. } => {
            let Reply::AgentDiff(d) = conn.request(Request::AgentDiff { session: id }).await?
            else {
                bail!("unexpected reply");
            };
            let mut out = std::io::stdout().lock();
            if json {
                let files: Vec<Value> = d
                    .files
                    .iter()
                    .map(|f| json!({"path": f.path, "status": f.status, "patch": f.patch}))
                    .collect();
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"base": d.base, "branch": d.branch, "files": files})
                    )?
                )?;
            } else if stat {
                for f in &d.files {
                    writeln!(out, "{:<10} {}", f.status, f.path)?;
                }
            } else {
                for f in &d.files {
                    write!(out, "{}", f.patch)?;
                }
            }
            Ok(0)
        }
        AgentCmd::Close { id, remove, .. } => {
            conn.request(Request::AgentClose {
                session: id,
                remove_worktree: remove,
            })
            .await?;
            Ok(0)
        }
        AgentCmd::Mode { id, mode, .. } => {
            conn.request(Request::AgentSetMode { session: id, mode })
                .await?;
            Ok(0)
        }
        AgentCmd::Set {
            id, option, value, ..
        } => {
            conn.request(Request::AgentSetOption {
                session: id,
                option,
                value,
            })
            .await?;
            Ok(0)
        }
        AgentCmd::Attach(a) => attach::attach(conn, a).await,
    }
}

fn place_json(p: &ModelPlace) -> Value {
    match p {
        ModelPlace::Local {
            server,
            endpoint,
            model,
        } => json!({"runs": "local", "server": server, "endpoint": endpoint, "model": model}),
        ModelPlace::Provider { provider } => json!({"runs": "provider", "provider": provider}),
    }
}

fn print_sessions(list: &[AgentSessionInfo], json: bool) -> Result<()> {
    if json {
        let v: Vec<Value> = list
            .iter()
            .map(|s| {
                json!({"id": s.id, "agent": s.agent, "repo": s.repo, "worktree": s.worktree,
                       "branch": s.branch, "base": s.base, "state": s.state.as_str(),
                       "detail": s.detail, "created_at_ms": s.created_at_ms, "next_seq": s.next_seq,
                       "pending_approvals": s.pending_approvals, "queued_prompts": s.queued_prompts,
                       "attached": s.attached, "model": place_json(&s.model)})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<4} {:<10} {:<17} {:<8} {:<6} REPO / BRANCH",
        "ID", "AGENT", "STATE", "EVENTS", "ASKS"
    );
    for s in list {
        println!(
            "{:<4} {:<10} {:<17} {:<8} {:<6} {} {}",
            s.id,
            s.agent,
            s.state.as_str(),
            s.next_seq,
            s.pending_approvals,
            s.repo,
            s.branch
        );
    }
    Ok(())
}

pub async fn audit(paths: &Paths, limit: u32, json: bool) -> Result<u8> {
    let reply = client::local_request(paths, LocalRequest::Audit { limit })
        .await
        .map_err(|e| anyhow!(e))?;
    let LocalReply::Audit(rows) = reply else {
        bail!("unexpected reply: {reply:?}");
    };
    if json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({"at": r.at, "device": r.device, "device_name": r.device_name,
                       "event": r.event, "detail": r.detail})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for r in rows {
        let who = r
            .device_name
            .clone()
            .or_else(|| r.device.as_ref().map(|d| d[..8].to_string()))
            .unwrap_or_else(|| "-".into());
        println!("{:<11} {:<14} {:<16} {}", r.at, who, r.event, r.detail);
    }
    Ok(0)
}
