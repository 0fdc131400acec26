// A Web Push service for the end-to-end test, on Node's own crypto (OpenSSL): a second, independent
// implementation of RFC 8291 (decryption) and RFC 8292 (VAPID checks) beside the host's Rust one.
// It checks each request as a real push service does, decrypts it with the test subscription's
// private key, and keeps the plaintext for the test to hand to the service worker (CDP
// ServiceWorker.deliverPushMessage), as a real push service hands it to the browser.
import { createServer } from 'node:http';
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto';

const hkdf = (ikm, salt, info, len) => Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(info), len));

/** RFC 8291 / RFC 8188 aes128gcm, one record: what the browser does with a push body. */
export function decrypt(body, uaPrivate, auth) {
  if (body.length < 21 + 65 + 17 || body[20] !== 65) throw new Error('not an aes128gcm body with a 65-byte key id');
  const salt = body.subarray(0, 16);
  const asPub = body.subarray(21, 86);
  const ct = body.subarray(86);
  if (ct.length > body.readUInt32BE(16)) throw new Error('more than one record');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(uaPrivate);
  const info = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), asPub]);
  const ikm = hkdf(ecdh.computeSecret(asPub), auth, info, 32);
  const d = createDecipheriv('aes-128-gcm', hkdf(ikm, salt, 'Content-Encoding: aes128gcm\0', 16), hkdf(ikm, salt, 'Content-Encoding: nonce\0', 12));
  d.setAuthTag(ct.subarray(ct.length - 16));
  const pt = Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
  let i = pt.length - 1;
  while (i >= 0 && pt[i] === 0) i--;
  if (pt[i] !== 2) throw new Error('bad padding delimiter');
  return pt.subarray(0, i);
}

/** RFC 8291 §5's example, decrypted with the code above: the check of the checker. */
export function selfCheck() {
  const b = (s) => Buffer.from(s, 'base64url');
  const body = b('DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN');
  const got = decrypt(body, b('q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94'), b('BTBZMqHH6r4Tts7J_aSIgg')).toString();
  if (got !== 'When I grow up, I want to be a watermelon') throw new Error(`RFC 8291 §5 decrypts to ${JSON.stringify(got)}`);
}

/** `Authorization: vapid t=…, k=…` as a push service checks it; returns the claims. */
export function checkVapid(header, origin, key, now = Math.floor(Date.now() / 1000)) {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header ?? '');
  if (!m) throw new Error('not a vapid Authorization header');
  const [h, c, s] = m[1].split('.');
  const k = Buffer.from(m[2], 'base64url');
  if (key && !k.equals(key)) throw new Error('k is not the subscription’s applicationServerKey');
  const pub = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: k.subarray(1, 33).toString('base64url'), y: k.subarray(33).toString('base64url') }, format: 'jwk' });
  if (JSON.parse(Buffer.from(h, 'base64url')).alg !== 'ES256') throw new Error('alg is not ES256');
  if (!verify('sha256', Buffer.from(`${h}.${c}`), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))) throw new Error('bad ES256 signature');
  const claims = JSON.parse(Buffer.from(c, 'base64url'));
  if (claims.aud !== origin) throw new Error(`aud ${claims.aud} is not ${origin}`);
  if (!(claims.exp > now && claims.exp <= now + 86400)) throw new Error(`exp ${claims.exp}`);
  if (!/^(mailto:|https:)/.test(claims.sub ?? '')) throw new Error(`sub ${claims.sub}`);
  return claims;
}

/** Starts the service on 127.0.0.1 with one subscription, `/push/1`. */
export async function startPushService() {
  selfCheck();
  const ua = createECDH('prime256v1');
  ua.generateKeys();
  const auth = randomBytes(16);
  const state = { key: null, received: [], rejected: [], waiters: [] };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        const h = req.headers;
        if (req.method !== 'POST' || req.url !== '/push/1') throw new Error(`${req.method} ${req.url}`);
        if (h['content-encoding'] !== 'aes128gcm') throw new Error('Content-Encoding');
        if (!/^\d+$/.test(h.ttl ?? '')) throw new Error('TTL');
        if (!['very-low', 'low', 'normal', 'high'].includes(h.urgency ?? 'normal')) throw new Error('Urgency');
        if (h.topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(h.topic)) throw new Error('Topic');
        const body = Buffer.concat(chunks);
        if (body.length > 4096) throw new Error('larger than 4096 bytes');
        const claims = checkVapid(h.authorization, origin, state.key);
        const data = decrypt(body, ua.getPrivateKey(), auth).toString();
        state.received.push({ at: Date.now(), claims, urgency: h.urgency, ttl: h.ttl, topic: h.topic, size: body.length, data, json: JSON.parse(data) });
        res.writeHead(201, { location: '/m/1' }).end();
        for (const w of state.waiters.splice(0)) w();
      } catch (e) {
        state.rejected.push(String(e.message ?? e));
        res.writeHead(400).end(String(e.message ?? e));
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    endpoint: `${origin}/push/1`,
    p256dh: ua.getPublicKey().toString('base64url'),
    auth: auth.toString('base64url'),
    state,
    /** Waits for a push whose JSON satisfies `pred`. */
    async waitFor(pred, ms = 20000) {
      const t0 = Date.now();
      for (;;) {
        const hit = state.received.find((r) => pred(r.json));
        if (hit) return hit;
        if (Date.now() - t0 > ms) throw new Error(`no such push in ${ms} ms; got ${JSON.stringify(state.received.map((r) => r.json))}, rejected ${JSON.stringify(state.rejected)}`);
        await new Promise((r) => {
          state.waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    close: () => server.close(),
  };
}

/**
 * The page side: `PushManager.subscribe` needs the browser's real push service (none offline),
 * so it hands out this service's subscription instead, and keeps the applicationServerKey the
 * app asked for (localStorage `peer-test-push-key`). Everything else in the app runs unchanged.
 */
export function stubScript({ endpoint, p256dh, auth }) {
  const b = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)).buffer;
  const toB64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const make = (key) => ({
    endpoint,
    expirationTime: null,
    options: { applicationServerKey: b(key), userVisibleOnly: true },
    getKey: (n) => b(n === 'p256dh' ? p256dh : auth),
    toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
    unsubscribe: async () => {
      localStorage.removeItem('peer-test-push-key');
      return true;
    },
  });
  PushManager.prototype.subscribe = async function (opts) {
    const key = toB64(opts.applicationServerKey.buffer ?? opts.applicationServerKey);
    localStorage.setItem('peer-test-push-key', key);
    return make(key);
  };
  PushManager.prototype.getSubscription = async function () {
    const key = localStorage.getItem('peer-test-push-key');
    return key ? make(key) : null;
  };
}
