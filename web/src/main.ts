// The app: hosts, pairing (link, paste, camera), sessions of a host, terminals, settings.
import './style.css';
import './phone.css';
import { FROM_NOW, HostConn, REFUSAL_USED, Refused, bridgeUrls, hostInfo, pair, type Failure } from './conn';
import { hex } from './bytes';
import { sha256 } from '@noble/hashes/sha2.js';
import { button, h } from './dom';
import { checkFresh, payloadFromUrl, PayloadError, type PairingPayload } from './payload';
import * as store from './store';
import { openTerminal, type TermView } from './term';
import { OutputWriter } from './writer';
import type { AgentSessionInfo, SessionInfo } from './gen/protocol';
import { agentRow, newAgentForm, openAgentChat, type AgentView } from './agentui';
import * as push from './push';
import { afterPairing, settingsSection } from './pushui';
import { gpuList } from './machine';
import { applyTheme, loadPrefs } from './prefs';
import { sessionRow } from './rows';
import { settingsSections } from './settings';
import { applyRoutes } from './routes';
import * as lock from './lock';

// The pairing secret is in the fragment: take it and scrub the address bar before anything else.
const initialFragment = location.hash.length > 1 ? location.hash.slice(1) : null;
if (initialFragment !== null) history.replaceState(null, '', location.pathname + location.search);
// A tapped notification opens the app at `?open=HOST/KIND/ID`: go there, and leave a clean URL.
const initialTarget = push.parseTarget(location.search);
if (initialTarget !== null) history.replaceState(null, '', location.pathname);

const app = document.getElementById('app') as HTMLElement;
const conns = new Map<string, HostConn>();
let term: TermView | null = null;
let agentView: AgentView | null = null;
let refreshTimer: ReturnType<typeof setInterval> | null = null;

function leave() {
  leaveHooks.splice(0).forEach((f) => f());
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
  term?.dispose();
  term = null;
  agentView?.dispose();
  agentView = null;
  stopCamera();
}

/** A screen: header (back, title, connection state), a status line, and a body. */
function screen(title: string, back: (() => void) | null, conn: HostConn | null = null, hostName = title) {
  leave();
  app.replaceChildren();
  const header = h('header', 'bar');
  if (back) header.append(button('‹', back, 'icon back'));
  header.append(h('h1', '', title));
  const body = h('main', 'body');
  if (!conn) {
    app.append(header, body);
    return body;
  }
  const pill = h('span', 'pill');
  pill.dataset.testid = 'conn-state';
  // What is going on, in words a touch screen shows (not only a pill colour or a tooltip).
  const status = h('div', 'status');
  status.dataset.testid = 'conn-status';
  status.setAttribute('role', 'status');
  let online = false;
  const show = () => {
    if (conn.state === 'online' && !online) {
      // (Re)connected: the host learns whether the app is in front, and gets this browser's
      // push subscription once per app start.
      push.focus(conn, document.visibilityState === 'visible');
      void push.register(conn).catch(() => undefined);
    }
    online = conn.state === 'online';
    pill.textContent = pillText(conn);
    pill.className = `pill ${conn.state}`;
    const text = statusText(conn);
    status.textContent = text;
    status.hidden = text === '';
    if (conn.failure) showFailure(body, conn, conn.failure, hostName);
  };
  conn.onState = show;
  header.append(pill);
  app.append(header, status, body);
  show();
  // Keys typed while offline wait in the app: say so while they do.
  const pendingTimer = setInterval(show, 1000);
  leaveHooks.push(() => clearInterval(pendingTimer));
  return body;
}

/** Callbacks run when the screen is left. */
const leaveHooks: (() => void)[] = [];

function pillText(conn: HostConn): string {
  switch (conn.state) {
    case 'online':
      return 'online';
    case 'connecting':
      return conn.detail === 'no contact' ? 'no contact' : 'connecting';
    case 'offline':
      return conn.detail === 'no contact' ? 'no contact' : 'offline';
    case 'failed':
      return conn.failure?.kind === 'revoked' ? 'removed' : 'stopped';
  }
}

function statusText(conn: HostConn): string {
  const pending = conn.pendingInput();
  const keys = pending > 0 ? ` · ${pending} typed byte${pending === 1 ? '' : 's'} waiting to be sent` : '';
  switch (conn.state) {
    case 'online':
      return '';
    case 'connecting':
    case 'offline':
      if (conn.detail === 'no contact') return `No contact with the host · reconnecting${keys}`;
      if (conn.detail) return `Offline (${conn.detail}) · reconnecting${keys}`;
      return `Connecting…${keys}`;
    case 'failed':
      return '';
  }
}

/** Replaces the screen's body with what happened and what can be done about it. */
function showFailure(body: HTMLElement, conn: HostConn, failure: Failure, hostName: string) {
  if (body.dataset.failure === failure.kind) return;
  body.dataset.failure = failure.kind;
  leaveHooks.splice(0).forEach((f) => f());
  term?.dispose();
  term = null;
  agentView?.dispose();
  agentView = null;
  app.classList.remove('terminal');
  body.classList.remove('term-body');
  const panel = h('section', 'failure');
  panel.dataset.testid = 'failure';
  const id = [...conns.entries()].find(([, c]) => c === conn)?.[0];
  const forget = button('Forget this host', () => {
    if (id) void forgetHost(id).then(showHosts);
  }, 'btn danger');
  switch (failure.kind) {
    case 'revoked':
      panel.append(
        h('h2', '', `This phone was removed from ${hostName}`),
        h('p', '', 'Someone revoked it on the host (`peer devices revoke`). To use the host again, pair again with a fresh code from `peer pair` there.'),
      );
      panel.append(button('Pair again', () => showAdd(), 'btn primary'), forget);
      break;
    case 'refused':
      panel.append(h('h2', '', `${hostName} refused this phone`), h('p', '', failure.detail));
      panel.append(button('Pair again', () => showAdd(), 'btn primary'), forget);
      break;
    case 'version':
      panel.append(h('h2', '', 'This app and the host do not speak the same protocol'), h('p', '', failure.detail));
      panel.append(button('Reload the app', () => location.reload(), 'btn primary'), forget);
      break;
    case 'protocol':
      panel.append(
        h('h2', '', `${hostName} ended the connection: protocol error`),
        h('p', '', `${failure.detail}. This is a bug in the app or the host; reloading may help.`),
      );
      panel.append(button('Reload the app', () => location.reload(), 'btn primary'), forget);
      break;
  }
  body.replaceChildren(panel);
}

/** Forgets a host in this app (its connection too). */
async function forgetHost(id: string) {
  conns.get(id)?.stop();
  conns.delete(id);
  await store.forgetHost(id);
  // The forgotten host holds this browser's push subscription and key: replace both, and give
  // the new ones to the hosts that stay.
  if ((await push.saved()).enabled) {
    const stay = await Promise.all((await store.hosts()).map(connFor));
    await push.rotate(stay).catch(() => undefined);
  }
}

function toast(text: string, cls = 'error') {
  // The same news again (two restarts in a row, say) replaces the one still shown rather than
  // stacking a copy on top of it.
  for (const old of document.querySelectorAll<HTMLElement>('body > .toast')) {
    if (old.textContent === text) old.remove();
  }
  const t = h('div', `toast ${cls}`, text);
  t.setAttribute('role', 'alert');
  // Over a terminal the bottom of the screen is the key bar, or an ended session's buttons:
  // wanted most just when something happened (a host restart). Show it under the header there.
  if (app.classList.contains('terminal')) {
    const bar = app.querySelector('header.bar');
    const shown = bar !== null && getComputedStyle(bar).display !== 'none';
    t.classList.add('top');
    // (The header's bottom is below the safe area already.)
    t.style.top = shown ? `${Math.round(bar.getBoundingClientRect().bottom) + 8}px` : 'calc(8px + env(safe-area-inset-top))';
  }
  document.body.append(t);
  setTimeout(() => t.remove(), 6000);
}

async function connFor(rec: store.HostRecord): Promise<HostConn> {
  let c = conns.get(rec.id);
  if (!c) {
    const { key } = await store.deviceKey();
    // Locked meanwhile: no connection may start behind the lock screen.
    if (await store.isLocked()) throw new store.LockedError();
    const raced = conns.get(rec.id);
    if (raced) return raced;
    const conn = new HostConn(hostInfo(rec), key);
    // The host says where it is on every connection: keep the record (and the next sockets)
    // pointed there.
    conn.onRoutes = (routes) => {
      void store
        .updateHost(rec.id, (h) => applyRoutes(h, routes, location.origin))
        .then((next) => {
          if (next) conn.setBridges(next.bridges);
        });
    };
    // Set here, not by the host's screen: a terminal opened from a notification is shown
    // without that screen ever having been.
    conn.onRestart = () => toast('The host restarted.', 'info');
    c = conn;
    conns.set(rec.id, c);
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Hosts

async function showHosts() {
  const body = screen('peer', null);
  const list = await store.hosts();
  if (list.length === 0) {
    body.append(
      h('p', 'hint', 'No host yet. On the machine, run `peer host` (or `peer pair`) and scan its QR code, or paste the link.'),
    );
  }
  const ul = h('ul', 'list');
  const updates: (() => void)[] = [];
  for (const rec of list) {
    const li = h('li', 'row');
    li.dataset.testid = 'host';
    const main = h('button', 'row-main');
    main.type = 'button';
    const top = h('span', 'row-top');
    const dot = h('span', 'dot');
    const approvals = h('span', 'badge approval', '');
    approvals.dataset.testid = 'host-approvals';
    approvals.hidden = true;
    top.append(dot, h('strong', '', rec.name), approvals);
    const state = h('small', '', `${rec.role.toLowerCase()} · ${rec.id.slice(0, 12)}…`);
    state.dataset.testid = 'host-state';
    main.append(top, state);
    main.addEventListener('click', () => void showHost(rec));
    li.append(main);
    ul.append(li);
    // Each host says whether it is reachable and how many approvals wait there.
    void connFor(rec).then((conn) => {
      let pending = 0;
      const paint = () => {
        dot.className = `dot ${conn.state}`;
        state.textContent = `${pillText(conn)} · ${rec.role.toLowerCase()} · ${rec.id.slice(0, 12)}…`;
        approvals.hidden = pending === 0;
        approvals.textContent = pending === 1 ? '1 approval' : `${pending} approvals`;
      };
      const poll = () =>
        conn
          .request('ListAgentSessions')
          .then((r) => {
            if (typeof r === 'object' && 'AgentSessions' in r) pending = r.AgentSessions.reduce((n, s) => n + s.pending_approvals, 0);
          })
          .catch(() => undefined)
          .finally(paint);
      updates.push(paint, () => void poll());
      paint();
      void poll();
    });
  }
  body.append(ul);
  const actions = h('div', 'actions');
  actions.append(button('Add a host', () => showAdd(), 'btn primary'), button('Settings', () => void showSettings()));
  body.append(actions);
  let ticks = 0;
  const timer = setInterval(() => {
    // The dots every second, the approvals every five.
    ticks++;
    updates.forEach((f, i) => (i % 2 === 0 || ticks % 5 === 0) && f());
  }, 1000);
  leaveHooks.push(() => clearInterval(timer));
}

// ---------------------------------------------------------------------------------------------
// Pairing

function showAdd() {
  const body = screen('Add a host', () => void showHosts());
  body.append(h('p', 'hint', 'Run `peer pair` on the host. Scan its QR code, or copy its link and paste it here.'));
  const ta = h('textarea', 'paste');
  ta.placeholder = 'http://…/#AQ…';
  ta.rows = 3;
  ta.setAttribute('autocapitalize', 'off');
  ta.setAttribute('autocorrect', 'off');
  ta.spellcheck = false;
  body.append(ta);
  const actions = h('div', 'actions');
  actions.append(
    button('Pair', () => void startPairing(ta.value), 'btn primary'),
    button('Scan QR code', () => void showScanner()),
  );
  body.append(actions);
}

async function startPairing(link: string) {
  let payload: PairingPayload;
  try {
    payload = payloadFromUrl(link);
    checkFresh(payload, Date.now() / 1000);
  } catch (e) {
    toast(e instanceof PayloadError ? e.message : String(e));
    await showHosts();
    return;
  }
  const body = screen('Pairing', () => void showHosts());
  const status = h('p', 'hint', `Connecting to ${payload.hostName ?? 'the host'}…`);
  status.dataset.testid = 'pair-status';
  const code = h('div', 'code');
  code.dataset.testid = 'short-code';
  body.append(status, code);
  const hostId = hex(payload.hostId);
  const known = (await store.hosts()).find((r) => r.id === hostId);
  // From here until the host is stored, the idle lock waits (the person is comparing codes on
  // the host, touching nothing here): locking then would lose a pairing the host already made.
  let stored: () => void = () => undefined;
  const paired = new Promise<void>((resolve) => (stored = resolve));
  void lock.idle.hold(() => paired);
  try {
    const { key } = await store.deviceKey();
    const name = await store.deviceName();
    const bridges = bridgeUrls(payload.hostId, payload.relayUrls, location.origin);
    const res = await pair(payload, key, name, bridges, (c) => {
      code.textContent = c;
      status.textContent = 'Check that the host shows the same code:';
    });
    payload.secret.fill(0);
    const rec: store.HostRecord = {
      id: hostId,
      noiseKey: hex(payload.hostNoiseKey),
      psk: res.psk,
      name: res.hostName,
      role: res.role,
      bridges,
      relays: payload.relayUrls,
      pairedAt: Date.now(),
    };
    await store.saveHost(rec).finally(stored);
    // A host paired again (after a revocation, say) gets a fresh connection with the new key.
    conns.get(rec.id)?.stop();
    conns.delete(rec.id);
    status.textContent = `Paired with ${res.hostName}. Does the host show the same code?`;
    const actions = h('div', 'actions');
    const same = button(`Open ${res.hostName}`, () => void showHost(rec), 'btn primary');
    same.dataset.testid = 'codes-match';
    const differ = button('The codes differ', () => void codesDiffer(rec, body), 'btn danger');
    differ.dataset.testid = 'codes-differ';
    actions.append(same, differ);
    body.append(actions);
    await afterPairing(body, await connFor(rec), res.hostName, toast);
  } catch (e) {
    stored();
    if (e instanceof Refused && e.code === REFUSAL_USED && known) {
      // The link was used already, most likely by this very phone.
      status.textContent = `Already paired with ${known.name}: this link was already used.`;
      status.className = 'hint';
      const actions = h('div', 'actions');
      actions.append(button(`Open ${known.name}`, () => void showHost(known), 'btn primary'));
      body.append(actions);
      return;
    }
    status.textContent = e instanceof Error ? e.message : String(e);
    status.className = 'hint error';
    status.setAttribute('role', 'alert');
  }
}

/**
 * The short codes differed: someone may have been in between. Tell the host to forget this
 * device (if the host is reachable), forget the host here, and say what to do.
 */
async function codesDiffer(rec: store.HostRecord, body: HTMLElement) {
  const note = h('p', 'hint', 'Removing this pairing…');
  body.replaceChildren(note);
  try {
    const conn = await connFor(rec);
    await Promise.race([conn.unpair(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 8000))]);
    note.textContent = `Removed: ${rec.name} has revoked this phone, and the app forgot it.`;
  } catch {
    note.textContent = `The app forgot ${rec.name}, but could not reach it: revoke this phone there with \`peer devices revoke\`.`;
  }
  await forgetHost(rec.id);
  note.dataset.testid = 'unpaired';
  body.append(
    note,
    h('p', 'hint', 'If you did not expect different codes, someone may have intercepted the pairing link: make a new code on the host and pair again.'),
    button('Back', () => void showHosts(), 'btn'),
  );
}

let camera: MediaStream | null = null;
let scanTimer: ReturnType<typeof setInterval> | null = null;
function stopCamera() {
  if (scanTimer) clearInterval(scanTimer);
  scanTimer = null;
  camera?.getTracks().forEach((t) => t.stop());
  camera = null;
}

async function showScanner() {
  const body = screen('Scan', () => showAdd());
  if (!navigator.mediaDevices?.getUserMedia) {
    body.append(h('p', 'hint error', 'The camera needs an https page. Paste the link instead.'));
    return;
  }
  const video = h('video', 'scan');
  video.setAttribute('playsinline', '');
  video.muted = true;
  body.append(video, h('p', 'hint', 'Point the camera at the QR code shown by the host.'));
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  } catch (e) {
    body.append(h('p', 'hint error', `No camera: ${String(e)}. Paste the link instead.`));
    return;
  }
  video.srcObject = camera;
  await video.play().catch(() => undefined);
  // The QR decoder is loaded only when the camera is used.
  const { default: jsQR } = await import('jsqr');
  const canvas = h('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  scanTimer = setInterval(() => {
    if (!ctx || video.videoWidth === 0) return;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    ctx.drawImage(video, 0, 0);
    const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const found = jsQR(img.data, img.width, img.height);
    if (found?.data) {
      stopCamera();
      void startPairing(found.data);
    }
  }, 250);
}

// ---------------------------------------------------------------------------------------------
// A host and its sessions

/** Opens a new terminal on the host screen's host in `cwd` (set while that screen is built). */
let newHere: (cwd: string) => void = () => undefined;

async function showHost(rec: store.HostRecord) {
  const conn = await connFor(rec);
  const body = screen(rec.name, () => void showHosts(), conn, rec.name);
  const ul = h('ul', 'list');
  ul.dataset.testid = 'sessions';
  const actions = h('div', 'actions');
  const newBtn = button('New terminal', () => void create(), 'btn primary');
  newBtn.dataset.testid = 'new-session';
  const newAgent = button('New agent session', () => void showNewAgent(rec));
  newAgent.dataset.testid = 'new-agent';
  actions.append(newBtn, newAgent);
  const agentsUl = h('ul', 'list');
  agentsUl.dataset.testid = 'agent-sessions';
  const gpus = h('div');
  body.append(actions, gpus, h('h2', '', 'Agents'), agentsUl, h('h2', '', 'Terminals'), ul);
  // The GPUs once (a host without nvidia-smi has none; an older host does not know the request).
  conn
    .request('ListGpus')
    .then((r) => {
      const list = typeof r === 'object' && 'Gpus' in r ? gpuList(r.Gpus) : null;
      if (list) gpus.replaceChildren(h('h2', '', 'GPUs'), list);
    })
    .catch(() => undefined);
  const renderAgents = (list: AgentSessionInfo[]) => {
    agentsUl.replaceChildren();
    if (list.length === 0) agentsUl.append(h('li', 'hint', 'No agent sessions.'));
    for (const s of [...list].reverse()) agentsUl.append(agentRow(s, () => void showAgent(rec, s)));
  };

  const render = (sessions: SessionInfo[]) => {
    ul.replaceChildren();
    if (sessions.length === 0) ul.append(h('li', 'hint', 'No sessions. Start one.'));
    for (const s of [...sessions].reverse()) {
      const running = s.state === 'Running';
      const kill = button(running ? 'Kill' : 'Forget', () => {
        if (running && !confirm(`Kill session ${s.id}?`)) return;
        conn
          .request({ KillSession: { session: s.id } })
          .then(refresh)
          .catch((e) => toast(String(e)));
      }, 'btn small danger');
      const rename = button('Rename', () => {
        const name = prompt('Name of this terminal (empty: none)', s.name ?? '');
        if (name === null) return;
        conn
          .request({ RenameSession: { session: s.id, name: name.trim() || null } })
          .then(refresh)
          .catch((e) => toast(e instanceof Error ? e.message : String(e)));
      }, 'btn small');
      ul.append(sessionRow(s, () => void showTerminal(rec, s), [rename, kill]));
    }
  };
  const refresh = async () => {
    try {
      // A host without agent support still lists its terminals.
      const agents = conn.request('ListAgentSessions').catch(() => null);
      const r = await conn.request('ListSessions');
      if (typeof r === 'object' && 'Sessions' in r) render(r.Sessions);
      const a = await agents;
      if (a && typeof a === 'object' && 'AgentSessions' in a) renderAgents(a.AgentSessions);
    } catch (e) {
      /* shown by the connection state */
      void e;
    }
  };
  const create = async (cwd: string | null = null) => {
    try {
      const cols = Math.max(20, Math.floor(window.innerWidth / 8.5));
      const rows = Math.max(10, Math.floor((window.visualViewport?.height ?? window.innerHeight) / 19) - 4);
      const r = await conn.request({
        CreateSession: {
          name: null,
          command: [],
          cwd,
          env: [['TERM', 'xterm-256color']],
          size: { cols, rows },
          // Attached from offset 0 right away: the host keeps the first output for it.
          hold_output: true,
        },
      });
      if (typeof r === 'object' && 'Created' in r) await showTerminal(rec, r.Created);
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e));
    }
  };
  newHere = (cwd: string) => void create(cwd);
  await refresh();
  refreshTimer = setInterval(() => void refresh(), 3000);
}

async function showTerminal(rec: store.HostRecord, s: SessionInfo) {
  const conn = await connFor(rec);
  const body = screen(`${s.id} · ${s.name ?? s.command.join(' ')}`, () => void showHost(rec), conn, rec.name);
  body.classList.add('term-body');
  app.classList.add('terminal');
  // A picture of the screen as it is now (with scrollback), then live output.
  term = openTerminal(
    conn,
    s.id,
    FROM_NOW,
    (text) => {
      if (text === 'ended') body.classList.add('ended');
    },
    {
      newHere: () => void showHost(rec).then(() => newHere(s.cwd)),
      back: () => void showHost(rec),
    },
  );
  body.append(term.el);
}

// ---------------------------------------------------------------------------------------------
// Agent sessions

async function showNewAgent(rec: store.HostRecord) {
  const conn = await connFor(rec);
  const body = screen('New agent session', () => void showHost(rec), conn, rec.name);
  await newAgentForm(conn, body, (s) => void showAgent(rec, s), toast, rec.id);
}

async function showAgent(rec: store.HostRecord, s: AgentSessionInfo, approval: number | null = null) {
  const conn = await connFor(rec);
  const body = screen(s.title ?? `${s.agent} · ${s.branch}`, () => void showHost(rec), conn, rec.name);
  agentView = openAgentChat(conn, rec.id, s, body, toast, approval, (title) => {
    const h1 = app.querySelector('header.bar h1');
    if (h1) h1.textContent = title;
  });
}

/** Where a tapped notification leads: the session, with the approval card in view. */
async function openTarget(t: push.Target) {
  const rec = (await store.hosts()).find((r) => r.id === t.host);
  if (!rec) {
    toast('That notification is from a host this app is not paired with.');
    await showHosts();
    return;
  }
  const conn = await connFor(rec);
  screen(rec.name, () => void showHosts(), conn, rec.name).append(h('p', 'hint', 'Opening…'));
  try {
    if (t.kind === 'agent') {
      const r = await conn.request('ListAgentSessions');
      const s = typeof r === 'object' && 'AgentSessions' in r ? r.AgentSessions.find((x) => x.id === t.id) : undefined;
      if (s) return await showAgent(rec, s, t.approval);
    } else {
      const r = await conn.request('ListSessions');
      const s = typeof r === 'object' && 'Sessions' in r ? r.Sessions.find((x) => x.id === t.id) : undefined;
      if (s) return await showTerminal(rec, s);
    }
    toast(`That session is gone from ${rec.name}.`, 'info');
  } catch (e) {
    toast(e instanceof Error ? e.message : String(e));
  }
  await showHost(rec);
}

navigator.serviceWorker?.addEventListener('message', (e: MessageEvent) => {
  const d = e.data as { type?: string; target?: push.Target | null } | null;
  if (d?.type === 'peer-open' && d.target) void whenUnlocked(() => void openTarget(d.target as push.Target));
});

// ---------------------------------------------------------------------------------------------
// Settings

async function showSettings() {
  const body = screen('Settings', () => void showHosts());
  const label = h('label', 'field', 'This device’s name (given to hosts when pairing)');
  const name = h('input');
  name.value = await store.deviceName();
  name.maxLength = 64;
  label.append(name);
  body.append(label, button('Save name', () => void store.setDeviceName(name.value.trim()).then(() => toast('Saved', 'info'))));
  const { kind } = await store.deviceKey();
  body.append(
    h(
      'p',
      'hint',
      kind === 'webcrypto'
        ? 'Device key: X25519 in WebCrypto, not extractable by scripts.'
        : kind === 'sealed'
          ? 'Device key: X25519, sealed with the app lock’s passkey.'
          : 'Device key: X25519 kept by the app in IndexedDB (this page has no WebCrypto X25519).',
    ),
  );
  body.append(
    await lock.settingsSection(toast, () => void showSettings(), () => {
      relock();
      store.announceLocked();
    }),
  );
  // Terminal (font, cursor), theme, key bar; notifications get their own section here.
  body.append(...settingsSections());
  const notifications = h('section', 'settings-section');
  notifications.dataset.section = 'notifications';
  body.append(notifications);
  // Whoever serves this origin runs its code with this device's keys (docs/security.md).
  const origin = h('p', 'hint', `This app was loaded from ${location.origin}. Whoever serves it there runs it with this device’s keys: load it only from your own host or a server you trust.`);
  origin.dataset.origin = location.origin;
  body.append(origin);
  body.append(h('h2', '', 'Hosts'));
  const ul = h('ul', 'list');
  for (const rec of await store.hosts()) {
    const li = h('li', 'row');
    const main = h('span', 'row-main', rec.name);
    const relays = rec.relays ?? [];
    const via = h('small', 'relays', relays.length ? `relays: ${relays.join(', ')}` : `bridges: ${rec.bridges.join(', ')}`);
    main.append(via);
    li.append(
      main,
      button('Forget', () => {
        if (!confirm(`Forget ${rec.name}? The host is asked to revoke this phone too, if it can be reached.`)) return;
        void (async () => {
          try {
            const conn = await connFor(rec);
            await Promise.race([conn.unpair(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 5000))]);
          } catch {
            toast(`${rec.name} could not be reached: revoke this phone there with \`peer devices revoke\`.`, 'info');
          }
          await forgetHost(rec.id);
          await showSettings();
        })();
      }, 'btn small danger'),
    );
    ul.append(li);
  }
  body.append(ul);
  await settingsSection(body, await store.hosts(), connFor, toast);
}

// ---------------------------------------------------------------------------------------------
// Never lose the thread: a fresh socket whenever the page comes back or the network does.

function resumeAll() {
  for (const c of conns.values()) c.reconnect();
}
document.addEventListener('visibilitychange', () => {
  const visible = document.visibilityState === 'visible';
  // Hidden: the hosts send notices about what this app shows; visible: they hold them again.
  if (!visible) {
    for (const c of conns.values()) push.focus(c, false);
    return;
  }
  // Back after longer than the lock's idle time: locked (no connection left) before anything
  // reconnects.
  void lock.idle
    .check()
    .catch(() => undefined)
    .then(() => {
      for (const c of conns.values()) push.focus(c, true);
      resumeAll();
    });
});
window.addEventListener('pageshow', (e) => {
  if (e.persisted) void lock.idle.check().catch(() => undefined).then(resumeAll);
});
window.addEventListener('online', () => void lock.idle.check().catch(() => undefined).then(resumeAll));
// A pairing link opened while the app is already showing (same page, new fragment).
window.addEventListener('hashchange', () => {
  if (location.hash.length <= 1) return;
  const fragment = location.hash.slice(1);
  history.replaceState(null, '', location.pathname + location.search);
  void whenUnlocked(() => void startPairing('#' + fragment));
});

// Keep the app exactly as tall as what is visible above the on-screen keyboard.
function fitViewport() {
  const vv = window.visualViewport;
  const height = vv ? vv.height : window.innerHeight;
  document.documentElement.style.setProperty('--vh', `${height}px`);
  // A phone in landscape with its keyboard up: the header gives its rows to the content.
  app.classList.toggle('short', height < 360 && window.innerWidth > height);
  if (vv) window.scrollTo(0, 0);
}
window.visualViewport?.addEventListener('resize', fitViewport);
window.visualViewport?.addEventListener('scroll', fitViewport);
fitViewport();

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('./sw.js').catch(() => undefined);
}

applyTheme(loadPrefs().theme);

// Hooks for the end-to-end tests and for measuring inside the page: only in a build made for
// them (`PEER_DEBUG_HOOKS=1`, as web/e2e/run.mjs builds); a production build has none.
let recorded: Uint8Array[] = [];
let recordedLen = 0;

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

declare const __PEER_DEBUG__: boolean;
if (__PEER_DEBUG__) (window as unknown as { peerDebug: unknown }).peerDebug = {
  conns,
  term: () => term,
  agentView: () => agentView,
  termText(): string {
    if (!term) return '';
    const buf = term.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  },
  /** Where this browser's device key lives: 'webcrypto' (non-extractable), 'noble' or 'sealed'. */
  async keyKind(): Promise<string> {
    return (await store.deviceKey()).kind;
  },
  /** The app lock's idle time, in ms instead of the setting's minutes (null: the setting). */
  lockIdleMs(ms: number | null) {
    lock.idle.overrideMs = ms;
    lock.idle.touch();
  },
  dropSockets() {
    for (const c of conns.values()) c.dropSocket();
  },
  /** Starts a fresh handshake on every connection and locks while they are under way. */
  reconnectAndLock() {
    for (const c of conns.values()) c.reconnect();
    relock();
  },
  /** Keeps, from now on, every output byte the open terminal receives from the host. */
  recordOutput(): void {
    const t = term;
    if (!t) throw new Error('no terminal');
    const chunks: Uint8Array[] = [];
    recorded = chunks;
    recordedLen = 0;
    t.onOutput = (d) => {
      chunks.push(d.slice());
      recordedLen += d.length;
    };
  },
  /** How many bytes were recorded, and how many the host reported lost, so far. */
  recordedLength(): { len: number; lost: number } {
    return { len: recordedLen, lost: term?.lostBytes ?? 0 };
  },
  /** The last `n` recorded bytes, as text (what the output ended with, for a test). */
  recordedTail(n: number): string {
    const all = concat(recorded);
    return new TextDecoder().decode(all.subarray(Math.max(0, all.length - n)));
  },
  /**
   * Length and SHA-256 (hex) of the recorded bytes strictly between the first `from` and the
   * first `to` after it; null while either is missing.
   */
  recordedBetween(from: string, to: string): { len: number; sha256: string } | null {
    const all = concat(recorded);
    const enc = new TextEncoder();
    const a = indexOf(all, enc.encode(from), 0);
    if (a < 0) return null;
    const start = a + from.length;
    const b = indexOf(all, enc.encode(to), start);
    if (b < 0) return null;
    return { len: b - start, sha256: hex(sha256(all.subarray(start, b))) };
  },
  /** Keystroke → echo rendered, n times: sent as the key bar sends, timed to xterm.js having drawn it. */
  async measureEcho(n: number): Promise<number[]> {
    const t = term;
    if (!t) throw new Error('no terminal');
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const ch = 'abcdefghijklmnopqrstuvwxyz'[i % 26];
      const got = new Promise<void>((resolve) => {
        t.onOutput = (d) => {
          if (d.includes(ch.charCodeAt(0))) {
            t.onOutput = null;
            void t.writer.idle().then(resolve);
          }
        };
      });
      const t0 = performance.now();
      t.send(ch);
      await got;
      times.push(performance.now() - t0);
      if (i % 50 === 49) t.send('\x15');
    }
    t.send('\x15');
    return times;
  },
  /**
   * Presses the key bar's ^C and times its effect: until the terminal's echo of ^C (or the
   * prompt after it) arrives from the host, and until that is on the screen. The skip-ahead
   * re-attach replays the output's last bytes, so they arrive even when the host applied the ^C
   * before the re-attach. Rejects after `timeoutMs` with what it saw, so a test never waits
   * forever.
   */
  async measureCtrlC(
    timeoutMs = 15000,
  ): Promise<{ arrivedMs: number; shownMs: number; bytesAfter: number; how: string; attaches: string[] }> {
    const t = term;
    if (!t) throw new Error('no terminal');
    const dec = new TextDecoder();
    let tail = '';
    let bytesAfter = 0;
    const seen: string[] = [];
    const t0 = performance.now();
    const arrived = new Promise<{ ms: number; how: string }>((resolve, reject) => {
      const done = (how: string) => {
        clearTimeout(timer);
        t.onOutput = null;
        t.onAttached = null;
        resolve({ ms: performance.now() - t0, how });
      };
      const timer = setTimeout(() => {
        t.onOutput = null;
        t.onAttached = null;
        reject(
          new Error(
            `^C showed no effect in ${timeoutMs} ms: ${bytesAfter} bytes after it, attaches ${JSON.stringify(seen)}, last output ${JSON.stringify(tail)}`,
          ),
        );
      }, timeoutMs);
      t.onOutput = (d) => {
        bytesAfter += d.length;
        tail = (tail + dec.decode(d)).slice(-64);
        if (tail.includes('^C')) done('echo');
        else if (/[$#] $/.test(tail)) done('prompt');
      };
      t.onAttached = (a) => {
        seen.push(`${a.skippedAhead ? 'skip-ahead' : 'resume'} attach at ${(performance.now() - t0).toFixed(0)} ms, ${a.unackedInput} unacked`);
      };
    });
    const btn = document.querySelector('[data-key="ctrl-c"]') as HTMLElement;
    btn.dispatchEvent(new PointerEvent('pointerdown', { bubbles: true, cancelable: true }));
    btn.dispatchEvent(new PointerEvent('pointerup', { bubbles: true }));
    const a = await arrived;
    await t.writer.idle();
    return { arrivedMs: a.ms, shownMs: performance.now() - t0, bytesAfter, how: a.how, attaches: seen };
  },
  /** xterm.js rendering throughput through the app's writer, MB/s. */
  async measureRender(mb: number): Promise<number> {
    const t = term;
    if (!t) throw new Error('no terminal');
    const line = new TextEncoder().encode('drwxr-xr-x  2 user user  4096 Nov 23 11:47 \x1b[34msome-directory\x1b[0m  file.txt\r\n');
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = line[i % line.length];
    const w = new OutputWriter(t.term, { maxQueued: Infinity });
    const t0 = performance.now();
    const total = mb * 1024 * 1024;
    for (let n = 0; n < total; n += chunk.length) w.push(chunk);
    await w.idle();
    return total / 1024 / 1024 / ((performance.now() - t0) / 1000);
  },
};

// ---------------------------------------------------------------------------------------------
// The app lock (lock.ts): nothing of the hosts shows, and nothing connects, until it is open.

/** Locks again: the open keys leave memory, every connection closes, the lock screen shows. */
function relock() {
  for (const c of conns.values()) c.stop();
  conns.clear();
  leave();
  store.relock();
  push.forget();
  void whenUnlocked(() => void showHosts());
}

/** Runs `then` now, or after the lock screen was passed. */
async function whenUnlocked(then: () => void) {
  if (!(await store.isLocked())) return then();
  const body = screen('peer', null);
  lock.lockScreen(
    body,
    () => {
      void push.saved().catch(() => undefined);
      then();
    },
    () => void push.dropSubscription().catch(() => undefined).finally(() => void showHosts()),
  );
}
lock.idle.start(relock);
// Another tab turned the lock on or off, or erased the keys: what this one holds in memory is
// stale, so it starts again from the records. "Lock now" there: locked here too.
store.onOtherTabs((news) => {
  if (news === 'changed') location.reload();
  else void store.isLocked().then((locked) => locked || relock());
});

// Start: pair if the page was opened from a pairing link, go where a tapped notification
// leads, else the host list.
void whenUnlocked(() => {
  void push.saved();
  if (initialFragment !== null) void startPairing('#' + initialFragment);
  else if (initialTarget !== null) void openTarget(initialTarget);
  else void showHosts();
});
