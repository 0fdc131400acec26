// Predictive local echo, in mosh's manner (the same engine as the CLI's
// peer/src/client/predict.rs): printable keys, backspace and the left and right arrows are
// shown at once, underlined, instead of after a round trip, and checked against the host's
// screen once the host says their echo has arrived (`EchoAck`). A wrong guess is taken back as
// soon as that answer is in.
//
// When it guesses: the setting (`always`, or `adaptive`, which shows its guesses only while the
// smoothed round trip is above 30 ms, and hides them again below 20 ms); not on the alternate screen (full-screen programs); not while
// the host says the terminal does not echo but edits lines itself (password prompts); not
// before the host said how it echoes; after any other key (Enter, Tab, control keys) nothing
// until the host has answered it. Guesses start hidden, at first, after Enter or another such
// key and after a wrong guess, and show once the host has confirmed one of them made after that
// key (the late confirmation of keys typed before an Enter does not count): so the first key
// typed into a password prompt is never shown. Ctrl-C also takes back the guesses made
// before it (the line they were on is abandoned). Only characters known to be one column wide
// are guessed: not combining marks, zero-width or wide ones.
//
// While the link is down (the app reconnecting: `linkDown`) keys are guessed and shown as
// ever (in adaptive mode whatever the round trip, until they are answered), not expired, and
// checked once the resume has sent them (`linkUp`); a resume that finds another session or none
// ends the attachment, and its guesses are taken back (echo.ts). The same rules as the CLI's.
//
// The engine knows the screen through `PredictView` (what the host sent, without guesses) and
// says what to show on top of it (`overlay()`); drawing is the caller's business.

export type PredictMode = 'never' | 'always' | 'adaptive';

/** Above this smoothed round trip (ms), adaptive prediction starts. */
export const RTT_ON = 30;
/** Below this, it stops. */
export const RTT_OFF = 20;
/** A guess the host has not answered after this long (ms; or four round trips) is dropped. */
export const EXPIRE = 2000;

export interface PredictView {
  rows: number;
  cols: number;
  /** Cursor [row, col]. */
  cursor(): [number, number];
  /** The character of a cell (' ' when blank; null for the right half of a wide one). */
  charAt(row: number, col: number): string | null;
  /** The main screen, no insert or origin mode, a cursor not waiting to wrap. */
  plain(): boolean;
}

export interface Overlay {
  cells: { row: number; col: number; ch: string }[];
  cursor: [number, number] | null;
}

export interface PredictStats {
  shown: number;
  confirmed: number;
  wrong: number;
}

type Key =
  | { k: 'char'; ch: string }
  | { k: 'backspace' }
  | { k: 'left' }
  | { k: 'right' }
  | { k: 'enter' }
  | { k: 'interrupt' }
  | { k: 'other' };

/** The keys of an input, up to the first that cannot be guessed. */
export function keys(text: string): Key[] {
  const out: Key[] = [];
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    const code = c.codePointAt(0) ?? 0;
    if (c === '\x1b') {
      const two = (chars[i + 1] ?? '') + (chars[i + 2] ?? '');
      if (two === '[C' || two === 'OC') out.push({ k: 'right' });
      else if (two === '[D' || two === 'OD') out.push({ k: 'left' });
      else {
        out.push({ k: 'other' });
        return out;
      }
      i += 2;
    } else if (c === '\x7f' || c === '\b') out.push({ k: 'backspace' });
    else if (c === '\r' || c === '\n') out.push({ k: 'enter' });
    else if (c === '\x03') out.push({ k: 'interrupt' });
    else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out.push({ k: 'other' });
    else out.push({ k: 'char', ch: c });
  }
  return out;
}

/**
 * One column wide for certain (as xterm.js draws it): printable, below the wide ranges (Hangul,
 * CJK, fullwidth forms, emoji: from U+1100 on, left to the host), and neither a mark (combining:
 * zero width, drawn in the cell before) nor a format, private or unassigned character (zero or
 * unknown width).
 */
export function narrow(ch: string): boolean {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x20 || cp >= 0x1100) return false;
  // U+06DE was a mark before Unicode 6.1, and xterm.js's table still has it as one.
  return cp !== 0x6de && !/[\p{M}\p{C}]/u.test(ch);
}

/** Whether the cell shows `ch`, perhaps with marks the host combined with it since. */
function shows(cell: string | null, ch: string): boolean {
  return cell === ch || (cell !== null && cell.startsWith(ch) && /^\p{M}+$/u.test(cell.slice(ch.length)));
}

interface Guess {
  ch: string;
  seq: number;
}

export class Predictor {
  private srtt: number | null = null;
  private rttHigh = false;
  /** The host's last word on the line discipline: [echo, canonical]. */
  private flags: [boolean, boolean] | null = null;
  /** Guessed cells by "row,col". */
  private cells = new Map<string, Guess & { row: number; col: number }>();
  private cur: { at: [number, number]; seq: number } | null = null;
  private since: number | null = null;
  private tentative = true;
  /** While tentative: only a guess made by a later input than this one shows the rest. */
  private hiddenAt = 0;
  private stoppedUntil: number | null = null;
  private typedInLine = 0;
  private acked = 0;
  /** The link to the host is down (reconnecting). */
  private down = false;
  /**
   * The last input typed while the link was down: until it is answered, guesses show in
   * adaptive mode whatever the round trip.
   */
  private typedDown = 0;
  readonly stats: PredictStats = { shown: 0, confirmed: 0, wrong: 0 };
  /** What the last wrong guess was (for diagnosis): the answer, and what it found on screen. */
  lastWrong: { seq: number; guessed: string; found: string; cursor: [number, number] | null; at: [number, number] } | null = null;

  constructor(public mode: PredictMode) {}

  get rtt(): number | null {
    return this.srtt;
  }

  /** A round-trip sample (input sent → acknowledged), ms. */
  rttSample(ms: number) {
    this.srtt = this.srtt === null ? ms : (this.srtt * 7 + ms) / 8;
    if (this.srtt > RTT_ON) this.rttHigh = true;
    else if (this.srtt < RTT_OFF) this.rttHigh = false;
  }

  /**
   * Whether guesses are made now (setting and line discipline). `adaptive` makes them whatever
   * the round trip, so that it knows where the cursor will be once the round trip grows.
   */
  enabled(): boolean {
    return this.mode !== 'never' && this.flags !== null && (this.flags[0] || !this.flags[1]);
  }

  /**
   * Whether guesses are shown (setting and round trip). In adaptive mode also while the link is
   * down and until the keys typed meanwhile are answered: their round trip is as long as the
   * outage (mosh shows its guesses then too).
   */
  showing(): boolean {
    if (this.mode === 'adaptive') return this.rttHigh || this.down || this.acked < this.typedDown;
    return this.mode === 'always';
  }

  /**
   * The link to the host went down: keys typed until `linkUp` are guessed under the usual rules
   * (a hidden epoch stays hidden, a key that cannot be guessed stops guessing until the host
   * answers it, after the resume) and shown, and the host answers them once they are sent after
   * the resume (input sequence numbers and echo acks go on across connections: they belong to
   * the channel's client token).
   */
  linkDown() {
    this.down = true;
  }

  /**
   * The link is up again and the inputs the host had not applied are sent again now: the guesses
   * still open are given their full time from `now` (the host could not answer them while the
   * link was down).
   */
  linkUp(now: number) {
    if (!this.down) return;
    this.down = false;
    if (this.open()) this.since = now;
  }

  /** Forgets every guess. */
  clear() {
    this.cells.clear();
    this.cur = null;
    this.since = null;
  }

  private open() {
    return this.cells.size > 0 || this.cur !== null;
  }

  /** The user typed `text`, sent as input `seq`. Returns whether the overlay changed. */
  typed(seq: number, text: string, view: PredictView, now: number): boolean {
    const before = JSON.stringify(this.overlay());
    if (this.down) this.typedDown = Math.max(this.typedDown, seq);
    for (const key of keys(text)) {
      if (key.k === 'enter') this.typedInLine = 0;
      // Ctrl-C abandons the line (a line editor drops it, the terminal discards input not yet
      // read): its guesses go at once, and the host's screen shows through until it answers.
      if (key.k === 'interrupt') this.clear();
      if (!this.guess(seq, key, view)) {
        this.stoppedUntil = seq;
        if (key.k === 'enter' || key.k === 'interrupt' || key.k === 'other') this.hide(seq);
        if (key.k !== 'enter') this.typedInLine = 0;
        break;
      }
    }
    if (this.open() && this.since === null) this.since = now;
    return JSON.stringify(this.overlay()) !== before;
  }

  /**
   * Hides the guesses until the host confirms one made after input `seq` (those made before may
   * still be confirmed: they were on the line this key left).
   */
  private hide(seq: number) {
    this.tentative = true;
    this.hiddenAt = Math.max(this.hiddenAt, seq);
  }

  private guess(seq: number, key: Key, view: PredictView): boolean {
    if (!this.enabled() || (this.stoppedUntil !== null && this.stoppedUntil > this.acked) || !view.plain()) return false;
    if (this.flags === null) return false;
    const canonical = this.flags[1];
    const { rows, cols } = view;
    const [row, col] = this.cur?.at ?? view.cursor();
    if (row >= rows || col >= cols) return false;
    const shown = (c: number): string | null => this.cells.get(`${row},${c}`)?.ch ?? view.charAt(row, c);
    let textEnd = 0;
    for (let c = cols - 1; c >= 0; c--) {
      if (shown(c) !== ' ') {
        textEnd = c + 1;
        break;
      }
    }
    const set = (c: number, ch: string) => this.cells.set(`${row},${c}`, { row, col: c, ch, seq });
    // A wide character's two columns: a line editor moves over and erases both at once.
    const wide = (c: number) => shown(c) === null || (c + 1 < cols && shown(c + 1) === null);
    switch (key.k) {
      case 'char': {
        if (!narrow(key.ch) || col + 1 >= cols || wide(col)) return false;
        if (canonical || col >= textEnd) set(col, key.ch);
        else {
          if (textEnd >= cols) return false;
          const moved: string[] = [];
          for (let c = col; c < textEnd; c++) {
            const x = shown(c);
            if (x === null) return false;
            moved.push(x);
          }
          set(col, key.ch);
          moved.forEach((x, k) => set(col + 1 + k, x));
        }
        this.typedInLine++;
        this.cur = { at: [row, col + 1], seq };
        break;
      }
      case 'backspace': {
        if (col === 0 || wide(col - 1) || (canonical && this.typedInLine === 0)) return false;
        if (canonical || col >= textEnd) set(col - 1, ' ');
        else {
          const next: string[] = [];
          for (let c = col - 1; c < textEnd; c++) {
            const x = c + 1 < textEnd ? shown(c + 1) : ' ';
            if (x === null) return false;
            next.push(x);
          }
          next.forEach((x, k) => set(col - 1 + k, x));
        }
        this.typedInLine = Math.max(0, this.typedInLine - 1);
        this.cur = { at: [row, col - 1], seq };
        break;
      }
      case 'left':
        if (canonical || col === 0 || wide(col - 1)) return false;
        this.cur = { at: [row, col - 1], seq };
        break;
      case 'right':
        if (canonical) return false;
        // At the end of the text a line editor does not move.
        if (col < textEnd) {
          if (wide(col)) return false;
          this.cur = { at: [row, col + 1], seq };
        }
        break;
      default:
        return false;
    }
    this.stats.shown++;
    return true;
  }

  /** The host's line discipline, from an `EchoAck`. */
  lineDiscipline(echo: boolean, canonical: boolean) {
    this.flags = [echo, canonical];
    if (!this.enabled()) this.clear();
  }

  /**
   * The host answered inputs up to `seq`, and `view` shows the output up to where their echo
   * had arrived: guesses for them are confirmed or taken back. Returns whether the overlay
   * changed.
   */
  answered(seq: number, view: PredictView): boolean {
    this.acked = Math.max(this.acked, seq);
    if (this.stoppedUntil !== null && this.stoppedUntil <= seq) this.stoppedUntil = null;
    if (!this.open()) return false;
    const before = JSON.stringify(this.overlay());
    let wrong = false;
    let right = 0;
    let fresh = false;
    for (const g of this.cells.values()) {
      if (g.seq <= seq) {
        if (shows(view.charAt(g.row, g.col), g.ch)) {
          right++;
          if (g.seq > this.hiddenAt) fresh = true;
        } else wrong = true;
      }
    }
    if (this.cur && this.cur.seq <= seq) {
      const [r, c] = view.cursor();
      if (r !== this.cur.at[0] || c !== this.cur.at[1]) wrong = true;
    }
    if (wrong) {
      this.stats.wrong++;
      const mine = [...this.cells.values()].filter((g) => g.seq <= seq).sort((a, b) => a.col - b.col);
      this.lastWrong = {
        seq,
        guessed: mine.map((g) => `${g.row},${g.col}:${g.ch}`).join(' '),
        found: mine.map((g) => view.charAt(g.row, g.col) ?? '').join(''),
        cursor: this.cur && this.cur.seq <= seq ? this.cur.at : null,
        at: view.cursor(),
      };
      // Every guess goes: those made from now on are all after this answer.
      this.hide(seq);
      this.clear();
    } else {
      this.stats.confirmed += right;
      if (fresh) this.tentative = false;
      for (const [k, g] of this.cells) if (g.seq <= seq) this.cells.delete(k);
      if (this.cur && this.cur.seq <= seq) this.cur = null;
      if (!this.open()) this.since = null;
    }
    return JSON.stringify(this.overlay()) !== before;
  }

  /**
   * New output reached `view`: guesses that no longer fit (the cursor left their line, the
   * screen changed mode) or that the host never answered are dropped. Returns whether the
   * overlay changed.
   */
  output(view: PredictView, now: number): boolean {
    if (!this.open()) return false;
    const row = view.cursor()[0];
    let stale = !view.plain() || (this.cur !== null && this.cur.at[0] !== row);
    for (const g of this.cells.values()) if (g.row !== row) stale = true;
    if (stale || this.expired(now)) {
      const before = JSON.stringify(this.overlay());
      this.clear();
      return JSON.stringify(this.overlay()) !== before;
    }
    return false;
  }

  /** Drops guesses the host never answered. Returns whether the overlay changed. */
  tick(now: number): boolean {
    if (this.open() && this.expired(now)) {
      const before = JSON.stringify(this.overlay());
      this.clear();
      return JSON.stringify(this.overlay()) !== before;
    }
    return false;
  }

  private expired(now: number) {
    // The host cannot answer now.
    if (this.down) return false;
    const limit = Math.max(EXPIRE, (this.srtt ?? 0) * 4);
    return this.since !== null && now - this.since > limit;
  }

  /**
   * The terminal's height changed (its width did not): the cursor's line is still the cursor's
   * line (xterm.js scrolls it up into the scrollback or pulls lines back down, so its row may
   * change), and the guesses, which are all on it, move with it to `view`'s cursor row. (A
   * change of width reflows the lines: then `clear`.) Returns whether the overlay changed.
   */
  heightChanged(view: PredictView): boolean {
    if (!this.open()) return false;
    const before = JSON.stringify(this.overlay());
    const row = view.cursor()[0];
    const moved = [...this.cells.values()].map((g) => ({ ...g, row }));
    this.cells = new Map(moved.map((g) => [`${g.row},${g.col}`, g]));
    if (this.cur) this.cur = { ...this.cur, at: [row, this.cur.at[1]] };
    if (row >= view.rows || !view.plain()) this.clear();
    return JSON.stringify(this.overlay()) !== before;
  }

  /** What to show on top of the screen now. */
  overlay(): Overlay {
    if (this.tentative || !this.showing() || !this.open()) return { cells: [], cursor: null };
    const cells = [...this.cells.values()]
      .map(({ row, col, ch }) => ({ row, col, ch }))
      .sort((a, b) => a.row - b.row || a.col - b.col);
    return { cells, cursor: this.cur?.at ?? null };
  }
}

/** What of xterm.js the view needs (the page's terminal, or @xterm/headless in tests). */
export interface XtermLike {
  rows: number;
  cols: number;
  buffer: {
    active: {
      type: 'normal' | 'alternate';
      cursorX: number;
      cursorY: number;
      baseY: number;
      getLine(y: number): { getCell(x: number): { getChars(): string; getWidth(): number } | undefined } | undefined;
    };
  };
  modes: { insertMode: boolean; originMode: boolean; wraparoundMode: boolean };
}

/** The screen of an xterm.js terminal as the engine sees it. */
export function xtermView(term: XtermLike): PredictView {
  const b = () => term.buffer.active;
  return {
    get rows() {
      return term.rows;
    },
    get cols() {
      return term.cols;
    },
    cursor: () => [b().cursorY, b().cursorX],
    charAt(row, col) {
      const cell = b().getLine(b().baseY + row)?.getCell(col);
      if (!cell || cell.getWidth() === 0) return null;
      return cell.getChars() || ' ';
    },
    plain() {
      const m = term.modes;
      return b().type === 'normal' && !m.insertMode && !m.originMode && m.wraparoundMode && b().cursorX < term.cols;
    },
  };
}
