//! Model servers on the host's machine: which OpenAI-compatible servers answer (the usual
//! ports of llama.cpp, Ollama, vLLM and LM Studio, and those listed in `agents.toml`), their
//! models, and which one a `local:…` model name means.
//!
//! Every probe is `GET <url>/models` with a deadline of [`PROBE_TIMEOUT`]; all run at once, so
//! a discovery takes at most about that long however many servers are listed or down.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;

use super::http::{self, HttpUrl};
use crate::proto::{LocalModel, ModelServer};

/// How long one probe may take, connection to last byte.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Servers a discovery probes at most (configured ones first).
pub const MAX_SERVERS: usize = 32;

/// Models listed per server at most.
pub const MAX_MODELS: usize = 200;

/// The usual local ports: (name, base URL).
pub const USUAL: &[(&str, &str)] = &[
    ("llama.cpp", "http://127.0.0.1:8080/v1"),
    ("ollama", "http://127.0.0.1:11434/v1"),
    ("vllm", "http://127.0.0.1:8000/v1"),
    ("lm-studio", "http://127.0.0.1:1234/v1"),
];

/// A server to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its name.
    pub name: String,
    /// Base URL (`…/v1`).
    pub url: String,
    /// The environment variable holding its API key, if it wants one.
    pub api_key_env: Option<String>,
    /// Listed in `agents.toml`.
    pub configured: bool,
}

/// The endpoints to probe: `configured` ones, then the usual ports (when `usual_ports`) that
/// no configured one already names.
pub fn endpoints(configured: &[Endpoint], usual_ports: bool) -> Vec<Endpoint> {
    let mut v: Vec<Endpoint> = configured.to_vec();
    if usual_ports {
        for (name, url) in USUAL {
            if !v.iter().any(|e| same_url(&e.url, url)) {
                v.push(Endpoint {
                    name: (*name).into(),
                    url: (*url).into(),
                    api_key_env: None,
                    configured: false,
                });
            }
        }
    }
    v.truncate(MAX_SERVERS);
    v
}

fn same_url(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        u.trim_end_matches('/')
            .replace("://localhost:", "://127.0.0.1:")
    };
    norm(a) == norm(b)
}

/// Reads an OpenAI model list (`{"data": [{"id": …}, …]}`); Ollama's, vLLM's, llama.cpp's
/// and LM Studio's extras give the context length where they have it.
pub fn parse_models(body: &[u8]) -> Result<Vec<LocalModel>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| "the answer is not JSON: not an OpenAI-compatible server".to_string())?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the answer has no model list (`data`): not an OpenAI-compatible server")?;
    let ctx = |m: &Value| {
        m.get("max_model_len")
            .or_else(|| m.get("max_context_length"))
            .or_else(|| m.get("context_length"))
            .or_else(|| m.get("meta").and_then(|x| x.get("n_ctx_train")))
            .and_then(Value::as_u64)
    };
    Ok(data
        .iter()
        .filter_map(|m| {
            let id = m.get("id")?.as_str()?;
            valid_model_id(id).then(|| LocalModel {
                id: id.to_string(),
                context: ctx(m),
            })
        })
        .take(MAX_MODELS)
        .collect())
}

/// Model ids peer passes to agents: 1-256 characters, no control characters, quotes or
/// backslashes (they go into agents' TOML and JSON settings).
pub fn valid_model_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && !id
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\' || c == '\'')
}

/// Probes one server.
pub async fn probe(ep: &Endpoint) -> ModelServer {
    let t = Instant::now();
    let key = ep
        .api_key_env
        .as_deref()
        .and_then(|k| std::env::var(k).ok())
        .filter(|k| !k.is_empty());
    let result = match HttpUrl::parse(&format!("{}/models", ep.url.trim_end_matches('/'))) {
        Err(e) => Err(e),
        Ok(u) => match tokio::time::timeout(PROBE_TIMEOUT, http::get(&u, key.as_deref())).await {
            Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
            Ok(Err(e)) => Err(e),
            Ok(Ok((200, body))) => parse_models(&body),
            Ok(Ok((status @ (401 | 403), _))) => Err(format!(
                "HTTP {status}: it wants an API key{}",
                ep.api_key_env
                    .as_ref()
                    .map(|k| format!(" (${k} is not accepted)"))
                    .unwrap_or_else(|| " (set api_key_env in agents.toml)".into())
            )),
            Ok(Ok((status, _))) => Err(format!(
                "HTTP {status} for /models: not an OpenAI-compatible server"
            )),
        },
    };
    let elapsed_ms = u32::try_from(t.elapsed().as_millis()).unwrap_or(u32::MAX);
    let (reachable, error, models) = match result {
        Ok(m) => (true, None, m),
        Err(e) => (false, Some(e), vec![]),
    };
    ModelServer {
        name: ep.name.clone(),
        url: ep.url.clone(),
        configured: ep.configured,
        reachable,
        error,
        models,
        elapsed_ms,
    }
}

/// Probes every endpoint at once.
pub async fn discover(eps: &[Endpoint]) -> Vec<ModelServer> {
    join_all(eps.iter().map(probe)).await
}

/// What `local:…` names: the server (index into `servers`) and the model id.
///
/// `wanted` is a model id served by a reachable server (the first in order that serves it),
/// or `SERVER/ID`, or an id without its `:tag` (Ollama's) when exactly one model matches.
pub fn resolve(servers: &[ModelServer], wanted: &str) -> Result<(usize, String), String> {
    let up = || servers.iter().enumerate().filter(|(_, s)| s.reachable);
    if let Some((i, _)) = up().find(|(_, s)| s.models.iter().any(|m| m.id == wanted)) {
        return Ok((i, wanted.to_string()));
    }
    if let Some((srv, id)) = wanted.split_once('/')
        && let Some((i, _)) =
            up().find(|(_, s)| s.name == srv && s.models.iter().any(|m| m.id == id))
    {
        return Ok((i, id.to_string()));
    }
    let tagged: Vec<(usize, &str)> = up()
        .flat_map(|(i, s)| s.models.iter().map(move |m| (i, m.id.as_str())))
        .filter(|(_, id)| id.split_once(':').is_some_and(|(base, _)| base == wanted))
        .collect();
    match tagged.as_slice() {
        [(i, id)] => return Ok((*i, (*id).to_string())),
        [] => {}
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|(i, id)| format!("{}/{id}", servers[*i].name))
                .collect();
            return Err(format!(
                "local:{wanted} is ambiguous: {}; name one",
                names.join(", ")
            ));
        }
    }
    let available: Vec<String> = up()
        .flat_map(|(_, s)| s.models.iter().map(move |m| format!("{}/{}", s.name, m.id)))
        .collect();
    if available.is_empty() {
        let probed: Vec<String> = servers
            .iter()
            .map(|s| format!("{} {}", s.name, s.url))
            .collect();
        Err(format!(
            "no model server answered on this host (probed: {}); start one, or list it under \
             [models.servers] in agents.toml",
            probed.join(", ")
        ))
    } else {
        Err(format!(
            "no model server on this host serves {wanted:?}; available: {}",
            available.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, up: bool, ids: &[&str]) -> ModelServer {
        ModelServer {
            name: name.into(),
            url: format!("http://127.0.0.1:1/{name}"),
            configured: false,
            reachable: up,
            error: None,
            models: ids
                .iter()
                .map(|id| LocalModel {
                    id: (*id).into(),
                    context: None,
                })
                .collect(),
            elapsed_ms: 0,
        }
    }

    #[test]
    fn model_lists_of_the_usual_servers() {
        // Ollama
        let m = parse_models(br#"{"object":"list","data":[{"id":"qwen2.5-coder:7b","object":"model","created":1,"owned_by":"library"}]}"#).expect("ollama");
        assert_eq!(m[0].id, "qwen2.5-coder:7b");
        assert_eq!(m[0].context, None);
        // vLLM
        let m = parse_models(br#"{"object":"list","data":[{"id":"Qwen/Qwen2.5-Coder-32B-Instruct","max_model_len":32768}]}"#).expect("vllm");
        assert_eq!(m[0].context, Some(32768));
        // llama.cpp
        let m = parse_models(
            br#"{"object":"list","data":[{"id":"qwen.gguf","meta":{"n_ctx_train":131072}}]}"#,
        )
        .expect("llama.cpp");
        assert_eq!(m[0].context, Some(131072));
        // Not a model server, and ids that cannot be passed on.
        assert!(parse_models(b"<html>").is_err());
        assert!(parse_models(b"{}").is_err());
        let m = parse_models(br#"{"data":[{"id":"a\"b"},{"id":""},{"x":1},{"id":"ok"}]}"#)
            .expect("list");
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn usual_ports_come_after_configured_ones_without_doubles() {
        let mine = Endpoint {
            name: "mine".into(),
            url: "http://localhost:11434/v1/".into(),
            api_key_env: None,
            configured: true,
        };
        let eps = endpoints(std::slice::from_ref(&mine), true);
        assert_eq!(eps[0], mine);
        assert_eq!(eps.len(), USUAL.len(), "ollama's port is already listed");
        assert!(!eps.iter().any(|e| e.name == "ollama"));
        assert_eq!(endpoints(&[], false), vec![]);
    }

    #[test]
    fn local_names_resolve_to_a_server_and_a_model() {
        let s = vec![
            server("down", false, &["qwen"]),
            server(
                "ollama",
                true,
                &["qwen2.5-coder:7b", "llama3.2:latest", "llama3.2:1b"],
            ),
            server("vllm", true, &["Qwen/Qwen2.5-Coder"]),
        ];
        assert_eq!(
            resolve(&s, "qwen2.5-coder:7b"),
            Ok((1, "qwen2.5-coder:7b".into()))
        );
        assert_eq!(
            resolve(&s, "qwen2.5-coder"),
            Ok((1, "qwen2.5-coder:7b".into()))
        );
        assert_eq!(
            resolve(&s, "Qwen/Qwen2.5-Coder"),
            Ok((2, "Qwen/Qwen2.5-Coder".into()))
        );
        assert_eq!(
            resolve(&s, "vllm/Qwen/Qwen2.5-Coder"),
            Ok((2, "Qwen/Qwen2.5-Coder".into()))
        );
        assert_eq!(
            resolve(&s, "ollama/llama3.2:1b"),
            Ok((1, "llama3.2:1b".into()))
        );
        let e = resolve(&s, "llama3.2").expect_err("an error");
        assert!(
            e.contains("ambiguous") && e.contains("ollama/llama3.2:1b"),
            "{e}"
        );
        let e = resolve(&s, "qwen").expect_err("an error");
        assert!(
            e.contains("available") && e.contains("vllm/Qwen/Qwen2.5-Coder"),
            "{e}"
        );
        let e = resolve(&s[..1], "qwen").expect_err("an error");
        assert!(e.contains("no model server answered"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_reported_as_such_quickly() {
        // A port with nothing behind it: refused at once.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        // A server that accepts and never answers: cut off at the deadline.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let silent_port = silent.local_addr().expect("addr").port();
        let eps = [
            Endpoint {
                name: "gone".into(),
                url: format!("http://127.0.0.1:{port}/v1"),
                api_key_env: None,
                configured: true,
            },
            Endpoint {
                name: "silent".into(),
                url: format!("http://127.0.0.1:{silent_port}/v1"),
                api_key_env: None,
                configured: true,
            },
        ];
        let t = Instant::now();
        let found = discover(&eps).await;
        let took = t.elapsed();
        assert!(!found[0].reachable);
        assert_eq!(found[0].error.as_deref(), Some("nothing listens there"));
        assert!(!found[1].reachable);
        assert!(
            found[1]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("no answer"))
        );
        // Both at once: about one deadline, not two (generous margin for a loaded machine).
        assert!(took < PROBE_TIMEOUT * 3, "{took:?}");
        drop(silent);
    }
}
