import { describe, expect, it } from 'vitest';
import { hex, fromHex } from '../src/bytes';
import { decodeEnvelope, encodeEnvelope, EnvelopeError } from '../src/channel';
import { FROM_NOW } from '../src/conn';
import { decodeFrameBody, encodeFrameBody, FrameError, MAX_BROWSER_CHUNK, MAX_PLAINTEXT, type Frame } from '../src/gen/protocol';
import { PostcardError, Reader, Writer } from '../src/postcard';

const body = (f: Frame) => {
  const w = new Writer();
  encodeFrameBody(w, f);
  return hex(w.finish());
};

describe('the generated codec', () => {
  it('matches the golden frames of docs/protocol.md', () => {
    expect(body({ type: 'Output', message: { offset: 300, data: new TextEncoder().encode('hi') } })).toBe('12ac02026869');
    expect(body({ type: 'Request', message: { id: 1, request: 'ListSessions' } })).toBe('030100');
    expect(body({ type: 'Request', message: { id: 2, request: { KillSession: { session: 3 } } } })).toBe('03020203');
    expect(
      body({
        type: 'Request',
        message: {
          id: 3,
          request: {
            CreateSession: {
              name: null,
              command: ['sh'],
              cwd: null,
              env: [['TERM', 'xterm']],
              size: { cols: 80, rows: 24 },
              hold_output: true,
            },
          },
        },
      }),
    ).toBe('03030100010273680001045445524d05787465726d501801');
    expect(body({ type: 'Detach' })).toBe('18');
    expect(body({ type: 'Response', message: { id: 2, result: { Err: { code: 'Forbidden', message: 'x' } } } })).toBe(
      '0402010201' + '78',
    );
  });

  it('writes "from now on" as u64::MAX and reads it back as Infinity', () => {
    const message = { session: 1, from_offset: FROM_NOW, client_token: 1, size: null, screen: { scrollback: 1000 }, echo_acks: false };
    const hexed = body({ type: 'Attach', message });
    // ... Some(1000 lines of scrollback), no echo acks
    expect(hexed).toBe('1001ffffffffffffffffff01010001e80700');
    const f = decodeFrameBody(new Reader(fromHex(hexed)));
    expect(f).toEqual({ type: 'Attach', message: { ...message, from_offset: Infinity } });
  });

  it('refuses numbers it cannot hold exactly', () => {
    // 2^53 as a u64 varint.
    const w = new Writer();
    w.u64(2 ** 52);
    expect(() => new Writer().u64(2 ** 53)).toThrow(PostcardError);
    expect(() => new Writer().varint(70000, 16)).toThrow(PostcardError);
    expect(() => new Writer().varint(-1, 32)).toThrow(PostcardError);
    expect(() => new Reader(fromHex('8080808080808010')).u64()).toThrow(/2\^53/);
    expect(() => new Reader(fromHex('808004')).varint(16)).toThrow(PostcardError);
  });

  it('names what is wrong with a frame, as the Rust decoder does', () => {
    expect(() => decodeFrameBody(new Reader(fromHex('7e0102')))).toThrow(/unknown frame type 0x7e/);
    expect(() => decodeFrameBody(new Reader(new Uint8Array([])))).toThrow(/empty frame/);
    expect(() => decodeFrameBody(new Reader(fromHex('1501')))).toThrow(/malformed Input frame/);
    expect(() => decodeFrameBody(new Reader(fromHex('1800')))).toThrow(/trailing bytes after Detach/);
    expect(() => decodeFrameBody(new Reader(fromHex('1101')))).toThrow(FrameError);
  });
});

describe('envelopes', () => {
  it('carry a channel and a frame, and a bad frame names its channel', () => {
    const bytes = encodeEnvelope(7, { type: 'Output', message: { offset: 2 ** 40, data: new TextEncoder().encode('hi') } });
    expect(hex(bytes)).toBe('071280808080802002' + '6869');
    expect(decodeEnvelope(fromHex('ac0218'))).toEqual({ channel: 300, frame: { type: 'Detach' } });
    expect(decodeEnvelope(fromHex('037e'))).toEqual({ channel: 3, error: 'unknown frame type 0x7e' });
    expect(() => decodeEnvelope(new Uint8Array([]))).toThrow(EnvelopeError);
    expect(() => decodeEnvelope(fromHex('80'))).toThrow(/bad channel/);
  });

  it('fit the largest chunk into one Noise message', () => {
    const worst = encodeEnvelope(2 ** 32 - 1, {
      type: 'Input',
      message: { seq: 2 ** 53 - 1, data: new Uint8Array(MAX_BROWSER_CHUNK) },
    });
    expect(worst.length).toBeLessThanOrEqual(MAX_PLAINTEXT);
  });
});
