import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeId } from '@omnidict/raft/runtime';
import { LevelEngine } from '@omnidict/raft/runtime';
import { prng, TestCluster } from './cluster.js';
import { readCommands } from './testStateMachine.js';

describe('crash-restart on classic-level', () => {
  let dir: string;
  let c: TestCluster;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'omnidict-runtime-'));
  });
  afterEach(async () => {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const levelCluster = (seed: number): TestCluster =>
    new TestCluster({
      seed,
      hostConfig: { logLagEntries: 20 },
      openEngine: (nodeId: NodeId) => LevelEngine.open(join(dir, `node-${nodeId}`)),
    });

  test('every acknowledged proposal survives crashing all hosts mid-flight, repeatedly', async () => {
    const seed = 2024;
    const rng = prng(seed);
    c = levelCluster(seed);
    await c.start([1, 2, 3]);
    for (const g of [1, 2]) await c.createGroup(g, [1, 2, 3]);
    const acked = new Map<number, Set<string>>([
      [1, new Set()],
      [2, new Set()],
    ]);
    let seq = 0;
    for (let round = 0; round < 3; round++) {
      for (const g of [1, 2]) await c.waitForLeader(g);
      // Fire proposals at the leaders and crash everyone after a random number of event-loop turns.
      const inflight: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) {
        for (const g of [1, 2]) {
          const cmd = `r${round}-g${g}-${seq++}`;
          const leader = c.leaderNode(g)!;
          inflight.push(
            c
              .host(leader)
              .propose(g, Buffer.from(cmd))
              .then(
                () => acked.get(g)!.add(cmd),
                () => {},
              ),
          );
        }
      }
      // Real fsyncs take milliseconds: crash after a random 0-40 ms (in round 0, after the first ack)
      // so typically some proposals are acknowledged and some are still in flight.
      if (round === 0) await Promise.race(inflight);
      await new Promise((r) => setTimeout(r, Math.floor(rng() * 40)));
      for (const n of [1, 2, 3]) await c.crash(n);
      await Promise.all(inflight);
      for (const n of [1, 2, 3]) await c.startHost(n);
    }
    for (const g of [1, 2]) {
      await c.waitForLeader(g);
      await c.propose(g, `final-${g}`);
      const leader = c.leaderNode(g)!;
      for (const n of [1, 2, 3]) {
        await c.waitFor(
          () => c.host(n).status(g).appliedIndex >= c.host(leader).status(g).appliedIndex,
          200,
          'catch-up',
        );
        const applied = await readCommands(c.engine(n), g);
        for (const cmd of acked.get(g)!) expect(applied).toContain(cmd);
        expect(new Set(applied).size).toBe(applied.length);
      }
    }
    expect(acked.get(1)!.size + acked.get(2)!.size).toBeGreaterThan(0);
  });

  test('hard state, log and apply state reload after a clean restart', async () => {
    c = levelCluster(7);
    await c.start([1, 2, 3]);
    await c.createGroup(5, [1, 2, 3]);
    for (let i = 0; i < 50; i++) await c.propose(5, `c${i}`);
    const before = [1, 2, 3].map((n) => c.host(n).status(5));
    await c.stop();
    await c.start([1, 2, 3]);
    for (const [i, n] of [1, 2, 3].entries()) {
      const st = c.host(n).status(5);
      expect(st.term).toBe(before[i]?.term);
      expect(st.appliedIndex).toBeGreaterThanOrEqual(before[i]?.appliedIndex ?? 0);
      expect(st.truncatedIndex).toBeGreaterThan(0);
    }
    await c.propose(5, 'again');
    await c.tick(3);
    expect(await readCommands(c.engine(1), 5)).toEqual([...Array.from({ length: 50 }, (_, i) => `c${i}`), 'again']);
  });
});
