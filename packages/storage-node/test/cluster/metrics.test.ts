import type { common } from '@omnidict/proto';
import { Registry } from 'prom-client';
import { registerNodeMetrics } from '../../src/index.js';
import { fullShard, TestCluster } from './testCluster.js';

let c: TestCluster;

beforeAll(async () => {
  c = new TestCluster();
  for (const id of [1, 2, 3]) await c.startNode(id);
  await c.createShard(fullShard(1, [1, 2, 3]));
  await c.leaderOf(1);
});
afterAll(async () => {
  await c.close();
});

test('node metrics count requests by op and code, and export fsync and apply figures', async () => {
  const leader = await c.leaderOf(1);
  const registry = new Registry();
  registerNodeMetrics(registry, leader.handle.store);
  const shard = fullShard(1, [1, 2, 3]);
  const header: common.RequestHeader = {
    shardId: 1,
    epoch: shard.epoch as common.Epoch,
    staleRead: false,
    timeoutMs: 5000,
  };
  for (let i = 0; i < 5; i++) {
    await leader.kv.one({
      header,
      op: { $case: 'put', value: { key: Buffer.from(`m${i}`), value: Buffer.from('v'), ttlMs: 0 } },
    });
  }
  await leader.kv.one({
    header,
    op: { $case: 'update', value: { key: Buffer.from('absent'), value: Buffer.from('v'), ttlMs: 0, keepTtl: false } },
  });
  const text = await registry.metrics();
  expect(text).toMatch(/omnidict_node_requests_total\{op="put",code="OK"\} 5/);
  expect(text).toMatch(/omnidict_node_requests_total\{op="update",code="NOT_FOUND"\} 1/);
  expect(text).toMatch(/omnidict_node_request_duration_seconds_count\{op="put"\} 5/);
  const fsyncs = Number(/omnidict_raft_fsyncs_total (\d+)/.exec(text)?.[1]);
  const applied = Number(/omnidict_raft_applied_entries_total (\d+)/.exec(text)?.[1]);
  expect(fsyncs).toBeGreaterThan(0);
  expect(applied).toBeGreaterThanOrEqual(6);
});
