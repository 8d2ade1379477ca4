import { fullShard, TestCluster } from './testCluster.js';

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
  const RING = 2 ** 32;
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
