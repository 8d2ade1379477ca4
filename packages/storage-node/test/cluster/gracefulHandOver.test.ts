import { Writable } from 'node:stream';
import type { common, nodepb } from '@omnidict/proto';
import { pino } from 'pino';
import { sleep, TestCluster, unary } from './testCluster.js';

/**
 * A graceful close hands each leadership to the most caught-up voter (as the followers' append
 * answers told the leader), not to the first one listed: here the first, node 2, is cut off from
 * the leader, so a transfer to it would wait out the deadline and leave the shard to an election.
 */
const SHARD: common.ShardDescriptor = {
  id: 20,
  start: 0,
  end: 2 ** 32,
  epoch: { version: 1, confVer: 1 },
  replicas: [1, 2, 3].map((nodeId) => ({ replicaId: 200 + nodeId, nodeId, role: 0 })),
};

let c: TestCluster;
const logs: Array<Record<string, unknown>> = [];
beforeAll(async () => {
  c = new TestCluster();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line));
      done();
    },
  });
  await c.startNode(1, undefined, { logger: pino({ level: 'info' }, sink) });
  for (const id of [2, 3]) await c.startNode(id);
  await c.createShard(SHARD);
});
afterAll(async () => {
  await c.close();
});

const role = (nodeId: number) => c.node(nodeId).handle.store.host.status(SHARD.id).role;

async function until(what: string, pred: () => boolean, timeoutMs = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
}

async function put(nodeId: number, n: number): Promise<void> {
  const key = Buffer.from(`h${n}`);
  const r = await c.node(nodeId).kv.one({
    header: { shardId: SHARD.id, epoch: SHARD.epoch, staleRead: false, timeoutMs: 5000 },
    op: { $case: 'put', value: { key, value: key, ttlMs: 0 } },
  });
  expect(r.error).toBeUndefined();
}

test('closing a leader hands its shard to the caught-up voter, not to the first listed one', async () => {
  const leader = await c.leaderOf(SHARD.id);
  if (leader.nodeId !== 1) leader.handle.store.host.transferLeader(SHARD.id, 201);
  await until('node 1 leads', () => role(1) === 'leader');
  for (let i = 0; i < 5; i++) await put(1, i);
  // Node 2 (listed first) is cut off from the leader; node 3 keeps up.
  await unary<nodepb.SetFaultsResponse>((cb) => c.node(1).admin.setFaults({ partitionedNodes: [2] }, cb));
  for (let i = 5; i < 10; i++) await put(1, i);
  await c.stopNode(1);
  const handOver = logs.find((l) => l.msg === 'leaderships handed over');
  expect(handOver).toMatchObject({ led: 1, transferred: 1, kept: 0 });
  await until('node 3 leads', () => role(3) === 'leader');
  await put(3, 10);
});
