//! The screen model: a terminal emulator fed a session's output, so the host knows what the
//! screen shows at every offset of the output.
//!
//! Sans-IO and narrow, so it can move with the PTY (to a keeper process, onto another thread):
//! it is fed bytes in order ([`Screen::feed`]), told of resizes at their place in the stream
//! ([`Screen::resize`]) and of bytes it never saw ([`Screen::skip_to`]); it answers with a
//! snapshot that stands for an exact offset ([`Screen::snapshot`]) and with facts for session
//! lists ([`Screen::facts`]). The emulator is `alacritty_terminal` (docs/architecture.md, "The
//! screen model", says why).
//!
//! **The offset contract.** A snapshot taken at [`Screen::offset`] `X`, written to a freshly
//! reset terminal of [`Screen::size`], followed by the output from `X` on, leaves that terminal
//! as a terminal fed the whole output would be. `X` is the last place where the parser was in
//! its ground state: output is read from the PTY in arbitrary chunks that split escape
//! sequences and UTF-8 characters, and the bytes of an unfinished sequence change nothing on
//! the screen until it ends, so they belong to what follows the snapshot.

mod scan;
mod ser;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use alacritty_terminal::event::{Event, EventListener};
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::Flags;
use alacritty_terminal::term::{Config, Osc52, Term, TermMode};
use alacritty_terminal::vte::ansi::{Processor, Timeout};
use parking_lot::Mutex;

use crate::proto::WinSize;

/// Scrollback lines the host's model keeps per session unless told otherwise
/// (`peer host --scrollback`). Each line costs 24 bytes per column (1.9 KiB at 80 columns).
pub const DEFAULT_SCROLLBACK: usize = 1000;

/// The longest "last line" a session list gets, in characters.
const MAX_LAST_LINE: usize = 200;

/// A picture of the screen that stands for an output offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The output offset the picture stands for: the output from here on follows it.
    pub offset: u64,
    /// The terminal size it was drawn for.
    pub size: WinSize,
    /// Scrollback lines drawn above the screen.
    pub scrollback: usize,
    /// Escape sequences that repaint the screen on a freshly reset terminal of `size`.
    pub data: Vec<u8>,
}

/// What a session list shows about a screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The window title the program set (OSC 0 or 2).
    pub title: Option<String>,
    /// The working directory the shell announced (OSC 7).
    pub cwd: Option<String>,
    /// The lowest line of the screen that is not blank, trimmed.
    pub last_line: Option<String>,
    /// Bells rung so far.
    pub bells: u64,
}

/// Synchronized updates (`?2026`) are not held back: the model shows every byte at once, so
/// that a snapshot is exact at any offset. (vte would otherwise keep up to 2 MiB aside until
/// the update ends.)
#[derive(Debug, Default)]
struct Unsynced;

impl Timeout for Unsynced {
    fn set_timeout(&mut self, _: std::time::Duration) {}
    fn clear_timeout(&mut self) {}
    fn pending_timeout(&self) -> bool {
        false
    }
}

/// What the emulator reports as it goes.
#[derive(Debug, Default)]
struct Reported {
    /// `Some` when the title changed (to the inner value).
    title: Option<Option<String>>,
    bells: u64,
}

/// Receives the emulator's events. Queries it would answer (device attributes, colours, the
/// clipboard) are dropped: the client's terminal answers them, and a second answer would reach
/// the program.
#[derive(Clone)]
struct Listener(Arc<Mutex<Reported>>);

impl EventListener for Listener {
    fn send_event(&self, event: Event) {
        let mut r = self.0.lock();
        match event {
            Event::Title(t) => r.title = Some(Some(t)),
            Event::ResetTitle => r.title = Some(None),
            Event::Bell => r.bells += 1,
            _ => {}
        }
    }
}

struct Size(WinSize);

impl Dimensions for Size {
    fn total_lines(&self) -> usize {
        usize::from(self.0.rows)
    }
    fn screen_lines(&self) -> usize {
        usize::from(self.0.rows)
    }
    fn columns(&self) -> usize {
        usize::from(self.0.cols)
    }
}

/// A terminal emulator fed one output stream.
pub struct Screen {
    term: Term<Listener>,
    parser: Processor<Unsynced>,
    scan: scan::Scanner,
    reported: Arc<Mutex<Reported>>,
    size: WinSize,
    /// Offset one past the last byte fed.
    fed: u64,
    /// Offset of the last place where the parser was in its ground state.
    ground: u64,
    title: Option<String>,
    cwd: Option<String>,
    bells: u64,
    /// Bytes of output the model never saw ([`Screen::skip_to`]).
    skipped: u64,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("size", &self.size)
            .field("fed", &self.fed)
            .field("ground", &self.ground)
            .finish_non_exhaustive()
    }
}

impl Screen {
    /// A blank screen of `size` (clamped to at least 1×1) keeping `scrollback` lines, for the
    /// output from offset 0.
    pub fn new(size: WinSize, scrollback: usize) -> Screen {
        Screen::at(size, scrollback, 0)
    }

    /// A blank screen for the output from `offset` (a client that joins mid-stream).
    pub fn at(size: WinSize, scrollback: usize, offset: u64) -> Screen {
        let size = WinSize {
            cols: size.cols.max(1),
            rows: size.rows.max(1),
        };
        let reported = Arc::new(Mutex::new(Reported::default()));
        let config = Config {
            scrolling_history: scrollback,
            kitty_keyboard: true,
            osc52: Osc52::Disabled,
            ..Config::default()
        };
        Screen {
            term: Term::new(config, &Size(size), Listener(reported.clone())),
            parser: Processor::new(),
            scan: scan::Scanner::new(size.rows),
            reported,
            size,
            fed: offset,
            ground: offset,
            title: None,
            cwd: None,
            bells: 0,
            skipped: 0,
        }
    }

    /// The offset a snapshot taken now stands for.
    pub fn offset(&self) -> u64 {
        self.ground
    }

    /// Offset one past the last byte fed: the next [`Screen::feed`] starts here.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// The terminal size.
    pub fn size(&self) -> WinSize {
        self.size
    }

    /// Bytes of output the model never saw.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Feeds the output that follows what was fed so far.
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let scanned = self.scan.scan(bytes);
        self.parser.advance(&mut self.term, bytes);
        if let Some(g) = scanned.ground {
            self.ground = self.fed + g as u64;
        }
        self.fed += bytes.len() as u64;
        if let Some(cwd) = scanned.cwd.last() {
            self.cwd = scan::cwd_from_osc7(cwd);
        }
        let mut r = self.reported.lock();
        if let Some(t) = r.title.take() {
            self.title = t;
        }
        self.bells += std::mem::take(&mut r.bells);
    }

    /// The output up to `offset` will never be fed (it left the buffer before the model read
    /// it). The screen keeps what it shows; the program's next redraws put it right.
    pub fn skip_to(&mut self, offset: u64) {
        if offset <= self.fed {
            return;
        }
        self.skipped += offset - self.fed;
        // Whatever sequence was half read is gone.
        self.parser = Processor::new();
        self.scan.interrupt();
        self.fed = offset;
        self.ground = offset;
    }

    /// What was fed so far was a picture, not output: the output continues at `offset`.
    pub fn rebase(&mut self, offset: u64) {
        self.fed = offset;
        self.ground = offset;
    }

    /// The terminal was resized here in the stream (clamped to at least 1×1).
    pub fn resize(&mut self, size: WinSize) {
        let size = WinSize {
            cols: size.cols.max(1),
            rows: size.rows.max(1),
        };
        if size == self.size {
            return;
        }
        self.size = size;
        self.term.resize(Size(size));
        self.scan.resized(size.rows);
    }

    /// A picture of the screen with up to `scrollback` lines of scrollback above it.
    pub fn snapshot(&mut self, scrollback: usize) -> Snapshot {
        let mut data =
            Vec::with_capacity(usize::from(self.size.cols) * usize::from(self.size.rows) * 2);
        let region = self.scan.region(usize::from(self.size.rows));
        let drawn = ser::serialize(
            &mut self.term,
            region,
            self.scan.region_sequence(),
            self.title.as_deref(),
            scrollback,
            &mut data,
        );
        // Last: the picture itself is drawn with G0 active.
        if self.scan.shifted_out() {
            data.push(0x0e);
        }
        Snapshot {
            offset: self.ground,
            size: self.size,
            scrollback: drawn.scrollback,
            data,
        }
    }

    /// Bells rung so far.
    pub fn bells(&self) -> u64 {
        self.bells
    }

    /// The window title the program set.
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// Title, working directory, last line, bells.
    pub fn facts(&self) -> Facts {
        Facts {
            title: self.title.clone(),
            cwd: self.cwd.clone(),
            last_line: self.last_line(),
            bells: self.bells,
        }
    }

    /// The text of screen row `row` (0 = top), trailing blanks removed.
    pub fn row_text(&self, row: usize) -> String {
        let grid = self.term.grid();
        if row >= grid.screen_lines() {
            return String::new();
        }
        let line = &grid[Line(row as i32)];
        let mut s = String::new();
        for c in 0..grid.columns() {
            let cell = &line[Column(c)];
            if cell.flags.contains(Flags::WIDE_CHAR_SPACER) {
                continue;
            }
            s.push(if cell.c == '\t' { ' ' } else { cell.c });
            s.extend(cell.zerowidth().unwrap_or_default());
        }
        s.truncate(s.trim_end().len());
        s
    }

    /// The whole visible screen as text, one line per row.
    pub fn text(&self) -> String {
        (0..usize::from(self.size.rows))
            .map(|r| self.row_text(r))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn last_line(&self) -> Option<String> {
        (0..usize::from(self.size.rows)).rev().find_map(|r| {
            let t = self.row_text(r);
            let t = t.trim();
            (!t.is_empty()).then(|| t.chars().take(MAX_LAST_LINE).collect())
        })
    }

    /// The cursor: row and column (0-based), and whether it waits to wrap.
    pub fn cursor(&self) -> (usize, usize, bool) {
        let c = &self.term.grid().cursor;
        (
            c.point.line.0.max(0) as usize,
            c.point.column.0,
            c.input_needs_wrap,
        )
    }

    /// Whether the alternate screen (full-screen programs) is showing.
    pub fn alt_screen(&self) -> bool {
        self.term.mode().contains(TermMode::ALT_SCREEN)
    }

    /// The character in a cell (a space for blanks, `None` for the right half of a wide one
    /// or outside the screen).
    pub fn char_at(&self, row: usize, col: usize) -> Option<char> {
        let grid = self.term.grid();
        if row >= grid.screen_lines() || col >= grid.columns() {
            return None;
        }
        let c = &grid[Line(row as i32)][Column(col)];
        if c.flags.contains(Flags::WIDE_CHAR_SPACER) {
            return None;
        }
        Some(if c.c == '\t' { ' ' } else { c.c })
    }

    /// Whether the character in a cell is drawn twice as wide.
    pub fn is_wide(&self, row: usize, col: usize) -> bool {
        let grid = self.term.grid();
        row < grid.screen_lines()
            && col < grid.columns()
            && grid[Line(row as i32)][Column(col)]
                .flags
                .intersects(Flags::WIDE_CHAR | Flags::WIDE_CHAR_SPACER)
    }

    /// Bytes that draw the cell at `(row, col)` as the screen has it, with its attributes, at
    /// the terminal's cursor (for taking back a prediction). Leaves the terminal's pen as that
    /// cell's: finish with [`Screen::restore_pen`].
    pub fn draw_cell(&self, row: usize, col: usize, out: &mut Vec<u8>) {
        let grid = self.term.grid();
        if row < grid.screen_lines() && col < grid.columns() {
            ser::draw_cell(grid, row, col, out);
        }
    }

    /// Bytes that set the terminal's pen to the one the program's output left.
    pub fn restore_pen(&self, out: &mut Vec<u8>) {
        ser::restore_pen(self.term.grid(), out);
    }

    /// Bytes that set the terminal's pen to the one the program's output left, underlined
    /// (for drawing a predicted character).
    pub fn guess_pen(&self, out: &mut Vec<u8>) {
        ser::guess_pen(self.term.grid(), out);
    }

    /// Whether drawing something at a cell and putting back what was there is safe now: the
    /// main screen, a visible cursor that does not wait to wrap, autowrap on, no insert or
    /// origin mode, plain character sets (and G0 active).
    pub fn plain(&self) -> bool {
        use alacritty_terminal::vte::ansi::{CharsetIndex, StandardCharset};
        let mode = *self.term.mode();
        let cursor = &self.term.grid().cursor;
        !mode.contains(TermMode::ALT_SCREEN)
            && mode.contains(TermMode::SHOW_CURSOR)
            && mode.contains(TermMode::LINE_WRAP)
            && !mode.intersects(TermMode::INSERT | TermMode::ORIGIN)
            && !cursor.input_needs_wrap
            && cursor.charsets[CharsetIndex::G0] == StandardCharset::Ascii
            && !self.scan.shifted_out()
    }
}
