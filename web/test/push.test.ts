import { describe, expect, it } from 'vitest';
import { parseTarget } from '../src/push';

const host = 'ab'.repeat(32);

describe('notification targets', () => {
  it('reads the session and approval a tap leads to', () => {
    expect(parseTarget(`?open=${host}/agent/3&approval=2`)).toEqual({ host, kind: 'agent', id: 3, approval: 2 });
    expect(parseTarget(`?open=${host}%2Fpty%2F12`)).toEqual({ host, kind: 'pty', id: 12, approval: null });
  });

  it('ignores anything else', () => {
    for (const bad of ['', '?open=', `?open=${host}/agent/x`, `?open=${host.slice(2)}/agent/1`, `?open=${host}/shell/1`, `?open=${host}/agent/1/x`]) {
      expect(parseTarget(bad)).toBeNull();
    }
    expect(parseTarget(`?open=${host}/agent/1&approval=-1`)?.approval).toBeNull();
  });
});
