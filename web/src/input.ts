// The terminal's input layer, free of the DOM so it can be unit tested.
//
// Phones type through an IME: the text of a hidden <input> changes by composition,
// autocorrect and suggestions, not by key presses. The layer keeps what it has already sent
// (`sent`) and turns every change of the field's value into terminal bytes: backspaces for
// what was taken back, then the new text. So a correction is sent as the edit it is, and
// nothing is typed twice.

const enc = new TextEncoder();

/** The longest common prefix of a and b, in code points. */
function commonPrefix(a: string[], b: string[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

export class InputDiffer {
  private sent: string[] = [];

  /** The field now holds `value`: returns the bytes to send (may be empty). */
  update(value: string): string {
    const next = [...value];
    const keep = commonPrefix(this.sent, next);
    const out = '\x7f'.repeat(this.sent.length - keep) + next.slice(keep).join('');
    this.sent = next;
    return out;
  }

  /** The field was cleared by the app (after Enter, or to keep it short). */
  reset() {
    this.sent = [];
  }

  get length() {
    return this.sent.length;
  }
}

/** Applies a sticky Ctrl to typed text: the first character becomes its control code. */
export function applyCtrl(text: string): string {
  if (text.length === 0) return text;
  const c = text[0];
  const code = ctrlCode(c);
  return code === null ? text : code + text.slice(1);
}

export function ctrlCode(c: string): string | null {
  const u = c.toUpperCase();
  if (u >= 'A' && u <= 'Z') return String.fromCharCode(u.charCodeAt(0) - 64);
  const map: Record<string, string> = { '@': '\x00', ' ': '\x00', '[': '\x1b', '\\': '\x1c', ']': '\x1d', '^': '\x1e', _: '\x1f', '?': '\x7f' };
  return map[c] ?? null;
}

export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  altKey: boolean;
  metaKey: boolean;
}

/** Escape sequences of the named keys (xterm, normal cursor mode). */
export const KEYS: Record<string, string> = {
  Enter: '\r',
  Tab: '\t',
  Escape: '\x1b',
  Backspace: '\x7f',
  ArrowUp: '\x1b[A',
  ArrowDown: '\x1b[B',
  ArrowRight: '\x1b[C',
  ArrowLeft: '\x1b[D',
  Home: '\x1b[H',
  End: '\x1b[F',
  PageUp: '\x1b[5~',
  PageDown: '\x1b[6~',
  Delete: '\x1b[3~',
  Insert: '\x1b[2~',
};

/**
 * What a key press sends, when the key is handled on keydown (named keys, Ctrl/Alt chords on a
 * hardware keyboard); `null` leaves the key to the text field (printable text, IME).
 */
export function keyToBytes(e: KeyLike, stickyCtrl: boolean): string | null {
  if (e.metaKey) return null;
  const ctrl = e.ctrlKey || stickyCtrl;
  if (e.key in KEYS && e.key !== 'Backspace') {
    const seq = KEYS[e.key];
    return e.altKey ? '\x1b' + seq : seq;
  }
  if (e.key.length === 1 && ctrl) {
    const code = ctrlCode(e.key);
    if (code !== null) return e.altKey ? '\x1b' + code : code;
  }
  if (e.key.length === 1 && e.altKey) return '\x1b' + e.key;
  return null;
}

export const bytes = (s: string) => enc.encode(s);
