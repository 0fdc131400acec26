//! `peer agents`, `peer agent …` and `peer audit`.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use peer::client::sanitize::inline;
use peer::client::transcript::{approval_lines, options};
use peer::client::{self, HostConn, KnownHosts};
use peer::paths::Paths;
use peer::proto::{
    AgentSessionInfo, GrantInfo, GrantScope, LocalReply, LocalRequest, ModelPlace, Reply, Request,
    StartAgent,
};
use peer::tool::scope_text;
use peer::tool::what::describe_with;
use serde_json::{Value, json};

use super::{connect, hang_up};

mod attach;
mod audit;
mod input;
mod term;

pub use audit::{AuditArgs, audit};

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Start an agent in a new worktree of a repository on the host.
    New {
        /// Agent name (see `peer agents`).
        #[arg(long)]
        agent: String,
        /// The git repository on the host, or a directory inside it (the agent then works in
        /// that directory of its worktree). Absolute; a relative path is taken from the current
        /// directory only when the host runs on this machine.
        #[arg(long)]
        repo: String,
        /// Branch, tag or commit to start from (default: the repository's HEAD).
        #[arg(long)]
        base: Option<String>,
        /// Bring the checkout's uncommitted changes (staged, unstaged, untracked) into the
        /// worktree.
        #[arg(long)]
        with_changes: bool,
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
    /// Answer a pending approval; without an option, show it and its options.
    Approve {
        /// Agent session id.
        id: u64,
        /// The approval's number.
        approval: u64,
        /// The option id to choose (see `peer agent approvals`).
        option: Option<String>,
        /// Answer "cancelled" (neither allow nor reject).
        #[arg(long, conflicts_with = "option")]
        cancel: bool,
        #[command(flatten)]
        host: HostOpt,
    },
    /// The approvals waiting in every session, with what they would run or change.
    Approvals {
        #[command(flatten)]
        host: HostOpt,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// A session's grants (what the host answers by itself): list, add, revoke.
    Grants {
        #[command(subcommand)]
        action: Option<GrantsCmd>,
        #[command(flatten)]
        host: HostOpt,
        /// Machine-readable output (listing).
        #[arg(long)]
        json: bool,
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

#[derive(Debug, Subcommand)]
pub enum GrantsCmd {
    /// List grants (of one session, or of every live session).
    Ls {
        /// Agent session id.
        id: Option<u64>,
    },
    /// Make a grant: the host allows (or with --reject, rejects) what it covers, without
    /// asking, in this session.
    Add {
        /// Agent session id.
        id: u64,
        /// Commands that start with this one (parsed: `cargo test` covers `cargo test -p x`).
        #[arg(long, group = "scope")]
        command: Option<String>,
        /// Tool calls of this kind (read, edit, delete, move, search, execute, think, fetch,
        /// switch_mode, other).
        #[arg(long, group = "scope")]
        kind: Option<String>,
        /// Every tool call of the session.
        #[arg(long, group = "scope")]
        all: bool,
        /// Reject instead of allow.
        #[arg(long)]
        reject: bool,
    },
    /// Revoke a grant.
    Revoke {
        /// Agent session id.
        id: u64,
        /// The grant's number.
        grant: u64,
    },
}

#[derive(Debug, Args)]
pub struct HostOpt {
    /// Host name or id prefix, or `local` (default: the host running on this machine,
    /// else the only paired host).
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
                       "install_hint": a.command.first().and_then(|p| install_hint(p)),
                       "local_models": a.local_models, "provider": a.provider})
            })
            .collect();
        writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<12} {:<10} {:<8} {:<6} COMMAND",
        "NAME", "INSTALLED", "LOGIN", "LOCAL"
    )?;
    for a in list {
        writeln!(
            out,
            "{:<12} {:<10} {:<8} {:<6} {}",
            inline(&a.name),
            if a.installed { "yes" } else { "no" },
            if a.needs_login { "needed" } else { "ok" },
            if a.local_models { "yes" } else { "-" },
            inline(&a.command.join(" "))
        )?;
        if !a.installed
            && let Some(h) = a.command.first().and_then(|p| install_hint(p))
        {
            writeln!(out, "             to install: {h}")?;
        }
        if let (true, Some(h)) = (a.installed && a.needs_login, a.login_hint) {
            writeln!(out, "             to log in: {}", inline(&h))?;
        }
    }
    drop(out);
    writeln!(std::io::stdout())?;
    match servers {
        Some(Ok(s)) => super::machine::print_servers(&s),
        Some(Err(e)) => println!("model servers: the host did not list them: {e:#}"),
        None => {}
    }
    Ok(0)
}

/// How to install the program of a known agent.
pub fn install_hint(program: &str) -> Option<&'static str> {
    Some(match program.rsplit('/').next().unwrap_or(program) {
        "claude-agent-acp" => "npm install -g @agentclientprotocol/claude-agent-acp",
        "codex-acp" => "npm install -g @agentclientprotocol/codex-acp",
        "gemini" => "npm install -g @google/gemini-cli",
        "opencode" => "npm install -g opencode-ai",
        "qwen" => "npm install -g @qwen-code/qwen-code",
        "fast-agent" => {
            "uv tool install fast-agent-mcp (or: pip install fast-agent-mcp; Python 3.12+)"
        }
        _ => return None,
    })
}

/// One grant, in words.
pub(super) fn grant_line(g: &GrantInfo) -> String {
    format!(
        "  session {} grant {}: always {} {}  ({}{}, used {}×)",
        g.session,
        g.grant,
        if g.allow { "allow" } else { "reject" },
        inline(&scope_text(&g.scope)),
        inline(&g.by),
        g.approval
            .map(|a| format!(", from approval {a}"))
            .unwrap_or_default(),
        g.used
    )
}

/// Whether the host `host` (name, prefix or the only one) is the one running on this machine.
async fn host_is_local(paths: &Paths, host: Option<&str>) -> bool {
    let Ok(hosts) = KnownHosts::load(paths.hosts_file()) else {
        return false;
    };
    let Ok(known) = hosts.find(host) else {
        return false;
    };
    matches!(
        client::local_request(paths, LocalRequest::Status).await,
        Ok(LocalReply::Status(s)) if s.endpoint_id == known.endpoint_id
    )
}

pub async fn run(paths: &Paths, cmd: AgentCmd, relay_only: bool) -> Result<u8> {
    let host = match &cmd {
        AgentCmd::New { host, .. }
        | AgentCmd::Ls { host, .. }
        | AgentCmd::Send { host, .. }
        | AgentCmd::Cancel { host, .. }
        | AgentCmd::Approve { host, .. }
        | AgentCmd::Approvals { host, .. }
        | AgentCmd::Grants { host, .. }
        | AgentCmd::Diff { host, .. }
        | AgentCmd::Close { host, .. }
        | AgentCmd::Mode { host, .. }
        | AgentCmd::Set { host, .. } => host.host.clone(),
        AgentCmd::Attach(a) => a.host.host.clone(),
    };
    // A relative repository path names a directory on this machine: only good if the host is
    // this machine. Checked before connecting.
    let cmd = match cmd {
        AgentCmd::New {
            agent,
            repo,
            base,
            with_changes,
            model,
            prompt,
            host: h,
        } if !std::path::Path::new(&repo).is_absolute() => {
            if !host_is_local(paths, host.as_deref()).await {
                bail!(
                    "--repo {repo:?} is a relative path, which names a directory on this machine;                      the host runs elsewhere: give the repository's absolute path on the host"
                );
            }
            let abs = std::env::current_dir()
                .context("the current directory")?
                .join(&repo);
            AgentCmd::New {
                agent,
                repo: abs.to_string_lossy().into_owned(),
                base,
                with_changes,
                model,
                prompt,
                host: h,
            }
        }
        other => other,
    };
    let (dialer, conn) = connect(paths, host.as_deref(), relay_only).await?;
    if let AgentCmd::Attach(a) = cmd {
        return attach::attach(paths, dialer, conn, a).await;
    }
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
            with_changes,
            model,
            prompt,
            ..
        } => {
            let r = conn
                .request(Request::StartAgent(StartAgent {
                    agent,
                    repo,
                    base,
                    prompt,
                    with_changes,
                    model,
                }))
                .await?;
            let Reply::AgentStarted(s) = r else {
                bail!("unexpected reply");
            };
            writeln!(std::io::stdout(), "{}", s.info.id)?;
            eprintln!(
                "worktree {} on branch {}{}",
                inline(&s.info.worktree),
                inline(&s.info.branch),
                if s.cwd != s.info.worktree {
                    format!("; the agent works in {}", inline(&s.cwd))
                } else {
                    String::new()
                }
            );
            for w in &s.warnings {
                eprintln!("warning: {}", inline(w));
            }
            eprintln!(
                "model: {}",
                inline(&super::machine::place_text(&s.info.model))
            );
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
            cancel,
            ..
        } => {
            if option.is_none() && !cancel {
                // Never "cancelled" by omission: show the approval and what to choose.
                let Reply::Approvals(list) = conn.request(Request::ListApprovals).await? else {
                    bail!("unexpected reply");
                };
                let Some(p) = list
                    .iter()
                    .find(|p| p.session == id && p.approval == approval)
                else {
                    bail!("no approval {approval} is waiting in agent session {id}");
                };
                let opts = options(&p.options);
                let tool = serde_json::from_str(&p.tool_call).unwrap_or_default();
                let what = describe_with(&tool, Some(&p.what));
                let mut err = std::io::stderr().lock();
                for l in approval_lines(approval, &what, &opts, &p.cwd) {
                    writeln!(err, "{l}")?;
                }
                let ids: Vec<String> = opts
                    .iter()
                    .map(|o| format!("{} ({})", inline(&o.id), inline(&o.name)))
                    .collect();
                writeln!(
                    err,
                    "choose one: peer agent approve {id} {approval} OPTION, OPTION one of: {}; or --cancel",
                    ids.join(", ")
                )?;
                return Ok(2);
            }
            conn.request(Request::AgentAnswer {
                session: id,
                approval,
                option,
            })
            .await?;
            Ok(0)
        }
        AgentCmd::Approvals { json, .. } => {
            let Reply::Approvals(list) = conn.request(Request::ListApprovals).await? else {
                bail!("unexpected reply");
            };
            let mut out = std::io::stdout().lock();
            if json {
                let v: Vec<Value> = list
                    .iter()
                    .map(|p| {
                        let tool: Value = serde_json::from_str(&p.tool_call).unwrap_or_default();
                        let what = describe_with(&tool, Some(&p.what));
                        json!({"session": p.session, "approval": p.approval,
                               "title": what.title, "kind": what.kind, "what": what.summary(),
                               "actions": p.what,
                               "cwd": p.cwd, "at_ms": p.at_ms, "toolCall": tool,
                               "options": serde_json::from_str::<Value>(&p.options).unwrap_or_default()})
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                return Ok(0);
            }
            if list.is_empty() {
                writeln!(out, "no approval is waiting")?;
            }
            for p in &list {
                let tool = serde_json::from_str(&p.tool_call).unwrap_or_default();
                let opts = options(&p.options);
                writeln!(out, "session {}:", p.session)?;
                let what = describe_with(&tool, Some(&p.what));
                for l in approval_lines(p.approval, &what, &opts, &p.cwd) {
                    writeln!(out, "  {l}")?;
                }
                let ids: Vec<String> = opts.iter().map(|o| inline(&o.id)).collect();
                writeln!(
                    out,
                    "    answer: peer agent approve {} {} {}",
                    p.session,
                    p.approval,
                    ids.join("|")
                )?;
            }
            Ok(0)
        }
        AgentCmd::Grants { action, json, .. } => grants(conn, action, json).await,
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
            } else if d.files.is_empty() {
                eprintln!("no changes against {}", &d.base[..d.base.len().min(10)]);
            } else if stat {
                for f in &d.files {
                    writeln!(out, "{:<10} {}", f.status, inline(&f.path))?;
                }
            } else {
                for f in &d.files {
                    write!(out, "{}", peer::client::sanitize::block(&f.patch))?;
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
        AgentCmd::Attach(_) => bail!("attach runs on its own connection"),
    }
}

async fn grants(conn: &HostConn, action: Option<GrantsCmd>, json: bool) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    match action.unwrap_or(GrantsCmd::Ls { id: None }) {
        GrantsCmd::Ls { id } => {
            let Reply::Grants(list) = conn.request(Request::ListGrants { session: id }).await?
            else {
                bail!("unexpected reply");
            };
            if json {
                let v: Vec<Value> = list
                    .iter()
                    .map(|g| {
                        json!({"session": g.session, "grant": g.grant,
                               "scope": peer::agent::view::scope_view(&g.scope),
                               "allow": g.allow, "by": g.by, "approval": g.approval,
                               "at_ms": g.at_ms, "used": g.used})
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                return Ok(0);
            }
            if list.is_empty() {
                writeln!(out, "no grants")?;
            }
            for g in &list {
                writeln!(out, "{}", grant_line(g))?;
            }
            Ok(0)
        }
        GrantsCmd::Add {
            id,
            command,
            kind,
            all,
            reject,
        } => {
            let scope = match (command, kind, all) {
                (Some(command), _, _) => GrantScope::Command { command },
                (_, Some(kind), _) => GrantScope::Kind { kind },
                (_, _, true) => GrantScope::Session,
                _ => bail!("what does the grant cover? --command CMD, --kind KIND or --all"),
            };
            let Reply::Grants(g) = conn
                .request(Request::AddGrant {
                    session: id,
                    scope,
                    allow: !reject,
                })
                .await?
            else {
                bail!("unexpected reply");
            };
            for g in &g {
                writeln!(out, "{}", grant_line(g))?;
            }
            Ok(0)
        }
        GrantsCmd::Revoke { id, grant } => {
            conn.request(Request::RevokeGrant { session: id, grant })
                .await?;
            Ok(0)
        }
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
    let mut out = std::io::stdout().lock();
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
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<4} {:<10} {:<17} {:<8} {:<6} REPO / BRANCH",
        "ID", "AGENT", "STATE", "EVENTS", "ASKS"
    )?;
    for s in list {
        writeln!(
            out,
            "{:<4} {:<10} {:<17} {:<8} {:<6} {} {}",
            s.id,
            inline(&s.agent),
            s.state.as_str(),
            s.next_seq,
            s.pending_approvals,
            inline(&s.repo),
            inline(&s.branch)
        )?;
        if let Some(d) = &s.detail {
            writeln!(out, "     {}", inline(d))?;
        }
    }
    Ok(())
}
