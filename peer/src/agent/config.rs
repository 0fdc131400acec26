//! The host's agent registry and agent policy, read from `<PEER_HOME>/host/agents.toml`.
//!
//! Built-in presets cover the ACP agents peer knows; the file may override a preset by name,
//! add agents, set the approval policy and add secret redaction patterns. The format is
//! documented in `docs/agents.example.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use super::local::{LocalSpec, ModelsConfig};
use crate::proto::AgentDef;

/// One agent definition: how to start it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Extra environment variables for the agent process; `${PEER_AGENT_STATE}` in a value is
    /// replaced by the session's private directory.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables of which any one being set means the agent is logged in.
    #[serde(default)]
    pub login_env: Vec<String>,
    /// Files (`~/` is the host user's home) of which any one existing means it is logged in.
    #[serde(default)]
    pub login_files: Vec<String>,
    /// What to do on the host to log in, for people.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// The agent process's working directory (the ACP session's `cwd` is always the worktree).
    #[serde(default)]
    pub cwd: AgentCwd,
    /// Where its prompts and code go when it runs on its own model (e.g. `Anthropic`), for
    /// people.
    #[serde(default)]
    pub provider: Option<String>,
    /// How it starts on a local model server, if it can.
    #[serde(default)]
    pub local: Option<LocalSpec>,
}

/// Replaced, in the values of an agent's `env`, by the session's private state directory.
pub const STATE_VAR: &str = "${PEER_AGENT_STATE}";

/// Where an agent process runs.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AgentCwd {
    /// In the session's worktree.
    #[default]
    Worktree,
    /// In a private state directory of the session (`<PEER_HOME>/host/agent-state/<id>`), for
    /// agents that read configuration from, or write state into, their process cwd.
    State,
}

/// How permission requests are decided.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Every request waits for a person.
    #[default]
    Ask,
    /// Tool calls of kind `read` or `search` are allowed once without asking.
    AllowReads,
}

/// The approval policy of the host.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Ask, or allow reads automatically.
    #[serde(default)]
    pub mode: PolicyMode,
    /// Tool calls whose title or raw input contains one of these strings are rejected without
    /// asking.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Seconds a request waits before it is rejected; 0 waits for ever.
    #[serde(default)]
    pub timeout_secs: u64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Redact {
    #[serde(default)]
    patterns: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    redact: Redact,
    #[serde(default)]
    agents: BTreeMap<String, AgentSpec>,
    #[serde(default)]
    models: ModelsConfig,
}

/// The loaded registry.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Agents by name.
    pub agents: BTreeMap<String, AgentSpec>,
    /// Approval policy.
    pub policy: Policy,
    /// Secret redaction.
    pub redactor: Redactor,
    /// Model servers to probe.
    pub models: ModelsConfig,
}

/// Why the registry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading failed.
    #[error("reading {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// Not valid TOML or not the expected shape.
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
}

fn preset(
    command: &[&str],
    login_env: &[&str],
    login_files: &[&str],
    hint: Option<&str>,
) -> AgentSpec {
    AgentSpec {
        command: command.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::new(),
        login_env: login_env.iter().map(|s| s.to_string()).collect(),
        login_files: login_files.iter().map(|s| s.to_string()).collect(),
        login_hint: hint.map(str::to_string),
        cwd: AgentCwd::Worktree,
        provider: None,
        local: None,
    }
}

/// Where each preset sends prompts and code on its own model.
const PROVIDERS: &[(&str, &str)] = &[
    ("claude", "Anthropic"),
    ("codex", "OpenAI"),
    ("gemini", "Google"),
    ("opencode", "the provider opencode is logged in to"),
    (
        "qwen",
        "Qwen (Alibaba Cloud), or the OpenAI-compatible service it is set up for",
    ),
    (
        "fast-agent",
        "nowhere: its passthrough model echoes on the host",
    ),
];

/// The built-in agent definitions.
pub fn presets() -> BTreeMap<String, AgentSpec> {
    let mut m: BTreeMap<String, AgentSpec> = BTreeMap::new();
    m.insert(
        "claude".into(),
        preset(
            &["claude-agent-acp"],
            &["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"],
            &["~/.claude/.credentials.json"],
            Some("run `claude` on the host and log in, or set ANTHROPIC_API_KEY"),
        ),
    );
    m.insert(
        "codex".into(),
        preset(
            &["codex-acp"],
            &["OPENAI_API_KEY", "CODEX_API_KEY"],
            &["~/.codex/auth.json"],
            Some("run `codex login` on the host, or set OPENAI_API_KEY"),
        ),
    );
    m.insert(
        "gemini".into(),
        preset(
            &["gemini", "--acp"],
            &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
            &["~/.gemini/oauth_creds.json"],
            Some("run `gemini` on the host and log in, or set GEMINI_API_KEY"),
        ),
    );
    m.insert(
        "opencode".into(),
        preset(
            &["opencode", "acp"],
            &[],
            &["~/.local/share/opencode/auth.json"],
            Some("run `opencode auth login` on the host"),
        ),
    );
    m.insert(
        "qwen".into(),
        preset(
            &["qwen", "--acp"],
            &["OPENAI_API_KEY", "DASHSCOPE_API_KEY"],
            &["~/.qwen/oauth_creds.json"],
            Some("run `qwen` on the host and log in, or set OPENAI_API_KEY"),
        ),
    );
    // fast-agent reads `fastagent.config.yaml` and keeps its state (`.fast-agent/`) in its
    // process cwd: run it in the session's state directory, not in the repository.
    m.insert(
        "fast-agent".into(),
        AgentSpec {
            cwd: AgentCwd::State,
            env: BTreeMap::from([(
                "FAST_AGENT_HOME".to_string(),
                format!("{STATE_VAR}/fast-agent"),
            )]),
            ..preset(
                &["fast-agent", "acp", "--model", "passthrough", "--shell"],
                &[],
                &[],
                None,
            )
        },
    );
    for (name, spec) in m.iter_mut() {
        spec.provider = PROVIDERS
            .iter()
            .find(|(n, _)| *n == name.as_str())
            .map(|(_, p)| p.to_string());
        spec.local = super::local::preset(name);
    }
    m
}

impl AgentConfig {
    /// The presets, the default policy and the built-in redaction patterns.
    pub fn builtin() -> AgentConfig {
        AgentConfig {
            agents: presets(),
            policy: Policy::default(),
            redactor: Redactor::new(&[]).unwrap_or_else(|_| Redactor::empty()),
            models: ModelsConfig::default(),
        }
    }

    /// Loads `path` over the presets; a missing file means presets only.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::builtin()),
            Err(e) => return Err(ConfigError::Io(path.into(), e)),
        };
        Self::parse(&text).map_err(|e| ConfigError::Parse(path.into(), e))
    }

    /// Parses the file's text over the presets.
    pub fn parse(text: &str) -> Result<AgentConfig, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut agents = presets();
        for (name, spec) in file.agents {
            if !valid_name(&name) {
                return Err(format!(
                    "agent name {name:?}: use 1-32 letters, digits, '-' or '_'"
                ));
            }
            if spec.command.first().is_none_or(|p| p.is_empty()) {
                return Err(format!("agent {name:?}: command must name a program"));
            }
            agents.insert(name, spec);
        }
        let redactor = Redactor::new(&file.redact.patterns)?;
        file.models.check()?;
        Ok(AgentConfig {
            agents,
            policy: file.policy,
            redactor,
            models: file.models,
        })
    }

    /// The registry as listed to clients: installed on `PATH`, logged in or not.
    pub fn list(&self) -> Vec<AgentDef> {
        self.agents
            .iter()
            .map(|(name, spec)| {
                let installed = spec.command.first().and_then(|p| which(p)).is_some();
                let needs_login = !logged_in(spec);
                AgentDef {
                    name: name.clone(),
                    command: spec.command.clone(),
                    installed,
                    needs_login,
                    login_hint: if needs_login {
                        spec.login_hint.clone()
                    } else {
                        None
                    },
                    local_models: spec.local.is_some(),
                    provider: spec.provider.clone(),
                }
            })
            .collect()
    }
}

pub(crate) fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn expand(p: &str) -> Option<PathBuf> {
    match p.strip_prefix("~/") {
        Some(rest) => home().map(|h| h.join(rest)),
        None => Some(PathBuf::from(p)),
    }
}

fn logged_in(spec: &AgentSpec) -> bool {
    if spec.login_env.is_empty() && spec.login_files.is_empty() {
        return true;
    }
    spec.login_env
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()) || spec.env.contains_key(k))
        || spec
            .login_files
            .iter()
            .filter_map(|f| expand(f))
            .any(|p| p.exists())
}

/// Finds a program: a path with a `/` as is, else the first executable on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| exec(p))
}

/// Built-in secret patterns: provider API keys, GitHub and Slack tokens, AWS key ids, bearer
/// tokens, private key blocks, and `KEY=value` assignments of variables named like secrets.
const BUILTIN_PATTERNS: &[&str] = &[
    r"sk-[A-Za-z0-9_\-]{16,}",
    r"gh[pousr]_[A-Za-z0-9]{20,}",
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"xox[abposr]-[A-Za-z0-9\-]{10,}",
    r"AKIA[0-9A-Z]{16}",
    r"AIza[0-9A-Za-z_\-]{30,}",
    r"(?i)bearer\s+[A-Za-z0-9._\-]{16,}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
    r#"(?i)\b[A-Z0-9_]*(API_KEY|TOKEN|SECRET|PASSWORD)[A-Z0-9_]*\s*[=:]\s*["']?[^\s"']{6,}"#,
];

/// Replaces secrets in text with `[redacted]`.
#[derive(Debug, Clone)]
pub struct Redactor {
    patterns: Vec<Regex>,
}

impl Redactor {
    /// The built-in patterns plus `extra` (regular expressions).
    pub fn new(extra: &[String]) -> Result<Redactor, String> {
        let mut patterns = Vec::new();
        for p in BUILTIN_PATTERNS
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
        {
            patterns.push(Regex::new(p).map_err(|e| format!("redact pattern {p:?}: {e}"))?);
        }
        Ok(Redactor { patterns })
    }

    fn empty() -> Redactor {
        Redactor { patterns: vec![] }
    }

    /// `text` with every match replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(text);
        for p in &self.patterns {
            if p.is_match(&out) {
                out = std::borrow::Cow::Owned(p.replace_all(&out, "[redacted]").into_owned());
            }
        }
        out.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_overrides_apply() {
        let c = AgentConfig::parse(
            r#"
            [policy]
            mode = "allow_reads"
            deny = ["rm -rf"]
            timeout_secs = 30
            [redact]
            patterns = ["hunter[0-9]+"]
            [agents.fake]
            command = ["/bin/true", "--x"]
            env = { A = "b" }
            [agents.claude]
            command = ["my-claude"]
            "#,
        )
        .expect("parse");
        assert_eq!(c.policy.mode, PolicyMode::AllowReads);
        assert_eq!(c.policy.timeout_secs, 30);
        assert_eq!(c.agents["fake"].command, ["/bin/true", "--x"]);
        assert_eq!(c.agents["claude"].command, ["my-claude"]);
        assert_eq!(c.agents["claude"].cwd, AgentCwd::Worktree);
        assert_eq!(c.agents["fast-agent"].cwd, AgentCwd::State);
        assert!(c.agents["fast-agent"].env["FAST_AGENT_HOME"].starts_with(STATE_VAR));
        let x =
            AgentConfig::parse("[agents.x]\ncommand = [\"x\"]\ncwd = \"state\"").expect("parse");
        assert_eq!(x.agents["x"].cwd, AgentCwd::State);
        assert!(AgentConfig::parse("[agents.x]\ncommand = [\"x\"]\ncwd = \"/tmp\"").is_err());
        for name in ["codex", "gemini", "opencode", "qwen", "fast-agent"] {
            assert!(c.agents.contains_key(name), "{name}");
        }
        let list = c.list();
        let fake = list.iter().find(|a| a.name == "fake").expect("fake");
        assert!(fake.installed && !fake.needs_login);
        assert_eq!(c.redactor.redact("pw hunter42 ok"), "pw [redacted] ok");
    }

    #[test]
    fn the_documented_example_parses() {
        let c = AgentConfig::parse(include_str!("../../../docs/agents.example.toml"))
            .expect("docs/agents.example.toml");
        assert_eq!(c.agents["my-agent"].cwd, AgentCwd::State);
        assert!(c.agents["my-agent"].local.is_some());
        assert_eq!(c.models.servers["gpu-box"].url, "http://127.0.0.1:9000/v1");
        assert!(c.models.usual_ports);
    }

    #[test]
    fn bad_files_are_refused_with_reasons() {
        assert!(AgentConfig::parse("[agents.x]\ncommand = []").is_err());
        assert!(AgentConfig::parse("[agents.\"a b\"]\ncommand = [\"x\"]").is_err());
        assert!(AgentConfig::parse("[policy]\nmode = \"yolo\"").is_err());
        assert!(AgentConfig::parse("[redact]\npatterns = [\"(\"]").is_err());
        assert!(AgentConfig::parse("[nope]").is_err());
    }

    #[test]
    fn builtin_patterns_catch_common_secrets() {
        let r = Redactor::new(&[]).expect("redactor");
        for s in [
            "key sk-ant-api03-abcdefghijklmnopqrstuv",
            "ghp_abcdefghijklmnopqrstuvwxyz0123",
            "AKIAABCDEFGHIJKLMNOP",
            "Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
            "export OPENAI_API_KEY=abcdef123456",
        ] {
            let out = r.redact(s);
            assert!(out.contains("[redacted]"), "{s} -> {out}");
        }
        assert_eq!(r.redact("make the tests pass"), "make the tests pass");
    }
}
