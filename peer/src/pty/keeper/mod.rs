//! Session keepers: a small process per PTY session that owns the shell, so that the shell
//! outlives `peer host` (a crash, an OOM kill, an upgrade, `systemctl restart`).
//!
//! The keeper opens the PTY, starts the program on it (the program is the keeper's child) and
//! puts the session's output ring in shared memory ([`super::ring`]). It then hands the PTY
//! master and the ring to the host over a Unix socket (`SCM_RIGHTS`), and the host does all the
//! live I/O itself, exactly as for a session of its own: no keystroke or echo passes through
//! the keeper. While a host is attached the keeper only waits — for its child to exit (it tells
//! the host the status) and for the link to close. When the link closes without a goodbye (the
//! host is gone), the keeper reads the PTY into the ring itself, so the program never blocks on
//! a full terminal, and waits for the next host to connect to its socket and take the PTY and
//! the ring over; byte offsets, the output held and the input sequence numbers applied carry
//! on where they were. Once the program has exited and a host has taken note, the keeper exits.
//! A keeper whose state directory is removed hangs its program up and exits.
//!
//! One keeper per session (as dtach and abduco do) rather than one per user (as tmux's server):
//! a keeper is a single-threaded poll loop with nothing shared, so one that fails loses one
//! shell, and the host adopts each one on its own.
//!
//! Wire (Unix stream socket `<state>/host/keepers/<id>.sock`, mode 0600, same user only):
//! frames of a u32 little-endian length then postcard. On connect the keeper sends [`Hello`]
//! with two descriptors (the PTY master, the ring's memfd); then the keeper sends [`ToHost`] and
//! the host [`ToKeeper`]. A keeper serves one host at a time and closes any other connection.

pub mod serve;

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::ring::SharedRing;
use super::session::SpawnError;
use crate::proto::{CreateSession, ExitInfo, WinSize};

/// The argument that makes `peer` a keeper (`peer __keeper DIR`, the spec on stdin).
pub const ARG: &str = "__keeper";

/// The keeper wire's version (a host refuses a keeper that speaks another).
const PROTOCOL: u32 = 1;

/// Largest frame either side accepts.
const MAX_FRAME: usize = 1 << 20;

/// Most descriptors a frame carries.
const MAX_FDS: usize = 4;

/// How long a host waits for a keeper's greeting.
const HELLO_WAIT: Duration = Duration::from_secs(5);

/// What a keeper is asked to start.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub id: u64,
    pub req: CreateSession,
    pub cwd: String,
    pub ring_bytes: u64,
    pub created_at_ms: u64,
}

/// What a keeper answers on stdout once it has started the program, or failed to.
#[derive(Debug, Serialize, Deserialize)]
enum Started {
    Ok,
    NoSuchDir(String),
    Exec { program: String, reason: String },
    Pty(String),
}

/// A keeper's greeting: the session it keeps (sent with the PTY master and the ring's memfd).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub protocol: u32,
    pub id: u64,
    pub name: Option<String>,
    pub command: Vec<String>,
    pub cwd: String,
    pub created_at_ms: u64,
    pub pid: u32,
    /// The program's exit, if it ended while no host was attached, and when (unix ms).
    pub exit: Option<(ExitInfo, u64)>,
}

/// Keeper → host.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToHost {
    /// The program exited (unix ms).
    Exited(ExitInfo, u64),
}

/// Host → keeper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToKeeper {
    /// The session's display name changed (said again in the next greeting).
    Rename(Option<String>),
    /// The host has the program's exit: the keeper may go.
    Done,
}

/// Where keepers live and what runs them.
#[derive(Debug, Clone)]
pub struct Keepers {
    exe: PathBuf,
    dir: PathBuf,
}

/// A session a keeper handed over: its facts, the PTY master, the ring and the link.
#[derive(Debug)]
pub(crate) struct Kept {
    pub hello: Hello,
    pub master: OwnedFd,
    pub ring: SharedRing,
    pub link: Link,
}

impl Keepers {
    /// Keepers run as `exe __keeper DIR` (`/proc/self/exe` for the running host) with their
    /// sockets in `dir`.
    pub fn new(exe: PathBuf, dir: PathBuf) -> Keepers {
        // Keepers run in `/`: a relative state directory would name another place there.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Keepers { exe, dir }
    }

    /// Where session `id`'s keeper listens.
    pub fn socket(&self, id: u64) -> PathBuf {
        socket_path(&self.dir, id)
    }

    /// Starts a keeper for `spec` and takes the session over from it. Blocks.
    pub(crate) fn spawn(&self, spec: &Spec) -> Result<Kept, SpawnError> {
        let pty = |what: &str, e: &dyn std::fmt::Display| SpawnError::Pty(format!("{what}: {e}"));
        crate::paths::ensure_private_dir(&self.dir).map_err(|e| pty("keeper directory", &e))?;
        let mut child = Command::new(&self.exe)
            .arg(ARG)
            .arg(&self.dir)
            // A long-lived process holds no directory of the host's (an unmount, say).
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| pty("cannot start a session keeper", &e))?;
        let answer = (|| {
            let mut stdin = child
                .stdin
                .take()
                .ok_or_else(|| io::Error::other("no stdin"))?;
            write_frame(&mut stdin, spec)?;
            drop(stdin);
            let mut stdout = child
                .stdout
                .take()
                .ok_or_else(|| io::Error::other("no stdout"))?;
            read_frame::<Started>(&mut stdout)
        })();
        let failed = match answer {
            Ok(Started::Ok) => None,
            Ok(Started::NoSuchDir(d)) => Some(SpawnError::NoSuchDir(d)),
            Ok(Started::Exec { program, reason }) => Some(SpawnError::Exec { program, reason }),
            Ok(Started::Pty(e)) => Some(SpawnError::Pty(e)),
            Err(e) => Some(pty("the session keeper did not start", &e)),
        };
        if let Some(e) = failed {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        match connect(&self.socket(spec.id)) {
            Ok(kept) => {
                // The keeper is this host's child until the host goes: the session reaps it.
                *kept.link.process.lock() = Some(child);
                Ok(kept)
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(pty("cannot reach the session keeper", &e))
            }
        }
    }

    /// Takes over every session whose keeper is alive; removes sockets nobody listens on.
    /// Returns the sessions and one past the highest session id any socket names. Blocks.
    pub(crate) fn adopt_all(&self) -> (Vec<Kept>, u64) {
        let mut kept = Vec::new();
        let mut next = 1;
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (kept, next);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".sock"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            next = next.max(id + 1);
            match connect(&path) {
                Ok(k) if k.hello.id == id => kept.push(k),
                Ok(k) => warn!(
                    socket = %path.display(),
                    "a session keeper says it keeps session {}; left alone", k.hello.id
                ),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) =>
                {
                    debug!(socket = %path.display(), "removing a dead keeper's socket");
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => warn!(socket = %path.display(), "cannot adopt a session: {e}"),
            }
        }
        kept.sort_by_key(|k| k.hello.id);
        (kept, next)
    }
}

/// `dir/<id>.sock`.
pub(crate) fn socket_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.sock"))
}

/// Connects to a keeper and takes its session.
fn connect(path: &Path) -> io::Result<Kept> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(HELLO_WAIT))?;
    let (hello, mut fds): (Hello, Vec<OwnedFd>) = recv_with_fds(&stream)?;
    if hello.protocol != PROTOCOL {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the session keeper speaks version {} (this host: {PROTOCOL})",
                hello.protocol
            ),
        ));
    }
    if fds.len() != 2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the session keeper sent no PTY",
        ));
    }
    let ring = SharedRing::open(fds.remove(1))?;
    let master = fds.remove(0);
    stream.set_read_timeout(None)?;
    Ok(Kept {
        hello,
        master,
        ring,
        link: Link {
            stream,
            write: Mutex::new(()),
            released: AtomicBool::new(false),
            process: Mutex::new(None),
        },
    })
}

/// The host's end of its link to a keeper.
#[derive(Debug)]
pub(crate) struct Link {
    stream: UnixStream,
    /// Frames are written whole, one at a time.
    write: Mutex<()>,
    released: AtomicBool,
    /// The keeper process, when this host started it (reaped once it has gone).
    process: Mutex<Option<std::process::Child>>,
}

/// How the wait for a kept program ended.
#[derive(Debug)]
pub(crate) enum Waited {
    /// It exited (unix ms).
    Exited(ExitInfo, u64),
    /// The host let the session go (it stops; the keeper goes on).
    Released,
    /// The keeper is gone without a word: the exit status will never be known.
    Vanished,
}

impl Link {
    fn send(&self, msg: &ToKeeper) {
        let _g = self.write.lock();
        if let Err(e) = write_frame(&mut &self.stream, msg) {
            debug!("keeper link: {e}");
        }
    }

    /// Tells the keeper the session's new name.
    pub(crate) fn rename(&self, name: Option<String>) {
        self.send(&ToKeeper::Rename(name));
    }

    /// Tells the keeper the exit is taken note of; reaps it if it is this host's child.
    pub(crate) fn done(&self) {
        self.send(&ToKeeper::Done);
        self.reap();
    }

    /// Waits for the keeper process to end, if this host started it (it ends at once after
    /// `Done`, or has ended already).
    pub(crate) fn reap(&self) {
        if let Some(mut p) = self.process.lock().take() {
            let _ = p.wait();
        }
    }

    /// Lets the keeper go on alone (the host stops; it has stopped reading the PTY).
    pub(crate) fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Waits for the program's exit. Blocks.
    pub(crate) fn wait(&self) -> Waited {
        let mut r = &self.stream;
        // `Exited` is the one thing a keeper says after its greeting.
        match read_frame::<ToHost>(&mut r) {
            Ok(ToHost::Exited(exit, at)) => Waited::Exited(exit, at),
            Err(_) if self.released.load(Ordering::SeqCst) => Waited::Released,
            Err(e) => {
                warn!("a session keeper went away: {e}");
                Waited::Vanished
            }
        }
    }
}

/// `msg` as a frame: its length (u32, little-endian), then its postcard.
fn frame<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let body = postcard::to_allocvec(msg).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes one frame.
fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    w.write_all(&frame(msg)?)
}

/// Reads one frame (EOF before one starts is `UnexpectedEof`).
fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    read_body(r, u32::from_le_bytes(len) as usize)
}

fn read_body<T: for<'de> Deserialize<'de>>(r: &mut impl Read, len: usize) -> io::Result<T> {
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a keeper frame of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    postcard::from_bytes(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes one frame with `fds` attached to its first byte.
fn send_with_fds<T: Serialize>(
    stream: &UnixStream,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let frame = frame(msg)?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one frame"));
    }
    let sent = sendmsg(
        stream,
        &[io::IoSlice::new(&frame)],
        &mut control,
        SendFlags::empty(),
    )?;
    // The descriptors went with the first bytes; the rest is plain stream data.
    (&*stream).write_all(&frame[sent..])
}

/// Reads one frame and the descriptors that came with it.
fn recv_with_fds<T: for<'de> Deserialize<'de>>(
    stream: &UnixStream,
) -> io::Result<(T, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut len = [0u8; 4];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        stream,
        &mut [io::IoSliceMut::new(&mut len)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?
    .bytes;
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if got == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    (&*stream).read_exact(&mut len[got..])?;
    let msg = read_body(&mut &*stream, u32::from_le_bytes(len) as usize)?;
    Ok((msg, fds))
}

/// The terminal size of PTY master `fd`.
pub(crate) fn get_size(fd: impl AsFd) -> Option<WinSize> {
    let ws = rustix::termios::tcgetwinsize(fd).ok()?;
    Some(WinSize {
        cols: ws.ws_col,
        rows: ws.ws_row,
    })
}

/// Sets the terminal size of PTY master `fd` (the program gets SIGWINCH).
pub(crate) fn set_size(fd: impl AsFd, size: WinSize) -> io::Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(fd, ws)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_descriptors_and_refuse_giants() {
        let (a, b) = UnixStream::pair().expect("pair");
        let ring = SharedRing::create(64).expect("ring");
        let hello = Hello {
            protocol: PROTOCOL,
            id: 9,
            name: Some("n".into()),
            command: vec!["sh".into()],
            cwd: "/".into(),
            created_at_ms: 1,
            pid: 42,
            exit: None,
        };
        let (r1, w1) = std::io::pipe().expect("pipe");
        send_with_fds(&a, &hello, &[w1.as_fd(), ring.fd()]).expect("send");
        let (got, fds): (Hello, _) = recv_with_fds(&b).expect("recv");
        assert_eq!((got.id, got.pid, fds.len()), (9, 42, 2));
        // The descriptor works: what goes into the pipe's received write end comes out.
        let mut w = std::fs::File::from(fds.into_iter().next().expect("fd"));
        w.write_all(b"x").expect("write");
        let mut r = r1;
        let mut one = [0u8; 1];
        r.read_exact(&mut one).expect("read");
        assert_eq!(&one, b"x");

        (&a).write_all(&u32::MAX.to_le_bytes()).expect("write");
        let err = read_frame::<ToHost>(&mut &b).expect_err("a giant frame");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
