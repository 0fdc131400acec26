// The app lock: this device's keys sealed under a passkey (Face ID, fingerprint, screen lock),
// opened when the app starts and dropped again after an idle time. The format is lockbox.ts,
// the passkey passkey.ts, the records store.ts; here the screens and the idle clock.
import { button, h } from './dom';
import { IDLE_DEFAULT_MINUTES, LockError } from './lockbox';
import * as passkey from './passkey';
import * as store from './store';

export const IDLE_CHOICES = [1, 5, 15, 60];

const message = (e: unknown) =>
  e instanceof passkey.PasskeyError || e instanceof LockError ? e.message : `Something went wrong: ${e instanceof Error ? e.message : String(e)}`;

/** Makes a passkey and seals this device's keys under it. */
export async function enable(idleMinutes: number): Promise<void> {
  const prfSalt = crypto.getRandomValues(new Uint8Array(32));
  const made = await passkey.create(prfSalt);
  // The lock is sealed under what the passkey gives when used (as at every unlock), never only
  // under what it gave when made: some authenticators give none then, and one whose two answers
  // differed would lose every pairing. So it is used once now, before anything is sealed.
  let prf: Uint8Array;
  try {
    prf = await passkey.evaluate(made.credentialId, prfSalt);
  } catch (e) {
    made.prf?.fill(0);
    if (e instanceof passkey.PasskeyError && e.kind === 'cancelled') {
      throw new passkey.PasskeyError('cancelled', 'The passkey was made but not tried, so the lock is still off (the keys are stored as before). Try again and use the passkey when asked.');
    }
    throw e;
  }
  try {
    if (made.prf && !(made.prf.length === prf.length && made.prf.every((b, i) => b === prf[i]))) {
      throw new passkey.PasskeyError('other', 'This passkey derived a different key when used than when made, so it cannot be trusted to open the lock: the lock is still off.');
    }
    await store.lockWith(made.credentialId, prfSalt, prf, idleMinutes);
  } finally {
    prf.fill(0);
    made.prf?.fill(0);
  }
}

/** Asks the lock's passkey for its PRF output and gives it to `use` (then wipes it). */
async function withPrf(use: (prf: Uint8Array) => Promise<void>): Promise<void> {
  const rec = await store.lockRecord();
  if (!rec) return;
  const prf = await passkey.evaluate(rec.credentialId, rec.prfSalt);
  try {
    await use(prf);
  } finally {
    prf.fill(0);
  }
}

/** Asks the passkey and opens the lock. */
export async function unlock(): Promise<void> {
  await withPrf(store.unlockWith);
  idle.touch();
}

/** Asks the passkey again, then stores the keys as without the lock. */
export const remove = () => withPrf(store.removeLock);

// ---------------------------------------------------------------------------------------------
// The idle clock: no touch, key or typing for the lock's idle time (a hidden app gets none)
// locks again. Timers sleep in a hidden page, so coming back checks at once. Wall-clock time:
// a monotonic clock may stand still while the device sleeps (performance.now does on some
// systems).

export const idle = {
  last: Date.now(),
  /** Overrides the lock's minutes (tests). */
  overrideMs: null as number | null,
  onIdle: null as (() => void) | null,
  timer: null as ReturnType<typeof setInterval> | null,
  /** Work under way that must not be cut by the lock (a pairing until its host is stored). */
  busy: 0,
  touch() {
    this.last = Date.now();
  },
  /** Runs `f` with the idle lock held off; the time counts again from its end. */
  async hold<T>(f: () => Promise<T>): Promise<T> {
    this.busy++;
    try {
      return await f();
    } finally {
      this.busy--;
      this.touch();
    }
  },
  async check() {
    if (this.busy > 0) return;
    const rec = await store.lockRecord().catch(() => null);
    if (!rec || (await store.isLocked())) return;
    const limit = this.overrideMs ?? rec.idleMinutes * 60000;
    if (Date.now() - this.last >= limit) this.onIdle?.();
  },
  start(onIdle: () => void) {
    this.onIdle = onIdle;
    for (const ev of ['pointerdown', 'keydown', 'input', 'wheel']) document.addEventListener(ev, () => this.touch(), { capture: true, passive: true });
    this.timer ??= setInterval(() => void this.check(), 1000);
  },
};

// ---------------------------------------------------------------------------------------------
// Screens

/** A padlock drawn in the accent colour (no emoji font needed). */
function padlock(): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 48 48');
  svg.setAttribute('class', 'lock-icon');
  svg.setAttribute('aria-hidden', 'true');
  const shackle = document.createElementNS(ns, 'path');
  shackle.setAttribute('d', 'M15 21v-6a9 9 0 0 1 18 0v6');
  shackle.setAttribute('fill', 'none');
  shackle.setAttribute('stroke', 'currentColor');
  shackle.setAttribute('stroke-width', '4');
  const body = document.createElementNS(ns, 'rect');
  for (const [k, v] of [['x', '9'], ['y', '21'], ['width', '30'], ['height', '22'], ['rx', '5'], ['fill', 'currentColor']]) body.setAttribute(k, v);
  const hole = document.createElementNS(ns, 'circle');
  for (const [k, v] of [['cx', '24'], ['cy', '31'], ['r', '3'], ['fill', 'var(--bg)']]) hole.setAttribute(k, v);
  svg.append(shackle, body, hole);
  return svg;
}

/** The lock screen's content: what is locked, the unlock button, what went wrong. */
export function lockScreen(body: HTMLElement, onUnlocked: () => void, onErased: () => void) {
  const panel = h('section', 'lock-panel');
  panel.dataset.testid = 'lock-screen';
  const icon = padlock();
  const status = h('p', 'hint');
  status.dataset.testid = 'lock-status';
  status.setAttribute('role', 'status');
  const go = button('Unlock', () => {
    go.disabled = true;
    status.className = 'hint';
    status.textContent = 'Waiting for the passkey…';
    unlock()
      .then(onUnlocked)
      .catch((e: unknown) => {
        status.className = 'hint error';
        status.textContent = message(e);
        go.disabled = false;
      });
  }, 'btn primary');
  go.dataset.testid = 'unlock';
  const erase = button('Lost the passkey? Erase this app’s keys', () => {
    if (!confirm('Erase this device’s key and every pairing in this app? Hosts keep this phone in their device list until you revoke it there; pair again with `peer pair`.')) return;
    void store.eraseKeys().then(onErased);
  }, 'btn small danger');
  panel.append(
    icon,
    h('h2', 'lock-title', 'peer is locked'),
    h('p', 'hint', 'This device’s keys are sealed with a passkey. Unlock with Face ID, a fingerprint or the screen lock to reach your hosts.'),
    go,
    status,
    erase,
  );
  body.append(panel);
}

/** Why the lock cannot work here, once an authenticator turned out to have no PRF. */
let noPrf: string | null = null;

/** The settings section: lock with a passkey, the idle time, lock now, remove the lock. */
export async function settingsSection(toast: (text: string, cls?: string) => void, reshow: () => void, lockNow: () => void): Promise<HTMLElement> {
  const sec = h('section', 'settings-section');
  sec.dataset.testid = 'lock-settings';
  sec.append(h('h2', '', 'App lock'));
  const rec = await store.lockRecord();
  const idleSelect = h('select');
  idleSelect.setAttribute('aria-label', 'lock again after');
  idleSelect.dataset.testid = 'lock-idle';
  for (const m of IDLE_CHOICES) {
    const o = h('option', '', m === 1 ? '1 minute' : m === 60 ? '1 hour' : `${m} minutes`);
    o.value = String(m);
    idleSelect.append(o);
  }
  idleSelect.value = String(rec?.idleMinutes ?? IDLE_DEFAULT_MINUTES);
  const idleRow = h('label', 'field', 'Lock again after this long without a touch (or hidden):');
  idleRow.append(idleSelect);
  const status = h('p', 'hint');
  status.dataset.testid = 'lock-state';
  const fail = (e: unknown) => {
    status.className = 'hint error';
    status.setAttribute('role', 'alert');
    status.textContent = message(e);
  };
  if (rec) {
    idleSelect.addEventListener('change', () => void store.setIdleMinutes(Number(idleSelect.value)));
    status.textContent =
      'On: this device’s keys are sealed with a passkey; a copy of this browser’s data cannot reach your hosts without it. Hosts paired before the lock was on: pair them again to be sure, as the browser’s files and older backups may keep their keys for a while.';
    const actions = h('div', 'actions');
    const remove_ = button('Remove lock', () => {
      status.className = 'hint';
      status.textContent = 'Unlock once more to remove the lock…';
      remove()
        .then(() => {
          toast('Lock removed: the keys are stored as before.', 'info');
          reshow();
        })
        .catch(fail);
    }, 'btn danger');
    remove_.dataset.testid = 'lock-remove';
    actions.append(button('Lock now', lockNow), remove_);
    sec.append(status, idleRow, actions);
    return sec;
  }
  const ok = noPrf ? { ok: false as const, why: noPrf } : await passkey.support();
  if (!ok.ok) {
    status.textContent = `Unavailable: ${ok.why} The keys stay stored in this browser unencrypted.`;
    sec.append(status);
    return sec;
  }
  status.textContent = 'Off. Seal this device’s keys with a passkey, so that a copy of this browser’s data is useless and a lost phone still needs your face or finger.';
  const on = button('Lock with Face ID / fingerprint', () => {
    on.disabled = true;
    status.className = 'hint';
    status.textContent = 'Making a passkey…';
    enable(Number(idleSelect.value))
      .then(() => {
        toast('Locked: the keys are sealed with the passkey.', 'info');
        idle.touch();
        reshow();
      })
      .catch((e: unknown) => {
        if (e instanceof passkey.PasskeyError && e.kind === 'no-prf') {
          // Said once, plainly, and not offered again in this app run.
          noPrf = 'this device’s authenticator has no passkey PRF, which the lock needs.';
          status.className = 'hint';
          status.textContent = e.message;
          idleRow.remove();
          on.remove();
          return;
        }
        fail(e);
        on.disabled = false;
      });
  }, 'btn primary');
  on.dataset.testid = 'lock-enable';
  sec.append(status, idleRow, on);
  return sec;
}
