//! The keeper process: `peer __keeper DIR`, its [`Spec`] on stdin. Single-threaded and
//! blocking: a `poll` loop over its socket, the host's link, the program's pidfd and, while no
//! host is attached, the PTY.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use filedescriptor::FileDescriptor;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use portable_pty::{Child, MasterPty};

use super::{Hello, PROTOCOL, Spec, Started, ToHost, ToKeeper, read_frame, send_with_fds};
use crate::proto::ExitInfo;
use crate::pty::ring::SharedRing;
use crate::pty::session::{KILL_GRACE, SpawnError, exit_info, start_process};

/// How often an orphaned keeper looks whether its state directory still exists (and, where
/// the kernel has no pidfd, whether its program has exited).
const TICK: Duration = Duration::from_secs(1);

/// Runs a keeper; `args` are what follows `__keeper` on the command line.
pub fn main(args: &[std::ffi::OsString]) -> ExitCode {
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: peer {} DIR < spec", super::ARG);
        return ExitCode::from(2);
    };
    let mut input = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut input) {
        eprintln!("peer keeper: cannot read its spec: {e}");
        return ExitCode::from(2);
    }
    let spec: Spec = match read_frame(&mut input.as_slice()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("peer keeper: bad spec: {e}");
            return ExitCode::from(2);
        }
    };
    // Its own session: signals for the host's terminal or process group do not reach it (the
    // host reaps it when it ends; if the host goes first, init does).
    let _ = nix::unistd::setsid();
    // Sockets and files it makes are the user's alone.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let keeper = match Keeper::start(&dir, spec) {
        Ok(k) => k,
        Err(e) => {
            answer(&match e {
                SpawnError::NoSuchDir(d) => Started::NoSuchDir(d),
                SpawnError::Exec { program, reason } => Started::Exec { program, reason },
                SpawnError::Pty(e) => Started::Pty(e),
            });
            return ExitCode::FAILURE;
        }
    };
    answer(&Started::Ok);
    quiet_stdio();
    keeper.run();
    ExitCode::SUCCESS
}

/// Writes the one answer the host waits for on stdout.
fn answer(started: &Started) {
    let mut out = io::stdout().lock();
    let _ = super::write_frame(&mut out, started);
    // Before stdout is pointed elsewhere: it buffers what has no newline.
    let _ = out.flush();
}

/// Points stdin, stdout and stderr at /dev/null: the host's pipes must not stay open.
fn quiet_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

struct Keeper {
    spec: Spec,
    socket: PathBuf,
    listener: UnixListener,
    /// Keeps the PTY master open (`fd` is a duplicate for polling and reading).
    _master: Box<dyn MasterPty + Send>,
    fd: FileDescriptor,
    child: Box<dyn Child + Send + Sync>,
    pid: u32,
    pidfd: Option<OwnedFd>,
    ring: SharedRing,
    program: String,
    /// The host's link, while one is attached.
    link: Option<UnixStream>,
    exit: Option<(ExitInfo, u64)>,
    /// The PTY said it has nothing more (all its slave ends are closed).
    pty_done: bool,
    /// A host has taken the session over at least once.
    had_host: bool,
}

impl Keeper {
    fn start(dir: &Path, spec: Spec) -> Result<Keeper, SpawnError> {
        let pty = |what: &str, e: &dyn std::fmt::Display| SpawnError::Pty(format!("{what}: {e}"));
        let socket = super::socket_path(dir, spec.id);
        if UnixStream::connect(&socket).is_ok() {
            return Err(SpawnError::Pty(format!(
                "a keeper for session {} is running already",
                spec.id
            )));
        }
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).map_err(|e| pty("keeper socket", &e))?;
        let ring =
            SharedRing::create(spec.ring_bytes as usize).map_err(|e| pty("output ring", &e))?;
        let started = match start_process(spec.id, &spec.req, &spec.cwd) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&socket);
                return Err(e);
            }
        };
        let pid = started.child.process_id().unwrap_or(0);
        let raw = started
            .master
            .as_raw_fd()
            .ok_or_else(|| SpawnError::Pty("the PTY master has no fd".into()))?;
        let fd = FileDescriptor::dup(&raw).map_err(|e| pty("PTY master", &e))?;
        Ok(Keeper {
            pidfd: pidfd_open(pid),
            program: started.program,
            _master: started.master,
            fd,
            child: started.child,
            pid,
            ring,
            listener,
            socket,
            spec,
            link: None,
            exit: None,
            pty_done: false,
            had_host: false,
        })
    }

    fn hello(&self) -> Hello {
        Hello {
            protocol: PROTOCOL,
            id: self.spec.id,
            name: self.spec.req.name.clone(),
            command: if self.spec.req.command.is_empty() {
                vec![self.program.clone()]
            } else {
                self.spec.req.command.clone()
            },
            cwd: self.spec.cwd.clone(),
            created_at_ms: self.spec.created_at_ms,
            pid: self.pid,
            exit: self.exit.clone(),
        }
    }

    fn run(mut self) {
        loop {
            let orphan = self.link.is_none();
            // Not before the first host has come: until then the program waits on a full
            // PTY, so that the host that started it sees (and holds, for its first attachment)
            // every byte, as for a session of its own.
            let read_pty = orphan && self.had_host && !self.pty_done;
            let watch_child = self.exit.is_none() && self.pidfd.is_some();
            let (ready_listener, ready_link, ready_pty, ready_child) = {
                let mut fds = vec![PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
                if let Some(link) = &self.link {
                    fds.push(PollFd::new(link.as_fd(), PollFlags::POLLIN));
                }
                if read_pty {
                    fds.push(PollFd::new(self.fd.as_fd(), PollFlags::POLLIN));
                }
                if watch_child && let Some(p) = &self.pidfd {
                    fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                }
                // Ticks only while orphaned or without a pidfd; attached with one, it sleeps.
                let timeout = if orphan || (self.exit.is_none() && self.pidfd.is_none()) {
                    PollTimeout::from(TICK.as_millis() as u16)
                } else {
                    PollTimeout::NONE
                };
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return self.hang_up(),
                }
                let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
                let mut it = fds.iter();
                let l = it.next().is_some_and(ready);
                let k = self.link.is_some() && it.next().is_some_and(ready);
                let p = read_pty && it.next().is_some_and(ready);
                let c = watch_child && it.next().is_some_and(ready);
                (l, k, p, c)
            };
            if ready_child || (self.exit.is_none() && self.pidfd.is_none()) {
                self.reap();
            }
            if ready_pty {
                match self.ring.read_pty(&self.fd) {
                    Ok(0) => self.pty_done = true,
                    Ok(n) => self.ring.publish(n),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => self.pty_done = true,
                }
            }
            if ready_link && !self.serve_link() {
                return self.leave();
            }
            if ready_listener {
                self.accept();
            }
            if orphan && !self.socket.exists() {
                // The state directory is gone (uninstalled, or a test's temporary home).
                return self.hang_up();
            }
        }
    }

    /// Records the program's exit if it has exited; tells the host.
    fn reap(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let exit = match self.child.try_wait() {
            Ok(Some(s)) => exit_info(Some(s)),
            Ok(None) => return,
            Err(_) => exit_info(None),
        };
        let at = crate::util::now_ms();
        self.exit = Some((exit.clone(), at));
        if let Some(link) = &self.link
            && super::write_frame(&mut &*link, &ToHost::Exited(exit, at)).is_err()
        {
            self.link = None;
            self.ring.recover();
        }
    }

    /// Reads what the host says; `false` once the keeper should go.
    fn serve_link(&mut self) -> bool {
        let Some(link) = &self.link else {
            return true;
        };
        match read_frame::<ToKeeper>(&mut &*link) {
            Ok(ToKeeper::Rename(name)) => self.spec.req.name = name,
            // The host has the exit; nothing is left to keep.
            Ok(ToKeeper::Done) => return self.exit.is_none(),
            // The host is gone (or let go): keep the program for the next one, starting
            // with what it read and had no time to publish.
            Err(_) => {
                self.link = None;
                self.ring.recover();
            }
        }
        true
    }

    /// Serves a host that connects: the greeting, the PTY and the ring.
    fn accept(&mut self) {
        let Ok((stream, _)) = self.listener.accept() else {
            return;
        };
        if self.link.is_some() || !same_user(&stream) {
            return;
        }
        // Blocking writes of a greeting into an empty socket buffer; a host that never reads
        // is not waited for.
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let fds = [self.fd.as_fd(), self.ring.fd()];
        if send_with_fds(&stream, &self.hello(), &fds).is_ok() {
            let _ = stream.set_write_timeout(None);
            self.link = Some(stream);
            self.had_host = true;
        }
    }

    /// Ends the program's process group (SIGHUP, then SIGKILL), then leaves.
    fn hang_up(mut self) {
        if self.exit.is_none() && self.pid > 0 {
            crate::util::signal_group(self.pid, Signal::SIGHUP);
            let deadline = Instant::now() + KILL_GRACE;
            while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !matches!(self.child.try_wait(), Ok(Some(_))) {
                crate::util::signal_group(self.pid, Signal::SIGKILL);
                let _ = self.child.wait();
            }
            self.exit = Some((
                ExitInfo {
                    code: 1,
                    signal: Some("SIGHUP".into()),
                },
                crate::util::now_ms(),
            ));
        }
        self.leave();
    }

    /// Removes the socket and ends.
    fn leave(self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Whether the process at the other end runs as this user.
fn same_user(stream: &UnixStream) -> bool {
    rustix::net::sockopt::socket_peercred(stream).is_ok_and(|c| c.uid == rustix::process::getuid())
}

/// A descriptor that becomes readable when process `pid` exits (Linux 5.3+).
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}
