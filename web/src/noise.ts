// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, initiator side, on @noble.
//
//   <- s
//   ...
//   -> e, es, s, ss          message 1
//   <- e, ee, se, psk        message 2
//
// The long-term static key is behind the StaticKey interface so that it can live in WebCrypto
// (non-extractable) where the browser offers X25519, and in @noble otherwise.

import { x25519 } from '@noble/curves/ed25519.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { concat, utf8 } from './bytes';

export const PROTOCOL_NAME = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const MAX_MESSAGE = 65535;
const TAG = 16;
const DH = 32;
export const MAX_PLAINTEXT = MAX_MESSAGE - TAG;

/** A long-term X25519 key whose secret may be out of reach (WebCrypto). */
export interface StaticKey {
  readonly publicKey: Uint8Array;
  dh(theirPublic: Uint8Array): Promise<Uint8Array>;
}

/** A static key held in memory by @noble (tests, and browsers without WebCrypto X25519). */
export function nobleStaticKey(secret: Uint8Array): StaticKey {
  const s = secret.slice();
  return {
    publicKey: x25519.getPublicKey(s),
    dh: async (pub) => dhNoble(s, pub),
  };
}

export class NoiseError extends Error {}

function dhNoble(secret: Uint8Array, pub: Uint8Array): Uint8Array {
  if (pub.length !== DH) throw new NoiseError('bad public key length');
  let out: Uint8Array;
  try {
    out = x25519.getSharedSecret(secret, pub);
  } catch {
    throw new NoiseError('low-order public key');
  }
  let z = 0;
  for (const b of out) z |= b;
  if (z === 0) throw new NoiseError('low-order public key');
  return out;
}

const hash = (...parts: Uint8Array[]) => blake2s(concat(...parts));
const mac = (key: Uint8Array, ...parts: Uint8Array[]) => hmac(blake2s, key, concat(...parts));

function hkdf(ck: Uint8Array, ikm: Uint8Array, n: 2 | 3): Uint8Array[] {
  const temp = mac(ck, ikm);
  const o1 = mac(temp, new Uint8Array([1]));
  const o2 = mac(temp, o1, new Uint8Array([2]));
  if (n === 2) return [o1, o2];
  return [o1, o2, mac(temp, o2, new Uint8Array([3]))];
}

function nonceBytes(n: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setUint32(4, n >>> 0, true);
  view.setUint32(8, Math.floor(n / 2 ** 32), true);
  return out;
}

/** One direction of a Noise transport (a CipherState). */
export class CipherState {
  private n = 0;
  constructor(private readonly k: Uint8Array) {}

  encrypt(plain: Uint8Array, ad: Uint8Array = new Uint8Array()): Uint8Array {
    if (this.n >= Number.MAX_SAFE_INTEGER) throw new NoiseError('nonce exhausted');
    const out = chacha20poly1305(this.k, nonceBytes(this.n), ad).encrypt(plain);
    this.n++;
    return out;
  }

  decrypt(ct: Uint8Array, ad: Uint8Array = new Uint8Array()): Uint8Array {
    if (this.n >= Number.MAX_SAFE_INTEGER) throw new NoiseError('nonce exhausted');
    let out: Uint8Array;
    try {
      out = chacha20poly1305(this.k, nonceBytes(this.n), ad).decrypt(ct);
    } catch {
      throw new NoiseError('message does not decrypt');
    }
    this.n++;
    return out;
  }
}

/** SymmetricState of the Noise spec. */
class Symmetric {
  h: Uint8Array;
  ck: Uint8Array;
  k: CipherState | null = null;

  constructor() {
    const name = utf8.encode(PROTOCOL_NAME);
    // The name is longer than HASHLEN (32), so h = HASH(name).
    this.h = name.length <= 32 ? concat(name, new Uint8Array(32 - name.length)) : hash(name);
    this.ck = this.h;
  }
  mixHash(data: Uint8Array) {
    this.h = hash(this.h, data);
  }
  mixKey(ikm: Uint8Array) {
    const [ck, k] = hkdf(this.ck, ikm, 2);
    this.ck = ck;
    this.k = new CipherState(k);
  }
  mixKeyAndHash(ikm: Uint8Array) {
    const [ck, h, k] = hkdf(this.ck, ikm, 3);
    this.ck = ck;
    this.mixHash(h);
    this.k = new CipherState(k);
  }
  encryptAndHash(plain: Uint8Array): Uint8Array {
    const ct = this.k ? this.k.encrypt(plain, this.h) : plain;
    this.mixHash(ct);
    return ct;
  }
  decryptAndHash(ct: Uint8Array): Uint8Array {
    const plain = this.k ? this.k.decrypt(ct, this.h) : ct;
    this.mixHash(ct);
    return plain;
  }
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.ck, new Uint8Array(), 2);
    return [new CipherState(k1), new CipherState(k2)];
  }
}

/** An established channel: send with one CipherState, receive with the other. */
export interface Transport {
  send: CipherState;
  recv: CipherState;
  handshakeHash: Uint8Array;
  /** Message 2's payload (the host sends its name). */
  responderPayload: Uint8Array;
}

export interface InitiatorOptions {
  staticKey: StaticKey;
  remoteStatic: Uint8Array;
  psk: Uint8Array;
  prologue: Uint8Array;
  /** Fixed ephemeral secret: test vectors only. */
  ephemeralForTesting?: Uint8Array;
}

/** The initiator's handshake: `writeMessage1`, then `readMessage2`. */
export class Initiator {
  private readonly ss = new Symmetric();
  private readonly e: Uint8Array;
  private state: 'start' | 'sent' | 'done' = 'start';

  constructor(private readonly opts: InitiatorOptions) {
    if (opts.psk.length !== 32) throw new NoiseError('psk must be 32 bytes');
    if (opts.remoteStatic.length !== DH) throw new NoiseError('bad remote static key');
    this.e = opts.ephemeralForTesting?.slice() ?? x25519.utils.randomSecretKey();
    this.ss.mixHash(opts.prologue);
    this.ss.mixHash(opts.remoteStatic);
  }

  async writeMessage1(payload: Uint8Array): Promise<Uint8Array> {
    if (this.state !== 'start') throw new NoiseError('message 1 already written');
    this.state = 'sent';
    const { ss, opts } = this;
    const ePub = x25519.getPublicKey(this.e);
    ss.mixHash(ePub);
    ss.mixKey(ePub); // psk handshakes mix the ephemeral into the key as well
    ss.mixKey(dhNoble(this.e, opts.remoteStatic)); // es
    const s = ss.encryptAndHash(opts.staticKey.publicKey);
    ss.mixKey(await opts.staticKey.dh(opts.remoteStatic)); // ss
    const body = ss.encryptAndHash(payload);
    const msg = concat(ePub, s, body);
    if (msg.length > MAX_MESSAGE) throw new NoiseError('message 1 too large');
    return msg;
  }

  async readMessage2(msg: Uint8Array): Promise<Transport> {
    if (this.state !== 'sent') throw new NoiseError('message 1 not written');
    if (msg.length < DH + TAG) throw new NoiseError('message 2 too short');
    this.state = 'done';
    const { ss, opts } = this;
    const re = msg.slice(0, DH);
    ss.mixHash(re);
    ss.mixKey(re);
    ss.mixKey(dhNoble(this.e, re)); // ee
    ss.mixKey(await opts.staticKey.dh(re)); // se
    ss.mixKeyAndHash(opts.psk); // psk
    const payload = ss.decryptAndHash(msg.slice(DH));
    const [send, recv] = ss.split();
    this.e.fill(0);
    return { send, recv, handshakeHash: ss.h, responderPayload: payload };
  }
}
