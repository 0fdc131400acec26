// The predicted echo on a terminal (@xterm/headless, and enough of a DOM for its overlay): what
// still arrives once it is disposed must not reach the disposed terminal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Terminal } from '@xterm/headless';
import type { Terminal as PageTerminal } from '@xterm/xterm';
import { PredictedEcho } from '../src/echo';

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
