//! The display against a terminal (the screen model again, fed what the display and the
//! notices write), through an outage: keys typed while the link is down are drawn on the
//! cursor's line wherever the notices left it, and at the resume the terminal shows the host's
//! screen again, exactly.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::*;

const SIZE: WinSize = WinSize { cols: 80, rows: 24 };

/// What was written to the terminal, in order (the display's output and the notices).
#[derive(Clone, Default)]
struct Tty(Arc<Mutex<Vec<u8>>>);

impl Tty {
    fn push(&self, b: &[u8]) {
        self.0.lock().expect("lock").extend_from_slice(b);
    }
    /// The terminal's screen: everything written, drawn.
    fn screen(&self) -> Screen {
        let mut s = Screen::new(SIZE, 0);
        s.feed(&self.0.lock().expect("lock"));
        s
    }
    /// A notice as `cli::terminal::notice` writes it.
    fn notice(&self) -> impl FnMut(&str) + Send + 'static {
        let t = self.clone();
        move |msg: &str| t.push(format!("\r\n[peer: {msg}]\r\n").as_bytes())
    }
}

impl AsyncWrite for Tty {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        self.push(b);
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

use std::io;

/// The host's bytes so far, and a display showing them with guesses.
struct Rig {
    tty: Tty,
    display: Display,
    host: Vec<u8>,
}

impl Rig {
    /// A shell prompt after `before` (bytes of output), where "a" was typed and confirmed:
    /// guesses show.
    async fn new(before: &str) -> Rig {
        let tty = Tty::default();
        let mut display = Display::new(Box::new(tty.clone()), PredictMode::Always, None);
        display.attached(0, SIZE).await.expect("attached");
        let mut r = Rig {
            tty,
            display,
            host: Vec::new(),
        };
        r.output(&format!("{before}$ ")).await;
        r.ack(0).await;
        r.display.typed(1, b"a").await.expect("typed");
        r.output("a").await;
        r.ack(1).await;
        r
    }
    async fn output(&mut self, s: &str) {
        self.host.extend_from_slice(s.as_bytes());
        self.display.output(s.as_bytes()).await.expect("output");
    }
    /// The host's echo ack for inputs up to `seq` (a shell's line editor).
    async fn ack(&mut self, seq: u64) {
        let a = EchoAck {
            seq,
            offset: self.host.len() as u64,
            echo: false,
            canonical: false,
        };
        self.display.echo_ack(a).await.expect("echo ack");
    }
    async fn notice(&mut self, msg: &str) {
        let mut n = self.tty.notice();
        self.display.notice(msg, &mut n).await.expect("notice");
    }
    /// What the host's bytes alone draw.
    fn reference(&self) -> Screen {
        let mut s = Screen::new(SIZE, 0);
        s.feed(&self.host);
        s
    }
}

/// The prompt on the first line: the notices go below it.
#[tokio::test]
async fn keys_typed_while_reconnecting_show_and_the_screen_is_the_hosts_at_the_resume() {
    let mut r = Rig::new("").await;
    r.display.link_down();
    r.notice("connection lost (timed out); reconnecting").await;
    r.display.typed(2, b"bc").await.expect("typed");
    let t = r.tty.screen();
    assert_eq!(
        t.row_text(0).trim_end(),
        "$ abc",
        "the guesses on the prompt's line"
    );
    assert_eq!(
        t.row_text(1).trim_end(),
        "[peer: connection lost (timed out); reconnecting]"
    );
    assert_eq!(t.cursor_at(), (0, 5), "the cursor after them");
    r.notice("still reconnecting (timed out)").await;
    let t = r.tty.screen();
    // Under the last, as they always came.
    assert_eq!(
        t.row_text(3).trim_end(),
        "[peer: still reconnecting (timed out)]"
    );
    assert_eq!(t.row_text(0).trim_end(), "$ abc");
    r.notice("reconnected; output resumed").await;
    r.display.attached(3, SIZE).await.expect("attached");
    let t = r.tty.screen();
    assert_eq!(t.text().trim_end(), "$ abc", "the notices drawn over");
    assert_eq!(t.cursor_at(), (0, 5));
    // The host's echo of the keys sent after the resume confirms them.
    r.output("bc").await;
    r.ack(3).await;
    let t = r.tty.screen();
    assert_eq!(t.text(), r.reference().text());
    assert_eq!(t.cursor_at(), r.reference().cursor_at());
    assert_eq!(r.display.stats().wrong, 0);
    assert_eq!(r.display.stats().confirmed, 3);
}

/// The prompt on the last line: the notices scroll the terminal, and the guesses are drawn on
/// the prompt's line where it went.
#[tokio::test]
async fn notices_that_scroll_the_terminal_take_the_guesses_along() {
    let mut r = Rig::new(&"x\r\n".repeat(23)).await;
    assert_eq!(r.tty.screen().cursor_at(), (23, 3));
    r.display.link_down();
    r.notice("connection lost (timed out); reconnecting").await;
    r.display.typed(2, b"bc").await.expect("typed");
    let t = r.tty.screen();
    assert_eq!(t.row_text(21).trim_end(), "$ abc");
    assert_eq!(
        t.row_text(22).trim_end(),
        "[peer: connection lost (timed out); reconnecting]"
    );
    assert_eq!(t.cursor_at(), (21, 5));
    // A notice wider than the terminal.
    r.notice(&"w".repeat(100)).await;
    let t = r.tty.screen();
    assert_eq!(t.row_text(18).trim_end(), "$ abc");
    assert_eq!(t.cursor_at(), (18, 5));
    let at = r.host.len() as u64;
    r.display.attached(at, SIZE).await.expect("attached");
    let t = r.tty.screen();
    let mut with_guesses = r.reference();
    with_guesses.feed(b"bc");
    assert_eq!(t.text(), with_guesses.text());
    assert_eq!(t.cursor_at(), (23, 5));
    r.output("bc").await;
    r.ack(3).await;
    assert_eq!(r.tty.screen().text(), r.reference().text());
    assert_eq!(r.display.stats().wrong, 0);
}

/// A resume that finds another session, or none, ends the attachment: the guesses are taken
/// back, and the cursor goes under the notices for what is said next.
#[tokio::test]
async fn guesses_made_while_reconnecting_go_when_the_attachment_ends() {
    let mut r = Rig::new("").await;
    r.display.link_down();
    r.notice("connection lost (timed out); reconnecting").await;
    r.display.typed(2, b"bc").await.expect("typed");
    assert_eq!(r.tty.screen().row_text(0).trim_end(), "$ abc");
    r.display.finish().await.expect("finish");
    let t = r.tty.screen();
    assert_eq!(t.row_text(0).trim_end(), "$ a");
    assert_eq!(t.cursor_at(), (2, 0));
}
