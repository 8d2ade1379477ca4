import { checkLostWrites } from '../src/checker/lostWrites.js';
import { history } from './historyBuilder.js';

describe('lost acknowledged writes', () => {
  test('a final read that misses the last acknowledged write is a loss', () => {
    const h = history().put(1, 'a', [0, 1]).put(2, 'b', [2, 3]).get(3, 'a', [10, 11]);
    const report = checkLostWrites(h.ops);
    expect(report.checkedKeys).toBe(1);
    expect(report.lost).toHaveLength(1);
    expect(report.lost[0]?.lastAcknowledged?.id).toBe(1);
    expect(report.lost[0]?.text).toContain('final read returned "a"');
  });

  test('concurrent last writes may each be the final value', () => {
    const base = () => history().put(1, 'a', [0, 5]).put(2, 'b', [1, 6]);
    expect(checkLostWrites(base().get(3, 'a', [10, 11]).ops).lost).toEqual([]);
    expect(checkLostWrites(base().get(3, 'b', [10, 11]).ops).lost).toEqual([]);
    expect(checkLostWrites(base().get(3, null, [10, 11]).ops).lost).toHaveLength(1);
  });

  test('unknown writes may or may not explain the final value', () => {
    const base = () => history().put(1, 'a', [0, 1]).put(2, 'b', [2, null]);
    expect(checkLostWrites(base().get(3, 'a', [10, 11]).ops).lost).toEqual([]);
    expect(checkLostWrites(base().get(3, 'b', [10, 11]).ops).lost).toEqual([]);
    // A failed write cannot.
    const failed = history().put(1, 'a', [0, 1]).put(2, 'b', [2, 3], 'failed').get(3, 'b', [10, 11]);
    expect(checkLostWrites(failed.ops).lost).toHaveLength(1);
  });

  test('deletes, TTL expiry and failed CAS', () => {
    expect(checkLostWrites(history().put(1, 'a', [0, 1]).del(2, true, [2, 3]).get(3, null, [4, 5]).ops).lost).toEqual(
      [],
    );
    expect(checkLostWrites(history().putTtl(1, 'a', 10, [0, 1]).get(3, null, [100, 101]).ops).lost).toEqual([]);
    expect(checkLostWrites(history().putTtl(1, 'a', 1000, [0, 1]).get(3, null, [100, 101]).ops).lost).toHaveLength(1);
    const cas = history().put(1, 'a', [0, 1]).cas(2, 'z', 'b', false, [2, 3]).get(3, 'a', [4, 5]);
    expect(checkLostWrites(cas.ops).lost).toEqual([]);
  });

  test('a key without a quiet final read is reported, not judged', () => {
    const report = checkLostWrites(history().put(1, 'a', [0, 10]).get(3, 'zzz', [5, 6]).ops);
    expect(report).toEqual({ checkedKeys: 0, keysWithoutFinalRead: ['x'], lost: [] });
  });
});
