// The prediction engine against a real terminal emulator (@xterm/headless), fed the echo
// streams a shell's line editor, `cat` and a password prompt produce.
import { describe, expect, it } from 'vitest';
import { Terminal } from '@xterm/headless';
import { EXPIRE, keys, narrow, Predictor, xtermView, type Overlay } from '../src/predict';

const NONE: Overlay = { cells: [], cursor: null };

async function screen(text: string) {
  const term = new Terminal({ cols: 80, rows: 24, allowProposedApi: true });
  await feed(term, text);
  return term;
}

function feed(term: Terminal, data: string): Promise<void> {
  return new Promise((done) => term.write(data, done));
}

function engine(echo: boolean, canonical: boolean) {
  const p = new Predictor('always');
  p.lineDiscipline(echo, canonical);
  return p;
}

const cells = (o: Overlay) => o.cells.map((c) => [c.row, c.col, c.ch]);

/** The host's echo arrives, then its answer for inputs up to `seq`. */
async function echo(p: Predictor, term: Terminal, out: string, seq: number) {
  await feed(term, out);
  const v = xtermView(term);
  p.output(v, 0);
  p.answered(seq, v);
  return p.overlay();
}

describe('predicted echo', () => {
  it('shows a shell line once its first key is confirmed', async () => {
    const t = await screen('$ ');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'l', v, 0);
    expect(p.overlay()).toEqual(NONE);
    expect(await echo(p, t, 'l', 1)).toEqual(NONE);
    p.typed(2, 's', v, 0);
    expect(cells(p.overlay())).toEqual([[0, 3, 's']]);
    expect(p.overlay().cursor).toEqual([0, 4]);
    p.typed(3, ' -', v, 0);
    expect(cells(p.overlay())).toEqual([
      [0, 3, 's'],
      [0, 4, ' '],
      [0, 5, '-'],
    ]);
    expect(cells(await echo(p, t, 's', 2))).toEqual([
      [0, 4, ' '],
      [0, 5, '-'],
    ]);
    expect(await echo(p, t, ' -', 3)).toEqual(NONE);
    expect(p.stats).toEqual({ shown: 4, confirmed: 4, wrong: 0 });
  });

  it('edits the middle of a line as readline does', async () => {
    const t = await screen('$ abc');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'd', v, 0);
    await echo(p, t, 'd', 1);
    p.typed(2, '\x1b[D\x1b[D', v, 0);
    expect(p.overlay().cursor).toEqual([0, 4]);
    p.typed(3, 'X', v, 0);
    expect(cells(p.overlay())).toEqual([
      [0, 4, 'X'],
      [0, 5, 'c'],
      [0, 6, 'd'],
    ]);
    p.typed(4, '\x7f', v, 0);
    expect(cells(p.overlay())).toEqual([
      [0, 4, 'c'],
      [0, 5, 'd'],
      [0, 6, ' '],
    ]);
    await echo(p, t, '\b\b', 2);
    await echo(p, t, 'Xcd\b\b', 3);
    expect(await echo(p, t, '\bcd \b\b\b', 4)).toEqual(NONE);
    expect(p.stats.wrong).toBe(0);
  });

  it('writes over the cursor in cat (canonical mode) and erases only what was typed', async () => {
    const t = await screen('');
    const v = xtermView(t);
    const p = engine(true, true);
    p.typed(1, 'h', v, 0);
    await echo(p, t, 'h', 1);
    p.typed(2, 'i\x7f\x7f', v, 0);
    expect(cells(p.overlay())).toEqual([
      [0, 0, ' '],
      [0, 1, ' '],
    ]);
    const before = p.overlay();
    p.typed(3, '\x7f', v, 0);
    expect(p.overlay()).toEqual(before);
    expect(await echo(p, t, 'i\b \b\b \b', 2)).toEqual(NONE);
    expect(p.stats.wrong).toBe(0);
  });

  it('hides guesses after Enter until one is confirmed', async () => {
    const t = await screen('$ ');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'a', v, 0);
    await echo(p, t, 'a', 1);
    p.typed(2, 'b', v, 0);
    expect(p.overlay().cells.length).toBe(1);
    await echo(p, t, 'b', 2);
    p.typed(3, '\r', v, 0);
    p.typed(4, 'c', v, 0);
    expect(p.overlay()).toEqual(NONE);
    await echo(p, t, '\r\n$ c', 4);
    p.typed(5, 'd', v, 0);
    expect(p.overlay()).toEqual(NONE);
    await echo(p, t, 'd', 5);
    p.typed(6, 'e', v, 0);
    expect(cells(p.overlay())).toEqual([[1, 4, 'e']]);
  });

  it('keeps the next line hidden when the keys typed before Enter are confirmed after it', async () => {
    const t = await screen('$ ');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'a', v, 0);
    await echo(p, t, 'a', 1);
    p.typed(2, 'l', v, 0);
    p.typed(3, 's', v, 0);
    expect(p.overlay().cells.length).toBe(2);
    p.typed(4, '\r', v, 0);
    // The echo of "ls" is confirmed after the Enter went out: it was typed before the Enter, so
    // the next line (a password prompt, say) stays hidden.
    expect(await echo(p, t, 'ls', 3)).toEqual(NONE);
    expect(p.stats.confirmed).toBe(3);
    await echo(p, t, '\r\n$ ', 4);
    p.typed(5, 'x', v, 0);
    expect(p.overlay()).toEqual(NONE);
    await echo(p, t, 'x', 5);
    p.typed(6, 'y', v, 0);
    expect(cells(p.overlay())).toEqual([[1, 3, 'y']]);
    expect(p.stats.wrong).toBe(0);
  });

  it('never shows a key that is not echoed (a password read raw)', async () => {
    const t = await screen('Password: ');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'h', v, 0);
    expect(p.overlay()).toEqual(NONE);
    expect(await echo(p, t, '', 1)).toEqual(NONE);
    expect(p.stats.wrong).toBe(1);
    Array.from('unter2').forEach((k, i) => p.typed(2 + i, k, v, 0));
    expect(p.overlay()).toEqual(NONE);
  });

  it('guesses nothing with echo off (read -s), on the alternate screen, or before the line discipline is known', async () => {
    const t = await screen('Password: ');
    const p = engine(true, true);
    p.lineDiscipline(false, true);
    expect(p.enabled()).toBe(false);
    p.typed(1, 'hunter2', xtermView(t), 0);
    expect(p.stats.shown).toBe(0);

    const alt = await screen('\x1b[?1049h\x1b[H');
    const q = engine(false, false);
    q.typed(1, 'j', xtermView(alt), 0);
    expect(q.stats.shown).toBe(0);

    const r = new Predictor('always');
    r.typed(1, 'a', xtermView(await screen('$ ')), 0);
    expect(r.stats.shown).toBe(0);
  });

  it('drops guesses when a full-screen program starts, and when they expire', async () => {
    const t = await screen('$ ');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'a', v, 0);
    await echo(p, t, 'a', 1);
    p.typed(2, 'b', v, 100);
    expect(p.overlay().cells.length).toBe(1);
    expect(p.tick(200)).toBe(false);
    expect(p.tick(100 + EXPIRE + 1)).toBe(true);
    expect(p.overlay()).toEqual(NONE);
    p.typed(3, 'c', v, 5000);
    await feed(t, '\x1b[?1049h');
    p.output(v, 5000);
    expect(p.overlay()).toEqual(NONE);
  });

  it('takes the line\'s guesses back at Ctrl-C, and hides those of the next line until one is confirmed', async () => {
    const t = await screen('$ ');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'a', v, 0);
    await echo(p, t, 'a', 1);
    p.typed(2, 'bc', v, 0);
    expect(cells(p.overlay())).toEqual([
      [0, 3, 'b'],
      [0, 4, 'c'],
    ]);
    expect(p.typed(3, '\x03', v, 0)).toBe(true);
    expect(p.overlay()).toEqual(NONE);
    p.typed(4, 'd', v, 0);
    expect(p.stats.shown).toBe(3);
    // The echo of what was typed before the ^C, bash dropping the line, a new prompt: the first
    // key on it is not shown before the host confirmed it, as after Enter.
    expect(await echo(p, t, 'bc', 2)).toEqual(NONE);
    expect(await echo(p, t, '^C\r\n$ d', 4)).toEqual(NONE);
    p.typed(5, 'e', v, 0);
    expect(p.overlay()).toEqual(NONE);
    await echo(p, t, 'e', 5);
    p.typed(6, 'f', v, 0);
    expect(cells(p.overlay())).toEqual([[1, 4, 'f']]);
    expect(p.stats.wrong).toBe(0);
  });

  it('adaptive: on above 30 ms of smoothed round trip, off below 20 ms', () => {
    const p = new Predictor('adaptive');
    p.lineDiscipline(false, false);
    expect(p.enabled()).toBe(true);
    expect(p.showing()).toBe(false);
    for (let i = 0; i < 10; i++) p.rttSample(150);
    expect(p.showing()).toBe(true);
    for (let i = 0; i < 40; i++) p.rttSample(25);
    expect(p.showing()).toBe(true);
    for (let i = 0; i < 40; i++) p.rttSample(2);
    expect(p.showing()).toBe(false);
    const never = new Predictor('never');
    never.lineDiscipline(false, false);
    never.rttSample(1000);
    expect(never.enabled()).toBe(false);
    expect(never.showing()).toBe(false);
  });

  it('adaptive: guesses in the background on a fast link, shows them once it is slow', async () => {
    const t = await screen('$ ');
    const v = xtermView(t);
    const p = new Predictor('adaptive');
    p.lineDiscipline(false, false);
    p.rttSample(1);
    p.typed(1, 'a', v, 0);
    await echo(p, t, 'a', 1);
    p.typed(2, 'b', v, 0);
    expect(p.overlay()).toEqual(NONE);
    for (let i = 0; i < 20; i++) p.rttSample(150);
    expect(cells(p.overlay())).toEqual([[0, 3, 'b']]);
  });

  it('reads keys and leaves wide characters and the last column to the host', async () => {
    expect(keys('a\x7f\x1b[C\x1b[D\r\x01').map((k) => k.k)).toEqual(['char', 'backspace', 'right', 'left', 'enter', 'other']);
    expect(keys('\x1b[A').map((k) => k.k)).toEqual(['other']);
    expect(keys('\x03\x01').map((k) => k.k)).toEqual(['interrupt', 'other']);
    const t = await screen('$ ');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'a', v, 0);
    await echo(p, t, 'a', 1);
    p.typed(2, '中', v, 0);
    expect(p.stats.shown).toBe(1);
    const full = await screen('x'.repeat(79));
    const q = engine(false, false);
    q.typed(1, 'y', xtermView(full), 0);
    expect(q.stats.shown).toBe(0);
  });

  it('guesses only characters one column wide in xterm.js: no combining mark, zero-width or wide one', async () => {
    const t = await screen('');
    const notOne: string[] = [];
    for (let cp = 0x20; cp < 0x1100; cp++) {
      const ch = String.fromCodePoint(cp);
      if (!narrow(ch)) continue;
      await feed(t, `\x1b[H\x1b[2Ka${ch}`);
      if (t.buffer.active.cursorX !== 2) notOne.push(`U+${cp.toString(16)}`);
    }
    expect(notOne).toEqual([]);
    // Marks (Latin, Cyrillic, Hebrew, Arabic, Devanagari, Thai), zero-width and format characters,
    // wide ones.
    for (const ch of ['\u0301', '\u0483', '\u05b8', '\u064e', '\u093f', '\u0e34', '\u00ad', '\u0600', '\u200b', '\u200d', '\ufeff', '\u1100', '中', '\uff21', '😀']) {
      expect(narrow(ch), `U+${ch.codePointAt(0)?.toString(16)}`).toBe(false);
    }
    for (const ch of ['a', '~', 'é', 'ß', 'Ω', 'ж', 'א', 'ب', 'क', 'ก']) expect(narrow(ch), ch).toBe(true);
  });

  it('guesses a letter and leaves the mark typed after it to the host', async () => {
    const t = await screen('$ ');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'a', v, 0);
    await echo(p, t, 'a', 1);
    // Thai: a consonant and the vowel sign drawn over it, in its cell.
    p.typed(2, 'ก\u0e34', v, 0);
    expect(cells(p.overlay())).toEqual([[0, 3, 'ก']]);
    expect(p.overlay().cursor).toEqual([0, 4]);
    expect(await echo(p, t, 'ก\u0e34', 2)).toEqual(NONE);
    expect(p.stats).toEqual({ shown: 2, confirmed: 2, wrong: 0 });
  });

  it('leaves moving and erasing over a wide character to the host', async () => {
    const t = await screen('$ 中');
    const v = xtermView(t);
    const p = engine(false, false);
    p.typed(1, 'a', v, 0);
    await echo(p, t, 'a', 1);
    p.typed(2, '\x1b[D', v, 0);
    expect(p.overlay().cursor).toEqual([0, 4]);
    p.typed(3, '\x1b[D', v, 0);
    expect(p.stats.shown).toBe(2);

    const u = await screen('$ 中');
    const q = engine(false, false);
    q.typed(1, 'b', xtermView(u), 0);
    await echo(q, u, 'b', 1);
    q.typed(2, '\x7f\x7f', xtermView(u), 0);
    expect(cells(q.overlay())).toEqual([[0, 4, ' ']]);
    expect(q.stats.shown).toBe(2);

    const w = await screen('$ a中\x1b[3G');
    const r = engine(false, false);
    r.typed(1, '\x1b[C\x1b[C', xtermView(w), 0);
    expect(r.stats.shown).toBe(1);
  });

  /** At a shell prompt, a link of 5 ms round trip (adaptive: guesses hidden), "a" confirmed. */
  async function adaptiveOnAFastLink() {
    const t = await screen('$ ');
    const p = new Predictor('adaptive');
    p.lineDiscipline(false, false);
    p.rttSample(5);
    p.typed(1, 'a', xtermView(t), 0);
    await echo(p, t, 'a', 1);
    return { t, p };
  }

  it('shows keys typed while the link is down, keeps them, and confirms them after the resume', async () => {
    const { t, p } = await adaptiveOnAFastLink();
    const v = xtermView(t);
    p.typed(2, 'b', v, 0);
    expect(p.overlay(), 'a fast link').toEqual(NONE);
    await echo(p, t, 'b', 2);
    p.linkDown();
    // Shown on a fast link too: their round trip is the outage's.
    p.typed(3, 'cd', v, 1000);
    expect(cells(p.overlay())).toEqual([
      [0, 4, 'c'],
      [0, 5, 'd'],
    ]);
    expect(p.overlay().cursor).toEqual([0, 6]);
    const long = 1000 + EXPIRE * 5;
    expect(p.tick(long), 'not expired while the link is down').toBe(false);
    p.linkUp(long);
    expect(p.tick(long + EXPIRE / 2), 'their time runs from the resume').toBe(false);
    expect(p.overlay().cells.length, 'shown until answered').toBe(2);
    // The host's first echo ack on the new connection covers only what it had applied.
    expect(p.answered(2, v)).toBe(false);
    expect(await echo(p, t, 'cd', 3)).toEqual(NONE);
    expect(p.stats.wrong).toBe(0);
    // Answered: the fast link's rule again.
    p.typed(4, 'e', v, long);
    expect(p.overlay(), 'a fast link').toEqual(NONE);
  });

  it('expires the guesses made while the link was down once their full time after the resume is over', async () => {
    const { t, p } = await adaptiveOnAFastLink();
    const v = xtermView(t);
    p.linkDown();
    p.typed(2, 'b', v, 0);
    p.linkUp(10 * EXPIRE);
    expect(p.tick(11 * EXPIRE)).toBe(false);
    expect(p.tick(11 * EXPIRE + 1)).toBe(true);
    expect(p.overlay()).toEqual(NONE);
  });

  it('keeps the rules while the link is down', async () => {
    // Enter while down: the next line's keys are not guessed before Enter is answered, and
    // hidden until one of them is confirmed.
    let t = await screen('$ ');
    let p = engine(false, false);
    p.typed(1, 'a', xtermView(t), 0);
    await echo(p, t, 'a', 1);
    p.linkDown();
    p.typed(2, '\r', xtermView(t), 0);
    p.typed(3, 'x', xtermView(t), 0);
    expect(p.overlay()).toEqual(NONE);
    expect(p.stats.shown).toBe(1);
    p.linkUp(0);
    await echo(p, t, '\r\n$ ', 2);
    await echo(p, t, 'x', 3);
    p.typed(4, 'y', xtermView(t), 0);
    expect(p.overlay(), 'hidden').toEqual(NONE);
    await echo(p, t, 'y', 4);
    p.typed(5, 'z', xtermView(t), 0);
    expect(cells(p.overlay())).toEqual([[1, 4, 'z']]);

    // A guess the host contradicts after the resume (the program went on meanwhile).
    t = await screen('$ ');
    p = engine(false, false);
    p.typed(1, 'a', xtermView(t), 0);
    await echo(p, t, 'a', 1);
    p.linkDown();
    p.typed(2, 'b', xtermView(t), 0);
    expect(cells(p.overlay())).toEqual([[0, 3, 'b']]);
    p.linkUp(0);
    expect(await echo(p, t, 'Z', 2)).toEqual(NONE);
    expect(p.stats.wrong).toBe(1);
  });
});
