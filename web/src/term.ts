// The terminal screen: xterm.js renders; input comes from our own hidden field and the key bar.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { InputDiffer, applyCtrl, bytes, keyToBytes } from './input';
import { OutputWriter } from './writer';
import { echoing, PredictedEcho } from './echo';
import { buildKeyBar, DEFAULT_ROWS, keyDef } from './keybar';
import { clampFont, loadPrefs, savePrefs, termTheme } from './prefs';
import { copyText, readText } from './clipboard';
import type { ChannelEvents, HostConn } from './conn';
import type { WinSize } from './gen/protocol';

export interface TermView {
  el: HTMLElement;
  term: Terminal;
  writer: OutputWriter;
  channel: number;
  send(text: string): void;
  /** Sets the font size (the PTY is resized to the new grid). */
  setFont(px: number): void;
  dispose(): void;
  /** Latest output arrival times, for in-page measurements. */
  onOutput: ((data: Uint8Array) => void) | null;
  /** Output bytes the host no longer had when this terminal (re-)attached (`Gap`s), in total. */
  lostBytes: number;
  /**
   * Pictures of the screen drawn (at attach, and where the terminal fell behind the host's
   * buffer), and the output bytes they stood in for, in total.
   */
  repaints: { count: number; bytes: number; skipped: number };
  /**
   * Each (re-)attach, for in-page measurements: whether it was the skip-ahead after a ^C (at the
   * live end), and how many inputs the host had not yet applied at that point.
   */
  onAttached: ((a: { skippedAhead: boolean; unackedInput: number }) => void) | null;
  /** Predicted echo (null when the setting is off or until the terminal is open). */
  echo: PredictedEcho | null;
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls = '', text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

/** Lines of scrollback asked for above a picture of the screen. */
export const PICTURE_SCROLLBACK = 1000;

/**
 * Full reset (RIS) before a picture of the screen: the picture is drawn for a freshly reset
 * terminal and carries its own scrollback.
 */
const RESET = new Uint8Array([0x1b, 0x63]);

/**
 * A terminal attached to `session` from `fromOffset` (`FROM_NOW`: the screen as it is now).
 * With `screen` (lines of scrollback), the host sends pictures of the screen where bytes
 * cannot be sent: at attach from `FROM_NOW` or from before its buffer, and where this
 * terminal falls behind the buffer; without it, such output is reported as lost.
 */
/** What an ended session offers. */
export interface EndedActions {
  /** A new terminal in the ended one's working directory. */
  newHere(): void;
  back(): void;
}

export function openTerminal(
  conn: HostConn,
  session: number,
  fromOffset: number,
  onStatus: (text: string) => void,
  ended?: EndedActions,
  screen: number | null = PICTURE_SCROLLBACK,
): TermView {
  const el = h('div', 'term-screen');
  const box = h('div', 'term-box');
  const field = h('input', 'term-input');
  field.setAttribute('autocapitalize', 'off');
  field.setAttribute('autocomplete', 'off');
  field.setAttribute('autocorrect', 'off');
  field.setAttribute('spellcheck', 'false');
  field.setAttribute('enterkeyhint', 'send');
  field.setAttribute('aria-label', 'terminal input');
  const prefs = loadPrefs();
  const term = new Terminal({
    fontFamily: 'ui-monospace, "SF Mono", Menlo, "DejaVu Sans Mono", "Liberation Mono", monospace',
    fontSize: prefs.fontSize,
    // A cursor that shows where you are editing at all times: the terminal's own focus is never
    // used (input comes from the field), so the inactive style is the same solid one.
    cursorStyle: prefs.cursor,
    cursorInactiveStyle: prefs.cursor,
    cursorWidth: 2,
    cursorBlink: false,
    disableStdin: true,
    scrollback: 5000,
    theme: termTheme(prefs.theme),
  });
  // xterm.js draws no cursor until the terminal itself got input or focus, neither of which
  // happens here (input comes from the field): a switch to the alternate screen and back, on
  // an empty screen, marks the cursor as shown without changing anything else.
  term.write('\x1b[?1047h\x1b[?1047l');
  const bar = buildKeyBar(prefs.keys ?? DEFAULT_ROWS, {
    send: (seq) => send(seq),
    action: (name) => {
      if (name === 'Paste') void pasteFromClipboard();
      else if (name === 'Copy') showCopy(term, el);
      else if (name === 'Find') showFind(term, el, () => field.focus({ preventScroll: true }));
      else if (name === 'Keys') showKeysEditor(el);
    },
    modifiers: () => field.focus({ preventScroll: true }),
  });
  // Scrolled up: a way back to the live end.
  const latest = h('button', 'jump-latest', '↓ Latest');
  latest.type = 'button';
  latest.dataset.testid = 'jump-latest';
  latest.hidden = true;
  latest.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    term.scrollToBottom();
  });
  el.append(box, field, latest, bar.el);
  const fit = new FitAddon();
  term.loadAddon(fit);
  const writer = new OutputWriter(term);
  let channel = 0;
  const differ = new InputDiffer();
  let composing = false;

  const view: TermView = {
    el,
    term,
    writer,
    channel: 0,
    onOutput: null,
    lostBytes: 0,
    repaints: { count: 0, bytes: 0, skipped: 0 },
    onAttached: null,
    echo: null,
    send(text: string) {
      // Typing brings the screen back to where the cursor is.
      term.scrollToBottom();
      if (!text) return;
      // Sent first, whatever happens to the guess: `echo?.typed(conn.input(…))` would not send
      // at all while predicted echo is off. Ctrl-C goes as an interrupt (which may skip a flood's
      // backlog); the guesses hear of it too, as it takes back those on its line.
      const seq = text === '\x03' ? conn.interrupt(channel) : conn.input(channel, bytes(text));
      view.echo?.typed(seq, text);
    },
    setFont(px: number) {
      term.options.fontSize = clampFont(px);
      refit();
    },
    dispose() {
      disposed = true;
      conn.detach(channel);
      view.echo?.dispose();
      ro.disconnect();
      window.visualViewport?.removeEventListener('resize', refit);
      term.dispose();
      el.remove();
    },
  };

  const size = (): WinSize => ({ cols: term.cols, rows: term.rows });
  let skippedAhead = false;
  // The predicted echo hears of these first (echo.ts): it takes its guesses back where the
  // screen is replaced or the session ended, and guesses on while the link is down.
  const events: ChannelEvents = echoing({
    output(data) {
      writer.push(data);
      view.onOutput?.(data);
    },
    attached() {
      onStatus('');
      const unackedInput = conn.channelStats().find((s) => s.id === channel)?.unacked ?? 0;
      view.onAttached?.({ skippedAhead, unackedInput });
      skippedAhead = false;
    },
    exited(code, signal) {
      // No cursor once nothing reads the keys (`ESC [ ?25l`).
      writer.push(bytes(`\r\n\x1b[2m[session ended: ${signal ?? `exit ${code}`}]\x1b[0m\r\n\x1b[?25l`));
      onStatus('ended');
      showEnded(signal ? `ended by ${signal}` : `exited with status ${code}`);
    },
    error(message) {
      writer.push(bytes(`\r\n\x1b[31m[${message}]\x1b[0m\r\n\x1b[?25l`));
      onStatus('ended');
      showEnded(message);
    },
    skipped() {
      skippedAhead = true;
      writer.clear();
      // The output stopped wherever it was, maybe inside an escape sequence that would swallow
      // the note: CAN (0x18) ends any sequence first.
      writer.push(bytes('\x18\r\n\x1b[0;2m[peer: interrupted; skipped the rest of the flood]\x1b[0m\r\n'));
    },
    repaint(p) {
      // What is queued is older than the picture, which shows the screen as it is after it.
      const pic = new Uint8Array(RESET.length + p.data.length);
      pic.set(RESET);
      pic.set(p.data, RESET.length);
      writer.replace(pic);
      view.repaints.count++;
      view.repaints.bytes += p.data.length;
      view.repaints.skipped += p.skipped;
    },
    gap(from, to) {
      view.lostBytes += to - from;
      writer.push(bytes(`\r\n\x1b[2m[${to - from} bytes of output were lost: older than the host's buffer]\x1b[0m\r\n`));
    },
  }, () => view.echo);
  // Attached once the terminal is on the page and fitted (below), not before: the attach carries
  // the size, which the host gives the PTY and draws the first picture of the screen for. Sent
  // at once, it said xterm's unfitted 80×24, and the picture, drawn for 24 rows, landed in a
  // taller terminal with its cursor in the middle of old lines.
  let disposed = false;
  const attach = () => {
    channel = conn.attach(session, fromOffset, size(), events, screen, prefs.predict !== 'never');
    view.channel = channel;
  };
  // Answers to terminal queries (cursor position, device attributes) go back to the program.
  term.onData((d) => conn.input(channel, bytes(d)));

  // One-shot modifiers from the key bar apply to the next key or typed character.
  const send = (text: string) => {
    if (!text) return;
    if (bar.ctrl) text = applyCtrl(text);
    if (bar.alt) text = '\x1b' + text;
    bar.release();
    view.send(text);
  };
  const paste = (text: string) => {
    if (!text) return;
    // Programs that ask for it get the paste bracketed (so a shell does not run it line by line).
    const t = text.replace(/\r?\n/g, '\r');
    view.send(term.modes.bracketedPasteMode ? `\x1b[200~${t}\x1b[201~` : t);
  };

  // The field's own editing (IME, autocorrect) becomes terminal bytes through the differ.
  const sync = () => {
    send(differ.update(field.value));
    if (!composing && field.value.length > 32) {
      field.value = '';
      differ.reset();
    }
  };
  field.addEventListener('compositionstart', () => (composing = true));
  field.addEventListener('compositionend', () => {
    composing = false;
    sync();
  });
  field.addEventListener('input', () => sync());
  field.addEventListener('beforeinput', (e) => {
    if (e.inputType === 'deleteContentBackward' && field.value === '') {
      e.preventDefault();
      send('\x7f');
    } else if (e.inputType === 'insertLineBreak') {
      e.preventDefault();
      send('\r');
      field.value = '';
      differ.reset();
    }
  });
  field.addEventListener('keydown', (e) => {
    if (e.isComposing || e.keyCode === 229) return;
    const seq = keyToBytes({ key: e.key, ctrlKey: e.ctrlKey, altKey: e.altKey || bar.alt, metaKey: e.metaKey }, bar.ctrl);
    if (seq === null) return;
    e.preventDefault();
    if (e.key === 'Enter') {
      field.value = '';
      differ.reset();
    }
    bar.release();
    view.send(seq);
  });
  field.addEventListener('paste', (e) => {
    const text = e.clipboardData?.getData('text/plain') ?? '';
    e.preventDefault();
    paste(text);
  });

  const pasteFromClipboard = async () => {
    const text = await readText();
    if (text !== null) paste(text);
    else showPasteSheet(el, paste);
  };
  const showLatest = () => {
    const b = term.buffer.active;
    latest.hidden = b.viewportY >= b.baseY;
  };
  term.onScroll(showLatest);
  term.onWriteParsed(showLatest);

  // An ended session: what happened and where to go, instead of a key bar that does nothing.
  const showEnded = (what: string) => {
    if (el.querySelector('.ended-panel')) return;
    field.blur();
    bar.el.hidden = true;
    const panel = h('div', 'ended-panel');
    panel.dataset.testid = 'ended';
    panel.append(h('div', 'ended-text', `Session ended: ${what}`));
    const row = h('div', 'actions');
    if (ended) {
      const here = h('button', 'btn primary', 'New terminal here');
      here.type = 'button';
      here.addEventListener('click', () => ended.newHere());
      const back = h('button', 'btn', 'Back');
      back.type = 'button';
      back.addEventListener('click', () => ended.back());
      row.append(here, back);
    }
    panel.append(row);
    el.append(panel);
  };

  // Pinch to zoom the font; the size is kept for next time and the PTY follows the new grid.
  let pinch: { dist: number; size: number } | null = null;
  const spread = (t: TouchList) => Math.hypot(t[0].clientX - t[1].clientX, t[0].clientY - t[1].clientY);
  box.addEventListener('touchstart', (e) => {
    if (e.touches.length === 2) pinch = { dist: spread(e.touches), size: term.options.fontSize ?? prefs.fontSize };
  });
  box.addEventListener(
    'touchmove',
    (e) => {
      if (!pinch || e.touches.length !== 2) return;
      e.preventDefault();
      const size = clampFont(pinch.size * (spread(e.touches) / pinch.dist));
      if (size !== term.options.fontSize) view.setFont(size);
    },
    { passive: false },
  );
  box.addEventListener('touchend', () => {
    if (pinch && term.options.fontSize !== pinch.size) savePrefs({ fontSize: term.options.fontSize });
    pinch = null;
  });

  // Tap the terminal: the keyboard comes up on our field, not on xterm's.
  box.addEventListener('pointerup', () => field.focus({ preventScroll: true }));
  // Own touch scrolling through the scrollback.
  let lastY: number | null = null;
  let acc = 0;
  box.addEventListener(
    'touchmove',
    (e) => {
      if (e.touches.length !== 1) {
        lastY = null;
        return;
      }
      const y = e.touches[0].clientY;
      if (lastY !== null) {
        acc += lastY - y;
        const lineH = box.clientHeight / term.rows;
        const lines = Math.trunc(acc / lineH);
        if (lines) {
          term.scrollLines(lines);
          acc -= lines * lineH;
          showLatest();
        }
      }
      lastY = y;
      e.preventDefault();
    },
    { passive: false },
  );
  box.addEventListener('touchend', () => {
    lastY = null;
    acc = 0;
  });

  // Fit to the space left above the keyboard; tell the host the new size.
  let last = '';
  const refit = () => {
    if (!box.isConnected) return;
    try {
      fit.fit();
    } catch {
      return;
    }
    const s = `${term.cols}x${term.rows}`;
    if (s !== last) {
      last = s;
      conn.resize(channel, size());
    }
  };
  const ro = new ResizeObserver(() => refit());
  ro.observe(box);
  window.visualViewport?.addEventListener('resize', refit);
  requestAnimationFrame(() => {
    if (disposed) return;
    term.open(box);
    if (prefs.predict !== 'never' && term.element) {
      view.echo = new PredictedEcho(term, term.element, prefs.predict, () => writer.idle());
    }
    refit();
    attach();
    field.focus({ preventScroll: true });
  });
  return view;
}

const keyOk = (name: string) => keyDef(name) !== null;

/** The whole buffer as lines of text (trailing blank lines left out). */
function bufferLines(term: Terminal): string[] {
  const lines: string[] = [];
  const buf = term.buffer.active;
  for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** A sheet over the terminal with a title row of buttons; removed by `close()`. */
function sheet(parent: HTMLElement, title: string, testid: string) {
  parent.querySelector('.term-sheet')?.remove();
  const el = h('div', 'term-sheet');
  el.dataset.testid = testid;
  const top = h('div', 'sheet-top');
  top.append(h('strong', '', title), h('span', 'spacer'));
  el.append(top);
  parent.append(el);
  const close = () => el.remove();
  const btn = (label: string, onClick: () => void, cls = 'btn small') => {
    const b = h('button', cls, label);
    b.type = 'button';
    b.addEventListener('click', onClick);
    top.append(b);
    return b;
  };
  return { el, close, btn };
}

/**
 * Copy mode: the scrollback as plain text to select with the phone's own handles, "Copy
 * selection" and "Copy all".
 */
function showCopy(term: Terminal, parent: HTMLElement) {
  const s = sheet(parent, 'Copy', 'copy-sheet');
  const ta = h('textarea', 'copy-text');
  ta.readOnly = true;
  ta.value = bufferLines(term).join('\n');
  const done = (b: HTMLButtonElement, ok: boolean) => {
    b.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(s.close, ok ? 600 : 2000);
  };
  const sel = s.btn('Copy selection', () => {
    const text = ta.value.slice(ta.selectionStart, ta.selectionEnd);
    void copyText(text || ta.value).then((ok) => done(sel, ok));
  });
  const all = s.btn('Copy all', () => void copyText(ta.value).then((ok) => done(all, ok)), 'btn small primary');
  s.btn('Done', s.close);
  s.el.append(ta);
  ta.scrollTop = ta.scrollHeight;
}

/** Where the clipboard cannot be read: a field to long-press and paste into, then Send. */
function showPasteSheet(parent: HTMLElement, paste: (text: string) => void) {
  const s = sheet(parent, 'Paste', 'paste-sheet');
  const ta = h('textarea', 'copy-text');
  ta.placeholder = 'Long-press here and choose Paste, then Send.';
  ta.setAttribute('autocapitalize', 'off');
  ta.setAttribute('autocorrect', 'off');
  ta.spellcheck = false;
  s.btn('Cancel', s.close);
  s.btn('Send', () => {
    paste(ta.value);
    s.close();
  }, 'btn small primary');
  s.el.append(ta);
  ta.focus();
}

/** Search in the scrollback: every match, the current one selected and scrolled into view. */
function showFind(term: Terminal, parent: HTMLElement, refocus: () => void) {
  parent.querySelector('.find-bar')?.remove();
  const barEl = h('div', 'find-bar');
  barEl.dataset.testid = 'find-bar';
  const q = h('input', 'find-input');
  q.type = 'search';
  q.placeholder = 'Find in scrollback';
  q.setAttribute('autocapitalize', 'off');
  q.setAttribute('autocorrect', 'off');
  q.spellcheck = false;
  const count = h('span', 'find-count');
  count.dataset.testid = 'find-count';
  const mk = (label: string, aria: string, f: () => void) => {
    const b = h('button', 'key', label);
    b.type = 'button';
    b.setAttribute('aria-label', aria);
    b.addEventListener('click', f);
    return b;
  };
  let hits: { line: number; col: number }[] = [];
  let at = -1;
  const show = () => {
    if (at < 0 || !hits.length) {
      term.clearSelection();
      count.textContent = q.value ? 'none' : '';
      return;
    }
    const m = hits[at];
    term.select(m.col, m.line, [...q.value].length);
    term.scrollToLine(Math.max(0, m.line - Math.floor(term.rows / 2)));
    count.textContent = `${at + 1}/${hits.length}`;
  };
  const search = () => {
    const needle = q.value.toLowerCase();
    hits = [];
    if (needle) {
      const buf = term.buffer.active;
      for (let i = 0; i < buf.length; i++) {
        const text = (buf.getLine(i)?.translateToString(true) ?? '').toLowerCase();
        for (let c = text.indexOf(needle); c >= 0; c = text.indexOf(needle, c + 1)) hits.push({ line: i, col: c });
      }
    }
    // The newest match first: what you look for is most often what just scrolled by.
    at = hits.length - 1;
    show();
  };
  const step = (d: number) => {
    if (!hits.length) return;
    at = (at + d + hits.length) % hits.length;
    show();
  };
  q.addEventListener('input', search);
  q.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      step(e.shiftKey ? 1 : -1);
    } else if (e.key === 'Escape') close();
  });
  const close = () => {
    term.clearSelection();
    term.scrollToBottom();
    barEl.remove();
    refocus();
  };
  barEl.append(q, count, mk('▲', 'previous match', () => step(-1)), mk('▼', 'next match', () => step(1)), mk('✕', 'close search', close));
  parent.prepend(barEl);
  q.focus();
}

/** The key bar's rows, edited as text (key names separated by spaces; two rows per page). */
export function keysEditor(onSaved: () => void): HTMLElement {
  const box = h('div', 'keys-editor');
  box.dataset.testid = 'keys-editor';
  const prefs = loadPrefs();
  const rows = prefs.keys ?? DEFAULT_ROWS;
  const fields = [0, 1, 2, 3].map((i) => {
    const f = h('input', 'keys-row');
    f.value = rows[i] ?? '';
    f.setAttribute('autocapitalize', 'off');
    f.setAttribute('autocorrect', 'off');
    f.spellcheck = false;
    f.setAttribute('aria-label', `page ${Math.floor(i / 2) + 1}, row ${(i % 2) + 1}`);
    return f;
  });
  const note = h('p', 'hint');
  const help = h(
    'p',
    'hint',
    'Page 1 (rows 1–2) shows first; "More" turns the page. Names: Esc Tab S-Tab Enter Bksp Up Down Left Right Home End PgUp PgDn Del Ins Space Ctrl Alt Paste Copy Find More Keys F1–F12, ^X for Ctrl+X, or any single character.',
  );
  const save = h('button', 'btn primary', 'Save keys');
  save.type = 'button';
  const reset = h('button', 'btn', 'Default keys');
  reset.type = 'button';
  save.addEventListener('click', () => {
    const values = fields.map((f) => f.value.trim());
    const bad = values.flatMap((v) => v.split(/\s+/).filter((n) => n && !keyOk(n)));
    if (bad.length) {
      note.textContent = `Unknown key${bad.length > 1 ? 's' : ''}: ${bad.join(' ')}`;
      note.className = 'hint error';
      return;
    }
    savePrefs({ keys: values });
    note.textContent = 'Saved.';
    note.className = 'hint';
    onSaved();
  });
  reset.addEventListener('click', () => {
    savePrefs({ keys: null });
    fields.forEach((f, i) => (f.value = DEFAULT_ROWS[i]));
    note.textContent = 'Back to the default keys.';
    note.className = 'hint';
    onSaved();
  });
  const actions = h('div', 'actions');
  actions.append(save, reset);
  box.append(...fields, help, actions, note);
  return box;
}

function showKeysEditor(parent: HTMLElement) {
  const s = sheet(parent, 'Key bar', 'keys-sheet');
  s.btn('Done', s.close);
  s.el.append(keysEditor(() => h('span')), h('p', 'hint', 'Changes apply to the next terminal you open.'));
}
