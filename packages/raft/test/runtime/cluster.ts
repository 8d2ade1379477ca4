import { seededRng } from '@omnidict/raft';
import type {
  GroupId,
  KvEngine,
  NodeId,
  RaftHostConfig,
  RaftHost as RaftHostT,
  StateMachine,
} from '@omnidict/raft/runtime';
import { ManualClock, MemoryEngine, MemoryNetwork, RaftHost } from '@omnidict/raft/runtime';
import { CommandLogStateMachine } from './testStateMachine.js';

export const TICK_MS = 100;

/** Deterministic PRNG for tests (seed printed by tests that randomise). */
export const prng = seededRng;

export interface ClusterOptions {
  readonly seed?: number;
  readonly hostConfig?: Partial<RaftHostConfig>;
  /** Per-node additions to `hostConfig` (e.g. callbacks that need to know their node). */
  readonly hostConfigFor?: (nodeId: NodeId) => Partial<RaftHostConfig>;
  /** Opens a node's engine (again after a crash). Default: one MemoryEngine per node, reopened. */
  readonly openEngine?: (nodeId: NodeId) => Promise<KvEngine>;
  /** Wraps the test state machine (e.g. to inject failures). */
  readonly wrapStateMachine?: (nodeId: NodeId, sm: CommandLogStateMachine) => StateMachine;
}

/**
 * TestCluster: hosts over MemoryEngine + MemoryNetwork + ManualClock. Time moves only in `tick`;
 * `settle` runs the event loop until every host is idle and no message is in flight.
 */
export class TestCluster {
  readonly clock = new ManualClock();
  readonly network: MemoryNetwork;
  readonly engines = new Map<NodeId, KvEngine>();
  readonly hosts = new Map<NodeId, RaftHostT>();
  readonly sms = new Map<string, CommandLogStateMachine>();
  readonly seed: number;
  readonly #opts: ClusterOptions;

  constructor(opts: ClusterOptions = {}) {
    this.seed = opts.seed ?? 1;
    this.network = new MemoryNetwork({ clock: this.clock, rng: prng(this.seed * 31 + 7) });
    this.#opts = opts;
  }

  async startHost(nodeId: NodeId): Promise<RaftHostT> {
    let engine = this.engines.get(nodeId);
    if (this.#opts.openEngine !== undefined) {
      engine = await this.#opts.openEngine(nodeId);
      this.engines.set(nodeId, engine);
    } else if (engine === undefined) {
      engine = new MemoryEngine();
      this.engines.set(nodeId, engine);
    } else {
      (engine as MemoryEngine).reopen();
    }
    const host = await RaftHost.open({
      nodeId,
      engine,
      transport: this.network.transport(nodeId),
      clock: this.clock,
      rngSeed: this.seed * 1000 + nodeId,
      tickMs: TICK_MS,
      stateMachine: (groupId) => {
        const sm = new CommandLogStateMachine(groupId);
        this.sms.set(`${nodeId}/${groupId}`, sm);
        return this.#opts.wrapStateMachine?.(nodeId, sm) ?? sm;
      },
      ...this.#opts.hostConfig,
      ...this.#opts.hostConfigFor?.(nodeId),
    });
    this.hosts.set(nodeId, host);
    return host;
  }

  async start(nodeIds: readonly NodeId[]): Promise<void> {
    for (const n of nodeIds) await this.startHost(n);
  }

  host(nodeId: NodeId): RaftHostT {
    const h = this.hosts.get(nodeId);
    if (h === undefined) throw new Error(`no host ${nodeId}`);
    return h;
  }

  /** createGroup on every listed node; replica id = node id. */
  async createGroup(groupId: GroupId, nodeIds: readonly NodeId[]): Promise<void> {
    const peers = nodeIds.map((n) => ({ replicaId: n, nodeId: n }));
    for (const n of nodeIds) await this.host(n).createGroup({ groupId, replicaId: n, peers });
  }

  /** Creates each group on `nodeIds`, has `leader` campaign for all of them, and settles. */
  async createLedGroups(groupIds: readonly GroupId[], nodeIds: readonly NodeId[], leader: NodeId): Promise<void> {
    for (const g of groupIds) await this.createGroup(g, nodeIds);
    for (const g of groupIds) this.host(leader).campaign(g);
    await this.settle();
  }

  /** settle runs until nothing is in flight; held commit notices count unless `releaseHeldNotices` is false. */
  async settle(maxRounds = 10_000, releaseHeldNotices = true): Promise<void> {
    for (let i = 0; i < maxRounds; i++) {
      await Promise.all([...this.hosts.values()].map((h) => h.idle()));
      await new Promise((r) => setImmediate(r));
      await Promise.all([...this.hosts.values()].map((h) => h.idle()));
      if (this.network.pending === 0 && [...this.hosts.values()].every((h) => h.idle !== undefined)) {
        await new Promise((r) => setImmediate(r));
        if (this.network.pending !== 0) continue;
        // Held commit notices are in flight too: move the clock on until their timer fires.
        if (releaseHeldNotices && [...this.hosts.values()].some((h) => h.commitNoticesHeld > 0)) this.clock.advance(1);
        else return;
      }
    }
    throw new Error('cluster did not settle');
  }

  async tick(n = 1): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.clock.advance(TICK_MS);
      await this.settle();
    }
  }

  /** Ticks until `pred` holds; throws after maxTicks. */
  async waitFor(pred: () => boolean, maxTicks = 500, what = 'condition'): Promise<void> {
    for (let i = 0; i < maxTicks; i++) {
      if (pred()) return;
      await this.tick();
    }
    if (!pred()) throw new Error(`timed out waiting for ${what} (seed ${this.seed})`);
  }

  /** The node whose replica leads `groupId` (highest term wins), or undefined. */
  leaderNode(groupId: GroupId): NodeId | undefined {
    let best: { node: NodeId; term: number } | undefined;
    for (const [node, h] of this.hosts) {
      if (!h.hasGroup(groupId)) continue;
      const st = h.status(groupId);
      if (st.role === 'leader' && (best === undefined || st.term > best.term)) best = { node, term: st.term };
    }
    return best?.node;
  }

  async waitForLeader(groupId: GroupId, maxTicks = 500): Promise<NodeId> {
    await this.waitFor(() => this.leaderNode(groupId) !== undefined, maxTicks, `leader of group ${groupId}`);
    return this.leaderNode(groupId) as NodeId;
  }

  /** Proposes on the current leader, ticking until applied (retries NOT_LEADER/DROPPED). */
  async propose(groupId: GroupId, command: string, maxTicks = 500): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const leader = await this.waitForLeader(groupId, maxTicks);
      let settled: { index?: number; err?: unknown } | undefined;
      this.host(leader)
        .propose(groupId, Buffer.from(command))
        .then(
          (r) => (settled = { index: r.index }),
          (err: unknown) => (settled = { err }),
        );
      await this.waitFor(() => settled !== undefined, maxTicks, `proposal ${command}`);
      const s = settled as unknown as { index?: number; err?: unknown };
      if (s.index !== undefined) return s.index;
      await this.tick();
    }
    throw new Error(`proposal ${command} kept failing`);
  }

  async crash(nodeId: NodeId): Promise<void> {
    const h = this.host(nodeId);
    this.hosts.delete(nodeId);
    await h.close({ abrupt: true });
    await this.engines.get(nodeId)?.close();
  }

  engine(nodeId: NodeId): KvEngine {
    const e = this.engines.get(nodeId);
    if (e === undefined) throw new Error(`no engine ${nodeId}`);
    return e;
  }

  async stop(): Promise<void> {
    for (const h of this.hosts.values()) await h.close();
    this.hosts.clear();
    if (this.#opts.openEngine !== undefined) for (const e of this.engines.values()) await e.close().catch(() => {});
  }
}
