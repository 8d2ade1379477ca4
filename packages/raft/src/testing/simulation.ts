import { decodeConfChange } from '../core/confChangeCodec.js';
import { RaftError } from '../core/errors.js';
import { MemoryStorage } from '../core/memoryStorage.js';
import { RawNode } from '../core/rawNode.js';
import type { ConfChange, ConfState, Entry, Message, ReadOnlyOption, Ready, ReplicaId } from '../core/types.js';
import { ConfChangeType, EntryType, MessageType, StateRole } from '../core/types.js';
import {
  formatConfChange,
  formatConfState,
  formatEntry,
  formatMessage,
  formatReady,
  formatRole,
} from './formatMessage.js';
import { InvariantChecker, SimulationFailure } from './invariantChecker.js';
import { decodeSnapshotData, digestEntry, EMPTY_DIGEST, encodeSnapshotData } from './logDigest.js';
import { Prng } from './prng.js';
import type { NetworkFaults } from './simNetwork.js';
import { SimNetwork } from './simNetwork.js';
import { TraceRecorder } from './traceRecorder.js';

/** Options of one simulation run. Everything not given is derived from the seed. */
export interface SimulationOptions {
  readonly seed: number;
  /** Random-phase events before the network heals and liveness is checked (DEFAULT_STEPS). */
  readonly steps?: number;
  /** Initial voters (3 or 5 by seed). */
  readonly voters?: number;
  /** Initial learners (0 or 1 by seed). */
  readonly learners?: number;
  readonly electionTick?: number;
  readonly heartbeatTick?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  readonly faults?: Partial<NetworkFaults>;
  /** Crash-restart replicas (default true). */
  readonly crashes?: boolean;
  /** Propose membership changes (default true). */
  readonly confChanges?: boolean;
  /** Record a readable trace of every event (default false; a failing run is rerun traced). */
  readonly trace?: boolean;
  /**
   * Deliberately break the harness's side of the Ready contract, to show that the checker catches
   * the consequences (a checker that cannot fail proves nothing). `forgetVoteOnRestart`: a
   * restarted replica lost its persisted vote, as if the hard state had not been synced.
   * `sendBeforePersist`: some Readys send their messages and then crash before persisting.
   */
  readonly sabotage?: 'forgetVoteOnRestart' | 'sendBeforePersist';
}

export interface SimulationStats {
  steps: number;
  ticks: number;
  leaders: number;
  commitPoints: number;
  proposals: number;
  acked: number;
  reads: number;
  readsServed: number;
  confChanges: number;
  crashes: number;
  snapshotsSent: number;
  messages: number;
}

export type SimulationResult =
  | { readonly ok: true; readonly seed: number; readonly stats: SimulationStats; readonly trace?: string }
  | {
      readonly ok: false;
      readonly seed: number;
      readonly error: string;
      readonly trace: string;
      readonly stats: SimulationStats;
    };

/** Resolved per-run parameters (the seed picks what the options leave open). */
interface SimParams {
  readonly voters: number;
  readonly learners: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly faults: NetworkFaults;
  readonly crashes: boolean;
  readonly confChanges: boolean;
  /** Probability that a replica misses a tick (clock skew); 0 for lease reads, which rely on bounded drift. */
  readonly tickSkipRate: number;
  readonly sabotage: SimulationOptions['sabotage'];
}

const BOOTSTRAP_INDEX = 1;
const BOOTSTRAP_TERM = 1;
const MIN_VOTERS = 3;
const MAX_MEMBERS = 7;
const MAX_CRASHED = 2;
/** Random-phase events per seed when not given. */
export const DEFAULT_STEPS = 2500;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * runSimulation runs one seeded simulation of a Raft group and checks Raft's safety properties
 * after every event and liveness once the network heals. It never throws: a violation (or an
 * exception out of the core) is returned with the seed and, for a run that was not traced, the
 * trace of a deterministic rerun.
 */
export function runSimulation(opts: SimulationOptions): SimulationResult {
  const first = runOnce(opts);
  if (first.ok || opts.trace === true) return first;
  const traced = runOnce({ ...opts, trace: true });
  if (!traced.ok && traced.error !== first.error) {
    return { ...first, trace: `${traced.trace}\n(non-deterministic rerun: it failed with "${traced.error}")` };
  }
  return traced.ok ? { ...first, trace: '(rerun with tracing passed: the run is not deterministic)' } : traced;
}

function runOnce(opts: SimulationOptions): SimulationResult {
  const sim = new Simulation(opts);
  try {
    sim.run(opts.steps ?? DEFAULT_STEPS);
    if (!sim.trace.enabled) return { ok: true, seed: opts.seed, stats: sim.stats };
    sim.dumpState(undefined);
    return { ok: true, seed: opts.seed, stats: sim.stats, trace: sim.trace.format() };
  } catch (e) {
    const error =
      e instanceof SimulationFailure ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    sim.dumpState(e instanceof SimulationFailure ? undefined : e);
    return { ok: false, seed: opts.seed, error, trace: sim.trace.format(), stats: sim.stats };
  }
}

/**
 * SimNode is one simulated replica. `storage` and the digest chain mirroring it are durable and
 * survive a crash; everything else (the RawNode, the state machine, pending client requests) is
 * volatile and lost. The state machine is the digest of the applied log prefix, so it is rebuilt
 * on restart from the snapshot and the replay of committed entries.
 */
class SimNode {
  readonly id: ReplicaId;
  readonly storage: MemoryStorage;
  readonly rng: Prng;
  /** chain[k] is the prefix digest of the durable log at index chainBase + k. */
  chainBase: number;
  chain: number[];
  state: 'up' | 'crashed' | 'removed' = 'crashed';
  raw: RawNode | undefined;
  applied = 0;
  digest = EMPTY_DIGEST;
  confState: ConfState = { voters: [], learners: [] };
  /** index → term of proposals made here and not yet applied (a client waiting for its ack). */
  proposals = new Map<number, number>();

  constructor(id: ReplicaId, storage: MemoryStorage, chainBase: number, baseDigest: number, rng: Prng) {
    this.id = id;
    this.storage = storage;
    this.chainBase = chainBase;
    this.chain = [baseDigest];
    this.rng = rng;
  }

  digestAt(i: number): number | undefined {
    const k = i - this.chainBase;
    return k >= 0 && k < this.chain.length ? this.chain[k] : undefined;
  }

  get lastIndex(): number {
    return this.chainBase + this.chain.length - 1;
  }
}

type Action =
  | 'deliver'
  | 'ready'
  | 'tick'
  | 'propose'
  | 'read'
  | 'confChange'
  | 'transfer'
  | 'partition'
  | 'heal'
  | 'crash'
  | 'restart'
  | 'snapshot';

class Simulation {
  readonly trace: TraceRecorder;
  readonly stats: SimulationStats = {
    steps: 0,
    ticks: 0,
    leaders: 0,
    commitPoints: 0,
    proposals: 0,
    acked: 0,
    reads: 0,
    readsServed: 0,
    confChanges: 0,
    crashes: 0,
    snapshotsSent: 0,
    messages: 0,
  };
  readonly #prng: Prng;
  readonly #params: SimParams;
  readonly #net: SimNetwork;
  readonly #checker = new InvariantChecker();
  readonly #nodes = new Map<ReplicaId, SimNode>();
  #time = 0;
  #nextId: number;
  #proposalSeq = 0;
  #readSeq = 0;
  /** While false (random phase under lease reads), read results are recorded but not checked. */
  #readsChecked: boolean;
  /** `${id}:${index}/${term}` of every acknowledged proposal (for the liveness phase). */
  readonly #acks = new Set<string>();

  constructor(opts: SimulationOptions) {
    this.#prng = new Prng(opts.seed);
    this.trace = new TraceRecorder({ enabled: opts.trace === true, maxLines: 20_000 });
    const p = this.#prng;
    // Lease reads require check-quorum: never pick them by chance when check-quorum is turned off.
    const leaseByChance = p.chance(0.15) && opts.checkQuorum !== false;
    const readOnlyOption = opts.readOnlyOption ?? (leaseByChance ? 'leaseBased' : 'safe');
    const heavy = p.chance(0.3);
    this.#params = {
      voters: opts.voters ?? (p.chance(0.5) ? 3 : 5),
      learners: opts.learners ?? (p.chance(0.3) ? 1 : 0),
      electionTick: opts.electionTick ?? 6,
      heartbeatTick: opts.heartbeatTick ?? 1,
      preVote: opts.preVote ?? p.chance(0.5),
      checkQuorum: opts.checkQuorum ?? (readOnlyOption === 'leaseBased' ? true : p.chance(0.5)),
      readOnlyOption,
      maxSizePerMsg: p.pick([32, 64, 1024]),
      maxInflightMsgs: p.pick([1, 3, 256]),
      faults: {
        dropRate: heavy ? 0.2 : p.pick([0, 0.02, 0.08]),
        duplicateRate: p.pick([0, 0.02, 0.1]),
        maxDelayTicks: p.pick([0, 1, 2]),
        longDelayRate: p.pick([0, 0.01, 0.05]),
        longDelayTicks: 12,
        ...opts.faults,
      },
      crashes: opts.crashes ?? true,
      confChanges: opts.confChanges ?? true,
      tickSkipRate: readOnlyOption === 'leaseBased' ? 0 : p.pick([0, 0.05]),
      sabotage: opts.sabotage,
    };
    this.#readsChecked = readOnlyOption === 'safe';
    this.#net = new SimNetwork(p.fork(), this.#params.faults);
    this.#nextId = this.#params.voters + this.#params.learners + 1;
  }

  run(steps: number): void {
    const pr = this.#params;
    this.trace.record(
      () =>
        `seed params: voters=${pr.voters} learners=${pr.learners} electionTick=${pr.electionTick} ` +
        `heartbeatTick=${pr.heartbeatTick} preVote=${pr.preVote} checkQuorum=${pr.checkQuorum} ` +
        `readOnly=${pr.readOnlyOption} maxSizePerMsg=${pr.maxSizePerMsg} maxInflight=${pr.maxInflightMsgs} ` +
        `faults=${JSON.stringify(pr.faults)} tickSkip=${pr.tickSkipRate}`,
    );
    this.#bootstrap();
    for (let i = 0; i < steps; i++) {
      this.stats.steps++;
      this.trace.step = this.stats.steps;
      this.#randomStep();
      this.#checkRoles();
    }
    this.#livenessPhase();
  }

  // ---------------------------------------------------------------------------------------------
  // Replicas

  #bootstrap(): void {
    const pr = this.#params;
    const voters = range(1, pr.voters);
    const learners = range(pr.voters + 1, pr.voters + pr.learners);
    const confState: ConfState = { voters, learners };
    // Every initial replica starts from the same snapshot at index 1 (as if the group had been
    // created by a split): a replica added later has an empty log and must be caught up by a
    // snapshot carrying the membership, never by replaying a log that lacks the initial config.
    const bootDigest = digestEntry(EMPTY_DIGEST, {
      term: BOOTSTRAP_TERM,
      index: BOOTSTRAP_INDEX,
      type: EntryType.Normal,
      data: new Uint8Array(),
    });
    for (const id of [...voters, ...learners]) {
      const storage = new MemoryStorage({ voters, learners });
      storage.applySnapshot({
        metadata: { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, confState },
        data: encodeSnapshotData(BOOTSTRAP_INDEX, bootDigest),
      });
      storage.setHardState({ term: BOOTSTRAP_TERM, vote: 0, commit: BOOTSTRAP_INDEX });
      const node = new SimNode(id, storage, BOOTSTRAP_INDEX, bootDigest, this.#prng.fork());
      this.#nodes.set(id, node);
      this.#checker.observePersisted(id, BOOTSTRAP_INDEX, BOOTSTRAP_TERM, bootDigest);
      this.#checker.observeApply(id, BOOTSTRAP_INDEX, bootDigest);
      this.#start(node);
    }
    this.trace.record(() => `bootstrap ${formatConfState(confState)} from a snapshot at ${BOOTSTRAP_TERM}/1`);
  }

  /** #addJoiner creates a replica with an empty log and no membership (it learns both by snapshot). */
  #addJoiner(id: ReplicaId): void {
    const node = new SimNode(id, new MemoryStorage({}), 0, EMPTY_DIGEST, this.#prng.fork());
    this.#nodes.set(id, node);
    this.#start(node);
    this.trace.record(`create replica ${id} (empty log)`);
  }

  /** #start (re)creates the volatile half of a replica from its durable storage. */
  #start(n: SimNode): void {
    const pr = this.#params;
    if (pr.sabotage === 'forgetVoteOnRestart' && n.state === 'crashed' && n.raw === undefined && n.applied > 0) {
      n.storage.setHardState({ ...n.storage.hardState, vote: 0 });
    }
    const snap = n.storage.snapshot();
    const sd = decodeSnapshotData(snap.data);
    n.applied = snap.metadata.index;
    n.digest = sd.digest;
    n.confState = snap.metadata.confState;
    n.proposals = new Map();
    n.raw = new RawNode({
      id: n.id,
      electionTick: pr.electionTick,
      heartbeatTick: pr.heartbeatTick,
      storage: n.storage,
      applied: snap.metadata.index,
      maxSizePerMsg: pr.maxSizePerMsg,
      maxInflightMsgs: pr.maxInflightMsgs,
      checkQuorum: pr.checkQuorum,
      preVote: pr.preVote,
      readOnlyOption: pr.readOnlyOption,
      rng: n.rng.asFunction(),
    });
    n.state = 'up';
  }

  #crash(n: SimNode, why: string): void {
    n.state = 'crashed';
    n.raw = undefined;
    n.proposals = new Map();
    this.stats.crashes++;
    this.trace.record(() => `CRASH ${n.id} (${why}); durable: ${this.#describeDurable(n)}`);
  }

  /** #destroy removes a replica for good once its removal committed (as the runtime GCs it). */
  #destroy(id: ReplicaId, by: ReplicaId): void {
    const n = this.#nodes.get(id);
    if (n === undefined || n.state === 'removed') return;
    n.state = 'removed';
    n.raw = undefined;
    this.#net.dropTo(id);
    this.trace.record(`destroy replica ${id} (its removal was applied by ${by})`);
  }

  #up(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.#nodes.values()) if (n.state === 'up') out.push(n);
    return out;
  }

  #raw(n: SimNode): RawNode {
    if (n.raw === undefined) throw new Error(`replica ${n.id} is not running`);
    return n.raw;
  }

  /** #leader returns a running replica that believes it leads, the one with the highest term. */
  #leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.#up()) {
      const st = this.#raw(n).status();
      if (st.softState.role === StateRole.Leader && st.hardState.term > bestTerm) {
        best = n;
        bestTerm = st.hardState.term;
      }
    }
    return best;
  }

  // ---------------------------------------------------------------------------------------------
  // The random phase

  #randomStep(): void {
    const pr = this.#params;
    const p = this.#prng;
    const up = this.#up();
    const crashed = [...this.#nodes.values()].filter((n) => n.state === 'crashed');
    const ready = up.filter((n) => this.#raw(n).hasReady());
    const weights: [Action, number][] = [
      ['deliver', this.#net.hasDue(this.#time) ? 50 : 0],
      ['ready', ready.length > 0 ? 40 : 0],
      ['tick', 5],
      ['propose', 4],
      ['read', 1.5],
      ['confChange', pr.confChanges ? 1.5 : 0],
      ['transfer', 0.8],
      ['partition', this.#net.partitioned ? 0 : 0.2],
      ['heal', this.#net.partitioned ? 0.3 : 0],
      ['crash', pr.crashes && crashed.length < MAX_CRASHED ? 0.15 : 0],
      ['restart', crashed.length > 0 ? 0.6 : 0],
      ['snapshot', 1.2],
    ];
    let total = 0;
    for (const [, w] of weights) total += w;
    let r = p.next() * total;
    let action: Action = 'tick';
    for (const [a, w] of weights) {
      if (r < w) {
        action = a;
        break;
      }
      r -= w;
    }
    switch (action) {
      case 'deliver': {
        const d = this.#net.takeDue(this.#time);
        if (d !== undefined) this.#deliver(d.message, d.cut);
        break;
      }
      case 'ready': {
        const n = p.pick(ready);
        let crashPoint: CrashPoint = 'none';
        if (pr.crashes && crashed.length < MAX_CRASHED && p.chance(0.01)) {
          crashPoint = p.chance(0.5) ? 'afterPersist' : 'afterSend';
          // A leader that sends its early messages (Ready.earlyMessages) then dies before its write.
          if (crashPoint === 'afterPersist' && p.chance(0.5)) crashPoint = 'afterEarlySend';
        }
        if (pr.sabotage === 'sendBeforePersist' && crashed.length < MAX_CRASHED && p.chance(0.05)) {
          crashPoint = 'sabotageSendThenCrash';
        }
        // Commit notices: flushed at once half the time; otherwise they wait for the next tick
        // (a runtime's short timer) and may ride on a later append meanwhile.
        if (p.chance(0.5)) this.#raw(n).flushCommit();
        this.#handleReady(n, crashPoint, p.chance(0.5));
        break;
      }
      case 'tick':
        this.#tick(pr.tickSkipRate);
        break;
      case 'propose':
        this.#propose(up);
        break;
      case 'read':
        if (up.length > 0) this.#readIndex(p.pick(up));
        break;
      case 'confChange':
        this.#proposeConfChange();
        break;
      case 'transfer':
        this.#transferLeader();
        break;
      case 'partition':
        this.#partition();
        break;
      case 'heal':
        this.#net.heal();
        this.trace.record('heal the network');
        break;
      case 'crash':
        if (up.length > 0) this.#crash(p.pick(up), 'random');
        break;
      case 'restart': {
        const n = p.pick(crashed);
        this.#start(n);
        this.trace.record(() => `RESTART ${n.id} from ${this.#describeDurable(n)}`);
        break;
      }
      case 'snapshot':
        if (up.length > 0) this.#snapshotAndCompact(p.pick(up));
        break;
    }
  }

  #tick(skipRate: number): void {
    this.#time++;
    this.trace.time = this.#time;
    this.stats.ticks++;
    const skipped: ReplicaId[] = [];
    for (const n of this.#up()) {
      if (skipRate > 0 && this.#prng.chance(skipRate)) skipped.push(n.id);
      else {
        this.#raw(n).flushCommit();
        this.#raw(n).tick();
      }
    }
    this.trace.record(() => `tick${skipped.length > 0 ? ` (skipped by ${skipped.join(',')})` : ''}`);
  }

  #propose(up: SimNode[]): void {
    if (up.length === 0) return;
    const leader = this.#leader();
    const n = leader !== undefined && this.#prng.chance(0.8) ? leader : this.#prng.pick(up);
    // A quarter of the proposals are batches of 2-4 commands (RawNode.proposeBatch: one append).
    const count = this.#prng.chance(0.25) ? this.#prng.range(2, 4) : 1;
    const data = Array.from({ length: count }, () => `p${++this.#proposalSeq}`);
    try {
      const raw = this.#raw(n);
      const { index, term } =
        count === 1 ? raw.propose(encoder.encode(data[0])) : raw.proposeBatch(data.map((d) => encoder.encode(d)));
      for (let i = 0; i < count; i++) n.proposals.set(index + i, term);
      this.stats.proposals += count;
      this.trace.record(`propose ${JSON.stringify(data)} at ${n.id} -> ${term}/${index}`);
    } catch (e) {
      this.trace.record(`propose ${JSON.stringify(data)} at ${n.id} refused: ${errorCode(e)}`);
    }
  }

  #readIndex(n: SimNode): void {
    const ctx = `r${++this.#readSeq}`;
    this.#checker.issueRead(ctx, n.id, this.#readsChecked);
    this.stats.reads++;
    try {
      this.#raw(n).readIndex(encoder.encode(ctx));
      this.trace.record(
        `read-index ${JSON.stringify(ctx)} at ${n.id} (acked writes up to ${this.#checker.maxAckedIndex})`,
      );
    } catch (e) {
      this.trace.record(`read-index ${JSON.stringify(ctx)} at ${n.id} refused: ${errorCode(e)}`);
    }
  }

  #proposeConfChange(): void {
    const leader = this.#leader();
    if (leader === undefined) return;
    const cs = leader.confState;
    const options: ConfChange[] = [];
    if (cs.voters.length + cs.learners.length < MAX_MEMBERS) {
      options.push({ type: ConfChangeType.AddLearner, replicaId: this.#nextId });
    }
    for (const l of cs.learners) {
      options.push({ type: ConfChangeType.AddVoter, replicaId: l });
      options.push({ type: ConfChangeType.RemoveNode, replicaId: l });
    }
    if (cs.voters.length > MIN_VOTERS) {
      for (const v of cs.voters) options.push({ type: ConfChangeType.RemoveNode, replicaId: v });
    }
    if (options.length === 0) return;
    const cc = this.#prng.pick(options);
    if (cc.type === ConfChangeType.AddLearner) this.#nextId++;
    try {
      const { index, term } = this.#raw(leader).proposeConfChange(cc);
      this.stats.confChanges++;
      this.trace.record(`propose-conf-change ${formatConfChange(cc)} at ${leader.id} -> ${term}/${index}`);
    } catch (e) {
      this.trace.record(`propose-conf-change ${formatConfChange(cc)} at ${leader.id} refused: ${errorCode(e)}`);
    }
  }

  #transferLeader(): void {
    const leader = this.#leader();
    if (leader === undefined) return;
    const targets = leader.confState.voters.filter((v) => v !== leader.id);
    if (targets.length === 0) return;
    const to = this.#prng.pick(targets);
    try {
      this.#raw(leader).transferLeader(to);
      this.trace.record(`transfer-leader ${leader.id} -> ${to}`);
    } catch (e) {
      this.trace.record(`transfer-leader ${leader.id} -> ${to} refused: ${errorCode(e)}`);
    }
  }

  #partition(): void {
    const ids = [...this.#nodes.values()].filter((n) => n.state !== 'removed').map((n) => n.id);
    if (ids.length < 2) return;
    if (this.#prng.chance(0.4)) {
      const id = this.#prng.pick(ids);
      this.#net.isolate(id);
      this.trace.record(`partition: isolate ${id}`);
      return;
    }
    this.#prng.shuffle(ids);
    const k = this.#prng.range(1, Math.floor(ids.length / 2));
    const minority = ids.slice(0, k);
    const majority = ids.slice(k);
    this.#net.partition([majority, minority]);
    this.trace.record(`partition: (${majority.join(' ')}) | (${minority.join(' ')})`);
  }

  #snapshotAndCompact(n: SimNode): void {
    const snapIndex = n.storage.snapshot().metadata.index;
    if (n.applied <= snapIndex + 2 || n.applied > n.storage.lastIndex()) return;
    n.storage.createSnapshot(n.applied, n.confState, encodeSnapshotData(n.applied, n.digest));
    // Keep a small random margin of log behind the snapshot, as the runtime does.
    const compactTo = n.applied - this.#prng.int(3);
    if (compactTo >= n.storage.firstIndex()) {
      n.storage.compact(compactTo);
      n.chain = n.chain.slice(compactTo - n.chainBase);
      n.chainBase = compactTo;
    }
    this.trace.record(
      `snapshot ${n.id} at ${n.applied} (${formatConfState(n.confState)}), log now [${n.storage.firstIndex()}, ${n.storage.lastIndex()}]`,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Messages and Ready

  #deliver(m: Message, cut: boolean): void {
    const to = this.#nodes.get(m.to);
    const from = this.#nodes.get(m.from);
    if (cut || to === undefined || to.state !== 'up') {
      const why = cut ? 'partition' : to === undefined ? 'no such replica' : to.state;
      this.trace.record(() => `lost (${why}): ${formatMessage(m)}`);
      if (m.type === MessageType.Snap && from?.state === 'up') this.#raw(from).reportSnapshot(m.to, false);
      return;
    }
    this.trace.record(() => `deliver ${formatMessage(m)}`);
    this.stats.messages++;
    try {
      this.#raw(to).step(m);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
      this.trace.record(`  ${to.id} step refused: ${e.code} ${e.message}`);
    }
    if (m.type === MessageType.Snap) {
      this.stats.snapshotsSent++;
      if (from?.state === 'up') this.#raw(from).reportSnapshot(m.to, true);
    }
  }

  /**
   * #handleReady processes one Ready exactly as the contract says: persist (snapshot, entries,
   * hard state), then send, then apply, then hand out read states, then advance. `crashPoint`
   * crashes the replica between two of those steps: what was persisted survives, the rest is lost.
   */
  #handleReady(n: SimNode, crashPoint: CrashPoint, sendEarly: boolean): void {
    const raw = this.#raw(n);
    const rd = raw.ready();
    this.trace.record(() => [`${n.id} handling Ready`, ...formatReady(rd, '    ')].join('\n'));
    if (crashPoint === 'sabotageSendThenCrash') {
      for (const m of rd.messages) this.#send(n, m, []);
      this.#crash(n, 'SABOTAGE: sent a Ready, crashed before persisting it');
      return;
    }
    const deferred: (() => void)[] = [];
    // The contract allows Ready.earlyMessages to leave before (in parallel with) the write; the
    // runtime does so. Half the Readys exercise it here, including a crash right after them.
    const early = sendEarly || crashPoint === 'afterEarlySend' ? new Set(rd.earlyMessages) : undefined;
    if (early !== undefined) {
      for (const m of early) this.#send(n, m, deferred);
      if (crashPoint === 'afterEarlySend') {
        this.#crash(n, 'after sending early leader messages, before persisting the Ready');
        return;
      }
    }
    this.#persist(n, rd);
    if (crashPoint === 'afterPersist') {
      this.#crash(n, 'after persisting a Ready, before sending');
      return;
    }

    for (const m of rd.messages) if (early === undefined || !early.has(m)) this.#send(n, m, deferred);
    if (crashPoint === 'afterSend') {
      this.#crash(n, 'after sending a Ready, before applying');
      return;
    }

    if (!this.#apply(n, rd)) return;
    for (const rs of rd.readStates) {
      const ctx = decoder.decode(rs.requestCtx);
      this.#checker.observeReadState(n.id, ctx, rs.index);
      this.stats.readsServed++;
    }
    raw.advance(rd);
    // Local reports wait until the Ready is acknowledged, so the core never sees them mid-Ready.
    for (const f of deferred) f();
    this.#checkLeaderLog(n);
  }

  #persist(n: SimNode, rd: Ready): void {
    const chk = this.#checker;
    if (rd.snapshot !== undefined) {
      const md = rd.snapshot.metadata;
      const sd = decodeSnapshotData(rd.snapshot.data);
      if (sd.index !== md.index) {
        throw new SimulationFailure(`replica ${n.id} got a snapshot at ${md.index} holding state of ${sd.index}`);
      }
      n.storage.applySnapshot(rd.snapshot);
      n.chainBase = md.index;
      n.chain = [sd.digest];
      chk.observePersisted(n.id, md.index, md.term, sd.digest);
    }
    for (const e of rd.entries) {
      if (e.index <= n.chainBase) continue; // MemoryStorage ignores entries covered by the snapshot
      const k = e.index - n.chainBase;
      if (k > n.chain.length) {
        throw new SimulationFailure(
          `replica ${n.id} was asked to persist ${e.term}/${e.index} past its last index ${n.lastIndex}`,
        );
      }
      n.chain.length = k; // a conflicting suffix is replaced
      const d = digestEntry(n.chain[k - 1] as number, e);
      n.chain.push(d);
      chk.observePersisted(n.id, e.index, e.term, d);
    }
    if (rd.entries.length > 0) n.storage.append(rd.entries);
    if (n.storage.lastIndex() !== n.lastIndex) {
      throw new Error(`harness bug: storage last index ${n.storage.lastIndex()} != mirror ${n.lastIndex}`);
    }
    if (rd.hardState !== undefined) {
      chk.observeHardState(n.id, n.storage.hardState, rd.hardState);
      n.storage.setHardState(rd.hardState);
    }
    if (rd.hardState !== undefined || rd.snapshot !== undefined) {
      const hs = n.storage.hardState;
      if (hs.commit > n.lastIndex) {
        throw new SimulationFailure(
          `replica ${n.id} persisted commit ${hs.commit} beyond its last index ${n.lastIndex}`,
        );
      }
      const d = n.digestAt(hs.commit);
      if (d !== undefined) {
        chk.observeCommit(n.id, hs.term, hs.commit, d);
        this.stats.commitPoints++;
      }
    }
  }

  #send(n: SimNode, m: Message, deferred: (() => void)[]): void {
    const to = this.#nodes.get(m.to);
    if (to === undefined || to.state === 'removed') {
      this.trace.record(() => `  not sent (no replica ${m.to}): ${formatMessage(m)}`);
      return;
    }
    const outcome = this.#net.send(m, this.#time);
    if (outcome === 'queued') return;
    this.trace.record(() => `  ${outcome}: ${formatMessage(m)}`);
    const raw = this.#raw(n);
    if (m.type === MessageType.Snap) deferred.push(() => raw.reportSnapshot(m.to, false));
    else if (outcome === 'partitioned' && this.#prng.chance(0.3)) deferred.push(() => raw.reportUnreachable(m.to));
  }

  /** #apply applies a Ready's snapshot and committed entries; false when the replica destroyed itself. */
  #apply(n: SimNode, rd: Ready): boolean {
    const chk = this.#checker;
    if (rd.snapshot !== undefined) {
      const md = rd.snapshot.metadata;
      n.applied = md.index;
      n.digest = decodeSnapshotData(rd.snapshot.data).digest;
      n.confState = md.confState;
      chk.observeApply(n.id, md.index, n.digest);
    }
    const commit = n.storage.hardState.commit;
    for (const e of rd.committedEntries) {
      if (e.index !== n.applied + 1) {
        throw new SimulationFailure(
          `replica ${n.id} was given ${e.term}/${e.index} to apply after applying ${n.applied}`,
        );
      }
      if (e.index > commit) {
        throw new SimulationFailure(
          `replica ${n.id} was given ${e.term}/${e.index} to apply beyond its commit ${commit}`,
        );
      }
      n.digest = digestEntry(n.digest, e);
      n.applied = e.index;
      chk.observeApply(n.id, e.index, n.digest);
      const own = n.digestAt(e.index);
      if (own !== undefined && own !== n.digest) {
        throw new SimulationFailure(
          `replica ${n.id} applied ${e.term}/${e.index}, which is not the entry in its own log`,
        );
      }
      if (e.type === EntryType.ConfChange) {
        if (!this.#applyConfChange(n, e)) return false;
      } else if (n.proposals.get(e.index) === e.term) {
        n.proposals.delete(e.index);
        chk.observeAck(e.index);
        this.#acks.add(`${n.id}:${e.index}/${e.term}`);
        this.stats.acked++;
      }
    }
    return true;
  }

  #applyConfChange(n: SimNode, e: Entry): boolean {
    const cc = decodeConfChange(e.data);
    n.confState = this.#raw(n).applyConfChange(cc);
    this.trace.record(() => `  ${n.id} applied ${formatEntry(e)} -> ${formatConfState(n.confState)}`);
    if (cc.type === ConfChangeType.AddLearner && !this.#nodes.has(cc.replicaId)) this.#addJoiner(cc.replicaId);
    if (cc.type !== ConfChangeType.RemoveNode && n.applied > n.storage.snapshot().metadata.index) {
      // A replica refuses a snapshot whose membership does not include it (etcd-io/raft does the
      // same), so a leader must never offer a new member a snapshot older than its addition. The
      // runtime builds snapshots on demand at the applied index; the harness models that by
      // snapshotting (without compacting) as soon as an addition is applied.
      n.storage.createSnapshot(n.applied, n.confState, encodeSnapshotData(n.applied, n.digest));
    }
    if (cc.type === ConfChangeType.RemoveNode) {
      this.#destroy(cc.replicaId, n.id);
      if (cc.replicaId === n.id) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Checks

  /** #checkRoles runs after every step: Election Safety, and only voters lead, over every running replica. */
  #checkRoles(): void {
    for (const n of this.#nodes.values()) {
      if (n.raw === undefined) continue;
      const st = n.raw.status();
      if (st.softState.role !== StateRole.Leader) continue;
      this.#checker.observeLeader(n.id, st.hardState.term);
      if (!st.confState.voters.includes(n.id)) {
        throw new SimulationFailure(
          `replica ${n.id} is leader in term ${st.hardState.term} but not a voter in its configuration ` +
            formatConfState(st.confState),
        );
      }
    }
    this.stats.leaders = this.#checker.leadersSeen;
  }

  /** #checkLeaderLog checks Leader Completeness once a leader's whole log is persisted. */
  #checkLeaderLog(n: SimNode): void {
    const raw = n.raw;
    if (raw === undefined || raw.hasReady()) return;
    const st = raw.status();
    if (st.softState.role !== StateRole.Leader || st.lastIndex !== n.lastIndex) return;
    this.#checker.checkLeaderLog(n.id, st.hardState.term, n.lastIndex, (i) => n.digestAt(i));
  }

  // ---------------------------------------------------------------------------------------------
  // Liveness

  /**
   * #livenessPhase heals everything (partitions, lossy links, crashed replicas, clock skew) and
   * then requires, within bounded ticks: a leader; a new proposal applied on every voter of the
   * leader's membership; and a read-index request answered (and linearizable).
   */
  #livenessPhase(): void {
    const pr = this.#params;
    this.trace.record('=== heal: network healed, crashed replicas restarted; checking liveness ===');
    this.#net.heal();
    this.#net.faults = { dropRate: 0, duplicateRate: 0, maxDelayTicks: 1, longDelayRate: 0, longDelayTicks: 0 };
    for (const n of this.#nodes.values()) {
      if (n.state === 'crashed') {
        this.#start(n);
        this.trace.record(() => `RESTART ${n.id} from ${this.#describeDurable(n)}`);
      }
    }
    this.#readsChecked = true;
    const maxTicks = pr.electionTick * 40;
    let write: { node: SimNode; index: number; term: number; at: number } | undefined;
    let writeDone = false;
    let read: { ctx: string; at: number } | undefined;
    let leaderSeenAt = -1;
    for (let t = 0; t <= maxTicks; t++) {
      this.#settle();
      const leader = this.#leader();
      if (leader !== undefined && leaderSeenAt < 0) leaderSeenAt = t;
      if (!writeDone) {
        if (write !== undefined && t - write.at > pr.electionTick * 4) write = undefined; // lost: retry
        if (write === undefined && leader !== undefined) {
          try {
            const { index, term } = this.#raw(leader).propose(encoder.encode(`live${t}`));
            leader.proposals.set(index, term);
            write = { node: leader, index, term, at: t };
            this.trace.record(`liveness: propose at ${leader.id} -> ${term}/${index}`);
          } catch (e) {
            this.trace.record(`liveness: propose at ${leader.id} refused: ${errorCode(e)}`);
          }
        }
        if (write !== undefined && this.#acks.has(`${write.node.id}:${write.index}/${write.term}`)) {
          const w = write;
          const lagging = w.node.confState.voters.filter((v) => {
            const n = this.#nodes.get(v);
            return n === undefined || n.state !== 'up' || n.applied < w.index;
          });
          if (lagging.length === 0) {
            writeDone = true;
            this.trace.record(
              `liveness: ${w.term}/${w.index} applied on all voters ${w.node.confState.voters.join(',')}`,
            );
          }
        }
      } else if (leader !== undefined) {
        if (read !== undefined && this.#checker.readServed(read.ctx)) {
          this.trace.record(`liveness: read ${read.ctx} served after ${t} ticks`);
          return;
        }
        if (read === undefined || t - read.at > pr.electionTick * 4) {
          read = { ctx: `r${++this.#readSeq}`, at: t };
          this.#checker.issueRead(read.ctx, leader.id, true);
          this.stats.reads++;
          try {
            this.#raw(leader).readIndex(encoder.encode(read.ctx));
            this.trace.record(`liveness: read-index ${read.ctx} at ${leader.id}`);
          } catch (e) {
            this.trace.record(`liveness: read-index at ${leader.id} refused: ${errorCode(e)}`);
          }
        }
      }
      this.#tick(0);
      this.#checkRoles();
    }
    if (leaderSeenAt < 0) throw new SimulationFailure(`liveness: no leader within ${maxTicks} ticks after healing`);
    if (!writeDone) {
      throw new SimulationFailure(
        `liveness: a proposal did not commit on all live voters within ${maxTicks} ticks after healing` +
          (write === undefined
            ? ' (no proposal was accepted)'
            : ` (last try ${write.term}/${write.index} at ${write.node.id})`),
      );
    }
    throw new SimulationFailure(`liveness: no read-index request was served within ${maxTicks} ticks after healing`);
  }

  /** #settle delivers every due message and handles every Ready until the group is quiet. */
  #settle(): void {
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const d of this.#prng.shuffle(this.#net.takeAllDue(this.#time))) {
        busy = true;
        this.#deliver(d.message, d.cut);
        this.#checkRoles();
      }
      for (const n of this.#up()) {
        n.raw?.flushCommit();
        if (n.raw?.hasReady()) {
          busy = true;
          this.#handleReady(n, 'none', false);
          this.#checkRoles();
        }
      }
      if (!busy) return;
    }
    throw new SimulationFailure(
      'liveness: the group never went quiet (1000 rounds of messages and Readys in one tick)',
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Trace helpers

  #describeDurable(n: SimNode): string {
    const hs = n.storage.hardState;
    const snap = n.storage.snapshot().metadata;
    return (
      `hs{term:${hs.term} vote:${hs.vote} commit:${hs.commit}} snap ${snap.term}/${snap.index} ` +
      `log [${n.storage.firstIndex()}, ${n.storage.lastIndex()}]`
    );
  }

  /** dumpState appends the final state of every replica (and an unexpected exception) to the trace. */
  dumpState(error: unknown): void {
    if (!this.trace.enabled) return;
    if (error !== undefined) {
      this.trace.record(`EXCEPTION: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    this.trace.record('=== final state ===');
    for (const n of this.#nodes.values()) {
      let role = n.state;
      if (n.raw !== undefined) {
        const st = n.raw.status();
        role =
          `${formatRole(st.softState.role)} term ${st.hardState.term} lead ${st.softState.leaderId}` as typeof role;
      }
      this.trace.record(
        () =>
          `replica ${n.id}: ${role}; applied ${n.applied} ${formatConfState(n.confState)}; durable ${this.#describeDurable(n)}`,
      );
    }
  }
}

type CrashPoint = 'none' | 'afterPersist' | 'afterEarlySend' | 'afterSend' | 'sabotageSendThenCrash';

function range(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let i = lo; i <= hi; i++) out.push(i);
  return out;
}

function errorCode(e: unknown): string {
  if (e instanceof RaftError) return e.code;
  throw e;
}

/** rerunCommand is the shell command that reruns one seed with a readable trace. */
export function rerunCommand(seed: number): string {
  return `pnpm --filter @omnidict/raft run sim -- --seed ${seed}`;
}
