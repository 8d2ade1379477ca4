import { ConfChangeType } from '@omnidict/raft';
import type { MemoryEngine, RuntimeError, SnapshotWriter, StateMachine } from '@omnidict/raft/runtime';
import { TestCluster } from './cluster.js';
import { readCommands } from './testStateMachine.js';

describe('log truncation and snapshots', () => {
  let c: TestCluster;
  afterEach(async () => {
    await c.stop();
  });

  test('a follower slightly behind catches up by log; one far behind, by snapshot', async () => {
    c = new TestCluster({ seed: 5, hostConfig: { logLagEntries: 5, snapshotChunkBytes: 64 } });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    // Slightly behind: cut node 3 for 3 entries (within the lag margin).
    c.network.isolate(3);
    for (let i = 0; i < 3; i++) await c.propose(1, `near-${i}`);
    c.network.heal();
    await c.waitFor(() => c.host(3).status(1).appliedIndex === c.host(1).status(1).appliedIndex, 100, 'log catch-up');
    expect(c.host(1).stats.snapshotsSent).toBe(0);
    // Far behind: 40 entries while the leader truncates to applied - 5.
    c.network.isolate(3);
    for (let i = 0; i < 40; i++) await c.propose(1, `far-${i}`);
    expect(c.host(1).status(1).truncatedIndex).toBeGreaterThan(c.host(3).status(1).appliedIndex);
    c.network.heal();
    await c.waitFor(
      () => c.host(3).status(1).appliedIndex >= c.host(1).status(1).appliedIndex,
      200,
      'snapshot catch-up',
    );
    expect(c.host(1).stats.snapshotsSent).toBeGreaterThanOrEqual(1);
    expect(c.host(3).stats.snapshotsInstalled).toBeGreaterThanOrEqual(1);
    const expected = [...[0, 1, 2].map((i) => `near-${i}`), ...Array.from({ length: 40 }, (_, i) => `far-${i}`)];
    expect(await readCommands(c.engine(3), 1)).toEqual(expected);
    // And it keeps replicating by log afterwards.
    await c.propose(1, 'post');
    await c.tick(3);
    expect(await readCommands(c.engine(3), 1)).toEqual([...expected, 'post']);
  });

  test('a crash in the middle of a snapshot install is finished at restart', async () => {
    let failNextInstall = true;
    c = new TestCluster({
      seed: 9,
      hostConfig: { logLagEntries: 3, snapshotChunkBytes: 48 },
      wrapStateMachine: (nodeId, sm): StateMachine => ({
        applyEntries: (e, ctx) => sm.applyEntries(e, ctx),
        snapshotChunks: (v, n) => sm.snapshotChunks(v, n),
        installSnapshot: async (chunks, writer: SnapshotWriter) => {
          if (nodeId === 3 && failNextInstall) {
            failNextInstall = false;
            // Clear the range and write part of the data, then "crash".
            let n = 0;
            await sm.installSnapshot(
              (async function* () {
                for await (const ch of chunks) {
                  if (n++ === 2) throw new Error('simulated crash during install');
                  yield ch;
                }
              })(),
              writer,
            );
          }
          return sm.installSnapshot(chunks, writer);
        },
      }),
    });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    await c.propose(1, 'first');
    await c.tick(2);
    c.network.isolate(3);
    for (let i = 0; i < 30; i++) await c.propose(1, `cmd-${i}`);
    c.network.heal();
    // Node 3 receives the snapshot, starts installing, fails midway: its host stops.
    await c.waitFor(() => failNextInstall === false, 200, 'install attempt');
    await c.tick(2);
    const err = await c
      .host(3)
      .propose(1, Buffer.from('x'))
      .catch((e: unknown) => e);
    expect((err as RuntimeError).code).toBe('STORAGE');
    await c.crash(3);
    (c.engine(3) as MemoryEngine).reopen();
    const partial = await readCommands(c.engine(3), 1);
    expect(partial.length).toBeLessThan(31);
    await c.startHost(3);
    // Opening the host finished the install from the durable intent and staged chunks, before any traffic.
    const expected = ['first', ...Array.from({ length: 30 }, (_, i) => `cmd-${i}`)];
    expect(await readCommands(c.engine(3), 1)).toEqual(expected);
    expect(c.host(3).status(1).appliedIndex).toBe(c.host(1).status(1).appliedIndex);
    await c.propose(1, 'after');
    await c.waitFor(() => c.host(3).status(1).appliedIndex === c.host(1).status(1).appliedIndex, 100, 'catch-up');
    expect(await readCommands(c.engine(3), 1)).toEqual([...expected, 'after']);
  });

  test('a learner added after a long log catches up by ONE snapshot whose membership includes it', async () => {
    // The learner refuses a snapshot whose confState lacks it; a snapshot taken before the AddLearner
    // applied would make leader and learner loop forever. The runtime builds each snapshot on demand
    // from the durable apply state, which already holds the new member when the leader sends to it.
    c = new TestCluster({
      seed: 41,
      hostConfig: { logLagEntries: 10, snapshotChunkBytes: 512, onUnknownGroup: () => true },
    });
    await c.start([1, 2, 3, 4]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    const inflight: Array<Promise<unknown>> = [];
    for (let i = 0; i < 300; i++) inflight.push(c.host(1).propose(1, Buffer.from(`long-${i}`)));
    await c.settle();
    await Promise.all(inflight);
    expect(c.host(1).status(1).truncatedIndex).toBeGreaterThan(250);
    const add = c.host(1).proposeConfChange(1, { type: ConfChangeType.AddLearner, replicaId: 4, nodeId: 4 });
    await c.settle();
    expect((await add).result.learners).toEqual([4]);
    await c.waitFor(
      () => c.host(4).hasGroup(1) && c.host(4).status(1).appliedIndex === c.host(1).status(1).appliedIndex,
      200,
      'learner catch-up',
    );
    const st = c.host(4).status(1);
    expect(st.confState.learners).toEqual([4]);
    expect([...st.confState.voters].sort()).toEqual([1, 2, 3]);
    expect(st.peers.get(1)).toBe(1);
    expect(c.host(4).stats.snapshotsInstalled).toBe(1);
    // No loop: after catching up, nothing more is sent, however long we wait.
    const sent = c.host(1).stats.snapshotsSent;
    expect(sent).toBe(1);
    await c.tick(50);
    expect(c.host(1).stats.snapshotsSent).toBe(sent);
    await c.propose(1, 'after-learner');
    await c.tick(3);
    const cmds = await readCommands(c.engine(4), 1);
    expect(cmds).toHaveLength(301);
    expect(cmds[300]).toBe('after-learner');
  });
});
