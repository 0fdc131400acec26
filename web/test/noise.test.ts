import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fromHex, hex, utf8 } from '../src/bytes';
import { Initiator, NoiseError, nobleStaticKey } from '../src/noise';
import { pairingId, shortCode } from '../src/sas';
import { decodeEnvelope, encodeEnvelope } from '../src/channel';

const load = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'));
const cacophony = load('./vectors/cacophony_ikpsk2.json');
const pairing = load('../../pairing/vectors/noise_ikpsk2.json');
const bridge = load('../../pairing/vectors/bridge_ikpsk2.json');

describe('Cacophony vectors (snow) for Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s', () => {
  for (const v of cacophony.vectors) {
    it(`reproduces ${v.protocol_name}`, async () => {
      expect(v.protocol_name).toBe('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s');
      const init = new Initiator({
        staticKey: nobleStaticKey(fromHex(v.init_static)),
        remoteStatic: fromHex(v.init_remote_static),
        psk: fromHex(v.init_psks[0]),
        prologue: fromHex(v.init_prologue),
        ephemeralForTesting: fromHex(v.init_ephemeral),
      });
      const [m1, m2, ...rest] = v.messages;
      expect(hex(await init.writeMessage1(fromHex(m1.payload)))).toBe(m1.ciphertext);
      const t = await init.readMessage2(fromHex(m2.ciphertext));
      expect(hex(t.responderPayload)).toBe(m2.payload);
      expect(hex(t.handshakeHash)).toBe(v.handshake_hash);
      // After the handshake the initiator sends the even messages, the responder the odd ones.
      rest.forEach((m: { payload: string; ciphertext: string }, i: number) => {
        if (i % 2 === 0) expect(hex(t.send.encrypt(fromHex(m.payload)))).toBe(m.ciphertext);
        else expect(hex(t.recv.decrypt(fromHex(m.ciphertext)))).toBe(m.payload);
      });
    });
  }
});

describe('Rust pairing vectors (pairing/vectors/noise_ikpsk2.json)', () => {
  for (const v of pairing.vectors) {
    it(v.name, async () => {
      const key = nobleStaticKey(fromHex(v.initiator_static_secret));
      expect(hex(key.publicKey)).toBe(v.initiator_static_public);
      expect(hex(pairingId(fromHex(v.psk)))).toBe(v.pairing_id);
      const init = new Initiator({
        staticKey: key,
        remoteStatic: fromHex(v.responder_static_public),
        psk: fromHex(v.psk),
        prologue: fromHex(v.prologue),
        ephemeralForTesting: fromHex(v.initiator_ephemeral_secret),
      });
      expect(hex(await init.writeMessage1(fromHex(v.msg1_payload)))).toBe(v.msg1);
      const t = await init.readMessage2(fromHex(v.msg2));
      expect(hex(t.responderPayload)).toBe(v.msg2_payload);
      expect(hex(t.handshakeHash)).toBe(v.handshake_hash);
      expect(shortCode(t.handshakeHash)).toBe(v.short_code);
      for (const m of v.transport) {
        if (m.sender === 'initiator') expect(hex(t.send.encrypt(fromHex(m.plaintext)))).toBe(m.ciphertext);
        else expect(hex(t.recv.decrypt(fromHex(m.ciphertext)))).toBe(m.plaintext);
      }
    });
  }
});

describe('Rust bridge vectors (pairing/vectors/bridge_ikpsk2.json)', () => {
  for (const v of bridge.vectors) {
    it(v.name, async () => {
      const prologue = new Uint8Array([...utf8.encode('peer/bridge/1'), ...fromHex(v.host_id)]);
      expect(hex(prologue)).toBe(v.prologue);
      const init = new Initiator({
        staticKey: nobleStaticKey(fromHex(v.initiator_static_secret)),
        remoteStatic: fromHex(v.responder_static_public),
        psk: fromHex(v.psk),
        prologue,
        ephemeralForTesting: fromHex(v.initiator_ephemeral_secret),
      });
      expect(hex(await init.writeMessage1(fromHex(v.msg1_payload)))).toBe(v.msg1);
      const t = await init.readMessage2(fromHex(v.msg2));
      expect(new TextDecoder().decode(t.responderPayload)).toBe(v.host_name);
      expect(shortCode(t.handshakeHash)).toBe(v.short_code);
      for (const m of v.transport) {
        const plain = fromHex(m.plaintext);
        // The app's decoder reads what the Rust side encoded, as the vector describes it...
        const env = decodeEnvelope(plain);
        if (!('frame' in env)) throw new Error(env.error);
        const what = JSON.parse(m.what);
        expect(env.channel).toBe(what.channel);
        expect(env.frame.type).toBe(what.type);
        expect(plainJson('message' in env.frame ? env.frame.message : null)).toEqual(what.message);
        // ...and its encoder produces the very same bytes.
        const mine = encodeEnvelope(env.channel, env.frame);
        expect(hex(mine)).toBe(m.plaintext);
        if (m.sender === 'browser') expect(hex(t.send.encrypt(mine))).toBe(m.ciphertext);
        else expect(hex(t.recv.decrypt(fromHex(m.ciphertext)))).toBe(m.plaintext);
      }
    });
  }
});

describe('handshake failures', () => {
  const v = pairing.vectors[0];
  const start = () =>
    new Initiator({
      staticKey: nobleStaticKey(fromHex(v.initiator_static_secret)),
      remoteStatic: fromHex(v.responder_static_public),
      psk: fromHex(v.psk),
      prologue: fromHex(v.prologue),
      ephemeralForTesting: fromHex(v.initiator_ephemeral_secret),
    });
  it('a wrong psk makes message 2 fail to decrypt', async () => {
    const init = new Initiator({
      staticKey: nobleStaticKey(fromHex(v.initiator_static_secret)),
      remoteStatic: fromHex(v.responder_static_public),
      psk: new Uint8Array(32).fill(1),
      prologue: fromHex(v.prologue),
      ephemeralForTesting: fromHex(v.initiator_ephemeral_secret),
    });
    await init.writeMessage1(fromHex(v.msg1_payload));
    await expect(init.readMessage2(fromHex(v.msg2))).rejects.toBeInstanceOf(NoiseError);
  });
  it('a tampered message 2 is rejected', async () => {
    const init = start();
    await init.writeMessage1(fromHex(v.msg1_payload));
    const m2 = fromHex(v.msg2);
    m2[m2.length - 1] ^= 1;
    await expect(init.readMessage2(m2)).rejects.toBeInstanceOf(NoiseError);
  });
  it('a low-order ephemeral in message 2 is rejected', async () => {
    const init = start();
    await init.writeMessage1(fromHex(v.msg1_payload));
    const m2 = fromHex(v.msg2);
    m2.set(new Uint8Array(32), 0);
    await expect(init.readMessage2(m2)).rejects.toBeInstanceOf(NoiseError);
  });
  it('a short message 2 is rejected', async () => {
    const init = start();
    await init.writeMessage1(fromHex(v.msg1_payload));
    await expect(init.readMessage2(new Uint8Array(40))).rejects.toBeInstanceOf(NoiseError);
  });
  it('transport messages must arrive in order', async () => {
    const init = start();
    await init.writeMessage1(fromHex(v.msg1_payload));
    const t = await init.readMessage2(fromHex(v.msg2));
    const second = v.transport.filter((m: { sender: string }) => m.sender === 'responder')[1];
    expect(() => t.recv.decrypt(fromHex(second.ciphertext))).toThrow(NoiseError);
  });
});

/** A decoded message in the vectors' JSON form: byte strings as arrays of numbers. */
function plainJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(plainJson);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainJson(x)]));
  }
  return v;
}
