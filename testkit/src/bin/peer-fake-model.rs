//! A scripted stand-in for a local model server, for peer's tests: it speaks the OpenAI chat
//! API as llama.cpp's `llama-server`, Ollama, vLLM and LM Studio do, but there is no model
//! behind it. The agent that talks to it is real; only the model's answers are scripted.
//!
//! `peer-fake-model [--model ID]… [--context N] [--log FILE]` listens on 127.0.0.1, port 0,
//! and prints `listening 127.0.0.1:PORT` on its first stdout line.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /v1/models` | the `--model` ids (default `fake-coder`), each with `meta.n_ctx_train` = `--context` |
//! | `POST /v1/chat/completions`, last message a tool result | text `tool result: …` (the first 200 characters), `finish_reason: stop` |
//! | the same, last user text `run: CMD` | a call of the request's shell tool (`execute`, or a name containing `execute`, `shell` or `bash`) with `{"command": CMD}`, `finish_reason: tool_calls` |
//! | the same, anything else | text `echo: TEXT`, `finish_reason: stop` |
//!
//! Both plain JSON and `stream: true` (server-sent events) answers; one request per
//! connection. With `--log FILE`, each chat request's JSON body is appended to FILE as one
//! line.
#![allow(missing_docs)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const MAX_REQUEST: usize = 8 * 1024 * 1024;

struct Opts {
    models: Vec<String>,
    context: u64,
    log: Option<PathBuf>,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        models: vec![],
        context: 32768,
        log: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--model" => o.models.push(val()?),
            "--context" => o.context = val()?.parse().map_err(|_| "bad --context")?,
            "--log" => o.log = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.models.is_empty() {
        o.models.push("fake-coder".into());
    }
    Ok(o)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let opts = match parse_args() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("peer-fake-model: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("peer-fake-model: bind: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("listening {addr}");
    let _ = std::io::stdout().flush();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((s, _)) = accepted else { continue };
                let opts = opts.clone();
                conns.spawn(async move {
                    if let Err(e) = serve(s, &opts).await {
                        eprintln!("peer-fake-model: {e}");
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Reads one request: method, path, body.
async fn read_request(s: &mut TcpStream) -> Result<(String, String, Vec<u8>), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the request".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return Err("request too large".into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if len > MAX_REQUEST {
        return Err("body too large".into());
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed in the body".into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok((method, path, body))
}

async fn respond(s: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.shutdown().await
}

async fn serve(mut s: TcpStream, opts: &Opts) -> Result<(), String> {
    let (method, path, body) = read_request(&mut s).await?;
    let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
    let io = |e: std::io::Error| e.to_string();
    match (method.as_str(), path) {
        ("GET", "/v1/models" | "/models") => {
            let data: Vec<Value> = opts
                .models
                .iter()
                .map(|id| {
                    json!({"id": id, "object": "model", "created": 0,
                           "owned_by": "peer-fake-model", "meta": {"n_ctx_train": opts.context}})
                })
                .collect();
            let body = json!({"object": "list", "data": data}).to_string();
            respond(&mut s, "200 OK", "application/json", body.as_bytes())
                .await
                .map_err(io)
        }
        ("POST", "/v1/chat/completions" | "/chat/completions") => {
            let req: Value = serde_json::from_slice(&body).map_err(|e| format!("bad JSON: {e}"))?;
            if let Some(log) = &opts.log {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .map_err(|e| e.to_string())?;
                writeln!(f, "{req}").map_err(|e| e.to_string())?;
            }
            let answer = script(&req);
            let model = req["model"].as_str().unwrap_or("fake-coder").to_string();
            if req["stream"].as_bool() == Some(true) {
                stream(&mut s, &model, &answer, &req).await.map_err(io)
            } else {
                let body = whole(&model, &answer).to_string();
                respond(&mut s, "200 OK", "application/json", body.as_bytes())
                    .await
                    .map_err(io)
            }
        }
        _ => {
            let body = json!({"error": {"message": format!("no route {method} {path}")}});
            respond(
                &mut s,
                "404 Not Found",
                "application/json",
                body.to_string().as_bytes(),
            )
            .await
            .map_err(io)
        }
    }
}

/// What the scripted "model" says.
enum Answer {
    Text(String),
    Call { tool: String, arguments: String },
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn script(req: &Value) -> Answer {
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let Some(last) = messages.last() else {
        return Answer::Text("echo: ".into());
    };
    if last["role"] == "tool" {
        let out: String = text_of(&last["content"]).chars().take(200).collect();
        return Answer::Text(format!("tool result: {out}"));
    }
    let text = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"]))
        .unwrap_or_default();
    let text = text.trim();
    if let Some(cmd) = text.strip_prefix("run: ") {
        let names: Vec<String> = req["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let tool = names.iter().find(|n| *n == "execute").or_else(|| {
            names
                .iter()
                .find(|n| n.contains("execute") || n.contains("shell") || n.contains("bash"))
        });
        return match tool {
            Some(tool) => Answer::Call {
                tool: tool.clone(),
                arguments: json!({ "command": cmd }).to_string(),
            },
            None => Answer::Text(format!("no shell tool among {names:?}")),
        };
    }
    Answer::Text(format!("echo: {text}"))
}

fn whole(model: &str, answer: &Answer) -> Value {
    let (message, finish) = match answer {
        Answer::Text(t) => (json!({"role": "assistant", "content": t}), "stop"),
        Answer::Call { tool, arguments } => (
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": arguments}}
            ]}),
            "tool_calls",
        ),
    };
    json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
           "choices": [{"index": 0, "message": message, "finish_reason": finish}],
           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
}

async fn stream(
    s: &mut TcpStream,
    model: &str,
    answer: &Answer,
    req: &Value,
) -> std::io::Result<()> {
    s.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    )
    .await?;
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
               "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    let finish = match answer {
        Answer::Text(t) => {
            // In two pieces, as a model streams.
            let mid = t
                .char_indices()
                .nth(t.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            events.push(chunk(json!({"content": &t[..mid]}), None));
            events.push(chunk(json!({"content": &t[mid..]}), None));
            "stop"
        }
        Answer::Call { tool, arguments } => {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                        "function": {"name": tool, "arguments": ""}}]}),
                None,
            ));
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}),
                None,
            ));
            "tool_calls"
        }
    };
    events.push(chunk(json!({}), Some(finish)));
    if req["stream_options"]["include_usage"].as_bool() == Some(true) {
        events.push(json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                           "model": model, "choices": [],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}));
    }
    for e in events {
        s.write_all(format!("data: {e}\n\n").as_bytes()).await?;
    }
    s.write_all(b"data: [DONE]\n\n").await?;
    s.shutdown().await
}
