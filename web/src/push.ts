// Notifications: this browser's Web Push subscription, registered with every paired host.
//
// One app origin has one service worker registration with one push subscription, bound to one
// VAPID public key (applicationServerKey), yet a phone may be paired with several hosts. So the
// VAPID key pair belongs to the app: made here once, and handed (private half included) to
// each host over the end-to-end channel with the subscription (`PushRegister`); every host
// signs its pushes with it. Forgetting a host makes a new key pair and subscription, so the
// forgotten host cannot send anything any more (docs/security.md §14).
import { equal, fromBase64Url } from './bytes';
import type { HostConn } from './conn';
import type { NoticeKind, PushStatus } from './gen/protocol';
import * as store from './store';

export const KIND_LABELS: Record<NoticeKind, string> = {
  approval: 'An agent needs approval',
  turn_end: 'An agent finished its turn',
  turn_failed: 'An agent’s turn went wrong',
  agent_failed: 'An agent stopped',
  session_ended: 'A terminal session ended',
  bell: 'A terminal rang its bell',
};

/** What a new subscription gets (bells are asked for per session). */
export const DEFAULT_KINDS: NoticeKind[] = ['approval', 'turn_end', 'turn_failed', 'agent_failed', 'session_ended'];

interface Saved {
  enabled: boolean;
  kinds: NoticeKind[];
  /** The app's VAPID key pair: P-256 scalar (32 bytes) and uncompressed point (65 bytes). */
  vapidPrivate?: Uint8Array;
  vapidPublic?: Uint8Array;
}

let cached: Saved | null = null;

export async function saved(): Promise<Saved> {
  cached ??= (await store.getPush<Saved>()) ?? { enabled: false, kinds: DEFAULT_KINDS };
  return cached;
}

async function save(s: Saved) {
  await store.putPush(s);
  cached = s;
}

/** Forgets what was read (the app locked: the VAPID key must not stay in memory). */
export function forget() {
  cached = null;
  registered = new WeakSet();
}

/** The app's keys were erased (push key included): this browser's subscription goes too. */
export async function dropSubscription(): Promise<void> {
  forget();
  const reg = await navigator.serviceWorker?.getRegistration();
  await (await reg?.pushManager.getSubscription())?.unsubscribe();
}

/** Whether push works here, and if not, why and what to do. */
export function support(): { ok: true } | { ok: false; why: string; how?: string } {
  const ios = /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
  const standalone =
    window.matchMedia?.('(display-mode: standalone)').matches || (navigator as unknown as { standalone?: boolean }).standalone === true;
  if (ios && !standalone) {
    return {
      ok: false,
      why: 'On iPhone and iPad, notifications work only in the app installed to the Home Screen (iOS 16.4 or later), opened over https.',
      how: 'In Safari, tap Share, then “Add to Home Screen”. Open peer from the Home Screen and pair your hosts there: the installed app keeps its own list.',
    };
  }
  if (!window.isSecureContext) {
    return {
      ok: false,
      why: 'Notifications need the app over https (this page is plain http).',
      how: 'Open the app from an https relay (peer-relay with TLS), then turn notifications on there.',
    };
  }
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    return { ok: false, why: 'This browser cannot receive push notifications.' };
  }
  if (Notification.permission === 'denied') {
    return {
      ok: false,
      why: 'Notifications are blocked for this app.',
      how: 'Allow them in the browser’s (or the phone’s) settings for this site, then come back.',
    };
  }
  return { ok: true };
}

function bytes(buf: ArrayBuffer | null | undefined): Uint8Array {
  return buf ? new Uint8Array(buf) : new Uint8Array();
}

async function vapidKey(s: Saved, fresh = false): Promise<{ priv: Uint8Array; pub: Uint8Array }> {
  if (!fresh && s.vapidPrivate?.length === 32 && s.vapidPublic?.length === 65) return { priv: s.vapidPrivate, pub: s.vapidPublic };
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign'])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
  const d = fromBase64Url(jwk.d ?? '');
  const priv = new Uint8Array(32);
  priv.set(d, 32 - d.length);
  const pub = new Uint8Array(65);
  pub[0] = 4;
  pub.set(fromBase64Url(jwk.x ?? ''), 1);
  pub.set(fromBase64Url(jwk.y ?? ''), 33);
  s.vapidPrivate = priv;
  s.vapidPublic = pub;
  return { priv, pub };
}

/** The browser's subscription for the app's key (made if missing, or if made for another key). */
async function subscription(pub: Uint8Array): Promise<PushSubscription> {
  const reg = await navigator.serviceWorker.ready;
  const current = await reg.pushManager.getSubscription();
  if (current) {
    const key = bytes(current.options?.applicationServerKey);
    if (key.length === 0 || equal(key, pub)) return current;
    await current.unsubscribe();
  }
  return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: pub as BufferSource });
}

/** Turns notifications on: asks for permission (call it from a tap) and subscribes. */
export async function enable(kinds: NoticeKind[] = DEFAULT_KINDS): Promise<void> {
  const perm = await Notification.requestPermission();
  if (perm !== 'granted') throw new Error('Notifications were not allowed.');
  const s = { ...(await saved()) };
  const { pub } = await vapidKey(s);
  await subscription(pub);
  await save({ ...s, enabled: true, kinds });
  registered = new WeakSet();
}

let registered = new WeakSet<HostConn>();

/**
 * Registers this browser's subscription with a host (once per connection and app start; again
 * after `enable`, `setKinds` or `rotate`). Resolves to the host's status, or null when
 * notifications are off here.
 */
export async function register(conn: HostConn, force = false): Promise<PushStatus | null> {
  const s = await saved();
  if (!s.enabled || support().ok === false) return null;
  if (registered.has(conn) && !force) return null;
  const { priv, pub } = await vapidKey(s);
  const sub = await subscription(pub);
  const r = await conn.request({
    PushRegister: {
      endpoint: sub.endpoint,
      p256dh: bytes(sub.getKey('p256dh')),
      auth: bytes(sub.getKey('auth')),
      vapid_private: priv,
      vapid_public: pub,
      kinds: s.kinds,
    },
  });
  if (typeof r !== 'object' || !('Push' in r)) throw new Error('unexpected answer');
  registered.add(conn);
  return r.Push;
}

/** Turns notifications off here and tells the hosts to forget the subscription. */
export async function disable(conns: HostConn[]): Promise<void> {
  await save({ ...(await saved()), enabled: false });
  registered = new WeakSet();
  const reg = await navigator.serviceWorker?.ready;
  await (await reg?.pushManager.getSubscription())?.unsubscribe();
  await Promise.allSettled(conns.map((c) => c.request('PushUnregister')));
}

/** Changes which kinds every host sends. */
export async function setKinds(conns: HostConn[], kinds: NoticeKind[]): Promise<void> {
  await save({ ...(await saved()), kinds });
  await Promise.allSettled(conns.map((c) => c.request({ PushKinds: { kinds } })));
}

/**
 * A new key pair and subscription, registered with `conns` (the hosts that stay): a host this
 * app forgot holds the old ones, which stop working.
 */
export async function rotate(conns: HostConn[]): Promise<void> {
  const s = { ...(await saved()) };
  if (!s.enabled) return;
  const reg = await navigator.serviceWorker.ready;
  await (await reg.pushManager.getSubscription())?.unsubscribe();
  await vapidKey(s, true);
  await save(s);
  registered = new WeakSet();
  await Promise.allSettled(conns.map((c) => register(c, true)));
}

/**
 * Tells a host whether the app is in front: a visible app attached to a session gets no
 * notices about it; one in the background does.
 */
export function focus(conn: HostConn, visible: boolean): void {
  if (!cached?.enabled || conn.state !== 'online') return;
  conn.request({ PushFocus: { visible } }).catch(() => undefined);
}

/** Where a notification tap should lead, from `?open=HOST/agent/ID&approval=N`. */
export interface Target {
  host: string;
  kind: 'agent' | 'pty';
  id: number;
  approval: number | null;
}

export function parseTarget(search: string): Target | null {
  const q = new URLSearchParams(search);
  const m = /^([0-9a-f]{64})\/(agent|pty)\/(\d{1,15})$/.exec(q.get('open') ?? '');
  if (!m) return null;
  const a = q.get('approval');
  return { host: m[1], kind: m[2] as 'agent' | 'pty', id: Number(m[3]), approval: a && /^\d{1,15}$/.test(a) ? Number(a) : null };
}
