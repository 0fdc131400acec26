// Rows of the host screen's terminal list: what runs, where, and when it last did something.
import { h } from './dom';
import type { SessionInfo } from './gen/protocol';
import { screenFacts } from './sessions';

/** "just now", "5 min ago", "3 h ago", "2 days ago". */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hrs = Math.round(m / 60);
  if (hrs < 24) return `${hrs} h ago`;
  const d = Math.round(hrs / 24);
  return `${d} day${d === 1 ? '' : 's'} ago`;
}

/** The program of a command line, without its directory. */
export function program(command: string[]): string {
  const p = command[0] ?? '';
  return p.slice(p.lastIndexOf('/') + 1) || 'shell';
}

export function sessionRow(s: SessionInfo, open: () => void, buttons: HTMLElement[]): HTMLLIElement {
  const li = h('li', 'row');
  li.dataset.testid = 'session';
  const main = h('button', 'row-main');
  main.type = 'button';
  const state = s.state === 'Running' ? 'running' : `ended (${s.state.Exited.signal ?? `exit ${s.state.Exited.code}`})`;
  const title = h('strong', '', s.name ?? program(s.command));
  title.dataset.testid = 'session-name';
  const cmd = s.command.join(' ');
  const where = h('span', 'sub mono', s.name ? `${cmd} · ${s.cwd}` : s.cwd);
  where.dataset.testid = 'session-where';
  const meta = h('small', '', `${state} · ${ago(s.last_activity_ms)} · ${s.size.cols}×${s.size.rows}${s.attached ? ` · ${s.attached} attached` : ''} · #${s.id}`);
  meta.dataset.testid = 'session-meta';
  main.append(title, where, meta);
  const facts = screenFacts(s, Date.now());
  if (facts) {
    const screen = h('small', 'sub', facts);
    screen.dataset.testid = 'session-screen';
    main.append(screen);
  }
  main.addEventListener('click', open);
  const actions = h('div', 'row-actions');
  actions.append(...buttons);
  li.append(main, actions);
  return li;
}
