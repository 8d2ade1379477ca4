/**
 * coreBench prints how many proposals per second the Raft core alone commits: in memory, no I/O,
 * messages handed over synchronously, every Ready handled by the contract (persist to
 * MemoryStorage, send, apply, advance). Figures, not assertions (CONVENTIONS.md rule 9):
 *
 *   pnpm --filter @omnidict/raft run bench
 *
 * 1. One 3-replica group: proposals in batches of 1 and of 64, pumped until applied on the leader.
 * 2. 1,000 groups of 3 replicas ticking together: each round proposes one entry per group, ticks
 *    every replica once, and pumps every group until quiet.
 */
import { MemoryStorage } from '../core/memoryStorage.js';
import { RawNode } from '../core/rawNode.js';
import type { Message } from '../core/types.js';
import { StateRole } from '../core/types.js';
import { Prng } from '../testing/prng.js';

const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 1;
const COMPACT_EVERY = 10_000;

interface BenchNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  applied: number;
  /** Normal entries with data applied here (committed proposals, not the leader's empty entries). */
  appliedProposals: number;
}

/** BenchGroup is one Raft group whose replicas exchange messages through an in-memory queue. */
class BenchGroup {
  readonly nodes: BenchNode[] = [];
  #queue: Message[] = [];

  constructor(size: number, prng: Prng) {
    const voters = Array.from({ length: size }, (_, i) => i + 1);
    for (const id of voters) {
      const storage = new MemoryStorage({ voters });
      storage.applySnapshot({
        metadata: { index: 1, term: 1, confState: { voters, learners: [] } },
        data: new Uint8Array(),
      });
      storage.setHardState({ term: 1, vote: 0, commit: 1 });
      const raw = new RawNode({
        id,
        storage,
        applied: 1,
        electionTick: ELECTION_TICK,
        heartbeatTick: HEARTBEAT_TICK,
        checkQuorum: true,
        preVote: true,
        rng: prng.fork().asFunction(),
      });
      this.nodes.push({ raw, storage, applied: 1, appliedProposals: 0 });
    }
  }

  get leader(): BenchNode {
    return this.nodes[0] as BenchNode;
  }

  /** elect makes replica 1 the leader and settles the group. */
  elect(): void {
    this.leader.raw.campaign();
    this.pump();
    if (this.leader.raw.status().softState.role !== StateRole.Leader) throw new Error('bench: election failed');
  }

  tick(): void {
    for (const n of this.nodes) n.raw.tick();
  }

  /** pump handles Readys and delivers messages until the group is quiet. */
  pump(): void {
    for (;;) {
      let busy = false;
      for (const n of this.nodes) {
        if (!n.raw.hasReady()) continue;
        busy = true;
        const rd = n.raw.ready();
        if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
        if (rd.entries.length > 0) n.storage.append(rd.entries);
        if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
        for (const m of rd.messages) this.#queue.push(m);
        for (const e of rd.committedEntries) {
          n.applied = e.index;
          if (e.data.length > 0) n.appliedProposals++;
        }
        n.raw.advance(rd);
        if (n.applied - n.storage.firstIndex() > COMPACT_EVERY) n.storage.compact(n.applied - 100);
      }
      if (this.#queue.length > 0) {
        busy = true;
        const q = this.#queue;
        this.#queue = [];
        for (const m of q) this.nodes[m.to - 1]?.raw.step(m);
      }
      if (!busy) return;
    }
  }
}

const payload = new Uint8Array(64).fill(7);

function benchOneGroup(batch: number, durationMs: number): number {
  const g = new BenchGroup(3, new Prng(1));
  g.elect();
  const start = process.hrtime.bigint();
  const base = g.leader.appliedProposals;
  let elapsedMs = 0;
  while (elapsedMs < durationMs) {
    for (let i = 0; i < batch; i++) g.leader.raw.propose(payload);
    g.pump();
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return ((g.leader.appliedProposals - base) / elapsedMs) * 1000;
}

function benchManyGroups(groups: number, durationMs: number): { proposalsPerSec: number; roundsPerSec: number } {
  const prng = new Prng(2);
  const all = Array.from({ length: groups }, () => new BenchGroup(3, prng));
  for (const g of all) g.elect();
  const base = all.reduce((s, g) => s + g.leader.appliedProposals, 0);
  const start = process.hrtime.bigint();
  let rounds = 0;
  let elapsedMs = 0;
  while (elapsedMs < durationMs) {
    for (const g of all) g.leader.raw.propose(payload);
    for (const g of all) g.tick();
    for (const g of all) g.pump();
    rounds++;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const committed = all.reduce((s, g) => s + g.leader.appliedProposals, 0) - base;
  for (const g of all) {
    if (g.leader.raw.status().softState.role !== StateRole.Leader) throw new Error('bench: a group lost its leader');
  }
  return { proposalsPerSec: (committed / elapsedMs) * 1000, roundsPerSec: (rounds / elapsedMs) * 1000 };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

const DURATION_MS = Number(process.env.BENCH_MS ?? 3000);
process.stdout.write(`raft core bench (in memory, no I/O, ${DURATION_MS} ms per case, node ${process.version})\n`);
benchOneGroup(1, 300); // warm up the JIT
process.stdout.write(`3-replica group, batch 1:  ${fmt(benchOneGroup(1, DURATION_MS))} committed proposals/s\n`);
process.stdout.write(`3-replica group, batch 64: ${fmt(benchOneGroup(64, DURATION_MS))} committed proposals/s\n`);
const many = benchManyGroups(1000, DURATION_MS);
process.stdout.write(
  `1,000 groups x 3 replicas, 1 proposal per group per tick: ${fmt(many.proposalsPerSec)} committed proposals/s ` +
    `(${many.roundsPerSec.toFixed(1)} ticks/s across all groups)\n`,
);
