import { describe, expect, it } from 'vitest';
import { block, inline } from '../src/visible';

// The same cases as peer/src/client/sanitize.rs's tests: the app and the CLI show one text.
describe('visible', () => {
  it('shows escape sequences instead of obeying them', () => {
    expect(inline('\x1b[2J\x1b[H-- idle')).toBe('␛[2J␛[H-- idle');
    expect(inline('\x1b]0;owned\x07')).toBe('␛]0;owned␇');
    expect(inline('\x1b]52;c;aGk=\x1b\\')).toBe('␛]52;c;aGk=␛\\');
    expect(inline('a\x7fb\x00')).toBe('a␡b␀');
    expect(inline('\u009b2J')).toBe('⟨U+009B⟩2J');
    expect(inline('ok\u202etxt.exe')).toBe('ok⟨U+202E⟩txt.exe');
    expect(inline('a\nb')).toBe('a␊b');
  });
  it('keeps lines and tabs in blocks, never a lone CR', () => {
    expect(block('a\r\nb\tc\n')).toBe('a\nb\tc\n');
    expect(block('done\rAllow once?')).toBe('done␍Allow once?');
    expect(block('plain text ✓')).toBe('plain text ✓');
  });
});
