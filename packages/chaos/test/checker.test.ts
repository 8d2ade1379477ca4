import type { CheckResult } from '../src/checker/linearizability.js';
import { checkLinearizability } from '../src/checker/linearizability.js';
import type { Operation } from '../src/history.js';
import { history } from './historyBuilder.js';

// Hand-written histories on one key ('x' unless stated). Windows are [invokeMs, completeMs]; null
// completion = unknown outcome. TTL tests use ttlSlackMs 0 so the expiry bounds are exact.

function check(ops: readonly Operation[], ttlSlackMs = 0): CheckResult {
  return checkLinearizability(ops, { ttlSlackMs });
}

function violation(ops: readonly Operation[], ttlSlackMs = 0): string {
  const result = check(ops, ttlSlackMs);
  expect(result.verdict).toBe('violation');
  const text = result.keys.find((k) => k.verdict === 'violation')?.explanation?.text;
  expect(text).toBeDefined();
  return text ?? '';
}

describe('register histories', () => {
  test('sequential writes and reads are linearizable', () => {
    const h = history()
      .get(1, null, [0, 1])
      .put(1, 'a', [2, 3])
      .get(2, 'a', [4, 5])
      .put(2, 'b', [6, 7])
      .get(1, 'b', [8, 9]);
    expect(check(h.ops).verdict).toBe('ok');
  });

  test('a stale read after an acknowledged write is a violation naming the read', () => {
    const h = history().put(1, 'a', [0, 1]).put(2, 'b', [2, 3]).get(3, 'a', [4, 5]);
    const text = violation(h.ops);
    expect(text).toContain('key "x": not linearizable');
    expect(text).toContain('get #2 returned "a"');
    expect(text).toContain('"b"');
    expect(text).toMatch(/> #2 c3 get\(\) → "a"/);
  });

  test('a read of a value never written is a violation', () => {
    const h = history().put(1, 'a', [0, 1]).get(2, 'zzz', [2, 3]);
    expect(violation(h.ops)).toContain('a value no operation on this key ever wrote');
  });

  test('two CAS from the same value cannot both swap (lost update)', () => {
    const h = history().put(1, 'a', [0, 1]).cas(2, 'a', 'b', true, [2, 5]).cas(3, 'a', 'c', true, [3, 6]);
    expect(violation(h.ops)).toMatch(/cas #\d expecting "a" swapped/);
  });

  test('concurrent CAS from the same value: one swaps, the other fails', () => {
    const h = history()
      .put(1, 'a', [0, 1])
      .cas(2, 'a', 'b', true, [2, 5])
      .cas(3, 'a', 'c', false, [3, 6])
      .get(1, 'b', [7, 8]);
    expect(check(h.ops).verdict).toBe('ok');
  });

  test('concurrent writes admit either order, but reads must agree on one', () => {
    const base = () => history().put(1, 'a', [0, 10]).put(2, 'b', [0, 10]);
    expect(check(base().get(3, 'a', [11, 12]).ops).verdict).toBe('ok');
    expect(check(base().get(3, 'b', [11, 12]).ops).verdict).toBe('ok');
    // A read during the writes may see nothing, either value, in any sequence consistent with one order.
    expect(check(base().get(3, null, [1, 2]).get(3, 'a', [3, 4]).get(3, 'b', [5, 6]).ops).verdict).toBe('ok');
    // After both complete, the value is fixed: a then b is impossible without a write in between.
    expect(violation(base().get(3, 'a', [11, 12]).get(4, 'b', [13, 14]).ops)).toContain('get #3 returned "b"');
    // Seeing b then a while they run means b was written first, so a is final.
    expect(violation(base().get(3, 'b', [2, 3]).get(3, 'a', [4, 5]).get(4, 'b', [11, 12]).ops)).toContain('get #4');
  });

  test('an unknown write may take effect late, or never, but not un-happen', () => {
    const base = () => history().put(1, 'a', [0, 1]).put(2, 'b', [2, null]);
    expect(check(base().get(3, 'b', [10, 11]).ops).verdict).toBe('ok');
    expect(check(base().get(3, 'a', [10, 11]).ops).verdict).toBe('ok');
    expect(check(base().get(3, 'a', [10, 11]).get(3, 'b', [1000, 1001]).ops).verdict).toBe('ok');
    expect(violation(base().get(3, 'b', [10, 11]).get(3, 'a', [12, 13]).ops)).toContain('get #3 returned "a"');
    // It cannot take effect before it was invoked.
    expect(violation(history().put(2, 'b', [5, null]).get(3, 'b', [0, 1]).ops)).toContain('get #1');
  });

  test('an unknown CAS may have swapped or not, depending on where it lands', () => {
    const base = () => history().put(1, 'a', [0, 1]).cas(2, 'a', 'b', false, [2, null]);
    expect(check(base().get(3, 'b', [10, 11]).ops).verdict).toBe('ok');
    expect(check(base().get(3, 'a', [10, 11]).ops).verdict).toBe('ok');
    // Landing after put(c) it cannot swap, so b can never appear.
    expect(violation(base().put(1, 'c', [3, 4]).get(3, 'c', [5, 6]).get(3, 'b', [7, 8]).ops)).toContain('get #4');
  });

  test('a failed write has no effect', () => {
    const h = history().put(1, 'a', [0, 1]).put(2, 'b', [2, 3], 'failed');
    expect(check(h.get(3, 'a', [4, 5]).ops).verdict).toBe('ok');
    expect(violation(history().put(2, 'b', [2, 3], 'failed').get(3, 'b', [4, 5]).ops)).toContain('get #1');
  });

  test('delete reports whether the key existed', () => {
    expect(check(history().put(1, 'a', [0, 1]).del(2, true, [2, 3]).get(1, null, [4, 5]).ops).verdict).toBe('ok');
    expect(check(history().del(2, false, [0, 1]).ops).verdict).toBe('ok');
    expect(violation(history().put(1, 'a', [0, 1]).del(2, false, [2, 3]).ops)).toContain('found the key absent');
    expect(violation(history().put(1, 'a', [0, 1]).del(2, true, [2, 3]).get(1, 'a', [4, 5]).ops)).toContain('get #2');
  });

  test('CAS from absent creates the key', () => {
    expect(check(history().cas(1, null, 'a', true, [0, 1]).get(2, 'a', [2, 3]).ops).verdict).toBe('ok');
    expect(violation(history().put(1, 'z', [0, 1]).cas(1, null, 'a', true, [2, 3]).ops)).toContain('cas #1');
  });

  test('keys are independent', () => {
    const h = history().onKey('x').put(1, 'a', [0, 1]).onKey('y').get(2, null, [2, 3]).onKey('x').get(2, 'a', [4, 5]);
    const result = check(h.ops);
    expect(result.verdict).toBe('ok');
    expect(result.keys.map((k) => k.key)).toEqual(['x', 'y']);
  });
});

describe('TTL writes racing expiry', () => {
  // put(a, ttl=100) in [0, 10]: the value expires at some E in [100, 110].
  const base = () => history().putTtl(1, 'a', 100, [0, 10]);

  test('before the earliest expiry the value must be present', () => {
    expect(check(base().get(2, 'a', [50, 60]).ops).verdict).toBe('ok');
    expect(violation(base().get(2, null, [50, 60]).ops)).toContain('get #1 returned absent');
  });

  test('inside the expiry window a read may see either', () => {
    expect(check(base().get(2, 'a', [105, 106]).ops).verdict).toBe('ok');
    expect(check(base().get(2, null, [105, 106]).ops).verdict).toBe('ok');
  });

  test('after the latest expiry the value must be absent', () => {
    expect(check(base().get(2, null, [111, 112]).ops).verdict).toBe('ok');
    expect(violation(base().get(2, 'a', [111, 112]).ops)).toContain('get #1 returned "a"');
  });

  test('clock slack widens the window', () => {
    expect(check(base().get(2, 'a', [111, 112]).ops, 5).verdict).toBe('ok');
    expect(check(base().get(2, null, [96, 97]).ops, 5).verdict).toBe('ok');
  });

  test('once seen expired, a value stays expired', () => {
    expect(violation(base().get(2, null, [104, 105]).get(2, 'a', [106, 107]).ops)).toContain('get #2');
  });

  test('expiry observations follow real-time order', () => {
    // Seen present at 108: a concurrent read may see it expired just after; an earlier one may not.
    expect(check(base().get(2, 'a', [108, 109]).get(3, null, [108.5, 110]).ops).verdict).toBe('ok');
    expect(check(base().get(2, 'a', [108, 109]).get(3, null, [100, 101]).ops).verdict).toBe('violation');
  });

  test('CAS and delete observe expiry too', () => {
    expect(check(base().cas(2, null, 'b', true, [105, 106]).ops).verdict).toBe('ok');
    expect(violation(base().cas(2, null, 'b', true, [50, 51]).ops)).toContain('cas #1');
    expect(check(base().del(2, false, [111, 112]).ops).verdict).toBe('ok');
    expect(violation(base().del(2, false, [20, 21]).ops)).toContain('delete #1');
  });

  test('a plain put clears the TTL', () => {
    expect(violation(base().put(2, 'b', [20, 21]).get(3, null, [200, 201]).ops)).toContain('get #2');
  });

  test('an unknown TTL write may expire arbitrarily late', () => {
    const h = history().putTtl(1, 'a', 100, [0, null]).get(2, 'a', [500, 501]).get(2, null, [600, 601]);
    expect(check(h.ops).verdict).toBe('ok');
  });
});

describe('search budget', () => {
  test('a search that exceeds its budget reports unknown, not ok', () => {
    // 12 concurrent writes then a read of a value nobody wrote: refuting it explores every subset.
    const h = history();
    for (let i = 0; i < 12; i++) h.put(i, `v${i}`, [0, 100]);
    h.get(99, 'nobody', [101, 102]);
    const result = checkLinearizability(h.ops, { timeBudgetMsPerKey: 0 });
    expect(result.verdict).toBe('unknown');
    expect(result.keys[0]?.reason).toMatch(/exceeded its budget of 0 ms/);
    // With time, the same history is refuted.
    expect(checkLinearizability(h.ops).verdict).toBe('violation');
  });
});
