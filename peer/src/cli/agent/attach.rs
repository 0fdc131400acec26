//! `peer agent attach`: the session's transcript as it happens, prompts and approval answers
//! typed inline, on a line editor with history when both ends are a terminal. Reconnects and
//! catches up (from the last event seen) when the connection drops.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use peer::agent::view::to_view;
use peer::client::sanitize::inline;
use peer::client::transcript::Transcript;
use peer::client::{Dialer, HostConn};
use peer::paths::Paths;
use peer::proto::{AgentEvent, AgentState, Frame, write_frame};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::AttachAgentArgs;
use super::input::{Done, Input, Line, Link, Typed};
use super::term::{Out, read_lines};

/// Two Ctrl-C within this detach.
const DOUBLE_CTRL_C: Duration = Duration::from_secs(2);
/// A message line not ended yet is shown after this long without more text.
const FLUSH_AFTER: Duration = Duration::from_millis(200);

type Stream = peer::client::Streams;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5)).min(3000))
}

pub(super) async fn attach(
    paths: &Paths,
    dialer: Dialer,
    conn: HostConn,
    a: AttachAgentArgs,
) -> Result<u8> {
    let mut id = a.id;
    let (send, reader, attached) = conn.agent_attach(id, a.from).await?;
    let mut stream: Option<Stream> = Some((send, reader));
    let mut link = Link::new(dialer, conn);
    let info = attached.info;
    let until: Vec<String> = a
        .until
        .as_deref()
        .map(|u| u.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let caught_up_at = info.next_seq;
    let mut state = info.state;
    let interactive = !a.no_input && !a.json && super::term::is_terminal();
    let mut out = Out::new(interactive, paths);
    let (tx, mut typed) = mpsc::channel::<Typed>(16);
    let prompts = if a.no_input {
        None
    } else if interactive {
        out.start_editor(tx.clone())
    } else {
        read_lines(tx.clone());
        None
    };
    if !a.json {
        out.notice(&format!(
            "attached to agent session {} ({}, {}), {} events; type a prompt; 1, 2, … or y / n \
             answer an approval; /help lists commands; Ctrl-C cancels the turn, Ctrl-D detaches",
            info.id,
            inline(&info.agent),
            state.as_str(),
            info.next_seq
        ));
        out.notice(&format!(
            "model: {}",
            inline(&super::super::machine::place_text(&info.model))
        ));
    }
    let check_until = |s: AgentState| until.iter().any(|u| u == s.as_str());
    if a.from >= caught_up_at && check_until(state) {
        return Ok(0);
    }
    let mut input = Input::new(prompts, id, &info.agent, &info.repo);
    input.ready();
    let mut t = Transcript::new(&info.worktree);
    let mut next = a.from.min(caught_up_at);
    let mut seen = 0u64;
    let mut flush_at: Option<Instant> = None;
    let mut last_ctrl_c: Option<Instant> = None;
    let mut attempt = 0u32;
    let mut reconnect_at: Option<Instant> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let code = loop {
        tokio::select! {
            f = async { match stream.as_mut() { Some((_, r)) => r.read().await, None => std::future::pending().await } } => {
                let ev: AgentEvent = match f {
                    Ok(Frame::AgentEvent(ev)) => ev,
                    Ok(Frame::Error(e)) => return Err(anyhow!(e)),
                    Ok(other) => bail!("unexpected {:?} frame", other.frame_type()),
                    Err(e) => {
                        let e = link.lost(e);
                        if !e.is_retryable() {
                            return Err(e.into());
                        }
                        out.notice(&format!("-- connection lost ({e}); reconnecting"));
                        stream = None;
                        reconnect_at = Some(Instant::now());
                        continue;
                    }
                };
                if ev.seq < next {
                    continue;
                }
                next = ev.seq + 1;
                seen += 1;
                if let peer::proto::AgentEventKind::State { state: s, .. } = &ev.event {
                    state = *s;
                }
                if a.json {
                    let (kind, data) = to_view(&ev.event);
                    out.line(&json!({"seq": ev.seq, "at_ms": ev.at_ms, "kind": kind, "data": data}).to_string())?;
                } else {
                    for l in t.event(&ev.event) {
                        out.line(&l)?;
                    }
                    flush_at = t.has_partial().then(|| Instant::now() + FLUSH_AFTER);
                }
                input.seen(&t, state);
                if a.count.is_some_and(|c| seen >= c) {
                    break 0;
                }
                if ev.seq + 1 >= caught_up_at && check_until(state) {
                    break 0;
                }
            }
            _ = async { match flush_at { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                flush_at = None;
                for l in t.flush() {
                    out.line(&l)?;
                }
            }
            _ = async { match reconnect_at { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                reconnect_at = None;
                match link.reconnect(id, next).await {
                    Ok((s, r)) => {
                        attempt = 0;
                        stream = Some((s, r));
                        out.notice(&format!("-- reconnected; catching up from event {next}"));
                    }
                    Err(e) if e.is_retryable() => {
                        attempt += 1;
                        if attempt.is_multiple_of(10) {
                            out.notice(&format!("-- still reconnecting ({e})"));
                        }
                        reconnect_at = Some(Instant::now() + backoff(attempt));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            r = &mut ctrl_c => {
                let _ = r;
                ctrl_c.set(tokio::signal::ctrl_c());
                if handle_ctrl_c(&mut last_ctrl_c, state, &link, id, &mut out).await {
                    break 0;
                }
            }
            Some(k) = typed.recv() => match k {
                Line::Text(line) => {
                    last_ctrl_c = None;
                    match input.line(&line, &t, state, &link, &mut out).await {
                        Done::Stay => {}
                        Done::Switch(n) => {
                            if let Some((mut s, _)) = stream.take() {
                                let _ = write_frame(&mut s, &Frame::Detach).await;
                                s.finish();
                            }
                            match link.attach(n, 0).await {
                                Ok((s, r, info)) => {
                                    stream = Some((s, r));
                                    id = n;
                                    next = 0;
                                    state = info.info.state;
                                    t = Transcript::new(&info.info.worktree);
                                    input.switch(n, &info.info.agent, &info.info.repo);
                                    out.notice(&format!(
                                        "attached to agent session {n} ({}, {})",
                                        inline(&info.info.agent),
                                        info.info.state.as_str()
                                    ));
                                }
                                Err(e) => {
                                    out.notice(&format!("peer: {}", inline(&e.to_string())));
                                    reconnect_at = Some(Instant::now());
                                }
                            }
                        }
                    }
                    input.ready();
                }
                Line::Interrupt => {
                    if handle_ctrl_c(&mut last_ctrl_c, state, &link, id, &mut out).await {
                        break 0;
                    }
                    input.ready();
                }
                Line::Eof => {
                    if interactive {
                        out.notice(&format!(
                            "-- detached; the session goes on (`peer agent attach {id}` comes back)"
                        ));
                        break 0;
                    }
                }
            },
        }
    };
    if let Some((mut s, _)) = stream.take() {
        let _ = write_frame(&mut s, &Frame::Detach).await;
        s.finish();
    }
    input.close();
    out.close();
    link.hang_up().await;
    Ok(code)
}

/// Ctrl-C: cancels the running turn; a second one within [`DOUBLE_CTRL_C`] detaches
/// (`true`).
async fn handle_ctrl_c(
    last: &mut Option<Instant>,
    state: AgentState,
    link: &Link,
    id: u64,
    out: &mut Out,
) -> bool {
    if last.is_some_and(|t| t.elapsed() < DOUBLE_CTRL_C) {
        out.notice(&format!(
            "-- detached; the session goes on (`peer agent attach {id}` comes back)"
        ));
        return true;
    }
    *last = Some(Instant::now());
    if matches!(state, AgentState::Running | AgentState::WaitingApproval) {
        out.notice("-- cancelling the turn (Ctrl-C again within 2 s detaches)");
        if let Err(e) = link
            .request(peer::proto::Request::AgentCancel { session: id })
            .await
        {
            out.notice(&format!("peer: {}", inline(&format!("{e:#}"))));
        }
    } else {
        out.notice("-- no turn is running; Ctrl-C again within 2 s detaches (Ctrl-D too)");
    }
    false
}
