//! Predictive local echo, in mosh's manner, sans-IO: printable keystrokes, backspace and the
//! left and right arrows are shown at once (underlined) instead of after a round trip, and
//! checked against the host's screen once the host says their echo has arrived
//! ([`crate::proto::EchoAck`]). A wrong guess is taken back as soon as that answer is in, and
//! then nothing more is shown until a guess turns out right.
//!
//! The engine knows the screen through [`View`] (the client's model of the host's screen: what
//! the host sent, without predictions) and says what should show on top of it
//! ([`Predictor::overlay`]); drawing that is the caller's business.
//!
//! When it guesses:
//! - the mode: `always` or `adaptive`, never with `never`; `adaptive` shows its guesses only
//!   while the smoothed round trip is above 30 ms (below 20 ms it stops again);
//! - the terminal: not the alternate screen (full-screen programs), not while the host says
//!   the terminal does not echo and edits lines itself (password prompts), nor before the host
//!   has said how it echoes; a plain cursor (no insert or origin mode, no pending wrap);
//! - the characters: only those one column wide for certain, by the web engine's rule
//!   ([`narrow::narrow`]: below U+1100, and no mark, control, format, private-use or
//!   unassigned character). Wide characters (CJK, emoji), zero-width ones (combining marks,
//!   U+200B.., the soft hyphen U+00AD, variation selectors) and everything from U+1100 on
//!   (ambiguous-width symbols included) are keys that cannot be guessed: they stop guessing
//!   until the host has answered them, as the keys below do, but hide nothing (they start no
//!   new line or program). A key of several characters (`e` and a combining accent) is guessed
//!   up to its first such character: the `e` is, and is confirmed by a cell that shows `e`
//!   with the accent on it. C1 control characters are control keys;
//! - the keys: after any other key (Enter, Tab, Ctrl-C, other control keys, other escape
//!   sequences) nothing until the host has answered it; Ctrl-C also takes back at once the
//!   guesses made before it (the line they were on is abandoned: a line editor drops it, the
//!   terminal discards input not yet read), and the host's screen shows through until it
//!   answers;
//! - what is shown: guesses start hidden, at first, after Enter, Ctrl-C or any other key that
//!   may start something new (a new line, a new program) and after a wrong guess, and show
//!   only once the host has confirmed one of them made after that key (the late confirmation
//!   of keys typed before an Enter does not count). So the first key typed into a password
//!   prompt (echo off) is never shown: the host does not echo it, the guess is found wrong,
//!   and the prompt's line discipline switches guessing off.
//!
//! While the link is down (`peer attach` reconnecting: [`Predictor::link_down`]) keys are
//! guessed and shown as ever (in adaptive mode whatever the round trip, until they are
//! answered), not expired, and checked once the resume has sent them; a resume that finds
//! another session or none ends the attachment, and its guesses are taken back.
//!
//! How: where the terminal edits lines itself (`ICANON`, e.g. `cat`), a character is written
//! over the cursor and backspace erases characters typed on this line; elsewhere (a shell's
//! line editor) a character is inserted, backspace deletes before the cursor, and the arrows
//! move it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use narrow::narrow;
use unicode_width::UnicodeWidthChar;

mod narrow;

/// When predictions are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PredictMode {
    /// Never.
    Never,
    /// Always (where the terminal allows).
    Always,
    /// While the round trip is long enough to notice (above 30 ms).
    #[default]
    Adaptive,
}

impl std::str::FromStr for PredictMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "never" => Ok(PredictMode::Never),
            "always" => Ok(PredictMode::Always),
            "adaptive" => Ok(PredictMode::Adaptive),
            other => Err(format!(
                "unknown prediction mode {other:?} (always, never or adaptive)"
            )),
        }
    }
}

/// Above this smoothed round trip, adaptive prediction starts.
pub const RTT_ON: Duration = Duration::from_millis(30);
/// Below this, adaptive prediction stops.
pub const RTT_OFF: Duration = Duration::from_millis(20);
/// A prediction the host has not answered after this long (or four round trips, if longer)
/// is taken back.
const EXPIRE: Duration = Duration::from_secs(2);

/// What the engine needs to know of the screen.
pub trait View {
    /// Rows and columns.
    fn dims(&self) -> (usize, usize);
    /// Cursor row and column.
    fn cursor_at(&self) -> (usize, usize);
    /// The character in a cell (a space when blank; `None` for the right half of a wide one).
    fn char_at(&self, row: usize, col: usize) -> Option<char>;
    /// Whether the terminal is in a state where drawing a guess and taking it back is safe: the
    /// main screen, a visible cursor not waiting to wrap, no insert or origin mode, plain
    /// character sets.
    fn plain(&self) -> bool;
}

/// One predicted cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guess {
    /// The character shown.
    pub ch: char,
    /// The input that made it.
    pub seq: u64,
}

/// What to show on top of the screen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overlay {
    /// Cells (row, column) and what to show there.
    pub cells: Vec<((usize, usize), char)>,
    /// Where the cursor should be.
    pub cursor: Option<(usize, usize)>,
}

/// Counters, for tests and the curious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Keys shown before the host answered.
    pub shown: u64,
    /// Guesses the host confirmed.
    pub confirmed: u64,
    /// Guesses the host contradicted (taken back).
    pub wrong: u64,
}

/// The prediction engine of one attachment.
#[derive(Debug, Clone)]
pub struct Predictor {
    mode: PredictMode,
    srtt: Option<Duration>,
    /// Adaptive mode is on now (with hysteresis).
    rtt_high: bool,
    /// The host's last word on the line discipline: (echo, canonical).
    flags: Option<(bool, bool)>,
    /// Predicted cells that differ from the screen, by place.
    cells: BTreeMap<(usize, usize), Guess>,
    /// The predicted cursor, and the input that put it there.
    cursor: Option<((usize, usize), u64)>,
    /// When the oldest guess still open was made.
    since: Option<Instant>,
    /// At first, after a key that could not be guessed and after a wrong guess: keep
    /// guessing, but show nothing until a guess made after `hidden_at` is confirmed.
    tentative: bool,
    /// The input that hid the guesses: the confirmation of a guess it or an earlier input
    /// made (on the line it left) does not show them again.
    hidden_at: u64,
    /// A key that cannot be guessed: nothing until the host has answered this input.
    stopped_until: Option<u64>,
    /// Characters typed on this line (canonical mode), that backspace may erase.
    typed_in_line: usize,
    /// Highest input the host has answered.
    acked: u64,
    /// The link to the host is down (reconnecting).
    down: bool,
    /// The last input typed while the link was down: until it is answered, guesses show in
    /// adaptive mode whatever the round trip.
    typed_down: u64,
    stats: Stats,
}

/// One key of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Char(char),
    Backspace,
    Left,
    Right,
    /// Enter: a new line starts (nothing to guess).
    Enter,
    /// Ctrl-C: the line is abandoned (nothing to guess, and the guesses on it go).
    Interrupt,
    Other,
}

fn keys(bytes: &[u8]) -> Vec<Key> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            0x1b => {
                let arrow = match bytes.get(i + 1..i + 3) {
                    Some([b'[' | b'O', b'C']) => Some(Key::Right),
                    Some([b'[' | b'O', b'D']) => Some(Key::Left),
                    _ => None,
                };
                match arrow {
                    Some(k) => {
                        out.push(k);
                        i += 3;
                    }
                    None => {
                        out.push(Key::Other);
                        return out;
                    }
                }
            }
            0x7f | 0x08 => {
                out.push(Key::Backspace);
                i += 1;
            }
            b'\r' | b'\n' => {
                out.push(Key::Enter);
                i += 1;
            }
            0x03 => {
                out.push(Key::Interrupt);
                i += 1;
            }
            0x20..=0x7e => {
                out.push(Key::Char(b as char));
                i += 1;
            }
            0x00..=0x1f => {
                out.push(Key::Other);
                i += 1;
            }
            _ => {
                let len = match b {
                    0xf0.. => 4,
                    0xe0.. => 3,
                    0xc0.. => 2,
                    _ => 1,
                };
                match bytes
                    .get(i..i + len)
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.chars().next())
                {
                    // C1 controls are control keys, as C0 ones.
                    Some(c) if !c.is_control() => out.push(Key::Char(c)),
                    _ => out.push(Key::Other),
                }
                i += len;
            }
        }
    }
    out
}

impl Predictor {
    /// An engine in `mode`.
    pub fn new(mode: PredictMode) -> Predictor {
        Predictor {
            mode,
            srtt: None,
            rtt_high: false,
            flags: None,
            cells: BTreeMap::new(),
            cursor: None,
            since: None,
            tentative: true,
            hidden_at: 0,
            stopped_until: None,
            typed_in_line: 0,
            acked: 0,
            down: false,
            typed_down: 0,
            stats: Stats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The smoothed round trip, if measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// A round-trip sample (input sent → acknowledged).
    pub fn rtt_sample(&mut self, rtt: Duration) {
        let s = match self.srtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        };
        self.srtt = Some(s);
        if s > RTT_ON {
            self.rtt_high = true;
        } else if s < RTT_OFF {
            self.rtt_high = false;
        }
    }

    /// Whether guesses are made now (mode and line discipline; the screen is checked per
    /// key). In adaptive mode they are made whatever the round trip, so that the engine knows
    /// where the cursor will be once the round trip grows; see [`Predictor::showing`].
    pub fn enabled(&self) -> bool {
        self.mode != PredictMode::Never
            && matches!(self.flags, Some((echo, canonical)) if echo || !canonical)
    }

    /// Whether guesses are shown (mode and round trip). In adaptive mode also while the link
    /// is down and until the keys typed meanwhile are answered: their round trip is as long as
    /// the outage (mosh shows its guesses then too).
    pub fn showing(&self) -> bool {
        match self.mode {
            PredictMode::Never => false,
            PredictMode::Always => true,
            PredictMode::Adaptive => self.rtt_high || self.down || self.acked < self.typed_down,
        }
    }

    /// The link to the host went down: keys typed until [`Predictor::link_up`] are guessed
    /// under the usual rules (a hidden epoch stays hidden, a key that cannot be guessed stops
    /// guessing until the host answers it, after the resume) and shown, and the host answers
    /// them once they are sent after the resume (input sequence numbers and echo acks go on
    /// across connections: they belong to the attachment's client token).
    pub fn link_down(&mut self) {
        self.down = true;
    }

    /// The link is up again and the inputs the host had not applied are sent again now: the
    /// guesses still open are given their full time from now (the host could not answer them
    /// while the link was down).
    pub fn link_up(&mut self, now: Instant) {
        if !self.down {
            return;
        }
        self.down = false;
        if self.open() {
            self.since = Some(now);
        }
    }

    /// Forgets every guess (the screen was repainted, or the caller gave up on them).
    pub fn clear(&mut self) {
        self.cells.clear();
        self.cursor = None;
        self.since = None;
    }

    fn open(&self) -> bool {
        !self.cells.is_empty() || self.cursor.is_some()
    }

    /// The user typed `bytes`, sent as input `seq`. Returns whether the overlay changed.
    pub fn typed(&mut self, seq: u64, bytes: &[u8], view: &impl View, now: Instant) -> bool {
        let before = self.overlay();
        if self.down {
            self.typed_down = self.typed_down.max(seq);
        }
        for key in keys(bytes) {
            if key == Key::Enter {
                self.typed_in_line = 0;
            }
            if key == Key::Interrupt {
                // The line is abandoned (a line editor drops it, the terminal discards input
                // not yet read): its guesses go at once, and the host's screen shows through
                // until it answers.
                self.clear();
            }
            if !self.guess(seq, key, view) {
                self.stopped_until = Some(seq);
                if matches!(key, Key::Enter | Key::Interrupt | Key::Other) {
                    // Maybe a new line, maybe a new program: hide guesses until one made after
                    // this key is confirmed.
                    self.hide(seq);
                }
                if key != Key::Enter {
                    self.typed_in_line = 0;
                }
                break;
            }
        }
        if self.open() && self.since.is_none() {
            self.since = Some(now);
        }
        self.overlay() != before
    }

    /// Hides the guesses until the host confirms one made after input `seq` (those made before
    /// may still be confirmed: they were on the line this key left).
    fn hide(&mut self, seq: u64) {
        self.tentative = true;
        self.hidden_at = self.hidden_at.max(seq);
    }

    /// Guesses one key; `false` if it cannot be guessed.
    fn guess(&mut self, seq: u64, key: Key, view: &impl View) -> bool {
        if !self.enabled() || self.stopped_until.is_some_and(|s| s > self.acked) || !view.plain() {
            return false;
        }
        let Some((_, canonical)) = self.flags else {
            return false;
        };
        let (rows, cols) = view.dims();
        let (row, col) = self.cursor.map_or(view.cursor_at(), |(c, _)| c);
        if row >= rows || col >= cols {
            return false;
        }
        let shown = |p: &Self, c: usize| -> Option<char> {
            match p.cells.get(&(row, c)) {
                Some(g) => Some(g.ch),
                None => view.char_at(row, c),
            }
        };
        // The end of the text on this line, as shown.
        let text_end = (0..cols)
            .rev()
            .find(|&c| shown(self, c) != Some(' '))
            .map_or(0, |c| c + 1);
        let set = |p: &mut Self, c: usize, ch: char| {
            p.cells.insert((row, c), Guess { ch, seq });
        };
        // A wide character's two columns (on the screen or guessed over): a line editor
        // moves over and erases both at once, and writing over one half erases the other.
        let wide = |p: &Self, c: usize| {
            shown(p, c).is_none() || (c + 1 < cols && shown(p, c + 1).is_none())
        };
        match key {
            Key::Char(ch) => {
                if !narrow(ch) || ch.width() != Some(1) || col + 1 >= cols || wide(self, col) {
                    // Characters that are not one column wide for certain (see
                    // [`narrow::narrow`]; and U+0D4E, which the model, after `unicode-width`,
                    // takes as zero width), the last column (wrapping) and a wide character
                    // under the cursor are left to the host.
                    return false;
                }
                if canonical || col >= text_end {
                    set(self, col, ch);
                } else {
                    // Inserted: what follows moves right.
                    if text_end >= cols {
                        return false;
                    }
                    let mut moved = Vec::new();
                    for c in col..text_end {
                        match shown(self, c) {
                            Some(x) => moved.push(x),
                            None => return false,
                        }
                    }
                    set(self, col, ch);
                    for (k, x) in moved.into_iter().enumerate() {
                        set(self, col + 1 + k, x);
                    }
                }
                self.typed_in_line += 1;
                self.cursor = Some(((row, col + 1), seq));
            }
            Key::Backspace => {
                if col == 0 || wide(self, col - 1) || (canonical && self.typed_in_line == 0) {
                    return false;
                }
                if canonical || col >= text_end {
                    set(self, col - 1, ' ');
                } else {
                    // Deleted: what follows moves left.
                    for c in col - 1..text_end {
                        match if c + 1 < text_end {
                            shown(self, c + 1)
                        } else {
                            Some(' ')
                        } {
                            Some(x) => set(self, c, x),
                            None => return false,
                        }
                    }
                }
                self.typed_in_line = self.typed_in_line.saturating_sub(1);
                self.cursor = Some(((row, col - 1), seq));
            }
            Key::Left if !canonical && col > 0 && !wide(self, col - 1) => {
                self.cursor = Some(((row, col - 1), seq));
            }
            Key::Right if !canonical && col < text_end => {
                if wide(self, col) {
                    return false;
                }
                self.cursor = Some(((row, col + 1), seq));
            }
            Key::Right if !canonical => {
                // At the end of the text a line editor does not move.
            }
            _ => return false,
        }
        self.stats.shown += 1;
        true
    }

    /// The host's line discipline, from an `EchoAck`.
    pub fn line_discipline(&mut self, echo: bool, canonical: bool) {
        self.flags = Some((echo, canonical));
        if !self.enabled() {
            self.clear();
        }
    }

    /// The host answered inputs up to `seq`, and `view` shows the output up to where their
    /// echo had arrived: guesses for them are confirmed or taken back. Returns whether the
    /// overlay changed.
    pub fn answered(&mut self, seq: u64, view: &impl View) -> bool {
        self.acked = self.acked.max(seq);
        if self.stopped_until.is_some_and(|s| s <= seq) {
            self.stopped_until = None;
        }
        if !self.open() {
            return false;
        }
        let before = self.overlay();
        let mut wrong = false;
        let mut right = 0;
        // A guess made after the key that hid them is confirmed.
        let mut fresh = false;
        for (&(r, c), g) in &self.cells {
            if g.seq <= seq {
                if view.char_at(r, c) == Some(g.ch) {
                    right += 1;
                    fresh |= g.seq > self.hidden_at;
                } else {
                    wrong = true;
                }
            }
        }
        if let Some((at, s)) = self.cursor
            && s <= seq
            && view.cursor_at() != at
        {
            wrong = true;
        }
        if wrong {
            self.stats.wrong += 1;
            // Every guess goes: those made from now on are all after this answer.
            self.hide(seq);
            self.clear();
        } else {
            self.stats.confirmed += right;
            if fresh {
                self.tentative = false;
            }
            self.cells.retain(|_, g| g.seq > seq);
            if self.cursor.is_some_and(|(_, s)| s <= seq) {
                self.cursor = None;
            }
            if !self.open() {
                self.since = None;
            }
        }
        self.overlay() != before
    }

    /// New output was applied to `view`: guesses that no longer fit it (the cursor left their
    /// line, the screen changed mode) are dropped. Returns whether the overlay changed.
    pub fn output(&mut self, view: &impl View, now: Instant) -> bool {
        if !self.open() {
            return false;
        }
        let row = view.cursor_at().0;
        let stale = !view.plain()
            || self.cells.keys().any(|&(r, _)| r != row)
            || self.cursor.is_some_and(|((r, _), _)| r != row);
        if stale || self.expired(now) {
            let before = self.overlay();
            self.clear();
            return self.overlay() != before;
        }
        false
    }

    /// Guesses the host never answered are dropped after a while. Returns whether the overlay
    /// changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        if self.open() && self.expired(now) {
            let before = self.overlay();
            self.clear();
            return self.overlay() != before;
        }
        false
    }

    fn expired(&self, now: Instant) -> bool {
        if self.down {
            // The host cannot answer now.
            return false;
        }
        let limit = EXPIRE.max(self.srtt.unwrap_or_default() * 4);
        self.since.is_some_and(|t| now.duration_since(t) > limit)
    }

    /// What to show on top of the screen now.
    pub fn overlay(&self) -> Overlay {
        if self.tentative || !self.showing() || !self.open() {
            return Overlay::default();
        }
        Overlay {
            cells: self.cells.iter().map(|(&at, g)| (at, g.ch)).collect(),
            cursor: self.cursor.map(|(at, _)| at),
        }
    }
}

#[cfg(test)]
mod tests;
