// The QR pairing payload v1 (pairing/src/payload.rs): decoder for the URL fragment.
// Error names are those of the Rust `PayloadError` variants, so the shared vectors check both.
import { fromBase64Url, fromUtf8Strict } from './bytes';

export const MAX_PAYLOAD_LEN = 1024;
export const MAX_FRAGMENT_LEN = Math.ceil((MAX_PAYLOAD_LEN * 4) / 3);
const MAX_RELAY_URLS = 4;
const MAX_DIRECT_ADDRS = 8;

export interface PairingPayload {
  hostId: Uint8Array;
  hostNoiseKey: Uint8Array;
  secret: Uint8Array;
  expiresAt: number;
  relayUrls: string[];
  directAddrs: string[];
  hostName: string | null;
  relayCertSha256: Uint8Array | null;
  /** Token for a self-hosted relay in token mode (tag 0x81). The browser never speaks the relay
   * protocol, so the app does not use it; it is decoded to hold both decoders to the vectors. */
  relayToken: string | null;
}

export type PayloadErrorKind =
  | 'Empty'
  | 'TooLong'
  | 'UnsupportedVersion'
  | 'Truncated'
  | 'Base64'
  | 'BadUtf8'
  | 'InvalidAddr'
  | 'InvalidRelayUrl'
  | 'InvalidHostName'
  | 'InvalidRelayCertHash'
  | 'InvalidRelayToken'
  | 'DuplicateField'
  | 'TooMany'
  | 'UnknownCriticalField'
  | 'NoRoute'
  | 'Expired'
  | 'MissingFragment';

const MESSAGES: Record<PayloadErrorKind, string> = {
  Empty: 'The pairing code is empty: scan the QR code or paste the whole pairing link.',
  TooLong: 'This is not a peer pairing code (it is too long).',
  UnsupportedVersion: 'This pairing code is for a newer version of peer: reload the app.',
  Truncated: 'The pairing code is incomplete: scan again or copy the whole link.',
  Base64: 'The pairing code is damaged: scan again or copy the whole link.',
  BadUtf8: 'The pairing code is damaged: scan the QR code again.',
  InvalidAddr: 'The pairing code is damaged: scan the QR code again.',
  InvalidRelayUrl: 'The pairing code contains an invalid relay URL.',
  InvalidHostName: 'The pairing code contains an invalid host name.',
  InvalidRelayCertHash: 'The pairing code is damaged: scan the QR code again.',
  InvalidRelayToken: 'The pairing code is damaged: scan the QR code again.',
  DuplicateField: 'The pairing code is damaged: scan the QR code again.',
  TooMany: 'The pairing code has too many entries.',
  UnknownCriticalField: 'This pairing code needs a newer version of the app: reload it.',
  NoRoute: 'The pairing code contains no way to reach the host.',
  Expired: 'This pairing code has expired: create a new one on the host (peer pair).',
  MissingFragment: "The pairing link has no code after '#': copy the whole link.",
};

export class PayloadError extends Error {
  constructor(readonly kind: PayloadErrorKind) {
    super(MESSAGES[kind]);
  }
}

const fail = (kind: PayloadErrorKind): never => {
  throw new PayloadError(kind);
};

function checkRelayUrl(url: string) {
  const rest = url.startsWith('https://') ? url.slice(8) : url.startsWith('http://') ? url.slice(7) : null;
  if (rest === null || rest.length === 0 || utf8Len(url) > 255 || /[\s\p{Cc}]/u.test(url)) {
    fail('InvalidRelayUrl');
  }
}

function checkHostName(name: string) {
  if (name.length === 0 || utf8Len(name) > 64 || /\p{Cc}/u.test(name)) fail('InvalidHostName');
}

function utf8Len(s: string): number {
  return new TextEncoder().encode(s).length;
}

function readAddr(v: Uint8Array): string {
  const port = (v[v.length - 2] << 8) | v[v.length - 1];
  if (v.length === 6) return `${v[0]}.${v[1]}.${v[2]}.${v[3]}:${port}`;
  if (v.length === 18) {
    return `[${ipv6Text(v.slice(0, 16))}]:${port}`;
  }
  return fail('InvalidAddr');
}

/** IPv6 text as Rust's `Ipv6Addr` displays it (RFC 5952, IPv4-mapped as `::ffff:a.b.c.d`). */
function ipv6Text(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const h = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return h(g);
  return `${h(g.slice(0, best))}::${h(g.slice(best + bestLen))}`;
}

/** Decodes and validates the binary payload. Expiry is not checked (see `checkFresh`). */
export function decodePayload(bytes: Uint8Array): PairingPayload {
  if (bytes.length > MAX_PAYLOAD_LEN) fail('TooLong');
  if (bytes.length === 0) fail('Empty');
  if (bytes[0] !== 1) fail('UnsupportedVersion');
  if (bytes.length < 105) fail('Truncated');
  const p: PairingPayload = {
    hostId: bytes.slice(1, 33),
    hostNoiseKey: bytes.slice(33, 65),
    secret: bytes.slice(65, 97),
    expiresAt: Number(new DataView(bytes.buffer, bytes.byteOffset + 97, 8).getBigUint64(0, false)),
    relayUrls: [],
    directAddrs: [],
    hostName: null,
    relayCertSha256: null,
    relayToken: null,
  };
  let at = 105;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) fail('Truncated');
    const tag = bytes[at];
    const len = bytes[at + 1];
    at += 2;
    if (at + len > bytes.length) fail('Truncated');
    const value = bytes.slice(at, at + len);
    at += len;
    const text = () => {
      try {
        return fromUtf8Strict.decode(value);
      } catch {
        return fail('BadUtf8');
      }
    };
    switch (tag) {
      case 1: {
        if (p.relayUrls.length >= MAX_RELAY_URLS) fail('TooMany');
        const url = text();
        checkRelayUrl(url);
        p.relayUrls.push(url);
        break;
      }
      case 2:
        if (p.directAddrs.length >= MAX_DIRECT_ADDRS) fail('TooMany');
        p.directAddrs.push(readAddr(value));
        break;
      case 3: {
        if (p.hostName !== null) fail('DuplicateField');
        const name = text();
        checkHostName(name);
        p.hostName = name;
        break;
      }
      case 4:
        if (p.relayCertSha256 !== null) fail('DuplicateField');
        if (value.length !== 32) fail('InvalidRelayCertHash');
        p.relayCertSha256 = value;
        break;
      case 0x81:
        if (p.relayToken !== null) fail('DuplicateField');
        // 16–255 bytes of printable ASCII without spaces (0x21–0x7e).
        if (value.length < 16 || !value.every((b) => b >= 0x21 && b <= 0x7e)) fail('InvalidRelayToken');
        p.relayToken = String.fromCharCode(...value);
        break;
      default:
        if (tag < 0x80) fail('UnknownCriticalField');
    }
  }
  if (p.relayUrls.length === 0 && p.directAddrs.length === 0) fail('NoRoute');
  return p;
}

/** Decodes the unpadded base64url text form. */
export function payloadFromFragment(fragment: string): PairingPayload {
  const text = fragment.trim();
  if (text.length > MAX_FRAGMENT_LEN) fail('TooLong');
  if (text.length === 0) fail('Empty');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(text);
  } catch {
    return fail('Base64');
  }
  try {
    return decodePayload(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** A pairing link (anything before `#` is ignored) or a bare fragment. */
export function payloadFromUrl(link: string): PairingPayload {
  const text = link.trim();
  if (text.length === 0) fail('Empty');
  const hash = text.indexOf('#');
  if (hash >= 0) {
    const fragment = text.slice(hash + 1);
    if (fragment.trim().length === 0) fail('MissingFragment');
    return payloadFromFragment(fragment);
  }
  if (text.includes('://')) fail('MissingFragment');
  return payloadFromFragment(text);
}

/** Valid while `nowUnix < expiresAt`. */
export function checkFresh(p: PairingPayload, nowUnix: number) {
  if (nowUnix >= p.expiresAt) fail('Expired');
}
