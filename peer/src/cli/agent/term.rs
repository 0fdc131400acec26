//! Where `peer agent attach` reads and writes: on a terminal, a line editor (rustyline: editing,
//! history in `<PEER_HOME>/client/agent-history`) in its own thread, with the transcript printed
//! above the line being typed; otherwise plain lines from stdin and to stdout.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use peer::client::sanitize::inline;
use peer::paths::Paths;
use rustyline::ExternalPrinter;
use rustyline::error::ReadlineError;
use tokio::sync::mpsc;

use super::input::{Line, Typed};

/// Whether both stdin and stdout are a terminal.
pub(super) fn is_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Reads lines from stdin (not a terminal) in a thread that ends with the process.
pub(super) fn read_lines(tx: mpsc::Sender<Typed>) {
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
                let l = line.trim_end_matches(['\n', '\r']).to_string();
                if tx.blocking_send(Line::Text(l)).is_err() {
                    return;
                }
                line.clear();
            }
            let _ = tx.blocking_send(Line::Eof);
        });
    if spawned.is_err() {
        eprintln!("peer: cannot read standard input");
    }
}

/// Where the transcript and notices go.
pub(super) struct Out {
    printer: Option<Box<dyn ExternalPrinter + Send>>,
    history: PathBuf,
    /// The terminal's mode before the editor changed it, restored at the end.
    saved: Option<nix::sys::termios::Termios>,
}

impl Out {
    pub(super) fn new(interactive: bool, paths: &Paths) -> Out {
        let saved = interactive
            .then(|| nix::sys::termios::tcgetattr(std::io::stdin()).ok())
            .flatten();
        Out {
            printer: None,
            history: paths.client_dir().join("agent-history"),
            saved,
        }
    }

    /// Starts the line editor; it reads a line each time it is given a prompt. `None` if it
    /// cannot run (the caller then reads nothing).
    pub(super) fn start_editor(
        &mut self,
        tx: mpsc::Sender<Typed>,
    ) -> Option<std::sync::mpsc::Sender<Option<String>>> {
        let (prompt_tx, prompt_rx) = std::sync::mpsc::channel::<Option<String>>();
        let (printer_tx, printer_rx) = std::sync::mpsc::channel();
        let history = self.history.clone();
        let spawned = std::thread::Builder::new()
            .name("line-editor".into())
            .spawn(move || {
                let config = rustyline::Config::builder()
                    .auto_add_history(true)
                    .max_history_size(1000)
                    .and_then(|b| b.history_ignore_dups(true))
                    .map(|b| b.history_ignore_space(true).build());
                let editor = config.and_then(rustyline::DefaultEditor::with_config);
                let mut rl = match editor {
                    Ok(rl) => rl,
                    Err(e) => {
                        let _ = printer_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                if let Some(dir) = history.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = rl.load_history(&history);
                match rl.create_external_printer() {
                    Ok(p) => {
                        let _ = printer_tx.send(Ok(Box::new(p) as Box<dyn ExternalPrinter + Send>));
                    }
                    Err(e) => {
                        let _ = printer_tx.send(Err(e.to_string()));
                        return;
                    }
                }
                while let Ok(Some(prompt)) = prompt_rx.recv() {
                    let typed = match rl.readline(&prompt) {
                        Ok(l) => Line::Text(l),
                        Err(ReadlineError::Interrupted) => Line::Interrupt,
                        Err(_) => Line::Eof,
                    };
                    let eof = matches!(typed, Line::Eof);
                    if tx.blocking_send(typed).is_err() || eof {
                        break;
                    }
                    let _ = rl.save_history(&history);
                }
                let _ = rl.save_history(&history);
            });
        if spawned.is_err() {
            eprintln!("peer: cannot start the line editor");
            return None;
        }
        match printer_rx.recv() {
            Ok(Ok(p)) => {
                self.printer = Some(p);
                Some(prompt_tx)
            }
            Ok(Err(e)) => {
                eprintln!(
                    "peer: the line editor cannot run ({}); reading plain lines",
                    inline(&e)
                );
                None
            }
            Err(_) => None,
        }
    }

    /// A line of the transcript. On stdout an error (a closed pipe) ends the attach.
    pub(super) fn line(&mut self, s: &str) -> std::io::Result<()> {
        match &mut self.printer {
            Some(p) => {
                let _ = p.print(format!("{s}\n"));
                Ok(())
            }
            None => {
                let mut o = std::io::stdout().lock();
                writeln!(o, "{s}")?;
                o.flush()
            }
        }
    }

    /// A line for the person: above the prompt on a terminal, else on stderr.
    pub(super) fn notice(&mut self, s: &str) {
        match &mut self.printer {
            Some(p) => {
                let _ = p.print(format!("{s}\n"));
            }
            None => eprintln!("{s}"),
        }
    }

    /// Gives the terminal back as it was.
    pub(super) fn close(&mut self) {
        self.printer = None;
        if let Some(saved) = self.saved.take() {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &saved,
            );
            let mut o = std::io::stdout();
            let _ = o.write_all(b"\r\n");
            let _ = o.flush();
        }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.close();
    }
}
