// A passkey for this origin whose PRF output (WebAuthn `prf` extension) opens the app lock.
// No server checks the assertions: the passkey is used only for its PRF, which the
// authenticator computes after Face ID, a fingerprint or the screen lock (user verification).
import { toBase64Url } from './bytes';

/** Why something about the passkey failed, said for a person. */
export class PasskeyError extends Error {
  constructor(
    readonly kind: 'no-prf' | 'cancelled' | 'refused' | 'other',
    message: string,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 120000;
const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));

/** Whether this page can have a passkey lock at all (the authenticator's PRF is known only on creation). */
export async function support(): Promise<{ ok: true } | { ok: false; why: string }> {
  if (!window.isSecureContext) {
    return { ok: false, why: 'The lock needs the app over https (this page is plain http, where browsers offer no passkeys).' };
  }
  if (!('PublicKeyCredential' in window) || !navigator.credentials) {
    return { ok: false, why: 'This browser has no passkeys (WebAuthn), which the lock needs.' };
  }
  const host = location.hostname;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(':') || host.startsWith('[')) {
    return { ok: false, why: `Passkeys need the app at a domain name; this page is at an IP address (${host}).` };
  }
  const caps = await PublicKeyCredential.getClientCapabilities?.().catch(() => undefined);
  if (caps && caps['extension:prf'] === false) {
    return { ok: false, why: 'This browser’s passkeys have no PRF extension, which the lock needs.' };
  }
  return { ok: true };
}

function translate(e: unknown): PasskeyError {
  if (e instanceof PasskeyError) return e;
  const name = e instanceof DOMException ? e.name : '';
  if (name === 'NotAllowedError' || name === 'AbortError') {
    return new PasskeyError('cancelled', 'The passkey was not used: the prompt was cancelled, timed out or did not recognise you, or this device has no passkey for this app.');
  }
  if (name === 'SecurityError') return new PasskeyError('refused', `The browser refused passkeys for ${location.origin}.`);
  if (name === 'InvalidStateError') return new PasskeyError('refused', 'The authenticator already has a passkey for this app that it will not replace.');
  return new PasskeyError('other', `The passkey failed: ${e instanceof Error ? e.message : String(e)}`);
}

interface PrfOutputs {
  enabled?: boolean;
  results?: { first?: ArrayBuffer | ArrayBufferView };
}

function prfOf(cred: PublicKeyCredential): PrfOutputs | undefined {
  return (cred.getClientExtensionResults() as { prf?: PrfOutputs }).prf;
}

function bytes(b: ArrayBuffer | ArrayBufferView): Uint8Array {
  return b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * A new passkey for this origin, asked for its PRF of `prfSalt`. The output comes back when the
 * authenticator gives it at creation (else `evaluate` asks for it); an authenticator without PRF
 * is `PasskeyError('no-prf')`, and its useless passkey is reported unknown so it can go.
 */
export async function create(prfSalt: Uint8Array): Promise<{ credentialId: Uint8Array; prf: Uint8Array | null }> {
  let cred: PublicKeyCredential;
  try {
    cred = (await navigator.credentials.create({
      publicKey: {
        rp: { name: 'peer' },
        user: { id: random(16) as BufferSource, name: 'peer app lock', displayName: 'peer app lock' },
        challenge: random(32) as BufferSource,
        pubKeyCredParams: [
          { type: 'public-key', alg: -7 },
          { type: 'public-key', alg: -257 },
        ],
        authenticatorSelection: { userVerification: 'required', residentKey: 'preferred' },
        timeout: TIMEOUT_MS,
        extensions: { prf: { eval: { first: prfSalt as BufferSource } } } as AuthenticationExtensionsClientInputs,
      },
    })) as PublicKeyCredential;
  } catch (e) {
    throw translate(e);
  }
  const credentialId = new Uint8Array(cred.rawId);
  const prf = prfOf(cred);
  if (!prf?.enabled) {
    const signal = (PublicKeyCredential as unknown as { signalUnknownCredential?: (o: object) => Promise<void> }).signalUnknownCredential;
    await signal?.call(PublicKeyCredential, { rpId: location.hostname, credentialId: toBase64Url(credentialId) }).catch(() => undefined);
    throw new PasskeyError(
      'no-prf',
      'This authenticator cannot derive keys (no passkey PRF), so the lock is unavailable here: the keys stay stored as before.',
    );
  }
  const first = prf.results?.first;
  return { credentialId, prf: first ? bytes(first).slice() : null };
}

/** The passkey's PRF of `prfSalt`, after the person verified themselves to the authenticator. */
export async function evaluate(credentialId: Uint8Array, prfSalt: Uint8Array): Promise<Uint8Array> {
  let cred: PublicKeyCredential;
  try {
    cred = (await navigator.credentials.get({
      publicKey: {
        challenge: random(32) as BufferSource,
        allowCredentials: [{ type: 'public-key', id: credentialId as BufferSource }],
        userVerification: 'required',
        timeout: TIMEOUT_MS,
        extensions: { prf: { eval: { first: prfSalt as BufferSource } } } as AuthenticationExtensionsClientInputs,
      },
    })) as PublicKeyCredential;
  } catch (e) {
    throw translate(e);
  }
  const first = prfOf(cred)?.results?.first;
  if (!first) throw new PasskeyError('no-prf', 'The passkey answered without a PRF output, so it cannot open the lock.');
  return bytes(first).slice();
}
