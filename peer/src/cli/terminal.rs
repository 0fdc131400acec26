//! The local terminal during `peer attach`: raw mode with guaranteed restore, keystrokes from
//! a reader thread, window size changes from SIGWINCH.

use std::io::{IsTerminal, Read};

use anyhow::Result;
use peer::proto::WinSize;
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

    /// Keystrokes from stdin. The reader thread blocks in `read`; it ends with the process.
    pub fn input(&self) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(64);
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
