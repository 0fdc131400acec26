import { describe, expect, it } from 'vitest';
import { describeSession, shortDuration } from '../src/sessions';
import type { SessionInfo } from '../src/gen/protocol';

const base: SessionInfo = {
  id: 1,
  name: null,
  command: ['sh'],
  cwd: '/home/a',
  created_at_ms: 1,
  state: 'Running',
  size: { cols: 80, rows: 24 },
  attached: 0,
  output_end: 10,
  screen: { title: null, cwd: null, last_line: null, last_output_ms: 0, bells: 0, last_bell_ms: 0 },
  last_activity_ms: 1,
  ended_at_ms: null,
};

describe('session list', () => {
  it('says only the state, size and attachments when the screen knows nothing', () => {
    expect(describeSession(base, 1000)).toBe('running · 80×24 · 0 attached');
  });
  it('adds the title, directory, idle time, bells and last line', () => {
    const s: SessionInfo = {
      ...base,
      state: { Exited: { code: 3, signal: null } },
      screen: { title: 'vim', cwd: '/src', last_line: '$ make', last_output_ms: 1000, bells: 2, last_bell_ms: 900 },
    };
    expect(describeSession(s, 1000 + 125_000)).toBe('ended (exit 3) · 80×24 · 0 attached · vim · /src · idle 2m · 2 bells · “$ make”');
  });
  it('writes durations short', () => {
    expect([0, 59_999, 60_000, 3_600_000, 86_400_000 * 3].map(shortDuration)).toEqual(['0s', '59s', '1m', '1h', '3d']);
  });
});
