// The postcard wire format (https://postcard.jamesmunns.com/wire-format), as much of it as
// peer's protocol uses: unsigned varints, bytes, strings, options, sequences, enums. The
// generated codec in gen/protocol.ts is written against this Reader and Writer.
//
// Integers are JavaScript numbers. A u64 must be below 2^53 (Number.MAX_SAFE_INTEGER + 1),
// except u64::MAX, the protocol's "no limit / from now on" value, which is Infinity here.

export class PostcardError extends Error {}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Appends postcard encodings to a growing buffer. */
export class Writer {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
  }

  private room(n: number) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number) {
    this.room(1);
    this.buf[this.len++] = v & 0xff;
  }

  bool(v: boolean) {
    this.u8(v ? 1 : 0);
  }

  /** An unsigned varint of at most `bits` bits (16, 32 or 64). */
  varint(v: number, bits: number) {
    if (!Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) throw new PostcardError(`not a u${bits}: ${v}`);
    if (bits < 53 && v >= 2 ** bits) throw new PostcardError(`not a u${bits}: ${v}`);
    this.room(10);
    // Division instead of bit operations: they work on 32 bits only.
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  u64(v: number) {
    if (v === Infinity) {
      this.room(10);
      let big = U64_MAX;
      while (big >= 0x80n) {
        this.buf[this.len++] = Number(big & 0x7fn) | 0x80;
        big >>= 7n;
      }
      this.buf[this.len++] = Number(big);
      return;
    }
    this.varint(v, 64);
  }

  fixed(v: Uint8Array, n: number) {
    if (v.length !== n) throw new PostcardError(`expected ${n} bytes, got ${v.length}`);
    this.room(n);
    this.buf.set(v, this.len);
    this.len += n;
  }

  bytes(v: Uint8Array) {
    this.varint(v.length, 32);
    this.fixed(v, v.length);
  }

  str(v: string) {
    this.bytes(utf8.encode(v));
  }

  /** What was written (a view of the buffer; copy it to keep it past the next write). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Reads postcard encodings from a byte array; every read past the end throws. */
export class Reader {
  private pos = 0;

  constructor(private readonly buf: Uint8Array) {}

  done(): boolean {
    return this.pos === this.buf.length;
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new PostcardError('unexpected end');
    return this.buf[this.pos++];
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new PostcardError(`bad bool ${b}`);
    return b === 1;
  }

  /** `Option`'s tag: whether a value follows. */
  option(): boolean {
    return this.bool();
  }

  /** An unsigned varint of at most `bits` bits (16 or 32), as postcard checks it. */
  varint(bits: number): number {
    const max = Math.ceil(bits / 7);
    let v = 0;
    let scale = 1;
    for (let i = 0; i < max; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (v >= 2 ** bits) throw new PostcardError(`varint too large for u${bits}`);
        return v;
      }
      scale *= 0x80;
    }
    throw new PostcardError(`varint too long for u${bits}`);
  }

  /** A u64: below 2^53 as a number, u64::MAX as Infinity, anything else an error. */
  u64(): number {
    let v = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (v > U64_MAX) throw new PostcardError('varint too large for u64');
        if (v === U64_MAX) return Infinity;
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PostcardError('u64 above 2^53');
        return Number(v);
      }
    }
    throw new PostcardError('varint too long for u64');
  }

  /** An enum's variant index, which must be below `count`. */
  variant(count: number): number {
    const i = this.varint(32);
    if (i >= count) throw new PostcardError(`variant ${i} of ${count}`);
    return i;
  }

  fixed(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new PostcardError('unexpected end');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A length-prefixed byte string (a view into the input, not a copy). */
  bytes(): Uint8Array {
    return this.fixed(this.varint(32));
  }

  str(): string {
    try {
      return fromUtf8.decode(this.bytes());
    } catch (e) {
      if (e instanceof PostcardError) throw e;
      throw new PostcardError('string is not UTF-8');
    }
  }

  seq<T>(item: () => T): T[] {
    const n = this.varint(32);
    // Every item takes at least one byte: a count beyond what is left is a lie.
    if (n > this.buf.length - this.pos) throw new PostcardError('sequence longer than the input');
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }
}
