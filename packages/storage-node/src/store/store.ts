import { common, type ErrorDetails, type kv, nodepb, OmniError } from '@omnidict/proto';
import { ConfChangeType } from '@omnidict/raft';
import {
  type KvEngine,
  type Logger,
  noopLogger,
  RaftHost,
  type RaftHostConfig,
  RuntimeError,
  type Transport,
} from '@omnidict/raft/runtime';
import { buildWriteCommand, DEFAULT_LIMITS, isWriteOp, type KvLimits } from '../kv/buildCommand.js';
import { encodeCommand, type KvCommand } from '../kv/commands.js';
import { dataKey, dataRange, decodeDataKey, decodeExpiryKey, EXPIRY_RANGE, RING_END } from '../kv/keys.js';
import { collectExpiredSweeps, type KvResult, type KvStateMachine, type TtlKeySet } from '../kv/kvStateMachine.js';
import { FaultyTransport } from './faultyTransport.js';
import { MatchTracker } from './matchTracker.js';
import {
  decodeDescriptor,
  encodeDescriptor,
  PENDING_SPLIT_RANGE,
  pendingSplitKey,
  type ShardApplyResult,
  ShardStateMachine,
} from './shardStateMachine.js';

export type ShardId = number;

/** Node-local key space 0x07: `0x07 ‖ nodeId(u64 BE)` → the peer's Raft address (UTF-8). */
const ADDRESS_PREFIX = 0x07;
const ADDRESS_RANGE = { gte: Buffer.of(ADDRESS_PREFIX), lt: Buffer.of(ADDRESS_PREFIX + 1) };

function nodeIdKey(nodeId: number): Buffer {
  const key = Buffer.alloc(9);
  key[0] = ADDRESS_PREFIX;
  key.writeUInt32BE(Math.floor(nodeId / 0x1_0000_0000), 1);
  key.writeUInt32BE(nodeId >>> 0, 5);
  return key;
}

function readNodeIdKey(key: Uint8Array): number {
  const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return b.readUInt32BE(1) * 0x1_0000_0000 + b.readUInt32BE(5);
}

/** Request counters and the cached size estimate of one shard (for PD heartbeats). */
interface ShardLoad {
  reads: number;
  writes: number;
  lastReads: number;
  lastWrites: number;
  lastAtMs: number;
  /** When keys/bytes/median were last measured (0 = never). */
  sizeAtMs: number;
  keys: number;
  bytes: number;
  median: number;
}

/** What the node heartbeat reports about the whole store. */
export interface NodeStats {
  readonly shardCount: number;
  readonly leaderCount: number;
  /** Sum of the replicas' last measured data bytes. */
  readonly usedBytes: number;
  /** Requests served since the store opened (monotonic counters; the caller derives rates). */
  readonly reads: number;
  readonly writes: number;
}

/** One led shard as reported to PD (`pdpb.ShardReport` without the proto dependency on pd). */
export interface ShardReportData {
  readonly shard: common.ShardDescriptor;
  readonly leaderReplicaId: number;
  readonly approximateKeys: number;
  readonly approximateBytes: number;
  readonly writesPerSec: number;
  readonly readsPerSec: number;
  readonly medianPosition: number;
  readonly replicaMatch: Record<number, number>;
  readonly appliedIndex: number;
}

/** Size estimates (a full range scan) are refreshed at most this often per shard. */
const SIZE_REFRESH_MS = 10_000;

export interface StoreConfig {
  readonly nodeId: number;
  /** The process's one database (LevelEngine in production). The store does not close it. */
  readonly engine: KvEngine;
  /** Raft transport (NetTransport in production); wrapped for SetFaults. */
  readonly transport: Transport;
  readonly logger?: Logger;
  readonly limits?: KvLimits;
  /** Wall clock for TTLs (leader side) and expiry on reads. Default Date.now. */
  readonly nowMs?: () => number;
  /** Raft tuning passed to the host (tickMs, electionTicks, …). */
  readonly raft?: Partial<Omit<RaftHostConfig, 'nodeId' | 'engine' | 'transport' | 'stateMachine' | 'onUnknownGroup'>>;
  /** TTL sweep period on leaders. Default 1000 ms; 0 disables. */
  readonly sweepIntervalMs?: number;
  /** Default deadline of a request when its header has none. Default 5000 ms. */
  readonly defaultTimeoutMs?: number;
  /** Called when a peer's Raft address becomes known (CreateShard / ChangeReplicas). */
  readonly onPeerAddress?: (nodeId: number, address: string) => void;
  /**
   * Called when a replica this node LEADS hears a request from a replica outside its applied
   * membership (the runtime's `onStalePeer`): `shard` is the leader's descriptor, the proof of the
   * removal that the stale replica's node needs (NodeAdmin.DestroyReplica). Rate-limited by the runtime.
   */
  readonly onStaleReplica?: (stale: StaleReplica) => void;
}

/** A replica removed from a shard that has not learnt it, and the descriptor proving the removal. */
export interface StaleReplica {
  readonly nodeId: number;
  readonly replicaId: number;
  readonly shard: common.ShardDescriptor;
}

/**
 * Store owns every shard replica on this node: `Map<ShardId, ShardStateMachine>` on one RaftHost
 * over the node's one LSM. It serves NodeKV requests (epoch and range checks, leader checks,
 * proposals, ReadIndex reads) and the NodeAdmin operations. Every public method reports failures as
 * OmniError.
 */
export class Store {
  readonly nodeId: number;
  readonly replicas = new Map<ShardId, ShardStateMachine>();
  /** Replicas created empty (new learners) waiting for their first snapshot: shard → descriptor. */
  readonly #expected = new Map<ShardId, common.ShardDescriptor>();
  /** Replicas removed from their group: no longer served; data dropped. */
  readonly #removed = new Set<ShardId>();
  /** Peers' RAFT transport addresses (persisted, see ADDRESS_PREFIX). */
  readonly #addresses = new Map<number, string>();
  /** Peers' SERVICE addresses (from PD), for NOT_LEADER hints to routers. Soft: re-learnt from PD. */
  readonly #serviceAddresses = new Map<number, string>();
  readonly #match = new MatchTracker();
  /** Keys that may carry an expiry, shared by every shard's apply (built from the expiry index at open). */
  readonly #ttlKeys: TtlKeySet = new Set();
  /** Per-shard request counters and cached size estimates for PD heartbeats. */
  readonly #load = new Map<ShardId, ShardLoad>();
  readonly #engine: KvEngine;
  readonly #transport: FaultyTransport;
  readonly #log: Logger;
  readonly #limits: KvLimits;
  readonly #now: () => number;
  readonly #defaultTimeoutMs: number;
  readonly #onPeerAddress: ((nodeId: number, address: string) => void) | undefined;
  #host!: RaftHost;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping = false;
  #closed = false;

  private constructor(config: StoreConfig) {
    this.nodeId = config.nodeId;
    this.#engine = config.engine;
    this.#transport = new FaultyTransport(config.transport, (batch) => this.#match.observe(batch));
    this.#log = (config.logger ?? noopLogger).child({ nodeId: config.nodeId });
    this.#limits = config.limits ?? DEFAULT_LIMITS;
    this.#now = config.nowMs ?? Date.now;
    this.#defaultTimeoutMs = config.defaultTimeoutMs ?? 5000;
    this.#onPeerAddress = config.onPeerAddress;
  }

  /** Opens the store: recovers every replica from the LSM, finishes interrupted splits, starts Raft. */
  static async open(config: StoreConfig): Promise<Store> {
    const store = new Store(config);
    // Peer addresses learnt before a restart: the transport needs them before any shard talks.
    for await (const [k, v] of config.engine.iterate(ADDRESS_RANGE)) {
      store.#learnAddresses({ [readNodeIdKey(k)]: Buffer.from(v).toString('utf8') }, false);
    }
    // Before any apply (RaftHost.open may install snapshots): the set must cover every stored expiry.
    for await (const [k] of config.engine.iterate(EXPIRY_RANGE)) {
      const e = decodeExpiryKey(k);
      store.#ttlKeys.add(dataKey(e.pos, e.userKey).toString('latin1'));
    }
    store.#host = await RaftHost.open({
      ...config.raft,
      nodeId: config.nodeId,
      engine: config.engine,
      transport: store.#transport,
      logger: store.#log,
      stateMachine: (groupId, descriptor) => store.#createStateMachine(groupId, descriptor),
      onUnknownGroup: (info) => store.#expected.has(info.groupId),
      onReplicaRemoved: (info) => store.#scheduleDestroy(info.groupId, 'removed by conf change'),
      onStalePeer: (info) => {
        const sm = store.replicas.get(info.groupId);
        // Only a leader's membership is authoritative (a lagging follower may not know an AddNode yet).
        if (
          !info.localIsLeader ||
          sm === undefined ||
          sm.descriptor.replicas.some((r) => r.replicaId === info.fromReplicaId)
        )
          return;
        store.#log.info(
          { shardId: info.groupId, staleReplicaId: info.fromReplicaId, staleNodeId: info.fromNodeId },
          'stale replica heard; sending proof of its removal',
        );
        config.onStaleReplica?.({ nodeId: info.fromNodeId, replicaId: info.fromReplicaId, shard: sm.descriptor });
      },
    });
    await store.#finishPendingSplits();
    const sweepMs = config.sweepIntervalMs ?? 1000;
    if (sweepMs > 0) {
      store.#sweepTimer = setInterval(() => void store.#sweep(), sweepMs);
      store.#sweepTimer.unref();
    }
    store.#log.info({ shards: store.replicas.size }, 'store opened');
    return store;
  }

  get host(): RaftHost {
    return this.#host;
  }

  /** The node's LSM, for local (non-linearizable) inspection by tests and tools. */
  get engine(): KvEngine {
    return this.#engine;
  }

  #createStateMachine(groupId: number, descriptor: Uint8Array | undefined): ShardStateMachine {
    const d = descriptor !== undefined ? decodeDescriptor(descriptor) : this.#expected.get(groupId);
    // An uninitialized replica owns nothing until its snapshot arrives.
    const desc = d ?? { id: groupId, start: 0, end: 0, epoch: { version: 0, confVer: 0 }, replicas: [] };
    const sm = new ShardStateMachine(
      groupId,
      desc,
      this.nodeId,
      {
        onSplit: (_left, right) => this.#scheduleSplitCreate(groupId, right),
        onConfChange: (shard, removedSelf) => {
          if (removedSelf) this.#scheduleRemove(shard.id);
        },
        onSnapshotInstalled: () => {
          this.#expected.delete(groupId);
        },
      },
      this.#ttlKeys,
    );
    this.replicas.set(groupId, sm);
    return sm;
  }

  // ------------------------------------------------------------------ NodeKV

  /**
   * Called once per executed NodeKV request with its op, outcome code ('OK' or an error code) and
   * duration; the binary wires it to Prometheus. Must not throw.
   */
  requestObserver: ((op: string, code: string, durationMs: number) => void) | undefined;

  /** Executes one NodeKV request; never throws (errors are in the response). */
  async execute(req: nodepb.NodeRequest): Promise<nodepb.NodeResponse> {
    const startedMs = this.requestObserver === undefined ? 0 : performance.now();
    let response: nodepb.NodeResponse;
    try {
      const result = await this.#execute(req);
      response = { id: req.id, result };
    } catch (err) {
      response = { id: req.id, error: toOmniError(err).toProto(), result: undefined };
    }
    this.requestObserver?.(req.op?.$case ?? 'none', response.error?.code ?? 'OK', performance.now() - startedMs);
    return response;
  }

  async #execute(req: nodepb.NodeRequest): Promise<nodepb.NodeResponse['result']> {
    const header = req.header;
    const op = req.op;
    if (header === undefined || op === undefined)
      throw new OmniError('INVALID_ARGUMENT', 'request needs a header and an op');
    const sm = this.#replica(header.shardId);
    this.#checkEpoch(sm, header);
    const timeoutMs = header.timeoutMs > 0 ? header.timeoutMs : this.#defaultTimeoutMs;
    if ('key' in op.value) sm.kv.checkKey(op.value.key);
    if (isWriteOp(op)) {
      this.#loadOf(sm.shardId).writes++;
      this.#requireLeader(sm.shardId);
      const cmd = buildWriteCommand(op, this.#now(), this.#limits);
      const r = await this.#propose(sm.shardId, cmd, timeoutMs);
      return toResponse(op.$case, r);
    }
    this.#loadOf(sm.shardId).reads++;
    const stale = header.staleRead || ('stale' in op.value && op.value.stale === true);
    await this.#readBarrier(sm.shardId, stale, timeoutMs);
    const now = this.#now();
    switch (op.$case) {
      case 'get': {
        const kvp = await sm.kv.get(this.#engine, op.value.key, now);
        return { $case: 'get', value: kvp === undefined ? { found: false } : { found: true, kv: kvp } };
      }
      case 'exists':
        return { $case: 'exists', value: { exists: await sm.kv.exists(this.#engine, op.value.key, now) } };
      case 'ttl':
        return { $case: 'ttl', value: { ttlMs: await sm.kv.ttl(this.#engine, op.value.key, now) } };
      case 'scan': {
        const s = op.value;
        const page = await sm.kv.scan(
          this.#engine,
          {
            pattern: s.pattern,
            limit: s.limit,
            keysOnly: s.keysOnly,
            ...(s.hasAfter ? { after: { pos: s.afterPos, key: s.afterKey } } : {}),
          },
          now,
        );
        return { $case: 'scan', value: page };
      }
      default:
        throw new OmniError('INVALID_ARGUMENT', `unsupported op ${(op as { $case: string }).$case}`);
    }
  }

  #replica(shardId: ShardId): ShardStateMachine {
    const sm = this.replicas.get(shardId);
    if (sm === undefined || this.#removed.has(shardId) || !this.#host.hasGroup(shardId) || sm.descriptor.end === 0) {
      throw new OmniError('SHARD_NOT_FOUND', `node ${this.nodeId} has no replica of shard ${shardId}`);
    }
    return sm;
  }

  /** STALE_EPOCH when the sender's epoch version differs from this replica's (split/merge happened on either side). */
  #checkEpoch(sm: ShardStateMachine, header: common.RequestHeader): void {
    const d = sm.descriptor;
    const mine = d.epoch?.version ?? 0;
    const theirs = header.epoch?.version ?? 0;
    if (theirs !== mine) {
      const newShards = [...this.replicas.values()]
        .map((r) => r.descriptor)
        .filter(
          (o) => o.id !== d.id && o.end > 0 && o.start < RING_END && o.epoch?.version === mine && o.start === d.end,
        );
      throw new OmniError('STALE_EPOCH', `shard ${d.id} is at epoch version ${mine}, the request carried ${theirs}`, {
        currentShard: d,
        newShards,
      });
    }
  }

  #requireLeader(shardId: ShardId): void {
    if (this.#host.isLeader(shardId)) return;
    const st = this.#host.status(shardId);
    const details: ErrorDetails = {
      leaderReplicaId: st.leaderReplicaId,
      leaderNodeId: st.leaderNodeId,
    };
    // A SERVICE address (routers dial it), never the Raft one; absent when PD has not told us yet.
    const address = this.#serviceAddresses.get(st.leaderNodeId);
    if (address !== undefined) details.leaderAddress = address;
    throw new OmniError(
      'NOT_LEADER',
      `replica ${st.replicaId} of shard ${shardId} is not the leader (leader replica ${st.leaderReplicaId || 'unknown'})`,
      details,
    );
  }

  /** Linearizable reads go through ReadIndex on the leader (§6.4); stale reads are served by any replica. */
  async #readBarrier(shardId: ShardId, stale: boolean, timeoutMs: number): Promise<void> {
    if (stale) return;
    this.#requireLeader(shardId);
    try {
      await this.#host.readIndex(shardId, { timeoutMs });
    } catch (err) {
      throw this.#withLeaderAddress(toOmniError(err));
    }
  }

  async #propose(shardId: ShardId, cmd: KvCommand, timeoutMs: number): Promise<KvResult> {
    let r: ShardApplyResult;
    try {
      r = (await this.#host.propose<ShardApplyResult>(shardId, encodeCommand(cmd), { timeoutMs })).result;
    } catch (err) {
      throw this.#withLeaderAddress(toOmniError(err));
    }
    if (r.type === 'error') throw r.error;
    if (r.type === 'confChange') throw new OmniError('INTERNAL', 'unexpected conf change result');
    return r;
  }

  /** Adds the leader's SERVICE address to a NOT_LEADER raised by the runtime, when known. */
  #withLeaderAddress(e: OmniError): OmniError {
    if (e.code !== 'NOT_LEADER' || e.details.leaderAddress) return e;
    const address = this.#serviceAddresses.get(e.details.leaderNodeId ?? 0);
    return address === undefined ? e : new OmniError(e.code, e.message, { ...e.details, leaderAddress: address });
  }

  #loadOf(shardId: ShardId): ShardLoad {
    let l = this.#load.get(shardId);
    if (l === undefined) {
      l = {
        reads: 0,
        writes: 0,
        lastReads: 0,
        lastWrites: 0,
        lastAtMs: Date.now(),
        sizeAtMs: 0,
        keys: 0,
        bytes: 0,
        median: 0,
      };
      this.#load.set(shardId, l);
    }
    return l;
  }

  // ------------------------------------------------------------------ NodeAdmin

  /** CreateShard: bootstrap a replica (initial members) or prepare an empty one for a learner add. */
  async createShard(req: nodepb.CreateShardRequest): Promise<void> {
    const d = req.shard;
    if (d === undefined) throw new OmniError('INVALID_ARGUMENT', 'CreateShard needs a shard descriptor');
    this.#learnAddresses(req.nodeAddresses);
    const self = d.replicas.find((r) => r.nodeId === this.nodeId);
    if (self === undefined)
      throw new OmniError('INVALID_ARGUMENT', `shard ${d.id} has no replica on node ${this.nodeId}`);
    if (this.#host.hasGroup(d.id)) {
      const existing = this.#host.status(d.id).replicaId;
      // CONFLICT means "this replica already exists": PD counts it as done (CreateShard is idempotent).
      if (existing === self.replicaId && !this.#removed.has(d.id)) {
        throw new OmniError('CONFLICT', `node ${this.nodeId} already has replica ${existing} of shard ${d.id}`);
      }
      // An older replica of the shard still holds the group: removed by a conf change it may never
      // have applied (the leader stops replicating to a removed replica). PD's descriptor proves
      // the removal when it is at least as new and no longer names the old replica: drop it first.
      const local = this.replicas.get(d.id)?.descriptor;
      const proven =
        this.#removed.has(d.id) ||
        (local !== undefined && !d.replicas.some((r) => r.replicaId === existing) && compareEpochs(d, local) >= 0);
      if (!proven) {
        throw new OmniError(
          'UNAVAILABLE',
          `node ${this.nodeId} still holds replica ${existing} of shard ${d.id}, not ${self.replicaId}`,
        );
      }
      await this.#destroy(d.id, `replaced by replica ${self.replicaId}`);
    }
    const overlap = [...this.replicas.values()].find(
      (r) =>
        r.shardId !== d.id && !this.#removed.has(r.shardId) && r.descriptor.start < d.end && d.start < r.descriptor.end,
    );
    if (overlap !== undefined) {
      // Retryable: a local shard not yet split (or not yet dropped) still owns part of the range.
      throw new OmniError('UNAVAILABLE', `shard ${d.id} overlaps local shard ${overlap.shardId}`, {
        currentShard: overlap.descriptor,
      });
    }
    if (req.uninitialized) {
      // The leader's first message creates the replica (onUnknownGroup); a snapshot fills it.
      this.#expected.set(d.id, d);
      return;
    }
    try {
      await this.#host.createGroup({
        groupId: d.id,
        replicaId: self.replicaId,
        peers: d.replicas.map((r) => ({
          replicaId: r.replicaId,
          nodeId: r.nodeId,
          learner: r.role === common.ReplicaRole.REPLICA_ROLE_LEARNER,
        })),
        descriptor: encodeDescriptor(d),
        ...(req.holdElectionMs > 0 ? { holdElectionMs: req.holdElectionMs } : {}),
      });
    } catch (err) {
      throw toOmniError(err);
    }
    // PD's chosen first leader: the other replicas exist already, so this election wins at once
    // instead of waiting for an election timeout (and a random winner).
    if (req.campaign) this.#host.campaign(d.id);
    this.#log.info(
      { shardId: d.id, replicaId: self.replicaId, start: d.start, end: d.end, campaign: req.campaign },
      'shard replica created',
    );
  }

  /**
   * DestroyReplica: destroys this node's replica of `shard.id` when `shard` PROVES its removal — same
   * shard, a strictly newer conf_ver than the local descriptor, and no longer listing the local
   * replica id (replica ids are never reused, so such a descriptor can only come after the removal).
   * Returns false when there is nothing to destroy (no replica, or a different replica id than asked).
   * A replica still waiting for its first snapshot (created for a learner add) is never destroyed here.
   */
  async destroyReplica(req: nodepb.DestroyReplicaRequest): Promise<boolean> {
    const d = req.shard;
    if (d === undefined) throw new OmniError('INVALID_ARGUMENT', 'DestroyReplica needs a shard descriptor');
    if (!this.#host.hasGroup(d.id)) return false;
    const existing = this.#host.status(d.id).replicaId;
    if (req.replicaId !== 0 && req.replicaId !== existing) return false;
    const local = this.replicas.get(d.id)?.descriptor;
    const proven =
      this.#removed.has(d.id) ||
      (local !== undefined &&
        local.end > local.start &&
        !this.#expected.has(d.id) &&
        !d.replicas.some((r) => r.replicaId === existing) &&
        (d.epoch?.confVer ?? 0) > (local.epoch?.confVer ?? 0));
    if (!proven) {
      throw new OmniError(
        'INVALID_ARGUMENT',
        `descriptor of shard ${d.id} (confVer ${d.epoch?.confVer ?? 0}) does not prove replica ${existing} was removed`,
        local !== undefined ? { currentShard: local } : {},
      );
    }
    await this.#destroy(d.id, `removal proven by descriptor confVer ${d.epoch?.confVer ?? 0}`);
    return true;
  }

  /** SplitShard proposes Split through the shard's own log; returns both descriptors once applied here. */
  async splitShard(
    req: nodepb.SplitShardRequest,
  ): Promise<{ left: common.ShardDescriptor; right: common.ShardDescriptor }> {
    const header = req.header;
    if (header === undefined) throw new OmniError('INVALID_ARGUMENT', 'SplitShard needs a header');
    const sm = this.#replica(header.shardId);
    this.#checkEpoch(sm, header);
    this.#requireLeader(sm.shardId);
    if (this.replicas.has(req.newShardId))
      throw new OmniError('CONFLICT', `shard ${req.newShardId} already exists here`);
    const at = req.splitAt !== 0 ? req.splitAt : await this.#medianPosition(sm);
    const r = await this.#propose(
      sm.shardId,
      { type: 'split', nowMs: this.#now(), at, newShardId: req.newShardId, newReplicaIds: req.newReplicaIds },
      header.timeoutMs > 0 ? header.timeoutMs : this.#defaultTimeoutMs,
    );
    if (r.type !== 'split') throw new OmniError('INTERNAL', `unexpected split result ${r.type}`);
    return { left: r.left, right: r.right };
  }

  /** Median ring position of the shard's keys (midpoint of the range when it is (nearly) empty). */
  async #medianPosition(sm: ShardStateMachine): Promise<number> {
    const d = sm.descriptor;
    const positions: number[] = [];
    for await (const [k] of this.#engine.iterate(dataRange(d.start, d.end))) {
      const pos = decodeDataKey(k).pos;
      if (positions[positions.length - 1] !== pos) positions.push(pos);
    }
    const median = positions[Math.floor(positions.length / 2)];
    if (median !== undefined && median > d.start) return median;
    const mid = Math.floor((d.start + d.end) / 2);
    if (mid <= d.start) throw new OmniError('INVALID_ARGUMENT', `shard ${d.id} is too small to split`);
    return mid;
  }

  /** ChangeReplicas: add a learner, promote it, or remove a replica, one change at a time. */
  async changeReplicas(req: nodepb.ChangeReplicasRequest): Promise<common.ShardDescriptor> {
    const header = req.header;
    const replica = req.replica;
    if (header === undefined || replica === undefined) {
      throw new OmniError('INVALID_ARGUMENT', 'ChangeReplicas needs a header and a replica');
    }
    const sm = this.#replica(header.shardId);
    if ((header.epoch?.confVer ?? 0) !== (sm.descriptor.epoch?.confVer ?? 0)) {
      throw new OmniError(
        'STALE_EPOCH',
        `shard ${sm.shardId} membership changed (confVer ${sm.descriptor.epoch?.confVer})`,
        {
          currentShard: sm.descriptor,
        },
      );
    }
    this.#checkEpoch(sm, header);
    this.#requireLeader(sm.shardId);
    if (req.nodeAddress !== '') this.#learnAddresses({ [replica.nodeId]: req.nodeAddress });
    const type =
      req.change === nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_ADD_LEARNER
        ? ConfChangeType.AddLearner
        : req.change === nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_PROMOTE
          ? ConfChangeType.AddVoter
          : ConfChangeType.RemoveNode;
    try {
      await this.#host.proposeConfChange(
        sm.shardId,
        { type, replicaId: replica.replicaId, nodeId: replica.nodeId, context: encodeDescriptor(sm.descriptor) },
        { timeoutMs: header.timeoutMs > 0 ? header.timeoutMs : this.#defaultTimeoutMs },
      );
    } catch (err) {
      throw toOmniError(err);
    }
    return sm.descriptor;
  }

  transferLeader(req: nodepb.TransferLeaderRequest): void {
    const header = req.header;
    if (header === undefined) throw new OmniError('INVALID_ARGUMENT', 'TransferLeader needs a header');
    const sm = this.#replica(header.shardId);
    this.#requireLeader(sm.shardId);
    this.#host.transferLeader(sm.shardId, req.toReplicaId);
  }

  async listShards(): Promise<nodepb.ListShardsResponse> {
    const shards: nodepb.ShardStatus[] = [];
    for (const [id, sm] of this.replicas) {
      if (this.#removed.has(id) || !this.#host.hasGroup(id)) continue;
      const st = this.#host.status(id);
      const d = sm.descriptor;
      let keys = 0;
      let bytes = 0;
      if (d.end > d.start) {
        for await (const [k, v] of this.#engine.iterate(dataRange(d.start, d.end))) {
          keys++;
          bytes += k.length + v.length;
        }
      }
      shards.push({
        shard: d,
        leaderReplicaId: st.leaderReplicaId,
        appliedIndex: st.appliedIndex,
        commitIndex: st.commitIndex,
        term: st.term,
        approximateKeys: keys,
        approximateBytes: bytes,
        replicaMatch: st.role === 'leader' ? Object.fromEntries(this.#match.matchOf(id, st.term)) : {},
      });
    }
    shards.sort((a, b) => (a.shard?.start ?? 0) - (b.shard?.start ?? 0));
    return { nodeId: this.nodeId, shards };
  }

  /** Live (served) replica ids: created, not removed, with a range. */
  #liveShards(): Array<[ShardId, ShardStateMachine]> {
    return [...this.replicas].filter(
      ([id, sm]) => !this.#removed.has(id) && this.#host.hasGroup(id) && sm.descriptor.end > sm.descriptor.start,
    );
  }

  /** Totals for the node heartbeat. */
  nodeStats(): NodeStats {
    let shardCount = 0;
    let leaderCount = 0;
    let usedBytes = 0;
    let reads = 0;
    let writes = 0;
    for (const [id] of this.#liveShards()) {
      shardCount++;
      if (this.#host.isLeader(id)) leaderCount++;
    }
    for (const l of this.#load.values()) {
      usedBytes += l.bytes;
      reads += l.reads;
      writes += l.writes;
    }
    return { shardCount, leaderCount, usedBytes, reads, writes };
  }

  /**
   * shardReports describes every shard this replica leads, for PD's ShardHeartbeat: descriptor,
   * leader, size (a range scan refreshed at most every SIZE_REFRESH_MS), rates since the previous
   * call, the median key position, each replica's match index and the applied index.
   */
  async shardReports(nowMs = Date.now()): Promise<ShardReportData[]> {
    const out: ShardReportData[] = [];
    for (const [id, sm] of this.#liveShards()) {
      if (this.#closed || !this.#host.hasGroup(id)) break;
      const st = this.#host.status(id);
      if (st.role !== 'leader') continue;
      const load = this.#loadOf(id);
      if (load.sizeAtMs === 0 || nowMs - load.sizeAtMs >= SIZE_REFRESH_MS) await this.#measure(sm, load, nowMs);
      const secs = Math.max(0.001, (nowMs - load.lastAtMs) / 1000);
      const writesPerSec = (load.writes - load.lastWrites) / secs;
      const readsPerSec = (load.reads - load.lastReads) / secs;
      load.lastReads = load.reads;
      load.lastWrites = load.writes;
      load.lastAtMs = nowMs;
      const replicaMatch: Record<number, number> = {};
      for (const [replicaId, index] of this.#match.matchOf(id, st.term)) replicaMatch[replicaId] = index;
      replicaMatch[st.replicaId] = st.lastIndex;
      out.push({
        shard: sm.descriptor,
        leaderReplicaId: st.replicaId,
        approximateKeys: load.keys,
        approximateBytes: load.bytes,
        writesPerSec,
        readsPerSec,
        medianPosition: load.median,
        replicaMatch,
        appliedIndex: st.appliedIndex,
      });
    }
    return out;
  }

  /** One scan of the shard's data range: key count, bytes and (sampled) median position. */
  async #measure(sm: ShardStateMachine, load: ShardLoad, nowMs: number): Promise<void> {
    const d = sm.descriptor;
    let keys = 0;
    let bytes = 0;
    let every = 1;
    let sample: number[] = [];
    for await (const [k, v] of this.#engine.iterate(dataRange(d.start, d.end))) {
      if (keys % every === 0) {
        sample.push(decodeDataKey(k).pos);
        if (sample.length >= 4096) {
          sample = sample.filter((_, i) => i % 2 === 0);
          every *= 2;
        }
      }
      keys++;
      bytes += k.length + v.length;
    }
    load.keys = keys;
    load.bytes = bytes;
    load.median = sample[Math.floor(sample.length / 2)] ?? 0;
    load.sizeAtMs = nowMs;
  }

  /** Peers' RAFT transport addresses (from PD's heartbeat answers); persisted like CreateShard's. */
  learnPeerAddresses(addresses: Record<number, string>): void {
    this.#learnAddresses(addresses);
  }

  /** Peers' SERVICE addresses (from PD), used in NOT_LEADER hints. */
  learnServiceAddresses(addresses: Record<number, string>): void {
    for (const [id, address] of Object.entries(addresses)) {
      if (address !== '') this.#serviceAddresses.set(Number(id), address);
    }
  }

  setFaults(req: nodepb.SetFaultsRequest): void {
    this.#transport.setPartitioned(req.partitionedNodes);
    this.#log.warn({ partitioned: req.partitionedNodes }, 'raft faults set');
  }

  /** A peer's SERVICE address (from PD), when known. */
  serviceAddressOf(nodeId: number): string | undefined {
    return this.#serviceAddresses.get(nodeId);
  }

  /** Address of a node's Raft transport, when known. */
  addressOf(nodeId: number): string | undefined {
    return this.#addresses.get(nodeId);
  }

  #learnAddresses(addresses: Record<string, string>, persist = true): void {
    for (const [id, address] of Object.entries(addresses)) {
      const nodeId = Number(id);
      if (address === '' || this.#addresses.get(nodeId) === address) continue;
      this.#addresses.set(nodeId, address);
      if (nodeId !== this.nodeId) this.#onPeerAddress?.(nodeId, address);
      if (persist) {
        this.#engine
          .write([{ type: 'put', key: nodeIdKey(nodeId), value: Buffer.from(address, 'utf8') }], { sync: false })
          .catch((err: unknown) =>
            this.#log.warn({ peerNodeId: nodeId, err: String(err) }, 'saving peer address failed'),
          );
      }
    }
  }

  // ------------------------------------------------------------------ split / remove follow-ups

  /** Creates the right-hand shard of an applied split once the split is durable here. */
  #scheduleSplitCreate(leftId: ShardId, right: common.ShardDescriptor): void {
    const run = async (): Promise<void> => {
      // The hook fires inside apply, before the batch is durable; wait for this node's apply.
      await this.#host.idle();
      await this.#createSplitRight(right);
    };
    setImmediate(() => {
      run().catch((err: unknown) =>
        this.#log.error(
          { shardId: right.id, leftShardId: leftId, err: String(err) },
          'creating split shard failed; retried at restart',
        ),
      );
    });
  }

  async #createSplitRight(right: common.ShardDescriptor): Promise<void> {
    if (this.#closed) return;
    const self = right.replicas.find((r) => r.nodeId === this.nodeId);
    if (self !== undefined && !this.#host.hasGroup(right.id)) {
      await this.#host.createGroup({
        groupId: right.id,
        replicaId: self.replicaId,
        peers: right.replicas.map((r) => ({
          replicaId: r.replicaId,
          nodeId: r.nodeId,
          learner: r.role === common.ReplicaRole.REPLICA_ROLE_LEARNER,
        })),
        descriptor: encodeDescriptor(right),
      });
      this.#log.info({ shardId: right.id, start: right.start, end: right.end }, 'split shard created');
    }
    await this.#engine.write([{ type: 'del', key: pendingSplitKey(right.id) }], { sync: true });
  }

  async #finishPendingSplits(): Promise<void> {
    const pending: common.ShardDescriptor[] = [];
    for await (const [, v] of this.#engine.iterate(PENDING_SPLIT_RANGE)) pending.push(decodeDescriptor(v));
    for (const right of pending) {
      this.#log.warn({ shardId: right.id }, 'finishing interrupted split');
      await this.#createSplitRight(right);
    }
  }

  /** A replica removed from its group stops serving at once; `onReplicaRemoved` destroys it. */
  #scheduleRemove(shardId: ShardId): void {
    this.#removed.add(shardId);
  }

  /** Destroys a removed replica off the apply path (the runtime's hook must not block). */
  #scheduleDestroy(shardId: ShardId, reason: string): void {
    this.#removed.add(shardId);
    setImmediate(() => {
      this.#destroy(shardId, reason).catch((err: unknown) =>
        this.#log.error({ shardId, err: String(err) }, 'destroying removed replica failed; finished at restart'),
      );
    });
  }

  /**
   * Drops this node's replica of a shard: RaftHost.destroyGroup (durable intent, data range via
   * ShardStateMachine.destroy, Raft state, tombstone), then the range's expiry index entries.
   */
  async #destroy(shardId: ShardId, reason: string): Promise<void> {
    if (this.#closed || !this.#host.hasGroup(shardId)) return;
    this.#removed.add(shardId);
    const d = this.replicas.get(shardId)?.descriptor;
    try {
      await this.#host.destroyGroup(shardId, { reason });
    } catch (err) {
      throw toOmniError(err);
    }
    this.replicas.delete(shardId);
    this.#removed.delete(shardId);
    this.#load.delete(shardId);
    this.#match.forget(shardId);
    if (d !== undefined && d.end > d.start) {
      const ops: Array<{ type: 'del'; key: Uint8Array }> = [];
      for await (const [k] of this.#engine.iterate(EXPIRY_RANGE)) {
        const e = decodeExpiryKey(k);
        if (e.pos >= d.start && e.pos < d.end) ops.push({ type: 'del', key: k });
      }
      if (ops.length > 0) await this.#engine.write(ops, { sync: true });
    }
    this.#log.info({ shardId, reason }, 'replica destroyed');
  }

  // ------------------------------------------------------------------ TTL sweep

  async #sweep(): Promise<void> {
    if (this.#sweeping || this.#closed) return;
    this.#sweeping = true;
    try {
      // One pass over the node-wide expiry index for every shard led here: with 1,000 shards led
      // by one node, one iterator a second instead of a thousand.
      const led = new Map<KvStateMachine, ShardId>();
      for (const [id, sm] of this.replicas) {
        if (this.#removed.has(id) || !this.#host.hasGroup(id) || !this.#host.isLeader(id)) continue;
        led.set(sm.kv, id);
      }
      const sweeps = await collectExpiredSweeps(this.#engine, this.#now(), [...led.keys()]);
      for (const [kv, cmd] of sweeps) {
        const id = led.get(kv) as ShardId;
        if (this.#closed || !this.#host.hasGroup(id) || !this.#host.isLeader(id)) continue;
        await this.#propose(id, cmd, this.#defaultTimeoutMs).catch((err: unknown) =>
          this.#log.debug({ shardId: id, err: String(err) }, 'ttl sweep proposal failed; retried next period'),
        );
      }
    } finally {
      this.#sweeping = false;
    }
  }

  // ------------------------------------------------------------------ shutdown

  /**
   * Closes the store. Graceful: first hands leadership of every shard it leads to another voter
   * (waiting up to `transferTimeoutMs`), so clients see a short NOT_LEADER rather than an election timeout.
   */
  async close(opts: { transferTimeoutMs?: number; abrupt?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    if (opts.abrupt !== true) {
      const led: ShardId[] = [];
      for (const [id, sm] of this.replicas) {
        if (this.#removed.has(id) || !this.#host.hasGroup(id) || !this.#host.isLeader(id)) continue;
        // The most caught-up voter, as its append answers told this leader: a transfer to a lagging
        // or cut-off one would wait for it to catch up, past the deadline.
        const match = this.#match.matchOf(id, this.#host.status(id).term);
        let target: common.Replica | undefined;
        for (const r of sm.descriptor.replicas) {
          if (r.nodeId === this.nodeId || r.role !== common.ReplicaRole.REPLICA_ROLE_VOTER) continue;
          if (target === undefined || (match.get(r.replicaId) ?? 0) > (match.get(target.replicaId) ?? 0)) target = r;
        }
        if (target === undefined) continue;
        this.#host.transferLeader(id, target.replicaId);
        led.push(id);
      }
      const startMs = Date.now();
      const deadline = startMs + (opts.transferTimeoutMs ?? 2000);
      while (led.some((id) => this.#host.isLeader(id)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const kept = led.filter((id) => this.#host.isLeader(id)).length;
      // Operators (and the SIGTERM test) read this line: shards left to an election are `kept`.
      this.#log.info(
        { led: led.length, transferred: led.length - kept, kept, tookMs: Date.now() - startMs },
        'leaderships handed over',
      );
    }
    this.#closed = true;
    await this.#host.close(opts.abrupt === true ? { abrupt: true } : {});
    this.#log.info({}, 'store closed');
  }
}

/** Maps runtime and unknown errors to OmniError (the one error type at our edges). */
export function toOmniError(err: unknown): OmniError {
  if (err instanceof OmniError) return err;
  if (err instanceof RuntimeError) {
    switch (err.code) {
      case 'NOT_LEADER':
        return new OmniError('NOT_LEADER', err.message, {
          leaderReplicaId: err.leaderReplicaId,
          leaderNodeId: err.leaderNodeId,
        });
      case 'GROUP_NOT_FOUND':
        return new OmniError('SHARD_NOT_FOUND', err.message);
      case 'GROUP_EXISTS':
      case 'CONF_CHANGE_PENDING':
        return new OmniError('CONFLICT', err.message);
      case 'TOO_LARGE':
        return new OmniError('TOO_LARGE', err.message);
      case 'INVALID_ARGUMENT':
        return new OmniError('INVALID_ARGUMENT', err.message);
      case 'PROPOSAL_DROPPED':
      case 'TRANSFER_IN_PROGRESS':
      case 'UNAVAILABLE':
      case 'CLOSED':
        return new OmniError('UNAVAILABLE', err.message, { cause: err });
      case 'TIMEOUT':
      case 'OUTCOME_UNKNOWN':
        // The write may have been applied: the router must not resend it.
        return new OmniError('TIMEOUT', err.message);
      default:
        return new OmniError('INTERNAL', err.message, { cause: err });
    }
  }
  return new OmniError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

function toResponse(opCase: string, r: KvResult): nodepb.NodeResponse['result'] {
  switch (r.type) {
    case 'put':
      return { $case: 'put', value: { modIndex: r.modIndex } };
    case 'update':
      return { $case: 'update', value: { modIndex: r.modIndex } };
    case 'delete':
      return { $case: 'delete', value: { deleted: r.deleted, modIndex: r.modIndex } };
    case 'expire':
      return { $case: 'expire', value: { applied: r.applied, modIndex: r.modIndex } };
    case 'persist':
      return { $case: 'persist', value: { applied: r.applied, modIndex: r.modIndex } };
    case 'cas': {
      const value: kv.CompareAndSwapResponse = { swapped: r.swapped, modIndex: r.modIndex };
      if (r.current !== undefined) value.current = r.current;
      return { $case: 'cas', value };
    }
    case 'deleteRange':
      return { $case: 'deleteRange', value: { deleted: r.deleted } };
    default:
      throw new OmniError('INTERNAL', `unexpected ${r.type} result for ${opCase}`);
  }
}

/** Positive when `a`'s epoch is newer than `b`'s (version first, then confVer). */
function compareEpochs(a: common.ShardDescriptor, b: common.ShardDescriptor): number {
  return (a.epoch?.version ?? 0) - (b.epoch?.version ?? 0) || (a.epoch?.confVer ?? 0) - (b.epoch?.confVer ?? 0);
}
