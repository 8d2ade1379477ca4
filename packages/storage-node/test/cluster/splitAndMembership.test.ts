import type { common } from '@omnidict/proto';
import { nodepb, OmniError, ringPosition } from '@omnidict/proto';
import { type TestCluster as Cluster, fullShard, sleep, TestCluster, unary } from './testCluster.js';

const b = (s: string) => Buffer.from(s);

/** Writes keys w:0, w:1, … until stopped; records every acknowledged write. Routes by shard range. */
function writer(c: Cluster, shards: () => common.ShardDescriptor[]) {
  const acked = new Map<string, string>();
  let stop = false;
  const run = (async () => {
    for (let i = 0; !stop; i++) {
      const key = `w:${i}`;
      for (let attempt = 0; attempt < 50 && !stop; attempt++) {
        const pos = ringPosition(key);
        const d = shards().find((s) => pos >= s.start && pos < s.end);
        if (d === undefined) {
          await sleep(10);
          continue;
        }
        const leader = await c.leaderOf(d.id).catch(() => undefined);
        if (leader === undefined) continue;
        const r = await leader.kv.one({
          header: { shardId: d.id, epoch: d.epoch as common.Epoch, staleRead: false, timeoutMs: 2000 },
          op: { $case: 'put', value: { key: b(key), value: b(`v${i}`), ttlMs: 0 } },
        });
        if (r.error === undefined) {
          acked.set(key, `v${i}`);
          break;
        }
        await sleep(10);
      }
    }
  })();
  return {
    acked,
    async stop() {
      stop = true;
      await run;
    },
  };
}

async function readAll(c: Cluster, shards: common.ShardDescriptor[], acked: Map<string, string>) {
  for (const [key, value] of acked) {
    const pos = ringPosition(key);
    const d = shards.find((s) => pos >= s.start && pos < s.end) as common.ShardDescriptor;
    const leader = await c.leaderOf(d.id);
    const r = await leader.kv.one({
      header: { shardId: d.id, epoch: d.epoch as common.Epoch, staleRead: false, timeoutMs: 5000 },
      op: { $case: 'get', value: { key: b(key), stale: false } },
    });
    expect({
      key,
      error: r.error?.code,
      value: r.result?.$case === 'get' ? r.result.value.kv?.value.toString() : undefined,
    }).toEqual({
      key,
      error: undefined,
      value,
    });
  }
}

let c: TestCluster;
beforeEach(async () => {
  c = new TestCluster();
  for (const id of [1, 2, 3]) await c.startNode(id);
});
afterEach(async () => {
  await c.close();
});

test('split under concurrent writes: both halves serve, epochs bumped, every acknowledged write readable', async () => {
  await c.createShard(fullShard(1, [1, 2, 3]));
  let current: common.ShardDescriptor[] = [fullShard(1, [1, 2, 3])];
  const w = writer(c, () => current);
  await sleep(300);
  const leader = await c.leaderOf(1);
  const res = await unary<nodepb.SplitShardResponse>((cb) =>
    leader.admin.splitShard(
      {
        header: { shardId: 1, epoch: { version: 1, confVer: 1 }, staleRead: false, timeoutMs: 5000 },
        splitAt: 0,
        newShardId: 2,
        newReplicaIds: [201, 202, 203],
      },
      cb,
    ),
  );
  if (res.error) throw OmniError.fromProto(res.error);
  const left = res.left as common.ShardDescriptor;
  const right = res.right as common.ShardDescriptor;
  expect(left.end).toBe(right.start);
  expect(left.epoch?.version).toBe(2);
  expect(right.epoch?.version).toBe(2);
  current = [left, right];
  await c.leaderOf(2);
  // Keep writing across the new layout for a while (longer on a loaded machine), then stop.
  for (const t0 = Date.now(); w.acked.size <= 10 && Date.now() - t0 < 10_000; ) await sleep(100);
  await sleep(300);
  await w.stop();
  expect(w.acked.size).toBeGreaterThan(10);
  // Every node created the right shard locally with the same range.
  for (const id of [1, 2, 3]) {
    for (let i = 0; !c.node(id).handle.store.replicas.has(2); i++) {
      if (i > 100) throw new Error(`node ${id} never created shard 2`);
      await sleep(20);
    }
    expect(c.descriptorOn(id, 2)).toMatchObject({ start: right.start, end: right.end });
    expect(c.descriptorOn(id, 1)).toMatchObject({ start: 0, end: left.end });
  }
  await readAll(c, current, w.acked);
  // The old epoch is refused with the new descriptors.
  const r = await (await c.leaderOf(1)).kv.one({
    header: { shardId: 1, epoch: { version: 1, confVer: 1 }, staleRead: false, timeoutMs: 1000 },
    op: { $case: 'get', value: { key: b('w:0'), stale: false } },
  });
  expect(r.error?.code).toBe('STALE_EPOCH');
});

test('add a learner, promote it, remove an old voter under concurrent writes', async () => {
  await c.startNode(4);
  const d0 = fullShard(1, [1, 2, 3]);
  await c.createShard(d0);
  let current: common.ShardDescriptor[] = [d0];
  const w = writer(c, () => current);
  await sleep(300);
  const change = async (type: nodepb.ReplicaChangeType, replica: common.Replica) => {
    for (let attempt = 0; ; attempt++) {
      const leader = await c.leaderOf(1);
      const d = c.descriptorOn(leader.nodeId, 1);
      const res = await unary<nodepb.ChangeReplicasResponse>((cb) =>
        leader.admin.changeReplicas(
          {
            header: { shardId: 1, epoch: d.epoch as common.Epoch, staleRead: false, timeoutMs: 5000 },
            change: type,
            replica,
            nodeAddress: `127.0.0.1:${c.node(replica.nodeId).handle.raftPort}`,
          },
          cb,
        ),
      );
      if (!res.error) return res.shard as common.ShardDescriptor;
      if (attempt > 20) throw OmniError.fromProto(res.error);
      await sleep(50);
    }
  };
  // The target node prepares an empty replica; the leader's snapshot fills it.
  const learner = { replicaId: 104, nodeId: 4, role: 1 };
  const n4 = c.node(4);
  const created = await unary<nodepb.CreateShardResponse>((cb) =>
    n4.admin.createShard(
      {
        shard: { ...d0, replicas: [...d0.replicas, learner] },
        nodeAddresses: c.raftAddresses(),
        uninitialized: true,
        campaign: false,
        holdElectionMs: 0,
      },
      cb,
    ),
  );
  expect(created.error).toBeUndefined();
  await change(nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_ADD_LEARNER, learner);
  // Wait for the learner to be caught up (it has the shard's range once the snapshot landed).
  for (let i = 0; ; i++) {
    const sm = n4.handle.store.replicas.get(1);
    if (sm !== undefined && sm.descriptor.end === 2 ** 32 && n4.handle.store.host.status(1).appliedIndex > 0) break;
    if (i > 250) throw new Error('learner never caught up');
    await sleep(20);
  }
  await change(nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_PROMOTE, { ...learner, role: 0 });
  const removed = d0.replicas.find((r) => r.nodeId === 3) as common.Replica;
  const after = await change(nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_REMOVE, removed);
  current = [after];
  await sleep(300);
  await w.stop();
  expect(after.replicas.map((r) => r.nodeId).sort()).toEqual([1, 2, 4]);
  expect(after.epoch?.confVer).toBe(4);
  await readAll(c, current, w.acked);
  // Known gap (docs/storage.md, "Known gaps"): the removed replica rarely learns that its removal
  // committed, so dropping its range is not asserted here; the Store drops it when it does.
});
