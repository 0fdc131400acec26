// Predicted echo on the page's terminal: the engine (predict.ts) fed with what is typed, the
// host's acks and the terminal's screen, and its guesses drawn as an overlay of underlined
// cells over xterm.js (the terminal itself only ever gets the host's bytes, so taking a guess
// back is removing its overlay).
import type { IDisposable, Terminal } from '@xterm/xterm';
import type { EchoAck } from './gen/protocol';
import { Predictor, xtermView, type Overlay, type PredictMode } from './predict';

export class PredictedEcho {
  readonly engine: Predictor;
  private readonly layer: HTMLDivElement;
  private readonly view;
  /** Inputs sent and not yet acknowledged, with when (round-trip samples). */
  private sent: { seq: number; at: number }[] = [];
  /** Echo acks waiting for the terminal to have parsed all output received. */
  private acks: EchoAck[] = [];
  private drawn = '';
  private timer: ReturnType<typeof setInterval>;
  private readonly listeners: IDisposable[];
  /** Once disposed, what still comes in (acks, the parse of output received before) is dropped. */
  private disposed = false;

  constructor(
    private readonly term: Terminal,
    parent: HTMLElement,
    mode: PredictMode,
    /** Resolves once xterm.js has parsed everything received so far. */
    private readonly idle: () => Promise<void>,
  ) {
    this.engine = new Predictor(mode);
    this.view = xtermView(term);
    this.layer = document.createElement('div');
    this.layer.className = 'predict-layer';
    this.layer.dataset.testid = 'predicted';
    parent.append(this.layer);
    this.listeners = [
      term.onWriteParsed(() => this.onParsed()),
      term.onScroll(() => this.draw()),
      term.onResize(() => this.reset()),
    ];
    this.timer = setInterval(() => {
      if (this.engine.tick(performance.now())) this.draw();
    }, 250);
  }

  /** Typed `text`, sent as input `seq`. */
  typed(seq: number, text: string) {
    if (seq === 0 || this.disposed) return;
    const now = performance.now();
    this.sent.push({ seq, at: now });
    if (this.sent.length > 1024) this.sent.shift();
    if (this.engine.typed(seq, text, this.view, now)) this.draw();
  }

  inputAck(seq: number) {
    const now = performance.now();
    while (this.sent.length && this.sent[0].seq <= seq) {
      const s = this.sent.shift();
      if (s && s.seq === seq) this.engine.rttSample(now - s.at);
    }
  }

  echoAck(a: EchoAck) {
    if (this.disposed) return;
    this.engine.lineDiscipline(a.echo, a.canonical);
    this.acks.push(a);
    this.draw();
    // The host sends an EchoAck after the output it covers: once everything received is
    // parsed, the terminal shows at least that much.
    void this.idle().then(() => {
      if (this.disposed) return;
      for (const k of this.acks.splice(0)) this.engine.answered(k.seq, this.view);
      this.draw();
    });
  }

  /** The screen was replaced (a picture, a skip, a gap): guesses go. */
  reset() {
    if (this.disposed) return;
    this.engine.clear();
    this.acks = [];
    this.draw();
  }

  dispose() {
    this.disposed = true;
    this.acks = [];
    clearInterval(this.timer);
    for (const l of this.listeners) l.dispose();
    this.layer.remove();
  }

  private onParsed() {
    this.engine.output(this.view, performance.now());
    this.draw();
  }

  private draw() {
    const b = this.term.buffer.active;
    const o: Overlay = b.viewportY === b.baseY ? this.engine.overlay() : { cells: [], cursor: null };
    const key = JSON.stringify(o);
    if (key === this.drawn) return;
    this.drawn = key;
    this.layer.replaceChildren();
    const screen = this.term.element?.querySelector<HTMLElement>('.xterm-screen');
    if (!screen || (o.cells.length === 0 && !o.cursor)) return;
    const w = screen.clientWidth / this.term.cols;
    const h = screen.clientHeight / this.term.rows;
    const left = screen.offsetLeft;
    const top = screen.offsetTop;
    const font = `${this.term.options.fontSize}px ${this.term.options.fontFamily}`;
    for (const c of o.cells) {
      const s = document.createElement('span');
      s.className = 'predict-cell';
      s.textContent = c.ch;
      s.style.cssText = `left:${left + c.col * w}px;top:${top + c.row * h}px;width:${w}px;height:${h}px;line-height:${h}px;font:${font}`;
      this.layer.append(s);
    }
    if (o.cursor) {
      const s = document.createElement('span');
      s.className = 'predict-cursor';
      s.style.cssText = `left:${left + o.cursor[1] * w}px;top:${top + o.cursor[0] * h}px;height:${h}px`;
      this.layer.append(s);
    }
  }
}
