//! What a tool call will do, in words a person can check before approving it: the command and
//! the directory it runs in, the files it changes (with a diff), the URL it fetches. Read from
//! the ACP `ToolCallUpdate` an agent sends with `session/request_permission` (its `title`,
//! `kind`, `rawInput`, `locations` and `content`), whatever agent sent it: fast-agent and
//! Claude put a shell command in `rawInput.command`, Codex an argument vector, edits come as
//! `diff` content or as `rawInput` paths with old and new text.
//!
//! Everything is cut to a size that fits a screen, and every cut says how much was left out.
//! The text is as the agent sent it: whoever shows it makes control characters visible first.

use serde_json::Value;

use crate::tool::command::join;

/// Characters of one shown value (a command, a URL, a path) at most.
pub const MAX_TEXT: usize = 2000;
/// Lines of one shown diff at most.
pub const MAX_DIFF_LINES: usize = 40;
/// Characters of one diff line at most.
pub const MAX_LINE: usize = 300;

/// One thing a tool call does, and one line of a change: the wire's types, so that what the
/// host sends with an approval and what the CLI shows are one reading.
pub use crate::proto::{DiffLine, ToolAction as What};

/// A tool call, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The title the agent gave it.
    pub title: String,
    /// Its ACP kind (`execute`, `edit`, …; `other` if none).
    pub kind: String,
    /// What it does; empty if the agent said nothing more than the title.
    pub what: Vec<What>,
}

/// `text` cut to `max` characters, with a note of how many were left out.
pub fn truncate(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… ({} more characters)", n - max)
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn first<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| s(v, k))
}

/// The command a tool call's `rawInput` names: `command` as text or as an argument vector,
/// plus `args`.
pub fn raw_command(raw: &Value) -> Option<String> {
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let cmd = raw.get("command").or_else(|| raw.get("cmd"))?;
    let mut line = match cmd {
        Value::String(c) if !c.trim().is_empty() => c.clone(),
        Value::Array(_) => join(&strings(cmd)?),
        _ => return None,
    };
    if let Some(args) = raw.get("args").and_then(strings)
        && !args.is_empty()
    {
        line.push(' ');
        line.push_str(&join(&args));
    }
    Some(line)
}

/// Describes a tool call with the host's reading of what it does when the host sent one (the
/// `permission` event's or the pending approval's `what`), else with ours: a client shows the
/// host's reading, so that every client shows the same thing.
pub fn describe_with(tool: &Value, said: Option<&[What]>) -> Described {
    let mut d = describe(tool);
    if let Some(said) = said {
        d.what = said.to_vec();
    }
    d
}

/// Describes a tool call (ACP `ToolCallUpdate`, as JSON).
pub fn describe(tool: &Value) -> Described {
    let title = s(tool, "title").unwrap_or("").to_string();
    let kind = s(tool, "kind").unwrap_or("other").to_string();
    let raw = tool.get("rawInput").cloned().unwrap_or(Value::Null);
    let mut what = Vec::new();
    if let Some(command) = raw_command(&raw) {
        what.push(What::Run {
            command: truncate(&command, MAX_TEXT),
            cwd: first(&raw, &["cwd", "workdir", "working_directory", "dir"])
                .map(|c| truncate(c, MAX_TEXT)),
        });
    } else if kind == "execute" && !title.is_empty() {
        // No command shown: the title is all there is.
        what.push(What::Run {
            command: truncate(&title, MAX_TEXT),
            cwd: None,
        });
    }
    let mut paths: Vec<String> = Vec::new();
    for c in tool
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if s(c, "type") == Some("diff") {
            let path = s(c, "path").unwrap_or("").to_string();
            let old = c.get("oldText").and_then(Value::as_str);
            let new = s(c, "newText").unwrap_or("");
            paths.push(path.clone());
            what.push(What::Edit {
                path: truncate(&path, MAX_TEXT),
                diff: diff_lines(old, new),
            });
        }
    }
    let raw_path = first(
        &raw,
        &[
            "file_path",
            "filePath",
            "path",
            "abs_path",
            "file",
            "notebook_path",
        ],
    );
    if let Some(p) = raw_path
        && !paths.iter().any(|x| x == p)
    {
        let old = first(&raw, &["old_string", "oldText", "old_str", "old"]);
        let new = first(
            &raw,
            &["new_string", "newText", "new_str", "content", "new"],
        );
        paths.push(p.to_string());
        if matches!(kind.as_str(), "edit" | "delete" | "move") || new.is_some() {
            what.push(What::Edit {
                path: truncate(p, MAX_TEXT),
                diff: new.map(|n| diff_lines(old, n)).unwrap_or_default(),
            });
        } else {
            what.push(What::File {
                path: truncate(p, MAX_TEXT),
            });
        }
    }
    for l in tool
        .get("locations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(p) = s(l, "path")
            && !paths.iter().any(|x| x == p)
        {
            paths.push(p.to_string());
            let line = l.get("line").and_then(Value::as_u64);
            what.push(What::File {
                path: truncate(
                    &line.map_or_else(|| p.to_string(), |n| format!("{p}:{n}")),
                    MAX_TEXT,
                ),
            });
        }
    }
    if let Some(url) = first(&raw, &["url", "uri"]) {
        what.push(What::Fetch {
            url: truncate(url, MAX_TEXT),
        });
    } else if kind == "fetch"
        && let Some(u) = title.split_whitespace().find(|w| w.contains("://"))
    {
        what.push(What::Fetch {
            url: truncate(u, MAX_TEXT),
        });
    }
    if let Some(q) = first(&raw, &["pattern", "query", "regex"]) {
        what.push(What::Search {
            query: truncate(q, MAX_TEXT),
        });
    }
    Described { title, kind, what }
}

/// The lines of a change from `old` (`None`: a new file) to `new`: changed lines with up to 2
/// unchanged ones around them, at most [`MAX_DIFF_LINES`], each at most [`MAX_LINE`]
/// characters; a change that is too big to compare shows the old lines removed and the new
/// ones added.
pub fn diff_lines(old: Option<&str>, new: &str) -> Vec<DiffLine> {
    let split = |t: &str| -> Vec<String> {
        if t.is_empty() {
            Vec::new()
        } else {
            t.strip_suffix('\n')
                .unwrap_or(t)
                .split('\n')
                .map(|l| truncate(l, MAX_LINE))
                .collect()
        }
    };
    let a = split(old.unwrap_or(""));
    let b = split(new);
    let mut head = 0;
    while head < a.len() && head < b.len() && a[head] == b[head] {
        head += 1;
    }
    let mut tail = 0;
    while tail < a.len() - head
        && tail < b.len() - head
        && a[a.len() - 1 - tail] == b[b.len() - 1 - tail]
    {
        tail += 1;
    }
    let x = &a[head..a.len() - tail];
    let y = &b[head..b.len() - tail];
    if x.is_empty() && y.is_empty() {
        return Vec::new();
    }
    let mut mid: Vec<DiffLine> = Vec::new();
    if x.len().saturating_mul(y.len()) > 1_000_000 {
        mid.extend(x.iter().cloned().map(DiffLine::Del));
        mid.extend(y.iter().cloned().map(DiffLine::Add));
    } else {
        // Longest common subsequence, table from the end.
        let (n, m) = (x.len(), y.len());
        let mut t = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                t[i * (m + 1) + j] = if x[i] == y[j] {
                    t[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    t[(i + 1) * (m + 1) + j].max(t[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && x[i] == y[j] {
                mid.push(DiffLine::Same(x[i].clone()));
                i += 1;
                j += 1;
            } else if i < n && (j == m || t[(i + 1) * (m + 1) + j] >= t[i * (m + 1) + j + 1]) {
                mid.push(DiffLine::Del(x[i].clone()));
                i += 1;
            } else {
                mid.push(DiffLine::Add(y[j].clone()));
                j += 1;
            }
        }
    }
    // Context: two unchanged lines on each side of the change.
    let before: Vec<DiffLine> = a[head.saturating_sub(2)..head]
        .iter()
        .cloned()
        .map(DiffLine::Same)
        .collect();
    let after: Vec<DiffLine> = a[a.len() - tail..(a.len() - tail + 2).min(a.len())]
        .iter()
        .cloned()
        .map(DiffLine::Same)
        .collect();
    let mut out = before;
    out.extend(mid);
    out.extend(after);
    if out.len() > MAX_DIFF_LINES {
        let more = out.len() - MAX_DIFF_LINES;
        out.truncate(MAX_DIFF_LINES);
        out.push(DiffLine::Cut(format!("… {more} more lines")));
    }
    out
}

impl Described {
    /// One line for logs and the audit log: `execute: cargo test (in /w)`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for w in &self.what {
            parts.push(match w {
                What::Run { command, cwd } => match cwd {
                    Some(c) => format!("run {command} (in {c})"),
                    None => format!("run {command}"),
                },
                What::Edit { path, .. } => format!("change {path}"),
                What::File { path } => format!("file {path}"),
                What::Fetch { url } => format!("fetch {url}"),
                What::Search { query } => format!("search {query}"),
            });
        }
        if parts.is_empty() {
            parts.push(if self.title.is_empty() {
                self.kind.clone()
            } else {
                self.title.clone()
            });
        }
        truncate(&parts.join("; "), MAX_TEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_from_text_vectors_and_titles() {
        let d = describe(&json!({"title": "execute", "kind": "execute",
            "rawInput": {"command": "cargo test", "cwd": "/w/sub"}}));
        assert_eq!(
            d.what,
            [What::Run {
                command: "cargo test".into(),
                cwd: Some("/w/sub".into())
            }]
        );
        assert_eq!(d.summary(), "run cargo test (in /w/sub)");
        let d = describe(&json!({"kind": "execute",
            "rawInput": {"command": ["bash", "-lc", "ls -l"]}}));
        assert_eq!(
            d.what,
            [What::Run {
                command: "bash -lc 'ls -l'".into(),
                cwd: None
            }]
        );
        let d = describe(&json!({"kind": "execute", "title": "make all"}));
        assert_eq!(
            d.what,
            [What::Run {
                command: "make all".into(),
                cwd: None
            }]
        );
        let d = describe(
            &json!({"kind": "execute", "rawInput": {"command": "ls", "args": ["-l", "a b"]}}),
        );
        assert_eq!(d.summary(), "run ls -l 'a b'");
    }

    #[test]
    fn edits_show_the_file_and_the_change() {
        let d = describe(&json!({"title": "Edit a.txt", "kind": "edit",
            "content": [{"type": "diff", "path": "/w/a.txt", "oldText": "one\ntwo\nthree\n", "newText": "one\n2\nthree\n"}]}));
        assert_eq!(
            d.what,
            [What::Edit {
                path: "/w/a.txt".into(),
                diff: vec![
                    DiffLine::Same("one".into()),
                    DiffLine::Del("two".into()),
                    DiffLine::Add("2".into()),
                    DiffLine::Same("three".into()),
                ]
            }]
        );
        // Claude's Edit tool: the strings in rawInput.
        let d = describe(
            &json!({"kind": "edit", "rawInput": {"file_path": "/w/b.rs", "old_string": "a", "new_string": "b"}}),
        );
        assert_eq!(
            d.what,
            [What::Edit {
                path: "/w/b.rs".into(),
                diff: vec![DiffLine::Del("a".into()), DiffLine::Add("b".into())]
            }]
        );
        // A read names its file; a fetch its URL.
        let d = describe(&json!({"kind": "read", "locations": [{"path": "/w/c", "line": 3}]}));
        assert_eq!(
            d.what,
            [What::File {
                path: "/w/c:3".into()
            }]
        );
        let d = describe(&json!({"kind": "fetch", "rawInput": {"url": "https://example.com/x"}}));
        assert_eq!(d.summary(), "fetch https://example.com/x");
        let d = describe(&json!({"kind": "fetch", "title": "Fetch https://example.org"}));
        assert_eq!(d.summary(), "fetch https://example.org");
        assert_eq!(describe(&json!({"title": "think"})).summary(), "think");
    }

    #[test]
    fn long_things_are_cut_visibly() {
        let long = "x".repeat(MAX_TEXT + 5);
        let d = describe(&json!({"kind": "execute", "rawInput": {"command": long}}));
        let What::Run { command, .. } = &d.what[0] else {
            panic!("run")
        };
        assert!(command.ends_with("… (5 more characters)"), "{command}");
        let new: String = (0..100).map(|i| format!("{i}\n")).collect();
        let diff = diff_lines(None, &new);
        assert_eq!(diff.len(), MAX_DIFF_LINES + 1);
        assert_eq!(
            diff[MAX_DIFF_LINES],
            DiffLine::Cut("… 60 more lines".into())
        );
        // An empty change is no lines.
        assert!(diff_lines(Some("a\n"), "a\n").is_empty());
    }
}
