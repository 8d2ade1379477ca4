import { type OmniError, ringPosition } from '@omnidict/proto';
import { collectExpiredSweeps, EXPIRY_RANGE, type KvCommand, type KvResult, KvStateMachine } from '../../src/index.js';
import { b, Harness, shard } from '../helpers.js';

const NOW = 1_700_000_000_000;

const put = (key: string, value: string, expireAtMs = 0, nowMs = NOW): KvCommand => ({
  type: 'put',
  nowMs,
  key: b(key),
  value: b(value),
  expireAtMs,
});

function errorOf(r: KvResult | undefined): OmniError {
  if (r?.type !== 'error') throw new Error(`expected an error result, got ${JSON.stringify(r)}`);
  return r.error;
}

async function expiryIndex(h: Harness): Promise<number> {
  let n = 0;
  for await (const _ of h.reader.iterate(EXPIRY_RANGE)) n++;
  return n;
}

let h: Harness;
beforeEach(async () => {
  h = await Harness.open();
});
afterEach(async () => {
  await h.close();
});

describe('put / get / exists / delete', () => {
  test('put returns the Raft index as modIndex and get reads it back', async () => {
    expect(await h.apply1(put('k', 'v1'))).toEqual({ type: 'put', modIndex: 1 });
    expect(await h.sm.get(h.reader, b('k'), NOW)).toEqual({ key: b('k'), value: b('v1'), modIndex: 1, expireAtMs: 0 });
    expect(await h.apply1(put('k', 'v2'))).toEqual({ type: 'put', modIndex: 2 });
    expect((await h.sm.get(h.reader, b('k'), NOW))?.value).toEqual(b('v2'));
    expect(await h.sm.exists(h.reader, b('k'), NOW)).toBe(true);
    expect(await h.sm.get(h.reader, b('missing'), NOW)).toBeUndefined();
    expect(await h.sm.exists(h.reader, b('missing'), NOW)).toBe(false);
  });

  test('binary keys and empty values are kept exactly', async () => {
    const key = Buffer.of(0, 0xff, 0x10, 0);
    await h.apply1({ type: 'put', nowMs: NOW, key, value: Buffer.alloc(0), expireAtMs: 0 });
    expect(await h.sm.get(h.reader, key, NOW)).toEqual({ key, value: Buffer.alloc(0), modIndex: 1, expireAtMs: 0 });
  });

  test('delete reports whether a live key was removed', async () => {
    await h.apply1(put('k', 'v'));
    expect(await h.apply1({ type: 'delete', nowMs: NOW, key: b('k') })).toEqual({
      type: 'delete',
      deleted: true,
      modIndex: 2,
    });
    expect(await h.sm.get(h.reader, b('k'), NOW)).toBeUndefined();
    expect(await h.apply1({ type: 'delete', nowMs: NOW, key: b('k') })).toEqual({
      type: 'delete',
      deleted: false,
      modIndex: 0,
    });
    expect(await h.dump()).toEqual([]);
  });
});

describe('update', () => {
  test('fails NOT_FOUND for an absent key and writes nothing', async () => {
    const err = errorOf(
      await h.apply1({ type: 'update', nowMs: NOW, key: b('k'), value: b('v'), expireAtMs: 0, keepTtl: false }),
    );
    expect(err.code).toBe('NOT_FOUND');
    expect(await h.dump()).toEqual([]);
  });

  test('fails NOT_FOUND for a key that expired at the leader time of the command', async () => {
    await h.apply1(put('k', 'v', NOW + 10));
    const upd: KvCommand = {
      type: 'update',
      nowMs: NOW + 10,
      key: b('k'),
      value: b('w'),
      expireAtMs: 0,
      keepTtl: false,
    };
    expect(errorOf(await h.apply1(upd)).code).toBe('NOT_FOUND');
  });

  test('replaces the value; clears the TTL unless keepTtl', async () => {
    await h.apply1(put('k', 'v', NOW + 5000));
    expect(
      await h.apply1({ type: 'update', nowMs: NOW, key: b('k'), value: b('w'), expireAtMs: 0, keepTtl: true }),
    ).toEqual({ type: 'update', modIndex: 2 });
    expect(await h.sm.get(h.reader, b('k'), NOW)).toEqual({
      key: b('k'),
      value: b('w'),
      modIndex: 2,
      expireAtMs: NOW + 5000,
    });
    await h.apply1({ type: 'update', nowMs: NOW, key: b('k'), value: b('x'), expireAtMs: 0, keepTtl: false });
    expect(await h.sm.ttl(h.reader, b('k'), NOW)).toBe(-1);
    expect(await expiryIndex(h)).toBe(0);
    await h.apply1({ type: 'update', nowMs: NOW, key: b('k'), value: b('y'), expireAtMs: NOW + 7, keepTtl: false });
    expect(await h.sm.ttl(h.reader, b('k'), NOW)).toBe(7);
  });
});

describe('TTL semantics', () => {
  test('a key is live strictly before expireAtMs and absent from expireAtMs on', async () => {
    await h.apply1(put('k', 'v', NOW + 1000));
    expect(await h.sm.exists(h.reader, b('k'), NOW + 999)).toBe(true);
    expect(await h.sm.exists(h.reader, b('k'), NOW + 1000)).toBe(false);
    expect(await h.sm.get(h.reader, b('k'), NOW + 5000)).toBeUndefined();
  });

  test('ttl follows Redis: -2 absent, -1 no expiry, else ms left', async () => {
    expect(await h.sm.ttl(h.reader, b('k'), NOW)).toBe(-2);
    await h.apply1(put('k', 'v'));
    expect(await h.sm.ttl(h.reader, b('k'), NOW)).toBe(-1);
    await h.apply1(put('t', 'v', NOW + 1500));
    expect(await h.sm.ttl(h.reader, b('t'), NOW + 500)).toBe(1000);
    expect(await h.sm.ttl(h.reader, b('t'), NOW + 1500)).toBe(-2);
  });

  test('expire sets an expiry on a live key, moving its index entry', async () => {
    await h.apply1(put('k', 'v', NOW + 100));
    expect(await h.apply1({ type: 'expire', nowMs: NOW, key: b('k'), expireAtMs: NOW + 9000 })).toEqual({
      type: 'expire',
      applied: true,
      modIndex: 2,
    });
    expect(await h.sm.ttl(h.reader, b('k'), NOW)).toBe(9000);
    expect(await expiryIndex(h)).toBe(1);
    expect((await h.sm.get(h.reader, b('k'), NOW))?.value).toEqual(b('v'));
  });

  test('expire on an absent or expired key is not applied', async () => {
    expect(await h.apply1({ type: 'expire', nowMs: NOW, key: b('k'), expireAtMs: NOW + 1 })).toEqual({
      type: 'expire',
      applied: false,
      modIndex: 0,
    });
    await h.apply1(put('k', 'v', NOW + 1));
    expect(await h.apply1({ type: 'expire', nowMs: NOW + 1, key: b('k'), expireAtMs: NOW + 100 })).toMatchObject({
      applied: false,
    });
  });

  test('expire with a time already past deletes the key (Redis EXPIRE 0)', async () => {
    await h.apply1(put('k', 'v', NOW + 100));
    expect(await h.apply1({ type: 'expire', nowMs: NOW, key: b('k'), expireAtMs: NOW })).toMatchObject({
      applied: true,
    });
    expect(await h.dump()).toEqual([]);
  });

  test('persist removes an expiry; not applied without one', async () => {
    await h.apply1(put('k', 'v', NOW + 100));
    expect(await h.apply1({ type: 'persist', nowMs: NOW, key: b('k') })).toEqual({
      type: 'persist',
      applied: true,
      modIndex: 2,
    });
    expect(await h.sm.ttl(h.reader, b('k'), NOW + 1_000_000)).toBe(-1);
    expect(await expiryIndex(h)).toBe(0);
    expect(await h.apply1({ type: 'persist', nowMs: NOW, key: b('k') })).toEqual({
      type: 'persist',
      applied: false,
      modIndex: 0,
    });
    expect(await h.apply1({ type: 'persist', nowMs: NOW, key: b('absent') })).toMatchObject({ applied: false });
  });

  test('put over a key with a TTL replaces its expiry index entry', async () => {
    await h.apply1(put('k', 'v', NOW + 100));
    await h.apply1(put('k', 'v', NOW + 200));
    expect(await expiryIndex(h)).toBe(1);
    await h.apply1(put('k', 'v'));
    expect(await expiryIndex(h)).toBe(0);
  });

  test('deleting an expired key reports not-deleted but reclaims it', async () => {
    await h.apply1(put('k', 'v', NOW + 1));
    expect(await h.apply1({ type: 'delete', nowMs: NOW + 2, key: b('k') })).toMatchObject({ deleted: false });
    expect(await h.dump()).toEqual([]);
  });
});

describe('compare-and-swap', () => {
  const cas = (expected: Extract<KvCommand, { type: 'cas' }>['expected'], value: string, nowMs = NOW): KvCommand => ({
    type: 'cas',
    nowMs,
    key: b('k'),
    expected,
    value: b(value),
    expireAtMs: 0,
  });

  test('expect absent: swaps once, then fails and returns the current record', async () => {
    expect(await h.apply1(cas({ kind: 'absent' }, 'a'))).toEqual({ type: 'cas', swapped: true, modIndex: 1 });
    expect(await h.apply1(cas({ kind: 'absent' }, 'b'))).toEqual({
      type: 'cas',
      swapped: false,
      modIndex: 0,
      current: { key: b('k'), value: b('a'), modIndex: 1, expireAtMs: 0 },
    });
    expect((await h.sm.get(h.reader, b('k'), NOW))?.value).toEqual(b('a'));
  });

  test('expect absent succeeds over an expired record', async () => {
    await h.apply1(put('k', 'old', NOW + 5));
    expect(await h.apply1(cas({ kind: 'absent' }, 'new', NOW + 5))).toMatchObject({ swapped: true });
    expect(await h.sm.ttl(h.reader, b('k'), NOW + 10)).toBe(-1);
    expect(await expiryIndex(h)).toBe(0);
  });

  test('expected modIndex: only the current one swaps; 0 means absent (etcd)', async () => {
    expect(await h.apply1(cas({ kind: 'modIndex', modIndex: 0 }, 'a'))).toMatchObject({ swapped: true, modIndex: 1 });
    expect(await h.apply1(cas({ kind: 'modIndex', modIndex: 0 }, 'x'))).toMatchObject({ swapped: false });
    expect(await h.apply1(cas({ kind: 'modIndex', modIndex: 7 }, 'x'))).toMatchObject({
      swapped: false,
      current: { modIndex: 1 },
    });
    expect(await h.apply1(cas({ kind: 'modIndex', modIndex: 1 }, 'b'))).toEqual({
      type: 'cas',
      swapped: true,
      modIndex: 4,
    });
    expect((await h.sm.get(h.reader, b('k'), NOW))?.value).toEqual(b('b'));
  });

  test('expected value: compares bytes; fails without `current` on an absent key', async () => {
    expect(await h.apply1(cas({ kind: 'value', value: b('a') }, 'x'))).toEqual({
      type: 'cas',
      swapped: false,
      modIndex: 0,
    });
    await h.apply1(put('k', 'a'));
    expect(await h.apply1(cas({ kind: 'value', value: b('A') }, 'x'))).toMatchObject({ swapped: false });
    expect(await h.apply1(cas({ kind: 'value', value: b('a') }, 'x'))).toMatchObject({ swapped: true, modIndex: 4 });
    expect(await h.apply1(cas({ kind: 'value', value: b('') }, 'y'))).toMatchObject({ swapped: false });
  });

  test('a CAS can set a TTL', async () => {
    await h.apply1({
      type: 'cas',
      nowMs: NOW,
      key: b('k'),
      expected: { kind: 'absent' },
      value: b('v'),
      expireAtMs: NOW + 50,
    });
    expect(await h.sm.ttl(h.reader, b('k'), NOW)).toBe(50);
  });
});

describe('one apply batch', () => {
  test('commands in the same batch see each other before the batch is written', async () => {
    const results = await h.apply(
      put('k', 'a'),
      { type: 'update', nowMs: NOW, key: b('k'), value: b('b'), expireAtMs: 0, keepTtl: false },
      {
        type: 'cas',
        nowMs: NOW,
        key: b('k'),
        expected: { kind: 'modIndex', modIndex: 2 },
        value: b('c'),
        expireAtMs: NOW + 9,
      },
      { type: 'persist', nowMs: NOW, key: b('k') },
      { type: 'delete', nowMs: NOW, key: b('gone') },
      put('gone', 'x', NOW + 3),
      { type: 'delete', nowMs: NOW, key: b('gone') },
      { type: 'cas', nowMs: NOW, key: b('gone'), expected: { kind: 'absent' }, value: b('back'), expireAtMs: 0 },
    );
    expect(results.map((r) => (r.type === 'error' ? r.error.code : r.type))).toEqual([
      'put',
      'update',
      'cas',
      'persist',
      'delete',
      'put',
      'delete',
      'cas',
    ]);
    expect(results[2]).toMatchObject({ swapped: true, modIndex: 3 });
    expect(results[3]).toMatchObject({ applied: true });
    expect(results[4]).toMatchObject({ deleted: false });
    expect(results[6]).toMatchObject({ deleted: true });
    expect(results[7]).toMatchObject({ swapped: true });
    expect(await h.sm.get(h.reader, b('k'), NOW)).toEqual({ key: b('k'), value: b('c'), modIndex: 4, expireAtMs: 0 });
    expect((await h.sm.get(h.reader, b('gone'), NOW))?.value).toEqual(b('back'));
    expect(await expiryIndex(h)).toBe(0);
  });
});

describe('delete range (flush)', () => {
  test('deletes every record of the shard, counts them, and clears their expiry entries', async () => {
    for (let i = 0; i < 50; i++) await h.apply1(put(`k${i}`, 'v', i % 2 === 0 ? NOW + 1000 : 0));
    const [, , r] = await h.apply(
      put('late', 'v', NOW + 5),
      { type: 'delete', nowMs: NOW, key: b('k0') },
      { type: 'deleteRange', nowMs: NOW },
    );
    expect(r).toEqual({ type: 'deleteRange', deleted: 50, modIndex: 53 });
    expect(await h.dump()).toEqual([]);
  });

  test('only touches the shard range, leaving other shards data alone', async () => {
    const mid = 2 ** 31;
    const left = await Harness.open(shard(0, mid));
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
      const leftKeys = keys.filter((k) => ringPosition(k) < mid);
      const rightKeys = keys.filter((k) => ringPosition(k) >= mid);
      const right = new (await import('../../src/index.js')).KvStateMachine(shard(mid, 2 ** 32, 2));
      await left.apply(...leftKeys.map((k) => put(k, 'v', NOW + 100)));
      // Write the right shard's keys into the same DB through its own state machine.
      const { ApplyContext, chainedBatchWriter } = await import('../../src/index.js');
      const batch = left.db.batch();
      const ctx = new ApplyContext(left.reader, chainedBatchWriter(batch));
      for (const [i, k] of rightKeys.entries()) await right.apply(ctx, i + 1, put(k, 'r', NOW + 100));
      await batch.write();
      expect(await left.apply1({ type: 'deleteRange', nowMs: NOW })).toMatchObject({ deleted: leftKeys.length });
      for (const k of rightKeys) expect((await right.get(left.reader, b(k), NOW))?.value).toEqual(b('r'));
      expect(await expiryIndex(left)).toBe(rightKeys.length);
    } finally {
      await left.close();
    }
  });
});

describe('shard range', () => {
  test('single-key commands outside the range fail STALE_EPOCH with the descriptor; reads throw it', async () => {
    const mid = 2 ** 31;
    const s = await Harness.open(shard(0, mid));
    try {
      const outside = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].find((k) => ringPosition(k) >= mid) as string;
      const err = errorOf(await s.apply1(put(outside, 'v')));
      expect(err.code).toBe('STALE_EPOCH');
      expect(err.details.currentShard?.end).toBe(mid);
      expect(await s.dump()).toEqual([]);
      await expect(s.sm.get(s.reader, b(outside), NOW)).rejects.toMatchObject({ code: 'STALE_EPOCH' });
    } finally {
      await s.close();
    }
  });
});

describe('split', () => {
  test('shrinks the range, bumps both versions and maps replica ids in order', async () => {
    const r = await h.apply1({ type: 'split', nowMs: NOW, at: 1000, newShardId: 9, newReplicaIds: [21, 22, 23] });
    expect(r).toEqual({
      type: 'split',
      left: { ...shard(0, 1000), epoch: { version: 2, confVer: 1 } },
      right: {
        id: 9,
        start: 1000,
        end: 2 ** 32,
        epoch: { version: 2, confVer: 1 },
        replicas: [
          { replicaId: 21, nodeId: 1, role: 0 },
          { replicaId: 22, nodeId: 2, role: 0 },
          { replicaId: 23, nodeId: 3, role: 0 },
        ],
      },
    });
    expect(h.sm.descriptor.end).toBe(1000);
  });

  test('rejects a split point outside (start, end) and a wrong replica id count, deterministically', async () => {
    expect(
      errorOf(await h.apply1({ type: 'split', nowMs: NOW, at: 0, newShardId: 9, newReplicaIds: [1, 2, 3] })).code,
    ).toBe('INVALID_ARGUMENT');
    expect(
      errorOf(await h.apply1({ type: 'split', nowMs: NOW, at: 5, newShardId: 9, newReplicaIds: [1] })).message,
    ).toMatch(/needs 3 new replica ids/);
    expect(h.sm.descriptor.end).toBe(2 ** 32);
  });

  test('writes proposed before a split but applied after it fail STALE_EPOCH when their key moved', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `s${i}`);
    const at = 2 ** 31;
    const moved = keys.filter((k) => ringPosition(k) >= at);
    const [split, ...results] = await h.apply(
      { type: 'split', nowMs: NOW, at, newShardId: 9, newReplicaIds: [4, 5, 6] },
      ...keys.map((k) => put(k, 'v')),
    );
    expect(split?.type).toBe('split');
    expect(results.filter((r) => r.type === 'error').length).toBe(moved.length);
    expect(moved.length).toBeGreaterThan(0);
  });
});

describe('scan', () => {
  async function fill(n: number, ttlEvery = 0): Promise<string[]> {
    const keys = Array.from({ length: n }, (_, i) => `key:${String(i).padStart(4, '0')}`);
    await h.apply(...keys.map((k, i) => put(k, `v${i}`, ttlEvery > 0 && i % ttlEvery === 0 ? NOW + 1 : 0)));
    return keys;
  }

  test('pages through the whole range with the cursor, in (position, key) order, without duplicates', async () => {
    const keys = await fill(237);
    const seen: string[] = [];
    let after: { pos: number; key: Uint8Array } | undefined;
    let pages = 0;
    for (;;) {
      const page = await h.sm.scan(
        h.reader,
        { pattern: '', limit: 50, keysOnly: false, ...(after ? { after } : {}) },
        NOW,
      );
      pages++;
      page.kvs.forEach((kv, i) => {
        seen.push(kv.key.toString());
        expect(page.positions[i]).toBe(ringPosition(kv.key));
        expect(kv.value.toString()).toBe(`v${keys.indexOf(kv.key.toString())}`);
      });
      if (page.done) break;
      const last = page.kvs.length - 1;
      after = { pos: page.positions[last] as number, key: page.kvs[last]?.key as Buffer };
    }
    expect(pages).toBe(5);
    expect(new Set(seen).size).toBe(237);
    expect([...seen].sort()).toEqual([...keys].sort());
    const positions = seen.map((k) => ringPosition(k));
    expect(positions).toEqual([...positions].sort((x, y) => x - y));
  });

  test('reports done on the page that reaches the end exactly', async () => {
    await fill(10);
    const page = await h.sm.scan(h.reader, { pattern: '', limit: 10, keysOnly: false }, NOW);
    expect(page.kvs.length).toBe(10);
    expect(page.done).toBe(true);
    const page2 = await h.sm.scan(h.reader, { pattern: '', limit: 9, keysOnly: false }, NOW);
    expect(page2.done).toBe(false);
  });

  test('filters by glob, skips expired keys, and can omit values', async () => {
    await fill(100, 10);
    const page = await h.sm.scan(h.reader, { pattern: 'key:00[1-3]?', limit: 1000, keysOnly: true }, NOW + 1);
    const got = page.kvs.map((kv) => kv.key.toString()).sort();
    const expected = Array.from({ length: 30 }, (_, i) => `key:00${10 + i}`).filter((_, i) => (10 + i) % 10 !== 0);
    expect(got).toEqual(expected);
    expect(page.kvs.every((kv) => kv.value.length === 0 && kv.modIndex > 0)).toBe(true);
    expect(page.done).toBe(true);
  });

  test('only returns keys of the shard range, and a cursor before the range starts at its start', async () => {
    const mid = 2 ** 31;
    const s = await Harness.open(shard(mid, 2 ** 32));
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`).filter((k) => ringPosition(k) >= mid);
      await s.apply(...keys.map((k) => put(k, 'v')));
      const page = await s.sm.scan(
        s.reader,
        { pattern: '*', limit: 0, keysOnly: false, after: { pos: 5, key: b('x') } },
        NOW,
      );
      expect(page.kvs.length).toBe(keys.length);
      expect(page.done).toBe(true);
    } finally {
      await s.close();
    }
  });

  test('a bad pattern is INVALID_ARGUMENT', async () => {
    await expect(h.sm.scan(h.reader, { pattern: '[oops', limit: 10, keysOnly: false }, NOW)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('expire sweep', () => {
  test('collects only expired keys of the shard from the expiry index', async () => {
    await h.apply(put('a', 'v', NOW + 10), put('b', 'v', NOW + 20), put('c', 'v', NOW + 30), put('d', 'v'));
    expect(await h.sm.collectExpired(h.reader, NOW + 9)).toBeUndefined();
    const sweep = await h.sm.collectExpired(h.reader, NOW + 20);
    expect(sweep).toEqual({
      type: 'expireSweep',
      nowMs: NOW + 20,
      entries: [
        { key: b('a'), expireAtMs: NOW + 10 },
        { key: b('b'), expireAtMs: NOW + 20 },
      ],
    });
    expect((await h.sm.collectExpired(h.reader, NOW + 30, 1))?.type === 'expireSweep').toBe(true);
    const limited = await h.sm.collectExpired(h.reader, NOW + 30, 2);
    expect(limited?.type === 'expireSweep' && limited.entries.length).toBe(2);
  });

  test('applying deletes only keys that still carry the expiry the leader saw', async () => {
    await h.apply(put('a', 'v', NOW + 10), put('b', 'v', NOW + 10), put('c', 'v', NOW + 10));
    const sweep = (await h.sm.collectExpired(h.reader, NOW + 10)) as KvCommand;
    // Between collection and apply: b is rewritten without TTL, c gets a new TTL.
    await h.apply(put('b', 'new'), { type: 'expire', nowMs: NOW, key: b('c'), expireAtMs: NOW + 99 });
    expect(await h.apply1(sweep)).toEqual({ type: 'expireSweep', deleted: 1 });
    expect(await h.sm.get(h.reader, b('a'), 0)).toBeUndefined();
    expect((await h.sm.get(h.reader, b('b'), NOW + 1000))?.value).toEqual(b('new'));
    expect(await h.sm.ttl(h.reader, b('c'), NOW + 50)).toBe(49);
    expect(await expiryIndex(h)).toBe(1);
    // A second identical sweep (e.g. a retried proposal) deletes nothing.
    expect(await h.apply1(sweep)).toEqual({ type: 'expireSweep', deleted: 0 });
  });

  test('ignores other shards keys on collection and apply', async () => {
    const mid = 2 ** 31;
    const s = await Harness.open(shard(0, mid));
    try {
      const mine = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].filter((k) => ringPosition(k) < mid);
      await s.apply(...mine.map((k) => put(k, 'v', NOW + 1)));
      const other = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].find((k) => ringPosition(k) >= mid) as string;
      const sweep = (await s.sm.collectExpired(s.reader, NOW + 1)) as Extract<KvCommand, { type: 'expireSweep' }>;
      expect(sweep.entries.map((e) => e.key.toString()).sort()).toEqual([...mine].sort());
      const forged: KvCommand = { ...sweep, entries: [...sweep.entries, { key: b(other), expireAtMs: NOW + 1 }] };
      expect(await s.apply1(forged)).toEqual({ type: 'expireSweep', deleted: mine.length });
      expect(await s.dump()).toEqual([]);
    } finally {
      await s.close();
    }
  });
});

describe('node-wide sweep', () => {
  test('one pass splits the expired keys by shard, each up to the limit; shards with none are absent', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    await h.apply(...keys.map((k, i) => put(k, 'v', NOW + 1 + (i % 3))), put('live', 'v', NOW + 1000));
    const quarter = 2 ** 30;
    // Three of the ring's four quarters, listed out of order; the second quarter is led elsewhere.
    const machines = [3, 0, 2].map((q) => new KvStateMachine(shard(q * quarter, (q + 1) * quarter, 10 + q)));
    const sweeps = await collectExpiredSweeps(h.reader, NOW + 3, machines, 1000);
    const expected = new Map(machines.map((m) => [m, [] as string[]]));
    for (const k of keys) {
      const m = machines.find((x) => x.owns(ringPosition(k)));
      if (m !== undefined) expected.get(m)?.push(k);
    }
    for (const m of machines) {
      const cmd = sweeps.get(m);
      const got = cmd?.type === 'expireSweep' ? cmd.entries.map((e) => e.key.toString()).sort() : [];
      expect([m.descriptor.id, got]).toEqual([m.descriptor.id, [...(expected.get(m) ?? [])].sort()]);
    }
    expect(sweeps.size).toBe(machines.filter((m) => (expected.get(m) ?? []).length > 0).length);
    // A limit caps each shard separately.
    const capped = await collectExpiredSweeps(h.reader, NOW + 3, machines, 2);
    for (const cmd of capped.values()) expect(cmd.type === 'expireSweep' && cmd.entries.length).toBe(2);
    // Nothing expired yet: no commands.
    expect((await collectExpiredSweeps(h.reader, NOW, machines)).size).toBe(0);
  });
});

describe('determinism', () => {
  test('two replicas applying the same log end byte-identical', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 100000);
    // Printed so a failure can be rerun with SEED=...
    console.log(`determinism seed ${seed}`);
    let state = seed;
    const rand = (n: number) => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % n;
    };
    const log: KvCommand[] = [];
    for (let i = 0; i < 400; i++) {
      const key = b(`k${rand(30)}`);
      const nowMs = NOW + i * 10;
      switch (rand(8)) {
        case 0:
          log.push({ type: 'put', nowMs, key, value: b(`v${i}`), expireAtMs: rand(2) ? nowMs + rand(200) + 1 : 0 });
          break;
        case 1:
          log.push({ type: 'update', nowMs, key, value: b(`u${i}`), expireAtMs: 0, keepTtl: rand(2) === 0 });
          break;
        case 2:
          log.push({ type: 'delete', nowMs, key });
          break;
        case 3:
          log.push({ type: 'expire', nowMs, key, expireAtMs: nowMs + rand(100) });
          break;
        case 4:
          log.push({ type: 'persist', nowMs, key });
          break;
        case 5:
          log.push({
            type: 'cas',
            nowMs,
            key,
            expected: { kind: 'modIndex', modIndex: rand(i + 1) },
            value: b(`c${i}`),
            expireAtMs: 0,
          });
          break;
        case 6:
          log.push({ type: 'expireSweep', nowMs, entries: [{ key, expireAtMs: nowMs - rand(50) }] });
          break;
        default:
          log.push(
            rand(20) === 0
              ? { type: 'deleteRange', nowMs }
              : { type: 'put', nowMs, key, value: b(`p${i}`), expireAtMs: 0 },
          );
      }
    }
    const other = await Harness.open();
    try {
      // Same log, different batching: replica 1 one entry per batch, replica 2 in batches of 7.
      const r1: KvResult[] = [];
      for (const cmd of log) r1.push(await h.apply1(cmd));
      const r2: KvResult[] = [];
      for (let i = 0; i < log.length; i += 7) r2.push(...(await other.apply(...log.slice(i, i + 7))));
      expect(r2).toEqual(r1);
      expect(await other.dump()).toEqual(await h.dump());
      expect((await h.dump()).length).toBeGreaterThan(0);
    } finally {
      await other.close();
    }
  });
});

describe('stale expiry index entries', () => {
  test('a sweep drops an index entry whose record no longer carries that expiry', async () => {
    await h.apply1(put('k', 'v'));
    // An orphan entry, as a snapshot install over older data can leave behind.
    const { expiryKey } = await import('../../src/index.js');
    await h.db.put(expiryKey(NOW - 5, ringPosition('k'), b('k')), Buffer.alloc(0));
    const sweep = (await h.sm.collectExpired(h.reader, NOW)) as KvCommand;
    expect(await h.apply1(sweep)).toEqual({ type: 'expireSweep', deleted: 0 });
    expect(await h.sm.collectExpired(h.reader, NOW)).toBeUndefined();
    expect((await h.sm.get(h.reader, b('k'), NOW))?.value).toEqual(b('v'));
  });
});
