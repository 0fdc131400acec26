//! Shell commands as the approval policy sees them: parsed into simple commands (a program and
//! its words), with wrappers (`sudo`, `env`, `VAR=x`, …) removed, shell scripts (`sh -c …`) and
//! command substitutions parsed too, and flags normalised (`-rf` is `-r -f`; `git push -f` is
//! `git push --force`), so that a rule matches what a command does, not how it is spelt.
//!
//! A [`CommandRule`] is a command as a person writes it in `agents.toml` (`git push --force`,
//! `curl | sh`). It *matches* a script (deny lists) if some simple command has the rule's
//! program, the rule's flags among its flags and the rule's other words among its words, in
//! order; a rule with `|` matches a pipeline with such stages in that order. It *covers* one
//! simple command (allow lists, command grants) if the program is the same, the rule's words are
//! the first words of the command and the rule's flags are among its flags.
//!
//! Only an [`Script::exact`] script can be allowed: one with no expansions (`$X`, `$(…)`,
//! backticks, globs, `~`), subshells, here-documents or redirections into files. The deny rules
//! are checked on every script, exact or not, including what substitutions and `sh -c` run.

use std::collections::BTreeSet;

/// How deep `sh -c` scripts and substitutions are followed.
const MAX_DEPTH: usize = 4;

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simple {
    /// Program and arguments, wrappers and assignments removed.
    pub argv: Vec<String>,
    /// For a shell run with `-c`: the script it runs.
    pub inner: Option<Box<Script>>,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Pipelines (separated by `;`, `&&`, `||`, `&` and newlines), each a list of stages
    /// (separated by `|`).
    pub pipelines: Vec<Vec<Simple>>,
    /// What command substitutions (`$(…)`, backticks) run.
    pub subs: Vec<Script>,
    /// Every word is literal and nothing is written to a file: see the module docs.
    pub exact: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    /// Ends a pipeline.
    Sep,
    /// Separates stages.
    Pipe,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    toks: Vec<Tok>,
    subs: Vec<String>,
    exact: bool,
}

impl Lexer<'_> {
    /// Reads a `$(…)` body after the `(`, with nested parentheses and quotes.
    fn paren_body(&mut self) -> String {
        let mut depth = 1;
        let mut body = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = self.chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '\\') => {
                    body.push(c);
                    if let Some(n) = self.chars.next() {
                        body.push(n);
                    }
                    continue;
                }
                (None, '(') => depth += 1,
                (None, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        return body;
                    }
                }
                _ => {}
            }
            body.push(c);
        }
        self.exact = false;
        body
    }

    fn backtick_body(&mut self) -> String {
        let mut body = String::new();
        while let Some(c) = self.chars.next() {
            match c {
                '`' => return body,
                '\\' => {
                    if let Some(n) = self.chars.next() {
                        body.push(n);
                    }
                }
                c => body.push(c),
            }
        }
        self.exact = false;
        body
    }

    /// `$…` outside single quotes: a substitution is parsed later; any expansion makes the
    /// script inexact. The text stays in the word.
    fn dollar(&mut self, word: &mut String) {
        self.exact = false;
        word.push('$');
        if self.chars.peek() == Some(&'(') {
            self.chars.next();
            let body = self.paren_body();
            word.push('(');
            word.push_str(&body);
            word.push(')');
            self.subs.push(body);
        }
    }

    // `end_word!` resets `in_word`, also where nothing reads it again.
    #[allow(unused_assignments)]
    fn run(mut self) -> Self {
        let mut word = String::new();
        let mut in_word = false;
        // After a redirection operator: the next word is its target, not an argument.
        let mut redirect: Option<String> = None;
        macro_rules! end_word {
            () => {
                if in_word {
                    let w = std::mem::take(&mut word);
                    in_word = false;
                    match redirect.take() {
                        Some(op) => {
                            let harmless = w == "/dev/null"
                                || (op.ends_with('&')
                                    && (w == "-" || w.chars().all(|c| c.is_ascii_digit())))
                                || op.starts_with('<') && !op.starts_with("<<");
                            if !harmless {
                                self.exact = false;
                            }
                        }
                        None => {
                            if w == "{" || w == "}" {
                                self.exact = false;
                            }
                            self.toks.push(Tok::Word(w));
                        }
                    }
                }
            };
        }
        while let Some(c) = self.chars.next() {
            match c {
                ' ' | '\t' | '\r' => end_word!(),
                '\n' => {
                    end_word!();
                    self.toks.push(Tok::Sep);
                }
                '\'' => {
                    in_word = true;
                    loop {
                        match self.chars.next() {
                            Some('\'') => break,
                            Some(x) => word.push(x),
                            None => {
                                self.exact = false;
                                break;
                            }
                        }
                    }
                }
                '"' => {
                    in_word = true;
                    loop {
                        match self.chars.next() {
                            Some('"') => break,
                            Some('\\') => match self.chars.next() {
                                Some(x @ ('"' | '\\' | '$' | '`')) => word.push(x),
                                Some('\n') => {}
                                Some(x) => {
                                    word.push('\\');
                                    word.push(x);
                                }
                                None => break,
                            },
                            Some('$') => self.dollar(&mut word),
                            Some('`') => {
                                self.exact = false;
                                let body = self.backtick_body();
                                self.subs.push(body);
                            }
                            Some(x) => word.push(x),
                            None => {
                                self.exact = false;
                                break;
                            }
                        }
                    }
                }
                '\\' => {
                    in_word = true;
                    match self.chars.next() {
                        Some('\n') | None => {}
                        Some(x) => word.push(x),
                    }
                }
                '$' => {
                    in_word = true;
                    self.dollar(&mut word);
                }
                '`' => {
                    in_word = true;
                    self.exact = false;
                    let body = self.backtick_body();
                    self.subs.push(body);
                }
                '#' if !in_word => {
                    for x in self.chars.by_ref() {
                        if x == '\n' {
                            break;
                        }
                    }
                    self.toks.push(Tok::Sep);
                }
                ';' => {
                    end_word!();
                    self.toks.push(Tok::Sep);
                }
                '|' => {
                    end_word!();
                    match self.chars.peek() {
                        Some('|') => {
                            self.chars.next();
                            self.toks.push(Tok::Sep);
                        }
                        Some('&') => {
                            self.chars.next();
                            self.toks.push(Tok::Pipe);
                        }
                        _ => self.toks.push(Tok::Pipe),
                    }
                }
                '&' => {
                    end_word!();
                    match self.chars.peek() {
                        Some('&') => {
                            self.chars.next();
                            self.toks.push(Tok::Sep);
                        }
                        Some('>') => {
                            self.chars.next();
                            if self.chars.peek() == Some(&'>') {
                                self.chars.next();
                            }
                            redirect = Some(">".into());
                        }
                        _ => self.toks.push(Tok::Sep),
                    }
                }
                '<' | '>' => {
                    // A word of digits right before it is a file descriptor number.
                    if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                        word.clear();
                    } else {
                        end_word!();
                    }
                    in_word = false;
                    let mut op = c.to_string();
                    while let Some(&n) = self.chars.peek() {
                        if matches!(n, '<' | '>' | '&' | '|') {
                            op.push(n);
                            self.chars.next();
                        } else {
                            break;
                        }
                    }
                    if op.starts_with("<<") && op != "<<<" {
                        // A here-document: its body is not parsed.
                        self.exact = false;
                    }
                    redirect = Some(op);
                }
                '(' | ')' => {
                    end_word!();
                    self.exact = false;
                    self.toks.push(Tok::Sep);
                }
                '*' | '?' | '[' => {
                    self.exact = false;
                    in_word = true;
                    word.push(c);
                }
                '~' if !in_word => {
                    self.exact = false;
                    in_word = true;
                    word.push(c);
                }
                c => {
                    in_word = true;
                    word.push(c);
                }
            }
        }
        end_word!();
        if redirect.is_some() {
            self.exact = false;
        }
        self
    }
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Programs that run the command that follows them, and their options that take a value.
const WRAPPERS: &[(&str, &[&str])] = &[
    (
        "sudo",
        &["-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T"],
    ),
    ("doas", &["-u", "-C"]),
    ("env", &["-u", "-C", "-S", "--unset", "--chdir"]),
    ("nice", &["-n", "--adjustment"]),
    ("ionice", &["-c", "-n", "-p", "--class", "--classdata"]),
    ("nohup", &[]),
    ("time", &["-f", "-o"]),
    ("command", &[]),
    ("exec", &["-a"]),
    ("builtin", &[]),
    ("stdbuf", &["-i", "-o", "-e"]),
    ("timeout", &["-s", "-k", "--signal", "--kill-after"]),
    ("xargs", &["-n", "-I", "-P", "-L", "-s", "-d", "-E", "-a"]),
];

/// Removes leading assignments and wrappers.
fn unwrap(mut argv: Vec<String>) -> Vec<String> {
    for _ in 0..8 {
        let skip = argv.iter().take_while(|w| is_assignment(w)).count();
        argv.drain(..skip);
        let Some(first) = argv.first() else {
            return argv;
        };
        let prog = basename(first).to_string();
        let Some((_, takes_value)) = WRAPPERS.iter().find(|(w, _)| *w == prog) else {
            return argv;
        };
        let mut i = 1;
        while i < argv.len() {
            let w = &argv[i];
            if w == "--" {
                i += 1;
                break;
            }
            if prog == "env" && is_assignment(w) {
                i += 1;
                continue;
            }
            if !w.starts_with('-') || w == "-" {
                break;
            }
            i += if takes_value.contains(&w.as_str()) {
                2
            } else {
                1
            };
        }
        // `timeout DURATION CMD`.
        if prog == "timeout" && i < argv.len() {
            i += 1;
        }
        if i >= argv.len() {
            // A wrapper with nothing to run is the command itself.
            return argv;
        }
        argv.drain(..i);
    }
    argv
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"];

/// For `sh -c SCRIPT …` (also `-lc`, `-ec`): the script.
fn shell_script(argv: &[String]) -> Option<&str> {
    let prog = basename(argv.first()?);
    if !SHELLS.contains(&prog) {
        return None;
    }
    let mut c = false;
    for w in &argv[1..] {
        if c {
            return Some(w);
        }
        if w.starts_with('-') && !w.starts_with("--") && w.contains('c') {
            c = true;
        } else if !w.starts_with('-') {
            return None;
        }
    }
    None
}

fn parse_at(text: &str, depth: usize) -> Script {
    let lx = Lexer {
        chars: text.chars().peekable(),
        toks: Vec::new(),
        subs: Vec::new(),
        exact: true,
    }
    .run();
    let mut exact = lx.exact;
    let mut pipelines: Vec<Vec<Simple>> = Vec::new();
    let mut stages: Vec<Simple> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let finish_stage = |words: &mut Vec<String>, stages: &mut Vec<Simple>, exact: &mut bool| {
        let argv = unwrap(std::mem::take(words));
        if argv.is_empty() {
            return;
        }
        let inner = match shell_script(&argv) {
            Some(s) if depth < MAX_DEPTH => {
                let inner = parse_at(s, depth + 1);
                Some(Box::new(inner))
            }
            Some(_) => {
                *exact = false;
                None
            }
            None => None,
        };
        stages.push(Simple { argv, inner });
    };
    for t in lx.toks {
        match t {
            Tok::Word(w) => words.push(w),
            Tok::Pipe => finish_stage(&mut words, &mut stages, &mut exact),
            Tok::Sep => {
                finish_stage(&mut words, &mut stages, &mut exact);
                if !stages.is_empty() {
                    pipelines.push(std::mem::take(&mut stages));
                }
            }
        }
    }
    finish_stage(&mut words, &mut stages, &mut exact);
    if !stages.is_empty() {
        pipelines.push(stages);
    }
    let subs = if depth < MAX_DEPTH {
        lx.subs.iter().map(|s| parse_at(s, depth + 1)).collect()
    } else {
        Vec::new()
    };
    Script {
        pipelines,
        subs,
        exact,
    }
}

impl Script {
    /// Parses a command line as a POSIX shell would split it (see the module docs).
    pub fn parse(text: &str) -> Script {
        parse_at(text, 0)
    }

    /// An argument vector run as it is (no shell): exact, unless it is a shell running a
    /// script that is not.
    pub fn argv(argv: &[String]) -> Script {
        let argv = unwrap(argv.to_vec());
        if argv.is_empty() {
            return Script {
                pipelines: vec![],
                subs: vec![],
                exact: true,
            };
        }
        let inner = shell_script(&argv).map(|s| Box::new(parse_at(s, 1)));
        Script {
            pipelines: vec![vec![Simple { argv, inner }]],
            subs: vec![],
            exact: true,
        }
    }

    /// Every pipeline, including those of `sh -c` scripts and substitutions.
    fn all_pipelines(&self) -> Vec<&Vec<Simple>> {
        let mut out = Vec::new();
        for p in &self.pipelines {
            out.push(p);
            for s in p {
                if let Some(inner) = &s.inner {
                    out.extend(inner.all_pipelines());
                }
            }
        }
        for s in &self.subs {
            out.extend(s.all_pipelines());
        }
        out
    }

    /// Whether it runs nothing at all.
    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty() && self.subs.is_empty()
    }

    /// Whether every command the script runs satisfies `allowed`: the script must be exact,
    /// and a shell running a script counts as the commands of that script.
    pub fn all(&self, allowed: &impl Fn(&Normal) -> bool) -> bool {
        if !self.exact || self.is_empty() {
            return false;
        }
        self.pipelines.iter().flatten().all(|s| match &s.inner {
            Some(inner) => inner.all(allowed),
            None => Normal::of(&s.argv).is_some_and(|n| allowed(&n)),
        })
    }

    /// Whether some command the script runs (as [`Script::all`] counts them) satisfies `pred`.
    pub fn any(&self, pred: &impl Fn(&Normal) -> bool) -> bool {
        self.pipelines.iter().flatten().any(|s| match &s.inner {
            Some(inner) => inner.any(pred),
            None => Normal::of(&s.argv).is_some_and(|n| pred(&n)),
        })
    }

    /// The one simple command this script is, if it is exactly one (a shell running one
    /// command counts as that command).
    pub fn single(&self) -> Option<&Simple> {
        if !self.exact || !self.subs.is_empty() {
            return None;
        }
        match self.pipelines.as_slice() {
            [p] => match p.as_slice() {
                [s] => match &s.inner {
                    Some(inner) => inner.single(),
                    None => Some(s),
                },
                _ => None,
            },
            _ => None,
        }
    }
}

/// A simple command in normal form: the program's base name, its words (positional arguments)
/// in order, and its flags as a set, split (`-rf` → `-r`, `-f`), without values (`--a=b` →
/// `--a`) and mapped to one spelling ([`ALIASES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normal {
    /// The program's base name.
    pub program: String,
    /// The other words, in order.
    pub words: Vec<String>,
    /// The flags.
    pub flags: BTreeSet<String>,
}

/// Flag spellings made one: (program, subcommand or "", flag, its long form(s)).
pub const ALIASES: &[(&str, &str, &str, &[&str])] = &[
    ("git", "push", "-f", &["--force"]),
    ("git", "push", "-d", &["--delete"]),
    ("git", "push", "-u", &["--set-upstream"]),
    ("git", "clean", "-f", &["--force"]),
    ("git", "clean", "-n", &["--dry-run"]),
    ("git", "branch", "-D", &["--delete", "--force"]),
    ("git", "branch", "-d", &["--delete"]),
    ("git", "branch", "-f", &["--force"]),
    ("git", "checkout", "-f", &["--force"]),
    ("git", "commit", "-a", &["--all"]),
    ("git", "commit", "-n", &["--no-verify"]),
    ("git", "commit", "-m", &["--message"]),
    ("git", "stash", "-u", &["--include-untracked"]),
    ("rm", "", "-r", &["--recursive"]),
    ("rm", "", "-R", &["--recursive"]),
    ("rm", "", "-f", &["--force"]),
    ("rm", "", "-i", &["--interactive"]),
    ("rm", "", "-d", &["--dir"]),
    ("cp", "", "-r", &["--recursive"]),
    ("cp", "", "-R", &["--recursive"]),
    ("cp", "", "-f", &["--force"]),
    ("mv", "", "-f", &["--force"]),
    ("chmod", "", "-R", &["--recursive"]),
    ("chown", "", "-R", &["--recursive"]),
    ("curl", "", "-o", &["--output"]),
    ("curl", "", "-O", &["--remote-name"]),
    ("curl", "", "-X", &["--request"]),
    ("curl", "", "-d", &["--data"]),
    ("curl", "", "-L", &["--location"]),
    ("curl", "", "-s", &["--silent"]),
    ("wget", "", "-O", &["--output-document"]),
    ("docker", "rm", "-f", &["--force"]),
    ("npm", "install", "-g", &["--global"]),
    ("npm", "i", "-g", &["--global"]),
];

/// Options that take the next word as their value, before a program's subcommand.
const GLOBAL_VALUES: &[(&str, &[&str])] = &[
    (
        "git",
        &["-C", "-c", "--git-dir", "--work-tree", "--namespace"],
    ),
    ("cargo", &["-C", "--config", "-Z"]),
    ("docker", &["-H", "--host", "--context", "-c", "--config"]),
];

impl Normal {
    /// The normal form of `argv` (program first); `None` if it is empty.
    pub fn of(argv: &[String]) -> Option<Normal> {
        let (prog, args) = argv.split_first()?;
        let program = basename(prog).to_string();
        let mut words = Vec::new();
        let mut flags = BTreeSet::new();
        let globals = GLOBAL_VALUES
            .iter()
            .find(|(p, _)| *p == program)
            .map_or(&[][..], |(_, v)| *v);
        let mut rest = false;
        let mut i = 0;
        while i < args.len() {
            let w = &args[i];
            i += 1;
            if rest || w == "-" || !w.starts_with('-') {
                words.push(w.clone());
                continue;
            }
            if w == "--" {
                rest = true;
                continue;
            }
            if words.is_empty() && globals.contains(&w.as_str()) {
                // Its value is no word of the command.
                i += 1;
                continue;
            }
            if let Some(long) = w.strip_prefix("--") {
                let name = long.split('=').next().unwrap_or(long);
                flags.insert(format!("--{name}"));
            } else {
                for c in w.chars().skip(1) {
                    flags.insert(format!("-{c}"));
                }
            }
        }
        let sub = words.first().cloned().unwrap_or_default();
        let flags = flags
            .into_iter()
            .flat_map(|f| {
                let alias = ALIASES.iter().find(|(p, s, from, _)| {
                    *p == program && (s.is_empty() || *s == sub) && *from == f
                });
                match alias {
                    Some((_, _, _, to)) => to.iter().map(|t| t.to_string()).collect(),
                    None => vec![f],
                }
            })
            .collect();
        Some(Normal {
            program,
            words,
            flags,
        })
    }

    /// Whether `self` (a rule's stage) describes `cmd`: same program, its flags among the
    /// command's, and its words the command's first words (`prefix`) or among them in order.
    fn describes(&self, cmd: &Normal, prefix: bool) -> bool {
        if self.program != cmd.program || !self.flags.is_subset(&cmd.flags) {
            return false;
        }
        if prefix {
            cmd.words.starts_with(&self.words)
        } else {
            let mut it = cmd.words.iter();
            self.words.iter().all(|w| it.any(|x| x == w))
        }
    }
}

/// A command in a rule or a grant, as a person wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRule {
    /// The text.
    pub text: String,
    stages: Vec<Normal>,
}

impl CommandRule {
    /// Parses a rule: one command, or a pipeline (`curl | sh`), with nothing to expand.
    pub fn parse(text: &str) -> Result<CommandRule, String> {
        let script = Script::parse(text);
        if !script.exact || !script.subs.is_empty() {
            return Err(format!(
                "{text:?}: a rule is a plain command: no $, quotes left open, globs, \
                 substitutions or redirections"
            ));
        }
        let stages = match script.pipelines.as_slice() {
            [p] => p
                .iter()
                .filter_map(|s| Normal::of(&s.argv))
                .collect::<Vec<_>>(),
            [] => return Err(format!("{text:?}: an empty rule")),
            _ => {
                return Err(format!(
                    "{text:?}: one command (or one pipeline) per rule, without ; && ||"
                ));
            }
        };
        Ok(CommandRule {
            text: text.trim().to_string(),
            stages,
        })
    }

    /// The rule for exactly this simple command, for a grant made by an "always" answer.
    pub fn of_simple(s: &Simple) -> Option<CommandRule> {
        let n = Normal::of(&s.argv)?;
        Some(CommandRule {
            text: join(&s.argv),
            stages: vec![n],
        })
    }

    /// Whether some command of `script` (or, for a pipeline rule, some pipeline) is the one the
    /// rule names (deny lists).
    pub fn matches(&self, script: &Script) -> bool {
        script.all_pipelines().into_iter().any(|p| {
            let normals: Vec<Normal> = p.iter().filter_map(|s| Normal::of(&s.argv)).collect();
            let mut it = normals.iter();
            self.stages
                .iter()
                .all(|st| it.any(|n| st.describes(n, false)))
        })
    }

    /// Whether this one-command rule covers `cmd` (allow lists and command grants).
    pub fn covers(&self, cmd: &Normal) -> bool {
        match self.stages.as_slice() {
            [one] => one.describes(cmd, true),
            _ => false,
        }
    }

    /// Whether the rule is one command (not a pipeline).
    pub fn is_single(&self) -> bool {
        self.stages.len() == 1
    }
}

/// Words joined back into a command line, quoted where a shell needs it.
pub fn join(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
