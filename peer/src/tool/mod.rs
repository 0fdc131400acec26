//! Tool calls and shell commands as people and policies read them, shared by the host (the
//! approval rules, the audit log) and the client (what `peer agent attach` shows before an
//! approval): [`command`] parses commands into what they run, [`what`] says what a tool call
//! would do.

pub mod command;
pub mod what;

use crate::proto::GrantScope;

/// A grant's scope in words: `every tool call`, `kind edit`, `cargo test`.
pub fn scope_text(scope: &GrantScope) -> String {
    match scope {
        GrantScope::Session => "every tool call".into(),
        GrantScope::Kind { kind } => format!("kind {kind}"),
        GrantScope::Command { command } => command.clone(),
    }
}
