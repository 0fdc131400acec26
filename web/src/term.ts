// The terminal screen: xterm.js renders; input comes from our own hidden field and the key bar.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { InputDiffer, KEYS, applyCtrl, bytes, keyToBytes } from './input';
import { OutputWriter } from './writer';
import type { HostConn } from './conn';
import type { WinSize } from './gen/protocol';

export interface TermView {
  el: HTMLElement;
  term: Terminal;
  writer: OutputWriter;
  channel: number;
  send(text: string): void;
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
export function openTerminal(
  conn: HostConn,
  session: number,
  fromOffset: number,
  onStatus: (text: string) => void,
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
  const bar = h('div', 'keybar');
  el.append(box, field, bar);

  const term = new Terminal({
    fontFamily: 'ui-monospace, "SF Mono", Menlo, "DejaVu Sans Mono", "Liberation Mono", monospace',
    fontSize: 14,
    cursorBlink: false,
    disableStdin: true,
    scrollback: 5000,
    theme: { background: '#0b0e14', foreground: '#d7dae0' },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  const writer = new OutputWriter(term);
  let channel = 0;
  let ctrl = false;
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
    send(text: string) {
      if (text === '\x03') conn.interrupt(channel);
      else if (text) conn.input(channel, bytes(text));
    },
    dispose() {
      conn.detach(channel);
      ro.disconnect();
      window.visualViewport?.removeEventListener('resize', refit);
      term.dispose();
      el.remove();
    },
  };

  const size = (): WinSize => ({ cols: term.cols, rows: term.rows });
  let skippedAhead = false;
  channel = conn.attach(session, fromOffset, size(), {
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
      writer.push(bytes(`\r\n\x1b[2m[session ended: ${signal ?? `exit ${code}`}]\x1b[0m\r\n`));
      onStatus('ended');
    },
    error(message) {
      writer.push(bytes(`\r\n\x1b[31m[${message}]\x1b[0m\r\n`));
      onStatus('ended');
    },
    skipped() {
      skippedAhead = true;
      writer.clear();
      writer.push(bytes('\r\n\x1b[0;2m[peer: interrupted; skipped the rest of the flood]\x1b[0m\r\n'));
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
  }, screen);
  view.channel = channel;
  // Answers to terminal queries (cursor position, device attributes) go back to the program.
  term.onData((d) => conn.input(channel, bytes(d)));

  const setCtrl = (on: boolean) => {
    ctrl = on;
    ctrlBtn.classList.toggle('on', on);
  };
  const send = (text: string) => {
    if (!text) return;
    if (ctrl) {
      text = applyCtrl(text);
      setCtrl(false);
    }
    view.send(text);
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
    const seq = keyToBytes(e, ctrl);
    if (seq === null) return;
    e.preventDefault();
    if (e.key === 'Enter') {
      field.value = '';
      differ.reset();
    }
    setCtrl(false);
    view.send(seq);
  });

  // The key bar: buttons never take the focus away from the field (the keyboard stays up).
  const key = (label: string, seq: string, repeat = false) => {
    const b = h('button', 'key', label);
    b.type = 'button';
    let timer: ReturnType<typeof setTimeout> | null = null;
    const stop = () => {
      if (timer) clearTimeout(timer);
      timer = null;
    };
    b.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      send(seq);
      if (repeat) {
        const again = (delay: number) => {
          timer = setTimeout(() => {
            send(seq);
            again(60);
          }, delay);
        };
        again(400);
      }
    });
    for (const ev of ['pointerup', 'pointercancel', 'pointerleave']) b.addEventListener(ev, stop);
    b.addEventListener('click', (e) => e.preventDefault());
    bar.append(b);
    return b;
  };
  key('Esc', KEYS.Escape);
  const ctrlBtn = h('button', 'key', 'Ctrl');
  ctrlBtn.type = 'button';
  ctrlBtn.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    setCtrl(!ctrl);
  });
  bar.append(ctrlBtn);
  key('Tab', KEYS.Tab);
  key('←', KEYS.ArrowLeft, true);
  key('↑', KEYS.ArrowUp, true);
  key('↓', KEYS.ArrowDown, true);
  key('→', KEYS.ArrowRight, true);
  key('PgUp', KEYS.PageUp);
  key('PgDn', KEYS.PageDown);
  const cc = key('^C', '\x03');
  cc.classList.add('danger');
  cc.dataset.key = 'ctrl-c';
  const copy = h('button', 'key', 'Copy');
  copy.type = 'button';
  copy.addEventListener('click', () => showCopy(term, el));
  bar.append(copy);

  // Tap the terminal: the keyboard comes up on our field, not on xterm's.
  box.addEventListener('pointerup', () => field.focus({ preventScroll: true }));
  // Own touch scrolling through the scrollback.
  let lastY: number | null = null;
  let acc = 0;
  box.addEventListener(
    'touchmove',
    (e) => {
      const y = e.touches[0].clientY;
      if (lastY !== null) {
        acc += lastY - y;
        const lineH = box.clientHeight / term.rows;
        const lines = Math.trunc(acc / lineH);
        if (lines) {
          term.scrollLines(lines);
          acc -= lines * lineH;
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
    term.open(box);
    refit();
    field.focus({ preventScroll: true });
  });
  return view;
}

/** Copy mode: the scrollback as plain, selectable text. */
function showCopy(term: Terminal, parent: HTMLElement) {
  const lines: string[] = [];
  const buf = term.buffer.active;
  for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const sheet = h('div', 'copy-sheet');
  const close = h('button', 'btn', 'Done');
  const ta = h('textarea', 'copy-text');
  ta.readOnly = true;
  ta.value = lines.join('\n');
  close.addEventListener('click', () => sheet.remove());
  sheet.append(close, ta);
  parent.append(sheet);
  ta.scrollTop = ta.scrollHeight;
}
