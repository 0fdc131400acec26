// An agent session's transcript as a view model: the host's events (docs/protocol.md section
// 16.1) folded into chat items. Pure (no DOM), so the reducer is unit-tested.
import type { AgentEvent, AgentSessionInfo, AgentState, StopReason } from './gen/protocol';

/** `running`, `waiting_approval`, … as in the `state` event. */
export type StateName = 'starting' | 'running' | 'waiting_approval' | 'idle' | 'done' | 'failed' | 'interrupted';

export const STATE_LABEL: Record<StateName, string> = {
  starting: 'starting',
  running: 'running',
  waiting_approval: 'needs approval',
  idle: 'idle',
  done: 'done',
  failed: 'failed',
  interrupted: 'interrupted',
};

/** `AgentState` of a listing ("WaitingApproval") to the event form ("waiting_approval"). */
export function stateName(s: AgentState | string): StateName {
  return s.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase() as StateName;
}

export interface ToolContent {
  type: string;
  /** `content`: its text (or `[image]` and the like). */
  text?: string;
  /** `diff`. */
  path?: string;
  oldText?: string | null;
  newText?: string;
  /** `terminal`. */
  terminalId?: string;
}

export interface ApprovalOption {
  optionId: string;
  name: string;
  kind: string;
}

export type Item =
  | { kind: 'user'; seq: number; text: string; by: string; queued: boolean; dropped?: boolean }
  | { kind: 'agent'; seq: number; text: string }
  | { kind: 'thought'; seq: number; text: string }
  | {
      kind: 'tool';
      seq: number;
      id: string;
      title: string;
      toolKind: string;
      status: string;
      content: ToolContent[];
      rawInput: unknown;
      rawOutput: unknown;
    }
  | { kind: 'plan'; seq: number; entries: { content: string; status: string; priority: string }[] }
  | {
      kind: 'approval';
      seq: number;
      approval: number;
      title: string;
      toolCallId: string;
      options: ApprovalOption[];
      resolved: { outcome: string; optionId: string | null; by: string; device: string | null } | null;
    }
  | { kind: 'note'; seq: number; text: string; level: 'info' | 'warning' | 'error' };

export interface AgentModel {
  session: number;
  /** The next sequence number to receive: events `0..nextSeq` are folded in. */
  nextSeq: number;
  state: StateName;
  detail: string | null;
  title: string | null;
  items: Item[];
  /** A turn runs (between `turn_start` and `turn_end`). */
  inTurn: boolean;
  /** Where the current turn's items start: a `tool_call` id reused in a later turn is a new call. */
  turnFrom: number;
}

export function newModel(session: number, info?: AgentSessionInfo): AgentModel {
  return {
    session,
    nextSeq: 0,
    state: info ? stateName(info.state) : 'starting',
    detail: info?.detail ?? null,
    title: null,
    items: [],
    inTurn: false,
    turnFrom: 0,
  };
}

type Json = Record<string, unknown>;
const str = (v: unknown, dflt = ''): string => (typeof v === 'string' ? v : dflt);

/** The text of an ACP `ContentBlock`. */
export function blockText(b: unknown): string {
  if (!b || typeof b !== 'object') return '';
  const o = b as Json;
  if (o.type === 'text') return str(o.text);
  if (o.type === 'resource_link') return `[${str(o.name, str(o.uri, 'link'))}]`;
  if (o.type === 'resource') {
    const r = (o.resource ?? {}) as Json;
    return typeof r.text === 'string' ? r.text : `[${str(r.uri, 'resource')}]`;
  }
  return `[${str(o.type, 'content')}]`;
}

function toolContent(list: unknown): ToolContent[] {
  if (!Array.isArray(list)) return [];
  return list.map((c: Json) => {
    if (c?.type === 'diff') {
      return {
        type: 'diff',
        path: str(c.path),
        oldText: typeof c.oldText === 'string' ? c.oldText : null,
        newText: str(c.newText),
      };
    }
    if (c?.type === 'terminal') return { type: 'terminal', terminalId: str(c.terminalId) };
    return { type: str(c?.type, 'content'), text: blockText(c?.content) };
  });
}

function findTool(m: AgentModel, id: string, from = 0) {
  for (let i = m.items.length - 1; i >= from; i--) {
    const it = m.items[i];
    if (it.kind === 'tool' && it.id === id) return it;
  }
  return null;
}

function findApproval(m: AgentModel, approval: number) {
  for (let i = m.items.length - 1; i >= 0; i--) {
    const it = m.items[i];
    if (it.kind === 'approval' && it.approval === approval) return it;
  }
  return null;
}

/** Appends a chunk to the last item if it is the same kind of bubble, else starts one. */
function chunk(m: AgentModel, kind: 'agent' | 'thought', seq: number, text: string) {
  const last = m.items[m.items.length - 1];
  if (last && last.kind === kind) last.text += text;
  else m.items.push({ kind, seq, text });
}

function update(m: AgentModel, seq: number, u: Json) {
  switch (u.sessionUpdate) {
    case 'agent_message_chunk':
      chunk(m, 'agent', seq, blockText(u.content));
      break;
    case 'agent_thought_chunk':
      chunk(m, 'thought', seq, blockText(u.content));
      break;
    case 'user_message_chunk': {
      // Inside a turn this is the agent echoing the prompt the transcript already shows.
      if (m.inTurn) break;
      const last = m.items[m.items.length - 1];
      if (last && last.kind === 'user' && last.by === '') last.text += blockText(u.content);
      else m.items.push({ kind: 'user', seq, text: blockText(u.content), by: '', queued: false });
      break;
    }
    case 'tool_call': {
      const id = str(u.toolCallId);
      const existing = findTool(m, id, m.turnFrom);
      const t = existing ?? {
        kind: 'tool' as const,
        seq,
        id,
        title: '',
        toolKind: 'other',
        status: 'pending',
        content: [],
        rawInput: undefined,
        rawOutput: undefined,
      };
      t.title = str(u.title, t.title);
      t.toolKind = str(u.kind, t.toolKind);
      t.status = str(u.status, 'pending');
      if ('content' in u) t.content = toolContent(u.content);
      if ('rawInput' in u) t.rawInput = u.rawInput;
      if ('rawOutput' in u) t.rawOutput = u.rawOutput;
      if (!existing) m.items.push(t);
      break;
    }
    case 'tool_call_update': {
      const id = str(u.toolCallId);
      let t = findTool(m, id);
      if (!t) {
        t = { kind: 'tool', seq, id, title: id, toolKind: 'other', status: 'pending', content: [], rawInput: undefined, rawOutput: undefined };
        m.items.push(t);
      }
      if (typeof u.title === 'string') t.title = u.title;
      if (typeof u.kind === 'string') t.toolKind = u.kind;
      if (typeof u.status === 'string') t.status = u.status;
      if (Array.isArray(u.content)) t.content = toolContent(u.content);
      if ('rawInput' in u) t.rawInput = u.rawInput;
      if ('rawOutput' in u) t.rawOutput = u.rawOutput;
      break;
    }
    case 'plan': {
      const entries = Array.isArray(u.entries)
        ? u.entries.map((e: Json) => ({ content: str(e?.content), status: str(e?.status), priority: str(e?.priority) }))
        : [];
      // One plan, updated in place: the agent sends it whole each time.
      const last = m.items[m.items.length - 1];
      if (last && last.kind === 'plan') last.entries = entries;
      else m.items.push({ kind: 'plan', seq, entries });
      break;
    }
    case 'session_info_update':
      if (typeof u.title === 'string') m.title = u.title;
      break;
    default:
      // Commands, modes, options, usage and kinds ACP adds later are not shown in the chat.
      break;
  }
}

/** An ACP object carried as JSON text; `{}` if it does not parse. */
function parseJson(text: string | null): Json {
  if (text === null) return {};
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
  } catch {
    return {};
  }
}

function parseList(text: string): Json[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? (v as Json[]) : [];
  } catch {
    return [];
  }
}

/** A stop reason in words, and whether it is an error. */
function stopText(r: StopReason): { text: string; error: boolean } | null {
  if (r === 'end_turn') return null;
  if (typeof r === 'string') return { text: r.replace(/_/g, ' '), error: r === 'failed' };
  if ('interrupted' in r) return { text: `interrupted (${r.interrupted.reason})`, error: false };
  if ('error' in r) return { text: `error (${r.error.error})`, error: true };
  return { text: r.other.name.replace(/_/g, ' '), error: false };
}

const RESUMED: Record<string, string> = { load: 'session/load', resume: 'session/resume', new: 'session/new' };

/**
 * Folds one event into the model. Returns false (and changes nothing) for an event already
 * folded in: a catch-up after a reconnect may overlap what was seen.
 */
export function apply(m: AgentModel, ev: AgentEvent): boolean {
  if (ev.seq < m.nextSeq) return false;
  m.nextSeq = ev.seq + 1;
  const seq = ev.seq;
  const e = ev.event;
  if ('state' in e) {
    m.state = stateName(e.state.state);
    m.detail = e.state.detail;
  } else if ('prompt' in e) {
    m.items.push({ kind: 'user', seq, text: e.prompt.text, by: e.prompt.by, queued: e.prompt.queued });
  } else if ('turn_start' in e) {
    m.inTurn = true;
    m.turnFrom = m.items.length;
    // The oldest queued prompt with this text is now being answered.
    const text = e.turn_start.text;
    const q = m.items.find((it) => it.kind === 'user' && it.queued && it.text === text);
    if (q && q.kind === 'user') q.queued = false;
  } else if ('turn_end' in e) {
    m.inTurn = false;
    const r = stopText(e.turn_end.stop_reason);
    if (r) m.items.push({ kind: 'note', seq, text: `turn ended: ${r.text}`, level: r.error ? 'error' : 'info' });
  } else if ('update' in e) {
    update(m, seq, parseJson(e.update.update));
  } else if ('permission' in e) {
    const tc = parseJson(e.permission.tool_call);
    const toolCallId = str(tc.toolCallId);
    const title = str(tc.title) || findTool(m, toolCallId)?.title || 'a tool call';
    const options = parseList(e.permission.options).map((o) => ({
      optionId: str(o?.optionId),
      name: str(o?.name),
      kind: str(o?.kind),
    }));
    m.items.push({ kind: 'approval', seq, approval: e.permission.approval, title, toolCallId, options, resolved: null });
  } else if ('permission_resolved' in e) {
    const r = e.permission_resolved;
    const a = findApproval(m, r.approval);
    if (a) {
      a.resolved = {
        outcome: r.option_id === null ? 'cancelled' : 'selected',
        optionId: r.option_id,
        by: r.by,
        device: r.device,
      };
    }
  } else if ('cancel' in e) {
    m.items.push({ kind: 'note', seq, text: `cancelled by ${e.cancel.by || 'someone'}`, level: 'info' });
  } else if ('queue_cleared' in e) {
    for (const it of m.items) {
      if (it.kind === 'user' && it.queued) {
        it.queued = false;
        it.dropped = true;
      }
    }
    m.items.push({ kind: 'note', seq, text: `${e.queue_cleared.dropped} queued prompt(s) dropped`, level: 'info' });
  } else if ('error' in e) {
    m.items.push({ kind: 'note', seq, text: e.error.message || 'error', level: 'error' });
  } else if ('warning' in e) {
    m.items.push({ kind: 'note', seq, text: e.warning.message, level: 'warning' });
  } else if ('closed' in e) {
    m.items.push({ kind: 'note', seq, text: `closed by ${e.closed.by || 'someone'}`, level: 'info' });
  } else if ('resumed' in e) {
    const r = e.resumed;
    m.items.push({
      kind: 'note',
      seq,
      text: `host restarted; conversation resumed (${RESUMED[r.method]})${r.note ? `: ${r.note}` : ''}`,
      level: r.method === 'new' ? 'warning' : 'info',
    });
  } else if ('terminal' in e) {
    m.items.push({ kind: 'note', seq, text: `ran ${[e.terminal.command, ...e.terminal.args].join(' ')}`, level: 'info' });
  } else if ('terminal_refused' in e) {
    m.items.push({ kind: 'note', seq, text: `refused a command: ${e.terminal_refused.reason}`, level: 'warning' });
  } else if ('truncated' in e) {
    m.items.push({
      kind: 'note',
      seq,
      text: `(a ${e.truncated.kind} event of ${e.truncated.bytes} bytes is too big to show)`,
      level: 'warning',
    });
  }
  // `started` and kinds added later: nothing to show.
  return true;
}

/** Approvals still waiting for an answer. */
export function pendingApprovals(m: AgentModel): number {
  return m.items.filter((it) => it.kind === 'approval' && !it.resolved).length;
}

export type DiffLine = { op: ' ' | '-' | '+'; text: string };

/**
 * A line diff of two texts (longest common subsequence); past `limit` cells of work it shows
 * the old text removed and the new one added.
 */
export function lineDiff(oldText: string | null, newText: string, limit = 4_000_000): DiffLine[] {
  const a = oldText === null || oldText === '' ? [] : oldText.replace(/\n$/, '').split('\n');
  const b = newText === '' ? [] : newText.replace(/\n$/, '').split('\n');
  // Common head and tail first: most edits are small.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const out: DiffLine[] = a.slice(0, head).map((text) => ({ op: ' ', text }));
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  if (x.length * y.length > limit) {
    for (const text of x) out.push({ op: '-', text });
    for (const text of y) out.push({ op: '+', text });
  } else {
    const n = x.length;
    const w = y.length;
    const L = new Uint32Array((n + 1) * (w + 1));
    for (let i = n - 1; i >= 0; i--)
      for (let j = w - 1; j >= 0; j--)
        L[i * (w + 1) + j] = x[i] === y[j] ? L[(i + 1) * (w + 1) + j + 1] + 1 : Math.max(L[(i + 1) * (w + 1) + j], L[i * (w + 1) + j + 1]);
    let i = 0;
    let j = 0;
    while (i < n || j < w) {
      if (i < n && j < w && x[i] === y[j]) {
        out.push({ op: ' ', text: x[i] });
        i++;
        j++;
      } else if (j < w && (i === n || L[i * (w + 1) + j + 1] >= L[(i + 1) * (w + 1) + j])) {
        out.push({ op: '+', text: y[j++] });
      } else {
        out.push({ op: '-', text: x[i++] });
      }
    }
  }
  for (const text of a.slice(a.length - tail)) out.push({ op: ' ', text });
  return out;
}
