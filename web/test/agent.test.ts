import { describe, expect, it } from 'vitest';
import { apply, lineDiff, newModel, pendingApprovals, stateName, type AgentModel } from '../src/agent';
import type { AgentEvent, AgentEventKind, AgentState, ToolAction } from '../src/gen/protocol';

type Data = Record<string, unknown>;
const pascal = (s: string) => s.replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase()) as AgentState;

/** A typed event from the names and fields of docs/protocol.md §16.1 (for readable tests). */
function kind(name: string, d: Data): AgentEventKind {
  switch (name) {
    case 'update':
      return { update: { update: JSON.stringify(d) } };
    case 'permission':
      return {
        permission: {
          approval: d.approval as number,
          tool_call: JSON.stringify(d.toolCall),
          options: JSON.stringify(d.options),
          what: (d.what as ToolAction[] | undefined) ?? null,
        },
      };
    case 'permission_resolved':
      return {
        permission_resolved: {
          approval: d.approval as number,
          option_id: (d.optionId as string | null) ?? null,
          forwarded: null,
          by: d.by as string,
          device: (d.device as string | null) ?? null,
        },
      };
    case 'turn_end':
      return { turn_end: { stop_reason: d.stopReason as 'end_turn' } };
    case 'state':
      return { state: { state: pascal(d.state as string), detail: (d.detail as string | null) ?? null } };
    default:
      return { [name]: d } as unknown as AgentEventKind;
  }
}

/** Events as the host sends them: numbered from 0 without holes. */
function feed() {
  let seq = 0;
  const ev = (name: string, data: Data): AgentEvent => ({ session: 1, seq: seq++, at_ms: 0, event: kind(name, data) });
  const upd = (u: Data) => ev('update', u);
  const chunk = (kind: string, text: string) => upd({ sessionUpdate: kind, content: { type: 'text', text } });
  return { ev, upd, chunk };
}

function run(events: AgentEvent[]): AgentModel {
  const m = newModel(1);
  for (const e of events) apply(m, e);
  return m;
}

describe('agent transcript reducer', () => {
  it('merges agent message chunks into one bubble, and thoughts into another', () => {
    const { ev, chunk } = feed();
    const m = run([
      ev('prompt', { text: 'hi', by: 'phone', device: null, queued: false }),
      ev('turn_start', { text: 'hi' }),
      chunk('user_message_chunk', 'hi'),
      chunk('agent_thought_chunk', 'let me '),
      chunk('agent_thought_chunk', 'think'),
      chunk('agent_message_chunk', 'Hel'),
      chunk('agent_message_chunk', 'lo'),
      chunk('agent_message_chunk', '!'),
      ev('turn_end', { stopReason: 'end_turn' }),
      ev('prompt', { text: 'again', by: 'phone', device: null, queued: false }),
      ev('turn_start', { text: 'again' }),
      chunk('agent_message_chunk', 'second'),
    ]);
    expect(m.items.map((i) => i.kind)).toEqual(['user', 'thought', 'agent', 'user', 'agent']);
    expect(m.items[1]).toMatchObject({ kind: 'thought', text: 'let me think' });
    expect(m.items[2]).toMatchObject({ kind: 'agent', text: 'Hello!' });
    expect(m.items[4]).toMatchObject({ kind: 'agent', text: 'second' });
    expect(m.nextSeq).toBe(12);
  });

  it('replies of two turns never share a bubble; a queued prompt moves to where its turn starts', () => {
    // Regression: a chunk used to join the last agent bubble whatever its turn, and a prompt
    // queued during a turn stayed in the middle of that turn's reply.
    const { ev, chunk } = feed();
    const m = run([
      ev('prompt', { text: 'one', by: 'phone', device: null, queued: false }),
      ev('turn_start', { text: 'one' }),
      chunk('agent_message_chunk', 'first '),
      ev('prompt', { text: 'two', by: 'phone', device: null, queued: true }),
      chunk('agent_message_chunk', 'answer'),
      ev('turn_end', { stopReason: 'end_turn' }),
      ev('turn_start', { text: 'two' }),
      chunk('agent_message_chunk', 'second answer'),
      ev('turn_end', { stopReason: 'end_turn' }),
      // A turn whose prompt came without a queue, right after an agent bubble.
      ev('turn_start', { text: 'three' }),
      chunk('agent_message_chunk', 'third answer'),
    ]);
    expect(m.items.map((i) => `${i.kind}:${'text' in i ? i.text : ''}`)).toEqual([
      'user:one',
      'agent:first answer',
      'user:two',
      'agent:second answer',
      'agent:third answer',
    ]);
    expect(m.items[2]).toMatchObject({ queued: false });
  });

  it('while a prompt waits, the running turn goes on above it', () => {
    const { ev, chunk, upd } = feed();
    const m = run([
      ev('prompt', { text: 'one', by: 'phone', device: null, queued: false }),
      ev('turn_start', { text: 'one' }),
      ev('prompt', { text: 'two', by: 'laptop', device: null, queued: true }),
      chunk('agent_message_chunk', 'working'),
      upd({ sessionUpdate: 'tool_call', toolCallId: 't1', title: 'Read a.txt', kind: 'read', status: 'pending' }),
    ]);
    expect(m.items.map((i) => i.kind)).toEqual(['user', 'agent', 'tool', 'user']);
    expect(m.items[3]).toMatchObject({ text: 'two', queued: true });
  });

  it('closes the tool calls a turn left open when it ends', () => {
    const { ev, upd } = feed();
    const call = (id: string, status: string) => upd({ sessionUpdate: 'tool_call', toolCallId: id, title: id, status });
    const m = run([
      ev('turn_start', { text: 'go' }),
      call('ran', 'in_progress'),
      call('denied', 'pending'),
      ev('permission', {
        approval: 1,
        toolCall: { toolCallId: 'denied', title: 'rm -rf' },
        options: [
          { optionId: 'allow', name: 'Allow once', kind: 'allow_once' },
          { optionId: 'reject', name: 'Reject', kind: 'reject_once' },
        ],
      }),
      ev('permission_resolved', { approval: 1, optionId: 'reject', by: 'phone' }),
      call('done', 'completed'),
      ev('turn_end', { stopReason: 'end_turn' }),
      ev('turn_start', { text: 'again' }),
      call('stopped', 'pending'),
      ev('turn_end', { stopReason: 'cancelled' }),
    ]);
    const status = Object.fromEntries(m.items.flatMap((i) => (i.kind === 'tool' ? [[i.id, i.status]] : [])));
    expect(status).toEqual({ ran: 'completed', denied: 'rejected', done: 'completed', stopped: 'cancelled' });
  });

  it('keeps the slash commands, modes and options the agent offers', () => {
    const { ev, upd } = feed();
    const m = run([
      ev('started', {
        agent_session: 's',
        agent_info: null,
        load_session: false,
        modes: JSON.stringify({ currentModeId: 'code', availableModes: [{ id: 'code', name: 'Code' }, { id: 'plan', name: 'Plan', description: 'think first' }] }),
        config_options: JSON.stringify([
          { id: 'model', name: 'Model', category: 'model', type: 'select', currentValue: 'fast', options: [{ value: 'fast', name: 'Fast' }, { value: 'deep', name: 'Deep' }] },
          { id: 'grouped', name: 'Grouped', type: 'select', currentValue: 'a', options: [{ group: 'g', name: 'G', options: [{ value: 'a', name: 'A' }] }] },
          { id: 'flag', name: 'Flag', type: 'boolean', currentValue: true },
        ]),
      }),
      upd({ sessionUpdate: 'available_commands_update', availableCommands: [{ name: 'review', description: 'Review the changes' }, { name: 'test', description: 'Run tests', input: { hint: 'which tests' } }, { description: 'no name' }] }),
      upd({ sessionUpdate: 'current_mode_update', currentModeId: 'plan' }),
    ]);
    expect(m.commands).toEqual([
      { name: 'review', description: 'Review the changes', hint: null },
      { name: 'test', description: 'Run tests', hint: 'which tests' },
    ]);
    expect(m.choices.map((c) => [c.id, c.current, c.values.map((v) => v.value).join('|')])).toEqual([
      ['mode', 'plan', 'code|plan'],
      ['model', 'fast', 'fast|deep'],
      ['grouped', 'a', 'a'],
    ]);
    apply(m, upd({ sessionUpdate: 'config_option_update', configOptions: [{ id: 'model', name: 'Model', type: 'select', currentValue: 'deep', options: [{ value: 'deep', name: 'Deep' }] }] }));
    expect(m.choices.map((c) => `${c.id}=${c.current}`)).toEqual(['mode=plan', 'model=deep']);
    expect(m.items).toHaveLength(0);
  });

  it('a tool call id used again in a later turn is a new call', () => {
    const { ev, upd } = feed();
    const call = (status: string) => upd({ sessionUpdate: 'tool_call', toolCallId: 't-ask', title: 'cargo test', status });
    const m = run([
      ev('turn_start', { text: 'ask' }),
      call('pending'),
      call('in_progress'),
      ev('turn_end', { stopReason: 'end_turn' }),
      ev('turn_start', { text: 'ask' }),
      call('pending'),
      upd({ sessionUpdate: 'tool_call_update', toolCallId: 't-ask', status: 'completed' }),
    ]);
    // The first call was closed with its turn; the second is its own call.
    expect(m.items.map((i) => (i.kind === 'tool' ? i.status : i.kind))).toEqual(['completed', 'completed']);
  });

  it('a tool call between chunks starts a new bubble', () => {
    const { upd, chunk } = feed();
    const m = run([
      chunk('agent_message_chunk', 'a'),
      upd({ sessionUpdate: 'tool_call', toolCallId: 't1', title: 'Read', kind: 'read', status: 'pending' }),
      chunk('agent_message_chunk', 'b'),
    ]);
    expect(m.items.map((i) => i.kind)).toEqual(['agent', 'tool', 'agent']);
  });

  it('updates tool calls by id, keeping what an update leaves out', () => {
    const { upd } = feed();
    const m = run([
      upd({ sessionUpdate: 'tool_call', toolCallId: 't1', title: 'Edit a.txt', kind: 'edit', status: 'in_progress', rawInput: { p: 1 } }),
      upd({ sessionUpdate: 'tool_call', toolCallId: 't2', title: 'Run tests', kind: 'execute', status: 'pending' }),
      upd({
        sessionUpdate: 'tool_call_update',
        toolCallId: 't1',
        status: 'completed',
        content: [{ type: 'diff', path: 'a.txt', oldText: 'one', newText: 'two' }],
      }),
      upd({ sessionUpdate: 'tool_call_update', toolCallId: 't2', status: 'failed', content: [{ type: 'content', content: { type: 'text', text: 'boom' } }] }),
      upd({ sessionUpdate: 'tool_call_update', toolCallId: 'unknown', status: 'completed' }),
    ]);
    expect(m.items).toHaveLength(3);
    expect(m.items[0]).toMatchObject({
      kind: 'tool',
      id: 't1',
      title: 'Edit a.txt',
      toolKind: 'edit',
      status: 'completed',
      rawInput: { p: 1 },
      content: [{ type: 'diff', path: 'a.txt', oldText: 'one', newText: 'two' }],
    });
    expect(m.items[1]).toMatchObject({ id: 't2', status: 'failed', content: [{ type: 'content', text: 'boom' }] });
    // An update for a call never announced still shows.
    expect(m.items[2]).toMatchObject({ kind: 'tool', id: 'unknown', status: 'completed' });
  });

  it('shows an approval until it is resolved, with who answered', () => {
    const { ev, upd } = feed();
    const events = [
      ev('state', { state: 'running', detail: null }),
      upd({ sessionUpdate: 'tool_call', toolCallId: 't-ask', title: 'cargo test', kind: 'execute', status: 'pending' }),
      ev('permission', {
        approval: 1,
        toolCall: { toolCallId: 't-ask', title: 'cargo test' },
        options: [
          { optionId: 'allow', name: 'Allow once', kind: 'allow_once' },
          { optionId: 'reject', name: 'Reject', kind: 'reject_once' },
        ],
      }),
      ev('state', { state: 'waiting_approval', detail: null }),
    ];
    const m = run(events);
    expect(m.state).toBe('waiting_approval');
    expect(pendingApprovals(m)).toBe(1);
    const card = m.items[1];
    expect(card).toMatchObject({ kind: 'approval', approval: 1, title: 'cargo test', resolved: null });
    if (card.kind !== 'approval') throw new Error('not an approval');
    expect(card.options.map((o) => o.optionId)).toEqual(['allow', 'reject']);
    apply(m, ev('permission_resolved', { approval: 1, outcome: 'selected', optionId: 'allow', by: 'laptop', device: 'ab' }));
    apply(m, ev('state', { state: 'running', detail: null }));
    expect(pendingApprovals(m)).toBe(0);
    expect(card.resolved).toEqual({ outcome: 'selected', optionId: 'allow', by: 'laptop', device: 'ab' });
    expect(m.state).toBe('running');
  });

  it("an approval carries the host's reading of what will run", () => {
    const { ev } = feed();
    const what: ToolAction[] = [
      { run: { command: 'cargo test', cwd: '/w/sub' } },
      { edit: { path: '/w/a.txt', diff: [{ same: 'one' }, { del: 'two' }, { add: '2' }, { cut: '… 3 more lines' }] } },
      { fetch: { url: 'https://example.com/x' } },
    ];
    const m = run([
      ev('permission', { approval: 1, toolCall: { title: 'execute', kind: 'execute' }, options: [], what }),
      ev('permission', { approval: 2, toolCall: { title: 'old host' }, options: [] }),
    ]);
    expect(m.items[0]).toMatchObject({ kind: 'approval', approval: 1, what });
    expect(m.items[1]).toMatchObject({ kind: 'approval', approval: 2, what: null });
  });

  it('a catch-up overlapping what was seen adds nothing twice', () => {
    const { ev, chunk } = feed();
    const events = [
      ev('prompt', { text: 'hi', by: 'phone', device: null, queued: false }),
      ev('turn_start', { text: 'hi' }),
      chunk('agent_message_chunk', 'one '),
      chunk('agent_message_chunk', 'two '),
      chunk('agent_message_chunk', 'three'),
      ev('turn_end', { stopReason: 'end_turn' }),
    ];
    const m = newModel(1);
    for (const e of events.slice(0, 4)) expect(apply(m, e)).toBe(true);
    // Reconnect: the host sends from the last seen seq again (and, worst case, from 0).
    for (const e of events.slice(2)) apply(m, e);
    for (const e of events) apply(m, e);
    expect(m.items).toHaveLength(2);
    expect(m.items[1]).toMatchObject({ kind: 'agent', text: 'one two three' });
    expect(m.nextSeq).toBe(6);
    expect(apply(m, events[3])).toBe(false);
    // The same model as one pass without a reconnect.
    expect(m).toEqual(run(events));
  });

  it('queued prompts are marked queued until their turn starts or the queue is dropped', () => {
    const { ev } = feed();
    const m = run([
      ev('prompt', { text: 'first', by: 'phone', device: null, queued: false }),
      ev('turn_start', { text: 'first' }),
      ev('prompt', { text: 'second', by: 'phone', device: null, queued: true }),
      ev('prompt', { text: 'third', by: 'laptop', device: null, queued: true }),
    ]);
    const [, second, third] = m.items;
    expect(second).toMatchObject({ text: 'second', queued: true });
    expect(third).toMatchObject({ text: 'third', queued: true, by: 'laptop' });
    apply(m, ev('turn_end', { stopReason: 'end_turn' }));
    apply(m, ev('turn_start', { text: 'second' }));
    expect(second).toMatchObject({ queued: false });
    expect(third).toMatchObject({ queued: true });
    apply(m, ev('cancel', { by: 'phone', device: null }));
    apply(m, ev('queue_cleared', { dropped: 1 }));
    expect(third).toMatchObject({ queued: false, dropped: true });
    expect(second).not.toHaveProperty('dropped');
    expect(m.items.at(-1)).toMatchObject({ kind: 'note', text: '1 queued prompt(s) dropped' });
  });

  it('records state, errors, plans and ignores unknown update kinds', () => {
    const { ev, upd } = feed();
    const m = run([
      upd({ sessionUpdate: 'plan', entries: [{ content: 'a', priority: 'high', status: 'pending' }] }),
      upd({ sessionUpdate: 'plan', entries: [{ content: 'a', priority: 'high', status: 'completed' }] }),
      upd({ sessionUpdate: 'some_future_kind', x: 1 }),
      // An event kind this app does not know cannot arrive: new kinds come with a new
      // protocol version (docs/protocol.md §16.1). `started` is one the chat does not show.
      ev('started', { agent_session: 's', agent_info: null, load_session: true, modes: null, config_options: null }),
      upd({ sessionUpdate: 'session_info_update', title: 'fixing' }),
      ev('error', { message: 'the agent exited with status 3' }),
      ev('turn_end', { stopReason: 'failed' }),
      ev('state', { state: 'failed', detail: 'the agent exited with status 3' }),
    ]);
    expect(m.items.map((i) => i.kind)).toEqual(['plan', 'note', 'note']);
    expect(m.items[0]).toMatchObject({ entries: [{ content: 'a', status: 'completed' }] });
    expect(m.items[1]).toMatchObject({ level: 'error', text: 'the agent exited with status 3' });
    expect(m.state).toBe('failed');
    expect(m.detail).toBe('the agent exited with status 3');
    expect(m.title).toBe('fixing');
    expect(m.nextSeq).toBe(8);
  });

  it('maps listing states to event names', () => {
    expect(stateName('WaitingApproval')).toBe('waiting_approval');
    expect(stateName('Idle')).toBe('idle');
    expect(stateName('interrupted')).toBe('interrupted');
  });
});

describe('lineDiff', () => {
  it('keeps common lines and marks changes', () => {
    expect(lineDiff('a\nb\nc\n', 'a\nB\nc\nd\n')).toEqual([
      { op: ' ', text: 'a' },
      { op: '-', text: 'b' },
      { op: '+', text: 'B' },
      { op: ' ', text: 'c' },
      { op: '+', text: 'd' },
    ]);
  });
  it('a new file is all added', () => {
    expect(lineDiff(null, 'x\ny')).toEqual([
      { op: '+', text: 'x' },
      { op: '+', text: 'y' },
    ]);
  });
  it('past the work limit, old removed then new added', () => {
    expect(lineDiff('a\nb', 'c\nd', 1)).toEqual([
      { op: '-', text: 'a' },
      { op: '-', text: 'b' },
      { op: '+', text: 'c' },
      { op: '+', text: 'd' },
    ]);
  });
});
