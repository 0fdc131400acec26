//! The local terminal during `peer attach`: raw mode with guaranteed restore, keystrokes from
//! a reader thread, window size changes from SIGWINCH.

use std::io::{IsTerminal, Read};

use anyhow::Result;
use peer::proto::WinSize;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// Raw mode for as long as it lives (only when stdin is a terminal).
pub struct Terminal {
    raw: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Terminal {
    /// Enters raw mode if stdin is a terminal; restores it on drop and on panic.
    pub fn setup() -> Result<Terminal> {
        let raw = std::io::stdin().is_terminal();
        if raw {
            crossterm::terminal::enable_raw_mode()?;
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let _ = crossterm::terminal::disable_raw_mode();
                previous(info);
            }));
        }
        Ok(Terminal {
            raw,
            tasks: Vec::new(),
        })
    }

    /// Keystrokes from stdin. Where stdin can be polled (a terminal or a pipe) a task on the
    /// runtime reads it, so a keystroke reaches the connection without waking another thread
    /// (on a virtual machine a wake-up of an idle CPU costs tens of microseconds); elsewhere (a
    /// file, `/dev/null`) a reader thread blocks in `read` and ends with the process.
    pub fn input(&mut self) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(64);
        match polled_stdin() {
            Ok(stdin) => self.tasks.push(tokio::spawn(read_polled(stdin, tx))),
            Err(_) => read_in_thread(tx),
        }
        rx
    }

    /// Window size changes (SIGWINCH).
    pub fn resizes(&mut self) -> Result<mpsc::Receiver<WinSize>> {
        let (tx, rx) = mpsc::channel(4);
        let mut sig =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
        self.tasks.push(tokio::spawn(async move {
            while sig.recv().await.is_some() {
                if let Some(size) = size()
                    && tx.send(size).await.is_err()
                {
                    break;
                }
            }
        }));
        Ok(rx)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if self.raw {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// Stdin opened again, non-blocking, for the runtime to poll. A new open file description:
/// `O_NONBLOCK` on the one stdin shares with the shell would reach the shell too (and stay
/// after an abnormal exit).
fn polled_stdin() -> std::io::Result<AsyncFd<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open("/proc/self/fd/0")?;
    // Fails for what epoll cannot watch (regular files, /dev/null). A `File` owns its one fd
    // for its whole life, what tokio's unsafe replacement of this constructor asks (tokio#8587).
    #[allow(deprecated)]
    AsyncFd::new(file)
}

async fn read_polled(stdin: AsyncFd<std::fs::File>, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(mut ready) = stdin.readable().await else {
            break;
        };
        match ready.try_io(|f| f.get_ref().read(&mut buf)) {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
            // Not readable after all: readiness was cleared, wait again.
            Err(_) => {}
        }
    }
}

fn read_in_thread(tx: mpsc::Sender<Vec<u8>>) {
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 16 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    if spawned.is_err() {
        eprintln!("peer: cannot read the keyboard");
    }
}

/// The terminal's size, if stdout is a terminal.
pub fn size() -> Option<WinSize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(cols, rows)| WinSize { cols, rows })
}

/// Prints a status line between output lines.
pub fn notice(msg: &str) {
    eprint!("\r\n[peer: {msg}]\r\n");
}

/// Stdout written in place. tokio's stdout hands every write to its blocking pool, a thread hop
/// per echoed keystroke; a write to a terminal or pipe returns at once in all but a flood, and
/// in a flood this task has nothing better to do than wait for the terminal.
pub struct DirectStdout(std::io::Stdout);

impl DirectStdout {
    /// The process's stdout.
    pub fn new() -> Self {
        DirectStdout(std::io::stdout())
    }
}

impl tokio::io::AsyncWrite for DirectStdout {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::io::Write;
        let mut out = self.0.lock();
        std::task::Poll::Ready(
            out.write_all(buf)
                .and_then(|_| out.flush())
                .map(|_| buf.len()),
        )
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
