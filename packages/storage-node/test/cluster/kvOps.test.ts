import { type common, type nodepb, ringPosition } from '@omnidict/proto';
import { dataKey } from '../../src/index.js';
import { fullShard, sleep, TestCluster } from './testCluster.js';

const b = (s: string) => Buffer.from(s);
let c: TestCluster;
let shard: common.ShardDescriptor;

beforeAll(async () => {
  c = new TestCluster();
  for (const id of [1, 2, 3]) await c.startNode(id);
  shard = fullShard(1, [1, 2, 3]);
  await c.createShard(shard);
  await c.leaderOf(1);
});
afterAll(async () => {
  await c.close();
});

function header(stale = false): common.RequestHeader {
  return { shardId: 1, epoch: shard.epoch as common.Epoch, staleRead: stale, timeoutMs: 5000 };
}

async function onLeader(op: nodepb.NodeRequest['op']): Promise<nodepb.NodeResponse> {
  const leader = await c.leaderOf(1);
  return leader.kv.one({ header: header(), op });
}

describe('NodeKV over a 3-node cluster', () => {
  test('every KV op through the Execute stream', async () => {
    const put = await onLeader({ $case: 'put', value: { key: b('a'), value: b('1'), ttlMs: 0 } });
    expect(put.error).toBeUndefined();
    const modIndex = put.result?.$case === 'put' ? put.result.value.modIndex : 0;
    expect(modIndex).toBeGreaterThan(0);

    const get = await onLeader({ $case: 'get', value: { key: b('a'), stale: false } });
    expect(get.result).toEqual({
      $case: 'get',
      value: { found: true, kv: { key: b('a'), value: b('1'), modIndex, expireAtMs: 0 } },
    });
    expect((await onLeader({ $case: 'exists', value: { key: b('a'), stale: false } })).result).toEqual({
      $case: 'exists',
      value: { exists: true },
    });
    const upd = await onLeader({ $case: 'update', value: { key: b('a'), value: b('2'), ttlMs: 0, keepTtl: false } });
    expect(upd.result?.$case).toBe('update');
    const updMissing = await onLeader({
      $case: 'update',
      value: { key: b('zz'), value: b('2'), ttlMs: 0, keepTtl: false },
    });
    expect(updMissing.error?.code).toBe('NOT_FOUND');

    const cas = await onLeader({
      $case: 'cas',
      value: { key: b('a'), value: b('3'), ttlMs: 0, expected: { $case: 'expectedValue', value: b('2') } },
    });
    expect(cas.result).toMatchObject({ $case: 'cas', value: { swapped: true } });
    const casFail = await onLeader({
      $case: 'cas',
      value: { key: b('a'), value: b('4'), ttlMs: 0, expected: { $case: 'expectAbsent', value: true } },
    });
    expect(casFail.result).toMatchObject({ $case: 'cas', value: { swapped: false, current: { value: b('3') } } });

    expect((await onLeader({ $case: 'expire', value: { key: b('a'), ttlMs: 60_000 } })).result).toMatchObject({
      value: { applied: true },
    });
    const ttl = await onLeader({ $case: 'ttl', value: { key: b('a') } });
    const ttlMs = ttl.result?.$case === 'ttl' ? ttl.result.value.ttlMs : 0;
    expect(ttlMs).toBeGreaterThan(50_000);
    expect(ttlMs).toBeLessThanOrEqual(60_000);
    expect((await onLeader({ $case: 'persist', value: { key: b('a') } })).result).toMatchObject({
      value: { applied: true },
    });
    expect((await onLeader({ $case: 'ttl', value: { key: b('a') } })).result).toEqual({
      $case: 'ttl',
      value: { ttlMs: -1 },
    });

    const leader = await c.leaderOf(1);
    await leader.kv.batch(
      Array.from({ length: 30 }, (_, i) => ({
        header: header(),
        op: { $case: 'put' as const, value: { key: b(`scan:${i}`), value: b(`v${i}`), ttlMs: 0 } },
      })),
    );
    const scan = await onLeader({
      $case: 'scan',
      value: {
        pattern: 'scan:*',
        afterKey: Buffer.alloc(0),
        afterPos: 0,
        hasAfter: false,
        limit: 100,
        keysOnly: false,
      },
    });
    expect(scan.result?.$case === 'scan' && scan.result.value.kvs.length).toBe(30);

    const del = await onLeader({ $case: 'delete', value: { key: b('a') } });
    expect(del.result).toMatchObject({ $case: 'delete', value: { deleted: true } });
    const flush = await onLeader({ $case: 'deleteRange', value: {} });
    expect(flush.result).toEqual({ $case: 'deleteRange', value: { deleted: 30 } });
  });

  test('validation errors come back before anything is proposed', async () => {
    expect((await onLeader({ $case: 'put', value: { key: b(''), value: b('v'), ttlMs: 0 } })).error?.code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      (await onLeader({ $case: 'put', value: { key: b('k'), value: Buffer.alloc(1024 * 1024 + 1), ttlMs: 0 } })).error
        ?.code,
    ).toBe('TOO_LARGE');
  });

  test('a follower answers NOT_LEADER with a leader hint, and serves stale reads', async () => {
    const leader = await c.leaderOf(1);
    await leader.kv.one({ header: header(), op: { $case: 'put', value: { key: b('f'), value: b('x'), ttlMs: 0 } } });
    const follower = [...c.nodes.values()].find((n) => n !== leader);
    if (follower === undefined) throw new Error('no follower');
    const r = await follower.kv.one({ header: header(), op: { $case: 'get', value: { key: b('f'), stale: false } } });
    expect(r.error?.code).toBe('NOT_LEADER');
    expect(r.error?.leaderNodeId).toBe(leader.nodeId);
    // No PD here: the leader's SERVICE address is unknown, so the hint carries none (never the Raft one).
    expect(r.error?.leaderAddress).toBe('');
    follower.handle.store.learnServiceAddresses({ [leader.nodeId]: `127.0.0.1:${leader.handle.port}` });
    const again = await follower.kv.one({
      header: header(),
      op: { $case: 'put', value: { key: b('h'), value: b('2'), ttlMs: 0 } },
    });
    expect(again.error?.leaderAddress).toBe(`127.0.0.1:${leader.handle.port}`);
    // A stale read eventually sees the write on every replica.
    for (let i = 0; ; i++) {
      const s = await follower.kv.one({
        header: header(true),
        op: { $case: 'get', value: { key: b('f'), stale: true } },
      });
      if (s.result?.$case === 'get' && s.result.value.found) break;
      if (i > 100) throw new Error('follower never saw the write');
      await sleep(20);
    }
  });

  test('STALE_EPOCH for an old epoch, SHARD_NOT_FOUND for an unknown shard', async () => {
    const leader = await c.leaderOf(1);
    const stale = await leader.kv.one({
      header: { ...header(), epoch: { version: 0, confVer: 1 } },
      op: { $case: 'get', value: { key: b('f'), stale: false } },
    });
    expect(stale.error?.code).toBe('STALE_EPOCH');
    expect(stale.error?.currentShard?.id).toBe(1);
    const missing = await leader.kv.one({
      header: { ...header(), shardId: 99 },
      op: { $case: 'get', value: { key: b('f'), stale: false } },
    });
    expect(missing.error?.code).toBe('SHARD_NOT_FOUND');
  });

  test('a TTL is the same absolute expireAtMs on every replica, and the sweep removes the key everywhere', async () => {
    const leader = await c.leaderOf(1);
    await leader.kv.one({
      header: header(),
      op: { $case: 'put', value: { key: b('ttl'), value: b('x'), ttlMs: 400 } },
    });
    const seen = new Set<number>();
    for (const n of c.nodes.values()) {
      for (let i = 0; ; i++) {
        const s = await n.kv.one({ header: header(true), op: { $case: 'get', value: { key: b('ttl'), stale: true } } });
        if (s.result?.$case === 'get' && s.result.value.found) {
          seen.add(s.result.value.kv?.expireAtMs ?? 0);
          break;
        }
        if (i > 100) throw new Error(`node ${n.nodeId} never saw the key`);
        await sleep(10);
      }
    }
    expect(seen.size).toBe(1);
    await sleep(1200);
    // After expiry + sweep, the record is physically gone from every replica's LSM.
    const key = dataKey(ringPosition('ttl'), b('ttl'));
    for (const n of c.nodes.values()) {
      for (let i = 0; (await n.handle.store.engine.get(key)) !== undefined; i++) {
        if (i > 100) throw new Error(`node ${n.nodeId} never swept the key`);
        await sleep(20);
      }
    }
  });
});
