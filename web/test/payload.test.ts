import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fromHex, hex } from '../src/bytes';
import { checkFresh, decodePayload, payloadFromUrl, PayloadError, type PairingPayload } from '../src/payload';
import { pairingId } from '../src/sas';

const vectors = JSON.parse(
  readFileSync(new URL('../../pairing/vectors/payload.json', import.meta.url), 'utf8'),
);

function fields(p: PairingPayload) {
  return {
    host_id: hex(p.hostId),
    host_noise_key: hex(p.hostNoiseKey),
    secret: hex(p.secret),
    expires_at: p.expiresAt,
    relay_urls: p.relayUrls,
    direct_addrs: p.directAddrs,
    host_name: p.hostName,
    relay_cert_sha256: p.relayCertSha256 ? hex(p.relayCertSha256) : null,
    relay_token: p.relayToken,
  };
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof PayloadError) return e.kind;
    throw e;
  }
  return 'no error';
}

describe('pairing payload vectors (pairing/vectors/payload.json)', () => {
  for (const v of vectors.valid) {
    it(`valid: ${v.name}`, () => {
      expect(fields(decodePayload(fromHex(v.encoded)))).toEqual(v.fields);
      const fromLink = payloadFromUrl(v.url);
      expect(fields(fromLink)).toEqual(v.fields);
      expect(hex(pairingId(fromLink.secret))).toBe(v.pairing_id);
      expect(fields(payloadFromUrl(v.fragment))).toEqual(v.fields);
    });
  }
  for (const v of vectors.decode_only) {
    it(`decode only: ${v.name}`, () => {
      expect(fields(decodePayload(fromHex(v.encoded)))).toEqual(v.fields);
    });
  }
  for (const v of vectors.invalid) {
    it(`invalid: ${v.name}`, () => {
      expect(errorOf(() => decodePayload(fromHex(v.encoded)))).toBe(v.error);
    });
  }
  for (const v of vectors.invalid_links) {
    it(`invalid link: ${v.name}`, () => {
      expect(errorOf(() => payloadFromUrl(v.link))).toBe(v.error);
    });
  }
  it('expiry is checked against the clock', () => {
    const p = payloadFromUrl(vectors.valid[0].url);
    expect(() => checkFresh(p, p.expiresAt - 1)).not.toThrow();
    expect(errorOf(() => checkFresh(p, p.expiresAt))).toBe('Expired');
  });
});
