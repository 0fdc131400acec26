// Text from an agent (or a file it shows, or another device) shown as text: every control
// character and every character that reorders or hides text becomes a visible symbol, as
// `peer agent attach` shows it (peer/src/client/sanitize.rs): C0 controls become their Control
// Pictures (ESC → ␛, U+2400 + code), DEL ␡, C1 controls and the invisible ones `⟨U+009B⟩`.
// The DOM would not obey an escape sequence, but an invisible one can hide or reorder what a
// person approves, and a shown `␛[2J` says what the agent tried.

function invisible(c: number): boolean {
  return (
    (c >= 0x200b && c <= 0x200f) ||
    (c >= 0x2028 && c <= 0x202e) ||
    (c >= 0x2060 && c <= 0x2064) ||
    (c >= 0x2066 && c <= 0x2069) ||
    c === 0x061c ||
    c === 0xfeff ||
    (c >= 0xfff9 && c <= 0xfffb)
  );
}

function show(c: number, ch: string): string {
  if (c === 0x7f) return '\u2421';
  if (c < 0x20) return String.fromCharCode(0x2400 + c);
  if ((c >= 0x80 && c <= 0x9f) || invisible(c)) return `\u27e8U+${c.toString(16).toUpperCase().padStart(4, '0')}\u27e9`;
  return ch;
}

/** One line: every control character made visible, line feeds included. */
export function inline(s: string): string {
  let out = '';
  for (const ch of s) out += show(ch.codePointAt(0) ?? 0, ch);
  return out;
}

/**
 * Several lines: line feeds (and CR LF) and tabs kept, every other control character made
 * visible (a lone CR too).
 */
export function block(s: string): string {
  let out = '';
  const chars = Array.from(s);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '\n' || ch === '\t') out += ch;
    else if (ch === '\r' && chars[i + 1] === '\n') continue;
    else out += show(ch.codePointAt(0) ?? 0, ch);
  }
  return out;
}
