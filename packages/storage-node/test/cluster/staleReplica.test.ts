import { type common, nodepb } from '@omnidict/proto';
import { dataRange } from '../../src/index.js';
import { fullShard, sleep, TestCluster, unary } from './testCluster.js';

/**
 * A replica removed while it was cut off never applies its removal (the leader stops replicating to
 * it), so it keeps its group and data. Once it is reachable again it campaigns; the leader hears a
 * request from a non-member (the runtime's onStalePeer) and sends its descriptor — a newer conf_ver
 * not listing the replica — through NodeAdmin.DestroyReplica; the stale node checks that proof and
 * destroys the replica (group, Raft state, data).
 */
let c: TestCluster;
beforeAll(async () => {
  c = new TestCluster();
  for (const id of [1, 2, 3]) await c.startNode(id);
  // Service addresses normally come from PD heartbeats.
  const service = Object.fromEntries([...c.nodes].map(([id, n]) => [id, `127.0.0.1:${n.handle.port}`]));
  for (const n of c.nodes.values()) n.handle.store.learnServiceAddresses(service);
});
afterAll(async () => {
  await c.close();
});

async function dataKeysOn(nodeId: number, d: common.ShardDescriptor): Promise<number> {
  let n = 0;
  for await (const _ of c.node(nodeId).handle.store.engine.iterate(dataRange(d.start, d.end))) n++;
  return n;
}

test('a removed replica that never learnt it is destroyed once the leader proves the removal', async () => {
  const shard = fullShard(1, [1, 2, 3]);
  await c.createShard(shard);
  let leader = await c.leaderOf(1);
  if (leader.nodeId === 3) {
    leader.handle.store.host.transferLeader(1, 101);
    while (leader.handle.store.host.status(1).role === 'leader') await sleep(20);
    leader = await c.leaderOf(1);
  }
  const header = { shardId: 1, epoch: shard.epoch, staleRead: false, timeoutMs: 5000 };
  for (let i = 0; i < 20; i++) {
    const key = Buffer.from(`s${i}`);
    const r = await leader.kv.one({ header, op: { $case: 'put', value: { key, value: key, ttlMs: 0 } } });
    expect(r.error).toBeUndefined();
  }
  // Wait for node 3 to hold the data.
  while ((await dataKeysOn(3, shard)) < 20) await sleep(20);

  // Cut node 3 off, then remove its replica: it never hears of the removal.
  await unary((cb) => c.node(3).admin.setFaults({ partitionedNodes: [1, 2] }, cb));
  const removed = await unary<nodepb.ChangeReplicasResponse>((cb) =>
    leader.admin.changeReplicas(
      {
        header,
        change: nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_REMOVE,
        replica: { replicaId: 103, nodeId: 3, role: 0 },
        nodeAddress: '',
      },
      cb,
    ),
  );
  expect(removed.error).toBeUndefined();
  const proof = removed.shard as common.ShardDescriptor;
  expect(proof.replicas.map((r) => r.replicaId)).toEqual([101, 102]);
  await sleep(500);
  const store3 = c.node(3).handle.store;
  expect(store3.host.hasGroup(1)).toBe(true);
  expect(await dataKeysOn(3, shard)).toBe(20);

  // Without proof (its own, older descriptor) DestroyReplica refuses and changes nothing.
  const refused = await unary<nodepb.DestroyReplicaResponse>((cb) =>
    c.node(3).admin.destroyReplica({ shard, replicaId: 103 }, cb),
  );
  expect(refused.error?.code).toBe('INVALID_ARGUMENT');
  expect(store3.host.hasGroup(1)).toBe(true);

  // Heal: the stale replica campaigns, the leader answers with the proof, node 3 destroys it.
  const t0 = Date.now();
  await unary((cb) => c.node(3).admin.setFaults({ partitionedNodes: [] }, cb));
  // The replica leaves the host at once; its data range is deleted just after (destroy intent).
  while (store3.host.hasGroup(1) || (await dataKeysOn(3, shard)) > 0) {
    if (Date.now() - t0 > 20_000) throw new Error('stale replica was not destroyed');
    await sleep(20);
  }
  const destroyedMs = Date.now() - t0;
  expect(await dataKeysOn(3, shard)).toBe(0);
  expect((await store3.listShards()).shards).toEqual([]);
  // The shard lives on with its two replicas.
  const r = await (await c.leaderOf(1)).kv.one({
    header: { ...header, epoch: proof.epoch },
    op: { $case: 'get', value: { key: Buffer.from('s0'), stale: false } },
  });
  expect(r.result).toMatchObject({ $case: 'get', value: { found: true } });
  // A second DestroyReplica is a no-op.
  const again = await unary<nodepb.DestroyReplicaResponse>((cb) =>
    c.node(3).admin.destroyReplica({ shard: proof, replicaId: 103 }, cb),
  );
  expect(again).toMatchObject({ destroyed: false });
  console.log(`stale replica 103 on node 3 (20 keys) destroyed ${destroyedMs} ms after its partition healed`);
});
