// The predicted echo on a terminal (@xterm/headless, and enough of a DOM for its overlay): what
// still arrives once it is disposed must not reach the disposed terminal; through an outage (its
// channel's events as term.ts wires them) keys typed offline show and stay, the outage gives no
// round-trip sample, and a resume that finds the session gone takes the guesses back.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Terminal } from '@xterm/headless';
import type { Terminal as PageTerminal } from '@xterm/xterm';
import type { ChannelEvents } from '../src/conn';
import { echoing, PredictedEcho } from '../src/echo';
import type { Attached } from '../src/gen/protocol';
import { EXPIRE } from '../src/predict';

const element = () => ({ className: '', dataset: {}, style: {}, remove() {}, append() {}, replaceChildren() {} });
const g = globalThis as { document?: unknown };

describe('predicted echo on a terminal', () => {
  beforeAll(() => (g.document = { createElement: element }));
  afterAll(() => delete g.document);

  it('drops the acks that come after dispose, and the one still waiting for the parse', async () => {
    const real = new Terminal({ cols: 80, rows: 24, allowProposedApi: true });
    // Every use of the terminal after dispose, by name.
    let disposed = false;
    const touched: string[] = [];
    const term = new Proxy(real, {
      get(t, k) {
        if (disposed) touched.push(String(k));
        const v: unknown = Reflect.get(t, k);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    let parsed = () => {};
    const idle = () => new Promise<void>((r) => (parsed = r));
    const e = new PredictedEcho(term as unknown as PageTerminal, element() as unknown as HTMLElement, 'always', idle);
    e.echoAck({ seq: 0, offset: 0, echo: false, canonical: false });
    parsed();
    await new Promise((r) => setTimeout(r, 0));
    e.typed(1, 'a');
    e.output(1);
    e.echoAck({ seq: 1, offset: 1, echo: false, canonical: false });
    e.dispose();
    disposed = true;
    real.dispose();
    parsed();
    await new Promise((r) => setTimeout(r, 0));
    expect(() => {
      e.echoAck({ seq: 2, offset: 2, echo: false, canonical: false });
      e.typed(2, 'b');
      e.inputAck(2);
      e.reset();
    }).not.toThrow();
    parsed();
    await new Promise((r) => setTimeout(r, 0));
    expect(touched).toEqual([]);
  });
});

/** Writes `data` to the terminal and waits for the parse. */
const write = (term: Terminal, data: string) => new Promise<void>((r) => term.write(data, r));
/** Lets the echo answer its acks (they wait for the parse of what came before them). */
const settle = () => new Promise((r) => setTimeout(r, 20));
const NONE = { cells: [], cursor: null };
const ack = (seq: number) => ({ seq, offset: 0, echo: false, canonical: false });
const noEvents = (): ChannelEvents => ({ output() {}, attached() {}, exited() {}, error() {}, gap() {} });

describe('predicted echo through an outage', () => {
  beforeAll(() => (g.document = { createElement: element }));
  afterAll(() => delete g.document);
  // The echo's clock and its 250 ms tick; the terminal's parse keeps real timers.
  beforeEach(() => vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] }));
  afterEach(() => vi.useRealTimers());

  /** Auto at a shell prompt, over a link of 5 ms round trip (guesses hidden), "a" confirmed. */
  async function fastLink() {
    const term = new Terminal({ cols: 80, rows: 24, allowProposedApi: true });
    await write(term, '$ ');
    const e = new PredictedEcho(term as unknown as PageTerminal, element() as unknown as HTMLElement, 'adaptive', () => write(term, ''));
    const events = echoing(noEvents(), () => e);
    events.attached({} as Attached);
    events.echoAck?.(ack(0));
    await settle();
    e.typed(1, 'a');
    vi.advanceTimersByTime(5);
    events.inputAck?.(1);
    await write(term, 'a');
    events.echoAck?.(ack(1));
    await settle();
    expect(e.engine.rtt).toBe(5);
    return { term, e, events };
  }

  it('shows keys typed offline through an outage longer than the expiry, and takes no round trip from it', async () => {
    const { term, e, events } = await fastLink();
    events.offline?.();
    e.typed(2, 'cd');
    const cd = [
      { row: 0, col: 3, ch: 'c' },
      { row: 0, col: 4, ch: 'd' },
    ];
    expect(e.engine.overlay().cells, 'shown on a fast link while offline').toEqual(cd);
    vi.advanceTimersByTime(5 * EXPIRE);
    expect(e.engine.overlay().cells, 'kept while offline').toEqual(cd);
    // The resume re-sends them; the host applies them and echoes them at once.
    events.attached({} as Attached);
    vi.advanceTimersByTime(EXPIRE / 2);
    expect(e.engine.overlay().cells, 'their time runs from the resume').toEqual(cd);
    events.inputAck?.(2);
    expect(e.engine.rtt, 'no round-trip sample from the outage').toBe(5);
    await write(term, 'cd');
    events.echoAck?.(ack(2));
    await settle();
    expect(e.engine.overlay()).toEqual(NONE);
    expect(e.engine.stats.wrong).toBe(0);
    // Answered: the fast link's rule again.
    e.typed(3, 'e');
    expect(e.engine.overlay()).toEqual(NONE);
    e.dispose();
  });

  it('takes no round trip from a key sent before the outage and answered after it', async () => {
    const { e, events } = await fastLink();
    e.typed(2, 'b');
    events.offline?.();
    vi.advanceTimersByTime(10_000);
    events.attached({} as Attached);
    events.inputAck?.(2);
    expect(e.engine.rtt).toBe(5);
    e.dispose();
  });

  for (const [what, end] of [
    ['finds another session', (ev: ChannelEvents) => ev.error('the session ended with the host')],
    ['finds the session ended', (ev: ChannelEvents) => ev.exited(0, null)],
  ] as const) {
    it(`takes the guesses back when a resume ${what}`, async () => {
      const { e, events } = await fastLink();
      events.offline?.();
      e.typed(2, 'x');
      expect(e.engine.overlay().cells).toEqual([{ row: 0, col: 3, ch: 'x' }]);
      vi.advanceTimersByTime(300);
      end(events);
      expect(e.engine.overlay()).toEqual(NONE);
      e.dispose();
    });
  }

  it('answers an echo ack that comes before the output it covers once that output is parsed', async () => {
    // The host sends an EchoAck when it is due, with the output's end then as its offset, and
    // may send that output after it (the echo of a key came just as its wait ran out).
    const term = new Terminal({ cols: 80, rows: 24, allowProposedApi: true });
    const e = new PredictedEcho(term as unknown as PageTerminal, element() as unknown as HTMLElement, 'always', () => write(term, ''));
    let at = 0;
    const events = echoing({ ...noEvents(), output: (data) => term.write(data) }, () => e);
    const out = (text: string) => {
      const data = new TextEncoder().encode(text);
      events.output(data, at);
      at += data.length;
    };
    const ackAt = (seq: number, offset: number) => events.echoAck?.({ seq, offset, echo: false, canonical: false });
    out('$ ');
    events.attached({} as Attached);
    ackAt(0, 2);
    await settle();
    e.typed(1, 'a');
    out('a');
    ackAt(1, 3);
    await settle();
    e.typed(2, 'b');
    expect(e.engine.overlay().cells).toEqual([{ row: 0, col: 3, ch: 'b' }]);
    ackAt(2, 4);
    await settle();
    expect(e.engine.stats.wrong, 'not checked before its output').toBe(0);
    expect(e.engine.overlay().cells, 'still a guess').toEqual([{ row: 0, col: 3, ch: 'b' }]);
    expect(e.early).toBe(1);
    out('b');
    await settle();
    expect(e.engine.overlay()).toEqual(NONE);
    expect(e.engine.stats).toEqual({ shown: 2, confirmed: 2, wrong: 0 });
    e.dispose();
  });

  it('keeps the guesses on the cursor\'s line when the terminal gets shorter or taller, and drops them when it gets narrower', async () => {
    // The prompt on the bottom row: a shorter terminal scrolls it up.
    const term = new Terminal({ cols: 80, rows: 24, allowProposedApi: true });
    await write(term, '\r\n'.repeat(23) + '$ ');
    const e = new PredictedEcho(term as unknown as PageTerminal, element() as unknown as HTMLElement, 'always', () => write(term, ''));
    const events = echoing(noEvents(), () => e);
    events.attached({} as Attached);
    events.echoAck?.(ack(0));
    await settle();
    e.typed(1, 'a');
    await write(term, 'a');
    events.echoAck?.(ack(1));
    await settle();
    // Offline: the status line above the terminal takes a row, then another.
    events.offline?.();
    e.typed(2, 'bc');
    expect(e.engine.overlay()).toEqual({ cells: [{ row: 23, col: 3, ch: 'b' }, { row: 23, col: 4, ch: 'c' }], cursor: [23, 5] });
    term.resize(80, 22);
    expect(term.buffer.active.cursorY).toBe(21);
    expect(e.engine.overlay()).toEqual({ cells: [{ row: 21, col: 3, ch: 'b' }, { row: 21, col: 4, ch: 'c' }], cursor: [21, 5] });
    term.resize(80, 24);
    expect(e.engine.overlay().cursor).toEqual([term.buffer.active.cursorY, 5]);
    // Confirmed where they moved to.
    await write(term, 'bc');
    events.echoAck?.(ack(2));
    await settle();
    expect(e.engine.stats).toEqual({ shown: 3, confirmed: 3, wrong: 0 });
    e.typed(3, 'd');
    expect(e.engine.overlay().cells.length).toBe(1);
    term.resize(60, 24);
    expect(e.engine.overlay()).toEqual(NONE);
    e.dispose();
  });
});
