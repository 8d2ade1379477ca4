import type { HardState, ReplicaId } from '../core/types.js';

/** SimulationFailure is thrown when a Raft safety or liveness property is violated. */
export class SimulationFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimulationFailure';
  }
}

/** A read-index request the checker is waiting on. */
interface PendingRead {
  readonly issuedBy: ReplicaId;
  /** Highest index of a write acknowledged to a client before the read was issued. */
  readonly minIndex: number;
  /** False for lease-based reads issued while clocks could be skewed: they are not checked. */
  readonly checked: boolean;
  served: boolean;
}

/**
 * InvariantChecker holds the cluster-wide knowledge needed to check Raft's safety properties
 * (Raft paper Figure 3) as the simulation observes each replica:
 *
 * - Election Safety (§5.2): at most one leader per term.
 * - Log Matching (§5.3): two persisted logs holding an entry with the same index and term hold the
 *   same entries up to it (checked as: same index+term ⇒ same prefix digest).
 * - Leader Completeness (§5.4): an entry committed by term t is in the log of every leader of a term
 *   >= t (checked when the leader's log is fully persisted).
 * - State Machine Safety (§5.4.3): no two replicas apply different entries at one index.
 * - Durable hard state: term and commit never decrease, and a replica never votes twice in a term.
 * - ReadIndex linearizability (§6.4): a read's index covers every write acknowledged before it.
 */
export class InvariantChecker {
  readonly #leaderOfTerm = new Map<number, ReplicaId>();
  /** `${index}/${term}` → prefix digest, over every entry any replica ever persisted. */
  readonly #persisted = new Map<string, number>();
  /** index → prefix digest, for every index some replica reported as committed. */
  readonly #committed = new Map<number, number>();
  /** term → the highest index committed as known at that term, with its digest. */
  readonly #commitByTerm = new Map<number, { index: number; digest: number }>();
  /** index → digest of the state machine after applying it, over all replicas. */
  readonly #applied = new Map<number, number>();
  readonly #reads = new Map<string, PendingRead>();
  #maxAckedIndex = 0;
  leadersSeen = 0;
  commitsSeen = 0;

  get maxAckedIndex(): number {
    return this.#maxAckedIndex;
  }

  /** observeLeader records that `id` is leader in `term` (Election Safety, §5.2). */
  observeLeader(id: ReplicaId, term: number): void {
    const prev = this.#leaderOfTerm.get(term);
    if (prev === undefined) {
      this.#leaderOfTerm.set(term, id);
      this.leadersSeen++;
    } else if (prev !== id) {
      throw new SimulationFailure(`election safety: replicas ${prev} and ${id} are both leader in term ${term}`);
    }
  }

  /** observeHardState checks a durable hard-state transition of one replica. */
  observeHardState(id: ReplicaId, prev: HardState, next: HardState): void {
    if (next.term < prev.term) {
      throw new SimulationFailure(`replica ${id}: persisted term went back from ${prev.term} to ${next.term}`);
    }
    if (next.term === prev.term && prev.vote !== 0 && next.vote !== prev.vote) {
      throw new SimulationFailure(
        `replica ${id}: voted for ${prev.vote} and then ${next.vote} in term ${next.term} (double vote)`,
      );
    }
    if (next.commit < prev.commit) {
      throw new SimulationFailure(`replica ${id}: persisted commit went back from ${prev.commit} to ${next.commit}`);
    }
  }

  /** observePersisted records a persisted entry's prefix digest (Log Matching, §5.3). */
  observePersisted(id: ReplicaId, index: number, term: number, digest: number): void {
    const key = `${index}/${term}`;
    const prev = this.#persisted.get(key);
    if (prev === undefined) this.#persisted.set(key, digest);
    else if (prev !== digest) {
      throw new SimulationFailure(
        `log matching: replica ${id} persisted entry ${term}/${index} whose log prefix differs from another replica's`,
      );
    }
  }

  /**
   * observeCommit records that replica `id`, at `term`, holds `index` as committed with the given
   * prefix digest. Two different prefixes can never both be committed at one index.
   */
  observeCommit(id: ReplicaId, term: number, index: number, digest: number): void {
    const prev = this.#committed.get(index);
    if (prev === undefined) {
      this.#committed.set(index, digest);
      this.commitsSeen++;
    } else if (prev !== digest) {
      throw new SimulationFailure(`replica ${id} committed a log prefix at index ${index} that differs from another's`);
    }
    const byTerm = this.#commitByTerm.get(term);
    if (byTerm === undefined || byTerm.index < index) this.#commitByTerm.set(term, { index, digest });
  }

  /**
   * checkLeaderLog verifies Leader Completeness (§5.4) for a leader of `term` whose whole log is
   * persisted. `digestAt(i)` returns its prefix digest at i, or undefined when i is outside its
   * log (compacted into a snapshot: fine, a snapshot only holds committed entries; or beyond).
   */
  checkLeaderLog(id: ReplicaId, term: number, lastIndex: number, digestAt: (i: number) => number | undefined): void {
    let best: { index: number; digest: number; term: number } | undefined;
    for (const [t, c] of this.#commitByTerm) {
      if (t <= term && (best === undefined || c.index > best.index)) best = { ...c, term: t };
    }
    if (best === undefined) return;
    if (lastIndex < best.index) {
      throw new SimulationFailure(
        `leader completeness: leader ${id} of term ${term} has last index ${lastIndex}, ` +
          `but index ${best.index} was committed by term ${best.term}`,
      );
    }
    const d = digestAt(best.index);
    if (d !== undefined && d !== best.digest) {
      throw new SimulationFailure(
        `leader completeness: leader ${id} of term ${term} lacks the entries committed up to ` +
          `index ${best.index} by term ${best.term}`,
      );
    }
  }

  /** observeApply records the state-machine digest after replica `id` applied `index` (§5.4.3). */
  observeApply(id: ReplicaId, index: number, digest: number): void {
    const prev = this.#applied.get(index);
    if (prev === undefined) this.#applied.set(index, digest);
    else if (prev !== digest) {
      throw new SimulationFailure(
        `state machine safety: replica ${id} applied a different entry at index ${index} than another replica`,
      );
    }
  }

  /** observeAck records that a write committed at `index` was acknowledged to its client. */
  observeAck(index: number): void {
    if (index > this.#maxAckedIndex) this.#maxAckedIndex = index;
  }

  /** issueRead registers a read-index request; `checked` false exempts it (lease reads under skew). */
  issueRead(ctx: string, issuedBy: ReplicaId, checked: boolean): void {
    this.#reads.set(ctx, { issuedBy, minIndex: this.#maxAckedIndex, checked, served: false });
  }

  /** observeReadState checks a read-index result against the writes acknowledged before the read. */
  observeReadState(id: ReplicaId, ctx: string, index: number): void {
    const r = this.#reads.get(ctx);
    if (r === undefined) {
      throw new SimulationFailure(`replica ${id} returned a read state for unknown request ${JSON.stringify(ctx)}`);
    }
    if (r.checked && index < r.minIndex) {
      throw new SimulationFailure(
        `read-index linearizability: read ${JSON.stringify(ctx)} (issued on ${r.issuedBy}) got index ${index}, ` +
          `but a write at index ${r.minIndex} was acknowledged before it was issued`,
      );
    }
    r.served = true;
  }

  readServed(ctx: string): boolean {
    return this.#reads.get(ctx)?.served ?? false;
  }
}
