import { describe, expect, it } from 'vitest';
import { serializer } from '../src/serial';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('serializer', () => {
  it('runs tasks one at a time, in the order given, even when an earlier one waits longer', async () => {
    const run = serializer();
    const log: string[] = [];
    let inside = 0;
    const task = (name: string, waits: number) => async () => {
      inside++;
      expect(inside).toBe(1);
      log.push(`start ${name}`);
      for (let i = 0; i < waits; i++) await tick();
      log.push(`end ${name}`);
      inside--;
      return name;
    };
    const results = await Promise.all([run(task('a', 5)), run(task('b', 0)), run(task('c', 2))]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('a failing task rejects its own caller and does not stop the next', async () => {
    const run = serializer();
    const failed = run(async () => {
      await tick();
      throw new Error('boom');
    });
    const next = run(async () => 'after');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('after');
  });

  it('a read-modify-write under it loses no update (without it, the last writer wins)', async () => {
    let stored = 0;
    const bump = async () => {
      const v = stored;
      await tick();
      stored = v + 1;
    };
    await Promise.all([bump(), bump(), bump()]);
    expect(stored).toBe(1);
    stored = 0;
    const run = serializer();
    await Promise.all([run(bump), run(bump), run(bump)]);
    expect(stored).toBe(3);
  });
});
