// Agent sessions on screen: rows for the host's sessions list, the "new agent session" form,
// and the chat view (transcript, approvals, prompt box, cancel, diff).
import { apply, lineDiff, newModel, pendingApprovals, STATE_LABEL, stateName, type AgentModel, type Item, type ToolContent } from './agent';
import { RequestError, type HostConn } from './conn';
import { button, h } from './dom';
import type { AgentDef, AgentSessionInfo, FileDiff, ModelServer } from './gen/protocol';
import { editDiff, parsePatch } from './diff';
import { diffBlock, diffCounts } from './diffview';
import { whatBlock } from './approvalview';
import { block, inline } from './visible';
import { isLocal, modelChoices, placeText, privacyText, serverLines } from './machine';

/** Statuses the styles know; anything else an agent sends gets no class of its own. */
const TOOL_STATUSES = ['pending', 'in_progress', 'completed', 'failed', 'rejected', 'cancelled'];
const PLAN_STATUSES = ['pending', 'in_progress', 'completed'];

/** `s` as a class name only when it is one of `known`: agent text never picks the page's styles. */
function cssWord(s: string, known: readonly string[]): string {
  return known.includes(s) ? s : 'other';
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The Markdown renderer (marked + DOMPurify), loaded with the first chat: terminals never need it. */
let markdown: typeof import('./markdown') | null = null;
let markdownLoading: Promise<void> | null = null;
function loadMarkdown(): Promise<void> {
  markdownLoading ??= import('./markdown').then((m) => {
    markdown = m;
  });
  return markdownLoading;
}

/** Transcripts seen so far, per host and session: reopening a chat catches up from there. */
const models = new Map<string, AgentModel>();

export function modelFor(hostId: string, session: number): AgentModel {
  const key = `${hostId}/${session}`;
  let m = models.get(key);
  if (!m) {
    m = newModel(session);
    models.set(key, m);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Sessions list

export function stateBadge(state: string, pending: number): HTMLElement {
  const name = stateName(state);
  if (pending > 0 || name === 'waiting_approval') {
    const b = h('span', 'badge approval', pending > 1 ? `needs approval (${pending})` : 'needs approval');
    b.dataset.testid = 'needs-approval';
    return b;
  }
  return h('span', `badge ${name}`, STATE_LABEL[name] ?? name);
}

export function agentRow(s: AgentSessionInfo, open: () => void): HTMLLIElement {
  const li = h('li', 'row');
  li.dataset.testid = 'agent-session';
  const main = h('button', 'row-main');
  main.type = 'button';
  const top = h('span', 'row-top');
  // Titled by its first prompt; agent and branch below.
  const title = h('strong', '', s.title ?? `${s.agent} · ${s.branch}`);
  title.dataset.testid = 'agent-title';
  top.append(title, stateBadge(s.state, s.pending_approvals));
  const extra = (s.queued_prompts > 0 ? ` · ${s.queued_prompts} queued` : '') + (isLocal(s.model) ? ` · ${placeText(s.model)}` : '');
  const who = s.title ? `${s.agent} · ${s.branch} · ` : '';
  main.append(top, h('small', '', `${who}${s.repo}${extra}${s.detail ? ` · ${s.detail}` : ''}`));
  main.addEventListener('click', open);
  li.append(main);
  return li;
}

// ---------------------------------------------------------------------------------------------
// New agent session

export async function newAgentForm(
  conn: HostConn,
  body: HTMLElement,
  onCreated: (s: AgentSessionInfo) => void,
  toast: (text: string) => void,
  hostId = '',
) {
  const form = h('form', 'form');
  form.dataset.testid = 'new-agent-form';
  const agentField = h('label', 'field', 'Agent');
  const select = h('select');
  select.name = 'agent';
  agentField.append(select);
  const loginHint = h('p', 'hint');
  const modelField = h('label', 'field', 'Model');
  const modelSelect = h('select');
  modelSelect.name = 'model';
  modelSelect.dataset.testid = 'model';
  modelField.append(modelSelect);
  const modelHint = h('p', 'hint');
  modelHint.dataset.testid = 'model-hint';
  const repoField = h('label', 'field', 'Repository (path on the host; ~ is your home there)');
  const repo = h('input');
  repo.name = 'repo';
  repo.placeholder = '~/src/project';
  repo.required = true;
  repo.value = localStorage.getItem('peer.agentRepo') ?? '';
  repo.setAttribute('autocapitalize', 'off');
  repo.setAttribute('autocorrect', 'off');
  repo.spellcheck = false;
  // The repositories used last on this host, a tap away; errors show here, not in a toast the
  // keyboard would hide.
  const recents = recentRepos(hostId);
  const recent = h('div', 'recent');
  recent.dataset.testid = 'recent-repos';
  for (const r of recents) {
    const b = h('button', 'btn', r);
    b.type = 'button';
    b.addEventListener('click', () => {
      repo.value = r;
      repoErr.hidden = true;
    });
    recent.append(b);
  }
  const repoErr = h('div', 'field-error');
  repoErr.dataset.testid = 'repo-error';
  repoErr.setAttribute('role', 'alert');
  repoErr.hidden = true;
  repoField.append(repo, repoErr);
  if (recents.length) repoField.append(h('span', 'hint', 'Recent:'), recent);
  repo.addEventListener('input', () => (repoErr.hidden = true));
  const baseField = h('label', 'field', 'Base branch, tag or commit (optional: HEAD)');
  const base = h('input');
  base.name = 'base';
  base.setAttribute('autocapitalize', 'off');
  base.spellcheck = false;
  baseField.append(base);
  const promptField = h('label', 'field', 'First prompt (optional)');
  const prompt = h('textarea');
  prompt.name = 'prompt';
  prompt.rows = 4;
  promptField.append(prompt);
  const start = h('button', 'btn primary', 'Start');
  start.type = 'submit';
  form.append(agentField, loginHint, modelField, modelHint, repoField, baseField, promptField, start);
  body.append(form);

  let agents: AgentDef[] = [];
  let servers: ModelServer[] = [];
  // The probe of the model servers takes up to a second; the agents come first.
  const probing = conn
    .request('ListModelServers')
    .then((r) => (typeof r === 'object' && 'ModelServers' in r ? r.ModelServers : []))
    .catch(() => [] as ModelServer[]);
  try {
    const r = await conn.request('ListAgents');
    if (typeof r === 'object' && 'Agents' in r) agents = r.Agents;
  } catch (e) {
    loginHint.textContent = `Cannot list the host's agents: ${errText(e)}`;
    loginHint.className = 'hint error';
  }
  if (agents.length === 0 && !loginHint.textContent) loginHint.textContent = 'The host knows no agents.';
  for (const a of agents) {
    const o = h('option', '', `${a.name}${!a.installed ? ' — not installed' : a.needs_login ? ' — needs login' : ''}`);
    o.value = a.name;
    o.disabled = !a.installed;
    select.append(o);
  }
  const firstOk = agents.find((a) => a.installed);
  if (firstOk) select.value = firstOk.name;
  const showHint = () => {
    const a = agents.find((x) => x.name === select.value);
    if (!a) return;
    loginHint.className = 'hint';
    loginHint.textContent = a.needs_login
      ? `No login found for ${a.name} on the host. ${a.login_hint ?? ''}`
      : `${a.command.join(' ')}`;
  };
  const showModels = () => {
    const a = agents.find((x) => x.name === select.value);
    const keep = modelSelect.value;
    modelSelect.replaceChildren();
    for (const c of modelChoices(a, servers)) {
      const o = h('option', '', c.label);
      o.value = c.value;
      modelSelect.append(o);
    }
    if ([...modelSelect.options].some((o) => o.value === keep)) modelSelect.value = keep;
    const found = serverLines(servers);
    modelHint.textContent = privacyText(a, modelSelect.value, servers) + (a?.local_models && found.length ? ` Model servers: ${found.join('; ')}.` : '');
  };
  select.addEventListener('change', () => {
    showHint();
    showModels();
  });
  modelSelect.addEventListener('change', showModels);
  showHint();
  showModels();
  void probing.then((list) => {
    servers = list;
    showModels();
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const path = repo.value.trim();
    if (!path) return;
    start.disabled = true;
    localStorage.setItem('peer.agentRepo', path);
    repoErr.hidden = true;
    formErr.hidden = true;
    conn
      .request({
        NewAgentSession: {
          agent: select.value,
          repo: path,
          base: base.value.trim() || null,
          prompt: prompt.value.trim() || null,
          model: modelSelect.value || null,
        },
      })
      .then((r) => {
        if (typeof r === 'object' && 'AgentSession' in r) {
          rememberRepo(hostId, path);
          onCreated(r.AgentSession);
        }
      })
      .catch((err) => {
        // Next to the field it is about, and in view.
        const msg = errText(err);
        const target = /repositor|path|git|director|worktree|branch|base/i.test(msg) && !/prompt/i.test(msg) ? repoErr : formErr;
        target.textContent = msg;
        target.hidden = false;
        target.scrollIntoView({ block: 'center' });
      })
      .finally(() => (start.disabled = false));
  });
  const formErr = h('div', 'field-error');
  formErr.dataset.testid = 'form-error';
  formErr.setAttribute('role', 'alert');
  formErr.hidden = true;
  start.before(formErr);
  void toast;
}

const RECENT_KEY = 'peer.recentRepos';

/** Repositories started from on this host, newest first. */
export function recentRepos(hostId: string): string[] {
  try {
    const all = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '{}') as Record<string, unknown>;
    const list = all[hostId];
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string').slice(0, 6) : [];
  } catch {
    return [];
  }
}

function rememberRepo(hostId: string, path: string) {
  let all: Record<string, string[]> = {};
  try {
    all = JSON.parse(localStorage.getItem(RECENT_KEY) ?? '{}') as Record<string, string[]>;
  } catch {
    all = {};
  }
  all[hostId] = [path, ...recentRepos(hostId).filter((p) => p !== path)].slice(0, 6);
  localStorage.setItem(RECENT_KEY, JSON.stringify(all));
}

// ---------------------------------------------------------------------------------------------
// Chat

export interface AgentView {
  dispose(): void;
  model: AgentModel;
}

function toolContentView(c: ToolContent): HTMLElement {
  if (c.type === 'diff') {
    const box = h('div', 'tool-diff');
    const d = editDiff(lineDiff(c.oldText ?? null, c.newText ?? ''));
    const path = h('div', 'diff-path', `${c.oldText === null ? 'new ' : ''}${inline(c.path ?? '')} `);
    path.append(diffCounts(d));
    box.append(path, diffBlock(d));
    return box;
  }
  if (c.type === 'terminal') return h('div', 'hint', `terminal ${c.terminalId ?? ''}`);
  return h('pre', 'tool-out', block(c.text ?? ''));
}

// Agent text is shown as text: control characters visible (./visible.ts).
const json = (v: unknown) => block(typeof v === 'string' ? v : JSON.stringify(v, null, 2));

/**
 * Opens the chat of agent session `info` in `body`: attaches from the last event seen (0 the
 * first time) and follows it across reconnects.
 */
export function openAgentChat(
  conn: HostConn,
  hostId: string,
  info: AgentSessionInfo,
  body: HTMLElement,
  toast: (text: string, cls?: string) => void,
  /** Bring this approval's card into view once it is shown (from a tapped notification). */
  focusApproval: number | null = null,
  onTitle?: (title: string) => void,
): AgentView {
  const model = modelFor(hostId, info.id);
  if (model.nextSeq === 0) {
    model.state = stateName(info.state);
    model.detail = info.detail;
  }
  body.classList.add('chat-body');
  const tools = h('div', 'chat-tools');
  let stateEl = h('span', 'badge');
  const cancel = button('Cancel', () => {
    conn.request({ AgentCancel: { session: info.id } }).catch((e) => toast(errText(e)));
  }, 'btn small danger');
  const diffBtn = button('Diff', () => void showDiff(), 'btn small');
  const closeBtn = button('Close', () => {
    if (!confirm('Close this agent session? The agent stops; the worktree stays.')) return;
    conn.request({ AgentClose: { session: info.id, remove_worktree: false } }).catch((e) => toast(errText(e)));
  }, 'btn small');
  // Where the model runs, under the tools: a local one keeps prompts and code on the host.
  const where = h('div', isLocal(info.model) ? 'model-line local' : 'model-line', `Model: ${placeText(info.model)}`);
  where.dataset.testid = 'model-place';
  tools.append(stateEl, h('span', 'spacer'), diffBtn, cancel, closeBtn);
  const log = h('div', 'chat-log');
  log.dataset.testid = 'chat-log';
  const composer = h('form', 'composer');
  const input = h('textarea');
  input.rows = 1;
  input.placeholder = 'Prompt the agent…';
  input.dataset.testid = 'prompt';
  const send = h('button', 'btn primary', 'Send');
  send.type = 'submit';
  composer.append(input, send);
  const sheet = h('div', 'diff-sheet');
  sheet.hidden = true;
  body.append(tools, where, log, composer, sheet);
  // The agent's modes and options (model, …) as pickers under the tools; its slash commands
  // offered as you type `/`.
  const choices = h('div', 'chat-choices');
  choices.dataset.testid = 'agent-choices';
  choices.hidden = true;
  tools.after(choices);
  const slash = h('div', 'slash-menu');
  slash.dataset.testid = 'slash-menu';
  slash.hidden = true;
  composer.before(slash);
  let choicesSig = '';
  function renderChoices() {
    const sig = JSON.stringify(model.choices);
    if (sig === choicesSig) return;
    choicesSig = sig;
    choices.replaceChildren();
    choices.hidden = model.choices.length === 0;
    for (const c of model.choices) {
      const sel = h('select');
      sel.setAttribute('aria-label', c.name);
      sel.dataset.choice = c.id;
      for (const v of c.values) {
        const o = h('option', '', `${c.name}: ${v.name}`);
        o.value = v.value;
        if (v.description) o.title = v.description;
        sel.append(o);
      }
      sel.value = c.current;
      sel.addEventListener('change', () => {
        const req = c.id === 'mode' ? { AgentSetMode: { session: info.id, mode: sel.value } } : { AgentSetOption: { session: info.id, option: c.id, value: sel.value } };
        sel.disabled = true;
        conn
          .request(req)
          .then(() => {
            // The agent confirms with an update; until then show what was asked.
            c.current = sel.value;
          })
          .catch((e) => {
            toast(errText(e));
            sel.value = c.current;
          })
          .finally(() => (sel.disabled = false));
      });
      choices.append(sel);
    }
  }
  function renderSlash() {
    const v = input.value;
    const m = /^\/(\S*)$/.exec(v);
    const list = m ? model.commands.filter((c) => c.name.toLowerCase().startsWith(m[1].toLowerCase())) : [];
    slash.hidden = list.length === 0;
    slash.replaceChildren(
      ...list.map((c) => {
        const b = h('button', 'slash-item');
        b.type = 'button';
        b.dataset.testid = 'slash-item';
        b.append(h('b', '', `/${c.name}`), h('small', '', c.hint ? `${c.description} — ${c.hint}` : c.description));
        b.addEventListener('pointerdown', (e) => e.preventDefault());
        b.addEventListener('click', () => {
          input.value = `/${c.name} `;
          slash.hidden = true;
          input.focus();
        });
        return b;
      }),
    );
  }
  input.addEventListener('input', renderSlash);
  input.addEventListener('focus', renderSlash);
  input.addEventListener('blur', () => setTimeout(() => (slash.hidden = document.activeElement !== input || slash.hidden), 150));

  // <details> open or closed as the user left them, across re-renders.
  const opened = new Map<string, boolean>();
  const answering = new Map<number, string>();

  function details(key: string, summary: HTMLElement, dflt: boolean, ...content: HTMLElement[]): HTMLDetailsElement {
    const d = h('details');
    d.open = opened.get(key) ?? dflt;
    const s = h('summary');
    s.append(summary);
    d.append(s, ...content);
    d.addEventListener('toggle', () => opened.set(key, d.open));
    return d;
  }

  function answer(approval: number, option: string) {
    answering.set(approval, '');
    conn
      .request({ AgentAnswer: { session: info.id, approval, option } })
      .then(() => answering.delete(approval))
      .catch((e) => {
        const msg = e instanceof RequestError && e.code === 'Conflict' ? `Already answered: ${e.message}` : errText(e);
        answering.set(approval, msg);
        toast(msg);
      })
      .finally(schedule);
    schedule();
  }

  function itemView(it: Item): HTMLElement {
    switch (it.kind) {
      case 'user': {
        const b = h('div', 'msg user');
        b.dataset.testid = 'msg-user';
        b.append(h('div', 'who', `${inline(it.by || 'you')}${it.queued ? ' · queued' : it.dropped ? ' · dropped (not sent)' : ''}`), h('div', 'text', block(it.text)));
        if (it.queued || it.dropped) b.classList.add('queued');
        return b;
      }
      case 'agent': {
        const b = h('div', 'msg agent');
        b.dataset.testid = 'msg-agent';
        const text = h('div', 'text');
        if (markdown) markdown.renderMarkdown(text, block(it.text));
        else text.textContent = block(it.text);
        b.append(h('div', 'who', 'agent'), text);
        return b;
      }
      case 'thought':
        return details(`t${it.seq}`, h('span', 'dim', 'thinking…'), false, h('div', 'text thought', block(it.text)));
      case 'tool': {
        const sum = h('span', 'tool-sum');
        sum.append(h('span', `status ${cssWord(it.status, TOOL_STATUSES)}`, inline(it.status.replace('_', ' '))), h('span', '', ` ${inline(it.title || it.id)}`));
        const parts: HTMLElement[] = it.content.map(toolContentView);
        if (it.rawInput !== undefined && it.content.length === 0) parts.push(h('pre', 'tool-out', json(it.rawInput)));
        if (it.rawOutput !== undefined) parts.push(h('pre', 'tool-out', json(it.rawOutput)));
        const d = details(`c${it.id}`, sum, it.content.some((c) => c.type === 'diff'), ...parts);
        d.className = 'tool';
        d.dataset.testid = 'tool-call';
        return d;
      }
      case 'plan': {
        const ul = h('ul', 'plan');
        for (const e of it.entries) {
          const mark = e.status === 'completed' ? '✓' : e.status === 'in_progress' ? '▸' : '○';
          ul.append(h('li', cssWord(e.status, PLAN_STATUSES), `${mark} ${inline(e.content)}`));
        }
        const d = details(`p${it.seq}`, h('span', '', 'Plan'), true, ul);
        d.className = 'tool';
        return d;
      }
      case 'approval': {
        const card = h('div', it.resolved ? 'approval resolved' : 'approval');
        card.dataset.testid = 'approval';
        card.dataset.approval = String(it.approval);
        card.append(h('div', 'who', it.resolved ? 'approval' : '⚠ approval needed'), h('div', 'text', inline(it.title)));
        const what = whatBlock(it.what, info.worktree);
        if (what) card.append(what);
        if (it.resolved) {
          const opt = it.options.find((o) => o.optionId === it.resolved?.optionId);
          const what = it.resolved.outcome === 'selected' ? (opt?.name ?? it.resolved.optionId ?? '') : 'cancelled';
          const r = h('div', 'answered', inline(`${what} — answered by ${it.resolved.by || 'someone'}`));
          r.dataset.testid = 'answered';
          card.append(r);
        } else {
          const row = h('div', 'actions');
          const busy = answering.get(it.approval) === '';
          for (const o of it.options) {
            const cls = o.kind.startsWith('reject') ? 'btn danger' : o.kind === 'allow_once' ? 'btn primary' : 'btn';
            const b = button(inline(o.name || o.optionId), () => answer(it.approval, o.optionId), cls);
            b.disabled = busy;
            row.append(b);
          }
          card.append(row);
        }
        const err = answering.get(it.approval);
        if (err) card.append(h('div', 'error', err));
        return card;
      }
      case 'note':
        return h('div', `note ${it.level}`, block(it.text));
    }
  }

  // Elements are rebuilt only for items that changed since the last render.
  const cache = new WeakMap<Item, { sig: string; el: HTMLElement }>();
  function signature(it: Item): string {
    switch (it.kind) {
      case 'user':
        return `${it.text.length}${it.queued}${it.dropped === true}`;
      case 'agent':
        return `${it.text.length}${markdown !== null}`;
      case 'thought':
        return String(it.text.length);
      case 'tool':
        return `${it.status}${it.title}${JSON.stringify(it.content).length}${it.rawOutput === undefined}`;
      case 'plan':
        return JSON.stringify(it.entries);
      case 'approval':
        return `${JSON.stringify(it.resolved)}${answering.get(it.approval) ?? '-'}`;
      case 'note':
        return it.text;
    }
  }
  function elementFor(it: Item): HTMLElement {
    const sig = signature(it);
    const hit = cache.get(it);
    if (hit && hit.sig === sig) return hit.el;
    const el = itemView(it);
    cache.set(it, { sig, el });
    return el;
  }

  // Follow the newest message while the person is at the bottom (also across resizes: the
  // keyboard, a turned phone).
  let stick = true;
  log.addEventListener('scroll', () => (stick = log.scrollHeight - log.scrollTop - log.clientHeight < 80));
  const follow = new ResizeObserver(() => {
    if (stick) log.scrollTop = log.scrollHeight;
  });
  follow.observe(log);
  let titled = info.title !== null;

  let frame = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }
  function render() {
    frame = 0;
    const atBottom = stick || log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    const badge = stateBadge(model.state, pendingApprovals(model));
    badge.dataset.testid = 'agent-state';
    badge.title = model.detail ?? '';
    stateEl.replaceWith(badge);
    stateEl = badge;
    log.replaceChildren(...model.items.map(elementFor));
    if (model.items.length === 0) log.append(h('p', 'hint', model.nextSeq === 0 ? 'Loading…' : 'Nothing yet.'));
    const live = model.state === 'running' || model.state === 'waiting_approval';
    cancel.disabled = !live;
    const ended = model.state === 'done' || model.state === 'failed';
    input.disabled = ended;
    send.disabled = ended;
    closeBtn.disabled = model.state === 'done';
    renderChoices();
    input.placeholder = model.commands.length ? 'Prompt the agent… (/ for commands)' : 'Prompt the agent…';
    const wanted = focusApproval === null ? null : log.querySelector<HTMLElement>(`[data-approval="${focusApproval}"]`);
    if (wanted) {
      focusApproval = null;
      wanted.classList.add('focus');
      wanted.scrollIntoView({ block: 'center' });
    } else if (atBottom) log.scrollTop = log.scrollHeight;
    if (!titled && onTitle) {
      // A session opened before its first prompt was recorded: title it once the prompt is in.
      const first = model.items.find((it) => it.kind === 'user');
      const line = first?.kind === 'user' ? first.text.split('\n').map((l) => l.trim()).find((l) => l) : undefined;
      if (line) {
        titled = true;
        onTitle(line.length > 120 ? `${line.slice(0, 120)}…` : line);
      }
    }
  }

  const channel = conn.attachAgent(info.id, model.nextSeq, {
    attached: (a) => {
      if (model.nextSeq === 0) {
        model.state = stateName(a.info.state);
        model.detail = a.info.detail;
      }
      schedule();
    },
    event: (e) => {
      if (apply(model, e)) schedule();
    },
    error: (msg) => toast(msg),
  });

  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    send.disabled = true;
    conn
      .request({ AgentPrompt: { session: info.id, text } })
      .then(() => {
        input.value = '';
        input.rows = 1;
      })
      .catch((err) => toast(errText(err)))
      .finally(() => (send.disabled = false));
  });
  input.addEventListener('input', () => {
    input.rows = Math.min(6, Math.max(1, input.value.split('\n').length));
  });

  async function showDiff() {
    sheet.hidden = false;
    sheet.replaceChildren(h('p', 'hint', 'Loading the diff…'));
    const top = h('div', 'chat-tools');
    top.append(h('strong', '', 'Changes'), h('span', 'spacer'), button('Done', () => (sheet.hidden = true), 'btn small'));
    try {
      const r = await conn.request({ AgentDiff: { session: info.id } });
      if (typeof r !== 'object' || !('AgentDiff' in r)) throw new Error('unexpected answer');
      const d = r.AgentDiff;
      let added = 0;
      let removed = 0;
      const files = d.files.map((f: FileDiff) => {
        const parsed = parsePatch(f.patch);
        added += parsed.added;
        removed += parsed.removed;
        const sum = h('span', 'diff-sum');
        sum.append(h('span', `status ${f.status}`, f.status), h('span', 'diff-file-path', ` ${f.path} `), diffCounts(parsed));
        const det = details(`f${f.path}`, sum, d.files.length <= 3, diffBlock(parsed));
        det.className = 'tool';
        det.dataset.testid = 'diff-file';
        return det;
      });
      const head = h('p', 'hint', `${d.branch} against ${d.base.slice(0, 10)} · ${d.files.length} file${d.files.length === 1 ? '' : 's'} `);
      head.append(diffCounts({ added, removed, rows: [] }));
      sheet.replaceChildren(
        top,
        head,
        ...(files.length ? files : [h('p', 'hint', 'No changes.')]),
      );
    } catch (e) {
      sheet.replaceChildren(top, h('p', 'hint error', errText(e)));
    }
  }

  schedule();
  void loadMarkdown().then(schedule);
  return {
    model,
    dispose() {
      if (frame) cancelAnimationFrame(frame);
      follow.disconnect();
      conn.detachAgent(channel);
    },
  };
}
