// Notifications on screen: the settings section (switch, kinds, what each host said) and the
// question asked after pairing ("tell me when an agent needs me?").
import type { HostConn } from './conn';
import { button, h } from './dom';
import type { NoticeKind, PushStatus } from './gen/protocol';
import * as push from './push';
import type { HostRecord } from './store';

export type ConnFor = (rec: HostRecord) => Promise<HostConn>;

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Registers with every host; one line per host says how it went. */
async function registerAll(hosts: HostRecord[], connFor: ConnFor, out: HTMLElement) {
  out.replaceChildren();
  for (const rec of hosts) {
    const line = h('li', 'hint', `${rec.name}: …`);
    line.dataset.testid = 'push-host';
    out.append(line);
    try {
      const conn = await connFor(rec);
      const st = await Promise.race([
        push.register(conn, true),
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error('not reachable now; it is asked again when you open it')), 10000)),
      ]);
      line.textContent = `${rec.name}: ${describe(st)}`;
    } catch (e) {
      line.textContent = `${rec.name}: ${errText(e)}`;
      line.classList.add('error');
    }
  }
}

export function describe(st: PushStatus | null): string {
  if (!st) return 'off';
  if (!st.registered) return st.last_error ? `not sending (${st.last_error})` : 'not sending';
  return st.last_error ? `on, but the last one failed: ${st.last_error}` : 'on';
}

/** The Notifications section of the settings screen. */
export async function settingsSection(body: HTMLElement, hosts: HostRecord[], connFor: ConnFor, toast: (t: string, cls?: string) => void) {
  const section = h('section', 'push');
  section.dataset.testid = 'push-settings';
  section.append(h('h2', '', 'Notifications'));
  body.append(section);
  const sup = push.support();
  if (!sup.ok) {
    section.append(h('p', 'hint', sup.why));
    if (sup.how) section.append(h('p', 'hint', sup.how));
    return;
  }
  const s = await push.saved();
  const label = h('label', 'switch');
  const sw = h('input');
  sw.type = 'checkbox';
  sw.checked = s.enabled;
  sw.dataset.testid = 'push-switch';
  label.append(sw, h('span', '', 'Tell me when an agent needs me'));
  section.append(
    label,
    h('p', 'hint', 'Each host encrypts its notifications to this phone; the browser’s push service carries them without being able to read them.'),
  );
  const kinds = h('fieldset', 'kinds');
  kinds.hidden = !s.enabled;
  for (const k of push.DEFAULT_KINDS) {
    const l = h('label', 'check');
    const c = h('input');
    c.type = 'checkbox';
    c.value = k;
    c.checked = s.kinds.includes(k);
    c.addEventListener('change', () => {
      const chosen = [...kinds.querySelectorAll('input')].filter((i) => i.checked).map((i) => i.value as NoticeKind);
      void Promise.all(hosts.map(connFor)).then((conns) => push.setKinds(conns, chosen));
    });
    l.append(c, h('span', '', push.KIND_LABELS[k]));
    kinds.append(l);
  }
  const status = h('ul', 'list');
  section.append(kinds, status);
  sw.addEventListener('change', () => {
    void (async () => {
      if (sw.checked) {
        try {
          await push.enable((await push.saved()).kinds);
        } catch (e) {
          sw.checked = false;
          toast(errText(e));
          return;
        }
        kinds.hidden = false;
        await registerAll(hosts, connFor, status);
      } else {
        kinds.hidden = true;
        status.replaceChildren();
        await push.disable(await Promise.all(hosts.map(connFor)));
        toast('Notifications are off.', 'info');
      }
    })();
  });
}

/**
 * After pairing: offer notifications, once, at the moment a person sees why they matter.
 * Nothing is shown when they are on already, blocked, or impossible here.
 */
export async function afterPairing(body: HTMLElement, conn: HostConn, hostName: string, toast: (t: string, cls?: string) => void) {
  if (!push.support().ok) return;
  if ((await push.saved()).enabled) {
    await push.register(conn, true).catch(() => null);
    return;
  }
  const card = h('section', 'card');
  card.dataset.testid = 'push-offer';
  card.append(
    h('strong', '', 'Tell me when an agent needs me'),
    h('p', 'hint', `A notification when an agent on ${hostName} waits for your approval or finishes, even with the app closed.`),
  );
  const actions = h('div', 'actions');
  actions.append(
    button('Turn on notifications', () => {
      void (async () => {
        try {
          await push.enable();
          const st = await push.register(conn, true);
          card.replaceChildren(h('p', 'hint', `Notifications from ${hostName}: ${describe(st)}.`));
        } catch (e) {
          toast(errText(e));
        }
      })();
    }, 'btn primary'),
    button('Not now', () => card.remove(), 'btn'),
  );
  card.append(actions);
  body.append(card);
}
