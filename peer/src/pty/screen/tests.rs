//! The snapshot contract: a snapshot taken anywhere in a stream, written to a fresh emulator and
//! followed by the rest of the stream, leaves it exactly as a fresh emulator fed the whole
//! stream (cells with their attributes, cursor and its pending wrap, modes, the saved cursor,
//! the main screen under the alternate one, scrollback). Checked over real programs recorded
//! in `testdata/` (re-record with `testdata/record.py`) and over random output.

use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::Flags;
use proptest::prelude::*;

use super::*;

/// Recordings: name, bytes, size they were made at.
fn recordings() -> Vec<(&'static str, &'static [u8], WinSize)> {
    let s = |cols, rows| WinSize { cols, rows };
    vec![
        ("shell", include_bytes!("testdata/shell.bin"), s(80, 24)),
        ("vim", include_bytes!("testdata/vim.bin"), s(80, 24)),
        (
            "vim_exit",
            include_bytes!("testdata/vim_exit.bin"),
            s(80, 24),
        ),
        (
            "vim_big",
            include_bytes!("testdata/vim_big.bin"),
            s(200, 50),
        ),
        ("less", include_bytes!("testdata/less.bin"), s(80, 24)),
        ("htop", include_bytes!("testdata/htop.bin"), s(80, 24)),
        (
            "htop_exit",
            include_bytes!("testdata/htop_exit.bin"),
            s(80, 24),
        ),
        ("tmux", include_bytes!("testdata/tmux.bin"), s(80, 24)),
        ("ls256", include_bytes!("testdata/ls256.bin"), s(80, 24)),
    ]
}

/// Everything a screen shows or will act on, as lines of text that can be diffed.
pub(super) fn describe(s: &Screen) -> Vec<String> {
    describe_as(s, true)
}

/// [`describe`], with `marks` whether the marks of soft-wrapped lines count. Lines that
/// wrapped at or below the edge of a scroll region (random output does that, programs do not)
/// can keep marks that no printing in order makes; they change nothing on the screen, only
/// how a terminal reflows and copies those lines.
fn describe_as(s: &Screen, marks: bool) -> Vec<String> {
    let term = &s.term;
    let grid = term.grid();
    let mut out = Vec::new();
    let rows = grid.screen_lines() as i32;
    for l in 0..rows {
        let mut row = describe_row(grid, l);
        if !marks {
            // Where a tab started the emulator keeps a tab character for copying; at the last
            // column of a wrapped line the snapshot cannot replay it.
            row = row.replace("'\\t'", "' '");
        }
        if !marks || l + 1 == rows {
            // The last row wraps into nothing: it is marked (and a wide character that did
            // not fit leaves a placeholder) only when text wrapped on the spot, below a scroll
            // region, which a snapshot does not replay: the cells look the same.
            for flag in ["WRAPLINE", "LEADING_WIDE_CHAR_SPACER"] {
                row = row
                    .replace(&format!("{flag} | "), "")
                    .replace(&format!(" | {flag}"), "")
                    .replace(&format!("Flags({flag})"), "Flags(0x0)");
            }
        }
        out.push(row);
    }
    let c = &grid.cursor;
    let last = grid.columns() - 1;
    out.push(format!(
        "cursor {:?} wrap {} pen {} sets {:?}",
        c.point,
        // A resize can leave the emulator waiting to wrap at a column that is not the last,
        // which only printing at the last column (what a snapshot can do) makes.
        c.input_needs_wrap && (marks || c.point.column.0 == last),
        describe_pen(&c.template),
        c.charsets
    ));
    let sc = &grid.saved_cursor;
    out.push(format!(
        "saved {:?} pen {} sets {:?}",
        sc.point,
        describe_pen(&sc.template),
        sc.charsets
    ));
    out.push(format!(
        "mode {:?} style {:?} title {:?}",
        *term.mode(),
        term.cursor_style(),
        s.title
    ));
    out
}

fn describe_pen(c: &alacritty_terminal::term::cell::Cell) -> String {
    let p = super::ser::Pen::of(c);
    format!("{:?}", p.normalized())
}

fn describe_row(
    grid: &alacritty_terminal::grid::Grid<alacritty_terminal::term::cell::Cell>,
    l: i32,
) -> String {
    let row = &grid[Line(l)];
    let mut blank;
    let mut t = String::new();
    for col in 0..grid.columns() {
        let mut cell = &row[Column(col)];
        let has = |c: usize, f: Flags| c < grid.columns() && row[Column(c)].flags.contains(f);
        // A resize cut a wide character in half: the left half is left (at the last column, or
        // at one that was) without its right, or the right half's mark without its left. No
        // escape sequence draws either; a picture draws a blank in the cell's pen.
        let cut = if has(col, Flags::WIDE_CHAR) && !has(col + 1, Flags::WIDE_CHAR_SPACER) {
            Some(Flags::WIDE_CHAR)
        } else if has(col, Flags::WIDE_CHAR_SPACER) && (col == 0 || !has(col - 1, Flags::WIDE_CHAR))
        {
            Some(Flags::WIDE_CHAR_SPACER)
        } else {
            None
        };
        if let Some(flag) = cut {
            blank = cell.clone();
            blank.c = ' ';
            blank.flags.remove(flag);
            cell = &blank;
        }
        t.push_str(&format!(
            "{:?}{:?}/{:?}/{:?}/{:?}/{:?}/{:?} ",
            // Where a tab started, the emulator keeps a tab character for copying; one left in
            // the right half of a wide character is not replayed.
            if cell.c == '\t' && cell.flags.contains(Flags::WIDE_CHAR_SPACER) {
                ' '
            } else {
                cell.c
            },
            // (An emptied list of combining marks is no list.)
            cell.zerowidth().filter(|z| !z.is_empty()),
            cell.fg,
            cell.bg,
            cell.flags,
            cell.underline_color(),
            // Links opened without an id get a number of the emulator's own.
            cell.hyperlink().map(|h| (
                if h.id().ends_with("_alacritty") {
                    "auto"
                } else {
                    h.id()
                }
                .to_owned(),
                h.uri().to_owned()
            ))
        ));
    }
    t
}

/// The text of the newest `n` scrollback lines.
fn history(s: &Screen, n: usize) -> Vec<String> {
    let grid = s.term.grid();
    let n = n.min(grid.history_size()) as i32;
    (1..=n)
        .map(|k| {
            let row = &grid[Line(-k)];
            (0..grid.columns())
                .map(|c| row[Column(c)].c)
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

/// Bytes that reveal state a screen holds but does not show: the saved cursor with its pen
/// and character set, the main screen under the alternate one, the scroll region, and (a
/// lowercase letter last, which line drawing maps) the character set in use, SO/SI included.
const PROBE: &[u8] = b"\x1b8Z\x1b[?1049lQ\x1b[999;1H\n\nR\x1b[1;1HSq";

/// Feeds `bytes` to `s` in chunks whose sizes come from `cuts` (cycled), as a PTY would.
fn feed_chunked(s: &mut Screen, bytes: &[u8], cuts: &[usize]) {
    let mut at = 0;
    let mut k = 0;
    while at < bytes.len() {
        let n = cuts
            .get(k % cuts.len().max(1))
            .copied()
            .unwrap_or(bytes.len())
            .max(1);
        let end = (at + n).min(bytes.len());
        s.feed(&bytes[at..end]);
        at = end;
        k += 1;
    }
}

fn first_difference(a: &[String], b: &[String]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} vs {} lines", a.len(), b.len()));
    }
    a.iter()
        .zip(b)
        .enumerate()
        .find(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| {
            let common = x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count();
            let from = common.saturating_sub(40);
            format!(
                "line {i}:\n snapshot+rest: …{}\n whole stream:  …{}",
                x.chars().skip(from).take(200).collect::<String>(),
                y.chars().skip(from).take(200).collect::<String>()
            )
        })
}

/// Snapshot after `cut` bytes (fed in `chunks`), then the rest, against the whole stream.
/// Returns the first difference, if any.
fn round_trip(
    bytes: &[u8],
    size: WinSize,
    scrollback: usize,
    cut: usize,
    chunks: &[usize],
) -> Option<String> {
    let mut a = Screen::new(size, scrollback);
    feed_chunked(&mut a, &bytes[..cut], chunks);
    let snap = a.snapshot(scrollback);
    assert!(snap.offset <= cut as u64);
    let mut b = Screen::new(size, scrollback);
    b.feed(&snap.data);
    let rest = &bytes[snap.offset as usize..];
    feed_chunked(&mut b, rest, chunks);
    let mut whole = Screen::new(size, scrollback);
    feed_chunked(&mut whole, bytes, chunks);
    if let Some(d) = first_difference(&describe(&b), &describe(&whole)) {
        return Some(format!("after the rest: {d}"));
    }
    let (hb, hw) = (history(&b, scrollback), history(&whole, scrollback));
    let n = hb.len().min(hw.len()).min(snap.scrollback);
    if hb[..n] != hw[..n] {
        return Some(format!(
            "scrollback differs: {:?}",
            first_difference(&hb[..n], &hw[..n])
        ));
    }
    b.feed(PROBE);
    whole.feed(PROBE);
    first_difference(&describe(&b), &describe(&whole)).map(|d| format!("after the probe: {d}"))
}

#[test]
fn snapshots_of_recorded_programs_equal_replaying_the_whole_stream() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, bytes, size) in recordings() {
        // 20 cut points over the recording, and odd chunk sizes so that escape sequences and
        // characters are split between chunks.
        for k in 1..=20 {
            let cut = bytes.len() * k / 20;
            for (scrollback, chunks) in [
                (1000, &[4096usize][..]),
                (50, &[1, 7, 300, 13, 64 * 1024][..]),
            ] {
                checked += 1;
                if let Some(d) = round_trip(bytes, size, scrollback, cut, chunks) {
                    failures.push(format!("{name} cut {cut} scrollback {scrollback}: {d}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} round trips differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn a_snapshot_stands_for_the_last_ground_offset() {
    let mut s = Screen::new(WinSize { cols: 20, rows: 4 }, 10);
    s.feed(b"abc\x1b[3");
    assert_eq!((s.offset(), s.fed()), (3, 6));
    s.feed(b"1mred");
    assert_eq!(s.offset(), 11);
    s.feed(&"\u{4e2d}".as_bytes()[..2]);
    assert_eq!((s.offset(), s.fed()), (11, 13));
    assert_eq!(s.snapshot(0).offset, 11);
}

#[test]
fn facts_title_cwd_last_line_bells() {
    let mut s = Screen::new(WinSize { cols: 40, rows: 5 }, 10);
    s.feed(b"\x1b]0;build: make\x07\x1b]7;file://box/home/me/src%20x\x1b\\");
    s.feed(b"$ make\r\ncompiling \x1b[1mfoo\x1b[0m\x07\r\n\r\n");
    let f = s.facts();
    assert_eq!(f.title.as_deref(), Some("build: make"));
    assert_eq!(f.cwd.as_deref(), Some("/home/me/src x"));
    assert_eq!(f.last_line.as_deref(), Some("compiling foo"));
    assert_eq!(f.bells, 1);
    s.feed(b"\x1b]2;\x07");
    assert_eq!(s.facts().title.as_deref(), Some(""));
}

#[test]
fn skipped_output_is_counted_and_the_model_goes_on() {
    let mut s = Screen::new(WinSize { cols: 10, rows: 3 }, 10);
    s.feed(b"one\r\n\x1b[3");
    s.skip_to(100);
    assert_eq!((s.offset(), s.fed(), s.skipped()), (100, 100, 92));
    // The half-read CSI is forgotten: this is text, not its end.
    s.feed(b"1mtwo");
    assert_eq!(s.row_text(1), "1mtwo");
}

#[test]
fn the_emulator_never_answers_queries() {
    // Device attributes, cursor position, colours: answered by the client's terminal only.
    let mut s = Screen::new(WinSize::default(), 10);
    s.feed(b"\x1b[c\x1b[6n\x1b]11;?\x07\x1b[>c\x1b[?u");
    assert_eq!(s.text().trim(), "");
}

// ---------------------------------------------------------------------------------------
// Random output

/// Text: with `wide`, wide characters too. (A cursor that lands on half a wide character and
/// edits there leaves halves that each emulator repairs in its own way; programs do not do
/// that, so wide characters are tested with moves that do not land inside them.)
fn arb_text(wide: bool) -> impl Strategy<Value = Vec<u8>> {
    let wide_text = if wide {
        vec!["\u{4e2d}\u{6587}", "\u{1f600}"]
    } else {
        vec!["ab", "x"]
    };
    prop::collection::vec(
        prop_oneof![
            "[a-z ]{1,12}".prop_map(String::into_bytes),
            prop::sample::select(wide_text).prop_map(|t| t.as_bytes().to_vec()),
            Just("e\u{301}".as_bytes().to_vec()),
            Just("\u{2500}\u{2502}".as_bytes().to_vec()),
            Just(b"\t".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(if wide {
                b"\r".to_vec()
            } else {
                b"\x08".to_vec()
            }),
            Just(b"\x07".to_vec()),
        ],
        1..4,
    )
    .prop_map(|v| v.concat())
}

fn arb_sgr() -> impl Strategy<Value = Vec<u8>> {
    let color = prop_oneof![
        (0u8..8).prop_map(|n| format!("3{n}")),
        (0u8..8).prop_map(|n| format!("10{n}")),
        any::<u8>().prop_map(|n| format!("38;5;{n}")),
        any::<(u8, u8, u8)>().prop_map(|(r, g, b)| format!("48;2;{r};{g};{b}")),
        any::<u8>().prop_map(|n| format!("58;5;{n}")),
        prop::sample::select(vec![
            "0", "1", "2", "3", "4", "4:3", "5", "7", "8", "9", "22", "24", "27", "39", "49"
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(color, 1..4).prop_map(|v| format!("\x1b[{}m", v.join(";")).into_bytes())
}

/// Control sequences: with `wide`, only moves to the start of a line and whole-line edits.
/// Not a full reset (RIS): alacritty_terminal resets a row only as far as it was written, so
/// cells a scroll filled with a background outlive a reset (what a snapshot draws does not).
fn arb_control(wide: bool) -> impl Strategy<Value = Vec<u8>> {
    let n = 0u16..30;
    let cols = if wide { 0u16..1 } else { 0u16..30 };
    let edits = if wide {
        // Erasing from or to the cursor can split a wide character; the whole screen only.
        vec!['A', 'B', 'd', 'L', 'M', 'S', 'T']
    } else {
        vec![
            'A', 'B', 'C', 'D', 'G', 'd', 'J', 'K', 'X', '@', 'P', 'L', 'M', 'S', 'T',
        ]
    };
    prop_oneof![
        (n.clone(), cols).prop_map(|(r, c)| format!("\x1b[{r};{c}H")),
        (prop::sample::select(edits), 0u16..6).prop_map(|(f, k)| format!("\x1b[{k}{f}")),
        (0u16..10, 0u16..12).prop_map(|(t, b)| format!("\x1b[{t};{b}r")),
        Just("\x1b[r".to_string()),
        prop::sample::select(vec![
            "\x1bD", "\x1bM", "\x1bE", "\x1b7", "\x1b8", "\x1b(0", "\x1b(B", "\x1b)0", "\x1b=",
            "\x1b>", "\x1b[2J", "\x0e", "\x0f",
        ])
        .prop_map(String::from),
        (
            // Insert mode only without wide characters: inserting before half of one splits
            // it, which each emulator repairs in its own way.
            prop::sample::select(vec![
                "?1049",
                "?25",
                "?7",
                "?6",
                if wide { "?1049" } else { "4" },
                "20",
                "?1",
                "?2004",
                "?1000",
                "?1002",
                "?1003",
                "?1006",
                "?1005",
                "?1004",
                "?1007",
                "?1042",
            ]),
            any::<bool>()
        )
            .prop_map(|(m, on)| format!("\x1b[{m}{}", if on { 'h' } else { 'l' })),
        (0u8..7).prop_map(|n| format!("\x1b[{n} q")),
        "[a-z ]{0,8}".prop_map(|t| format!("\x1b]2;{t}\x07")),
        "[a-z/]{1,8}".prop_map(|t| format!("\x1b]7;file://h/{t}\x1b\\")),
        "[a-z]{1,5}".prop_map(|u| format!("\x1b]8;;http://{u}\x1b\\")),
        Just("\x1b]8;;\x1b\\".to_string()),
    ]
    .prop_map(String::into_bytes)
}

/// A stream of random output, and the byte offsets where the screen is resized.
fn arb_stream(wide: bool) -> impl Strategy<Value = (Vec<u8>, Vec<(usize, WinSize)>)> {
    let ops = prop::collection::vec(
        prop_oneof![3 => arb_text(wide), 2 => arb_sgr(), 3 => arb_control(wide)],
        1..120,
    );
    let resizes = prop::collection::vec(
        (any::<prop::sample::Index>(), 3u16..30, 2u16..12)
            .prop_map(|(i, cols, rows)| (i, WinSize { cols, rows })),
        0..3,
    );
    (ops, resizes).prop_map(|(ops, resizes)| {
        // Resizes happen between reads of the PTY, so at op boundaries.
        let mut starts = Vec::new();
        let mut bytes = Vec::new();
        for op in &ops {
            starts.push(bytes.len());
            bytes.extend_from_slice(op);
        }
        let mut resizes: Vec<_> = resizes
            .into_iter()
            .map(|(i, s)| (starts[i.index(starts.len())], s))
            .collect();
        resizes.sort_by_key(|r| r.0);
        (bytes, resizes)
    })
}

/// Feeds `bytes[range]`, resizing before the offsets the stream says.
fn feed_resizing(
    s: &mut Screen,
    bytes: &[u8],
    resizes: &[(usize, WinSize)],
    range: std::ops::Range<usize>,
) {
    let mut at = range.start;
    for (o, size) in resizes.iter().filter(|r| range.contains(&r.0)) {
        s.feed(&bytes[at..*o]);
        at = *o;
        s.resize(*size);
    }
    s.feed(&bytes[at..range.end]);
}

/// Feeds random output, takes a snapshot at `at`, replays it with the rest into a fresh screen
/// and compares with a screen fed everything.
fn random_round_trip(
    bytes: &[u8],
    resizes: &[(usize, WinSize)],
    at: prop::sample::Index,
    size: WinSize,
    scrollback: usize,
) -> Result<(), TestCaseError> {
    let cut = at.index(bytes.len() + 1);
    let mut a = Screen::new(size, scrollback);
    // Resizes at the cut happen before the snapshot.
    feed_resizing(&mut a, bytes, resizes, 0..cut);
    for (_, s) in resizes.iter().filter(|r| r.0 == cut) {
        a.resize(*s);
    }
    // Known limit: in origin mode a cursor that DECRC put outside the scroll region cannot be
    // placed there again by any sequence that leaves the saved cursor alone (origin-relative
    // moves stay inside the region); the picture puts it at the region's edge instead.
    prop_assume!(!cursor_outside_origin_region(&a));
    let snap = a.snapshot(scrollback);

    let mut b = Screen::new(snap.size, scrollback);
    b.feed(&snap.data);
    b.feed(&bytes[snap.offset as usize..cut]);
    b.feed(&bytes[cut..]);
    // Taking a snapshot changes nothing in the screen it was taken of.
    a.feed(&bytes[cut..]);

    let mut whole = Screen::new(size, scrollback);
    let before: Vec<_> = resizes.iter().copied().filter(|r| r.0 <= cut).collect();
    feed_resizing(&mut whole, bytes, &before, 0..cut);
    for (_, s) in before.iter().filter(|r| r.0 == cut) {
        whole.resize(*s);
    }
    whole.feed(&bytes[cut..]);
    let case = || {
        format!(
            "stream {:?} cut {cut} (snapshot at {}) resizes {resizes:?}\nsnapshot {:?}",
            String::from_utf8_lossy(bytes),
            snap.offset,
            String::from_utf8_lossy(&snap.data)
        )
    };
    let d = first_difference(&describe_as(&b, false), &describe_as(&whole, false));
    prop_assert!(
        d.is_none(),
        "after the rest: {}\n{}",
        d.unwrap_or_default(),
        case()
    );
    b.feed(PROBE);
    whole.feed(PROBE);
    let d = first_difference(&describe_as(&b, false), &describe_as(&whole, false));
    prop_assert!(
        d.is_none(),
        "after the probe: {}\n{}",
        d.unwrap_or_default(),
        case()
    );
    Ok(())
}

/// Feeds random output with resizes on the way, takes a snapshot at the end and checks that
/// a fresh screen shows what that one shows.
fn resized_snapshot(
    bytes: &[u8],
    resizes: &[(usize, WinSize)],
    size: WinSize,
) -> Result<(), TestCaseError> {
    let mut a = Screen::new(size, 10);
    feed_resizing(&mut a, bytes, resizes, 0..bytes.len());
    // The known limit `random_round_trip` describes: it can arise here as well.
    prop_assume!(!cursor_outside_origin_region(&a));
    let snap = a.snapshot(10);
    let mut b = Screen::new(snap.size, 10);
    b.feed(&snap.data);
    b.feed(&bytes[snap.offset as usize..]);
    let d = first_difference(&describe_as(&b, false), &describe_as(&a, false));
    prop_assert!(
        d.is_none(),
        "{}\nstream {:?} resizes {resizes:?}",
        d.unwrap_or_default(),
        String::from_utf8_lossy(bytes)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Random output with every kind of cursor move and edit, a snapshot anywhere (inside
    /// sequences and characters too): the snapshot and the rest of the output leave a fresh
    /// screen as the whole output does, down to the state the probe reveals.
    #[test]
    fn snapshots_of_random_output_equal_replaying_it(
        (bytes, _) in arb_stream(false),
        at in any::<prop::sample::Index>(),
        cols in 3u16..30,
        rows in 2u16..12,
        scrollback in 0usize..20,
    ) {
        random_round_trip(&bytes, &[], at, WinSize { cols, rows }, scrollback)?;
    }

    /// The same with wide characters (and moves that do not land inside them).
    #[test]
    fn snapshots_of_random_wide_output_equal_replaying_it(
        (bytes, _) in arb_stream(true),
        at in any::<prop::sample::Index>(),
        cols in 3u16..30,
        rows in 2u16..12,
        scrollback in 0usize..20,
    ) {
        random_round_trip(&bytes, &[], at, WinSize { cols, rows }, scrollback)?;
    }

    /// Resizes on the way: a snapshot taken after them shows the same screen. (Only what
    /// shows: after a resize alacritty_terminal's rows remember how far they were written,
    /// which decides how later resizes reflow them and how far a reset clears them; a fresh
    /// terminal written from a snapshot differs there. Programs redraw on SIGWINCH.)
    #[test]
    fn snapshots_after_resizes_show_the_same_screen(
        (bytes, resizes) in arb_stream(false),
        cols in 3u16..30,
        rows in 2u16..12,
    ) {
        resized_snapshot(&bytes, &resizes, WinSize { cols, rows })?;
    }

    /// The same with wide characters.
    #[test]
    fn snapshots_of_wide_output_after_resizes_show_the_same_screen(
        (bytes, resizes) in arb_stream(true),
        cols in 3u16..30,
        rows in 2u16..12,
    ) {
        resized_snapshot(&bytes, &resizes, WinSize { cols, rows })?;
    }
}

/// Origin mode is on and the cursor is outside the scroll region (see `random_round_trip`).
fn cursor_outside_origin_region(s: &Screen) -> bool {
    if !s.term.mode().contains(TermMode::ORIGIN) {
        return false;
    }
    let line = s.term.grid().cursor.point.line.0;
    let (top, bottom) = s
        .scan
        .region(usize::from(s.size.rows))
        .unwrap_or((0, usize::from(s.size.rows)));
    line < top as i32 || line >= bottom as i32
}
