//! The snapshot serializer: escape sequences that, written to a freshly reset terminal of the
//! same size, repaint what the emulator holds: the newest scrollback lines, the main screen,
//! the alternate screen over it, the cursor (with a pending wrap), the pen, the saved cursors
//! (the alternate screen keeps its own), character sets, scroll region, modes and the title.
//!
//! `alacritty_terminal` has no dump of its own; this reads its public grid (the scanner beside
//! it supplies the scroll region, and the shift state, SO/SI, written after all this). What it
//! keeps private and what is therefore not carried: tab stops, the title stack, the kitty
//! keyboard mode stack below its top, and blink (SGR 5, never stored).

use std::io::Write;

use alacritty_terminal::grid::{Dimensions, Grid};
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::{Cell, Flags};
use alacritty_terminal::term::{Term, TermMode};
use alacritty_terminal::vte::ansi::{
    CharsetIndex, Color, CursorShape, CursorStyle, NamedColor, StandardCharset,
};

/// Cell flags that are attributes (drawn with SGR), not layout.
const ATTRS: Flags = Flags::BOLD
    .union(Flags::DIM)
    .union(Flags::ITALIC)
    .union(Flags::ALL_UNDERLINES)
    .union(Flags::INVERSE)
    .union(Flags::HIDDEN)
    .union(Flags::STRIKEOUT);

/// Writes `s` into a `Vec<u8>`; a `Vec` never fails to take bytes.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {
        let _ = write!($out, $($arg)*);
    };
}

/// What an SGR sequence sets, plus the hyperlink the cell belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pen {
    fg: Color,
    bg: Color,
    flags: Flags,
    underline: Option<Color>,
    link: Option<(String, String)>,
}

impl Pen {
    pub fn of(cell: &Cell) -> Pen {
        Pen {
            fg: cell.fg,
            bg: cell.bg,
            flags: cell.flags & ATTRS,
            underline: cell.underline_color(),
            link: cell
                .hyperlink()
                .map(|h| (h.id().to_owned(), h.uri().to_owned())),
        }
    }

    /// The pen with the emulator's own numbers for links without an id left out.
    #[cfg(test)]
    pub fn normalized(mut self) -> Pen {
        if let Some((id, _)) = &mut self.link
            && id.ends_with("_alacritty")
        {
            id.clear();
        }
        self
    }

    fn plain() -> Pen {
        Pen::of(&Cell::default())
    }

    /// Sets this pen from any state: SGR from a reset, and the hyperlink if it changed.
    pub fn write(&self, out: &mut Vec<u8>, from: &Pen) {
        if self.link != from.link {
            match &self.link {
                // A link opened without an id got a number of the emulator's own: open it
                // without one again.
                Some((id, uri)) if id.ends_with("_alacritty") => {
                    put!(out, "\x1b]8;;{}\x1b\\", clean(uri));
                }
                Some((id, uri)) => {
                    put!(out, "\x1b]8;id={};{}\x1b\\", clean(id), clean(uri));
                }
                None => out.extend_from_slice(b"\x1b]8;;\x1b\\"),
            }
        }
        if (&self.fg, &self.bg, self.flags, &self.underline)
            == (&from.fg, &from.bg, from.flags, &from.underline)
        {
            return;
        }
        out.extend_from_slice(b"\x1b[0");
        let f = self.flags;
        for (flag, code) in [
            (Flags::BOLD, "1"),
            (Flags::DIM, "2"),
            (Flags::ITALIC, "3"),
            (Flags::UNDERLINE, "4"),
            (Flags::DOUBLE_UNDERLINE, "4:2"),
            (Flags::UNDERCURL, "4:3"),
            (Flags::DOTTED_UNDERLINE, "4:4"),
            (Flags::DASHED_UNDERLINE, "4:5"),
            (Flags::INVERSE, "7"),
            (Flags::HIDDEN, "8"),
            (Flags::STRIKEOUT, "9"),
        ] {
            if f.contains(flag) {
                put!(out, ";{code}");
            }
        }
        color(out, self.fg, 30, 90, 38);
        color(out, self.bg, 40, 100, 48);
        if let Some(c) = self.underline {
            color(out, c, 58, 58, 58);
        }
        out.push(b'm');
    }
}

/// `;SGR` for a colour: `base + n` for the 8 named ones, `bright + n - 8` for the next 8,
/// `ext;5;n` or `ext;2;r;g;b` otherwise; nothing for the default colours.
fn color(out: &mut Vec<u8>, c: Color, base: u8, bright: u8, ext: u8) {
    match c {
        Color::Spec(rgb) => {
            put!(out, ";{ext};2;{};{};{}", rgb.r, rgb.g, rgb.b);
        }
        Color::Indexed(i) => {
            put!(out, ";{ext};5;{i}");
        }
        Color::Named(n) => {
            let v = n as usize;
            let idx = if v < 16 {
                Some(v)
            } else if (NamedColor::DimBlack as usize..=NamedColor::DimWhite as usize).contains(&v) {
                Some(v - NamedColor::DimBlack as usize)
            } else {
                None
            };
            match idx {
                Some(i) if base == ext => {
                    put!(out, ";{ext};5;{i}");
                }
                Some(i) if i < 8 => {
                    put!(out, ";{}", base as usize + i);
                }
                Some(i) => {
                    put!(out, ";{}", bright as usize + i - 8);
                }
                None => {}
            }
        }
    }
}

/// Text from the stream for an OSC payload: no control characters.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// Whether a cell is the same as an untouched one (nothing to draw).
fn untouched(c: &Cell) -> bool {
    c.c == ' '
        && c.fg == Color::Named(NamedColor::Foreground)
        && c.bg == Color::Named(NamedColor::Background)
        && c.flags.is_empty()
        && c.zerowidth().is_none()
        && c.underline_color().is_none()
        && c.hyperlink().is_none()
}

/// Draws one cell's character(s) (the pen is set by the caller).
fn glyph(out: &mut Vec<u8>, c: &Cell) {
    let mut b = [0u8; 4];
    out.extend_from_slice(c.c.encode_utf8(&mut b).as_bytes());
    for z in c.zerowidth().unwrap_or_default() {
        out.extend_from_slice(z.encode_utf8(&mut b).as_bytes());
    }
}

/// Draws the cell at `(line, col)` with its own pen, from pen `pen` (updated). A cell that
/// holds a tab (the emulator keeps one where a tab started, for copying) is drawn as a blank,
/// then the tab is replayed over it, and the cursor is put after it (except at the last column,
/// where moving the cursor would end its wait to wrap).
fn cell(out: &mut Vec<u8>, grid: &Grid<Cell>, line: i32, col: usize, pen: &mut Pen) {
    let c = &grid[Line(line)][Column(col)];
    let p = Pen::of(c);
    p.write(out, pen);
    *pen = p;
    let last = col + 1 == grid.columns();
    if left_half_alone(&grid[Line(line)], col) {
        // A blank (printing it at the last column would wrap it to the next line, and
        // elsewhere would mark the next cell as its right half).
        out.push(b' ');
    } else if c.c == '\t' && !last {
        put!(out, " \x1b[{}G\t\x1b[{}G", col + 1, col + 2);
    } else if c.c == '\t' {
        // At the last column the cursor must be left waiting to wrap: a plain blank.
        out.push(b' ');
    } else {
        glyph(out, c);
    }
}

/// Draws grid lines `lines` (negative: scrollback) from the cursor's current place, one after
/// the other, as a program printing them would: soft-wrapped lines run on into the next one.
fn draw_lines(out: &mut Vec<u8>, grid: &Grid<Cell>, lines: std::ops::Range<i32>) {
    let cols = grid.columns();
    let mut pen = Pen::plain();
    let mut after_wrap = false;
    // The pen of the placeholder a wide character that did not fit left at the end of the
    // previous line.
    let mut placeholder: Option<Pen> = None;
    for line in lines.clone() {
        let row = &grid[Line(line)];
        let last = &row[Column(cols - 1)];
        let wrapped = last.flags.contains(Flags::WRAPLINE);
        let mut end = if wrapped {
            cols
        } else {
            (0..cols)
                .rev()
                .find(|&c| !untouched(&row[Column(c)]))
                .map_or(0, |c| c + 1)
        };
        let next_placeholder = (wrapped
            && cols >= 2
            && last.flags.contains(Flags::LEADING_WIDE_CHAR_SPACER)
            && line + 1 < lines.end)
            .then(|| Pen::of(last));
        if next_placeholder.is_some() {
            // A wide character did not fit: printing one at the last column makes the same
            // placeholder and wraps.
            end = cols - 1;
        }
        if after_wrap && end == 0 {
            // The wrap into this line happens only when something is printed in it.
            end = 1;
        }
        let mut col = 0;
        while col < end {
            if right_half(row, col) {
                col += 1;
                continue;
            }
            if col > 0 || !after_wrap {
                cell(out, grid, line, col, &mut pen);
                col += 1;
                continue;
            }
            // The first character of a line the previous one wraps into: printing it wraps
            // (and at the bottom, scrolls, filling the new line with the pen's background).
            let first = &row[Column(0)];
            let wide = first.flags.contains(Flags::WIDE_CHAR);
            let wrap_pen = match placeholder.take() {
                Some(p) if !wide || p != Pen::of(first) => {
                    // The placeholder is not what printing this character leaves (a resize or
                    // a scroll region made it): wrap with a wide character in its pen, then
                    // draw what the line holds over it.
                    p.write(out, &pen);
                    pen = p.clone();
                    if wide {
                        glyph(out, first);
                    } else {
                        out.extend_from_slice("\u{3000}".as_bytes());
                    }
                    out.push(b'\r');
                    cell(out, grid, line, 0, &mut pen);
                    col = 1;
                    if !wide {
                        if !row[Column(1)].flags.contains(Flags::WIDE_CHAR_SPACER) {
                            cell(out, grid, line, 1, &mut pen);
                        }
                        col = 2;
                        end = end.max(2);
                    }
                    p
                }
                _ => {
                    cell(out, grid, line, 0, &mut pen);
                    col = 1;
                    pen.clone()
                }
            };
            if end < cols && wrap_pen.bg != Color::Named(NamedColor::Background) {
                // Blank the rest of a line that scrolling may have filled.
                Pen::plain().write(out, &pen);
                pen = Pen::plain();
                out.extend_from_slice(b"\x1b[K");
            }
        }
        if line + 1 < lines.end && !wrapped {
            if pen != Pen::plain() {
                // A line feed at the bottom fills the new line with the current background.
                Pen::plain().write(out, &pen);
                pen = Pen::plain();
            }
            out.extend_from_slice(b"\r\n");
        }
        after_wrap = wrapped;
        placeholder = next_placeholder;
    }
    Pen::plain().write(out, &pen);
}

/// Whether the cell at `col` is the right half of a wide character, drawn by drawing the left
/// half. (A resize can leave a right half's mark on a cell whose left neighbour is no longer
/// wide: no sequence draws that, and a picture draws a blank there in the cell's pen.)
fn right_half(row: &alacritty_terminal::grid::Row<Cell>, col: usize) -> bool {
    col > 0
        && row[Column(col)].flags.contains(Flags::WIDE_CHAR_SPACER)
        && row[Column(col - 1)].flags.contains(Flags::WIDE_CHAR)
}

/// Whether the cell at `col` is the left half of a wide character whose right half a resize
/// cut off (at the last column, or at one that was the last): no sequence draws that, and a
/// picture draws a blank there in the cell's pen.
fn left_half_alone(row: &alacritty_terminal::grid::Row<Cell>, col: usize) -> bool {
    row[Column(col)].flags.contains(Flags::WIDE_CHAR)
        && (col + 1 == row.len() || !row[Column(col + 1)].flags.contains(Flags::WIDE_CHAR_SPACER))
}

fn cup(out: &mut Vec<u8>, line: usize, col: usize) {
    put!(out, "\x1b[{};{}H", line + 1, col + 1);
}

/// Puts the cursor at `point` (addressed from row `top`: origin mode); with `pending`, waiting
/// to wrap, which only printing the last column's character again does (it is drawn with its
/// own pen: `pen` is updated).
fn park(
    out: &mut Vec<u8>,
    grid: &Grid<Cell>,
    point: &alacritty_terminal::index::Point,
    top: usize,
    pending: bool,
    pen: &mut Pen,
) {
    let (line, col) = (point.line.0.max(0) as usize, point.column.0);
    if !pending || col + 1 != grid.columns() {
        cup(out, line.saturating_sub(top), col);
        return;
    }
    let at = if right_half(&grid[Line(line as i32)], col) {
        col - 1
    } else {
        col
    };
    cup(out, line.saturating_sub(top), at);
    // Not through `cell`: replaying a tab would end the wait to wrap.
    let c = &grid[Line(line as i32)][Column(at)];
    let p = Pen::of(c);
    p.write(out, pen);
    *pen = p;
    if c.c == '\t' {
        out.push(b' ');
    } else {
        glyph(out, c);
    }
}

/// The four character sets and the sequences' intermediate byte that designates each.
const CHARSETS: [(CharsetIndex, char); 4] = [
    (CharsetIndex::G0, '('),
    (CharsetIndex::G1, ')'),
    (CharsetIndex::G2, '*'),
    (CharsetIndex::G3, '+'),
];

/// Designates ASCII to all four.
const PLAIN_CHARSETS: &[u8] = b"\x1b(B\x1b)B\x1b*B\x1b+B";

fn charsets(out: &mut Vec<u8>, sets: &alacritty_terminal::grid::Cursor<Cell>) {
    for (idx, intro) in CHARSETS {
        let graphics = sets.charsets[idx] == StandardCharset::SpecialCharacterAndLineDrawing;
        put!(out, "\x1b{intro}{}", if graphics { '0' } else { 'B' });
    }
}

/// The private modes that differ from a fresh terminal's, as `h`/`l` sequences.
fn modes(out: &mut Vec<u8>, mode: TermMode) {
    let fresh = TermMode::default();
    for (bit, seq) in [
        (TermMode::APP_CURSOR, "?1"),
        (TermMode::MOUSE_REPORT_CLICK, "?1000"),
        (TermMode::MOUSE_DRAG, "?1002"),
        (TermMode::MOUSE_MOTION, "?1003"),
        (TermMode::FOCUS_IN_OUT, "?1004"),
        (TermMode::UTF8_MOUSE, "?1005"),
        (TermMode::SGR_MOUSE, "?1006"),
        (TermMode::ALTERNATE_SCROLL, "?1007"),
        (TermMode::URGENCY_HINTS, "?1042"),
        (TermMode::BRACKETED_PASTE, "?2004"),
        (TermMode::LINE_WRAP, "?7"),
        (TermMode::INSERT, "4"),
        (TermMode::LINE_FEED_NEW_LINE, "20"),
    ] {
        match (mode.contains(bit), fresh.contains(bit)) {
            (true, false) => {
                put!(out, "\x1b[{seq}h");
            }
            (false, true) => {
                put!(out, "\x1b[{seq}l");
            }
            _ => {}
        }
    }
    if mode.contains(TermMode::APP_KEYPAD) {
        out.extend_from_slice(b"\x1b=");
    }
    let kitty = (mode & TermMode::KITTY_KEYBOARD_PROTOCOL).bits() >> 18;
    if kitty != 0 {
        put!(out, "\x1b[>{kitty}u");
    }
}

fn cursor_style(out: &mut Vec<u8>, style: CursorStyle) {
    if style == CursorStyle::default() {
        return;
    }
    let n = match style.shape {
        CursorShape::Block | CursorShape::HollowBlock | CursorShape::Hidden => 2,
        CursorShape::Underline => 4,
        CursorShape::Beam => 6,
    } - u8::from(style.blinking);
    put!(out, "\x1b[{n} q");
}

/// What a snapshot holds besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Drawn {
    /// Scrollback lines drawn above the screen.
    pub scrollback: usize,
}

/// Serializes `term` (read-only in effect: the alternate screen is swapped out and back to
/// read the main one under it). `region`: the scroll region (0-based, end exclusive) if not
/// the whole screen, and the sequence that sets it.
pub(super) fn serialize<L: alacritty_terminal::event::EventListener>(
    term: &mut Term<L>,
    region: Option<(usize, usize)>,
    region_seq: Option<String>,
    title: Option<&str>,
    scrollback: usize,
    out: &mut Vec<u8>,
) -> Drawn {
    let mode = *term.mode();
    let alt = mode.contains(TermMode::ALT_SCREEN);
    if let Some(t) = title {
        put!(out, "\x1b]2;{}\x07", clean(t));
    }

    // The main screen with its scrollback. alacritty_terminal has no reader for the inactive
    // grid: swap to it, read, swap back and put the alternate grid back exactly as it was.
    let alt_grid = alt.then(|| term.grid().clone());
    if alt {
        term.swap_alt();
    }
    let main = term.grid();
    let rows = main.screen_lines() as i32;
    let history = scrollback.min(main.history_size());
    draw_lines(out, main, -(history as i32)..rows);
    // The main screen's cursor (waiting to wrap, if it was), pen and character sets. Under the
    // alternate screen they wait there for the program to leave it (entering saves the cursor
    // as DECSC too, as it did when the program entered).
    let mut main_pen = Pen::plain();
    if let Some(grid) = alt_grid {
        // (The emulator waits to wrap at the last column even with autowrap off; the modes
        // are set after all this.)
        let pending = main.cursor.input_needs_wrap;
        park(out, main, &main.cursor.point, 0, pending, &mut main_pen);
        Pen::of(&main.cursor.template).write(out, &main_pen);
        main_pen = Pen::of(&main.cursor.template);
        charsets(out, &main.cursor);
        // Swapping back saves the main cursor as DECSC, as entering did (they differ only
        // if a resize under the alternate screen moved them apart).
        term.swap_alt();
        *term.grid_mut() = grid;
        // Entering the alternate screen blanks it with the pen; blank it plain again.
        out.extend_from_slice(b"\x1b[?1049h\x1b[H");
        Pen::plain().write(out, &main_pen);
        main_pen = Pen::plain();
        out.extend_from_slice(b"\x1b[2J");
        out.extend_from_slice(PLAIN_CHARSETS);
        draw_lines(out, term.grid(), 0..rows);
    } else {
        alt_saved_cursor(term, out);
    }
    Pen::plain().write(out, &main_pen);

    let grid = term.grid();
    // The saved cursor (DECSC): its place (waiting to wrap, if it was), pen and character sets.
    let saved = &grid.saved_cursor;
    let mut pen = save_cursor(out, grid, saved);
    if let Some(seq) = region_seq {
        out.extend_from_slice(seq.as_bytes());
    }

    // The cursor, waiting to wrap if it was; in origin mode, placed relative to the region.
    let cur = &grid.cursor;
    let top = if mode.contains(TermMode::ORIGIN) {
        out.extend_from_slice(b"\x1b[?6h");
        region.map_or(0, |r| r.0)
    } else {
        0
    };
    park(out, grid, &cur.point, top, cur.input_needs_wrap, &mut pen);
    Pen::of(&cur.template).write(out, &pen);
    charsets(out, cur);
    modes(out, mode);
    cursor_style(out, term.cursor_style());
    if !mode.contains(TermMode::SHOW_CURSOR) {
        out.extend_from_slice(b"\x1b[?25l");
    }
    Drawn {
        scrollback: history,
    }
}

/// On the main screen: the alternate screen's saved cursor (DECSC), which outlives leaving
/// it (the next visit starts with it), if a program set it. Written with the alternate screen
/// entered and left again, which leaves the main screen's cursor, pen and character sets as
/// they were (entering saves them as DECSC, leaving restores them), and before the main
/// screen's own saved cursor is written.
fn alt_saved_cursor<L: alacritty_terminal::event::EventListener>(
    term: &mut Term<L>,
    out: &mut Vec<u8>,
) {
    // alacritty_terminal has no reader for the inactive grid: visit it and come back. Entering
    // blanks it and moves its cursor (as the next visit will anyway) and makes the main
    // screen's cursor its saved one, which is put back.
    let main_saved = term.grid().saved_cursor.clone();
    term.swap_alt();
    let saved = term.grid().saved_cursor.clone();
    term.swap_alt();
    term.grid_mut().saved_cursor = main_saved;
    if saved == alacritty_terminal::grid::Cursor::default() {
        return;
    }
    out.extend_from_slice(b"\x1b[?1049h");
    save_cursor(out, term.grid(), &saved);
    out.extend_from_slice(b"\x1b[?1049l");
}

/// Saves `saved` as the cursor (DECSC): its place (waiting to wrap, if it was), pen and
/// character sets, from the plain pen. Returns the pen it leaves; leaves the character sets
/// plain (parking a cursor next may redraw a cell, to wait to wrap there, and under a
/// line-drawing set that cell's character would be drawn as another).
fn save_cursor(
    out: &mut Vec<u8>,
    grid: &Grid<Cell>,
    saved: &alacritty_terminal::grid::Cursor<Cell>,
) -> Pen {
    let mut pen = Pen::plain();
    park(out, grid, &saved.point, 0, saved.input_needs_wrap, &mut pen);
    Pen::of(&saved.template).write(out, &pen);
    charsets(out, saved);
    out.extend_from_slice(b"\x1b7");
    if CHARSETS
        .iter()
        .any(|(idx, _)| saved.charsets[*idx] != StandardCharset::Ascii)
    {
        out.extend_from_slice(PLAIN_CHARSETS);
    }
    Pen::of(&saved.template)
}

/// A pen no cell has, so that the next one is always written out in full.
fn unknown_pen() -> Pen {
    Pen {
        fg: Color::Named(NamedColor::Background),
        ..Pen::plain()
    }
}

/// Draws one cell of the screen with its own pen (for predictions to restore what they
/// covered), whatever the terminal's pen was; leaves the terminal's pen as that cell's.
pub(super) fn draw_cell(grid: &Grid<Cell>, line: usize, col: usize, out: &mut Vec<u8>) {
    let c = &grid[Line(line as i32)][Column(col)];
    if c.flags.contains(Flags::WIDE_CHAR_SPACER) {
        // The right half of a wide character: drawn by drawing the left half.
        Pen::plain().write(out, &unknown_pen());
        out.push(b' ');
        return;
    }
    Pen::of(c).write(out, &unknown_pen());
    if c.c == '\t' {
        out.push(b' ');
    } else {
        glyph(out, c);
    }
}

/// Sets the terminal's pen to the cursor's with an underline, whatever it was.
pub(super) fn guess_pen(grid: &Grid<Cell>, out: &mut Vec<u8>) {
    let mut p = Pen::of(&grid.cursor.template);
    p.flags.remove(Flags::ALL_UNDERLINES);
    p.flags.insert(Flags::UNDERLINE);
    p.write(out, &unknown_pen());
}

/// Sets the terminal's pen to the cursor's, whatever it was.
pub(super) fn restore_pen(grid: &Grid<Cell>, out: &mut Vec<u8>) {
    Pen::of(&grid.cursor.template).write(out, &unknown_pen());
}
