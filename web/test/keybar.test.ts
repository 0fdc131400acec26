import { describe, expect, it } from 'vitest';
import { DEFAULT_ROWS, keyDef, parseRows } from '../src/keybar';

describe('key bar layouts', () => {
  it('the default first page has ^C, Esc, Tab, Shift+Tab, Paste, arrows and the hidden symbols', () => {
    const { pages, unknown } = parseRows(DEFAULT_ROWS);
    expect(unknown).toEqual([]);
    expect(pages).toHaveLength(2);
    const first = pages[0].flat().map((k) => k.name);
    for (const k of ['^C', 'Esc', 'Ctrl', 'Alt', 'Tab', 'S-Tab', 'Paste', 'Up', 'Down', 'Left', 'Right', '|', '~', '/', '-', '_', 'More']) {
      expect(first).toContain(k);
    }
    // Two rows of at most nine keys: they fit a 360 px phone without scrolling.
    expect(Math.max(...pages.flat().map((r) => r.length))).toBeLessThanOrEqual(9);
    const second = pages[1].flat().map((k) => k.name);
    for (const k of ['Home', 'End', 'PgUp', 'PgDn', 'Find', 'More']) expect(second).toContain(k);
  });

  it('names keys, control characters and single characters; reports the rest', () => {
    expect(keyDef('S-Tab')).toMatchObject({ kind: 'send', seq: '\x1b[Z' });
    expect(keyDef('^C')).toMatchObject({ kind: 'send', seq: '\x03' });
    expect(keyDef('^[')).toMatchObject({ seq: '\x1b' });
    expect(keyDef('|')).toMatchObject({ kind: 'send', seq: '|' });
    expect(keyDef('€')).toMatchObject({ seq: '€' });
    expect(keyDef('F5')).toMatchObject({ seq: '\x1b[15~' });
    expect(keyDef('Alt')).toMatchObject({ kind: 'mod' });
    expect(keyDef('Bogus')).toBeNull();
    const { pages, unknown } = parseRows(['Esc  Bogus ^C', '', 'Tab']);
    expect(unknown).toEqual(['Bogus']);
    expect(pages.map((p) => p.map((r) => r.map((k) => k.name)))).toEqual([[['Esc', '^C']], [['Tab']]]);
  });

  it('an empty layout falls back to the default', () => {
    expect(parseRows(['', '']).pages).toEqual(parseRows(DEFAULT_ROWS).pages);
  });
});
