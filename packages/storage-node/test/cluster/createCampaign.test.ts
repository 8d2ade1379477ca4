import { fullShard, sleep, TestCluster } from './testCluster.js';

/**
 * CreateShard with `campaign` (PD sets it on the bootstrap replica it wants as the first leader,
 * created after the others): that replica starts an election at once and leads. Six shards, each
 * with a different replica asked; without the flag each first leader would be whichever replica's
 * election timer fired first (all six matching by chance: about 1 in 729).
 */
let c: TestCluster;
beforeAll(async () => {
  c = new TestCluster();
  for (const id of [1, 2, 3]) await c.startNode(id);
});
afterAll(async () => {
  await c.close();
});

test('the replica created with campaign becomes the first leader', async () => {
  const orders = [
    [1, 2, 3],
    [2, 3, 1],
    [3, 1, 2],
    [1, 3, 2],
    [2, 1, 3],
    [3, 2, 1],
  ];
  const RING = 2 ** 31; // the first half of the ring; the next test uses the second
  const expected = new Map<number, number>();
  for (const [i, nodes] of orders.entries()) {
    const id = 10 + i;
    const shard = fullShard(
      id,
      nodes,
      Math.floor((i * RING) / orders.length),
      Math.floor(((i + 1) * RING) / orders.length),
    );
    const campaigner = nodes[nodes.length - 1]!; // created last, as PD's create operator does
    await c.createShard(shard, [], campaigner);
    expected.set(id, campaigner);
  }
  for (const [id, campaigner] of expected) {
    const leader = await c.leaderOf(id);
    expect([id, leader.nodeId]).toEqual([id, campaigner]);
    // It won the first election: no other replica had campaigned before it.
    expect(leader.handle.store.host.status(id).term).toBe(1);
  }
});

test('replicas created holding their elections wait for the late campaigner instead of electing one of them', async () => {
  // Two replicas exist for longer than an election timeout (1–2 s at 100 ms ticks) before the
  // campaigner is created: without the hold they would have elected one of themselves by then.
  const shard = fullShard(30, [2, 3, 1], 2 ** 31, 2 ** 32);
  for (const nodeId of [2, 3]) await c.createShardOn(nodeId, shard, { holdElectionMs: 10_000 });
  await sleep(2500);
  for (const nodeId of [2, 3]) expect(c.node(nodeId).handle.store.host.status(30).term).toBe(0);
  await c.createShardOn(1, shard, { campaign: true });
  const leader = await c.leaderOf(30);
  expect([leader.nodeId, leader.handle.store.host.status(30).term]).toEqual([1, 1]);
});
