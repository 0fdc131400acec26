//! `peer agent attach`: the session's transcript as it happens, prompts and approval answers
//! typed inline.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Result, anyhow, bail};
use peer::agent::view::to_view;
use peer::client::HostConn;
use peer::proto::{AgentEventKind, Frame, NewAgentSession, Reply, Request, write_frame};
use serde_json::{Value, json};

use super::AttachAgentArgs;
use super::render::Printer;

/// What the attach loop knows about open approvals: number → option ids in order.
pub(super) type Open = BTreeMap<u64, Vec<(String, String, String)>>;

pub(super) async fn attach(conn: &HostConn, a: AttachAgentArgs) -> Result<u8> {
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
        eprintln!(
            "model: {}",
            super::super::machine::place_text(&attached.info.model)
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
                track(&mut open, &ev.event);
                if let AgentEventKind::State { state: s, .. } = &ev.event {
                    state = s.as_str().to_string();
                }
                if a.json {
                    let (kind, data) = to_view(&ev.event);
                    println!("{}", json!({"seq": ev.seq, "at_ms": ev.at_ms, "kind": kind, "data": data}));
                } else {
                    printer.print(&ev.event, &open);
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

fn track(open: &mut Open, ev: &AgentEventKind) {
    match ev {
        AgentEventKind::Permission {
            approval, options, ..
        } => {
            let opts = serde_json::from_str::<Value>(options)
                .ok()
                .as_ref()
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
            open.insert(*approval, opts);
        }
        AgentEventKind::PermissionResolved { approval, .. } => {
            open.remove(approval);
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
                    model: None,
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
