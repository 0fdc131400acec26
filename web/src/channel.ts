// The browser channel (proto/src/browser.rs): every Noise plaintext is one envelope, the
// channel number (postcard varint) followed by one frame body (type byte, postcard payload),
// the same frames a native client exchanges. Channel 0 is control; every other channel is one
// attachment the app opened with Attach or AgentAttach.
import { PostcardError, Reader, Writer } from './postcard';
import { CONTROL, decodeFrameBody, encodeFrameBody, FrameError, MAX_PLAINTEXT, type Frame } from './gen/protocol';

export { CONTROL };

/** An envelope that cannot be read at all (the socket is broken). */
export class EnvelopeError extends Error {}

/** One decoded envelope: its channel, and its frame or why the frame does not decode. */
export type Envelope = { channel: number; frame: Frame } | { channel: number; error: string };

export function encodeEnvelope(channel: number, frame: Frame): Uint8Array {
  const w = new Writer(32);
  w.varint(channel, 32);
  encodeFrameBody(w, frame);
  const out = w.finish();
  if (out.length > MAX_PLAINTEXT) throw new EnvelopeError(`message of ${out.length} bytes is too large`);
  return out;
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length === 0) throw new EnvelopeError('empty message');
  if (bytes.length > MAX_PLAINTEXT) throw new EnvelopeError('message too large');
  const r = new Reader(bytes);
  let channel: number;
  try {
    channel = r.varint(32);
  } catch {
    throw new EnvelopeError('bad channel number');
  }
  try {
    return { channel, frame: decodeFrameBody(r) };
  } catch (e) {
    if (e instanceof FrameError || e instanceof PostcardError) return { channel, error: e.message };
    throw e;
  }
}
