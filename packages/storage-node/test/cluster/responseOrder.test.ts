import * as grpc from '@grpc/grpc-js';
import { type common, nodepb } from '@omnidict/proto';
import { fullShard, TestCluster, unary } from './testCluster.js';

/**
 * NodeKV answers each request as soon as it is done: a read sent in the same request batch as a
 * write that cannot commit (its leader is cut off from both followers) comes back at once, in a
 * response batch of its own, instead of waiting for the write.
 */
let c: TestCluster;
let shard: common.ShardDescriptor;
beforeAll(async () => {
  c = new TestCluster();
  for (const id of [1, 2, 3]) await c.startNode(id);
  shard = fullShard(1, [1, 2, 3]);
  await c.createShard(shard);
});
afterAll(async () => {
  await c.close();
});

test('a read is not held back by a slow write of the same request batch', async () => {
  const leader = await c.leaderOf(1);
  const header = { shardId: 1, epoch: shard.epoch as common.Epoch, staleRead: false, timeoutMs: 3000 };
  const key = Buffer.from('k');
  expect(
    (await leader.kv.one({ header, op: { $case: 'put', value: { key, value: Buffer.from('v'), ttlMs: 0 } } })).error,
  ).toBeUndefined();
  const others = [1, 2, 3].filter((n) => n !== leader.nodeId);
  await unary<nodepb.SetFaultsResponse>((cb) => leader.admin.setFaults({ partitionedNodes: others }, cb));

  const client = new nodepb.NodeKVClient(`127.0.0.1:${leader.handle.port}`, grpc.credentials.createInsecure());
  const stream = client.execute();
  const batches: Array<{ atMs: number; ids: number[] }> = [];
  const t0 = Date.now();
  const twoAnswered = new Promise<void>((resolve) => {
    stream.on('data', (b: nodepb.NodeResponseBatch) => {
      batches.push({ atMs: Date.now() - t0, ids: b.responses.map((r) => r.id) });
      if (batches.flatMap((x) => x.ids).length === 2) resolve();
    });
  });
  stream.on('error', () => {});
  stream.write({
    requests: [
      { id: 1, header, op: { $case: 'put', value: { key, value: Buffer.from('w'), ttlMs: 0 } } },
      { id: 2, header: { ...header, staleRead: true }, op: { $case: 'get', value: { key, stale: true } } },
    ],
  });
  await twoAnswered;
  stream.end();
  client.close();
  await unary<nodepb.SetFaultsResponse>((cb) => leader.admin.setFaults({ partitionedNodes: [] }, cb));
  // The stale read first, alone; the write later (it fails: no quorum).
  expect(batches.map((b) => b.ids)).toEqual([[2], [1]]);
  expect(batches[0]!.atMs).toBeLessThan(batches[1]!.atMs);
});
