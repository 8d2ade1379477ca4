import type { KvOp } from '@omnidict/raft/runtime';
import { MemoryEngine, RuntimeError } from '@omnidict/raft/runtime';
import { TestCluster } from './cluster.js';
import { readCommands } from './testStateMachine.js';

describe('RaftHost over the in-memory transport', () => {
  let c: TestCluster;
  afterEach(async () => {
    await c.stop();
  });

  test('a group elects a leader and every replica applies proposals in order', async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createGroup(7, [1, 2, 3]);
    const leader = await c.waitForLeader(7);
    const results = [];
    for (let i = 0; i < 5; i++) {
      const p = c.host(leader).propose(7, Buffer.from(`cmd-${i}`));
      await c.settle();
      results.push(await p);
    }
    expect(results.map((r) => (r.result as { command: string }).command)).toEqual([
      'cmd-0',
      'cmd-1',
      'cmd-2',
      'cmd-3',
      'cmd-4',
    ]);
    expect(results[4]?.index).toBeGreaterThan(results[0]?.index ?? Infinity);
    await c.tick(3);
    for (const n of [1, 2, 3]) {
      expect(await readCommands(c.engine(n), 7)).toEqual(['cmd-0', 'cmd-1', 'cmd-2', 'cmd-3', 'cmd-4']);
    }
  });

  test('a follower rejects proposals with NOT_LEADER and a leader hint', async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createGroup(1, [1, 2, 3]);
    const leader = await c.waitForLeader(1);
    await c.tick(2);
    const follower = [1, 2, 3].find((n) => n !== leader)!;
    const err = await c
      .host(follower)
      .propose(1, Buffer.from('x'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as RuntimeError).code).toBe('NOT_LEADER');
    expect((err as RuntimeError).leaderNodeId).toBe(leader);
    for (const n of [1, 2, 3]) expect(c.host(n).isLeader(1)).toBe(c.host(n).status(1).role === 'leader');
    expect(c.host(leader).isLeader(1)).toBe(true);
    expect(() => c.host(leader).isLeader(99)).toThrow(RuntimeError);
  });

  test('many proposals in one turn are persisted in one sync batch (group commit)', async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createLedGroups(
      Array.from({ length: 10 }, (_, i) => i + 1),
      [1, 2, 3],
      1,
    );
    for (let g = 1; g <= 10; g++) expect(c.leaderNode(g)).toBe(1);
    const engine = c.engine(1) as MemoryEngine;
    const before = engine.syncWrites;
    const ps = [];
    for (let g = 1; g <= 10; g++) for (let i = 0; i < 10; i++) ps.push(c.host(1).propose(g, Buffer.from(`g${g}-${i}`)));
    await c.settle();
    const res = await Promise.all(ps);
    expect(res).toHaveLength(100);
    // 100 proposals over 10 groups: one sync write to append them all, one more after the acks commit them.
    expect(engine.syncWrites - before).toBeLessThanOrEqual(3);
  });

  test('proposals queued together go out as one append per follower, and each gets its own result', async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createLedGroups([4], [1, 2, 3], 1);
    expect(c.leaderNode(4)).toBe(1);
    const sent = c.host(1).stats.messagesSent;
    const ps = Array.from({ length: 50 }, (_, i) => c.host(1).propose(4, Buffer.from(`b-${i}`)));
    await c.settle();
    const res = await Promise.all(ps);
    expect(res.map((r) => (r.result as { command: string }).command)).toEqual(
      Array.from({ length: 50 }, (_, i) => `b-${i}`),
    );
    expect(res.map((r) => r.index - (res[0]?.index ?? 0))).toEqual(Array.from({ length: 50 }, (_, i) => i));
    // One append to each follower, then one commit notice each: not 50 appends apiece.
    expect(c.host(1).stats.messagesSent - sent).toBeLessThanOrEqual(6);
    for (const n of [2, 3])
      expect((await readCommands(c.engine(n), 4)).slice(-50)).toEqual(
        res.map((r) => (r.result as { command: string }).command),
      );
  });
  test('a proposal is answered before its apply batch lands; a read waits for the batch and sees it', async () => {
    /** Holds unsynced writes (the apply batches) while `hold` is set. */
    class GatedEngine extends MemoryEngine {
      hold = false;
      readonly held: (() => void)[] = [];
      override async write(ops: readonly KvOp[], opts: { readonly sync: boolean }): Promise<void> {
        if (this.hold && !opts.sync) await new Promise<void>((r) => this.held.push(r));
        return super.write(ops, opts);
      }
    }
    const gated = new GatedEngine();
    c = new TestCluster({ openEngine: async (n) => (n === 1 ? gated : new MemoryEngine()) });
    await c.start([1, 2, 3]);
    await c.createLedGroups([6], [1, 2, 3], 1);
    expect(c.leaderNode(6)).toBe(1);
    gated.hold = true;
    let answered: unknown;
    const p = c.host(1).propose(6, Buffer.from('early'));
    void p.then((r) => {
      answered = r.result;
    });
    for (let i = 0; i < 5_000 && (answered === undefined || gated.held.length === 0); i++) {
      await new Promise((r) => setImmediate(r));
    }
    expect(answered).toEqual(expect.objectContaining({ command: 'early' }));
    expect(gated.held.length).toBeGreaterThan(0); // its apply batch is still held
    expect(await readCommands(gated, 6)).not.toContain('early');
    let readAt: number | undefined;
    void c
      .host(1)
      .readIndex(6)
      .then((i) => {
        readAt = i;
      });
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    expect(readAt).toBeUndefined();
    gated.hold = false;
    for (const release of gated.held.splice(0)) release();
    await c.settle();
    await c.tick(2);
    expect(readAt).toBeGreaterThanOrEqual((await p).index);
    expect(await readCommands(gated, 6)).toContain('early');
  });

  test('a minority partition cannot commit; the majority elects a new leader and commits', async () => {
    c = new TestCluster({ seed: 3 });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    expect(c.leaderNode(1)).toBe(1);
    await c.propose(1, 'before');
    c.network.partition([1], [2, 3]);
    const stranded = c
      .host(1)
      .propose(1, Buffer.from('stranded'), { timeoutMs: 3_000 })
      .catch((e: unknown) => e);
    await c.waitFor(() => [2, 3].some((n) => c.host(n).status(1).role === 'leader'), 200, 'new leader');
    const newLeader = [2, 3].find((n) => c.host(n).status(1).role === 'leader')!;
    const p = c.host(newLeader).propose(1, Buffer.from('after'));
    await c.settle();
    await p;
    c.network.heal();
    await c.waitFor(() => c.host(1).status(1).appliedIndex === c.host(newLeader).status(1).appliedIndex, 200, 'heal');
    // The isolated leader's entry was overwritten by the new leader's log: its proposer learns it failed.
    const err = await stranded;
    expect(err).toBeInstanceOf(RuntimeError);
    expect(['PROPOSAL_DROPPED', 'TIMEOUT']).toContain((err as RuntimeError).code);
    const cmds = await readCommands(c.engine(1), 1);
    expect(cmds).toEqual(['before', 'after']);
  });

  test('proposals stranded beyond the new leader log fail once a later term commits, without a deadline', async () => {
    c = new TestCluster({ seed: 5 });
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    await c.propose(1, 'before');
    c.network.partition([1], [2, 3]);
    // Three entries the isolated leader appends but can never commit; no timeout is given.
    const outcomes: unknown[] = [];
    for (const cmd of ['s1', 's2', 's3']) {
      void c
        .host(1)
        .propose(1, Buffer.from(cmd))
        .then(
          (r) => outcomes.push(r),
          (e: unknown) => outcomes.push(e),
        );
    }
    await c.waitFor(() => [2, 3].some((n) => c.host(n).status(1).role === 'leader'), 200, 'new leader');
    // The new leader commits only its empty entry: one index past 'before', below s2 and s3.
    c.network.heal();
    await c.waitFor(() => outcomes.length === 3, 200, 'stranded proposals settled');
    for (const o of outcomes) {
      expect(o).toBeInstanceOf(RuntimeError);
      expect((o as RuntimeError).code).toBe('PROPOSAL_DROPPED');
    }
    expect(await readCommands(c.engine(1), 1)).toEqual(['before']);
  });

  test("a commit notice waits for the group's next append or its 10 ms timer; proposals to other groups leave it held", async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createLedGroups([5, 6], [1, 2, 3], 1);
    const leader = c.host(1);
    const applied = (g: number): number[] => [2, 3].map((n) => c.host(n).status(g).appliedIndex);
    const holdOn = () => c.settle(10_000, false);
    // 'a' commits on the leader; its notice is held, so the followers hold 'a' but have not applied it.
    const a = leader.propose(5, Buffer.from('a'));
    await holdOn();
    const ia = (await a).index;
    expect(leader.commitNoticesHeld).toBe(1);
    expect(applied(5)).toEqual([ia - 1, ia - 1]);
    // A proposal to group 6 does not take group 5's notice along: its batches carry only its append.
    const fromLeader: string[] = [];
    const unfilter = c.network.addFilter((from, to, batch) => {
      if (from === 1 && batch.messages.length > 0)
        fromLeader.push(`${to}: ${batch.messages.map((m) => `${m.groupId}/${m.message?.entries.length}`).join(' ')}`);
      return 'deliver';
    });
    const b = leader.propose(6, Buffer.from('b'));
    await holdOn();
    const ib = (await b).index;
    expect(fromLeader.sort()).toEqual(['2: 6/1', '3: 6/1']); // (group/entries)
    expect(applied(5)).toEqual([ia - 1, ia - 1]);
    // A second proposal to group 5 carries its commit on the append: 'a' is applied, no notice sent.
    fromLeader.length = 0;
    const a2 = leader.propose(5, Buffer.from('a2'));
    await holdOn();
    const ia2 = (await a2).index;
    expect(fromLeader.sort()).toEqual(['2: 5/1', '3: 5/1']);
    expect(applied(5)).toEqual([ia, ia]);
    // Nothing else comes: the notices (5 for 'a2', 6 for 'b') leave together when the timer fires.
    expect(leader.commitNoticesHeld).toBe(2);
    c.clock.advance(9);
    await holdOn();
    expect(applied(6)).toEqual([ib - 1, ib - 1]);
    fromLeader.length = 0;
    c.clock.advance(1);
    await holdOn();
    unfilter();
    expect(fromLeader.sort()).toEqual(['2: 5/0 6/0', '3: 5/0 6/0']);
    expect(applied(5)).toEqual([ia2, ia2]);
    expect(applied(6)).toEqual([ib, ib]);
    expect(leader.commitNoticesHeld).toBe(0);
    // The leader quiesces only after both followers reported the commit (their answers carry it).
    await c.waitFor(() => c.host(1).activeGroupCount === 0, 100, 'quiesced');
  });

  test('progress under 20% message drop and 150 ms delays', async () => {
    const seed = 42;
    c = new TestCluster({ seed });
    await c.start([1, 2, 3]);
    await c.createGroup(1, [1, 2, 3]);
    await c.createGroup(2, [1, 2, 3]);
    c.network.setDropRate(0.2);
    c.network.setDelayMs(150);
    for (let i = 0; i < 10; i++) {
      await c.propose(1, `a${i}`);
      await c.propose(2, `b${i}`);
    }
    c.network.heal();
    await c.tick(30);
    for (const n of [1, 2, 3]) {
      expect(await readCommands(c.engine(n), 1)).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
      expect(await readCommands(c.engine(n), 2)).toEqual(Array.from({ length: 10 }, (_, i) => `b${i}`));
    }
  });

  test('readIndex resolves once the read point is applied', async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createGroup(1, [1, 2, 3]);
    const leader = await c.waitForLeader(1);
    const idx = await c.propose(1, 'w');
    const r = c.host(leader).readIndex(1);
    await c.settle();
    expect(await r).toBeGreaterThanOrEqual(idx);
  });

  test('a read whose leader steps down before confirming it fails at once with NOT_LEADER, not at its deadline', async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createLedGroups([1], [1, 2, 3], 1);
    await c.propose(1, 'w');
    c.network.partition([1], [2, 3]);
    // No timeout: without the fix this read would never settle (its context dies with the leadership).
    let outcome: string | undefined;
    void c
      .host(1)
      .readIndex(1)
      .then(
        () => (outcome = 'answered'),
        (e: unknown) => (outcome = e instanceof RuntimeError ? e.code : String(e)),
      );
    await c.waitFor(() => c.host(1).status(1).role !== 'leader', 200, 'the cut-off leader to step down');
    await c.settle();
    expect(outcome).toBe('NOT_LEADER');
  });

  test('a read on a replica that knows no leader fails at once with NOT_LEADER', async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createGroup(1, [1, 2, 3]);
    expect(c.host(1).status(1).leaderReplicaId).toBe(0);
    await expect(c.host(1).readIndex(1)).rejects.toMatchObject({ code: 'NOT_LEADER' });
  });

  test('readOnly leaseBased answers reads from the leader lease without a heartbeat round', async () => {
    c = new TestCluster({ hostConfig: { readOnly: 'leaseBased' } });
    await c.start([1, 2, 3]);
    await c.createGroup(1, [1, 2, 3]);
    const leader = await c.waitForLeader(1);
    const idx = await c.propose(1, 'w');
    await c.settle();
    const before = c.host(leader).stats.messagesSent;
    const reads = Array.from({ length: 5 }, () => c.host(leader).readIndex(1));
    await c.settle();
    for (const r of reads) expect(await r).toBeGreaterThanOrEqual(idx);
    expect(c.host(leader).stats.messagesSent - before).toBe(0);
  });

  describe('clock-checked leases (leaseReads)', () => {
    // electionTicks 10 × TICK_MS 100 ms × leaseRatio 0.9: a lease lasts 900 ms of the manual clock.
    const leaseConfig = { leaseReads: true };

    test('after one ReadIndex round the leader answers reads with no message until the lease ends', async () => {
      c = new TestCluster({ hostConfig: leaseConfig });
      await c.start([1, 2, 3]);
      await c.createGroup(1, [1, 2, 3]);
      const leader = await c.waitForLeader(1);
      const idx = await c.propose(1, 'w');
      const first = c.host(leader).readIndex(1); // a round: it starts the lease
      await c.settle();
      expect(await first).toBeGreaterThanOrEqual(idx);
      const h = c.host(leader);
      const sent = h.stats.messagesSent;
      const leased = h.stats.leaseReads;
      const reads = Array.from({ length: 5 }, () => h.readIndex(1));
      await c.settle();
      for (const r of reads) expect(await r).toBeGreaterThanOrEqual(idx);
      expect({ messages: h.stats.messagesSent - sent, leaseReads: h.stats.leaseReads - leased }).toEqual({
        messages: 0,
        leaseReads: 5,
      });
      // A write acknowledged since is visible to the next lease read.
      const idx2 = await c.propose(1, 'w2');
      const r2 = h.readIndex(1);
      await c.settle();
      expect(await r2).toBeGreaterThanOrEqual(idx2);
    });

    test('a deposed leader cut off from the quorum never serves a read from an expired lease', async () => {
      c = new TestCluster({ hostConfig: leaseConfig, seed: 9 });
      await c.start([1, 2, 3]);
      await c.createLedGroups([1], [1, 2, 3], 1);
      await c.propose(1, 'before');
      const warm = c.host(1).readIndex(1);
      await c.settle();
      await warm;
      c.network.partition([1], [2, 3]);
      await c.waitFor(() => [2, 3].some((n) => c.host(n).status(1).role === 'leader'), 200, 'new leader');
      const newLeader = [2, 3].find((n) => c.host(n).status(1).role === 'leader')!;
      const p = c.host(newLeader).propose(1, Buffer.from('after'));
      await c.settle();
      const { index: afterIndex } = await p;
      // The old side's read: by now its lease is long over, so it must not answer below afterIndex.
      let answered: number | undefined;
      const leasedBefore = c.host(1).stats.leaseReads;
      void c
        .host(1)
        .readIndex(1, { timeoutMs: 500 })
        .then(
          (i) => (answered = i),
          () => undefined,
        );
      await c.tick(8);
      expect({ answered, leaseReads: c.host(1).stats.leaseReads - leasedBefore }).toEqual({
        answered: undefined,
        leaseReads: 0,
      });
      expect(afterIndex).toBeGreaterThan(0);
    });

    test('a leadership transfer ends the lease: the next read takes a ReadIndex round', async () => {
      c = new TestCluster({ hostConfig: leaseConfig });
      await c.start([1, 2, 3]);
      await c.createLedGroups([1], [1, 2, 3], 1);
      await c.propose(1, 'w');
      const warm = c.host(1).readIndex(1);
      await c.settle();
      await warm;
      const leased = c.host(1).stats.leaseReads;
      c.host(1).transferLeader(1, 2);
      const r = c
        .host(1)
        .readIndex(1, { timeoutMs: 300 })
        .catch(() => -1);
      await c.tick(5);
      await r;
      expect(c.host(2).status(1).role).toBe('leader');
      expect(c.host(1).stats.leaseReads).toBe(leased);
    });

    test('reads past half the lease renew it in the background, so steady reads never wait for a round', async () => {
      c = new TestCluster({ hostConfig: leaseConfig });
      await c.start([1, 2, 3]);
      await c.createGroup(1, [1, 2, 3]);
      const leader = await c.waitForLeader(1);
      await c.propose(1, 'w');
      const warm = c.host(leader).readIndex(1);
      await c.settle();
      await warm;
      const h = c.host(leader);
      const leased = h.stats.leaseReads;
      // 30 reads, one per tick: 3 s of clock, more than three leases long.
      for (let i = 0; i < 30; i++) {
        const r = h.readIndex(1);
        await c.tick();
        await r;
      }
      expect(h.stats.leaseReads - leased).toBe(30);
    });
  });

  test('reads queued together share one ReadIndex round and each sees every write acknowledged before it', async () => {
    c = new TestCluster();
    await c.start([1, 2, 3]);
    await c.createGroup(1, [1, 2, 3]);
    const leader = await c.waitForLeader(1);
    const idx = await c.propose(1, 'w1');
    const before = c.host(leader).stats.messagesSent;
    const reads = Array.from({ length: 50 }, () => c.host(leader).readIndex(1));
    await c.settle();
    for (const r of reads) expect(await r).toBeGreaterThanOrEqual(idx);
    // One heartbeat round to 2 followers (plus slack for a tick), not 50.
    expect(c.host(leader).stats.messagesSent - before).toBeLessThan(10);
    const idx2 = await c.propose(1, 'w2');
    // A follower's reads are batched too (one forwarded ReadIndex) and see the second write.
    const follower = [1, 2, 3].find((n) => n !== leader) as number;
    const freads = Array.from({ length: 20 }, () => c.host(follower).readIndex(1));
    await c.settle();
    for (const r of freads) expect(await r).toBeGreaterThanOrEqual(idx2);
  });
});
