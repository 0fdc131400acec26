// Persistent state in IndexedDB: the device key, paired hosts, settings.
// The device key is a WebCrypto X25519 CryptoKey (non-extractable) where the browser has it in
// this context; otherwise (plain-http LAN pages have no crypto.subtle) a @noble secret.
import { x25519 } from '@noble/curves/ed25519.js';
import { type StaticKey, NoiseError } from './noise';

export interface HostRecord {
  /** Host endpoint id, hex. */
  id: string;
  /** Host's Noise static key, hex. */
  noiseKey: string;
  /** Per-device psk issued at pairing, hex. */
  psk: string;
  name: string;
  role: string;
  /** Bridge WebSocket URLs to try, in order. */
  bridges: string[];
  /** The relays the host named last (pairing payload, then its routes on every connection). */
  relays?: string[];
  pairedAt: number;
}

const DB = 'peer';
const STORE = 'kv';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let dbp: Promise<IDBDatabase> | null = null;
const db = () => (dbp ??= open());

export async function get<T>(key: string): Promise<T | undefined> {
  const d = await db();
  return new Promise((resolve, reject) => {
    const req = d.transaction(STORE).objectStore(STORE).get(key);
    req.onsuccess = () => resolve(req.result as T | undefined);
    req.onerror = () => reject(req.error);
  });
}

export async function put(key: string, value: unknown): Promise<void> {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

export async function hosts(): Promise<HostRecord[]> {
  return (await get<HostRecord[]>('hosts')) ?? [];
}

export async function saveHost(h: HostRecord): Promise<void> {
  const list = (await hosts()).filter((x) => x.id !== h.id);
  list.push(h);
  await put('hosts', list);
}

/** Replaces a stored host's record by `update(record)`, unless it was forgotten meanwhile. */
export async function updateHost(id: string, update: (h: HostRecord) => HostRecord | null): Promise<HostRecord | null> {
  const list = await hosts();
  const i = list.findIndex((x) => x.id === id);
  if (i < 0) return null;
  const next = update(list[i]);
  if (!next) return null;
  list[i] = next;
  await put('hosts', list);
  return next;
}

export async function forgetHost(id: string): Promise<void> {
  await put('hosts', (await hosts()).filter((x) => x.id !== id));
}

export async function deviceName(): Promise<string> {
  const n = await get<string>('deviceName');
  if (n) return n;
  const guess = /iPhone|iPad/.test(navigator.userAgent)
    ? 'iPhone'
    : /Android/.test(navigator.userAgent)
      ? 'Android phone'
      : 'browser';
  return guess;
}

export const setDeviceName = (name: string) => put('deviceName', name);

interface StoredKey {
  kind: 'webcrypto' | 'noble';
  publicKey: Uint8Array;
  privateKey?: CryptoKey;
  secret?: Uint8Array;
}

async function webCryptoKey(): Promise<StoredKey | null> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  try {
    const pair = (await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as CryptoKeyPair;
    const pub = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
    return { kind: 'webcrypto', publicKey: pub, privateKey: pair.privateKey };
  } catch {
    return null;
  }
}

function toStatic(k: StoredKey): StaticKey {
  if (k.kind === 'webcrypto' && k.privateKey) {
    const priv = k.privateKey;
    return {
      publicKey: k.publicKey,
      async dh(theirs) {
        const subtle = crypto.subtle;
        let pub: CryptoKey;
        try {
          pub = await subtle.importKey('raw', theirs as BufferSource, { name: 'X25519' }, false, []);
          const bits = await subtle.deriveBits({ name: 'X25519', public: pub } as EcdhKeyDeriveParams, priv, 256);
          return new Uint8Array(bits);
        } catch {
          throw new NoiseError('low-order or invalid public key');
        }
      },
    };
  }
  const secret = k.secret as Uint8Array;
  return {
    publicKey: k.publicKey,
    async dh(theirs) {
      let out: Uint8Array;
      try {
        out = x25519.getSharedSecret(secret, theirs);
      } catch {
        throw new NoiseError('low-order public key');
      }
      if (out.every((b) => b === 0)) throw new NoiseError('low-order public key');
      return out;
    },
  };
}

/** The device's long-term key, created on first use; `kind` says where the secret lives. */
export async function deviceKey(): Promise<{ key: StaticKey; kind: 'webcrypto' | 'noble' }> {
  let k = await get<StoredKey>('deviceKey');
  if (!k) {
    k = (await webCryptoKey()) ?? {
      kind: 'noble',
      secret: x25519.utils.randomSecretKey(),
      publicKey: new Uint8Array(),
    };
    if (k.kind === 'noble' && k.secret) k.publicKey = x25519.getPublicKey(k.secret);
    await put('deviceKey', k);
    // Ask the browser not to evict our storage (Safari deletes it after 7 idle days otherwise).
    void navigator.storage?.persist?.().catch(() => undefined);
  }
  return { key: toStatic(k), kind: k.kind };
}
