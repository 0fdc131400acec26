//! What `peer attach` writes to the terminal: the session's output as it comes, pictures of the
//! screen from the host (after resetting the terminal), and predicted echo drawn over the
//! output and taken back before the next output is written.
//!
//! With prediction on, the display keeps a model of the host's screen (the output without the
//! guesses) to know where the cursor is and what a guess covered.
//!
//! While the link is down ([`Display::link_down`]) keys typed are still guessed and drawn.
//! The notices of the outage ([`Display::notice`]) are written below the cursor's line, and may
//! scroll the terminal: the display works out where they leave the screen and draws the guesses
//! on the cursor's line wherever it went. Once the attachment resumes from where the model is
//! ([`Display::attached`]), it draws the model's screen over the terminal's, notices and all, so
//! that the terminal shows the host's screen again, exactly, and the guesses and the host's
//! output land where the model has them.

use std::collections::VecDeque;
use std::time::Instant;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use unicode_width::UnicodeWidthStr;

use super::predict::{Overlay, PredictMode, Predictor, Stats, View};
use crate::proto::{EchoAck, Repaint, WinSize};
use crate::pty::screen::Screen;

/// Written before a picture: puts a terminal in the state the picture expects (a freshly reset
/// terminal), without RIS, so the terminal's own scrollback stays: the main screen, default
/// pen, no scroll region, modes off (origin, insert, line feed/new line, application keys,
/// bracketed paste, mouse reporting, focus events), autowrap on, ASCII character sets, a
/// visible default cursor, then home and clear.
pub const RESET: &[u8] = b"\x1b[?1049l\x1b[0m\x1b[r\x1b[?6l\x1b[?7h\x1b[4l\x1b[20l\x1b[?1l\x1b>\
\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1004l\x1b[?1005l\x1b[?1006l\x1b[?1015l\
\x1b(B\x1b)B\x0f\x1b[?25h\x1b[0 q\x1b[H\x1b[2J";

/// The largest picture accepted (the host draws at most 4 MiB).
const MAX_PICTURE: usize = 8 << 20;

impl View for Screen {
    fn dims(&self) -> (usize, usize) {
        let s = self.size();
        (usize::from(s.rows), usize::from(s.cols))
    }
    fn cursor_at(&self) -> (usize, usize) {
        let (r, c, _) = self.cursor();
        (r, c)
    }
    fn char_at(&self, row: usize, col: usize) -> Option<char> {
        Screen::char_at(self, row, col)
    }
    fn plain(&self) -> bool {
        Screen::plain(self)
    }
}

/// Predicted echo: the model, the engine, and what of its guesses is on the terminal.
struct Echo {
    model: Screen,
    predictor: Predictor,
    drawn: Overlay,
    /// Echo acks whose offset the model has not reached yet.
    acks: VecDeque<EchoAck>,
    /// Inputs sent and not yet acknowledged, with when (for round-trip samples).
    sent: VecDeque<(u64, Instant)>,
    /// The link is down (since [`Display::link_down`], until [`Display::attached`]).
    down: bool,
    /// Rows the terminal scrolled under the notices written while the link is down: the
    /// model's row `r` is on the terminal's row `r - shift`.
    shift: usize,
    /// The terminal's row where the last of those notices left the cursor (the next starts
    /// there).
    below: Option<usize>,
}

/// A picture being received.
struct Picture {
    offset: u64,
    size: WinSize,
    data: Vec<u8>,
}

/// A completed picture: where the output continues, and how much of it was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repainted {
    /// The output offset it stands for.
    pub offset: u64,
    /// Bytes of output it stands in for.
    pub skipped: u64,
}

/// The terminal side of an attachment.
pub struct Display {
    out: Box<dyn AsyncWrite + Unpin + Send>,
    picture: Option<Picture>,
    /// Before the first picture, push what the terminal shows into its scrollback.
    push_first: Option<u16>,
    echo: Option<Echo>,
    mode: PredictMode,
}

impl std::fmt::Debug for Display {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Display")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn cup(out: &mut Vec<u8>, (row, col): (usize, usize)) {
    out.extend_from_slice(format!("\x1b[{};{}H", row + 1, col + 1).as_bytes());
}

impl Display {
    /// Writes to `out`. `push_first`: rows of the local terminal, whose content the first
    /// picture pushes into its scrollback instead of clearing it away.
    pub fn new(
        out: Box<dyn AsyncWrite + Unpin + Send>,
        mode: PredictMode,
        push_first: Option<u16>,
    ) -> Display {
        Display {
            out,
            picture: None,
            push_first,
            echo: None,
            mode,
        }
    }

    /// The attachment starts (again) with output at `offset` for a screen of `size`. A model
    /// that is not exactly there is started afresh (it is exact from a picture or from
    /// offset 0 on); one that is goes on, with the guesses made while the link was down, and
    /// is drawn over the notices of the outage.
    pub async fn attached(&mut self, offset: u64, size: WinSize) -> std::io::Result<()> {
        if self.mode == PredictMode::Never {
            return Ok(());
        }
        match &mut self.echo {
            Some(e) if e.model.fed() == offset => {
                // Keys typed while the link was down were never sent: no round-trip samples
                // from them. Echo acks are per connection.
                e.sent.clear();
                e.acks.clear();
                let mut buf = Vec::new();
                e.resumed(&mut buf);
                self.write(&buf).await
            }
            _ => {
                let mut buf = Vec::new();
                if let Some(e) = &mut self.echo {
                    // The old model's guesses go with it.
                    e.erase(&mut buf);
                    if let Some(row) = e.below {
                        cup(&mut buf, (row, 0));
                    }
                }
                self.echo = Some(Echo {
                    model: Screen::at(size, 0, offset),
                    predictor: Predictor::new(self.mode),
                    drawn: Overlay::default(),
                    acks: VecDeque::new(),
                    sent: VecDeque::new(),
                    down: false,
                    shift: 0,
                    below: None,
                });
                self.write(&buf).await
            }
        }
    }

    /// The connection is lost (the attachment reconnects): what is typed until
    /// [`Display::attached`] is guessed and shown as ever, and answered after the resume.
    pub fn link_down(&mut self) {
        if let Some(e) = &mut self.echo {
            e.down = true;
            e.predictor.link_down();
        }
    }

    /// Writes a notice of the outage through `notice`, which writes `\r\n[peer: msg]\r\n` to
    /// the same terminal (`cli::terminal::notice`). While the link is down the guesses are
    /// taken back around it and drawn again where the notice left the cursor's line; otherwise
    /// the notice is written as it comes.
    pub async fn notice(
        &mut self,
        msg: &str,
        notice: &mut (dyn FnMut(&str) + Send),
    ) -> std::io::Result<()> {
        let Some(e) = self.echo.as_mut().filter(|e| e.down) else {
            notice(msg);
            return Ok(());
        };
        let mut buf = Vec::new();
        let start = e
            .erase_under_notice(&mut buf)
            .unwrap_or_else(|| e.model.cursor_at().0.saturating_sub(e.shift));
        self.write(&buf).await?;
        notice(msg);
        let Some(e) = &mut self.echo else {
            return Ok(());
        };
        let (rows, cols) = e.model.dims();
        let width = UnicodeWidthStr::width(format!("[peer: {msg}]").as_str());
        // "\r\n", the notice's lines, "\r\n".
        let end = start + width.div_ceil(cols.max(1)).max(1) + 1;
        let bottom = rows.saturating_sub(1);
        e.shift += end.saturating_sub(bottom);
        e.below = Some(end.min(bottom));
        let mut buf = Vec::new();
        e.draw(&mut buf);
        self.write(&buf).await
    }

    /// The link went down ([`Display::link_down`]), and why: a notice of the outage
    /// ([`Display::notice`]).
    pub async fn lost(
        &mut self,
        msg: &str,
        notice: &mut (dyn FnMut(&str) + Send),
    ) -> std::io::Result<()> {
        self.link_down();
        self.notice(msg, notice).await
    }

    /// Takes back what is drawn of the guesses, for good (the attachment ends), and leaves the
    /// cursor where the model has it, or under the last notice of an outage.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        let Some(e) = &mut self.echo else {
            return Ok(());
        };
        let mut buf = Vec::new();
        e.erase_under_notice(&mut buf);
        e.predictor.clear();
        self.write(&buf).await
    }

    /// Prediction counters (zero when prediction is off).
    pub fn stats(&self) -> Stats {
        self.echo
            .as_ref()
            .map(|e| e.predictor.stats())
            .unwrap_or_default()
    }

    /// Writes output bytes.
    pub async fn output(&mut self, data: &[u8]) -> std::io::Result<()> {
        let Some(e) = &mut self.echo else {
            return self.write(data).await;
        };
        let mut buf = Vec::with_capacity(data.len() + 64);
        e.erase(&mut buf);
        buf.extend_from_slice(data);
        e.model.feed(data);
        let now = Instant::now();
        e.predictor.output(&e.model, now);
        e.answer_acks();
        e.draw(&mut buf);
        self.write(&buf).await
    }

    /// Part of a picture; returns where the output continues once it is complete.
    pub async fn repaint(&mut self, r: Repaint) -> std::io::Result<Option<Repainted>> {
        let p = self.picture.get_or_insert_with(|| Picture {
            offset: r.offset,
            size: r.size,
            data: Vec::new(),
        });
        if p.offset != r.offset || p.data.len() + r.data.len() > MAX_PICTURE {
            // A new picture started before the last was complete, or one too large: start
            // over with this part.
            p.offset = r.offset;
            p.size = r.size;
            p.data.clear();
        }
        p.data.extend_from_slice(&r.data);
        if r.more {
            return Ok(None);
        }
        let Some(p) = self.picture.take() else {
            return Ok(None);
        };
        let mut buf = Vec::with_capacity(p.data.len() + RESET.len() + 64);
        if let Some(rows) = self.push_first.take() {
            // What the terminal showed goes up into its scrollback.
            buf.extend_from_slice(b"\x1b[999;1H");
            buf.extend(std::iter::repeat_n(b'\n', usize::from(rows)));
        }
        buf.extend_from_slice(RESET);
        buf.extend_from_slice(&p.data);
        if let Some(e) = &mut self.echo {
            e.predictor.clear();
            e.drawn = Overlay::default();
            e.acks.clear();
            // The picture is the model from here on; the output continues at its offset.
            e.model = Screen::new(p.size, 0);
            e.model.feed(&p.data);
            e.model.rebase(p.offset);
        }
        self.write(&buf).await?;
        Ok(Some(Repainted {
            offset: p.offset,
            skipped: r.skipped,
        }))
    }

    /// The user typed `data`, sent as input `seq`: shows what can be guessed of it.
    pub async fn typed(&mut self, seq: u64, data: &[u8]) -> std::io::Result<()> {
        let Some(e) = &mut self.echo else {
            return Ok(());
        };
        let now = Instant::now();
        e.sent.push_back((seq, now));
        if e.sent.len() > 1024 {
            e.sent.pop_front();
        }
        if e.predictor.typed(seq, data, &e.model, now) {
            let mut buf = Vec::new();
            e.erase(&mut buf);
            e.draw(&mut buf);
            return self.write(&buf).await;
        }
        Ok(())
    }

    /// The host acknowledged inputs up to `seq` (a round-trip sample).
    pub fn input_ack(&mut self, seq: u64) {
        let Some(e) = &mut self.echo else {
            return;
        };
        let now = Instant::now();
        while let Some(&(s, at)) = e.sent.front() {
            if s > seq {
                break;
            }
            e.sent.pop_front();
            if s == seq {
                e.predictor.rtt_sample(now.duration_since(at));
            }
        }
    }

    /// The host's echo ack.
    pub async fn echo_ack(&mut self, ack: EchoAck) -> std::io::Result<()> {
        let Some(e) = &mut self.echo else {
            return Ok(());
        };
        e.predictor.line_discipline(ack.echo, ack.canonical);
        e.acks.push_back(ack);
        let mut buf = Vec::new();
        e.erase(&mut buf);
        e.answer_acks();
        e.draw(&mut buf);
        if buf.is_empty() {
            return Ok(());
        }
        self.write(&buf).await
    }

    /// Takes back guesses the host never answered.
    pub async fn tick(&mut self) -> std::io::Result<()> {
        let Some(e) = &mut self.echo else {
            return Ok(());
        };
        if e.predictor.tick(Instant::now()) {
            let mut buf = Vec::new();
            e.erase(&mut buf);
            e.draw(&mut buf);
            return self.write(&buf).await;
        }
        Ok(())
    }

    /// The local terminal was resized (and the session with it).
    pub fn resized(&mut self, size: WinSize) {
        if let Some(e) = &mut self.echo {
            e.predictor.clear();
            e.model.resize(size);
        }
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.out.write_all(data).await?;
        self.out.flush().await
    }

    /// Ends whatever escape sequence the output stopped inside (CAN) and resets the colours,
    /// where output is about to be skipped: written to the terminal only, not to the model of
    /// the host's screen (whose offsets count the host's bytes).
    pub async fn cut(&mut self) -> std::io::Result<()> {
        self.write(b"\x18\x1b[0m").await
    }

    /// Flushes the terminal.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().await
    }
}

impl Echo {
    /// Where the model's cell `at` is on the terminal (`None`: scrolled away under notices).
    fn on_terminal(&self, (row, col): (usize, usize)) -> Option<(usize, usize)> {
        row.checked_sub(self.shift).map(|r| (r, col))
    }

    /// The attachment resumed from where the model is: the model's screen is drawn over what
    /// the notices of the outage did to the terminal's, and the guesses made meanwhile again
    /// on top of it.
    fn resumed(&mut self, out: &mut Vec<u8>) {
        self.erase(out);
        if self.down && self.below.is_some() {
            if self.model.plain() {
                let (rows, cols) = self.model.dims();
                for row in 0..rows {
                    cup(out, (row, 0));
                    for col in 0..cols {
                        // The right half of a wide character came with its left.
                        if self.model.char_at(row, col).is_some() {
                            self.model.draw_cell(row, col, out);
                        }
                    }
                }
                cup(out, self.model.cursor_at());
                self.model.restore_pen(out);
            } else {
                // Not drawn over (insert or origin mode, other character sets): the
                // terminal stays as the notices left it, and nothing is guessed on it.
                self.predictor.clear();
            }
        }
        self.down = false;
        self.shift = 0;
        self.below = None;
        self.predictor.link_up(Instant::now());
        self.draw(out);
    }

    /// Answers the echo acks the model has reached.
    fn answer_acks(&mut self) {
        while let Some(a) = self.acks.front() {
            if a.offset > self.model.fed() {
                break;
            }
            let seq = a.seq;
            self.acks.pop_front();
            self.predictor.answered(seq, &self.model);
        }
    }

    /// [`Echo::erase`], then the cursor under the last notice of an outage, if there is one
    /// (not over it); returns that row.
    fn erase_under_notice(&mut self, out: &mut Vec<u8>) -> Option<usize> {
        self.erase(out);
        let row = self.below?;
        cup(out, (row, 0));
        Some(row)
    }

    /// Takes back what is drawn of the guesses: the cells as the model has them, the cursor
    /// where the model has it, the model's pen.
    fn erase(&mut self, out: &mut Vec<u8>) {
        if self.drawn.cells.is_empty() && self.drawn.cursor.is_none() {
            return;
        }
        for &(at, _) in &self.drawn.cells {
            if let Some(t) = self.on_terminal(at) {
                cup(out, t);
                self.model.draw_cell(at.0, at.1, out);
            }
        }
        if let Some(t) = self.on_terminal(self.model.cursor_at()) {
            cup(out, t);
        }
        self.model.restore_pen(out);
        self.drawn = Overlay::default();
    }

    /// Draws the guesses as they are now (after [`Echo::erase`]).
    fn draw(&mut self, out: &mut Vec<u8>) {
        let overlay = self.predictor.overlay();
        if overlay.cells.is_empty() && overlay.cursor.is_none() {
            return;
        }
        let Some(cursor) = self.on_terminal(overlay.cursor.unwrap_or(self.model.cursor_at()))
        else {
            // The cursor's line scrolled away under the notices of an outage.
            return;
        };
        let mut cells = Vec::with_capacity(overlay.cells.len());
        for &(at, ch) in &overlay.cells {
            match self.on_terminal(at) {
                Some(t) => cells.push((t, ch)),
                None => return,
            }
        }
        for (at, ch) in cells {
            cup(out, at);
            self.model.guess_pen(out);
            let mut b = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        }
        cup(out, cursor);
        self.model.restore_pen(out);
        self.drawn = overlay;
    }
}

#[cfg(test)]
mod tests;
