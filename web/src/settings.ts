// Settings of this device's screens: theme, terminal font and cursor, the key bar.
import { h } from './dom';
import { keysEditor } from './term';
import { FONT_MAX, FONT_MIN, loadPrefs, savePrefs, type CursorStyle, type Predict, type Theme } from './prefs';

/** A row of buttons of which one is chosen. */
function segmented<T extends string>(options: [T, string][], current: T, onPick: (v: T) => void, testid: string): HTMLElement {
  const row = h('div', 'seg');
  row.dataset.testid = testid;
  const buttons = options.map(([value, label]) => {
    const b = h('button', value === current ? 'btn small on' : 'btn small', label);
    b.type = 'button';
    b.setAttribute('aria-pressed', String(value === current));
    b.addEventListener('click', () => {
      for (const o of buttons) {
        o.classList.toggle('on', o === b);
        o.setAttribute('aria-pressed', String(o === b));
      }
      onPick(value);
    });
    return b;
  });
  row.append(...buttons);
  return row;
}

export function settingsSections(): HTMLElement[] {
  const prefs = loadPrefs();
  const look = h('section', 'settings-section');
  look.append(
    h('h2', '', 'Theme'),
    segmented<Theme>([['dark', 'Dark'], ['light', 'Light']], prefs.theme, (theme) => savePrefs({ theme }), 'theme'),
  );

  const term = h('section', 'settings-section');
  const size = h('input');
  size.type = 'range';
  size.min = String(FONT_MIN);
  size.max = String(FONT_MAX);
  size.value = String(prefs.fontSize);
  size.setAttribute('aria-label', 'terminal font size');
  size.dataset.testid = 'font-size';
  const value = h('span', 'mono', `${prefs.fontSize} px`);
  const sample = h('div', 'mono', 'user@host:~$ ls -la');
  sample.style.fontSize = `${prefs.fontSize}px`;
  size.addEventListener('input', () => {
    value.textContent = `${size.value} px`;
    sample.style.fontSize = `${size.value}px`;
  });
  size.addEventListener('change', () => savePrefs({ fontSize: Number(size.value) }));
  const fontRow = h('div', 'font-row');
  fontRow.append(size, value);
  term.append(
    h('h2', '', 'Terminal'),
    h('p', 'hint', 'Font size (pinch the terminal to change it there too):'),
    fontRow,
    sample,
    h('p', 'hint', 'Cursor:'),
    segmented<CursorStyle>([['block', 'Block'], ['bar', 'Bar']], prefs.cursor, (cursor) => savePrefs({ cursor }), 'cursor-style'),
    h('p', 'hint', 'Show typed characters before the host echoes them (underlined until it does; Auto: when the round trip is over 30 ms, never at password prompts or in full-screen programs). Applies to terminals opened from now on:'),
    segmented<Predict>(
      [['never', 'Off'], ['adaptive', 'Auto'], ['always', 'Always']],
      prefs.predict,
      (predict) => savePrefs({ predict }),
      'predict',
    ),
  );

  const keys = h('section', 'settings-section');
  keys.append(h('h2', '', 'Key bar'), keysEditor(() => undefined));
  return [look, term, keys];
}
