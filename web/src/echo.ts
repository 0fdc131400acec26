// Predicted echo on the page's terminal: the engine (predict.ts) fed with what is typed, the
// host's acks and the terminal's screen, and its guesses drawn as an overlay of underlined
// cells over xterm.js (the terminal itself only ever gets the host's bytes, so taking a guess
// back is removing its overlay). `echoing` tells it of its channel's events.
import type { IDisposable, Terminal } from '@xterm/xterm';
import type { ChannelEvents } from './conn';
import type { EchoAck } from './gen/protocol';
import { Predictor, xtermView, type Overlay, type PredictMode } from './predict';

export class PredictedEcho {
  readonly engine: Predictor;
  private readonly layer: HTMLDivElement;
  private readonly view;
  /** Inputs sent and not yet acknowledged, with when (round-trip samples). */
  private sent: { seq: number; at: number }[] = [];
  /**
   * Echo acks waiting for their output: to be received (up to `EchoAck.offset`) and parsed by
   * the terminal.
   */
  private acks: EchoAck[] = [];
  /** Offset of the next output byte not yet received. */
  private received = 0;
  /**
   * Echo acks that came before all the output they cover (the host sends one as soon as it is
   * due, with the output's end offset then, and may send that output after it), for tests.
   */
  early = 0;
  private drawn = '';
  /** The terminal's width last seen. */
  private cols: number;
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
    this.cols = term.cols;
    this.layer = document.createElement('div');
    this.layer.className = 'predict-layer';
    this.layer.dataset.testid = 'predicted';
    parent.append(this.layer);
    this.listeners = [
      term.onWriteParsed(() => this.onParsed()),
      term.onScroll(() => this.draw()),
      term.onResize(({ cols }) => this.resized(cols)),
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
    if (a.offset > this.received) this.early++;
    this.acks.push(a);
    this.draw();
    this.answer();
  }

  /** Output up to `end` (the offset after it) has been received (and handed to the terminal). */
  output(end: number) {
    if (this.disposed) return;
    this.received = end;
    if (this.acks.length && this.acks[0].offset <= end) this.answer();
  }

  /**
   * Answers the acks whose output has been received, once the terminal has parsed it. An ack
   * covers the output up to its offset, which may still be on its way when the ack comes (the
   * host does not hold an ack back until it has sent that output): checked before, the echo of
   * a key the host answered late would not be on screen yet, and its guess taken for wrong.
   */
  private answer() {
    const upTo = this.received;
    if (!this.acks.length || this.acks[0].offset > upTo) return;
    // Everything received so far is parsed once the terminal is idle.
    void this.idle().then(() => {
      if (this.disposed) return;
      let n = 0;
      while (n < this.acks.length && this.acks[n].offset <= upTo) n++;
      if (n === 0) return;
      for (const k of this.acks.splice(0, n)) this.engine.answered(k.seq, this.view);
      this.draw();
    });
  }

  /**
   * The channel lost its attachment (the socket is gone or being replaced): keys typed until
   * `resumed` are queued by the connection, and guessed and shown as ever (predict.ts).
   */
  linkDown() {
    if (this.disposed) return;
    this.engine.linkDown();
    this.draw();
  }

  /**
   * The channel is attached (again), and the inputs the host had not applied are sent again:
   * none of them gives a round-trip sample (their round trip is the outage's), and the echo
   * acks of the last connection are dropped (the first of this one covers what the host had
   * applied). The open guesses get their full time from now.
   */
  resumed() {
    if (this.disposed) return;
    this.sent = [];
    this.acks = [];
    this.engine.linkUp(performance.now());
    this.draw();
  }

  /**
   * The screen was replaced (a picture, a skip, a gap: output goes on at `offset`), or the
   * attachment ended: guesses go.
   */
  reset(offset?: number) {
    if (this.disposed) return;
    this.engine.clear();
    this.acks = [];
    if (offset !== undefined) this.received = offset;
    this.draw();
  }

  /**
   * The terminal was resized: a new width reflows its lines and the guesses go; a new height
   * alone (the keyboard, the connection's status line above the terminal growing a line while
   * offline) keeps them on the cursor's line.
   */
  private resized(cols: number) {
    if (this.disposed) return;
    if (cols !== this.cols) {
      this.cols = cols;
      this.reset();
    } else {
      this.engine.heightChanged(this.view);
      // Drawn again whether or not the guesses moved: the screen's rows did.
      this.drawn = '';
      this.draw();
    }
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

/**
 * A terminal channel's events, with its predicted echo (`echo()`, null when off) told first of
 * those that concern it: the link lost and back, the host's acks, the screen replaced (a picture,
 * a skip, a gap), and the attachment's end (the session exited, or a resume found another
 * session or none), which takes the guesses back for good.
 */
export function echoing(events: ChannelEvents, echo: () => PredictedEcho | null): ChannelEvents {
  return {
    ...events,
    output(data, offset) {
      events.output(data, offset);
      echo()?.output(offset + data.length);
    },
    offline() {
      echo()?.linkDown();
      events.offline?.();
    },
    attached(a) {
      echo()?.resumed();
      events.attached(a);
    },
    exited(code, signal) {
      echo()?.reset();
      events.exited(code, signal);
    },
    error(message) {
      echo()?.reset();
      events.error(message);
    },
    gap(from, to) {
      echo()?.reset(to);
      events.gap(from, to);
    },
    skipped(offset) {
      echo()?.reset(offset);
      events.skipped?.(offset);
    },
    repaint(p) {
      events.repaint?.(p);
      echo()?.reset(p.offset);
    },
    inputAck(seq) {
      echo()?.inputAck(seq);
      events.inputAck?.(seq);
    },
    echoAck(a) {
      echo()?.echoAck(a);
      events.echoAck?.(a);
    },
  };
}
