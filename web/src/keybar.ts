// The terminal's key bar: two rows of keys a phone keyboard lacks, always on screen (nothing to
// scroll), in pages (the "⋯" key turns to the next page). Which keys, in what order, is this
// device's setting: rows of key names (`KEY_NAMES`, or any single character, or `^X`).
import { KEYS, ctrlCode } from './input';

/** What a key does. */
export type KeyDef =
  | { kind: 'send'; name: string; label: string; seq: string; repeat?: boolean }
  | { kind: 'mod'; name: 'Ctrl' | 'Alt'; label: string }
  | { kind: 'action'; name: 'Paste' | 'Copy' | 'Find' | 'More' | 'Keys'; label: string };

const send = (name: string, label: string, seq: string, repeat = false): KeyDef => ({ kind: 'send', name, label, seq, repeat });

/** The named keys. */
export const KEY_NAMES: Record<string, KeyDef> = {
  Esc: send('Esc', 'Esc', KEYS.Escape),
  Tab: send('Tab', 'Tab', KEYS.Tab),
  // Shift+Tab (back-tab): Claude Code's mode switch, reverse completion.
  'S-Tab': send('S-Tab', '⇧Tab', '\x1b[Z'),
  Enter: send('Enter', '⏎', '\r'),
  Bksp: send('Bksp', '⌫', '\x7f', true),
  Up: send('Up', '↑', KEYS.ArrowUp, true),
  Down: send('Down', '↓', KEYS.ArrowDown, true),
  Left: send('Left', '←', KEYS.ArrowLeft, true),
  Right: send('Right', '→', KEYS.ArrowRight, true),
  Home: send('Home', 'Home', KEYS.Home),
  End: send('End', 'End', KEYS.End),
  PgUp: send('PgUp', 'PgUp', KEYS.PageUp, true),
  PgDn: send('PgDn', 'PgDn', KEYS.PageDown, true),
  Del: send('Del', 'Del', KEYS.Delete, true),
  Ins: send('Ins', 'Ins', KEYS.Insert),
  Space: send('Space', '␣', ' '),
  Ctrl: { kind: 'mod', name: 'Ctrl', label: 'Ctrl' },
  Alt: { kind: 'mod', name: 'Alt', label: 'Alt' },
  Paste: { kind: 'action', name: 'Paste', label: 'Paste' },
  Copy: { kind: 'action', name: 'Copy', label: 'Copy' },
  Find: { kind: 'action', name: 'Find', label: 'Find' },
  More: { kind: 'action', name: 'More', label: '⋯' },
  Keys: { kind: 'action', name: 'Keys', label: 'Keys' },
};
const FKEYS = ['\x1bOP', '\x1bOQ', '\x1bOR', '\x1bOS', '\x1b[15~', '\x1b[17~', '\x1b[18~', '\x1b[19~', '\x1b[20~', '\x1b[21~', '\x1b[23~', '\x1b[24~'];
FKEYS.forEach((seq, i) => (KEY_NAMES[`F${i + 1}`] = send(`F${i + 1}`, `F${i + 1}`, seq)));

/**
 * The default: page 1 has what a shell and Claude Code need all the time (^C, Esc, Tab,
 * Shift+Tab, arrows, Paste, the symbols a phone keyboard hides on its second symbol page);
 * page 2 the navigation keys and the rest.
 */
export const DEFAULT_ROWS = [
  'Esc Ctrl Alt Tab S-Tab ^C Paste Up More',
  '| ~ / - _ Copy Left Down Right',
  'Home End PgUp PgDn Del ^D ^Z ^L More',
  'Find Keys \\ < > * $ ` F1',
];

/** One key name: a named key, `^X` (a control character), or one character typed as is. */
export function keyDef(name: string): KeyDef | null {
  if (name in KEY_NAMES) return KEY_NAMES[name];
  if (/^\^.$/u.test(name)) {
    const code = ctrlCode(name[1]);
    return code === null ? null : { kind: 'send', name, label: name, seq: code, repeat: false };
  }
  if ([...name].length === 1) return { kind: 'send', name, label: name, seq: name };
  return null;
}

/** Rows of key names to pages of rows of keys; unknown names are reported, not dropped silently. */
export function parseRows(rows: string[]): { pages: KeyDef[][][]; unknown: string[] } {
  const unknown: string[] = [];
  const parsed = rows.map((r) =>
    r
      .split(/\s+/)
      .filter((n) => n !== '')
      .flatMap((n) => {
        const k = keyDef(n);
        if (!k) unknown.push(n);
        return k ? [k] : [];
      }),
  );
  const pages: KeyDef[][][] = [];
  for (let i = 0; i < parsed.length; i += 2) {
    const page = parsed.slice(i, i + 2).filter((r) => r.length > 0);
    if (page.length) pages.push(page);
  }
  return { pages: pages.length ? pages : parseRows(DEFAULT_ROWS).pages, unknown };
}

/** What the bar calls back with. */
export interface KeyBarHost {
  /** A key's bytes (modifiers are applied by the caller, see `pending`). */
  send(seq: string): void;
  action(name: 'Paste' | 'Copy' | 'Find' | 'Keys'): void;
  /** A modifier was toggled. */
  modifiers(ctrl: boolean, alt: boolean): void;
}

export interface KeyBar {
  el: HTMLElement;
  ctrl: boolean;
  alt: boolean;
  /** Clears the one-shot modifiers (after a key used them). */
  release(): void;
}

/**
 * Builds the bar. Keys never take the focus from the terminal's field (the on-screen keyboard
 * stays up); arrows, PgUp/PgDn and Del repeat while held.
 */
export function buildKeyBar(rows: string[], host: KeyBarHost): KeyBar {
  const { pages } = parseRows(rows);
  const el = document.createElement('div');
  el.className = 'keybar';
  el.dataset.testid = 'keybar';
  let page = 0;
  const bar: KeyBar = {
    el,
    ctrl: false,
    alt: false,
    release() {
      if (bar.ctrl || bar.alt) {
        bar.ctrl = false;
        bar.alt = false;
        paint();
      }
    },
  };
  const modButtons: { name: 'Ctrl' | 'Alt'; b: HTMLButtonElement }[] = [];
  const paint = () => {
    for (const m of modButtons) m.b.classList.toggle('on', m.name === 'Ctrl' ? bar.ctrl : bar.alt);
  };

  const button = (k: KeyDef, cols: number) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'key';
    b.textContent = k.label;
    b.dataset.key = k.name === '^C' ? 'ctrl-c' : k.name.toLowerCase();
    b.setAttribute('aria-label', k.name);
    b.style.gridColumn = `span ${cols}`;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const stop = () => {
      if (timer) clearTimeout(timer);
      timer = null;
    };
    b.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      if (k.kind === 'send') {
        host.send(k.seq);
        if (k.repeat) {
          const again = (delay: number) => {
            timer = setTimeout(() => {
              host.send(k.seq);
              again(60);
            }, delay);
          };
          again(400);
        }
      } else if (k.kind === 'mod') {
        if (k.name === 'Ctrl') bar.ctrl = !bar.ctrl;
        else bar.alt = !bar.alt;
        paint();
        host.modifiers(bar.ctrl, bar.alt);
      } else if (k.name === 'More') {
        page = (page + 1) % pages.length;
        render();
      } else {
        host.action(k.name);
      }
    });
    for (const ev of ['pointerup', 'pointercancel', 'pointerleave']) b.addEventListener(ev, stop);
    b.addEventListener('click', (e) => e.preventDefault());
    if (k.kind === 'mod') modButtons.push({ name: k.name, b });
    if (k.name === '^C') b.classList.add('danger');
    return b;
  };

  const render = () => {
    modButtons.length = 0;
    el.replaceChildren();
    const rowsOf = pages[page] ?? [];
    const width = Math.max(...rowsOf.map((r) => r.length));
    el.style.setProperty('--cols', String(width));
    el.dataset.page = String(page + 1);
    for (const r of rowsOf) {
      const row = document.createElement('div');
      row.className = 'keyrow';
      for (const k of r) row.append(button(k, 1));
      el.append(row);
    }
    paint();
  };
  render();
  return bar;
}
