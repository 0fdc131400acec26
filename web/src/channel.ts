// The browser channel codec (peer/src/proto/browser.rs): what travels inside the Noise
// transport messages. First byte: 0x00 JSON control, 0x01 output (host -> browser),
// 0x02 input (browser -> host); binary messages carry channel u32 BE and offset/seq u64 BE.
import type { BrowserToHost, HostToBrowser } from './gen/protocol';
import { fromUtf8Strict, utf8 } from './bytes';
import { MAX_PLAINTEXT } from './noise';

export const KIND_JSON = 0x00;
export const KIND_OUTPUT = 0x01;
export const KIND_INPUT = 0x02;
export const BINARY_HEADER = 1 + 4 + 8;
export const MAX_BINARY_DATA = MAX_PLAINTEXT - BINARY_HEADER;

export type HostMsg =
  | { kind: 'control'; msg: HostToBrowser }
  | { kind: 'output'; channel: number; offset: number; data: Uint8Array };

export class ChannelError extends Error {}

/**
 * `Attach.from_offset` meaning "only output from now on" (u64::MAX on the wire, which a JS
 * number cannot hold: encodeControl writes the exact digits).
 */
export const FROM_NOW = -1;

export function encodeControl(msg: BrowserToHost): Uint8Array {
  let text = JSON.stringify(msg);
  if (msg.type === 'attach' && msg.attach.from_offset === FROM_NOW) {
    text = text.replace('"from_offset":-1,', '"from_offset":18446744073709551615,');
  }
  const json = utf8.encode(text);
  const out = new Uint8Array(1 + json.length);
  out[0] = KIND_JSON;
  out.set(json, 1);
  return out;
}

/** Keystrokes for `channel` with sequence number `seq`; `data` at most MAX_BINARY_DATA. */
export function encodeInput(channel: number, seq: number, data: Uint8Array): Uint8Array {
  if (data.length > MAX_BINARY_DATA) throw new ChannelError('input chunk too large');
  const out = new Uint8Array(BINARY_HEADER + data.length);
  const view = new DataView(out.buffer);
  out[0] = KIND_INPUT;
  view.setUint32(1, channel, false);
  view.setBigUint64(5, BigInt(seq), false);
  out.set(data, BINARY_HEADER);
  return out;
}

/** Decodes one message from the host; anything else (input kind, garbage) is an error. */
export function decodeHost(bytes: Uint8Array): HostMsg {
  if (bytes.length === 0) throw new ChannelError('empty message');
  if (bytes.length > MAX_PLAINTEXT) throw new ChannelError('message too large');
  const kind = bytes[0];
  if (kind === KIND_JSON) {
    let msg: unknown;
    try {
      msg = JSON.parse(fromUtf8Strict.decode(bytes.subarray(1)));
    } catch (e) {
      throw new ChannelError(`bad control message: ${String(e)}`);
    }
    if (typeof msg !== 'object' || msg === null || typeof (msg as { type?: unknown }).type !== 'string') {
      throw new ChannelError('bad control message: no type');
    }
    return { kind: 'control', msg: msg as HostToBrowser };
  }
  if (kind !== KIND_OUTPUT) throw new ChannelError(`unknown message kind 0x${kind.toString(16).padStart(2, '0')}`);
  if (bytes.length < BINARY_HEADER) throw new ChannelError('truncated binary message');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    kind: 'output',
    channel: view.getUint32(1, false),
    offset: Number(view.getBigUint64(5, false)),
    data: bytes.subarray(BINARY_HEADER),
  };
}
