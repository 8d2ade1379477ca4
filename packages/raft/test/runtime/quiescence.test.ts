import { TestCluster } from './cluster.js';
import { readCommands } from './testStateMachine.js';

describe('quiescence', () => {
  let c: TestCluster;
  afterEach(async () => {
    await c.stop();
  });

  test('idle groups stop ticking and sending heartbeats; a proposal wakes them', async () => {
    c = new TestCluster({ seed: 11 });
    await c.start([1, 2, 3]);
    for (let g = 1; g <= 20; g++) await c.createGroup(g, [1, 2, 3]);
    for (let g = 1; g <= 20; g++) await c.waitForLeader(g);
    await c.propose(4, 'warm');
    await c.waitFor(() => [1, 2, 3].every((n) => c.host(n).activeGroupCount === 0), 100, 'all quiesced');
    // Idle: only per-process keepalives cross the network, no per-group Raft messages.
    const sentBefore = [1, 2, 3].map((n) => c.host(n).stats.messagesSent);
    const turnsBefore = [1, 2, 3].map((n) => c.host(n).stats.turns);
    await c.tick(50);
    expect([1, 2, 3].map((n) => c.host(n).stats.messagesSent)).toEqual(sentBefore);
    expect([1, 2, 3].map((n) => c.host(n).stats.turns)).toEqual(turnsBefore);
    // A proposal wakes the group on the leader, its messages wake the followers; without any tick
    // (time stands still here) it commits on all replicas, then the group quiesces again.
    const leader = c.leaderNode(4)!;
    const p = c.host(leader).propose(4, Buffer.from('wake'));
    await c.settle();
    await p;
    for (const n of [1, 2, 3]) expect(await readCommands(c.engine(n), 4)).toEqual(['warm', 'wake']);
    await c.waitFor(() => [1, 2, 3].every((n) => c.host(n).activeGroupCount === 0), 100, 'quiesced again');
  });

  test('quiesced followers notice a dead leader process and elect a new leader', async () => {
    c = new TestCluster({ seed: 12 });
    await c.start([1, 2, 3]);
    await c.createLedGroups(
      Array.from({ length: 5 }, (_, i) => i + 1),
      [1, 2, 3],
      1,
    );
    await c.propose(1, 'before');
    await c.waitFor(() => [1, 2, 3].every((n) => c.host(n).activeGroupCount === 0), 100, 'all quiesced');
    await c.crash(1);
    for (let g = 1; g <= 5; g++) {
      await c.waitFor(() => [2, 3].some((n) => c.host(n).status(g).role === 'leader'), 200, `new leader of ${g}`);
    }
    await c.propose(1, 'after');
    for (const n of [2, 3]) {
      await c.waitFor(() => c.host(n).status(1).appliedIndex === c.host(c.leaderNode(1)!).status(1).appliedIndex);
      expect(await readCommands(c.engine(n), 1)).toEqual(['before', 'after']);
    }
  });
});
