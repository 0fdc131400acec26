// Short authentication code and pairing id (pairing/src/sas.rs, pairing/src/keys.rs).
import { blake2s } from '@noble/hashes/blake2.js';
import { concat, utf8 } from './bytes';

/** `BLAKE2s-256("peer/sas/1" || handshake hash)`, first 4 bytes BE mod 10^6, as "123 456". */
export function shortCode(handshakeHash: Uint8Array): string {
  const d = blake2s(concat(utf8.encode('peer/sas/1'), handshakeHash));
  const n = new DataView(d.buffer, d.byteOffset).getUint32(0, false) % 1_000_000;
  const s = n.toString().padStart(6, '0');
  return `${s.slice(0, 3)} ${s.slice(3)}`;
}

/** `BLAKE2s-256("peer/pairing-id/1" || secret)[0..16]`. */
export function pairingId(secret: Uint8Array): Uint8Array {
  return blake2s(concat(utf8.encode('peer/pairing-id/1'), secret)).slice(0, 16);
}
