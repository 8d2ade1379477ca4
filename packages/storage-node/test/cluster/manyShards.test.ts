import { type common, type nodepb, ringPosition } from '@omnidict/proto';
import { TestCluster, type TestNode } from './testCluster.js';

/**
 * Issue 5, "200 shards per node": 3 in-process nodes, 200 shards each replicated on all 3 (600
 * replicas, 200 per node) over the real gRPC transport and LevelDB. Every shard elects a leader,
 * takes a write and serves it back through a linearizable read (ReadIndex on the leader).
 */
const SHARDS = 200;
const RING = 2 ** 32;

let c: TestCluster;
beforeAll(async () => {
  c = new TestCluster();
  // Default-ish Raft timing (50 ms ticks): 600 groups electing at once on 2 cores.
  for (const id of [1, 2, 3]) await c.startNode(id, undefined, { raft: { tickMs: 50 }, sweepIntervalMs: 0 });
});
afterAll(async () => {
  await c.close();
});

/** One key per shard: the first `k<n>` whose ring position falls in the shard's range. */
function keysFor(shards: common.ShardDescriptor[]): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let n = 0; out.size < shards.length; n++) {
    const key = Buffer.from(`k${n}`);
    const pos = ringPosition(key);
    const owner = shards.find((x) => pos >= x.start && pos < x.end);
    if (owner !== undefined && !out.has(owner.id)) out.set(owner.id, key);
  }
  return out;
}

test(`${SHARDS} shards on each of 3 nodes: all elect leaders, take a write and a linearizable read`, async () => {
  const t0 = Date.now();
  const shards: common.ShardDescriptor[] = [];
  for (let i = 0; i < SHARDS; i++) {
    const id = 1000 + i;
    shards.push({
      id,
      start: Math.floor((i * RING) / SHARDS),
      end: Math.floor(((i + 1) * RING) / SHARDS),
      epoch: { version: 1, confVer: 1 },
      replicas: [1, 2, 3].map((nodeId) => ({ replicaId: id * 10 + nodeId, nodeId, role: 0 })),
    });
  }
  await Promise.all(shards.map((s) => c.createShard(s)));
  for (const n of c.nodes.values()) expect(n.handle.store.nodeStats().shardCount).toBe(SHARDS);
  const tCreated = Date.now();

  // Every shard elects a leader.
  const leaders = new Map<number, TestNode>();
  for (const s of shards) leaders.set(s.id, await c.leaderOf(s.id, 30_000));
  const tElected = Date.now();
  const perNode = [1, 2, 3].map((id) => [...leaders.values()].filter((n) => n.nodeId === id).length);

  const keys = keysFor(shards);
  const header = (s: common.ShardDescriptor): common.RequestHeader => ({
    shardId: s.id,
    epoch: s.epoch as common.Epoch,
    staleRead: false,
    timeoutMs: 10_000,
  });
  /** Sends one request per shard, batched per leader node; retries NOT_LEADER (a leader may still move). */
  async function onEveryLeader(op: (s: common.ShardDescriptor) => nodepb.NodeRequest['op']) {
    const results = new Map<number, nodepb.NodeResponse>();
    let todo = shards;
    for (let attempt = 0; todo.length > 0 && attempt < 10; attempt++) {
      const byNode = new Map<TestNode, common.ShardDescriptor[]>();
      for (const s of todo) {
        const leader = await c.leaderOf(s.id, 30_000);
        byNode.set(leader, [...(byNode.get(leader) ?? []), s]);
      }
      const retry: common.ShardDescriptor[] = [];
      await Promise.all(
        [...byNode].map(async ([node, list]) => {
          const responses = await node.kv.batch(list.map((s) => ({ header: header(s), op: op(s) })));
          responses.forEach((r, i) => {
            const s = list[i] as common.ShardDescriptor;
            if (r.error?.code === 'NOT_LEADER') retry.push(s);
            else results.set(s.id, r);
          });
        }),
      );
      todo = retry;
    }
    return results;
  }

  const writes = await onEveryLeader((s) => ({
    $case: 'put',
    value: { key: keys.get(s.id) as Buffer, value: Buffer.from(`v${s.id}`), ttlMs: 0 },
  }));
  const tWritten = Date.now();
  const reads = await onEveryLeader((s) => ({ $case: 'get', value: { key: keys.get(s.id) as Buffer, stale: false } }));
  const tRead = Date.now();

  let written = 0;
  let readBack = 0;
  for (const s of shards) {
    const w = writes.get(s.id);
    expect(w?.error).toBeUndefined();
    if (w?.result?.$case === 'put' && w.result.value.modIndex > 0) written++;
    const r = reads.get(s.id);
    expect(r?.error).toBeUndefined();
    if (r?.result?.$case === 'get' && r.result.value.kv?.value.toString() === `v${s.id}`) readBack++;
  }
  expect(written).toBe(SHARDS);
  expect(readBack).toBe(SHARDS);
  console.log(
    `${SHARDS} shards x 3 replicas: created in ${tCreated - t0} ms, all led after ${tElected - t0} ms ` +
      `(leaders per node ${perNode.join('/')}), ${written} writes in ${tWritten - tElected} ms, ` +
      `${readBack} linearizable reads in ${tRead - tWritten} ms`,
  );
});
