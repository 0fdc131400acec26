// Feeds terminal output to xterm.js without ever letting it fall far behind.
//
// xterm.js parses and renders at 5-35 MB/s; a flood (`yes`) arrives faster. The writer hands
// xterm one batch at a time and waits for its write callback before the next, so the page
// stays responsive. If more than `maxQueued` bytes wait, the oldest are skipped (cut at a
// line end) and a note says how much: the screen shows the newest output at once, and a ^C
// shows its effect within a frame or two instead of after the whole backlog.

export interface WriteTarget {
  write(data: Uint8Array | string, done: () => void): void;
}

export interface WriterOptions {
  batch: number;
  maxQueued: number;
  keepAfterSkip: number;
}

export class OutputWriter {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private busy = false;
  /** Bytes at the head of the queue that are never skipped (a picture of the screen). */
  private whole = 0;
  skipped = 0;
  written = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly opts: WriterOptions;

  constructor(
    private readonly target: WriteTarget,
    opts: Partial<WriterOptions> = {},
  ) {
    this.opts = { batch: 128 * 1024, maxQueued: 1024 * 1024, keepAfterSkip: 128 * 1024, ...opts };
  }

  get pending() {
    return this.queued;
  }

  push(data: Uint8Array) {
    if (data.length === 0) return;
    this.queue.push(data);
    this.queued += data.length;
    if (this.queued - this.whole > this.opts.maxQueued) this.skip();
    this.pump();
  }

  /**
   * Drops everything not yet handed to xterm and queues `data` in its place, never to be
   * skipped (a reset and a picture of the screen, which must be drawn whole).
   */
  replace(data: Uint8Array) {
    this.clear();
    this.queue = [data];
    this.queued = data.length;
    this.whole = data.length;
    this.pump();
  }

  /** Drops everything not yet handed to xterm. */
  clear() {
    this.skipped += this.queued;
    this.queue = [];
    this.queued = 0;
    this.whole = 0;
  }

  /** Drops the oldest queued bytes, keeping about `keepAfterSkip` from a line start. */
  private skip() {
    const everything = new Uint8Array(this.queued);
    let at = 0;
    for (const q of this.queue) {
      everything.set(q, at);
      at += q.length;
    }
    const head = everything.subarray(0, this.whole);
    const all = everything.subarray(this.whole);
    let cut = all.length - this.opts.keepAfterSkip;
    const nl = all.indexOf(0x0a, cut);
    cut = nl >= 0 ? nl + 1 : cut;
    this.skipped += cut;
    const note = new TextEncoder().encode(`\r\n\x1b[0;2m[peer: skipped ${cut} bytes of output to keep up]\x1b[0m\r\n`);
    this.queue = [head, note, all.subarray(cut)].filter((q) => q.length > 0);
    this.queued = head.length + note.length + all.length - cut;
  }

  private pump() {
    if (this.busy) return;
    if (this.queue.length === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    // Coalesce up to one batch.
    const parts: Uint8Array[] = [];
    let n = 0;
    while (this.queue.length && n < this.opts.batch) {
      const q = this.queue[0];
      const take = Math.min(q.length, this.opts.batch - n);
      parts.push(q.subarray(0, take));
      n += take;
      if (take === q.length) this.queue.shift();
      else this.queue[0] = q.subarray(take);
    }
    this.queued -= n;
    this.whole = Math.max(0, this.whole - n);
    const chunk = parts.length === 1 ? parts[0] : concatAll(parts, n);
    this.busy = true;
    this.target.write(chunk, () => {
      this.busy = false;
      this.written += n;
      this.pump();
    });
  }

  /** Resolves when everything queued was handed to xterm and rendered. */
  idle(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}

function concatAll(parts: Uint8Array[], n: number) {
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
