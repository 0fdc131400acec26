//! A scripted ACP agent for peer's tests and benchmarks. It needs no model: the first word of
//! each prompt says what to do.
//!
//! | prompt | what the agent does |
//! | --- | --- |
//! | `all` | sends one `session/update` of every kind (and one unknown kind), ends the turn |
//! | `ask` | a tool call that needs permission; reports the answer; ends `end_turn` or `cancelled` |
//! | `read` | like `ask`, for a tool call of kind `read` |
//! | `wait` | waits until cancelled; ends `cancelled` |
//! | `crash` | sends a message, then exits with status 3 in the middle of the turn |
//! | `write PATH TEXT` | writes TEXT to PATH in its cwd, reports the edit as a diff |
//! | `flood N` | N message chunks |
//! | `ping` | one message chunk carrying the send time in unix nanoseconds |
//! | `history` | says how many prompts this session has seen, loaded ones included |
//! | `run CMD` | asks to run CMD (kind `execute`); if allowed, runs it through the client's `terminal/*` (`sh -c CMD`) and reports `exit N: OUTPUT` or the client's refusal |
//! | `runin DIR CMD` | the same with `cwd: DIR` |
//! | `swap CMD` | asks to run `echo approved`, then asks the client to run CMD instead |
//! | `sneak CMD` | asks the client to run CMD without asking for permission |
//! | `asks CMD` | asks permission to run CMD (shown in `rawInput.command`), with the options allow, always, reject, never; says the answer; runs nothing |
//! | `askedit PATH` | asks permission to edit PATH (a diff in the tool call); says the answer |
//! | `askfetch URL` | asks permission to fetch URL; says the answer |
//! | `evil` | prints escape sequences (clear screen, home, window title, clipboard), a carriage return and a forged approval prompt, and a tool call whose title has them too |
//! | `evilhtml` | prints HTML (an `<img onerror>`, a `<script>`), `javascript:` links, a forged approval and escape sequences, and a tool call whose title is HTML and whose output has escapes and HTML |
//! | anything else | echoes the prompt |
//!
//! Sessions are remembered in `$PEER_FAKE_AGENT_STATE/<session id>.json` (when set), so
//! `session/load` replays them after a restart. `FAKE_AGENT_LOAD=0` turns `loadSession` off;
//! `FAKE_AGENT_RESUME=1` advertises and serves `session/resume` (no replay).
//!
//! At start it writes its pid to `$PEER_AGENT_STATE/fake-agent.pid` (the host sets that
//! variable). `FAKE_AGENT_HANG_START=1` makes it never answer `initialize`;
//! `FAKE_AGENT_FAIL_START=TEXT` makes it write TEXT (and a second line) to stderr and exit
//! with status 7 before answering.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, LoadSessionRequest, LoadSessionResponse, NewSessionRequest,
    NewSessionResponse, PromptRequest, PromptResponse, SessionMode, SessionModeState,
    SetSessionModeRequest, SetSessionModeResponse, StopReason,
};
use agent_client_protocol::{Agent, ByteStreams, Client, UntypedMessage};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

#[derive(Default)]
struct State {
    cancels: Mutex<HashMap<String, Arc<Notify>>>,
    history: Mutex<HashMap<String, Vec<String>>>,
    dir: Option<PathBuf>,
}

impl State {
    fn notify(&self, sid: &str) -> Arc<Notify> {
        self.cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(sid.to_string())
            .or_default()
            .clone()
    }
    fn remember(&self, sid: &str, prompt: &str) -> usize {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let v = h.entry(sid.to_string()).or_default();
        v.push(prompt.to_string());
        if let Some(dir) = &self.dir {
            let _ = std::fs::write(
                dir.join(format!("{sid}.json")),
                serde_json::to_vec(v).unwrap_or_default(),
            );
        }
        v.len()
    }
    fn load(&self, sid: &str) -> Vec<String> {
        let v: Vec<String> = self
            .dir
            .as_ref()
            .and_then(|d| std::fs::read(d.join(format!("{sid}.json"))).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sid.to_string(), v.clone());
        v
    }
}

fn update(cx: &ConnectionTo<Client>, sid: &str, update: Value) {
    if let Ok(m) = UntypedMessage::new(
        "session/update",
        json!({"sessionId": sid, "update": update}),
    ) {
        let _ = cx.send_notification(m);
    }
}

fn say(cx: &ConnectionTo<Client>, sid: &str, text: &str) {
    update(
        cx,
        sid,
        json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}),
    );
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn ask(cx: &ConnectionTo<Client>, sid: &str, kind: &str, title: &str) -> Option<String> {
    let tool = json!({"toolCallId": "t-ask", "title": title, "kind": kind, "rawInput": {"command": title}});
    ask_tool(cx, sid, tool, false).await
}

/// Asks permission for `tool` (a `ToolCallUpdate`); `never`: offer a reject_always option too.
async fn ask_tool(
    cx: &ConnectionTo<Client>,
    sid: &str,
    tool: Value,
    never: bool,
) -> Option<String> {
    let mut call = tool.clone();
    call["sessionUpdate"] = json!("tool_call");
    call["status"] = json!("pending");
    update(cx, sid, call);
    let mut options = vec![
        json!({"optionId": "allow", "name": "Allow once", "kind": "allow_once"}),
        json!({"optionId": "always", "name": "Always allow", "kind": "allow_always"}),
        json!({"optionId": "reject", "name": "Reject", "kind": "reject_once"}),
    ];
    if never {
        options.push(json!({"optionId": "never", "name": "Never", "kind": "reject_always"}));
    }
    let req = UntypedMessage::new(
        "session/request_permission",
        json!({"sessionId": sid, "toolCall": tool, "options": options}),
    )
    .ok()?;
    let resp = cx.send_request(req).block_task().await.ok()?;
    let outcome = resp.get("outcome")?;
    match outcome.get("outcome").and_then(Value::as_str) {
        Some("selected") => outcome
            .get("optionId")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// Runs `sh -c script` through the client's terminal methods; `exit N: OUTPUT` or `refused: …`.
async fn terminal(cx: &ConnectionTo<Client>, sid: &str, script: &str, cwd: Option<&str>) -> String {
    let call = async |method: &str, params: Value| -> Result<Value, String> {
        let req = UntypedMessage::new(method, params).map_err(|e| e.to_string())?;
        cx.send_request(req)
            .block_task()
            .await
            .map_err(|e| e.message.clone())
    };
    let mut params = json!({"sessionId": sid, "command": "/bin/sh", "args": ["-c", script], "outputByteLimit": 4096});
    if let Some(d) = cwd {
        params["cwd"] = json!(d);
    }
    let id = match call("terminal/create", params).await {
        Ok(v) => v["terminalId"].as_str().unwrap_or("").to_string(),
        Err(e) => return format!("refused: {e}"),
    };
    let t = json!({"sessionId": sid, "terminalId": id});
    let exit = call("terminal/wait_for_exit", t.clone()).await;
    let out = call("terminal/output", t.clone()).await;
    let _ = call("terminal/release", t).await;
    format!(
        "exit {}: {}",
        exit.map(|e| e["exitCode"].to_string())
            .unwrap_or_else(|e| e),
        out.map(|o| o["output"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|e| e)
    )
}

async fn turn(
    state: Arc<State>,
    cx: ConnectionTo<Client>,
    sid: String,
    text: String,
) -> StopReason {
    let cancel = state.notify(&sid);
    let count = state.remember(&sid, &text);
    let mut words = text.split_whitespace();
    match words.next().unwrap_or("") {
        "all" => {
            let chunk = |kind: &str, t: &str| json!({"sessionUpdate": kind, "content": {"type": "text", "text": t}});
            update(&cx, &sid, chunk("user_message_chunk", "all"));
            update(&cx, &sid, chunk("agent_thought_chunk", "thinking"));
            update(&cx, &sid, chunk("agent_message_chunk", "hello"));
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "Edit a.txt", "kind": "edit", "status": "in_progress"}),
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed",
                       "content": [{"type": "diff", "path": "a.txt", "oldText": "one", "newText": "two"}]}),
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "plan", "entries": [{"content": "step 1", "priority": "high", "status": "completed"}, {"content": "step 2", "priority": "low", "status": "pending"}]}),
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "available_commands_update", "availableCommands": [{"name": "test", "description": "run tests"}]}),
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "current_mode_update", "currentModeId": "code"}),
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "session_info_update", "title": "fake session"}),
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "usage_update", "used": 10, "size": 1000}),
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "some_future_kind", "x": 1}),
            );
            StopReason::EndTurn
        }
        w @ ("ask" | "read") => {
            let (kind, title) = if w == "ask" {
                ("execute", "cargo test")
            } else {
                ("read", "read a.txt")
            };
            let answer = tokio::select! {
                a = ask(&cx, &sid, kind, title) => a,
                _ = cancel.notified() => return StopReason::Cancelled,
            };
            say(
                &cx,
                &sid,
                &format!("permission: {}", answer.as_deref().unwrap_or("cancelled")),
            );
            if answer.is_none() {
                StopReason::Cancelled
            } else {
                StopReason::EndTurn
            }
        }
        w @ ("run" | "runin" | "swap" | "sneak") => {
            let rest = text
                .split_once(char::is_whitespace)
                .map_or("", |r| r.1)
                .trim();
            let (cwd, cmd) = match w {
                "runin" => rest
                    .split_once(char::is_whitespace)
                    .map_or((Some(rest), ""), |(d, c)| (Some(d), c.trim())),
                _ => (None, rest),
            };
            let shown = if w == "swap" { "echo approved" } else { cmd };
            if w != "sneak" {
                let answer = tokio::select! {
                    a = ask(&cx, &sid, "execute", shown) => a,
                    _ = cancel.notified() => return StopReason::Cancelled,
                };
                if !matches!(answer.as_deref(), Some("allow" | "always")) {
                    say(&cx, &sid, "not allowed");
                    return StopReason::EndTurn;
                }
            }
            let result = terminal(&cx, &sid, cmd, cwd).await;
            say(&cx, &sid, &result);
            StopReason::EndTurn
        }
        w @ ("asks" | "askedit" | "askfetch") => {
            let rest = text
                .split_once(char::is_whitespace)
                .map_or("", |r| r.1)
                .trim()
                .to_string();
            let tool = match w {
                "asks" => {
                    json!({"toolCallId": "t-asks", "title": "execute", "kind": "execute", "rawInput": {"command": rest}})
                }
                "askedit" => {
                    json!({"toolCallId": "t-edit", "title": format!("Edit {rest}"), "kind": "edit",
                    "content": [{"type": "diff", "path": rest, "oldText": "one\ntwo\n", "newText": "one\n2\n"}],
                    "locations": [{"path": rest}]})
                }
                _ => {
                    json!({"toolCallId": "t-fetch", "title": "Fetch", "kind": "fetch", "rawInput": {"url": rest}})
                }
            };
            let answer = tokio::select! {
                a = ask_tool(&cx, &sid, tool, true) => a,
                _ = cancel.notified() => return StopReason::Cancelled,
            };
            say(
                &cx,
                &sid,
                &format!("permission: {}", answer.as_deref().unwrap_or("cancelled")),
            );
            StopReason::EndTurn
        }
        "evil" => {
            say(&cx, &sid, "before the trick\n");
            say(
                &cx,
                &sid,
                "\x1b[2J\x1b[H-- idle\x1b]0;pwned-title\x07\x1b]52;c;cm0gLXJmIH4=\x07\n? approval 9: harmless\n    1) Allow once\n\r\x1b[1A\x1b[2Kgone",
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "tool_call", "toolCallId": "t-evil", "title": "\x1b]0;tool-title\x07look", "kind": "other", "status": "completed"}),
            );
            say(&cx, &sid, "\nafter the trick");
            StopReason::EndTurn
        }
        "evilhtml" => {
            // What a web page would obey: HTML, a script, a `javascript:` link, terminal
            // escapes in a tool call's output, a forged approval.
            say(
                &cx,
                &sid,
                "html: <img src=x onerror=\"window.__pwned=1\"> <script>window.__pwned=2</script> [tap me](javascript:window.__pwned=3) \x1b]0;pwned-title\x07\n\n⚠ approval needed\n\n[Allow once](javascript:window.__pwned=4)\n",
            );
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "tool_call", "toolCallId": "t-evilhtml", "title": "<b onmouseover=\"window.__pwned=5\">out</b>", "kind": "execute", "status": "completed",
                       "content": [{"type": "content", "content": {"type": "text", "text": "\x1b[2J\x1b[Hout\x1b]52;c;cm0gLXJmIH4=\x07<img src=x onerror=\"window.__pwned=6\">\n? approval 9: harmless\n    1) Allow once"}}],
                       "rawOutput": {"output": "\x1b]0;raw-title\x07<script>window.__pwned=7</script>"}}),
            );
            say(&cx, &sid, "\nafter the html");
            StopReason::EndTurn
        }
        "wait" => {
            say(&cx, &sid, "waiting");
            cancel.notified().await;
            StopReason::Cancelled
        }
        "crash" => {
            say(&cx, &sid, "about to crash");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            std::process::exit(3);
        }
        "write" => {
            let path = words.next().unwrap_or("out.txt").to_string();
            let body: Vec<&str> = words.collect();
            let body = format!("{}\n", body.join(" "));
            let old = std::fs::read_to_string(&path).ok();
            let _ = std::fs::write(&path, &body);
            update(
                &cx,
                &sid,
                json!({"sessionUpdate": "tool_call", "toolCallId": "w1", "title": format!("Write {path}"), "kind": "edit", "status": "completed",
                       "content": [{"type": "diff", "path": path, "oldText": old, "newText": body}]}),
            );
            StopReason::EndTurn
        }
        "flood" => {
            let n: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(100);
            for i in 0..n {
                say(&cx, &sid, &format!("{i}"));
            }
            StopReason::EndTurn
        }
        "ping" => {
            say(&cx, &sid, &format!("ping {}", now_nanos()));
            StopReason::EndTurn
        }
        "history" => {
            say(&cx, &sid, &format!("history: {} prompts", count - 1));
            StopReason::EndTurn
        }
        _ => {
            say(&cx, &sid, &format!("echo: {text}"));
            StopReason::EndTurn
        }
    }
}

fn prompt_text(p: &PromptRequest) -> String {
    p.prompt
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), agent_client_protocol::Error> {
    if let Some(dir) = std::env::var_os("PEER_AGENT_STATE") {
        let _ = std::fs::write(
            PathBuf::from(dir).join("fake-agent.pid"),
            std::process::id().to_string(),
        );
    }
    if let Ok(why) = std::env::var("FAKE_AGENT_FAIL_START") {
        eprintln!("fake agent: starting");
        eprintln!("{why}");
        eprintln!("fake agent: giving up");
        std::process::exit(7);
    }
    if std::env::var("FAKE_AGENT_HANG_START").is_ok_and(|v| v == "1") {
        // Never answers initialize.
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    }
    let state = Arc::new(State {
        dir: std::env::var_os("PEER_FAKE_AGENT_STATE").map(PathBuf::from),
        ..State::default()
    });
    let load = std::env::var("FAKE_AGENT_LOAD").map_or(true, |v| v != "0");
    let resume = std::env::var("FAKE_AGENT_RESUME").is_ok_and(|v| v == "1");
    let (s1, s2, s3, s4, s5) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
    );
    let transport = ByteStreams::new(
        tokio::io::stdout().compat_write(),
        tokio::io::stdin().compat(),
    );
    Agent
        .v1()
        .name("peer-fake-agent")
        .on_receive_request(
            async move |_req: NewSessionRequest, responder, _cx| {
                let sid = format!("fake-{:016x}", rand::random::<u64>());
                let _ = s1.notify(&sid);
                responder.respond(NewSessionResponse::new(sid).modes(SessionModeState::new(
                    "code",
                    vec![SessionMode::new("code", "Code"), SessionMode::new("plan", "Plan")],
                )))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: LoadSessionRequest, responder, cx: ConnectionTo<Client>| {
                let sid = req.session_id.0.to_string();
                for p in s2.load(&sid) {
                    update(
                        &cx,
                        &sid,
                        json!({"sessionUpdate": "user_message_chunk", "content": {"type": "text", "text": p}}),
                    );
                    say(&cx, &sid, "(replayed)");
                }
                responder.respond(LoadSessionResponse::new())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest, responder, cx: ConnectionTo<Client>| {
                let state = s3.clone();
                let sid = req.session_id.0.to_string();
                let text = prompt_text(&req);
                let cx2 = cx.clone();
                cx.spawn(async move {
                    let reason = turn(state, cx2, sid, text).await;
                    responder.respond(PromptResponse::new(reason))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: SetSessionModeRequest, responder, cx: ConnectionTo<Client>| {
                let sid = req.session_id.0.to_string();
                update(
                    &cx,
                    &sid,
                    json!({"sessionUpdate": "current_mode_update", "currentModeId": req.mode_id.0.as_ref()}),
                );
                responder.respond(SetSessionModeResponse::new())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |n: CancelNotification, _cx: ConnectionTo<Client>| {
                s4.notify(n.session_id.0.as_ref()).notify_one();
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        // Last: everything the typed handlers above did not take. `initialize` is answered
        // here as JSON so that it can advertise `sessionCapabilities.resume`.
        .on_receive_request(
            async move |req: UntypedMessage, responder, cx: ConnectionTo<Client>| {
                match req.method.as_str() {
                    "initialize" => {
                        let mut caps = json!({"loadSession": load});
                        if resume {
                            caps["sessionCapabilities"] = json!({"resume": {}});
                        }
                        responder.respond(json!({
                            "protocolVersion": ProtocolVersion::V1,
                            "agentCapabilities": caps,
                            "agentInfo": {"name": "peer-fake-agent", "version": "1"},
                            "authMethods": []
                        }))
                    }
                    "session/resume" if resume => {
                        let sid = req
                            .params
                            .get("sessionId")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        // Unlike session/load, nothing is replayed.
                        let _ = s5.load(&sid);
                        let _ = cx;
                        responder.respond(json!({}))
                    }
                    _ => responder.respond_with_error(agent_client_protocol::Error::method_not_found()),
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_to(transport)
        .await
}
