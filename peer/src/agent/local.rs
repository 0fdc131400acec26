//! Agents on local models: how an agent starts against an OpenAI-compatible model server
//! (`[agents.NAME.local]`), the `[models]` table of `agents.toml`, and the choice a session
//! records so that it starts the same way after a host restart.
//!
//! In a `local` table's `command` and `env` values, `${PEER_MODEL}` is the model id and
//! `${PEER_MODEL_URL}` the server's base URL (`…/v1`); in `env` values only,
//! `${PEER_MODEL_KEY}` is the server's API key (`local` when it needs none) and
//! `${PEER_MODELS_JSON}` a JSON object with one `{"name": ID}` entry per model of the server
//! (opencode's provider `models` shape, so its model switch offers them all).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::AgentSpec;
use crate::machine::http::HttpUrl;
use crate::machine::models::Endpoint;
use crate::proto::ModelPlace;

/// Replaced by the model id.
pub const MODEL_VAR: &str = "${PEER_MODEL}";
/// Replaced by the server's base URL.
pub const URL_VAR: &str = "${PEER_MODEL_URL}";
/// Replaced (in `env` values) by the server's API key, or `local`.
pub const KEY_VAR: &str = "${PEER_MODEL_KEY}";
/// Replaced (in `env` values) by the server's models as a JSON object.
pub const MODELS_VAR: &str = "${PEER_MODELS_JSON}";

/// How an agent starts on a local model.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct LocalSpec {
    /// Program and arguments in place of the agent's `command` (empty: the same command).
    #[serde(default)]
    pub command: Vec<String>,
    /// Environment on top of the agent's `env`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A model server listed in `agents.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Base URL of its OpenAI API (`http://…/v1`).
    pub url: String,
    /// The host's environment variable holding its API key, if it wants one.
    #[serde(default)]
    pub api_key_env: Option<String>,
}

/// The `[models]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Probe the usual local ports of llama.cpp, Ollama, vLLM and LM Studio.
    #[serde(default = "yes")]
    pub usual_ports: bool,
    /// More servers, by name.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerSpec>,
}

fn yes() -> bool {
    true
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            usual_ports: true,
            servers: BTreeMap::new(),
        }
    }
}

impl ModelsConfig {
    /// Checks names and URLs.
    pub fn check(&self) -> Result<(), String> {
        for (name, s) in &self.servers {
            if !super::config::valid_name(name) {
                return Err(format!(
                    "model server name {name:?}: use 1-32 letters, digits, '-' or '_'"
                ));
            }
            HttpUrl::parse(&s.url).map_err(|e| format!("model server {name:?}: {e}"))?;
        }
        Ok(())
    }

    /// The servers to probe, configured ones first.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let configured: Vec<Endpoint> = self
            .servers
            .iter()
            .map(|(name, s)| Endpoint {
                name: name.clone(),
                url: s.url.clone(),
                api_key_env: s.api_key_env.clone(),
                configured: true,
            })
            .collect();
        crate::machine::models::endpoints(&configured, self.usual_ports)
    }
}

/// The local model a session runs on (stored with the session as JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LocalChoice {
    /// The server's name.
    pub server: String,
    /// Its base URL.
    pub endpoint: String,
    /// The model id.
    pub model: String,
    /// Every model id the server listed (for agents that offer a model switch).
    pub models: Vec<String>,
    /// The environment variable of its API key, if any.
    pub api_key_env: Option<String>,
}

impl LocalChoice {
    /// Where the model runs, for clients.
    pub fn place(&self) -> ModelPlace {
        ModelPlace::Local {
            server: self.server.clone(),
            endpoint: self.endpoint.clone(),
            model: self.model.clone(),
        }
    }
}

/// Why agent `name` cannot run on a local model.
pub fn no_local(name: &str) -> String {
    format!(
        "the agent {name:?} has no way to run on a local model on this host (no \
         [agents.{name}.local] in agents.toml; see docs/agents.md)"
    )
}

/// The agent definition with its `local` command and environment filled in for `choice`.
pub fn apply(name: &str, spec: &AgentSpec, choice: &LocalChoice) -> Result<AgentSpec, String> {
    let local = spec.local.as_ref().ok_or_else(|| no_local(name))?;
    let key = choice
        .api_key_env
        .as_deref()
        .and_then(|k| std::env::var(k).ok())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "local".into());
    let models: serde_json::Map<String, serde_json::Value> = choice
        .models
        .iter()
        .map(|id| (id.clone(), serde_json::json!({ "name": id })))
        .collect();
    let models = serde_json::Value::Object(models).to_string();
    let arg = |s: &str| {
        s.replace(MODEL_VAR, &choice.model)
            .replace(URL_VAR, &choice.endpoint)
    };
    let env_value = |s: &str| arg(s).replace(KEY_VAR, &key).replace(MODELS_VAR, &models);
    let command = if local.command.is_empty() {
        &spec.command
    } else {
        &local.command
    };
    let mut env = spec.env.clone();
    env.extend(local.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(AgentSpec {
        command: command.iter().map(|a| arg(a)).collect(),
        env: env.iter().map(|(k, v)| (k.clone(), env_value(v))).collect(),
        local: None,
        ..spec.clone()
    })
}

/// The `local` tables of the presets.
pub fn preset(agent: &str) -> Option<LocalSpec> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let env = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, x)| (k.to_string(), x.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    Some(match agent {
        // fast-agent's generic provider: any OpenAI-compatible server.
        "fast-agent" => LocalSpec {
            command: s(&[
                "fast-agent",
                "acp",
                "--model",
                "generic.${PEER_MODEL}",
                "--shell",
            ]),
            env: env(&[("GENERIC_BASE_URL", URL_VAR), ("GENERIC_API_KEY", KEY_VAR)]),
        },
        // opencode: a custom provider through its OpenAI-compatible adapter, with every model
        // of the server in its model switch.
        "opencode" => LocalSpec {
            command: vec![],
            env: env(&[(
                "OPENCODE_CONFIG_CONTENT",
                r#"{"$schema":"https://opencode.ai/config.json","provider":{"local":{"npm":"@ai-sdk/openai-compatible","name":"Local model server","options":{"baseURL":"${PEER_MODEL_URL}","apiKey":"${PEER_MODEL_KEY}"},"models":${PEER_MODELS_JSON}}},"model":"local/${PEER_MODEL}","small_model":"local/${PEER_MODEL}"}"#,
            )]),
        },
        // Qwen Code: its OpenAI authentication with another base URL.
        "qwen" => LocalSpec {
            command: s(&[
                "qwen",
                "--acp",
                "--openai-base-url",
                URL_VAR,
                "--model",
                MODEL_VAR,
            ]),
            env: env(&[
                ("OPENAI_API_KEY", KEY_VAR),
                ("OPENAI_BASE_URL", URL_VAR),
                ("OPENAI_MODEL", MODEL_VAR),
            ]),
        },
        // Codex: a model provider of its own pointing at the server (the Responses API).
        "codex" => LocalSpec {
            command: s(&[
                "codex-acp",
                "-c",
                "model_provider=\"peer-local\"",
                "-c",
                "model_providers.peer-local.name=\"Local model server\"",
                "-c",
                "model_providers.peer-local.base_url=\"${PEER_MODEL_URL}\"",
                "-c",
                "model_providers.peer-local.env_key=\"PEER_MODEL_KEY\"",
                "-c",
                "model_providers.peer-local.wire_api=\"responses\"",
                "-c",
                "model=\"${PEER_MODEL}\"",
            ]),
            env: env(&[("PEER_MODEL_KEY", KEY_VAR)]),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::{AgentConfig, presets};

    fn choice() -> LocalChoice {
        LocalChoice {
            server: "ollama".into(),
            endpoint: "http://127.0.0.1:11434/v1".into(),
            model: "qwen2.5-coder:7b".into(),
            models: vec!["qwen2.5-coder:7b".into(), "llama3.2:1b".into()],
            api_key_env: None,
        }
    }

    #[test]
    fn presets_fill_in_the_model_and_the_server() {
        let p = presets();
        let fa = apply("fast-agent", &p["fast-agent"], &choice()).expect("fast-agent");
        assert_eq!(
            fa.command,
            [
                "fast-agent",
                "acp",
                "--model",
                "generic.qwen2.5-coder:7b",
                "--shell"
            ]
        );
        assert_eq!(fa.env["GENERIC_BASE_URL"], "http://127.0.0.1:11434/v1");
        assert_eq!(fa.env["GENERIC_API_KEY"], "local");
        // The preset's own environment stays.
        assert!(fa.env["FAST_AGENT_HOME"].starts_with(crate::agent::config::STATE_VAR));

        let oc = apply("opencode", &p["opencode"], &choice()).expect("opencode");
        assert_eq!(oc.command, ["opencode", "acp"]);
        let cfg: serde_json::Value =
            serde_json::from_str(&oc.env["OPENCODE_CONFIG_CONTENT"]).expect("opencode json");
        assert_eq!(cfg["model"], "local/qwen2.5-coder:7b");
        assert_eq!(
            cfg["provider"]["local"]["options"]["baseURL"],
            "http://127.0.0.1:11434/v1"
        );
        assert_eq!(
            cfg["provider"]["local"]["models"]["llama3.2:1b"]["name"],
            "llama3.2:1b"
        );

        let cx = apply("codex", &p["codex"], &choice()).expect("codex");
        assert!(
            cx.command
                .contains(&"model=\"qwen2.5-coder:7b\"".to_string())
        );
        assert!(
            cx.command.iter().all(|a| !a.contains("${")),
            "{:?}",
            cx.command
        );
        let qw = apply("qwen", &p["qwen"], &choice()).expect("qwen");
        assert_eq!(qw.env["OPENAI_MODEL"], "qwen2.5-coder:7b");

        let e = apply("claude", &p["claude"], &choice()).expect_err("an error");
        assert!(e.contains("no way to run on a local model"), "{e}");
    }

    #[test]
    fn the_models_table_is_read_and_checked() {
        let c = AgentConfig::parse(
            "[models]\nusual_ports = false\n[models.servers.box]\nurl = \"http://127.0.0.1:9000/v1\"\napi_key_env = \"BOX_KEY\"\n",
        )
        .expect("parse");
        let eps = c.models.endpoints();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].name, "box");
        assert_eq!(eps[0].api_key_env.as_deref(), Some("BOX_KEY"));
        assert_eq!(AgentConfig::builtin().models.endpoints().len(), 4);
        assert!(AgentConfig::parse("[models.servers.box]\nurl = \"https://x/v1\"").is_err());
        assert!(AgentConfig::parse("[models.servers.\"a b\"]\nurl = \"http://x/v1\"").is_err());
        assert!(AgentConfig::parse("[models]\nports = 1").is_err());
    }
}
