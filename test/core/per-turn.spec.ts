import { describe, expect, it } from 'vitest';
import { perTurn } from '../../src/common/per-turn.js';

describe('perTurn (src/common/per-turn.ts)', () => {
  it('computes once per callback, afresh after it, and hands out a frozen array', async () => {
    let computed = 0;
    const list = perTurn(() => [String(++computed)]);
    const first = list();
    expect(list()).toBe(first);
    expect(computed).toBe(1);
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => (first as string[]).push('x')).toThrow(TypeError);
    await new Promise((resolve) => setImmediate(resolve));
    expect(list()).toEqual(['2']);
    expect(computed).toBe(2);
  });
});
