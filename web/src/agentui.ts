// Agent sessions on screen: rows for the host's sessions list, the "new agent session" form,
// and the chat view (transcript, approvals, prompt box, cancel, diff).
import { apply, lineDiff, newModel, pendingApprovals, STATE_LABEL, stateName, type AgentModel, type Item, type ToolContent } from './agent';
import { RequestError, type HostConn } from './conn';
import { button, h } from './dom';
import type { AgentDef, AgentSessionInfo, FileDiff, ModelServer } from './gen/protocol';
import { isLocal, modelChoices, placeText, privacyText, serverLines } from './machine';

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

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
  top.append(h('strong', '', `${s.agent} · ${s.branch}`), stateBadge(s.state, s.pending_approvals));
  const extra = (s.queued_prompts > 0 ? ` · ${s.queued_prompts} queued` : '') + (isLocal(s.model) ? ` · ${placeText(s.model)}` : '');
  main.append(top, h('small', '', `${s.repo}${extra}${s.detail ? ` · ${s.detail}` : ''}`));
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
  const repoField = h('label', 'field', 'Repository (absolute path on the host)');
  const repo = h('input');
  repo.name = 'repo';
  repo.placeholder = '/home/me/project';
  repo.required = true;
  repo.value = localStorage.getItem('peer.agentRepo') ?? '';
  repo.setAttribute('autocapitalize', 'off');
  repo.setAttribute('autocorrect', 'off');
  repo.spellcheck = false;
  repoField.append(repo);
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
        if (typeof r === 'object' && 'AgentSession' in r) onCreated(r.AgentSession);
      })
      .catch((err) => toast(errText(err)))
      .finally(() => (start.disabled = false));
  });
}

// ---------------------------------------------------------------------------------------------
// Chat

export interface AgentView {
  dispose(): void;
  model: AgentModel;
}

function diffView(lines: { op: string; text: string }[]): HTMLElement {
  const pre = h('pre', 'diff');
  for (const l of lines) {
    const cls = l.op === '+' ? 'add' : l.op === '-' ? 'del' : l.op === '@' ? 'hunk' : l.op === '' ? 'meta' : '';
    const span = h('span', cls, `${l.op === '@' ? '' : l.op}${l.text}\n`);
    pre.append(span);
  }
  return pre;
}

function patchView(patch: string): HTMLElement {
  return diffView(
    patch
      .replace(/\n$/, '')
      .split('\n')
      .map((line) => {
        const c = line[0];
        if (line.startsWith('@@')) return { op: '@', text: line };
        if ((c === '+' || c === '-') && !line.startsWith('+++') && !line.startsWith('---')) return { op: c, text: line.slice(1) };
        return line.startsWith(' ') ? { op: ' ', text: line.slice(1) } : { op: '', text: line };
      }),
  );
}

function toolContentView(c: ToolContent): HTMLElement {
  if (c.type === 'diff') {
    const box = h('div', 'tool-diff');
    box.append(h('div', 'diff-path', `${c.oldText === null ? 'new ' : ''}${c.path ?? ''}`), diffView(lineDiff(c.oldText ?? null, c.newText ?? '')));
    return box;
  }
  if (c.type === 'terminal') return h('div', 'hint', `terminal ${c.terminalId ?? ''}`);
  return h('pre', 'tool-out', c.text ?? '');
}

const json = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v, null, 2));

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
        b.append(h('div', 'who', `${it.by || 'you'}${it.queued ? ' · queued' : it.dropped ? ' · dropped (not sent)' : ''}`), h('div', 'text', it.text));
        if (it.queued || it.dropped) b.classList.add('queued');
        return b;
      }
      case 'agent': {
        const b = h('div', 'msg agent');
        b.dataset.testid = 'msg-agent';
        b.append(h('div', 'who', 'agent'), h('div', 'text', it.text));
        return b;
      }
      case 'thought':
        return details(`t${it.seq}`, h('span', 'dim', 'thinking…'), false, h('div', 'text thought', it.text));
      case 'tool': {
        const sum = h('span', 'tool-sum');
        sum.append(h('span', `status ${it.status}`, it.status.replace('_', ' ')), h('span', '', ` ${it.title || it.id}`));
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
          ul.append(h('li', e.status, `${mark} ${e.content}`));
        }
        const d = details(`p${it.seq}`, h('span', '', 'Plan'), true, ul);
        d.className = 'tool';
        return d;
      }
      case 'approval': {
        const card = h('div', it.resolved ? 'approval resolved' : 'approval');
        card.dataset.testid = 'approval';
        card.dataset.approval = String(it.approval);
        card.append(h('div', 'who', it.resolved ? 'approval' : '⚠ approval needed'), h('div', 'text', it.title));
        if (it.resolved) {
          const opt = it.options.find((o) => o.optionId === it.resolved?.optionId);
          const what = it.resolved.outcome === 'selected' ? (opt?.name ?? it.resolved.optionId ?? '') : 'cancelled';
          const r = h('div', 'answered', `${what} — answered by ${it.resolved.by || 'someone'}`);
          r.dataset.testid = 'answered';
          card.append(r);
        } else {
          const row = h('div', 'actions');
          const busy = answering.get(it.approval) === '';
          for (const o of it.options) {
            const cls = o.kind.startsWith('reject') ? 'btn danger' : o.kind === 'allow_once' ? 'btn primary' : 'btn';
            const b = button(o.name || o.optionId, () => answer(it.approval, o.optionId), cls);
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
        return h('div', `note ${it.level}`, it.text);
    }
  }

  // Elements are rebuilt only for items that changed since the last render.
  const cache = new WeakMap<Item, { sig: string; el: HTMLElement }>();
  function signature(it: Item): string {
    switch (it.kind) {
      case 'user':
        return `${it.text.length}${it.queued}${it.dropped === true}`;
      case 'agent':
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

  let frame = 0;
  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }
  function render() {
    frame = 0;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
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
    const wanted = focusApproval === null ? null : log.querySelector<HTMLElement>(`[data-approval="${focusApproval}"]`);
    if (wanted) {
      focusApproval = null;
      wanted.classList.add('focus');
      wanted.scrollIntoView({ block: 'center' });
    } else if (atBottom) log.scrollTop = log.scrollHeight;
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
      const files = d.files.map((f: FileDiff) => {
        const sum = h('span', '');
        sum.append(h('span', `status ${f.status}`, f.status), h('span', '', ` ${f.path}`));
        const det = details(`f${f.path}`, sum, d.files.length <= 3, patchView(f.patch));
        det.className = 'tool';
        det.dataset.testid = 'diff-file';
        return det;
      });
      sheet.replaceChildren(
        top,
        h('p', 'hint', `${d.branch} against ${d.base.slice(0, 10)} · ${d.files.length} file(s)`),
        ...(files.length ? files : [h('p', 'hint', 'No changes.')]),
      );
    } catch (e) {
      sheet.replaceChildren(top, h('p', 'hint error', errText(e)));
    }
  }

  schedule();
  return {
    model,
    dispose() {
      if (frame) cancelAnimationFrame(frame);
      conn.detachAgent(channel);
    },
  };
}
