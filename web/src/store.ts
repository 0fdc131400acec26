// Persistent state in IndexedDB: the device key, paired hosts, settings.
// The device key is a WebCrypto X25519 CryptoKey (non-extractable) where the browser has it in
// this context; otherwise (plain-http LAN pages have no crypto.subtle) a @noble secret.
//
// With the app lock on (lock.ts), the secrets (each host's psk, the device key where it is bytes,
// the push VAPID key) are not in these records but sealed in the `lock` record (lockbox.ts), and
// in memory only while unlocked.
import { x25519 } from '@noble/curves/ed25519.js';
import { type StaticKey, NoiseError } from './noise';
import * as lockbox from './lockbox';
import { serializer } from './serial';

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

export const put = (key: string, value: unknown) => putAll([[key, value]]);

/** Writes (`undefined`: deletes) several records in one transaction: all or none. */
export async function putAll(entries: [string, unknown][]): Promise<void> {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(STORE, 'readwrite');
    for (const [key, value] of entries) {
      if (value === undefined) tx.objectStore(STORE).delete(key);
      else tx.objectStore(STORE).put(value, key);
    }
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('storage transaction aborted'));
  });
}

// ---------------------------------------------------------------------------------------------
// The lock

/** Asked for a secret while the app is locked. */
export class LockedError extends Error {
  constructor() {
    super('The app is locked.');
  }
}

/** The lock record (undefined: not read yet), and while unlocked its key and secrets. */
let lockRec: lockbox.LockRecord | null | undefined;
let opened: { key: CryptoKey; secrets: lockbox.Secrets } | null = null;

/**
 * Every change to the records that hold secrets or the lock runs alone, in order: a write that
 * read the lock (or the secrets) must not interleave with one that changes them.
 */
const serial = serializer();

// The app's other tabs (same origin, same storage) hold their own copy of the lock state: they
// are told when the lock is turned on, removed or erased, or "Lock now" was used.
const channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('peer-lock');
export type LockNews = 'changed' | 'locked';
function announce(news: LockNews) {
  channel?.postMessage(news);
}
export function onOtherTabs(f: (news: LockNews) => void) {
  if (channel) channel.onmessage = (e: MessageEvent) => f(e.data === 'locked' ? 'locked' : 'changed');
}

const damaged = () =>
  new lockbox.LockError('format', 'The app lock’s record is damaged, so the keys stay locked. Erase this app’s keys and pair again.');

/** The lock record; null without a lock; `LockError('format')` when it is there but unreadable. */
export async function lockRecord(): Promise<lockbox.LockRecord | null> {
  if (lockRec === undefined) {
    const r = await get<unknown>('lock');
    // Anything stored under `lock` means locked: a damaged record never reads as "no lock".
    if (r !== undefined && !lockbox.isLockRecord(r)) throw damaged();
    lockRec = r === undefined ? null : (r as lockbox.LockRecord);
  }
  return lockRec;
}

/** Whether the secrets are sealed and not open in memory (a damaged lock record: locked). */
export async function isLocked(): Promise<boolean> {
  try {
    return (await lockRecord()) !== null && opened === null;
  } catch (e) {
    if (e instanceof lockbox.LockError) return true;
    throw e;
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Before a write (under `serial`): the lock record as stored now, which another tab may have
 * changed. Resealed there: the secrets in memory follow (same key); locked or replaced there:
 * they are dropped, so this tab can write no psk in the clear over sealed records.
 */
async function reread(): Promise<void> {
  const r = await get<unknown>('lock');
  if (r !== undefined && !lockbox.isLockRecord(r)) {
    lockRec = undefined;
    opened = null;
    throw damaged();
  }
  const rec = r === undefined ? null : (r as lockbox.LockRecord);
  if (opened && rec && !(lockRec && sameBytes(rec.nonce, lockRec.nonce))) {
    try {
      opened = { key: opened.key, secrets: await lockbox.openWithKey(rec, opened.key) };
    } catch {
      opened = null;
    }
  }
  if (!rec) opened = null;
  lockRec = rec;
}

/** The secrets while unlocked; null without a lock. */
async function secrets(): Promise<lockbox.Secrets | null> {
  if ((await lockRecord()) === null) return null;
  if (!opened) throw new LockedError();
  return opened.secrets;
}

/** The records that hold secrets, as stored. */
async function stored() {
  return { deviceKey: await get<StoredKey>('deviceKey'), hosts: (await get<HostRecord[]>('hosts')) ?? [], push: await get<PushRecord>('push') };
}

/** The records that hold secrets and the lock record (undefined: deleted), in one transaction. */
async function writeStored(
  s: { deviceKey?: StoredKey; hosts: HostRecord[] | undefined; push?: PushRecord },
  lock: lockbox.LockRecord | undefined,
): Promise<void> {
  await putAll([
    ['deviceKey', s.deviceKey],
    ['hosts', s.hosts],
    ['push', s.push],
    ['lock', lock],
  ]);
}

/** `next` secrets sealed into the lock record (while unlocked), as an entry for `putAll`. */
async function resealed(next: lockbox.Secrets): Promise<[string, unknown]> {
  const rec = await lockRecord();
  if (!rec || !opened) throw new LockedError();
  const record = await lockbox.seal(opened.key, rec, next);
  return ['lock', record];
}

/**
 * After `putAll` wrote `resealed`: the new record is the current one (also when the app locked
 * meanwhile: the next unlock opens what is stored), and while open its secrets.
 */
function adopt(entry: [string, unknown], next: lockbox.Secrets) {
  lockRec = entry[1] as lockbox.LockRecord;
  if (opened) opened = { key: opened.key, secrets: next };
}

/** Seals every secret under a new lock (the passkey's PRF output `prf`): the migration to locked. */
export async function lockWith(credentialId: Uint8Array, prfSalt: Uint8Array, prf: Uint8Array, idleMinutes: number): Promise<void> {
  await serial(async () => {
    await reread();
    if (lockRec !== null) throw new Error('The app is already locked.');
    const now = await stored();
    // A key WebCrypto holds cannot be read to be sealed; before any pairing, a new one that can.
    if (now.hosts.length === 0 && now.deviceKey?.kind !== 'noble') now.deviceKey = nobleKey();
    const { plain, secrets: s } = lockbox.split(now);
    const { record, key } = await lockbox.newLock(credentialId, prfSalt, prf, s, idleMinutes);
    await writeStored(plain, record);
    lockRec = record;
    opened = { key, secrets: s };
  });
  announce('changed');
}

/** Opens the lock with the passkey's PRF output; `lockbox.LockError` when it does not fit. */
export async function unlockWith(prf: Uint8Array): Promise<void> {
  await serial(async () => {
    lockRec = undefined;
    const rec = await lockRecord();
    if (!rec) return;
    opened = await lockbox.open(rec, prf);
  });
}

/** Drops the open secrets and key from memory (the records stay sealed). */
export function relock() {
  opened?.secrets.device?.fill(0);
  opened?.secrets.vapid?.fill(0);
  opened = null;
}

/** Puts the secrets back in the records and deletes the lock (the passkey must open it first). */
export async function removeLock(prf: Uint8Array): Promise<void> {
  await serial(async () => {
    await reread();
    const rec = lockRec;
    if (!rec) return;
    const { secrets: s } = await lockbox.open(rec, prf);
    await writeStored(lockbox.merge(await stored(), s), undefined);
    lockRec = null;
    opened = null;
  });
  announce('changed');
}

/** Changes the idle time after which the app locks again. */
export async function setIdleMinutes(idleMinutes: number): Promise<void> {
  await serial(async () => {
    await reread();
    const rec = lockRec;
    if (!rec) return;
    const next = { ...rec, idleMinutes };
    await put('lock', next);
    lockRec = next;
  });
}

/** Deletes every key and pairing of this app (a lock whose passkey is gone). */
export async function eraseKeys(): Promise<void> {
  await serial(async () => {
    await writeStored({ hosts: undefined }, undefined);
    lockRec = null;
    opened = null;
  });
  announce('changed');
}

/** Tells the app's other tabs to lock too ("Lock now"). */
export const announceLocked = () => announce('locked');

// ---------------------------------------------------------------------------------------------
// Hosts

export async function hosts(): Promise<HostRecord[]> {
  const list = (await get<HostRecord[]>('hosts')) ?? [];
  const s = await secrets();
  return s ? list.map((h) => ({ ...h, psk: s.psks[h.id] ?? '' })) : list;
}

/** Stores the list of hosts, their psks sealed when locked (under `serial`, after `reread`). */
async function writeHosts(list: HostRecord[]): Promise<void> {
  const s = await secrets();
  if (!s) return put('hosts', list);
  const psks = Object.fromEntries(list.map((h) => [h.id, h.psk]));
  const same = Object.keys(psks).length === Object.keys(s.psks).length && list.every((h) => s.psks[h.id] === h.psk);
  const plain = list.map((h) => ({ ...h, psk: '' }));
  if (same) return put('hosts', plain);
  const next = { ...s, psks };
  const lock = await resealed(next);
  await putAll([['hosts', plain], lock]);
  adopt(lock, next);
}

export async function saveHost(h: HostRecord): Promise<void> {
  await serial(async () => {
    await reread();
    const list = (await hosts()).filter((x) => x.id !== h.id);
    list.push(h);
    await writeHosts(list);
  });
}

/** Replaces a stored host's record by `update(record)`, unless it was forgotten meanwhile. */
export async function updateHost(id: string, update: (h: HostRecord) => HostRecord | null): Promise<HostRecord | null> {
  return serial(async () => {
    await reread();
    const list = await hosts();
    const i = list.findIndex((x) => x.id === id);
    if (i < 0) return null;
    const next = update(list[i]);
    if (!next) return null;
    list[i] = next;
    await writeHosts(list);
    return next;
  });
}

export async function forgetHost(id: string): Promise<void> {
  await serial(async () => {
    await reread();
    await writeHosts((await hosts()).filter((x) => x.id !== id));
  });
}

// ---------------------------------------------------------------------------------------------
// Push settings (push.ts): the VAPID private key is a secret.

interface PushRecord {
  vapidPrivate?: Uint8Array;
}

export async function getPush<T extends PushRecord>(): Promise<T | undefined> {
  const p = await get<T>('push');
  const s = await secrets();
  return p && s?.vapid ? { ...p, vapidPrivate: s.vapid } : p;
}

export async function putPush<T extends PushRecord>(p: T): Promise<void> {
  await serial(async () => {
    await reread();
    const s = await secrets();
    if (!s) return put('push', p);
    const plain = { ...p };
    delete plain.vapidPrivate;
    const next = { ...s, vapid: p.vapidPrivate };
    const lock = await resealed(next);
    await putAll([['push', plain], lock]);
    adopt(lock, next);
  });
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

function nobleKey(): StoredKey {
  const secret = x25519.utils.randomSecretKey();
  return { kind: 'noble', secret, publicKey: x25519.getPublicKey(secret) };
}

/** The device key made and stored (under `serial`), unless one was meanwhile. */
async function makeDeviceKey(): Promise<StoredKey> {
  await reread();
  const had = await get<StoredKey>('deviceKey');
  if (had) return had;
  const s = await secrets();
  const k = s ? nobleKey() : ((await webCryptoKey()) ?? nobleKey());
  if (s) {
    const next = { ...s, device: k.secret };
    const lock = await resealed(next);
    await putAll([['deviceKey', { kind: k.kind, publicKey: k.publicKey }], lock]);
    adopt(lock, next);
  } else {
    await put('deviceKey', k);
  }
  // Ask the browser not to evict our storage (Safari deletes it after 7 idle days otherwise).
  void navigator.storage?.persist?.().catch(() => undefined);
  return k;
}

/**
 * The device's long-term key, created on first use; `kind` says where the secret lives
 * ('sealed': bytes under the app lock).
 */
export async function deviceKey(): Promise<{ key: StaticKey; kind: 'webcrypto' | 'noble' | 'sealed' }> {
  const k = (await get<StoredKey>('deviceKey')) ?? (await serial(makeDeviceKey));
  const s = await secrets();
  if (k.kind === 'noble' && s?.device) return { key: toStatic({ ...k, secret: s.device }), kind: 'sealed' };
  return { key: toStatic(k), kind: k.kind };
}
