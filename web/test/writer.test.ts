import { describe, expect, it } from 'vitest';
import { OutputWriter } from '../src/writer';

class FakeTerm {
  out = '';
  calls: (() => void)[] = [];
  inFlight = 0;
  maxInFlight = 0;
  write(data: Uint8Array | string, done: () => void) {
    this.out += typeof data === 'string' ? data : new TextDecoder().decode(data);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.calls.push(() => {
      this.inFlight--;
      done();
    });
  }
  drain() {
    while (this.calls.length) this.calls.shift()!();
  }
}

const enc = (s: string) => new TextEncoder().encode(s);

describe('OutputWriter', () => {
  it('hands xterm one batch at a time and keeps every byte in order', () => {
    const t = new FakeTerm();
    const w = new OutputWriter(t, { batch: 4 });
    w.push(enc('hello '));
    w.push(enc('world'));
    expect(t.inFlight).toBe(1);
    t.drain();
    expect(t.out).toBe('hello world');
    expect(t.maxInFlight).toBe(1);
    expect(w.skipped).toBe(0);
  });
  it('skips the oldest output of a flood at a line end and says so', async () => {
    const t = new FakeTerm();
    const w = new OutputWriter(t, { batch: 10, maxQueued: 100, keepAfterSkip: 20 });
    for (let i = 0; i < 100; i++) w.push(enc(`line ${i}\n`));
    expect(w.pending).toBeLessThan(200);
    t.drain();
    await w.idle();
    expect(t.out).toContain('[peer: skipped');
    expect(t.out.endsWith('line 99\n')).toBe(true);
    // What is shown after the note starts at a line start.
    const after = t.out.split('to keep up]\x1b[0m\r\n').pop()!;
    expect(after).toMatch(/^line \d+\n/);
    expect(w.skipped).toBeGreaterThan(0);
  });
  it('draws a picture of the screen whole, in place of what was queued, even past the flood limit', async () => {
    const t = new FakeTerm();
    const w = new OutputWriter(t, { batch: 10, maxQueued: 100, keepAfterSkip: 20 });
    w.push(enc('old 1\n'));
    w.push(enc('old 2\n'));
    const picture = 'P'.repeat(300);
    w.replace(enc(picture));
    for (let i = 0; i < 30; i++) w.push(enc(`line ${i}\n`));
    t.drain();
    await w.idle();
    // The first batch was already with xterm; the rest of the old output is dropped.
    expect(t.out.startsWith('old 1\nPPP')).toBe(true);
    expect(t.out).not.toContain('old 2');
    expect(t.out).toContain(picture);
    // The flood after the picture is cut, the picture is not.
    expect(t.out).toContain('[peer: skipped');
    expect(t.out.endsWith('line 29\n')).toBe(true);
  });
});
