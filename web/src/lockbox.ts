// The app lock's format: the secrets this app keeps (the device key where it is bytes, each
// host's psk, the push VAPID key), sealed with AES-256-GCM under a key derived by HKDF-SHA256
// from a passkey's PRF output. Nothing here touches WebAuthn or storage: it takes the PRF output
// and records, and gives records back (lock.ts and store.ts do the rest).
//
// Stored: the PRF input (salt), the HKDF salt, the nonce and the sealed bytes, never the PRF
// output nor the derived key. Each seal takes a fresh nonce; each new lock fresh salts.
import { fromHex, hex } from './bytes';

/** What the `lock` record in IndexedDB holds. */
export interface LockRecord {
  v: 1;
  /** The passkey (WebAuthn credential id) whose PRF output opens the lock. */
  credentialId: Uint8Array;
  /** The PRF input given to the passkey, 32 random bytes. */
  prfSalt: Uint8Array;
  /** HKDF salt, 32 random bytes. */
  hkdfSalt: Uint8Array;
  /** AES-GCM nonce of `sealed`, 12 bytes, fresh on every seal. */
  nonce: Uint8Array;
  /** The sealed secrets (ciphertext and tag). */
  sealed: Uint8Array;
  /** Minutes without a touch or a key (hidden counts) after which the app locks again. */
  idleMinutes: number;
}

/** The secrets, as sealed. */
export interface Secrets {
  /** The device's X25519 secret, where the app holds it as bytes (not a WebCrypto key). */
  device?: Uint8Array;
  /** Each paired host's psk (hex), by host id. */
  psks: Record<string, string>;
  /** The push VAPID private key (P-256 scalar). */
  vapid?: Uint8Array;
}

/** Why the lock could not be opened or read; the message says it for a person. */
export class LockError extends Error {
  constructor(
    readonly kind: 'decrypt' | 'format',
    message: string,
  ) {
    super(message);
  }
}

const INFO = new TextEncoder().encode('peer app lock v1');
export const IDLE_DEFAULT_MINUTES = 5;

const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));

/** The AES-GCM key for a PRF output (a WebCrypto key nobody can export). */
export async function deriveKey(prf: Uint8Array, hkdfSalt: Uint8Array): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey('raw', prf as BufferSource, 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: hkdfSalt as BufferSource, info: INFO as BufferSource },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/** The record's header, bound to the sealed bytes as associated data. */
function aad(r: Pick<LockRecord, 'v' | 'credentialId' | 'prfSalt' | 'hkdfSalt'>): Uint8Array {
  const out = new Uint8Array(INFO.length + 1 + r.credentialId.length + 64);
  out.set(INFO);
  out[INFO.length] = r.v;
  out.set(r.credentialId, INFO.length + 1);
  out.set(r.prfSalt, INFO.length + 1 + r.credentialId.length);
  out.set(r.hkdfSalt, INFO.length + 33 + r.credentialId.length);
  return out;
}

function encode(s: Secrets): Uint8Array {
  const json = { device: s.device ? hex(s.device) : undefined, psks: s.psks, vapid: s.vapid ? hex(s.vapid) : undefined };
  return new TextEncoder().encode(JSON.stringify(json));
}

function decode(b: Uint8Array): Secrets {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch {
    throw new LockError('format', 'The locked keys are damaged (not readable after decryption).');
  }
  const o = v as { device?: unknown; psks?: unknown; vapid?: unknown };
  const isHex = (x: unknown): x is string => typeof x === 'string' && /^([0-9a-f]{2})*$/.test(x);
  if (typeof o !== 'object' || o === null || typeof o.psks !== 'object' || o.psks === null) {
    throw new LockError('format', 'The locked keys are damaged (no psk table).');
  }
  const psks: Record<string, string> = {};
  for (const [id, psk] of Object.entries(o.psks)) {
    if (!isHex(psk)) throw new LockError('format', 'The locked keys are damaged (a psk is not hex).');
    psks[id] = psk;
  }
  if ((o.device !== undefined && !isHex(o.device)) || (o.vapid !== undefined && !isHex(o.vapid))) {
    throw new LockError('format', 'The locked keys are damaged (a key is not hex).');
  }
  return { psks, device: isHex(o.device) ? fromHex(o.device) : undefined, vapid: isHex(o.vapid) ? fromHex(o.vapid) : undefined };
}

/** A new lock for `credentialId`: fresh salts (the PRF input is `prfSalt`, chosen before the PRF ran). */
export async function newLock(
  credentialId: Uint8Array,
  prfSalt: Uint8Array,
  prf: Uint8Array,
  secrets: Secrets,
  idleMinutes = IDLE_DEFAULT_MINUTES,
): Promise<{ record: LockRecord; key: CryptoKey }> {
  if (prfSalt.length !== 32) throw new LockError('format', 'The PRF input must be 32 bytes.');
  const hkdfSalt = random(32);
  const key = await deriveKey(prf, hkdfSalt);
  const head = { v: 1 as const, credentialId: credentialId.slice(), prfSalt: prfSalt.slice(), hkdfSalt, idleMinutes };
  return { record: await seal(key, { ...head, nonce: new Uint8Array(12), sealed: new Uint8Array() }, secrets), key };
}

/** `record` with `secrets` sealed in it under `key` (a fresh nonce). */
export async function seal(key: CryptoKey, record: LockRecord, secrets: Secrets): Promise<LockRecord> {
  const nonce = random(12);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce as BufferSource, additionalData: aad(record) as BufferSource }, key, encode(secrets) as BufferSource),
  );
  return { ...record, nonce, sealed };
}

/** The key and the secrets of `record` for a PRF output; `LockError('decrypt')` if it is not the right one. */
export async function open(record: LockRecord, prf: Uint8Array): Promise<{ key: CryptoKey; secrets: Secrets }> {
  if (record.v !== 1) throw new LockError('format', `The lock was made by a newer app (format ${String(record.v)}).`);
  const key = await deriveKey(prf, record.hkdfSalt);
  return { key, secrets: await openWithKey(record, key) };
}

/** The secrets of `record` under a key already derived (a record resealed elsewhere, e.g. another tab). */
export async function openWithKey(record: LockRecord, key: CryptoKey): Promise<Secrets> {
  if (record.v !== 1) throw new LockError('format', `The lock was made by a newer app (format ${String(record.v)}).`);
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: record.nonce as BufferSource, additionalData: aad(record) as BufferSource },
      key,
      record.sealed as BufferSource,
    );
  } catch {
    throw new LockError('decrypt', 'The passkey answered, but its key does not open the stored keys (another passkey, or the stored data was changed).');
  }
  return decode(new Uint8Array(plain));
}

/** Whether a value read from storage is a lock record this app can use. */
export function isLockRecord(v: unknown): v is LockRecord {
  const r = v as LockRecord | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.credentialId instanceof Uint8Array &&
    r.prfSalt instanceof Uint8Array &&
    r.hkdfSalt instanceof Uint8Array &&
    r.nonce instanceof Uint8Array &&
    r.sealed instanceof Uint8Array &&
    typeof r.idleMinutes === 'number'
  );
}

// ---------------------------------------------------------------------------------------------
// Migration: what the app stores, with and without its secrets.

/** The stored records that hold secrets (store.ts's shapes, as far as the lock cares). */
export interface Stored<H extends { id: string; psk: string }, K extends { kind: string; secret?: Uint8Array }, P extends { vapidPrivate?: Uint8Array }> {
  deviceKey?: K;
  hosts: H[];
  push?: P;
}

/** The records without their secrets, and the secrets (locking). */
export function split<H extends { id: string; psk: string }, K extends { kind: string; secret?: Uint8Array }, P extends { vapidPrivate?: Uint8Array }>(
  s: Stored<H, K, P>,
): { plain: Stored<H, K, P>; secrets: Secrets } {
  const secrets: Secrets = { psks: {} };
  for (const h of s.hosts) secrets.psks[h.id] = h.psk;
  let deviceKey = s.deviceKey;
  if (deviceKey?.secret) {
    secrets.device = deviceKey.secret;
    deviceKey = { ...deviceKey };
    delete deviceKey.secret;
  }
  let push = s.push;
  if (push?.vapidPrivate) {
    secrets.vapid = push.vapidPrivate;
    push = { ...push };
    delete push.vapidPrivate;
  }
  const plain: Stored<H, K, P> = { hosts: s.hosts.map((h) => ({ ...h, psk: '' })) };
  if (deviceKey) plain.deviceKey = deviceKey;
  if (push) plain.push = push;
  return { plain, secrets };
}

/** The records with their secrets put back (unlocked, or the lock removed). */
export function merge<H extends { id: string; psk: string }, K extends { kind: string; secret?: Uint8Array }, P extends { vapidPrivate?: Uint8Array }>(
  plain: Stored<H, K, P>,
  secrets: Secrets,
): Stored<H, K, P> {
  const out: Stored<H, K, P> = { hosts: plain.hosts.map((h) => ({ ...h, psk: secrets.psks[h.id] ?? h.psk })) };
  if (plain.deviceKey) out.deviceKey = secrets.device ? { ...plain.deviceKey, secret: secrets.device } : plain.deviceKey;
  if (plain.push) out.push = secrets.vapid ? { ...plain.push, vapidPrivate: secrets.vapid } : plain.push;
  return out;
}
