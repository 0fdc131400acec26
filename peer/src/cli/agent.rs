//! `peer agents`, `peer agent …` and `peer audit`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use peer::client::{self, HostConn};
use peer::paths::Paths;
use peer::proto::{
    AgentEvent, AgentSessionInfo, Frame, LocalReply, LocalRequest, NewAgentSession, Reply, Request,
    write_frame,
};
use serde_json::{Value, json};

use super::{connect, hang_up};

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
    hang_up(dialer, conn).await;
    let Reply::Agents(list) = reply? else {
        bail!("unexpected reply");
    };
    if json {
        let v: Vec<Value> = list
            .iter()
            .map(|a| {
                json!({"name": a.name, "command": a.command, "installed": a.installed,
                       "needs_login": a.needs_login, "login_hint": a.login_hint})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("{:<12} {:<10} {:<12} COMMAND", "NAME", "INSTALLED", "LOGIN");
    for a in list {
        println!(
            "{:<12} {:<10} {:<12} {}",
            a.name,
            if a.installed { "yes" } else { "no" },
            if a.needs_login { "needed" } else { "ok" },
            a.command.join(" ")
        );
        if let (true, Some(h)) = (a.installed && a.needs_login, a.login_hint) {
            println!("             to log in: {h}");
        }
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
                }))
                .await?;
            let Reply::AgentSession(info) = r else {
                bail!("unexpected reply");
            };
            println!("{}", info.id);
            eprintln!("worktree {} on branch {}", info.worktree, info.branch);
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
        AgentCmd::Attach(a) => attach(conn, a).await,
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
                       "attached": s.attached})
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

/// What the attach loop knows about open approvals: number → option ids in order.
type Open = BTreeMap<u64, Vec<(String, String, String)>>;

async fn attach(conn: &HostConn, a: AttachAgentArgs) -> Result<u8> {
    let mut id = a.id;
    let (mut send, mut reader, attached) = conn.agent_attach(id, a.from).await?;
    let (agent, repo) = (attached.info.agent.clone(), attached.info.repo.clone());
    let until: Vec<String> = a
        .until
        .as_deref()
        .map(|u| u.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let caught_up_at = attached.info.next_seq;
    let mut state = attached.info.state.as_str().to_string();
    if !a.json {
        eprintln!(
            "attached to agent session {} ({}, {}), {} events; type a prompt, or a number to answer an approval",
            attached.info.id, attached.info.agent, state, attached.info.next_seq
        );
    }
    let (line_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    if !a.no_input {
        // A blocking reader thread; it ends with the process.
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line_tx.blocking_send(line.trim_end().to_string()).is_err() {
                    break;
                }
                line.clear();
            }
        });
    }
    let mut open: Open = BTreeMap::new();
    let mut seen = 0u64;
    let mut printer = Printer::default();
    let check_until = |state: &str| until.iter().any(|u| u == state);
    if caught_up_at == a.from.min(caught_up_at) && a.from >= caught_up_at && check_until(&state) {
        return Ok(0);
    }
    loop {
        tokio::select! {
            f = reader.read() => {
                let ev = match f {
                    Ok(Frame::AgentEvent(ev)) => ev,
                    Ok(Frame::Error(e)) => return Err(anyhow!(e)),
                    Ok(other) => bail!("unexpected {:?} frame", other.frame_type()),
                    Err(e) => bail!("the host ended the stream: {e}"),
                };
                seen += 1;
                let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                track(&mut open, &ev, &data);
                if ev.kind == "state"
                    && let Some(s) = data.get("state").and_then(Value::as_str)
                {
                    state = s.to_string();
                }
                if a.json {
                    println!("{}", json!({"seq": ev.seq, "at_ms": ev.at_ms, "kind": ev.kind, "data": data}));
                } else {
                    printer.print(&ev, &data, &open);
                }
                let _ = std::io::stdout().flush();
                if a.count.is_some_and(|c| seen >= c) {
                    break;
                }
                if ev.seq + 1 >= caught_up_at && check_until(&state) {
                    break;
                }
            }
            Some(line) = lines.recv() => {
                match input(conn, id, &line, &open, (&agent, &repo)).await {
                    Ok(Some(next)) => {
                        let _ = write_frame(&mut send, &Frame::Detach).await;
                        let _ = send.finish();
                        let (s2, r2, info) = conn.agent_attach(next, 0).await?;
                        (send, reader, id) = (s2, r2, next);
                        open.clear();
                        printer = Printer::default();
                        eprintln!("attached to agent session {id} ({}, {})", info.info.agent, info.info.state.as_str());
                    }
                    Ok(None) => {}
                    Err(e) => eprintln!("peer: {e:#}"),
                }
            }
        }
    }
    let _ = write_frame(&mut send, &Frame::Detach).await;
    let _ = send.finish();
    Ok(0)
}

fn track(open: &mut Open, ev: &AgentEvent, data: &Value) {
    let Some(n) = data.get("approval").and_then(Value::as_u64) else {
        return;
    };
    match ev.kind.as_str() {
        "permission" => {
            let opts = data
                .get("options")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .map(|o| {
                            let s = |k: &str| {
                                o.get(k).and_then(Value::as_str).unwrap_or("").to_string()
                            };
                            (s("optionId"), s("name"), s("kind"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            open.insert(n, opts);
        }
        "permission_resolved" => {
            open.remove(&n);
        }
        _ => {}
    }
}

const HELP: &str = "type a prompt and Enter to send it (queued while a turn runs)
  1, 2, …   answer the oldest open approval with that option
  y / n     allow once / reject the oldest open approval
  /cancel   cancel the running turn (also /abort)
  /diff     list changed files
  /mode M   switch the agent's mode (the modes are in its `started` event)
  /model M  choose the agent's model (its `model` option)
  /new [P]  start a new session of this agent on this repository, with prompt P, and attach
  /resume N attach to agent session N instead
  //text    send a prompt that starts with /
  /help     this text";

/// Acts on one typed line; `Some(id)` means: attach to that session instead.
async fn input(
    conn: &HostConn,
    id: u64,
    line: &str,
    open: &Open,
    (agent, repo): (&str, &str),
) -> Result<Option<u64>> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let oldest = open.iter().next();
    let pick = |kinds: &[&str]| {
        oldest.and_then(|(_, opts)| {
            kinds
                .iter()
                .find_map(|k| opts.iter().find(|o| o.2 == *k).map(|o| o.0.clone()))
        })
    };
    let answer = match (line, oldest) {
        (_, None) => None,
        ("y", Some(_)) => Some(pick(&["allow_once", "allow_always"])),
        ("n", Some(_)) => Some(pick(&["reject_once", "reject_always"])),
        (l, Some((_, opts))) => l
            .parse::<usize>()
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| opts.get(i))
            .map(|o| Some(o.0.clone())),
    };
    if let (Some(option), Some((n, _))) = (answer, oldest) {
        conn.request(Request::AgentAnswer {
            session: id,
            approval: *n,
            option,
        })
        .await?;
        return Ok(None);
    }
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    match cmd {
        "/new" => {
            let r = conn
                .request(Request::NewAgentSession(NewAgentSession {
                    agent: agent.to_string(),
                    repo: repo.to_string(),
                    base: None,
                    prompt: (!rest.is_empty()).then(|| rest.to_string()),
                }))
                .await?;
            let Reply::AgentSession(info) = r else {
                bail!("unexpected reply");
            };
            return Ok(Some(info.id));
        }
        "/resume" => {
            let n: u64 = rest
                .parse()
                .map_err(|_| anyhow!("/resume takes a session id"))?;
            return Ok(Some(n));
        }
        "/mode" if !rest.is_empty() => {
            conn.request(Request::AgentSetMode {
                session: id,
                mode: rest.to_string(),
            })
            .await?;
            return Ok(None);
        }
        "/model" if !rest.is_empty() => {
            conn.request(Request::AgentSetOption {
                session: id,
                option: "model".into(),
                value: rest.to_string(),
            })
            .await?;
            return Ok(None);
        }
        _ => {}
    }
    match line {
        "/cancel" | "/abort" => {
            conn.request(Request::AgentCancel { session: id }).await?;
        }
        "/diff" => {
            if let Reply::AgentDiff(d) = conn.request(Request::AgentDiff { session: id }).await? {
                for f in d.files {
                    println!("  {:<10} {}", f.status, f.path);
                }
            }
        }
        "/help" => println!("{HELP}"),
        l if l.starts_with('/') && !l.starts_with("//") => {
            bail!("unknown command {l} (/help lists them)")
        }
        l => {
            let text = l.strip_prefix('/').unwrap_or(l).to_string();
            conn.request(Request::AgentPrompt { session: id, text })
                .await?;
        }
    }
    Ok(None)
}

#[derive(Default)]
struct Printer {
    /// The kind of chunk being printed inline, if any.
    inline: Option<String>,
}

impl Printer {
    fn line(&mut self, s: String) {
        if self.inline.take().is_some() {
            println!();
        }
        println!("{s}");
    }

    fn print(&mut self, ev: &AgentEvent, d: &Value, open: &Open) {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match ev.kind.as_str() {
            "update" => {
                let kind = s(d, "sessionUpdate");
                match kind.as_str() {
                    "agent_message_chunk" | "agent_thought_chunk" | "user_message_chunk" => {
                        let text = d.get("content").map(|c| s(c, "text")).unwrap_or_default();
                        if self.inline.as_deref() != Some(kind.as_str()) {
                            if self.inline.is_some() {
                                println!();
                            }
                            let who = match kind.as_str() {
                                "agent_message_chunk" => "agent",
                                "agent_thought_chunk" => "thinking",
                                _ => "user",
                            };
                            print!("{who}: ");
                            self.inline = Some(kind.clone());
                        }
                        print!("{text}");
                    }
                    "tool_call" => self.line(format!(
                        "⚙ {} [{}] {}",
                        s(d, "title"),
                        s(d, "kind"),
                        s(d, "status")
                    )),
                    "tool_call_update" => {
                        let mut line = format!("  ↳ {} {}", s(d, "toolCallId"), s(d, "status"));
                        for c in d
                            .get("content")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if s(c, "type") == "diff" {
                                line.push_str(&format!(" (diff {})", s(c, "path")));
                            }
                        }
                        self.line(line)
                    }
                    "plan" => {
                        let entries: Vec<String> = d
                            .get("entries")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .map(|e| format!("  [{}] {}", s(e, "status"), s(e, "content")))
                            .collect();
                        self.line(format!("plan:\n{}", entries.join("\n")))
                    }
                    other => self.line(format!("[{other}]")),
                }
            }
            "prompt" => self.line(format!(
                "> {}{}",
                s(d, "text"),
                if d.get("queued").and_then(Value::as_bool) == Some(true) {
                    "  (queued)"
                } else {
                    ""
                }
            )),
            "permission" => {
                let n = d.get("approval").and_then(Value::as_u64).unwrap_or(0);
                let title = d.get("toolCall").map(|t| s(t, "title")).unwrap_or_default();
                let mut text = format!("? approval {n}: {title}");
                if let Some(opts) = open.get(&n) {
                    for (i, o) in opts.iter().enumerate() {
                        text.push_str(&format!("\n    {}) {}", i + 1, o.1));
                    }
                    text.push_str("\n  answer with a number (or y / n)");
                }
                self.line(text)
            }
            "permission_resolved" => self.line(format!(
                "✓ approval {}: {} by {}",
                d.get("approval").and_then(Value::as_u64).unwrap_or(0),
                d.get("optionId")
                    .and_then(Value::as_str)
                    .unwrap_or("cancelled"),
                s(d, "by")
            )),
            "turn_end" => self.line(format!("-- turn ended: {}", s(d, "stopReason"))),
            "state" => self.line(format!("-- {}", s(d, "state"))),
            "error" => self.line(format!("!! {}", s(d, "message"))),
            "turn_start" | "started" => {}
            other => self.line(format!("[{other}] {d}")),
        }
    }
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
