// This device's display settings (localStorage: nothing secret, nothing a host needs).

export type Theme = 'dark' | 'light';
export type CursorStyle = 'block' | 'bar';
/** Predicted echo: never, always, or when the round trip is above 30 ms. */
export type Predict = 'never' | 'adaptive' | 'always';

export interface Prefs {
  /** Terminal font size, CSS px. */
  fontSize: number;
  cursor: CursorStyle;
  theme: Theme;
  /** Key bar rows, two per page, each key names separated by spaces (keybar.ts); null: default. */
  keys: string[] | null;
  /** Show typed characters before the host echoes them (underlined until it does). */
  predict: Predict;
}

export const FONT_MIN = 8;
export const FONT_MAX = 28;
/** 13 px: about 50 columns on a 390 px wide phone, 46 on a 360 px one. */
export const FONT_DEFAULT = 13;

const KEY = 'peer.prefs';
const DEFAULTS: Prefs = { fontSize: FONT_DEFAULT, cursor: 'block', theme: 'dark', keys: null, predict: 'adaptive' };

export const clampFont = (n: number) => Math.min(FONT_MAX, Math.max(FONT_MIN, Math.round(n)));

export function loadPrefs(): Prefs {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<Prefs>;
    return {
      fontSize: typeof v.fontSize === 'number' ? clampFont(v.fontSize) : DEFAULTS.fontSize,
      cursor: v.cursor === 'bar' ? 'bar' : 'block',
      theme: v.theme === 'light' ? 'light' : 'dark',
      keys: Array.isArray(v.keys) && v.keys.every((r) => typeof r === 'string') ? v.keys : null,
      predict: v.predict === 'adaptive' || v.predict === 'always' || v.predict === 'never' ? v.predict : DEFAULTS.predict,
    };
  } catch {
    return { ...DEFAULTS };
  }
}

export function savePrefs(change: Partial<Prefs>): Prefs {
  const next = { ...loadPrefs(), ...change };
  localStorage.setItem(KEY, JSON.stringify(next));
  applyTheme(next.theme);
  return next;
}

/** Puts the theme on the document (CSS variables) and the browser's bar colour. */
export function applyTheme(theme: Theme) {
  document.documentElement.dataset.theme = theme;
  document.querySelector('meta[name="theme-color"]')?.setAttribute('content', theme === 'light' ? '#ffffff' : '#0b0e14');
}

/** xterm.js colours for a theme. */
export function termTheme(theme: Theme) {
  return theme === 'light'
    ? { background: '#fbfbfa', foreground: '#1d2430', cursor: '#0b63c5', cursorAccent: '#ffffff', selectionBackground: '#b6d3f5' }
    : { background: '#0b0e14', foreground: '#d7dae0', cursor: '#5fb3ff', cursorAccent: '#0b0e14', selectionBackground: '#2c4a6e' };
}
