//! A `peer` command in a real pseudo-terminal, with a terminal emulator (vt100) reading what
//! reaches the terminal: the screen and its scrollback, the window title, and what was asked
//! to go to the clipboard (OSC 52) or set as a title.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// What the emulated terminal was asked to do besides drawing.
#[derive(Debug, Default, Clone)]
pub struct Requests {
    /// Window titles set (OSC 0 / 2).
    pub titles: Vec<String>,
    /// Icon names set (OSC 1).
    pub icons: Vec<String>,
    /// Clipboard writes (OSC 52).
    pub clipboard: Vec<String>,
    /// Bells.
    pub bells: usize,
}

impl vt100::Callbacks for Requests {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.titles
            .push(String::from_utf8_lossy(title).into_owned());
    }
    fn set_window_icon_name(&mut self, _: &mut vt100::Screen, name: &[u8]) {
        self.icons.push(String::from_utf8_lossy(name).into_owned());
    }
    fn copy_to_clipboard(&mut self, _: &mut vt100::Screen, _ty: &[u8], data: &[u8]) {
        self.clipboard
            .push(String::from_utf8_lossy(data).into_owned());
    }
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.bells += 1;
    }
}

/// A command running in a pseudo-terminal of `cols` × `rows`.
pub struct PtyRun {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    raw: Arc<Mutex<Vec<u8>>>,
    rows: u16,
    cols: u16,
}

impl PtyRun {
    /// Starts `peer ARGS` with `PEER_HOME=home` (and without `RUST_LOG`, as a person runs it).
    pub fn peer(home: &Path, args: &[&str], cols: u16, rows: u16) -> PtyRun {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(crate::peer_binary());
        cmd.args(args);
        cmd.env("PEER_HOME", home);
        cmd.env("PEER_KEY_STORE", "file");
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("RUST_LOG");
        cmd.env_remove("XDG_STATE_HOME");
        let child = pty.slave.spawn_command(cmd).expect("spawn in pty");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("reader");
        let writer = pty.master.take_writer().expect("writer");
        let raw = Arc::new(Mutex::new(Vec::new()));
        let r2 = raw.clone();
        // The master must outlive the reader: keep it in the thread.
        let master = pty.master;
        std::thread::spawn(move || {
            let _master = master;
            let mut buf = [0u8; 16 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => r2.lock().expect("lock").extend_from_slice(&buf[..n]),
                }
            }
        });
        PtyRun {
            child,
            writer,
            raw,
            rows,
            cols,
        }
    }

    /// Every byte that reached the terminal so far.
    pub fn raw(&self) -> Vec<u8> {
        self.raw.lock().expect("lock").clone()
    }

    /// The terminal after all of it: screen, scrollback and requests.
    pub fn emulate(&self) -> vt100::Parser<Requests> {
        let nz = |n: u16| std::num::NonZeroU16::new(n.max(1)).expect("non-zero");
        let mut p = vt100::Parser::new_with_callbacks(
            nz(self.rows),
            nz(self.cols),
            10_000,
            Requests::default(),
        );
        p.process(&self.raw());
        p
    }

    /// Every line the terminal holds, scrollback included, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let mut p = self.emulate();
        let screen = p.screen_mut();
        let back = screen.scrollback_len();
        let mut out = Vec::new();
        // Scrolled-off lines, oldest first, then the visible screen.
        for offset in (1..=back).rev() {
            screen.set_scrollback(offset);
            if let Some(l) = screen.rows(0, self.cols).next() {
                out.push(l.trim_end().to_string());
            }
        }
        screen.set_scrollback(0);
        out.extend(screen.rows(0, self.cols).map(|l| l.trim_end().to_string()));
        out
    }

    /// Types `s`.
    pub fn type_str(&mut self, s: &str) {
        self.writer.write_all(s.as_bytes()).expect("type");
        self.writer.flush().expect("flush");
    }

    /// Waits until the terminal's text (scrollback included) contains `needle`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines().join("\n").contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {needle:?}; the terminal shows:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the command to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "did not exit; the terminal shows:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtyRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
