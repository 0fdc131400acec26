// Service worker: keeps the app shell (this origin's static files) available offline, and shows
// the notifications hosts send (Web Push: the browser decrypted them for us).
// Network first, so a new build is picked up at once; the cache answers only when offline.
// The bridge socket and anything that is not a same-origin GET are never touched.
const CACHE = 'peer-shell-v1';

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(['./', './manifest.webmanifest'])).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin || url.pathname.includes('/bridge/')) return;
  event.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(req, copy));
        }
        return res;
      })
      .catch(() => caches.match(req).then((hit) => hit || caches.match('./'))),
  );
});

// ---------------------------------------------------------------------------------------------
// Notifications. A push carries one notice (docs/protocol.md §17.4):
// {v, host, host_name, kind, session: {agent: N} | {pty: N}, title, body, tag, at_ms, approval}.

/** Where a tap leads: the app with `?open=HOST/KIND/ID` (never `#`: the fragment is for pairing). */
function target(data) {
  if (!data || !/^[0-9a-f]{64}$/.test(data.host || '') || !data.session) return null;
  const kind = 'agent' in data.session ? 'agent' : 'pty';
  const id = Number(data.session[kind]);
  if (!Number.isSafeInteger(id)) return null;
  return { host: data.host, kind, id, approval: Number.isSafeInteger(data.approval) ? data.approval : null };
}

function openUrl(t) {
  const q = new URLSearchParams({ open: `${t.host}/${t.kind}/${t.id}` });
  if (t.approval !== null) q.set('approval', String(t.approval));
  return new URL(`./?${q}`, self.registration.scope).href;
}

self.addEventListener('push', (event) => {
  let data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch {
    data = null;
  }
  // Every push shows a notification (iOS drops the subscription of an app that shows none).
  const title = (data && typeof data.title === 'string' && data.title) || 'peer';
  const where = data && typeof data.host_name === 'string' ? data.host_name : '';
  const what = data && typeof data.body === 'string' ? data.body : '';
  const body = [where, what].filter(Boolean).join(' · ');
  const options = {
    body,
    tag: (data && typeof data.tag === 'string' && data.tag) || undefined,
    // A newer notice for the same session replaces the older one, and says so.
    renotify: !!(data && data.tag),
    icon: './icon-192.png',
    badge: './icon-192.png',
    timestamp: data && Number.isSafeInteger(data.at_ms) ? data.at_ms : Date.now(),
    requireInteraction: !!(data && data.kind === 'approval'),
    data: { target: target(data) },
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

/** Brings the app to the notice's session: an open window navigates; else a new one opens. */
async function open(t) {
  const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  if (wins.length > 0) {
    const win = wins.find((w) => w.focused) || wins[0];
    win.postMessage({ type: 'peer-open', target: t });
    try {
      await win.focus();
    } catch {
      // A click simulated by a test may not focus; the app navigates anyway.
    }
    return;
  }
  await self.clients.openWindow(t ? openUrl(t) : self.registration.scope);
}

function clicked(event) {
  event.notification.close();
  const done = open(event.notification.data && event.notification.data.target);
  try {
    event.waitUntil(done);
  } catch {
    // Only a click dispatched by the test hook below lands here.
  }
}

self.addEventListener('notificationclick', clicked);

// For the end-to-end test: "click" the notification with this tag (no browser API clicks one).
self.addEventListener('message', (event) => {
  if (!event.data || event.data.type !== 'peer-test-click') return;
  event.waitUntil(
    self.registration.getNotifications({ tag: event.data.tag }).then(([n]) => {
      if (n) self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n }));
    }),
  );
});
