import { type common, type nodepb, ringPosition } from '@omnidict/proto';
import { sleep, TestCluster, unary } from './testCluster.js';

/**
 * NodeAdmin.SetFaults: node 1, leader of every shard, has its Raft traffic to and from nodes 2 and 3
 * cut. Its leaders step down (check-quorum), nodes 2/3 elect new leaders and keep taking writes;
 * clearing the faults heals the partition and node 1 catches up (every write readable there).
 */
const SHARDS = 3;
const RING = 2 ** 32;

let c: TestCluster;
const shards: common.ShardDescriptor[] = [];
beforeAll(async () => {
  c = new TestCluster();
  for (const id of [1, 2, 3]) await c.startNode(id);
  for (let i = 0; i < SHARDS; i++) {
    const id = 10 + i;
    shards.push({
      id,
      start: Math.floor((i * RING) / SHARDS),
      end: Math.floor(((i + 1) * RING) / SHARDS),
      epoch: { version: 1, confVer: 1 },
      replicas: [1, 2, 3].map((nodeId) => ({ replicaId: id * 10 + nodeId, nodeId, role: 0 })),
    });
  }
  for (const s of shards) await c.createShard(s);
});
afterAll(async () => {
  await c.close();
});

function keyIn(s: common.ShardDescriptor, n: number): Buffer {
  for (let i = 0; ; i++) {
    const key = Buffer.from(`f${n}-${i}`);
    const pos = ringPosition(key);
    if (pos >= s.start && pos < s.end) return key;
  }
}

const role = (nodeId: number, shardId: number) => c.node(nodeId).handle.store.host.status(shardId).role;

/** Waits until `pred` holds; returns the time it took. */
async function until(what: string, pred: () => boolean, timeoutMs = 15_000): Promise<number> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
  return Date.now() - t0;
}

async function setFaults(nodeId: number, partitionedNodes: number[]): Promise<void> {
  await unary<nodepb.SetFaultsResponse>((cb) => c.node(nodeId).admin.setFaults({ partitionedNodes }, cb));
}

test('a partitioned leader node loses its leaderships, writes continue, healing catches it up', async () => {
  // Node 1 leads every shard.
  for (const s of shards) {
    const leader = await c.leaderOf(s.id);
    if (leader.nodeId !== 1) leader.handle.store.host.transferLeader(s.id, s.id * 10 + 1);
  }
  await until('node 1 leads every shard', () => shards.every((s) => role(1, s.id) === 'leader'));
  const writes = new Map<number, Buffer[]>();
  let n = 0;
  /** One write to shard `s` through whichever of `nodes` leads it; resolves with whether it was acknowledged. */
  const write = async (s: common.ShardDescriptor, nodes: number[]): Promise<boolean> => {
    const nodeId = nodes.find((id) => role(id, s.id) === 'leader');
    if (nodeId === undefined) return false;
    const key = keyIn(s, n++);
    const r = await c.node(nodeId).kv.one({
      header: { shardId: s.id, epoch: s.epoch, staleRead: false, timeoutMs: 2000 },
      op: { $case: 'put', value: { key, value: key, ttlMs: 0 } },
    });
    if (r.error !== undefined) return false;
    writes.set(s.id, [...(writes.get(s.id) ?? []), key]);
    return true;
  };
  for (const s of shards) expect(await write(s, [1])).toBe(true);

  await setFaults(1, [2, 3]);
  // A writer keeps proposing on node 1 (so its leaders are awake and ticking) and on 2/3.
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      await Promise.all(shards.map((s) => write(s, [1, 2, 3])));
      await sleep(20);
    }
  })();
  const [newLeadersMs, stepDownMs] = await Promise.all([
    until('nodes 2/3 elect a leader for every shard', () =>
      shards.every((s) => role(2, s.id) === 'leader' || role(3, s.id) === 'leader'),
    ),
    until('node 1 steps down everywhere (check-quorum)', () => shards.every((s) => role(1, s.id) !== 'leader')),
  ]);
  // Writes continue on the majority side.
  for (const s of shards) for (let i = 0; i < 5; i++) expect(await write(s, [2, 3])).toBe(true);
  stop = true;
  await writer;
  const acked = [...writes.values()].reduce((a, w) => a + w.length, 0);
  const ackedInPartition = acked - SHARDS;

  await setFaults(1, []);
  const catchUpMs = await until('node 1 applies everything the leaders applied', () =>
    shards.every((s) => {
      const leaderId = [2, 3].find((id) => role(id, s.id) === 'leader');
      if (leaderId === undefined) return false;
      const st = c.node(leaderId).handle.store.host.status(s.id);
      return c.node(1).handle.store.host.status(s.id).appliedIndex >= st.appliedIndex;
    }),
  );
  // Every acknowledged write is on node 1 (stale reads are served locally).
  let found = 0;
  for (const s of shards) {
    for (const key of writes.get(s.id) ?? []) {
      const r = await c.node(1).kv.one({
        header: { shardId: s.id, epoch: s.epoch, staleRead: true, timeoutMs: 2000 },
        op: { $case: 'get', value: { key, stale: true } },
      });
      if (r.result?.$case === 'get' && r.result.value.found) found++;
    }
  }
  expect(found).toBe(acked);
  console.log(
    `SetFaults: after the partition of node 1, nodes 2/3 led every shard in ${newLeadersMs} ms and node 1 ` +
      `stepped down everywhere in ${stepDownMs} ms; ${ackedInPartition} writes acknowledged during the partition ` +
      `(${acked} in all); healed node 1 caught up in ${catchUpMs} ms and serves all ${found} acknowledged writes`,
  );
});
