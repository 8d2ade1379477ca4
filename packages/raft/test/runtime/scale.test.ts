import { ConfChangeType } from '@omnidict/raft';
import { TestCluster } from './cluster.js';
import { readCommands } from './testStateMachine.js';

describe('many groups', () => {
  let c: TestCluster;
  afterEach(async () => {
    await c.stop();
  });

  test('500 groups on 3 hosts elect leaders and commit', async () => {
    c = new TestCluster({ seed: 21 });
    await c.start([1, 2, 3]);
    const groups = Array.from({ length: 500 }, (_, i) => i + 1);
    for (const g of groups) await c.createGroup(g, [1, 2, 3]);
    await c.waitFor(() => groups.every((g) => c.leaderNode(g) !== undefined), 300, 'all leaders');
    const ps = groups.map((g) => c.host(c.leaderNode(g)!).propose(g, Buffer.from(`hello-${g}`)));
    await c.settle();
    const results = await Promise.all(ps);
    expect(results).toHaveLength(500);
    // Leadership is spread over the hosts (random election timeouts), and all replicas applied.
    const leaders = new Set(groups.map((g) => c.leaderNode(g)));
    expect(leaders.size).toBe(3);
    await c.tick(2);
    for (const g of [1, 250, 500]) {
      for (const n of [1, 2, 3]) expect(await readCommands(c.engine(n), g)).toEqual([`hello-${g}`]);
    }
    // Group commit: far fewer sync writes than proposals.
    const syncs = [1, 2, 3].reduce((s, n) => s + c.host(n).stats.syncWrites, 0);
    expect(syncs).toBeLessThan(500);
    await c.waitFor(() => [1, 2, 3].every((n) => c.host(n).activeGroupCount === 0), 100, 'all quiesced');
  });

  test('a learner added on a new host is created on demand, caught up by snapshot, then promoted', async () => {
    c = new TestCluster({ seed: 23, hostConfig: { logLagEntries: 2, onUnknownGroup: () => true } });
    await c.start([1, 2, 3, 4]);
    await c.createLedGroups([9], [1, 2, 3], 1);
    for (let i = 0; i < 10; i++) await c.propose(9, `c${i}`);
    const add = c.host(1).proposeConfChange(9, { type: ConfChangeType.AddLearner, replicaId: 4, nodeId: 4 });
    await c.settle();
    expect((await add).result.learners).toEqual([4]);
    await c.waitFor(
      () => c.host(4).hasGroup(9) && c.host(4).status(9).appliedIndex === c.host(1).status(9).appliedIndex,
      200,
      'learner',
    );
    expect(c.host(4).stats.snapshotsInstalled).toBe(1);
    const promote = c.host(1).proposeConfChange(9, { type: ConfChangeType.AddVoter, replicaId: 4, nodeId: 4 });
    await c.settle();
    expect([...(await promote).result.voters].sort()).toEqual([1, 2, 3, 4]);
    await c.propose(9, 'with-4');
    await c.tick(2);
    expect(await readCommands(c.engine(4), 9)).toEqual([...Array.from({ length: 10 }, (_, i) => `c${i}`), 'with-4']);
    expect(c.host(4).status(9).peers.get(4)).toBe(4);
  });
});
