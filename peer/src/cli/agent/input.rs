//! What a line typed into `peer agent attach` means, and the connection requests go over.
//!
//! - While an approval is waiting, a number picks its option, `y` / `n` allow once / reject;
//!   a number that is not an option is refused, never sent as a prompt. With no approval
//!   waiting, a bare number or `y` / `n` is sent as a prompt only after a confirmation (the
//!   approval may just have been answered from elsewhere).
//! - `/cancel`, `/diff`, `/mode`, `/model`, `/new`, `/resume`, `/approvals`, `/grants`,
//!   `/help` are peer's; `/name` of a command the agent advertised is sent to it as a prompt;
//!   any other `/…` is sent after a confirmation; `//text` sends `/text`.

use peer::client::sanitize::inline;
use peer::client::transcript::{Transcript, approval_lines, options};
use peer::client::{ClientError, Dialer, HostConn};
use peer::proto::{AgentAttached, AgentState, FrameReader, ReadError, Reply, Request, StartAgent};
use peer::tool::what::describe_with;

use super::term::Out;

/// What the terminal sent.
pub(super) enum Line {
    /// A line.
    Text(String),
    /// Ctrl-C while typing.
    Interrupt,
    /// Ctrl-D, or the end of the input.
    Eof,
}

/// What the input threads send.
pub(super) type Typed = Line;

/// What a line asks of the attach loop.
pub(super) enum Done {
    /// Nothing more.
    Stay,
    /// Attach to this session instead.
    Switch(u64),
}

const HELP: &str = "type a prompt and Enter to send it (queued while a turn runs)
  1, 2, …     answer the oldest waiting approval with that option
  y / n       allow once / reject the oldest waiting approval
  /cancel     cancel the running turn (also /abort, and Ctrl-C)
  /approvals  the approvals waiting in every session
  /grants     this session's grants (`peer agent grants` revokes them)
  /diff       the files changed in the worktree
  /mode M     switch the agent's mode
  /model M    choose the agent's model (its `model` option)
  /new [P]    start a new session of this agent on this repository, with prompt P
  /resume N   attach to agent session N instead
  //text      send a prompt that starts with /
  /help       this text
  Ctrl-C      cancel the turn; twice within 2 s detaches
  Ctrl-D      detach (the session goes on)";

/// The connection, kept for requests and replaced after a loss.
pub(super) struct Link {
    dialer: Dialer,
    conn: Option<HostConn>,
}

type Stream = peer::client::Streams;

impl Link {
    pub(super) fn new(dialer: Dialer, conn: HostConn) -> Link {
        Link {
            dialer,
            conn: Some(conn),
        }
    }

    /// A request over the connection; an error while there is none.
    pub(super) async fn request(&self, req: Request) -> Result<Reply, ClientError> {
        match &self.conn {
            Some(c) => c.request(req).await,
            None => Err(ClientError::Unreachable(
                "not connected (reconnecting); nothing was sent".into(),
            )),
        }
    }

    /// The event stream failed: the connection is given up.
    pub(super) fn lost(&mut self, e: ReadError) -> ClientError {
        match self.conn.take() {
            Some(c) => {
                let err = c.read_error(e);
                c.close();
                err
            }
            None => ClientError::Unreachable(e.to_string()),
        }
    }

    /// A new connection, and the stream of session `id` from event `from` on.
    pub(super) async fn reconnect(&mut self, id: u64, from: u64) -> Result<Stream, ClientError> {
        let c = self.dialer.connect().await?;
        let (s, r, _) = c.agent_attach(id, from).await?;
        self.conn = Some(c);
        Ok((s, r))
    }

    /// The stream of session `id` from event `from` on, over the connection.
    pub(super) async fn attach(
        &mut self,
        id: u64,
        from: u64,
    ) -> Result<
        (
            peer::client::StreamSend,
            FrameReader<peer::client::StreamRecv>,
            AgentAttached,
        ),
        ClientError,
    > {
        match &self.conn {
            Some(c) => c.agent_attach(id, from).await,
            None => Err(ClientError::Unreachable("not connected".into())),
        }
    }

    pub(super) async fn hang_up(self) {
        if let Some(c) = self.conn {
            super::super::hang_up(self.dialer, c).await;
        } else {
            self.dialer.close().await;
        }
    }
}

/// The meaning of typed lines.
pub(super) struct Input {
    prompts: Option<std::sync::mpsc::Sender<Option<String>>>,
    id: u64,
    agent: String,
    repo: String,
    /// A prompt waiting for "y" to be sent.
    confirm: Option<String>,
}

/// Whether `line` is what answers an approval: a number, y or n.
fn answer_like(line: &str) -> bool {
    line.parse::<u64>().is_ok() || matches!(line, "y" | "n" | "yes" | "no")
}

impl Input {
    pub(super) fn new(
        prompts: Option<std::sync::mpsc::Sender<Option<String>>>,
        id: u64,
        agent: &str,
        repo: &str,
    ) -> Input {
        Input {
            prompts,
            id,
            agent: agent.into(),
            repo: repo.into(),
            confirm: None,
        }
    }

    /// Lets the line editor read the next line.
    pub(super) fn ready(&self) {
        if let Some(p) = &self.prompts {
            let prompt = match &self.confirm {
                Some(_) => "send it as a prompt? [y/N] ".to_string(),
                None => "> ".to_string(),
            };
            let _ = p.send(Some(prompt));
        }
    }

    /// An event was shown.
    pub(super) fn seen(&mut self, _t: &Transcript, _state: AgentState) {}

    /// Attached to another session.
    pub(super) fn switch(&mut self, id: u64, agent: &str, repo: &str) {
        self.id = id;
        self.agent = agent.into();
        self.repo = repo.into();
        self.confirm = None;
    }

    /// Ends the line editor.
    pub(super) fn close(&self) {
        if let Some(p) = &self.prompts {
            let _ = p.send(None);
        }
    }

    async fn send(&self, link: &Link, out: &mut Out, req: Request) -> Option<Reply> {
        match link.request(req).await {
            Ok(r) => Some(r),
            Err(e) => {
                out.notice(&format!("peer: {}", inline(&e.to_string())));
                None
            }
        }
    }

    async fn prompt(&self, link: &Link, out: &mut Out, text: String) {
        let req = Request::AgentPrompt {
            session: self.id,
            text,
        };
        if let Some(Reply::AgentPrompted { queued: true }) = self.send(link, out, req).await {
            out.notice("-- queued: it is sent when the running turn ends");
        }
    }

    /// Acts on one typed line.
    pub(super) async fn line(
        &mut self,
        line: &str,
        t: &Transcript,
        _state: AgentState,
        link: &Link,
        out: &mut Out,
    ) -> Done {
        let line = line.trim();
        if let Some(text) = self.confirm.take() {
            if matches!(line, "y" | "yes") {
                self.prompt(link, out, text).await;
            } else {
                out.notice("-- not sent");
            }
            return Done::Stay;
        }
        if line.is_empty() {
            return Done::Stay;
        }
        if answer_like(line) {
            let Some((n, open)) = t.open().iter().next() else {
                out.notice(&format!(
                    "-- no approval is waiting (an answer from elsewhere may have come first); \
                     send \"{}\" to the agent as a prompt?",
                    inline(line)
                ));
                self.confirm = Some(line.to_string());
                return Done::Stay;
            };
            let pick = |kinds: &[&str]| {
                kinds.iter().find_map(|k| {
                    open.options
                        .iter()
                        .find(|o| o.kind == *k)
                        .map(|o| o.id.clone())
                })
            };
            let option = match line {
                "y" | "yes" => pick(&["allow_once", "allow_always"]),
                "n" | "no" => pick(&["reject_once", "reject_always"]),
                l => l
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| open.options.get(i))
                    .map(|o| o.id.clone()),
            };
            let Some(option) = option else {
                out.notice(&format!(
                    "-- approval {n} has options 1-{}{}; nothing was sent",
                    open.options.len(),
                    if matches!(line, "y" | "n" | "yes" | "no") {
                        " (none of that kind)"
                    } else {
                        ""
                    }
                ));
                return Done::Stay;
            };
            let req = Request::AgentAnswer {
                session: self.id,
                approval: *n,
                option: Some(option),
            };
            self.send(link, out, req).await;
            return Done::Stay;
        }
        if let Some(rest) = line.strip_prefix("//") {
            self.prompt(link, out, format!("/{rest}")).await;
            return Done::Stay;
        }
        let Some(cmdline) = line.strip_prefix('/') else {
            self.prompt(link, out, line.to_string()).await;
            return Done::Stay;
        };
        let (cmd, rest) = cmdline.split_once(' ').unwrap_or((cmdline, ""));
        let rest = rest.trim();
        match cmd {
            "cancel" | "abort" => {
                self.send(link, out, Request::AgentCancel { session: self.id })
                    .await;
            }
            "diff" => {
                if let Some(Reply::AgentDiff(d)) = self
                    .send(link, out, Request::AgentDiff { session: self.id })
                    .await
                {
                    if d.files.is_empty() {
                        out.notice("-- no changes in the worktree");
                    }
                    for f in d.files {
                        out.notice(&format!("  {:<10} {}", f.status, inline(&f.path)));
                    }
                }
            }
            "mode" if !rest.is_empty() => {
                let req = Request::AgentSetMode {
                    session: self.id,
                    mode: rest.to_string(),
                };
                self.send(link, out, req).await;
            }
            "model" if !rest.is_empty() => {
                let req = Request::AgentSetOption {
                    session: self.id,
                    option: "model".into(),
                    value: rest.to_string(),
                };
                self.send(link, out, req).await;
            }
            "new" => {
                let req = Request::StartAgent(StartAgent {
                    agent: self.agent.clone(),
                    repo: self.repo.clone(),
                    base: None,
                    prompt: (!rest.is_empty()).then(|| rest.to_string()),
                    with_changes: false,
                    model: None,
                });
                if let Some(Reply::AgentStarted(s)) = self.send(link, out, req).await {
                    for w in &s.warnings {
                        out.notice(&format!("!! {}", inline(w)));
                    }
                    return Done::Switch(s.info.id);
                }
            }
            "resume" => match rest.parse::<u64>() {
                Ok(n) => return Done::Switch(n),
                Err(_) => out.notice("-- /resume takes a session id"),
            },
            "approvals" => {
                if let Some(Reply::Approvals(list)) =
                    self.send(link, out, Request::ListApprovals).await
                {
                    if list.is_empty() {
                        out.notice("-- no approval is waiting in any session");
                    }
                    for p in list {
                        let tool = serde_json::from_str(&p.tool_call).unwrap_or_default();
                        out.notice(&format!("session {}:", p.session));
                        for l in approval_lines(
                            p.approval,
                            &describe_with(&tool, Some(&p.what)),
                            &options(&p.options),
                            &p.cwd,
                        ) {
                            out.notice(&format!("  {l}"));
                        }
                    }
                }
            }
            "grants" => {
                let req = Request::ListGrants {
                    session: Some(self.id),
                };
                if let Some(Reply::Grants(list)) = self.send(link, out, req).await {
                    if list.is_empty() {
                        out.notice("-- no grants in this session");
                    }
                    for g in list {
                        out.notice(&super::grant_line(&g));
                    }
                }
            }
            "help" => {
                let mut text = HELP.to_string();
                if !t.commands().is_empty() {
                    text.push_str("\nthe agent's own commands (sent to it as prompts):");
                    for (name, desc) in t.commands() {
                        text.push_str(&format!("\n  /{name:<10} {desc}"));
                    }
                }
                out.notice(&text);
            }
            name if t.commands().iter().any(|(n, _)| n == name) => {
                self.prompt(link, out, line.to_string()).await;
            }
            _ => {
                out.notice(&format!(
                    "-- /{} is not a command of peer or of the agent (/help lists them); \
                     send \"{}\" to the agent as a prompt? (`//…` sends it without asking)",
                    inline(cmd),
                    inline(line)
                ));
                self.confirm = Some(line.to_string());
            }
        }
        Done::Stay
    }
}
