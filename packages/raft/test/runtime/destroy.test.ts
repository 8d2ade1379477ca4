import { ConfChangeType } from '@omnidict/raft';
import type {
  KvEngine,
  KvRange,
  NodeId,
  ReplicaRemovedInfo,
  RuntimeError,
  StalePeerInfo,
  StateMachine,
} from '@omnidict/raft/runtime';
import { groupRange, intentKey, tombstoneKey } from '@omnidict/raft/runtime';
import { TestCluster } from './cluster.js';
import { commandRange, readCommands } from './testStateMachine.js';

async function keysIn(engine: KvEngine, range: KvRange): Promise<string[]> {
  const out: string[] = [];
  for await (const [k] of engine.iterate(range)) out.push(Buffer.from(k).toString('hex'));
  return out;
}

/** The group's runtime keys on `engine` are exactly its tombstone, and its data range is empty. */
async function expectDestroyed(engine: KvEngine, groupId: number): Promise<void> {
  expect(await keysIn(engine, groupRange(groupId))).toEqual([Buffer.from(tombstoneKey(groupId)).toString('hex')]);
  expect(await keysIn(engine, commandRange(groupId))).toEqual([]);
}

describe('destroying a replica', () => {
  let c: TestCluster;
  afterEach(async () => {
    await c.stop();
  });

  test('a replica removed by a ConfChange is told, destroyed under load; the group keeps committing', async () => {
    const removed: Array<ReplicaRemovedInfo & { node: NodeId }> = [];
    const destroyed: Array<Promise<void>> = [];
    c = new TestCluster({
      seed: 31,
      hostConfig: { logLagEntries: 10, onUnknownGroup: () => true },
      hostConfigFor: (node) => ({
        onReplicaRemoved: (info) => {
          removed.push({ ...info, node });
          destroyed.push(c.host(node).destroyGroup(info.groupId, { reason: 'removed by conf change' }));
        },
      }),
    });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    const acked: string[] = [];
    const fire = (from: number, to: number): Array<Promise<void>> =>
      Array.from({ length: to - from }, (_, i) =>
        c
          .host(1)
          .propose(1, Buffer.from(`load-${from + i}`))
          .then(() => {
            acked.push(`load-${from + i}`);
          }),
      );
    const load = fire(0, 40);
    const remove = c.host(1).proposeConfChange(1, { type: ConfChangeType.RemoveNode, replicaId: 3 });
    load.push(...fire(40, 80));
    await c.settle();
    expect((await remove).result.voters).toEqual([1, 2]);
    await Promise.all(load);
    await Promise.all(destroyed);
    expect(removed).toEqual([{ node: 3, groupId: 1, replicaId: 3, index: expect.any(Number) }]);
    expect(c.host(3).hasGroup(1)).toBe(false);
    await expectDestroyed(c.engine(3), 1);
    // The group goes on with two voters; messages still addressed to replica 3 (none expected) cannot revive it.
    await c.propose(1, 'after');
    await c.tick(5);
    expect(c.host(3).hasGroup(1)).toBe(false);
    const applied = await readCommands(c.engine(2), 1);
    expect(applied).toEqual([...acked, 'after']);
    expect(applied).toHaveLength(81);
  });

  test('pending proposals reject with GROUP_NOT_FOUND; the old replica is not recreated by later messages', async () => {
    c = new TestCluster({ seed: 32, hostConfig: { onUnknownGroup: () => true } });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    await c.propose(1, 'first');
    // Destroy the leader's replica with proposals and a read queued on it (no removal: 2 and 3 still list it).
    const pending = Array.from({ length: 20 }, (_, i) =>
      c
        .host(1)
        .propose(1, Buffer.from(`p${i}`))
        .then(
          () => 'ok',
          (e: unknown) => (e as RuntimeError).code,
        ),
    );
    const read = c
      .host(1)
      .readIndex(1)
      .then(
        () => 'ok',
        (e: unknown) => (e as RuntimeError).code,
      );
    await c.host(1).destroyGroup(1, { reason: 'test' });
    expect(await Promise.all(pending)).toEqual(Array.from({ length: 20 }, () => 'GROUP_NOT_FOUND'));
    expect(await read).toBe('GROUP_NOT_FOUND');
    await expect(c.host(1).propose(1, Buffer.from('x'))).rejects.toMatchObject({ code: 'GROUP_NOT_FOUND' });
    // 2 and 3 elect a leader and keep sending heartbeats and appends to replica 1: it stays gone.
    const leader = await c.waitForLeader(1);
    expect(leader).not.toBe(1);
    await c.propose(1, 'second');
    await c.tick(30);
    expect(c.host(1).hasGroup(1)).toBe(false);
    await expectDestroyed(c.engine(1), 1);
    // Nor after a restart, and createGroup refuses the destroyed replica id.
    await c.crash(1);
    await c.startHost(1);
    await c.tick(30);
    expect(c.host(1).hasGroup(1)).toBe(false);
    await expect(
      c.host(1).createGroup({ groupId: 1, replicaId: 1, peers: [{ replicaId: 1, nodeId: 1 }] }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await readCommands(c.engine(2), 1)).toEqual(['first', 'second']);
  });

  test('a crash after the destroy intent is written is finished when the host reopens', async () => {
    let crashNextDestroy = true;
    c = new TestCluster({
      seed: 33,
      hostConfig: { logLagEntries: 5, onUnknownGroup: () => true },
      wrapStateMachine: (nodeId, sm): StateMachine => ({
        applyEntries: (e, ctx) => sm.applyEntries(e, ctx),
        snapshotChunks: (v, n) => sm.snapshotChunks(v, n),
        installSnapshot: (chunks, writer) => sm.installSnapshot(chunks, writer),
        destroy: async (writer) => {
          if (nodeId === 3 && crashNextDestroy) {
            crashNextDestroy = false;
            throw new Error('simulated crash after the destroy intent');
          }
          await sm.destroy(writer);
        },
      }),
    });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1, 2], [1, 2, 3], 1);
    for (let i = 0; i < 12; i++) await c.propose(1, `c${i}`);
    await c.propose(2, 'other');
    await c.tick(2);
    expect(await readCommands(c.engine(3), 1)).toHaveLength(12);
    await expect(c.host(3).destroyGroup(1)).rejects.toMatchObject({ code: 'STORAGE' });
    // The intent is durable and nothing has been deleted yet.
    expect(await c.engine(3).get(intentKey(1))).toBeDefined();
    expect(await readCommands(c.engine(3), 1)).toHaveLength(12);
    await c.crash(3);
    await c.startHost(3);
    // Opening finished the destroy before loading groups: replica gone, data gone, intent gone.
    expect(c.host(3).hasGroup(1)).toBe(false);
    expect(await c.engine(3).get(intentKey(1))).toBeUndefined();
    await expectDestroyed(c.engine(3), 1);
    // The other group on the node is untouched.
    expect(c.host(3).hasGroup(2)).toBe(true);
    expect(await readCommands(c.engine(3), 2)).toEqual(['other']);
    // The leader still counts replica 3 as a member and sends to it: no resurrection.
    await c.propose(1, 'more');
    await c.tick(30);
    expect(c.host(3).hasGroup(1)).toBe(false);
    await expectDestroyed(c.engine(3), 1);
  });

  test('a removed replica re-added with a new replica id is created again and caught up', async () => {
    const destroyed: Array<Promise<void>> = [];
    c = new TestCluster({
      seed: 34,
      hostConfig: { logLagEntries: 5, onUnknownGroup: () => true },
      hostConfigFor: (node) => ({
        onReplicaRemoved: (info) => destroyed.push(c.host(node).destroyGroup(info.groupId)),
      }),
    });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    for (let i = 0; i < 5; i++) await c.propose(1, `a${i}`);
    const remove = c.host(1).proposeConfChange(1, { type: ConfChangeType.RemoveNode, replicaId: 3 });
    await c.settle();
    await remove;
    await Promise.all(destroyed);
    expect(destroyed).toHaveLength(1);
    await expectDestroyed(c.engine(3), 1);
    for (let i = 0; i < 20; i++) await c.propose(1, `b${i}`);
    // Re-add on the same node as replica 13: the leader's first message creates it there.
    const add = c.host(1).proposeConfChange(1, { type: ConfChangeType.AddLearner, replicaId: 13, nodeId: 3 });
    await c.settle();
    await add;
    await c.waitFor(
      () => c.host(3).hasGroup(1) && c.host(3).status(1).appliedIndex === c.host(1).status(1).appliedIndex,
      200,
      're-added learner caught up',
    );
    expect(c.host(3).status(1).replicaId).toBe(13);
    const promote = c.host(1).proposeConfChange(1, { type: ConfChangeType.AddVoter, replicaId: 13, nodeId: 3 });
    await c.settle();
    expect([...(await promote).result.voters].sort((a, b) => a - b)).toEqual([1, 2, 13]);
    await c.propose(1, 'with-13');
    await c.tick(3);
    const expected = [
      ...Array.from({ length: 5 }, (_, i) => `a${i}`),
      ...Array.from({ length: 20 }, (_, i) => `b${i}`),
    ];
    expect(await readCommands(c.engine(3), 1)).toEqual([...expected, 'with-13']);
    // The tombstone still names replica 3 and survives a restart next to the live replica 13.
    await c.crash(3);
    await c.startHost(3);
    expect(c.host(3).status(1).replicaId).toBe(13);
    expect(await c.engine(3).get(tombstoneKey(1))).toBeDefined();
  });

  test('a replica removed while cut off is reported as a stale peer when it comes back', async () => {
    const stale: StalePeerInfo[] = [];
    const removed: ReplicaRemovedInfo[] = [];
    c = new TestCluster({
      seed: 35,
      hostConfig: {
        onStalePeer: (info) => stale.push(info),
        onReplicaRemoved: (info) => removed.push(info),
      },
    });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    await c.propose(1, 'first');
    c.network.isolate(3);
    const remove = c.host(1).proposeConfChange(1, { type: ConfChangeType.RemoveNode, replicaId: 3 });
    await c.settle();
    expect((await remove).result.voters).toEqual([1, 2]);
    await c.propose(1, 'second');
    c.network.heal();
    // Replica 3 never applied its removal; nobody sends to it, so it campaigns and is noticed.
    await c.waitFor(() => stale.some((s) => s.fromReplicaId === 3 && s.localIsLeader), 300, 'stale peer report');
    const report = stale.find((s) => s.localIsLeader) as StalePeerInfo;
    expect(report).toEqual({ groupId: 1, replicaId: 1, fromReplicaId: 3, fromNodeId: 3, localIsLeader: true });
    expect(removed.map((r) => r.replicaId)).toEqual([]);
    // Rate limited: at most one report per (group, sender) per election timeout and host.
    const reportsBefore = stale.length;
    await c.tick(5);
    expect(stale.length - reportsBefore).toBeLessThanOrEqual(2);
    // The application (after asking PD) destroys it.
    await c.host(3).destroyGroup(1, { reason: 'stale peer' });
    await expectDestroyed(c.engine(3), 1);
    await c.propose(1, 'third');
    expect(c.leaderNode(1)).toBe(1);
  });
});
