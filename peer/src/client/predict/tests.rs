//! The engine against the real screen model, fed echo streams as a shell, `cat` and a password
//! prompt produce them.

use super::*;
use crate::proto::WinSize;
use crate::pty::screen::Screen;

/// A screen of 80 × 24 showing `prompt`.
fn screen(prompt: &str) -> Screen {
    let mut s = Screen::new(WinSize { cols: 80, rows: 24 }, 0);
    s.feed(prompt.as_bytes());
    s
}

/// An engine that guesses (always), told the line discipline.
fn engine(echo: bool, canonical: bool) -> Predictor {
    let mut p = Predictor::new(PredictMode::Always);
    p.line_discipline(echo, canonical);
    p
}

/// Types `seq` as `bytes`; returns the overlay.
fn type_(p: &mut Predictor, s: &Screen, seq: u64, bytes: &[u8]) -> Overlay {
    p.typed(seq, bytes, s, Instant::now());
    p.overlay()
}

/// The host's echo `out` arrives, then its answer for inputs up to `seq`.
fn echo(p: &mut Predictor, s: &mut Screen, out: &[u8], seq: u64) -> Overlay {
    s.feed(out);
    p.output(s, Instant::now());
    p.answered(seq, s);
    p.overlay()
}

/// A shell prompt (readline: no echo, no canonical mode) where "a" was typed and confirmed:
/// guesses show from here on.
fn shown_at_a_prompt() -> (Screen, Predictor) {
    let mut s = screen("$ ");
    let mut p = engine(false, false);
    type_(&mut p, &s, 1, b"a");
    echo(&mut p, &mut s, b"a", 1);
    (s, p)
}

/// On the new line (row 1) of a shell: the key typed as input `seq` is hidden until the host
/// confirms it; the next one shows at once.
fn hidden_until_one_is_confirmed(p: &mut Predictor, s: &mut Screen, seq: u64) {
    let col = s.cursor_at().1;
    assert_eq!(type_(p, s, seq, b"x"), Overlay::default(), "hidden");
    echo(p, s, b"x", seq);
    assert_eq!(type_(p, s, seq + 1, b"y").cells, vec![((1, col + 1), 'y')]);
}

/// Readline's terminal (no echo, no canonical mode): the first key is hidden until the host
/// confirms it, then keys show at once, underlined, and go when their echo is in.
#[test]
fn a_shell_line_shows_keys_once_the_first_is_confirmed() {
    let mut s = screen("$ ");
    let mut p = engine(false, false);
    assert_eq!(
        type_(&mut p, &s, 1, b"l"),
        Overlay::default(),
        "first key hidden"
    );
    assert_eq!(echo(&mut p, &mut s, b"l", 1), Overlay::default());
    let o = type_(&mut p, &s, 2, b"s");
    assert_eq!(o.cells, vec![((0, 3), 's')]);
    assert_eq!(o.cursor, Some((0, 4)));
    let o = type_(&mut p, &s, 3, b" -");
    assert_eq!(o.cells, vec![((0, 3), 's'), ((0, 4), ' '), ((0, 5), '-')]);
    assert_eq!(o.cursor, Some((0, 6)));
    // The echo of the first of them: that one is confirmed, the rest still shown.
    let o = echo(&mut p, &mut s, b"s", 2);
    assert_eq!(o.cells, vec![((0, 4), ' '), ((0, 5), '-')]);
    assert_eq!(echo(&mut p, &mut s, b" -", 3), Overlay::default());
    assert_eq!(
        p.stats(),
        Stats {
            shown: 4,
            confirmed: 4,
            wrong: 0
        }
    );
}

/// Inserting in the middle of a line moves what follows; backspace there pulls it back; the
/// arrows move the cursor. Readline's echo (the rest of the line redrawn, the cursor moved
/// back) confirms it.
#[test]
fn editing_in_the_middle_of_a_line_matches_readline() {
    let mut s = screen("$ abc");
    let mut p = engine(false, false);
    type_(&mut p, &s, 1, b"d");
    echo(&mut p, &mut s, b"d", 1);
    // Left twice: the cursor on 'c'.
    let o = type_(&mut p, &s, 2, b"\x1b[D\x1b[D");
    assert_eq!(o.cursor, Some((0, 4)));
    assert!(o.cells.is_empty());
    let o = type_(&mut p, &s, 3, b"X");
    assert_eq!(o.cells, vec![((0, 4), 'X'), ((0, 5), 'c'), ((0, 6), 'd')]);
    assert_eq!(o.cursor, Some((0, 5)));
    let o = type_(&mut p, &s, 4, b"\x7f");
    assert_eq!(o.cells, vec![((0, 4), 'c'), ((0, 5), 'd'), ((0, 6), ' ')]);
    assert_eq!(o.cursor, Some((0, 4)));
    // Readline: back two, insert X and redraw, then delete it and redraw.
    let o = echo(&mut p, &mut s, b"\x08\x08", 2);
    assert_eq!(o.cursor, Some((0, 4)), "the left moves were right");
    let o = echo(&mut p, &mut s, b"Xcd\x08\x08", 3);
    assert!(!o.cells.is_empty(), "the delete is not answered yet");
    let o = echo(&mut p, &mut s, b"\x08cd \x08\x08\x08", 4);
    assert_eq!(o, Overlay::default());
    assert_eq!(p.stats().wrong, 0);
    assert_eq!(s.row_text(0).trim_end(), "$ abcd");
}

/// `cat` in canonical mode (the terminal echoes and edits): characters are written over the
/// cursor, backspace erases only what was typed on this line.
#[test]
fn cat_in_canonical_mode() {
    let mut s = screen("");
    let mut p = engine(true, true);
    type_(&mut p, &s, 1, b"h");
    echo(&mut p, &mut s, b"h", 1);
    let o = type_(&mut p, &s, 2, b"i\x7f\x7f");
    assert_eq!(o.cells, vec![((0, 0), ' '), ((0, 1), ' ')]);
    assert_eq!(o.cursor, Some((0, 0)));
    // One more backspace: nothing typed on this line is left to erase; not guessed.
    let before = p.overlay();
    type_(&mut p, &s, 3, b"\x7f");
    assert_eq!(p.overlay(), before);
    // The line discipline's echo: "i", then "\b \b" twice.
    echo(&mut p, &mut s, b"i\x08 \x08\x08 \x08", 2);
    assert_eq!(p.overlay(), Overlay::default());
    assert_eq!(p.stats().wrong, 0);
}

/// Enter starts a new line (and maybe a new program): the next keys are hidden until one is
/// confirmed.
#[test]
fn enter_hides_guesses_until_the_next_confirmation() {
    let mut s = screen("$ ");
    let mut p = engine(false, false);
    type_(&mut p, &s, 1, b"a");
    echo(&mut p, &mut s, b"a", 1);
    assert!(!type_(&mut p, &s, 2, b"b").cells.is_empty());
    echo(&mut p, &mut s, b"b", 2);
    type_(&mut p, &s, 3, b"\r");
    // Typed before the host answered the Enter: not guessed at all.
    assert_eq!(type_(&mut p, &s, 4, b"c"), Overlay::default());
    echo(&mut p, &mut s, b"\r\n$ c", 4);
    assert_eq!(type_(&mut p, &s, 5, b"d"), Overlay::default(), "hidden");
    echo(&mut p, &mut s, b"d", 5);
    assert_eq!(type_(&mut p, &s, 6, b"e").cells, vec![((1, 4), 'e')]);
}

/// The keys typed before Enter are confirmed after it went out (a slow link, `ls⏎` typed
/// quickly): they were on the line Enter left, so the next line (a password prompt, say) stays
/// hidden until a key typed on it is confirmed.
#[test]
fn keys_confirmed_after_enter_keep_the_next_line_hidden() {
    let (mut s, mut p) = shown_at_a_prompt();
    type_(&mut p, &s, 2, b"l");
    assert_eq!(type_(&mut p, &s, 3, b"s").cells.len(), 2);
    assert_eq!(type_(&mut p, &s, 4, b"\r"), Overlay::default());
    assert_eq!(echo(&mut p, &mut s, b"ls", 3), Overlay::default());
    assert_eq!(p.stats().confirmed, 3);
    echo(&mut p, &mut s, b"\r\n$ ", 4);
    hidden_until_one_is_confirmed(&mut p, &mut s, 5);
    assert_eq!(p.stats().wrong, 0);
}

/// Keys typed before Enter in the same input (pasted) do not show the next line either.
#[test]
fn keys_pasted_with_enter_keep_the_next_line_hidden() {
    let (mut s, mut p) = shown_at_a_prompt();
    assert_eq!(type_(&mut p, &s, 2, b"ls\rx"), Overlay::default());
    assert_eq!(p.stats().shown, 3, "l and s, not the x after Enter");
    // The host answered input 2 while only "ls" was on screen.
    assert_eq!(echo(&mut p, &mut s, b"ls", 2), Overlay::default());
    echo(&mut p, &mut s, b"\r\n$ x", 2);
    hidden_until_one_is_confirmed(&mut p, &mut s, 3);
}

/// Ctrl-C abandons the line: its guesses go at once, nothing is guessed until the host has
/// answered it, and the next line's guesses are hidden until one is confirmed (the late echo
/// of the keys before the ^C does not count).
#[test]
fn ctrl_c_takes_back_the_lines_guesses() {
    let (mut s, mut p) = shown_at_a_prompt();
    assert_eq!(
        type_(&mut p, &s, 2, b"bc").cells,
        vec![((0, 3), 'b'), ((0, 4), 'c')]
    );
    assert!(
        p.typed(3, b"\x03", &s, Instant::now()),
        "the overlay changed"
    );
    assert_eq!(p.overlay(), Overlay::default());
    assert!(!p.open(), "forgotten, not only hidden");
    assert_eq!(type_(&mut p, &s, 4, b"d"), Overlay::default());
    assert_eq!(
        p.stats().shown,
        3,
        "nothing guessed before the ^C is answered"
    );
    // The echo of what was typed before the ^C, bash dropping the line, a new prompt: the
    // first key on it is not shown before the host confirmed it, as after Enter.
    assert_eq!(echo(&mut p, &mut s, b"bc", 2), Overlay::default());
    assert_eq!(echo(&mut p, &mut s, b"^C\r\n$ d", 4), Overlay::default());
    hidden_until_one_is_confirmed(&mut p, &mut s, 5);
    assert_eq!(
        p.stats(),
        Stats {
            shown: 5,
            confirmed: 2,
            wrong: 0
        },
        "b and c were taken back, not confirmed"
    );
}

/// Ctrl-C in the middle of an input (pasted): the guesses before it in the same input go too,
/// the keys after it wait for the host; in canonical mode (`cat`) the terminal discards the
/// line, so backspace has nothing typed on it to erase.
#[test]
fn ctrl_c_within_an_input() {
    let (s, mut p) = shown_at_a_prompt();
    assert_eq!(type_(&mut p, &s, 2, b"bc\x03de"), Overlay::default());
    assert!(!p.open());
    assert_eq!(p.stats().shown, 3);
    let mut s = screen("");
    let mut p = engine(true, true);
    type_(&mut p, &s, 1, b"hi\x03");
    assert_eq!(p.overlay(), Overlay::default());
    echo(&mut p, &mut s, b"hi^C\r\n", 1);
    p.typed(2, b"\x7f", &s, Instant::now());
    assert_eq!(
        p.stats().shown,
        2,
        "backspace after ^C: nothing of this line to erase"
    );
}

/// A program that does not echo (a password prompt that reads raw): the guess is found wrong
/// and was never shown; nothing shows after it either.
#[test]
fn a_key_that_is_not_echoed_is_never_shown() {
    let mut s = screen("Password: ");
    let mut p = engine(false, false);
    assert_eq!(type_(&mut p, &s, 1, b"h"), Overlay::default());
    assert_eq!(echo(&mut p, &mut s, b"", 1), Overlay::default());
    assert_eq!(p.stats().wrong, 1);
    for (i, k) in b"unter2".iter().enumerate() {
        assert_eq!(type_(&mut p, &s, 2 + i as u64, &[*k]), Overlay::default());
    }
}

/// Echo off with canonical mode (`read -s`, `sudo`, `ssh` passwords): no guesses at all.
#[test]
fn echo_off_turns_guessing_off() {
    let s = screen("Password: ");
    let mut p = engine(true, true);
    p.line_discipline(false, true);
    assert!(!p.enabled());
    for (i, k) in b"hunter2".iter().enumerate() {
        p.typed(1 + i as u64, &[*k], &s, Instant::now());
    }
    assert_eq!(p.overlay(), Overlay::default());
    assert_eq!(p.stats().shown, 0);
}

/// Before the host has said how the terminal echoes, nothing is guessed.
#[test]
fn nothing_before_the_line_discipline_is_known() {
    let s = screen("$ ");
    let mut p = Predictor::new(PredictMode::Always);
    p.typed(1, b"a", &s, Instant::now());
    assert_eq!(p.stats().shown, 0);
}

/// Full-screen programs (the alternate screen) are left alone.
#[test]
fn the_alternate_screen_is_left_alone() {
    let mut s = screen("");
    s.feed(b"\x1b[?1049h\x1b[H");
    let mut p = engine(false, false);
    p.typed(1, b"j", &s, Instant::now());
    assert_eq!(p.stats().shown, 0);
    // Output that enters it drops open guesses.
    let mut s = screen("$ ");
    let mut p = engine(false, false);
    type_(&mut p, &s, 1, b"a");
    echo(&mut p, &mut s, b"a", 1);
    assert!(!type_(&mut p, &s, 2, b"b").cells.is_empty());
    s.feed(b"\x1b[?1049h");
    p.output(&s, Instant::now());
    assert_eq!(p.overlay(), Overlay::default());
}

/// Adaptive: on above 30 ms of smoothed round trip, off again below 20 ms.
#[test]
fn adaptive_follows_the_round_trip() {
    let mut p = Predictor::new(PredictMode::Adaptive);
    p.line_discipline(false, false);
    assert!(p.enabled(), "guessing (hidden) before any sample");
    assert!(!p.showing(), "hidden before any sample");
    p.rtt_sample(Duration::from_millis(5));
    assert!(!p.showing());
    for _ in 0..10 {
        p.rtt_sample(Duration::from_millis(150));
    }
    assert!(p.showing(), "srtt {:?}", p.srtt());
    // 25 ms: between the thresholds, stays on.
    for _ in 0..40 {
        p.rtt_sample(Duration::from_millis(25));
    }
    assert!(p.showing(), "srtt {:?}", p.srtt());
    for _ in 0..40 {
        p.rtt_sample(Duration::from_millis(2));
    }
    assert!(!p.showing(), "srtt {:?}", p.srtt());
    let never = {
        let mut p = Predictor::new(PredictMode::Never);
        p.line_discipline(false, false);
        p.rtt_sample(Duration::from_secs(1));
        p
    };
    assert!(!never.enabled() && !never.showing());
}

/// Adaptive mode guesses while the round trip is short (hidden), so that keys typed before it
/// grows do not keep guessing stopped.
#[test]
fn adaptive_guesses_in_the_background() {
    let mut s = screen("$ ");
    let mut p = Predictor::new(PredictMode::Adaptive);
    p.line_discipline(false, false);
    p.rtt_sample(Duration::from_millis(1));
    type_(&mut p, &s, 1, b"a");
    echo(&mut p, &mut s, b"a", 1);
    assert_eq!(
        type_(&mut p, &s, 2, b"b"),
        Overlay::default(),
        "fast link: hidden"
    );
    for _ in 0..20 {
        p.rtt_sample(Duration::from_millis(150));
    }
    assert_eq!(p.overlay().cells, vec![((0, 3), 'b')], "slow link: shown");
}

/// A guess the host never answers goes after the expiry.
#[test]
fn unanswered_guesses_expire() {
    let mut s = screen("$ ");
    let mut p = engine(false, false);
    type_(&mut p, &s, 1, b"a");
    echo(&mut p, &mut s, b"a", 1);
    let t0 = Instant::now();
    p.typed(2, b"b", &s, t0);
    assert!(!p.overlay().cells.is_empty());
    assert!(!p.tick(t0 + Duration::from_millis(100)));
    assert!(p.tick(t0 + EXPIRE + Duration::from_millis(1)));
    assert_eq!(p.overlay(), Overlay::default());
}

/// Wide characters, control keys and the last column are left to the host.
#[test]
fn keys_left_to_the_host() {
    assert_eq!(
        keys(b"a\x7f\x1b[C\x1b[D\r\x01"),
        vec![
            Key::Char('a'),
            Key::Backspace,
            Key::Right,
            Key::Left,
            Key::Enter,
            Key::Other
        ]
    );
    assert_eq!(keys(b"\x03\x01"), vec![Key::Interrupt, Key::Other]);
    assert_eq!(keys("é".as_bytes()), vec![Key::Char('é')]);
    assert_eq!(keys(b"\x1b[A"), vec![Key::Other]);
    let mut s = screen("$ ");
    let mut p = engine(false, false);
    type_(&mut p, &s, 1, b"a");
    echo(&mut p, &mut s, b"a", 1);
    p.typed(2, "中".as_bytes(), &s, Instant::now());
    assert_eq!(p.stats().shown, 1, "only the first key");
    let s = screen(&"x".repeat(79));
    let mut p = engine(false, false);
    p.typed(1, b"y", &s, Instant::now());
    assert_eq!(p.stats().shown, 0, "the last column");
}

/// The web engine's rule: only characters one column wide for certain are guessed. The soft
/// hyphen (a format character `unicode-width` counts as one column), an Arabic number sign
/// (format), an unassigned code point, a spacing mark, a symbol from U+1100 on (the euro sign
/// and the ellipsis are ambiguous-width, one column for `unicode-width`), zero-width and wide
/// ones are left to the host; accented Latin, Greek and Cyrillic (ambiguous-width below
/// U+1100) are guessed.
#[test]
fn only_characters_one_column_wide_for_certain_are_guessed() {
    for ch in [
        '\u{AD}', '\u{600}', '\u{378}', '\u{903}', '€', '…', '\u{200B}', '\u{2060}', '\u{FE0F}',
        '\u{301}', '中', '😀',
    ] {
        let (s, mut p) = shown_at_a_prompt();
        let bytes = ch.to_string();
        assert_eq!(
            type_(&mut p, &s, 2, bytes.as_bytes()),
            Overlay::default(),
            "{:?} (U+{:04X}) guessed",
            ch,
            u32::from(ch)
        );
        assert_eq!(p.stats().shown, 1, "U+{:04X}", u32::from(ch));
    }
    for ch in ['é', 'ß', '¡', 'λ', 'ж', 'ÿ', '~'] {
        let (s, mut p) = shown_at_a_prompt();
        let bytes = ch.to_string();
        assert_eq!(
            type_(&mut p, &s, 2, bytes.as_bytes()).cells,
            vec![((0, 3), ch)],
            "U+{:04X}",
            u32::from(ch)
        );
    }
}

/// A character that is not guessed is a key like Tab: nothing more is guessed until the host
/// has answered it. But it hides nothing: the line goes on, and the next key shows at once.
#[test]
fn a_character_not_guessed_stops_guessing_until_answered_and_hides_nothing() {
    let (mut s, mut p) = shown_at_a_prompt();
    assert_eq!(type_(&mut p, &s, 2, "…".as_bytes()), Overlay::default());
    assert_eq!(
        type_(&mut p, &s, 3, b"b"),
        Overlay::default(),
        "stopped until answered"
    );
    echo(&mut p, &mut s, "…b".as_bytes(), 3);
    let o = type_(&mut p, &s, 4, b"c");
    assert_eq!(o.cells, vec![((0, 5), 'c')], "shown at once: not hidden");
    assert_eq!(p.stats().wrong, 0);
}

/// C1 control characters are control keys: after one, guesses are hidden until a later key is
/// confirmed (as after ^A), not only stopped.
#[test]
fn a_c1_control_is_a_control_key() {
    assert_eq!(keys("\u{85}".as_bytes()), vec![Key::Other]);
    assert_eq!(keys("\u{9b}A".as_bytes()), vec![Key::Other, Key::Char('A')]);
    let (mut s, mut p) = shown_at_a_prompt();
    type_(&mut p, &s, 2, "\u{85}".as_bytes());
    echo(&mut p, &mut s, b"", 2);
    assert_eq!(type_(&mut p, &s, 3, b"b"), Overlay::default(), "hidden");
}

/// A key of several characters: the first is guessed, the combining accent is not, and the
/// cell the host draws (`e` with the accent on it) confirms the guess.
#[test]
fn a_letter_with_a_combining_accent_is_confirmed_by_the_accented_cell() {
    let (mut s, mut p) = shown_at_a_prompt();
    let o = type_(&mut p, &s, 2, "e\u{301}".as_bytes());
    assert_eq!(o.cells, vec![((0, 3), 'e')]);
    let o = echo(&mut p, &mut s, "e\u{301}".as_bytes(), 2);
    assert_eq!(o, Overlay::default());
    assert_eq!(p.stats().wrong, 0);
    assert_eq!(p.stats().confirmed, 2);
    assert_eq!(type_(&mut p, &s, 3, b"x").cells, vec![((0, 4), 'x')]);
}

/// A wide character on the screen: a line editor moves over and erases both its columns at
/// once, and writing over one half erases the other, so keys at it are left to the host.
#[test]
fn keys_at_a_wide_character_are_left_to_the_host() {
    // The cursor after it: backspace and left would take two columns.
    for key in [&b"\x7f"[..], b"\x1b[D"] {
        let mut s = screen("$ 中");
        let mut p = engine(false, false);
        type_(&mut p, &s, 1, b"a");
        echo(&mut p, &mut s, b"a", 1);
        let o = type_(&mut p, &s, 2, b"\x1b[D");
        assert_eq!(o.cursor, Some((0, 4)), "left over a narrow one");
        assert_eq!(type_(&mut p, &s, 3, key), o, "{key:?}");
        assert_eq!(p.stats().shown, 2, "{key:?}");
    }
    // The cursor on it: right would take two columns, a character would erase both.
    for key in [&b"\x1b[C"[..], b"x"] {
        let mut s = screen("$ 中");
        let mut p = engine(false, false);
        type_(&mut p, &s, 1, b"a");
        echo(&mut p, &mut s, b"a", 1);
        type_(&mut p, &s, 2, b"\x1b[D\x1b[D");
        echo(&mut p, &mut s, b"\x08\x08\x08", 2);
        assert_eq!(s.cursor_at(), (0, 2));
        assert_eq!(type_(&mut p, &s, 3, key), Overlay::default(), "{key:?}");
    }
}

/// Every character the web's rule guesses is one column wide for `unicode-width` too (the
/// model's idea of the screen), but for U+0D4E (Malayalam dot reph: a letter, zero width for
/// `unicode-width`), which the CLI leaves to the host as well.
#[test]
fn what_is_guessed_is_one_column_wide_for_unicode_width() {
    use unicode_width::UnicodeWidthChar;
    let odd: Vec<String> = (0u32..0x1100)
        .filter_map(char::from_u32)
        .filter(|&c| narrow(c) && c.width() != Some(1))
        .map(|c| format!("U+{:04X} {:?}", u32::from(c), c.width()))
        .collect();
    assert_eq!(odd, ["U+0D4E Some(0)"]);
    let (s, mut p) = shown_at_a_prompt();
    assert_eq!(
        type_(&mut p, &s, 2, "\u{D4E}".as_bytes()),
        Overlay::default()
    );
}

/// At a shell prompt, a link of 5 ms round trip (adaptive: guesses hidden), "a" confirmed.
fn adaptive_on_a_fast_link() -> (Screen, Predictor) {
    let mut s = screen("$ ");
    let mut p = Predictor::new(PredictMode::Adaptive);
    p.line_discipline(false, false);
    p.rtt_sample(Duration::from_millis(5));
    type_(&mut p, &s, 1, b"a");
    echo(&mut p, &mut s, b"a", 1);
    (s, p)
}

/// Keys typed while the link is down are shown (on a fast link too: their round trip is the
/// outage's), do not expire meanwhile, get their full time from the resume on, and are
/// confirmed by the echo that follows the resume.
#[test]
fn keys_typed_while_the_link_is_down_show_and_are_confirmed_after_the_resume() {
    let (mut s, mut p) = adaptive_on_a_fast_link();
    assert_eq!(type_(&mut p, &s, 2, b"b"), Overlay::default(), "fast link");
    echo(&mut p, &mut s, b"b", 2);
    let t0 = Instant::now();
    p.link_down();
    p.typed(3, b"cd", &s, t0);
    assert_eq!(p.overlay().cells, vec![((0, 4), 'c'), ((0, 5), 'd')]);
    assert_eq!(p.overlay().cursor, Some((0, 6)));
    let long = t0 + EXPIRE * 5;
    assert!(!p.tick(long), "not expired while the link is down");
    p.link_up(long);
    assert!(
        !p.tick(long + EXPIRE / 2),
        "their time runs from the resume"
    );
    assert!(!p.overlay().cells.is_empty(), "shown until answered");
    // The host's first echo ack on the new connection covers only what it had applied.
    assert!(!p.answered(2, &s));
    assert_eq!(echo(&mut p, &mut s, b"cd", 3), Overlay::default());
    assert_eq!(p.stats().wrong, 0);
    // Answered: the fast link's rule again.
    assert_eq!(type_(&mut p, &s, 4, b"e"), Overlay::default(), "fast link");
}

/// Guesses made while the link is down follow the usual rules: hidden ones stay hidden (after
/// Enter), a key that cannot be guessed stops guessing until the host answers it (after the
/// resume), and a guess the host contradicts is taken back.
#[test]
fn the_link_down_keeps_the_rules() {
    // Enter while down: the next line's keys are not guessed before Enter is answered, and
    // hidden until one of them is confirmed.
    let (mut s, mut p) = shown_at_a_prompt();
    p.link_down();
    assert_eq!(type_(&mut p, &s, 2, b"\r"), Overlay::default());
    assert_eq!(type_(&mut p, &s, 3, b"x"), Overlay::default());
    assert_eq!(p.stats().shown, 1);
    p.link_up(Instant::now());
    echo(&mut p, &mut s, b"\r\n$ ", 2);
    echo(&mut p, &mut s, b"x", 3);
    hidden_until_one_is_confirmed(&mut p, &mut s, 4);

    // A guess the host contradicts after the resume (the program went on meanwhile).
    let (mut s, mut p) = shown_at_a_prompt();
    p.link_down();
    assert_eq!(type_(&mut p, &s, 2, b"b").cells, vec![((0, 3), 'b')]);
    p.link_up(Instant::now());
    assert_eq!(echo(&mut p, &mut s, b"Z", 2), Overlay::default());
    assert_eq!(p.stats().wrong, 1);
}
