// An agent session's transcript as a view model: the host's events (docs/protocol.md section
// 16.1) folded into chat items. Pure (no DOM), so the reducer is unit-tested.
import type { AgentEvent, AgentSessionInfo, AgentState, StopReason, ToolAction } from './gen/protocol';

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
      /** What the tool call will do, as the host read it (null: an event from an older host). */
      what: ToolAction[] | null;
      resolved: { outcome: string; optionId: string | null; by: string; device: string | null } | null;
    }
  | { kind: 'note'; seq: number; text: string; level: 'info' | 'warning' | 'error' };

/** A slash command the agent offers (ACP `available_commands_update`). */
export interface SlashCommand {
  name: string;
  description: string;
  /** What to type after it, if it takes input. */
  hint: string | null;
}

/** A choice the agent offers: its modes (ACP `SessionModeState`) or a select config option. */
export interface Choice {
  /** `mode` for the modes, else the config option's id (`model`, …). */
  id: string;
  name: string;
  category: string | null;
  current: string;
  values: { value: string; name: string; description: string | null }[];
}

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
  /**
   * Where the current turn's items start (after its prompt): a `tool_call` id reused in a later
   * turn is a new call, and a chunk never joins a bubble from before this point.
   */
  turnFrom: number;
  /** Slash commands the agent offers now. */
  commands: SlashCommand[];
  /** The agent's modes (id `mode`) and select config options (model, …), as it last said. */
  choices: Choice[];
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
    commands: [],
    choices: [],
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

/** How many items at the end are prompts still waiting for their turn. */
function queuedTail(m: AgentModel): number {
  let n = 0;
  for (let i = m.items.length - 1; i >= 0; i--) {
    const it = m.items[i];
    if (it.kind !== 'user' || !it.queued) break;
    n++;
  }
  return n;
}

/**
 * Adds an item of the running conversation: before the prompts that wait for their turn, which
 * stay last until their turn starts.
 */
function push(m: AgentModel, item: Item) {
  m.items.splice(m.items.length - queuedTail(m), 0, item);
}

/**
 * Appends a chunk to the last item (the queued prompts aside) if it is the same kind of bubble
 * of the same turn, else starts one.
 */
function chunk(m: AgentModel, kind: 'agent' | 'thought', seq: number, text: string) {
  const at = m.items.length - queuedTail(m) - 1;
  const last = m.items[at];
  if (last && last.kind === kind && at >= m.turnFrom) last.text += text;
  else push(m, { kind, seq, text });
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
      else push(m, { kind: 'user', seq, text: blockText(u.content), by: '', queued: false });
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
      if (!existing) push(m, t);
      break;
    }
    case 'tool_call_update': {
      const id = str(u.toolCallId);
      let t = findTool(m, id);
      if (!t) {
        t = { kind: 'tool', seq, id, title: id, toolKind: 'other', status: 'pending', content: [], rawInput: undefined, rawOutput: undefined };
        push(m, t);
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
      const last = m.items[m.items.length - queuedTail(m) - 1];
      if (last && last.kind === 'plan') last.entries = entries;
      else push(m, { kind: 'plan', seq, entries });
      break;
    }
    case 'session_info_update':
      if (typeof u.title === 'string') m.title = u.title;
      break;
    case 'available_commands_update':
      m.commands = commandList(u.availableCommands);
      break;
    case 'current_mode_update': {
      const mode = m.choices.find((c) => c.id === 'mode');
      if (mode) mode.current = str(u.currentModeId, mode.current);
      break;
    }
    case 'config_option_update':
      m.choices = [...m.choices.filter((c) => c.id === 'mode'), ...configChoices(u.configOptions)];
      break;
    default:
      // Commands, modes, options, usage and kinds ACP adds later are not shown in the chat.
      break;
  }
}

function commandList(list: unknown): SlashCommand[] {
  if (!Array.isArray(list)) return [];
  return list
    .filter((c: Json) => typeof c?.name === 'string' && c.name !== '')
    .map((c: Json) => {
      const input = c.input as Json | null | undefined;
      return { name: str(c.name), description: str(c.description), hint: input && typeof input.hint === 'string' ? input.hint : null };
    });
}

/** ACP `SessionModeState` as a choice. */
function modeChoice(v: unknown): Choice | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Json;
  const modes = Array.isArray(o.availableModes) ? (o.availableModes as Json[]) : [];
  if (modes.length === 0) return null;
  return {
    id: 'mode',
    name: 'Mode',
    category: 'mode',
    current: str(o.currentModeId),
    values: modes.map((x) => ({ value: str(x?.id), name: str(x?.name, str(x?.id)), description: typeof x?.description === 'string' ? x.description : null })),
  };
}

/** ACP `SessionConfigOption`s of type `select` as choices (options grouped or not). */
function configChoices(list: unknown): Choice[] {
  if (!Array.isArray(list)) return [];
  const out: Choice[] = [];
  for (const o of list as Json[]) {
    if (!o || o.type !== 'select' || typeof o.id !== 'string') continue;
    const raw = Array.isArray(o.options) ? (o.options as Json[]) : [];
    const flat = raw.flatMap((x) => (Array.isArray(x?.options) ? (x.options as Json[]) : [x]));
    const values = flat
      .filter((x) => typeof x?.value === 'string')
      .map((x) => ({ value: str(x.value), name: str(x.name, str(x.value)), description: typeof x.description === 'string' ? x.description : null }));
    if (values.length === 0) continue;
    out.push({ id: o.id, name: str(o.name, o.id), category: typeof o.category === 'string' ? o.category : null, current: str(o.currentValue), values });
  }
  return out;
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

function parseAny(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
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
    const item: Item = { kind: 'user', seq, text: e.prompt.text, by: e.prompt.by, queued: e.prompt.queued };
    // A queued prompt waits at the end until its turn starts.
    if (e.prompt.queued) m.items.push(item);
    else push(m, item);
  } else if ('turn_start' in e) {
    m.inTurn = true;
    // The oldest queued prompt with this text is now being answered: it moves to where its
    // turn starts (after everything the turn before it said).
    const text = e.turn_start.text;
    const at = m.items.findIndex((it) => it.kind === 'user' && it.queued && it.text === text);
    if (at >= 0) {
      const [q] = m.items.splice(at, 1);
      if (q.kind === 'user') q.queued = false;
      push(m, q);
    }
    m.turnFrom = m.items.length - queuedTail(m);
  } else if ('turn_end' in e) {
    m.inTurn = false;
    const reason = e.turn_end.stop_reason;
    closeTools(m, reason);
    const r = stopText(reason);
    if (r) push(m, { kind: 'note', seq, text: `turn ended: ${r.text}`, level: r.error ? 'error' : 'info' });
    // Whatever comes next (a replay, the next turn) starts its own bubbles.
    m.turnFrom = m.items.length - queuedTail(m);
  } else if ('started' in e) {
    const s = e.started;
    const mode = modeChoice(parseJson(s.modes));
    m.choices = [...(mode ? [mode] : []), ...configChoices(s.config_options === null ? [] : parseAny(s.config_options))];
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
    push(m, { kind: 'approval', seq, approval: e.permission.approval, title, toolCallId, options, what: e.permission.what, resolved: null });
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
    push(m, { kind: 'note', seq, text: `cancelled by ${e.cancel.by || 'someone'}`, level: 'info' });
  } else if ('queue_cleared' in e) {
    for (const it of m.items) {
      if (it.kind === 'user' && it.queued) {
        it.queued = false;
        it.dropped = true;
      }
    }
    push(m, { kind: 'note', seq, text: `${e.queue_cleared.dropped} queued prompt(s) dropped`, level: 'info' });
  } else if ('error' in e) {
    push(m, { kind: 'note', seq, text: e.error.message || 'error', level: 'error' });
  } else if ('warning' in e) {
    push(m, { kind: 'note', seq, text: e.warning.message, level: 'warning' });
  } else if ('closed' in e) {
    push(m, { kind: 'note', seq, text: `closed by ${e.closed.by || 'someone'}`, level: 'info' });
  } else if ('resumed' in e) {
    const r = e.resumed;
    push(m, {
      kind: 'note',
      seq,
      text: `host restarted; conversation resumed (${RESUMED[r.method]})${r.note ? `: ${r.note}` : ''}`,
      level: r.method === 'new' ? 'warning' : 'info',
    });
  } else if ('terminal' in e) {
    push(m, { kind: 'note', seq, text: `ran ${[e.terminal.command, ...e.terminal.args].join(' ')}`, level: 'info' });
  } else if ('terminal_refused' in e) {
    push(m, { kind: 'note', seq, text: `refused a command: ${e.terminal_refused.reason}`, level: 'warning' });
  } else if ('truncated' in e) {
    push(m, {
      kind: 'note',
      seq,
      text: `(a ${e.truncated.kind} event of ${e.truncated.bytes} bytes is too big to show)`,
      level: 'warning',
    });
  }
  // Kinds added later: nothing to show.
  return true;
}

/**
 * At the end of a turn no tool call of it is still running: one the agent left `pending` or
 * `in_progress` is closed as what became of it (rejected by its approval, cancelled or failed
 * with the turn, else completed).
 */
function closeTools(m: AgentModel, reason: StopReason) {
  const name = typeof reason === 'string' ? reason : Object.keys(reason)[0];
  for (let i = m.turnFrom; i < m.items.length; i++) {
    const t = m.items[i];
    if (t.kind !== 'tool' || (t.status !== 'pending' && t.status !== 'in_progress')) continue;
    const answer = m.items.find((a) => a.kind === 'approval' && a.toolCallId === t.id && a.resolved);
    let status = 'completed';
    if (answer && answer.kind === 'approval' && answer.resolved) {
      const opt = answer.options.find((o) => o.optionId === answer.resolved?.optionId);
      if (answer.resolved.outcome === 'cancelled') status = 'cancelled';
      else if (opt?.kind.startsWith('reject')) status = 'rejected';
    }
    if (status === 'completed' && (name === 'cancelled' || name === 'interrupted' || name === 'closed')) status = 'cancelled';
    if (status === 'completed' && (name === 'failed' || name === 'error')) status = 'failed';
    t.status = status;
  }
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
      } else if (i < n && (j === w || L[(i + 1) * (w + 1) + j] >= L[i * (w + 1) + j + 1])) {
        // Removed before added, as git shows a changed line.
        out.push({ op: '-', text: x[i++] });
      } else {
        out.push({ op: '+', text: y[j++] });
      }
    }
  }
  for (const text of a.slice(a.length - tail)) out.push({ op: ' ', text });
  return out;
}
