import { Inflights, Progress } from '../../src/core/progress.js';
import { ConfChangeType, decodeConfChange, encodeConfChange, MemoryStorage, RaftError } from '../../src/index.js';
import { enc, ent } from './network.js';

function filled(): MemoryStorage {
  const s = new MemoryStorage({ voters: [1, 2, 3] });
  s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3)]);
  return s;
}

describe('MemoryStorage', () => {
  test('initialState returns the bootstrap configuration and an empty hard state', () => {
    const s = new MemoryStorage({ voters: [1, 2], learners: [3] });
    expect(s.initialState()).toEqual({
      hardState: { term: 0, vote: 0, commit: 0 },
      confState: { voters: [1, 2], learners: [3] },
    });
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
  });

  test('append truncates a conflicting suffix', () => {
    const s = filled();
    s.append([ent(3, 4), ent(4, 4)]);
    expect(s.entries(1, 5, Infinity).map((e) => e.term)).toEqual([1, 1, 4, 4]);
    expect(s.lastIndex()).toBe(4);
  });

  test('append with a gap throws UNAVAILABLE', () => {
    const s = filled();
    expect(() => s.append([ent(8, 4)])).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }));
  });

  test('entries honours maxBytes but returns at least one entry', () => {
    const s = filled();
    expect(s.entries(1, 6, 0)).toHaveLength(1);
    expect(s.entries(1, 6, 40)).toHaveLength(2);
    expect(s.entries(2, 4, Infinity).map((e) => e.index)).toEqual([2, 3]);
  });

  test('compact discards entries and makes them COMPACTED; term of the compaction point survives', () => {
    const s = filled();
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    expect(() => s.entries(3, 5, Infinity)).toThrow(expect.objectContaining({ code: 'COMPACTED' }));
    expect(() => s.term(2)).toThrow(RaftError);
    expect(() => s.compact(2)).toThrow(expect.objectContaining({ code: 'COMPACTED' }));
  });

  test('createSnapshot then applySnapshot replaces the log', () => {
    const s = filled();
    const snap = s.createSnapshot(4, { voters: [1, 2], learners: [] }, enc('state'));
    expect(snap.metadata).toEqual({ index: 4, term: 2, confState: { voters: [1, 2], learners: [] } });
    const t = new MemoryStorage();
    t.append([ent(1, 1)]);
    t.applySnapshot(snap);
    expect(t.firstIndex()).toBe(5);
    expect(t.lastIndex()).toBe(4);
    expect(t.initialState().confState.voters).toEqual([1, 2]);
    expect(() => t.applySnapshot({ ...snap, metadata: { ...snap.metadata, index: 1 } })).toThrow(
      expect.objectContaining({ code: 'SNAPSHOT_OUT_OF_DATE' }),
    );
  });

  test('setHardState is reflected by the hardState getter and initialState', () => {
    const s = new MemoryStorage();
    s.setHardState({ term: 3, vote: 2, commit: 1 });
    expect(s.hardState).toEqual({ term: 3, vote: 2, commit: 1 });
    expect(s.initialState().hardState).toEqual({ term: 3, vote: 2, commit: 1 });
  });
});

describe('ConfChange codec', () => {
  test('round-trips every type, large ids and a context', () => {
    for (const cc of [
      { type: ConfChangeType.AddVoter, replicaId: 1 },
      { type: ConfChangeType.AddLearner, replicaId: 2 ** 40 + 7 },
      { type: ConfChangeType.RemoveNode, replicaId: 3, context: enc('addr:1') },
    ]) {
      expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    }
  });

  test('rejects malformed bytes', () => {
    expect(() => decodeConfChange(new Uint8Array([9, 9]))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    const ok = encodeConfChange({ type: ConfChangeType.AddVoter, replicaId: 1, context: enc('xy') });
    expect(() => decodeConfChange(ok.slice(0, ok.length - 1))).toThrow(RaftError);
  });
});

describe('Progress and Inflights', () => {
  test('inflights fill up, free up to an index, and free the first one', () => {
    const f = new Inflights(3);
    f.add(1);
    f.add(2);
    f.add(3);
    expect(f.full()).toBe(true);
    f.freeLE(2);
    expect(f.count).toBe(1);
    f.freeFirstOne();
    expect(f.count).toBe(0);
  });

  test('probe: maybeDecrTo ignores stale rejections and follows the hint', () => {
    const p = new Progress(10, 4, false);
    expect(p.maybeDecrTo(5, 5)).toBe(false); // stale: we did not send index 5
    expect(p.maybeDecrTo(9, 3)).toBe(true);
    expect(p.next).toBe(4);
  });

  test('replicate: a rejection rewinds next to match+1; acks free the window', () => {
    const p = new Progress(1, 2, false);
    p.maybeUpdate(5);
    p.becomeReplicate();
    p.sentEntries(7, 2);
    p.sentEntries(9, 2);
    expect(p.isPaused()).toBe(true);
    p.maybeUpdate(7);
    p.inflights.freeLE(7);
    expect(p.isPaused()).toBe(false);
    expect(p.maybeDecrTo(6, 6)).toBe(false);
    expect(p.maybeDecrTo(8, 0)).toBe(true);
    expect(p.next).toBe(8);
  });

  test('snapshot: paused until it becomes probe past the snapshot index', () => {
    const p = new Progress(1, 2, false);
    p.becomeSnapshot(20);
    expect(p.isPaused()).toBe(true);
    p.becomeProbe();
    expect(p.next).toBe(21);
    expect(p.isPaused()).toBe(false);
  });
});
