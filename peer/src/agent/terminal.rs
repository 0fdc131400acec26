//! The processes behind the ACP client's `terminal/*` methods: the host runs commands for an
//! agent, in the session's worktree (only when a person approved them in the same turn: the
//! gate is in [`super::grants`] and [`super::approvals`]).
//!
//! [`Terminals`] owns one session's command processes: each runs in its own process group with
//! stdin closed, stdout and stderr going into one bounded buffer (the newest bytes are kept, as
//! ACP's `outputByteLimit` asks), and is killed when released, when the turn is cancelled, and
//! when the session ends (the `Terminals` value is dropped). Nothing here blocks the caller:
//! waiting for an exit is a task that answers when the process is gone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

/// Largest output buffer of one terminal, bytes (also when the agent asks for more).
pub const MAX_OUTPUT: usize = 1024 * 1024;
/// Terminals one session may hold at once (created and not yet released).
pub const MAX_TERMINALS: usize = 16;
/// Most arguments of one command.
pub const MAX_ARGS: usize = 4096;
/// How long output still drains after the command's process exited (children may hold the
/// pipes open).
const DRAIN: Duration = Duration::from_millis(500);

/// Why a terminal request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TermError {
    /// No such terminal (never created, or released).
    #[error("no terminal {0:?} (unknown or released)")]
    Unknown(String),
    /// The request is not acceptable.
    #[error("{0}")]
    Bad(String),
    /// The process could not be started.
    #[error("cannot start {0:?}: {1}")]
    Spawn(String, String),
}

/// How a command ended: ACP's `TerminalExitStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// The exit code, if it exited.
    pub code: Option<u32>,
    /// The signal's name (`SIGKILL`), if a signal ended it.
    pub signal: Option<String>,
}

impl ExitInfo {
    fn of(st: std::io::Result<std::process::ExitStatus>) -> ExitInfo {
        use std::os::unix::process::ExitStatusExt;
        match st {
            Ok(s) => ExitInfo {
                code: s.code().map(|c| c as u32),
                signal: s.signal().map(|n| {
                    nix::sys::signal::Signal::try_from(n)
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|_| format!("signal {n}"))
                }),
            },
            Err(_) => ExitInfo {
                code: None,
                signal: None,
            },
        }
    }
}

/// The newest `limit` bytes of a command's output.
#[derive(Debug)]
struct OutBuf {
    data: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl OutBuf {
    fn new(limit: usize) -> OutBuf {
        OutBuf {
            data: Vec::new(),
            limit,
            truncated: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        if self.data.len() > self.limit {
            let cut = self.data.len() - self.limit;
            self.data.drain(..cut);
            self.truncated = true;
        }
    }

    /// The text, starting at a character boundary when the front was cut.
    fn text(&self) -> (String, bool) {
        let mut start = 0;
        if self.truncated {
            while start < self.data.len() && start < 4 && (self.data[start] & 0xC0) == 0x80 {
                start += 1;
            }
        }
        (
            String::from_utf8_lossy(&self.data[start..]).into_owned(),
            self.truncated,
        )
    }
}

#[derive(Debug)]
struct Term {
    /// The command's process group (0: unknown).
    pgid: u32,
    out: Arc<Mutex<OutBuf>>,
    exit: watch::Receiver<Option<ExitInfo>>,
    task: AbortHandle,
}

impl Term {
    /// SIGKILL to the command's process group: the command and whatever it started in the
    /// background (the group outlives its leader while members are left).
    fn kill(&self) {
        crate::util::signal_group(self.pgid, Signal::SIGKILL);
    }
}

/// What `terminal/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    /// Program.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory (default: the worktree); must be inside the worktree.
    pub cwd: Option<PathBuf>,
    /// `outputByteLimit`.
    pub output_limit: Option<u64>,
}

/// One session's terminals.
#[derive(Debug)]
pub struct Terminals {
    cwd: PathBuf,
    root: PathBuf,
    next: u64,
    live: HashMap<String, Term>,
    tasks: JoinSet<()>,
}

impl Terminals {
    /// Terminals whose commands run inside `root` (the session's worktree), by default in
    /// `cwd` (the agent's working directory: the worktree or a directory inside it).
    pub fn new(cwd: PathBuf, root: PathBuf) -> Terminals {
        Terminals {
            cwd,
            root,
            next: 1,
            live: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Terminals created and not released.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Resolves the working directory: the agent's working directory by default; a relative
    /// path is taken from there; after resolving links it must be inside the worktree.
    pub async fn resolve_cwd(&self, cwd: Option<&Path>) -> Result<PathBuf, TermError> {
        let root = tokio::fs::canonicalize(&self.root)
            .await
            .map_err(|e| TermError::Bad(format!("the worktree is gone: {e}")))?;
        let base = tokio::fs::canonicalize(&self.cwd)
            .await
            .unwrap_or(root.clone());
        let want = match cwd {
            None => base,
            Some(c) if c.is_absolute() => c.to_path_buf(),
            Some(c) => base.join(c),
        };
        let real = tokio::fs::canonicalize(&want)
            .await
            .map_err(|e| TermError::Bad(format!("cwd {}: {e}", want.display())))?;
        if !real.starts_with(&root) {
            return Err(TermError::Bad(format!(
                "cwd {} is outside the session's worktree {}",
                want.display(),
                root.display()
            )));
        }
        Ok(real)
    }

    /// Starts a command; the answer is the terminal id. The caller checked the approval and
    /// resolved `cwd` with [`Terminals::resolve_cwd`].
    pub fn create(&mut self, req: Spawn, cwd: PathBuf) -> Result<String, TermError> {
        self.reap();
        if self.live.len() >= MAX_TERMINALS {
            return Err(TermError::Bad(format!(
                "at most {MAX_TERMINALS} terminals per session; release one first"
            )));
        }
        if req.command.is_empty() || req.command.contains('\0') {
            return Err(TermError::Bad("empty or invalid command".into()));
        }
        if req.args.len() > MAX_ARGS || req.args.iter().any(|a| a.contains('\0')) {
            return Err(TermError::Bad("too many or invalid arguments".into()));
        }
        if req
            .env
            .iter()
            .any(|(k, v)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0'))
        {
            return Err(TermError::Bad("invalid environment variable".into()));
        }
        let limit = req
            .output_limit
            .map_or(MAX_OUTPUT, |l| (l.min(MAX_OUTPUT as u64)) as usize);
        let mut cmd = tokio::process::Command::new(&req.command);
        cmd.args(&req.args)
            .envs(req.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| TermError::Spawn(req.command.clone(), e.to_string()))?;
        let pgid = child.id().unwrap_or(0);
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(TermError::Spawn(req.command, "no pipes".into()));
        };
        let out = Arc::new(Mutex::new(OutBuf::new(limit)));
        let (exit_tx, exit) = watch::channel(None);
        let task = self
            .tasks
            .spawn(run(child, stdout, stderr, out.clone(), exit_tx));
        let id = format!("term-{}", self.next);
        self.next += 1;
        self.live.insert(
            id.clone(),
            Term {
                pgid,
                out,
                exit,
                task,
            },
        );
        Ok(id)
    }

    fn get(&self, id: &str) -> Result<&Term, TermError> {
        self.live
            .get(id)
            .ok_or_else(|| TermError::Unknown(id.to_string()))
    }

    /// `terminal/output`: the output so far, whether its front was cut, and the exit status if
    /// the command has ended.
    pub fn output(&self, id: &str) -> Result<(String, bool, Option<ExitInfo>), TermError> {
        let t = self.get(id)?;
        let (text, truncated) = t.out.lock().text();
        Ok((text, truncated, t.exit.borrow().clone()))
    }

    /// `terminal/wait_for_exit`: calls `reply` once the command ended (or with an error if the
    /// terminal is released or the session ends first). Returns at once.
    pub fn wait(
        &mut self,
        id: &str,
        reply: impl FnOnce(Result<ExitInfo, TermError>) + Send + 'static,
    ) {
        self.reap();
        let mut rx = match self.get(id) {
            Ok(t) => t.exit.clone(),
            Err(e) => return reply(Err(e)),
        };
        let id = id.to_string();
        self.tasks.spawn(async move {
            let r = match rx.wait_for(Option::is_some).await {
                Ok(v) => v.clone().ok_or_else(|| TermError::Unknown(id.clone())),
                Err(_) => Err(TermError::Unknown(id)),
            };
            reply(r);
        });
    }

    /// `terminal/kill`: kills the command's process group; the terminal stays until released.
    pub fn kill(&self, id: &str) -> Result<(), TermError> {
        self.get(id)?.kill();
        Ok(())
    }

    /// `terminal/release`: kills the command if it still runs and forgets the terminal.
    pub fn release(&mut self, id: &str) -> Result<(), TermError> {
        let t = self
            .live
            .remove(id)
            .ok_or_else(|| TermError::Unknown(id.to_string()))?;
        t.kill();
        t.task.abort();
        self.reap();
        Ok(())
    }

    /// Kills every running command (a cancelled turn); the terminals stay until released.
    pub fn kill_all(&self) {
        for t in self.live.values() {
            t.kill();
        }
    }
}

impl Drop for Terminals {
    fn drop(&mut self) {
        // The tasks are aborted when the JoinSet drops (which kills the direct children);
        // the process groups take the rest.
        for t in self.live.values() {
            t.kill();
        }
    }
}

async fn pump(mut r: impl AsyncRead + Unpin, out: Arc<Mutex<OutBuf>>) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        out.lock().push(&buf[..n]);
    }
}

async fn run(
    mut child: tokio::process::Child,
    stdout: tokio::process::ChildStdout,
    stderr: tokio::process::ChildStderr,
    out: Arc<Mutex<OutBuf>>,
    exit: watch::Sender<Option<ExitInfo>>,
) {
    let readers = async {
        tokio::join!(pump(stdout, out.clone()), pump(stderr, out.clone()));
    };
    tokio::pin!(readers);
    let mut drained = false;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st,
            _ = &mut readers, if !drained => drained = true,
        }
    };
    if !drained {
        let _ = tokio::time::timeout(DRAIN, &mut readers).await;
    }
    let _ = exit.send(Some(ExitInfo::of(status)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn output_keeps_the_newest_bytes_at_a_character_boundary() {
        let mut b = OutBuf::new(8);
        b.push(b"abc");
        assert_eq!(b.text(), ("abc".into(), false));
        b.push("défghij".as_bytes());
        let (t, cut) = b.text();
        assert!(cut);
        assert!(t.len() <= 8 && "abcdéfghij".ends_with(&t), "{t}");
        // Cutting inside the two-byte 'é' drops its tail byte instead of a U+FFFD.
        let mut b = OutBuf::new(7);
        b.push("aé123456".as_bytes());
        assert_eq!(b.text(), ("123456".into(), true));
    }

    fn repo() -> (tempfile::TempDir, Terminals) {
        let d = tempfile::tempdir().expect("tmp");
        let t = Terminals::new(d.path().to_path_buf(), d.path().to_path_buf());
        (d, t)
    }

    fn sh(script: &str) -> Spawn {
        Spawn {
            command: "/bin/sh".into(),
            args: sv(&["-c", script]),
            ..Spawn::default()
        }
    }

    async fn wait(t: &mut Terminals, id: &str) -> Result<ExitInfo, TermError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        t.wait(id, move |r| {
            let _ = tx.send(r);
        });
        tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .expect("in time")
            .expect("answer")
    }

    #[tokio::test]
    async fn a_command_runs_in_the_worktree_and_reports_output_and_status() {
        let (d, mut t) = repo();
        let cwd = t.resolve_cwd(None).await.expect("cwd");
        let mut req = sh("pwd; echo out; echo err >&2; touch made; exit 3");
        req.env = vec![("PEER_T".into(), "v".into())];
        let id = t.create(req, cwd.clone()).expect("create");
        let st = wait(&mut t, &id).await.expect("exit");
        assert_eq!(
            st,
            ExitInfo {
                code: Some(3),
                signal: None
            }
        );
        let (text, cut, st2) = t.output(&id).expect("output");
        assert!(!cut);
        assert_eq!(st2, Some(st));
        assert!(text.contains(&cwd.to_string_lossy().into_owned()), "{text}");
        assert!(text.contains("out") && text.contains("err"), "{text}");
        assert!(d.path().join("made").exists());
        let id2 = t.create(sh("printf %s \"$PEER_T\""), cwd).expect("create");
        wait(&mut t, &id2).await.expect("exit");
        // env only for the one that asked
        assert_eq!(t.output(&id2).expect("out").0, "");
        t.release(&id).expect("release");
        assert_eq!(t.output(&id), Err(TermError::Unknown(id.clone())));
        assert!(t.release(&id).is_err());
    }

    #[tokio::test]
    async fn the_output_limit_truncates_from_the_front() {
        let (_d, mut t) = repo();
        let cwd = t.resolve_cwd(None).await.expect("cwd");
        let mut req = sh("seq 1 2000");
        req.output_limit = Some(10);
        let id = t.create(req, cwd).expect("create");
        wait(&mut t, &id).await.expect("exit");
        let (text, cut, _) = t.output(&id).expect("output");
        assert!(cut);
        assert_eq!(text, "1999\n2000\n");
    }

    #[tokio::test]
    async fn kill_and_release_end_the_whole_process_group_and_waiters_hear_of_it() {
        let (d, mut t) = repo();
        let cwd = t.resolve_cwd(None).await.expect("cwd");
        let id = t
            .create(sh("sleep 30 & echo $! > child; wait"), cwd.clone())
            .expect("create");
        let child_file = d.path().join("child");
        let start = std::time::Instant::now();
        while !child_file.exists() && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid: i32 = std::fs::read_to_string(&child_file)
            .expect("pid")
            .trim()
            .parse()
            .expect("num");
        assert_eq!(t.output(&id).expect("out").2, None, "still running");
        t.kill(&id).expect("kill");
        let st = wait(&mut t, &id).await.expect("exit");
        assert_eq!(st.signal.as_deref(), Some("SIGKILL"));
        let alive = || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        let start = std::time::Instant::now();
        while alive() && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the background child died with the group");

        // A waiter on a terminal that is released before the exit gets an error.
        let id = t.create(sh("sleep 30"), cwd.clone()).expect("create");
        let (tx, rx) = tokio::sync::oneshot::channel();
        t.wait(&id, move |r| {
            let _ = tx.send(r);
        });
        t.release(&id).expect("release");
        let r = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("in time")
            .expect("answer");
        assert!(r.is_err());

        // Dropping the terminals (the session ends) kills what still runs.
        let id = t
            .create(sh("echo $$ > leader; exec sleep 30"), cwd)
            .expect("create");
        let leader = d.path().join("leader");
        let start = std::time::Instant::now();
        while std::fs::read_to_string(&leader).map_or(true, |s| s.trim().is_empty())
            && start.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid: i32 = std::fs::read_to_string(&leader)
            .expect("pid")
            .trim()
            .parse()
            .expect("num");
        let _ = id;
        drop(t);
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        };
        let start = std::time::Instant::now();
        while alive() && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the command died with the session");
    }

    #[tokio::test]
    async fn cwd_outside_the_worktree_and_bad_requests_are_refused() {
        let (d, mut t) = repo();
        std::fs::create_dir(d.path().join("sub")).expect("mkdir");
        let sub = t.resolve_cwd(Some(Path::new("sub"))).await.expect("sub");
        assert!(sub.ends_with("sub"));
        assert!(t.resolve_cwd(Some(Path::new("/"))).await.is_err());
        assert!(t.resolve_cwd(Some(Path::new("../"))).await.is_err());
        std::os::unix::fs::symlink("/", d.path().join("out")).expect("link");
        assert!(t.resolve_cwd(Some(Path::new("out"))).await.is_err());
        let cwd = t.resolve_cwd(None).await.expect("cwd");
        let err = t
            .create(
                Spawn {
                    command: "/nonexistent/program".into(),
                    ..Spawn::default()
                },
                cwd.clone(),
            )
            .expect_err("spawn fails");
        assert!(matches!(err, TermError::Spawn(..)), "{err:?}");
        let mut bad = sh("true");
        bad.env = vec![("A=B".into(), "x".into())];
        assert!(t.create(bad, cwd.clone()).is_err());
        let mut ids = vec![];
        for _ in 0..MAX_TERMINALS {
            ids.push(t.create(sh("sleep 30"), cwd.clone()).expect("create"));
        }
        assert!(t.create(sh("true"), cwd.clone()).is_err());
        t.kill_all();
        for id in &ids {
            assert_eq!(
                wait(&mut t, id).await.expect("exit").signal.as_deref(),
                Some("SIGKILL")
            );
        }
        t.release(&ids[0]).expect("release");
        assert!(t.create(sh("true"), cwd).is_ok());
    }
}
