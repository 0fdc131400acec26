//! A side scanner over the output, in step with the emulator's parser, for what the emulator
//! does not tell: where its parser was last in the ground state (so that a snapshot stands for
//! an exact byte offset), the working directory a shell announces with OSC 7, and the scroll
//! region (DECSTBM) and shift state (SO/SI), which `alacritty_terminal` keeps private.
//!
//! It follows the VT500 parser's states closely enough for those things: escape
//! sequences, CSI, and the string sequences (OSC, DCS, SOS, PM, APC), with UTF-8 characters
//! split across chunks. Text runs are skipped to the next ESC in one search.

/// The longest OSC payload kept for inspection (OSC 7 paths are far shorter).
const MAX_OSC: usize = 4096;
/// The longest CSI parameter string kept for inspection.
const MAX_CSI: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Esc,
    /// ESC followed by intermediates (`ESC ( 0`, `ESC # 8`).
    EscIntermediate,
    Csi,
    Osc,
    /// ESC seen inside an OSC: `\` ends it (ST).
    OscEsc,
    /// DCS, SOS, PM, APC: ended by ST only.
    Str,
    StrEsc,
}

/// What one call to [`Scanner::scan`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Scanned {
    /// Length of the prefix of the chunk after which the parser was last in the ground state
    /// with no character half read; `None` if that never happened in this chunk.
    pub ground: Option<usize>,
    /// Payloads of OSC 7 sequences completed in this chunk (after `7;`), in order.
    pub cwd: Vec<Vec<u8>>,
    /// A full reset (RIS, `ESC c`) happened in this chunk.
    pub reset: bool,
}

/// The scanner's state between chunks.
#[derive(Debug)]
pub(super) struct Scanner {
    state: State,
    /// Parameters of the CSI, or payload of the OSC, in progress (bounded).
    buf: Vec<u8>,
    /// Continuation bytes still missing from a UTF-8 character the previous chunk ended in.
    utf8_need: u8,
    /// DECSTBM as last accepted: 1-based top and bottom as sent; `None` is the whole screen.
    region: Option<(u16, Option<u16>)>,
    /// Screen rows, for checking DECSTBM the way the emulator does.
    rows: u16,
    /// Shifted out (SO): G1 is the active character set until SI.
    shifted: bool,
}

impl Scanner {
    pub fn new(rows: u16) -> Self {
        Scanner {
            state: State::Ground,
            buf: Vec::new(),
            utf8_need: 0,
            region: None,
            rows,
            shifted: false,
        }
    }

    /// The output continues after a hole: whatever sequence was half read is gone. The
    /// scroll region stays (the emulator keeps it).
    pub fn interrupt(&mut self) {
        self.state = State::Ground;
        self.buf.clear();
        self.utf8_need = 0;
    }

    /// The screen was resized: the emulator resets its scroll region then.
    pub fn resized(&mut self, rows: u16) {
        self.rows = rows;
        self.region = None;
    }

    /// The DECSTBM that sets the scroll region again (the parameters as they were sent, so
    /// that the emulator clamps them as it did), or `None` for the whole screen.
    pub fn region_sequence(&self) -> Option<String> {
        let (top, bottom) = self.region?;
        Some(match bottom {
            Some(b) => format!("\x1b[{top};{b}r"),
            None => format!("\x1b[{top}r"),
        })
    }

    /// The scroll region for a screen of `rows` rows: 0-based first row and one past the last,
    /// or `None` when it is the whole screen.
    pub fn region(&self, rows: usize) -> Option<(usize, usize)> {
        let (top, bottom) = self.region?;
        let start = (top as usize - 1).min(rows);
        let end = bottom.map_or(rows, usize::from).min(rows);
        (start != 0 || end != rows).then_some((start, end))
    }

    /// Whether G1 is the active character set (SO without an SI since), which
    /// `alacritty_terminal` keeps private.
    pub fn shifted_out(&self) -> bool {
        self.shifted
    }

    /// An SO or SI (or any other C0 control, which changes nothing here) was executed.
    fn control(&mut self, b: u8) {
        match b {
            0x0e => self.shifted = true,
            0x0f => self.shifted = false,
            _ => {}
        }
    }

    /// Scans one chunk (the bytes that follow the previous chunk).
    pub fn scan(&mut self, bytes: &[u8]) -> Scanned {
        let mut out = Scanned::default();
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Ground {
                // A run of text and C0 controls up to the next ESC.
                let run_end = memchr::memchr(0x1b, &bytes[i..]).map_or(bytes.len(), |p| i + p);
                // The last SO or SI of the run decides the shift state.
                if let Some(p) = memchr::memrchr2(0x0e, 0x0f, &bytes[i..run_end]) {
                    self.control(bytes[i + p]);
                }
                self.text(&bytes[i..run_end], i, &mut out);
                if run_end == bytes.len() {
                    break;
                }
                // An ESC in the middle of a character ends it as an error; the parser is
                // clean again once the sequence that ESC starts is done.
                self.utf8_need = 0;
                self.state = State::Esc;
                i = run_end + 1;
                continue;
            }
            let b = bytes[i];
            i += 1;
            match self.state {
                State::Ground => {}
                State::Esc => match b {
                    b'[' => {
                        self.buf.clear();
                        self.state = State::Csi;
                    }
                    b']' => {
                        self.buf.clear();
                        self.state = State::Osc;
                    }
                    b'P' | b'X' | b'^' | b'_' => self.state = State::Str,
                    0x1b => {}
                    0x18 | 0x1a => self.done(&mut out, i),
                    0x20..=0x2f => self.state = State::EscIntermediate,
                    // C0 controls inside an escape sequence are executed; it goes on.
                    0x00..=0x1f => self.control(b),
                    b'c' => {
                        self.region = None;
                        self.shifted = false;
                        out.reset = true;
                        self.done(&mut out, i);
                    }
                    _ => self.done(&mut out, i),
                },
                State::EscIntermediate => match b {
                    0x1b => self.state = State::Esc,
                    0x18 | 0x1a => self.done(&mut out, i),
                    0x00..=0x1f => self.control(b),
                    0x20..=0x2f => {}
                    _ => self.done(&mut out, i),
                },
                State::Csi => match b {
                    0x40..=0x7e => {
                        self.csi(b);
                        self.done(&mut out, i);
                    }
                    0x1b => self.state = State::Esc,
                    0x18 | 0x1a => self.done(&mut out, i),
                    0x00..=0x1f => self.control(b),
                    _ => {
                        if self.buf.len() < MAX_CSI {
                            self.buf.push(b);
                        }
                    }
                },
                State::Osc => match b {
                    0x07 => {
                        self.osc(&mut out);
                        self.done(&mut out, i);
                    }
                    0x1b => self.state = State::OscEsc,
                    0x18 | 0x1a => self.done(&mut out, i),
                    _ => {
                        if self.buf.len() < MAX_OSC {
                            self.buf.push(b);
                        }
                    }
                },
                State::OscEsc => {
                    // ESC \ is ST; any other ESC ends the OSC too and starts a new sequence
                    // with this byte.
                    self.osc(&mut out);
                    if b == b'\\' {
                        self.done(&mut out, i);
                    } else {
                        self.state = State::Esc;
                        i -= 1;
                    }
                }
                State::Str => match b {
                    0x1b => self.state = State::StrEsc,
                    0x18 | 0x1a => self.done(&mut out, i),
                    _ => {}
                },
                State::StrEsc => {
                    if b == b'\\' {
                        self.done(&mut out, i);
                    } else {
                        self.state = State::Esc;
                        i -= 1;
                    }
                }
            }
        }
        out
    }

    /// A run of text and C0 controls that starts at `at` in the chunk.
    fn text(&mut self, run: &[u8], at: usize, out: &mut Scanned) {
        if run.is_empty() {
            return;
        }
        let mut start = 0;
        let mut broken = false;
        if self.utf8_need > 0 {
            // The rest of the character the previous chunk ended in.
            let need = usize::from(self.utf8_need);
            let k = run
                .iter()
                .take(need)
                .take_while(|&&b| b & 0xc0 == 0x80)
                .count();
            if k == run.len() && k < need {
                self.utf8_need -= k as u8;
                return;
            }
            // Complete, or ended by a byte that cannot continue it (an error, clean only
            // once that byte is read).
            self.utf8_need = 0;
            start = k;
            broken = k == 0;
        }
        let (open, need) = utf8_open(&run[start..]);
        self.utf8_need = need;
        let ground = run.len() - open;
        if !broken || ground > 0 {
            out.ground = Some(at + ground);
        }
    }

    /// A sequence ended after byte `i - 1`: ground again.
    fn done(&mut self, out: &mut Scanned, i: usize) {
        self.state = State::Ground;
        out.ground = Some(i);
    }

    fn csi(&mut self, fin: u8) {
        if fin != b'r' || !self.buf.iter().all(|c| c.is_ascii_digit() || *c == b';') {
            return;
        }
        // As vte and alacritty_terminal read DECSTBM: a missing or zero top is 1, a missing or
        // zero bottom is the last row, and a region that is empty is ignored.
        let mut params = self
            .buf
            .split(|&c| c == b';')
            .map(|s| std::str::from_utf8(s).ok()?.parse::<u16>().ok());
        let top = params.next().flatten().filter(|&t| t != 0).unwrap_or(1);
        let bottom = params.next().flatten().filter(|&b| b != 0);
        if top >= bottom.unwrap_or(self.rows) {
            return;
        }
        self.region = (top != 1 || bottom.is_some()).then_some((top, bottom));
    }

    fn osc(&mut self, out: &mut Scanned) {
        if let Some(rest) = self.buf.strip_prefix(b"7;") {
            out.cwd.push(rest.to_vec());
        }
    }
}

/// How many bytes at the end of `run` are a UTF-8 character not yet complete, and how many
/// bytes it still needs: (0, 0) if none.
fn utf8_open(run: &[u8]) -> (usize, u8) {
    let n = run.len();
    for back in 1..=3.min(n) {
        let b = run[n - back];
        if b & 0xc0 == 0x80 {
            continue;
        }
        let need: usize = match b {
            0xf0.. => 4,
            0xe0.. => 3,
            0xc0.. => 2,
            _ => 1,
        };
        return if need > back {
            (back, (need - back) as u8)
        } else {
            (0, 0)
        };
    }
    (0, 0)
}

/// The path of an OSC 7 payload (`file://host/path`, percent-encoded), if it is one.
pub(super) fn cwd_from_osc7(payload: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(payload).ok()?;
    let rest = s.strip_prefix("file://")?;
    let path = &rest[rest.find('/')?..];
    let mut out = Vec::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    let path = String::from_utf8_lossy(&out).into_owned();
    (!path.chars().any(char::is_control)).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ground(chunks: &[&[u8]]) -> Vec<Option<usize>> {
        let mut s = Scanner::new(24);
        chunks.iter().map(|c| s.scan(c).ground).collect()
    }

    #[test]
    fn ground_points() {
        assert_eq!(ground(&[b"abc"]), [Some(3)]);
        assert_eq!(ground(&[b"ab\x1b[3"]), [Some(2)]);
        assert_eq!(ground(&[b"ab\x1b[31m"]), [Some(7)]);
        assert_eq!(ground(&[b"ab\x1b[3", b"1mx"]), [Some(2), Some(3)]);
        assert_eq!(ground(&[b"\x1b]0;title"]), [None]);
        assert_eq!(ground(&[b"\x1b]0;title\x07x"]), [Some(11)]);
        assert_eq!(ground(&[b"\x1b]0;t\x1b\\"]), [Some(7)]);
        assert_eq!(ground(&["ab\u{4e2d}".as_bytes()]), [Some(5)]);
        assert_eq!(ground(&[&"ab\u{4e2d}".as_bytes()[..4]]), [Some(2)]);
        assert_eq!(
            ground(&[&"\u{4e2d}".as_bytes()[..1], &"\u{4e2d}".as_bytes()[1..]]),
            [Some(0), Some(2)]
        );
        let four = "\u{1f600}".as_bytes();
        assert_eq!(
            ground(&[&four[..1], &four[1..2], &four[2..3], &four[3..]]),
            [Some(0), None, None, Some(1)]
        );
        assert_eq!(ground(&[b"\x1b(0"]), [Some(3)]);
        assert_eq!(ground(&[b"\x1b("]), [None]);
        assert_eq!(ground(&[b"\x1bP1$r", b"x\x1b\\y"]), [None, Some(4)]);
    }

    #[test]
    fn scroll_region_as_the_emulator_reads_it() {
        let mut s = Scanner::new(24);
        s.scan(b"\x1b[2;20r");
        assert_eq!(s.region(24), Some((1, 20)));
        s.scan(b"\x1b[5;5r");
        assert_eq!(s.region(24), Some((1, 20)), "an empty region is ignored");
        s.scan(b"\x1b[r");
        assert_eq!(s.region(24), None);
        s.scan(b"\x1b[3r");
        assert_eq!(s.region(24), Some((2, 24)));
        assert_eq!(s.region(10), Some((2, 10)));
        s.scan(b"\x1bc");
        assert_eq!(s.region(24), None);
        s.scan(b"\x1b[?5r\x1b[1;24r");
        assert_eq!(s.region(24), Some((0, 24)).filter(|_| false));
        s.scan(b"\x1b[4;9r");
        s.resized(30);
        assert_eq!(s.region(30), None);
    }

    #[test]
    fn shift_state_follows_so_and_si_wherever_they_are_executed() {
        let mut s = Scanner::new(24);
        let mut after = |bytes: &[u8]| {
            s.scan(bytes);
            s.shifted_out()
        };
        assert!(after(b"ab\x0ecd"));
        assert!(!after(b"\x0f"));
        // Executed inside an escape sequence and a CSI, as the parser does.
        assert!(after(b"\x1b[1\x0em"));
        assert!(!after(b"\x1b(\x0fB"));
        assert!(after(b"\x1b\x0e"));
        // Not inside an OSC; and a full reset clears it.
        assert!(after(b"\x1b]2;\x0f\x07"));
        assert!(!after(b"\x1bc"));
        // The last of several in one run decides.
        assert!(!after(b"\x0ex\x0fy"));
        assert!(after(b"\x0fx\x0ey"));
    }

    #[test]
    fn osc7_split_anywhere() {
        let seq = b"x\x1b]7;file://box/home/me/a%20b\x1b\\y";
        for cut in 0..seq.len() {
            let mut s = Scanner::new(24);
            let mut cwd = s.scan(&seq[..cut]).cwd;
            cwd.extend(s.scan(&seq[cut..]).cwd);
            assert_eq!(cwd.len(), 1, "cut at {cut}");
            assert_eq!(cwd_from_osc7(&cwd[0]).as_deref(), Some("/home/me/a b"));
        }
        assert_eq!(cwd_from_osc7(b"file://h/x%0ay"), None);
        assert_eq!(cwd_from_osc7(b"/no/scheme"), None);
    }
}
