//! Text from others (an agent, a file it shows, a prompt from another device) made safe to
//! print on a terminal: every control character, escape sequence and invisible reordering
//! character is shown as a visible symbol instead of being obeyed, so nothing in it can clear
//! the screen, move the cursor, set the window title, write the clipboard (OSC 52), ring or
//! redraw earlier lines, and nothing can pass for what `peer` itself prints.
//!
//! - C0 controls (U+0000–U+001F) become their Control Pictures (`ESC` → `␛`, `CR` → `␍`,
//!   U+2400 + code), DEL becomes `␡`; [`block`] keeps line feeds and tabs.
//! - C1 controls (U+0080–U+009F, among them the 8-bit CSI and OSC) become `⟨U+009B⟩`.
//! - Characters that reorder or hide text (bidirectional overrides and isolates, zero-width
//!   joiners and spaces, the line and paragraph separators, the byte order mark) become
//!   `⟨U+202E⟩`.

/// Characters that change how text around them is shown without being seen.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{061c}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}')
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\u{7f}' => out.push('\u{2421}'),
        c if (c as u32) < 0x20 => {
            out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'));
        }
        c if ('\u{80}'..='\u{9f}').contains(&c) || invisible(c) => {
            out.push_str(&format!("\u{27e8}U+{:04X}\u{27e9}", c as u32));
        }
        c => out.push(c),
    }
}

/// One line of text: every control character made visible, line feeds included.
pub fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_visible(&mut out, c);
    }
    out
}

/// Text of several lines: line feeds (and CR LF) and tabs kept, every other control
/// character made visible (a lone CR too: it would overwrite the line).
pub fn block(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => {}
            c => push_visible(&mut out, c),
        }
    }
    out
}

/// Whether `s` holds nothing a terminal would act on but line feeds and tabs: what
/// [`block`] returns always does.
pub fn is_plain(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\n' | '\t')
            || !((c as u32) < 0x20
                || c == '\u{7f}'
                || ('\u{80}'..='\u{9f}').contains(&c)
                || invisible(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        // Clear screen and home, a title (OSC 0), the clipboard (OSC 52), a bell.
        let evil = "\x1b[2J\x1b[H-- idle\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07";
        let out = inline(evil);
        assert!(!out.contains('\x1b') && !out.contains('\x07'));
        assert_eq!(out, "␛[2J␛[H-- idle␛]0;pwned␇␛]52;c;cm0gLXJmIH4=␇");
        assert!(is_plain(&out));
        assert!(!is_plain(evil));
    }

    #[test]
    fn lines_stay_lines_and_nothing_overwrites_them() {
        assert_eq!(block("a\r\nb\n\tc"), "a\nb\n\tc");
        // A carriage return would let text overwrite what is before it on the line.
        assert_eq!(block("safe\rEVIL"), "safe␍EVIL");
        assert_eq!(inline("a\nb"), "a␊b");
        // 8-bit CSI, DEL, backspace.
        assert_eq!(inline("x\u{9b}2Jy\u{7f}\u{8}"), "x⟨U+009B⟩2Jy␡␈");
    }

    #[test]
    fn text_cannot_reorder_or_hide_itself() {
        // "Trojan source": a right-to-left override makes `rm -rf ~ #` read differently.
        assert_eq!(inline("ok\u{202e}~ fr- mr"), "ok⟨U+202E⟩~ fr- mr");
        assert_eq!(inline("a\u{200b}b\u{feff}"), "a⟨U+200B⟩b⟨U+FEFF⟩");
        assert_eq!(inline("héllo wörld ✓ 日本"), "héllo wörld ✓ 日本");
    }
}
