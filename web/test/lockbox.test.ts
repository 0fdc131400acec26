import { describe, expect, it } from 'vitest';
import { hex } from '../src/bytes';
import { LockError, isLockRecord, merge, newLock, open, openWithKey, seal, split, type Secrets } from '../src/lockbox';

const prf = new Uint8Array(32).fill(7);
const credentialId = new Uint8Array([1, 2, 3, 4, 5]);
const prfSalt = new Uint8Array(32).fill(9);
const secrets: Secrets = {
  device: new Uint8Array(32).fill(0xa1),
  psks: { aa: 'b2'.repeat(32), bb: 'c3'.repeat(32) },
  vapid: new Uint8Array(32).fill(0xd4),
};

/** Whether `needle`'s bytes occur in `hay`, raw or as hex text. */
function holds(hay: Uint8Array, needle: Uint8Array): boolean {
  const text = new TextDecoder('latin1').decode(hay);
  if (text.includes(hex(needle))) return true;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

describe('lockbox', () => {
  it('seals and opens with the same PRF output', async () => {
    const { record } = await newLock(credentialId, prfSalt, prf, secrets, 5);
    expect(isLockRecord(record)).toBe(true);
    expect(record.idleMinutes).toBe(5);
    expect(record.nonce.length).toBe(12);
    expect(record.hkdfSalt.length).toBe(32);
    const { secrets: back } = await open(record, prf);
    expect(back).toEqual(secrets);
  });

  it('a record resealed elsewhere (another tab) opens with the key already held; another lock’s key does not open it', async () => {
    const { record, key } = await newLock(credentialId, prfSalt, prf, secrets);
    const next: Secrets = { ...secrets, psks: { ...secrets.psks, cc: 'e5'.repeat(32) } };
    const resealed = await seal(key, record, next);
    expect(await openWithKey(resealed, key)).toEqual(next);
    const other = await newLock(credentialId, prfSalt, prf, secrets);
    await expect(openWithKey(resealed, other.key)).rejects.toMatchObject({ kind: 'decrypt' });
  });

  it('keeps no secret, PRF output or key in the record', async () => {
    const { record } = await newLock(credentialId, prfSalt, prf, secrets);
    const all = [record.credentialId, record.prfSalt, record.hkdfSalt, record.nonce, record.sealed];
    const flat = new Uint8Array(all.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of all) {
      flat.set(a, at);
      at += a.length;
    }
    for (const s of [secrets.device!, secrets.vapid!, new Uint8Array(32).fill(0xb2), prf]) expect(holds(flat, s)).toBe(false);
    expect(JSON.stringify(Object.keys(record).sort())).toBe(JSON.stringify(['credentialId', 'hkdfSalt', 'idleMinutes', 'nonce', 'prfSalt', 'sealed', 'v']));
  });

  it('refuses another PRF output with a decrypt error', async () => {
    const { record } = await newLock(credentialId, prfSalt, prf, secrets);
    const err = await open(record, new Uint8Array(32).fill(8)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockError);
    expect((err as LockError).kind).toBe('decrypt');
  });

  it('refuses a changed record: sealed bytes, nonce or header', async () => {
    const { record } = await newLock(credentialId, prfSalt, prf, secrets);
    const flip = (a: Uint8Array) => {
      const b = a.slice();
      b[0] ^= 1;
      return b;
    };
    for (const bad of [
      { ...record, sealed: flip(record.sealed) },
      { ...record, nonce: flip(record.nonce) },
      { ...record, credentialId: flip(record.credentialId) },
      { ...record, prfSalt: flip(record.prfSalt) },
    ]) {
      await expect(open(bad, prf)).rejects.toMatchObject({ kind: 'decrypt' });
    }
    await expect(open({ ...record, v: 2 as 1 }, prf)).rejects.toMatchObject({ kind: 'format' });
  });

  it('fresh salts per lock, a fresh nonce per seal', async () => {
    const a = await newLock(credentialId, prfSalt, prf, secrets);
    const b = await newLock(credentialId, prfSalt, prf, secrets);
    expect(hex(a.record.hkdfSalt)).not.toBe(hex(b.record.hkdfSalt));
    const again = await seal(a.key, a.record, secrets);
    expect(hex(again.nonce)).not.toBe(hex(a.record.nonce));
    expect(hex(again.sealed)).not.toBe(hex(a.record.sealed));
    expect((await open(again, prf)).secrets).toEqual(secrets);
  });

  it('a stored value that is not a lock record is not taken for one', async () => {
    const { record } = await newLock(credentialId, prfSalt, prf, secrets);
    for (const bad of [null, undefined, 'lock', {}, { ...record, sealed: 'x' }, { ...record, idleMinutes: '5' }]) expect(isLockRecord(bad)).toBe(false);
  });

  it('the key it derives cannot be exported', async () => {
    const { key } = await newLock(credentialId, prfSalt, prf, secrets);
    expect(key.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('raw', key)).rejects.toThrow();
  });
});

describe('lock migration', () => {
  const stored = () => ({
    deviceKey: { kind: 'noble', publicKey: new Uint8Array(32).fill(1), secret: new Uint8Array(32).fill(2) },
    hosts: [
      { id: 'aa', psk: '11'.repeat(32), name: 'studio', bridges: ['ws://x'] },
      { id: 'bb', psk: '22'.repeat(32), name: 'laptop', bridges: [] },
    ],
    push: { enabled: true, kinds: ['approval'], vapidPrivate: new Uint8Array(32).fill(3), vapidPublic: new Uint8Array(65).fill(4) },
  });

  it('locking takes every secret out of the records, and nothing else', () => {
    const { plain, secrets: s } = split(stored());
    expect(plain.deviceKey).toEqual({ kind: 'noble', publicKey: new Uint8Array(32).fill(1) });
    expect(plain.hosts.map((h) => h.psk)).toEqual(['', '']);
    expect(plain.hosts.map((h) => h.name)).toEqual(['studio', 'laptop']);
    expect(plain.push).toEqual({ enabled: true, kinds: ['approval'], vapidPublic: new Uint8Array(65).fill(4) });
    expect(s.psks).toEqual({ aa: '11'.repeat(32), bb: '22'.repeat(32) });
    expect(s.device).toEqual(new Uint8Array(32).fill(2));
    expect(s.vapid).toEqual(new Uint8Array(32).fill(3));
    // The original records are left alone (the caller writes the plain ones in one transaction).
    expect(stored().hosts[0].psk).toBe('11'.repeat(32));
  });

  it('lock, seal, open, remove: every pairing comes back as it was', async () => {
    const before = stored();
    const { plain, secrets: s } = split(before);
    const { record } = await newLock(credentialId, prfSalt, prf, s);
    const { secrets: opened } = await open(record, prf);
    expect(merge(plain, opened)).toEqual(before);
  });

  it('a WebCrypto device key (not bytes) and no push settings pass through', () => {
    const key = { kind: 'webcrypto', publicKey: new Uint8Array(32).fill(5) };
    const before = { deviceKey: key, hosts: [{ id: 'aa', psk: '33'.repeat(32) }] };
    const { plain, secrets: s } = split(before);
    expect(plain.deviceKey).toBe(key);
    expect(plain.push).toBeUndefined();
    expect(s.device).toBeUndefined();
    expect(merge(plain, s)).toEqual(before);
  });

  it('nothing stored yet: an empty psk table', () => {
    const { plain, secrets: s } = split({ hosts: [] as { id: string; psk: string }[] });
    expect(plain).toEqual({ hosts: [] });
    expect(s).toEqual({ psks: {} });
  });
});
