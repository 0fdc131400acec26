//! The policy's rules (`agents.toml` `[policy]`) and a session's grants, and how they judge a
//! tool call or a command.
//!
//! A tool call is judged by its *subject*: its ACP kind and, if it shows a command, the parsed
//! command ([`super::command`]). In order, the first that applies decides:
//!
//! 1. a `deny` rule that matches a command of it, or a `deny_kinds` entry: rejected;
//! 2. a reject grant of the session that covers it: rejected;
//! 3. `allow_kinds`, or `allow` rules that cover every command of it: allowed;
//! 4. allow grants of the session (with the `allow` rules) that cover it: allowed;
//! 5. nothing: a person decides.
//!
//! A command that cannot be parsed exactly (expansions, substitutions, redirections into
//! files) is never allowed by a rule or a command grant (only by a session or kind grant); the
//! deny rules are checked on it all the same.

use serde_json::Value;

use super::config::{Policy, PolicyMode};
use crate::proto::{GrantInfo, GrantScope};
use crate::tool::command::{CommandRule, Normal, Script};
pub use crate::tool::scope_text;
use crate::tool::what::raw_command;

/// The ACP tool call kinds.
pub const KINDS: &[&str] = &[
    "read",
    "edit",
    "delete",
    "move",
    "search",
    "execute",
    "think",
    "fetch",
    "switch_mode",
    "other",
];

/// The host's rules, parsed from the policy.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    deny: Vec<CommandRule>,
    allow: Vec<CommandRule>,
    deny_kinds: Vec<String>,
    allow_kinds: Vec<String>,
}

impl Rules {
    /// The rules of `policy`; an error names the entry that is wrong.
    pub fn new(policy: &Policy) -> Result<Rules, String> {
        let parse = |list: &[String], what: &str| -> Result<Vec<CommandRule>, String> {
            list.iter()
                .map(|t| CommandRule::parse(t).map_err(|e| format!("policy.{what}: {e}")))
                .collect()
        };
        let deny = parse(&policy.deny, "deny")?;
        let allow = parse(&policy.allow, "allow")?;
        if let Some(r) = allow.iter().find(|r| !r.is_single()) {
            return Err(format!(
                "policy.allow: {:?}: an allow rule is one command, not a pipeline",
                r.text
            ));
        }
        let kinds = |list: &[String], what: &str| -> Result<Vec<String>, String> {
            for k in list {
                if !KINDS.contains(&k.as_str()) {
                    return Err(format!(
                        "policy.{what}: unknown tool call kind {k:?} (one of {})",
                        KINDS.join(", ")
                    ));
                }
            }
            Ok(list.to_vec())
        };
        let mut allow_kinds = kinds(&policy.allow_kinds, "allow_kinds")?;
        if policy.mode == PolicyMode::AllowReads {
            for k in ["read", "search"] {
                if !allow_kinds.iter().any(|x| x == k) {
                    allow_kinds.push(k.into());
                }
            }
        }
        Ok(Rules {
            deny,
            allow,
            deny_kinds: kinds(&policy.deny_kinds, "deny_kinds")?,
            allow_kinds,
        })
    }
}

/// What rules look at.
#[derive(Debug, Clone)]
pub struct Subject {
    /// ACP kind (`other` if none).
    pub kind: String,
    /// The command, if it shows one.
    pub script: Option<Script>,
}

impl Subject {
    /// A tool call (ACP `ToolCallUpdate`).
    pub fn of_tool(tool: &Value) -> Subject {
        let kind = tool
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("other")
            .to_string();
        let script = tool
            .get("rawInput")
            .and_then(raw_command)
            .map(|c| Script::parse(&c));
        Subject { kind, script }
    }

    /// A command the agent asks the host to run (`terminal/create`).
    pub fn of_command(command: &str, args: &[String]) -> Subject {
        let mut argv = vec![command.to_string()];
        argv.extend_from_slice(args);
        Subject {
            kind: "execute".into(),
            script: Some(Script::argv(&argv)),
        }
    }
}

/// A grant of one session.
#[derive(Debug, Clone)]
pub struct SessionGrant {
    /// As listed.
    pub info: GrantInfo,
    /// For a command scope: the parsed command.
    rule: Option<CommandRule>,
}

impl SessionGrant {
    /// A grant from its listing; an error if its command does not parse.
    pub fn new(info: GrantInfo) -> Result<SessionGrant, String> {
        let rule = match &info.scope {
            GrantScope::Command { command } => {
                let r = CommandRule::parse(command)?;
                if info.allow && !r.is_single() {
                    return Err(format!(
                        "{command:?}: an allow grant is one command, not a pipeline"
                    ));
                }
                Some(r)
            }
            GrantScope::Kind { kind } if !KINDS.contains(&kind.as_str()) => {
                return Err(format!(
                    "unknown tool call kind {kind:?} (one of {})",
                    KINDS.join(", ")
                ));
            }
            _ => None,
        };
        Ok(SessionGrant { info, rule })
    }

    /// Its scope in words: `every tool call`, `kind edit`, `cargo test`.
    pub fn what(&self) -> String {
        scope_text(&self.info.scope)
    }
}

/// The outcome of judging a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Rejected; the text says by what (`policy (deny: git push --force)`).
    Reject(String),
    /// Allowed; the text says by what.
    Allow(String),
}

impl Verdict {
    /// The text.
    pub fn by(&self) -> &str {
        match self {
            Verdict::Reject(b) | Verdict::Allow(b) => b,
        }
    }
}

/// Judges `subject` with the host's `rules` and the session's `grants` (in the order of the
/// module docs); the grants that decided are counted as used.
pub fn judge(rules: &Rules, grants: &mut [SessionGrant], subject: &Subject) -> Option<Verdict> {
    if let Some(script) = &subject.script
        && let Some(r) = rules.deny.iter().find(|r| r.matches(script))
    {
        return Some(Verdict::Reject(format!("policy (deny: {})", r.text)));
    }
    if rules.deny_kinds.contains(&subject.kind) {
        return Some(Verdict::Reject(format!(
            "policy (deny kind: {})",
            subject.kind
        )));
    }
    for g in grants.iter_mut().filter(|g| !g.info.allow) {
        let hit = match (&g.info.scope, &g.rule, &subject.script) {
            (GrantScope::Session, _, _) => true,
            (GrantScope::Kind { kind }, _, _) => *kind == subject.kind,
            (GrantScope::Command { .. }, Some(rule), Some(script)) => rule.matches(script),
            _ => false,
        };
        if hit {
            g.info.used = g.info.used.saturating_add(1);
            return Some(Verdict::Reject(format!(
                "grant {} (never: {})",
                g.info.grant,
                g.what()
            )));
        }
    }
    if rules.allow_kinds.contains(&subject.kind) {
        return Some(Verdict::Allow(format!(
            "policy (allow kind: {})",
            subject.kind
        )));
    }
    if let Some(script) = &subject.script
        && !rules.allow.is_empty()
        && script.all(&|n| rules.allow.iter().any(|r| r.covers(n)))
    {
        let first = script
            .single()
            .and_then(|s| Normal::of(&s.argv))
            .and_then(|n| rules.allow.iter().find(|r| r.covers(&n)))
            .unwrap_or(&rules.allow[0]);
        return Some(Verdict::Allow(format!("policy (allow: {})", first.text)));
    }
    // Grants: session and kind first, then commands covered by grants and allow rules.
    let mut chosen: Option<usize> = grants.iter().position(|g| {
        g.info.allow
            && match &g.info.scope {
                GrantScope::Session => true,
                GrantScope::Kind { kind } => *kind == subject.kind,
                GrantScope::Command { .. } => false,
            }
    });
    if chosen.is_none()
        && let Some(script) = &subject.script
    {
        let by_grant = |g: &SessionGrant, n: &Normal| {
            g.info.allow && g.rule.as_ref().is_some_and(|r| r.covers(n))
        };
        let all = script.all(&|n| {
            rules.allow.iter().any(|r| r.covers(n)) || grants.iter().any(|g| by_grant(g, n))
        });
        if all {
            chosen = grants.iter().position(|g| script.any(&|n| by_grant(g, n)));
        }
    }
    let g = &mut grants[chosen?];
    g.info.used = g.info.used.saturating_add(1);
    Some(Verdict::Allow(format!(
        "grant {} (always: {})",
        g.info.grant,
        g.what()
    )))
}

/// The scope an "always" answer to this tool call makes a grant for: its one plain command,
/// or its kind. `Err` says why there is none (then the answer counts once).
pub fn always_scope(tool: &Value) -> Result<GrantScope, String> {
    let subject = Subject::of_tool(tool);
    if let Some(script) = &subject.script {
        return match script.single() {
            Some(s) => Ok(GrantScope::Command {
                command: crate::tool::command::join(&s.argv),
            }),
            None => Err(
                "the command is not one plain command (it has ;, &&, |, $, globs or \
                 redirections), so no grant covers it"
                    .into(),
            ),
        };
    }
    match subject.kind.as_str() {
        "execute" => Err("the tool call shows no command to grant".into()),
        "other" => Err("the tool call has no kind to grant".into()),
        k => Ok(GrantScope::Kind {
            kind: k.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(deny: &[&str], allow: &[&str]) -> Policy {
        Policy {
            deny: deny.iter().map(|s| s.to_string()).collect(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            ..Policy::default()
        }
    }

    fn grant(n: u64, scope: GrantScope, allow: bool) -> SessionGrant {
        SessionGrant::new(GrantInfo {
            session: 1,
            grant: n,
            scope,
            allow,
            by: "phone".into(),
            approval: None,
            at_ms: 0,
            used: 0,
        })
        .expect("grant")
    }

    fn cmd(c: &str) -> Subject {
        Subject::of_tool(&json!({"kind": "execute", "rawInput": {"command": c}}))
    }

    #[test]
    fn deny_beats_allow_and_grants() {
        let rules = Rules::new(&policy(&["git push --force"], &["git push"])).expect("rules");
        let mut grants = vec![grant(1, GrantScope::Session, true)];
        assert_eq!(
            judge(&rules, &mut grants, &cmd("git push -f origin")),
            Some(Verdict::Reject("policy (deny: git push --force)".into()))
        );
        assert_eq!(
            judge(&rules, &mut grants, &cmd("git push origin")),
            Some(Verdict::Allow("policy (allow: git push)".into()))
        );
        assert_eq!(
            judge(&rules, &mut grants, &cmd("rm x")),
            Some(Verdict::Allow("grant 1 (always: every tool call)".into()))
        );
        assert_eq!(grants[0].info.used, 1);
    }

    #[test]
    fn command_grants_cover_commands_that_start_with_them() {
        let rules = Rules::new(&policy(&[], &["git status"])).expect("rules");
        let mut grants = vec![
            grant(
                1,
                GrantScope::Command {
                    command: "cargo test".into(),
                },
                true,
            ),
            grant(
                2,
                GrantScope::Command {
                    command: "cargo publish".into(),
                },
                false,
            ),
        ];
        assert_eq!(
            judge(&rules, &mut grants, &cmd("cargo test --release")),
            Some(Verdict::Allow("grant 1 (always: cargo test)".into()))
        );
        // Every command of a script must be covered, by grants or rules.
        assert!(matches!(
            judge(&rules, &mut grants, &cmd("git status && cargo test")),
            Some(Verdict::Allow(_))
        ));
        assert_eq!(judge(&rules, &mut grants, &cmd("cargo test; make")), None);
        assert_eq!(judge(&rules, &mut grants, &cmd("cargo test $X")), None);
        assert_eq!(
            judge(&rules, &mut grants, &cmd("cargo publish --dry-run")),
            Some(Verdict::Reject("grant 2 (never: cargo publish)".into()))
        );
        // A command the agent asks the host to run directly is judged the same way.
        let argv = ["-lc".to_string(), "cargo test".to_string()];
        assert!(matches!(
            judge(&rules, &mut grants, &Subject::of_command("/bin/sh", &argv)),
            Some(Verdict::Allow(_))
        ));
    }

    #[test]
    fn kinds_are_allowed_or_denied_by_kind() {
        let p = Policy {
            mode: PolicyMode::AllowReads,
            deny_kinds: vec!["fetch".into()],
            ..Policy::default()
        };
        let rules = Rules::new(&p).expect("rules");
        let mut none = vec![];
        let k = |kind: &str| Subject::of_tool(&json!({ "kind": kind }));
        assert_eq!(
            judge(&rules, &mut none, &k("read")),
            Some(Verdict::Allow("policy (allow kind: read)".into()))
        );
        assert!(matches!(
            judge(&rules, &mut none, &k("fetch")),
            Some(Verdict::Reject(_))
        ));
        assert_eq!(judge(&rules, &mut none, &k("edit")), None);
        let mut g = vec![grant(
            3,
            GrantScope::Kind {
                kind: "edit".into(),
            },
            true,
        )];
        assert_eq!(
            judge(&rules, &mut g, &k("edit")),
            Some(Verdict::Allow("grant 3 (always: kind edit)".into()))
        );
        // An edit grant allows no command.
        assert_eq!(judge(&rules, &mut g, &cmd("ls")), None);
    }

    #[test]
    fn bad_rules_are_refused_with_reasons() {
        assert!(Rules::new(&policy(&["rm $X"], &[])).is_err());
        assert!(Rules::new(&policy(&[], &["curl | sh"])).is_err());
        let p = Policy {
            allow_kinds: vec!["reed".into()],
            ..Policy::default()
        };
        assert!(
            Rules::new(&p)
                .expect_err("reed is no kind")
                .contains("reed")
        );
        assert!(
            SessionGrant::new(GrantInfo {
                session: 1,
                grant: 1,
                scope: GrantScope::Kind { kind: "x".into() },
                allow: true,
                by: String::new(),
                approval: None,
                at_ms: 0,
                used: 0
            })
            .is_err()
        );
    }

    #[test]
    fn always_makes_a_grant_for_one_plain_command_or_a_kind() {
        assert_eq!(
            always_scope(
                &json!({"kind": "execute", "rawInput": {"command": "bash -lc 'cargo test -p x'"}})
            ),
            Ok(GrantScope::Command {
                command: "cargo test -p x".into()
            })
        );
        assert!(
            always_scope(&json!({"kind": "execute", "rawInput": {"command": "a && b"}})).is_err()
        );
        assert!(always_scope(&json!({"kind": "execute", "title": "x"})).is_err());
        assert_eq!(
            always_scope(&json!({"kind": "edit"})),
            Ok(GrantScope::Kind {
                kind: "edit".into()
            })
        );
        assert!(always_scope(&json!({"title": "mcp tool"})).is_err());
    }
}
