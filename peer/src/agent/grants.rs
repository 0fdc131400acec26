//! The terminal gate's grants: a person's "allow" answer to a `session/request_permission`
//! leaves one [`Grant`], built from the tool call the agent showed them; a `terminal/create`
//! must consume a grant of the current turn whose command matches ([`Grant::allows`]), or it
//! is refused (protocol.md §16.8). So a command runs only if a person agreed to that command
//! in that turn, whatever the agent remembers about earlier answers (fast-agent, for instance,
//! keeps "always allow" choices in a file inside the worktree, which a repository could ship).
//! [`super::approvals::Approvals`] keeps the grants and decides when they are given and
//! dropped.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// An approval a person gave in the current turn, good for one `terminal/create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The approval's number.
    pub approval: u64,
    /// The command shown to the person (`rawInput.command`), if the tool call had one.
    pub command: Option<String>,
    /// `rawInput.args`, if given.
    pub args: Option<Vec<String>>,
    /// `rawInput.cwd`, if given.
    pub cwd: Option<String>,
}

impl Grant {
    /// The grant for an approved tool call (the ACP `ToolCallUpdate` the agent sent with its
    /// permission request): `None` for tool calls whose kind says they run nothing (`read`,
    /// `edit`, `delete`, `move`, `search`, `fetch`, `think`, `switch_mode`); `execute`,
    /// `other` and a missing kind grant one command.
    pub fn from_tool_call(approval: u64, tool: &Value) -> Option<Grant> {
        match tool.get("kind").and_then(Value::as_str) {
            None | Some("execute" | "other") => {}
            Some(_) => return None,
        }
        let raw = tool.get("rawInput");
        let s = |k: &str| {
            raw.and_then(|r| r.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Some(Grant {
            approval,
            command: s("command"),
            args: raw.and_then(|r| r.get("args")).and_then(|a| {
                a.as_array().and_then(|v| {
                    v.iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
            }),
            cwd: s("cwd"),
        })
    }

    /// Whether this grant covers a `terminal/create` of `command args` in `cwd` (resolved).
    ///
    /// A grant without a command (the agent showed no `rawInput.command`) covers any one
    /// command. Otherwise the program and arguments must be what was shown: with
    /// `rawInput.args`, exactly `command` + `args`; without, either a shell running the shown
    /// text (`sh`/`bash` with `-c` or `-lc` and the text as the script) or the shown text
    /// split into words by shell quoting rules. A shown `cwd` must resolve (with `canon`, which
    /// follows symbolic links) to the same directory (`root` is the worktree, for relative
    /// paths).
    pub fn allows(
        &self,
        command: &str,
        args: &[String],
        cwd: &Path,
        root: &Path,
        canon: impl Fn(&Path) -> PathBuf,
    ) -> bool {
        if let Some(want) = &self.cwd {
            let p = Path::new(want);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                root.join(p)
            };
            let p = canon(&p);
            if p != cwd {
                return false;
            }
        }
        let Some(shown) = &self.command else {
            return true;
        };
        if let Some(shown_args) = &self.args {
            return shown == command && shown_args == args;
        }
        let shell = matches!(
            Path::new(command).file_name().and_then(|n| n.to_str()),
            Some("sh" | "bash" | "dash" | "zsh")
        );
        if shell
            && args.len() == 2
            && matches!(args[0].as_str(), "-c" | "-lc")
            && args[1].trim() == shown.trim()
        {
            return true;
        }
        match split_words(shown) {
            Some(words) => {
                words.first().map(String::as_str) == Some(command) && words[1..] == *args
            }
            None => false,
        }
    }
}

/// Splits text into words the way a POSIX shell does for quoting (single quotes, double
/// quotes, backslashes); `None` for unbalanced quotes or text that needs a shell (`$`,
/// backticks, `;`, `|`, `&`, redirections, globs …), which must then arrive as a shell script.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            x @ ('"' | '\\') => cur.push(x),
                            '$' | '`' => return None,
                            '\n' => {}
                            x => {
                                cur.push('\\');
                                cur.push(x);
                            }
                        },
                        '$' | '`' => return None,
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next()? {
                    '\n' => {}
                    x => cur.push(x),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '$' | '`' | ';' | '|' | '&' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | '#' | '~'
            | '{' | '}' => return None,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn sv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Resolves links, as the host does.
    pub(crate) fn canon(p: &Path) -> PathBuf {
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    }

    #[test]
    fn words_split_like_a_shell_and_shell_syntax_is_not_split() {
        assert_eq!(
            split_words("echo via-terminal"),
            Some(sv(&["echo", "via-terminal"]))
        );
        assert_eq!(
            split_words(r#"printf 'a b' "c \"d\"" e\ f"#),
            Some(sv(&["printf", "a b", "c \"d\"", "e f"]))
        );
        assert_eq!(split_words("  "), Some(vec![]));
        assert_eq!(split_words("echo 'open"), None);
        for s in [
            "echo $HOME",
            "a; b",
            "a | b",
            "a > f",
            "ls *",
            "echo `x`",
            "a && b",
        ] {
            assert_eq!(split_words(s), None, "{s}");
        }
    }

    #[test]
    fn a_grant_covers_exactly_the_command_that_was_shown() {
        let root = std::env::temp_dir();
        let root = std::fs::canonicalize(&root).expect("tmp");
        let g = Grant::from_tool_call(
            1,
            &json!({"kind": "execute", "rawInput": {"command": "echo hi > approved.txt"}}),
        )
        .expect("grant");
        assert!(g.allows(
            "/bin/sh",
            &sv(&["-lc", "echo hi > approved.txt"]),
            &root,
            &root,
            canon
        ));
        assert!(g.allows(
            "bash",
            &sv(&["-c", "echo hi > approved.txt"]),
            &root,
            &root,
            canon
        ));
        assert!(!g.allows("/bin/sh", &sv(&["-lc", "rm -rf ~"]), &root, &root, canon));
        assert!(!g.allows(
            "/usr/bin/python3",
            &sv(&["-c", "echo hi > approved.txt"]),
            &root,
            &root,
            canon
        ));

        let g = Grant::from_tool_call(2, &json!({"rawInput": {"command": "echo 'a b'"}}))
            .expect("grant");
        assert!(g.allows("echo", &sv(&["a b"]), &root, &root, canon));
        assert!(!g.allows("echo", &sv(&["a", "b"]), &root, &root, canon));

        let g = Grant::from_tool_call(3, &json!({"rawInput": {"command": "ls", "args": ["-l"]}}))
            .expect("grant");
        assert!(g.allows("ls", &sv(&["-l"]), &root, &root, canon));
        assert!(!g.allows("ls", &sv(&["-la"]), &root, &root, canon));

        // A tool call that showed no command covers one command, whatever it is.
        let g = Grant::from_tool_call(4, &json!({"title": "run tests"})).expect("grant");
        assert!(g.allows("cargo", &sv(&["test"]), &root, &root, canon));

        // An approved edit or read is no licence to run anything.
        for kind in ["edit", "read", "delete", "move", "search", "fetch", "think"] {
            assert_eq!(
                Grant::from_tool_call(6, &json!({"kind": kind})),
                None,
                "{kind}"
            );
        }
        assert!(Grant::from_tool_call(7, &json!({"kind": "other"})).is_some());

        // A shown cwd must be the one used.
        let g = Grant::from_tool_call(5, &json!({"rawInput": {"command": "ls", "cwd": "/"}}))
            .expect("grant");
        assert!(g.allows("ls", &[], Path::new("/"), &root, canon));
        assert!(!g.allows("ls", &[], &root, &root, canon));
    }
}
