import type { raftpb } from '@omnidict/proto';
import { decodeConfChange } from '../core/confChangeCodec.js';
import { RaftError } from '../core/errors.js';
import { RawNode } from '../core/rawNode.js';
import { seededRng } from '../core/rng.js';
import type {
  ConfChangeType,
  ConfState,
  Entry,
  HardState,
  Message,
  Ready,
  ReplicaId,
  Snapshot,
} from '../core/types.js';
import { ConfChangeType as CCT, EntryType, MessageType, StateRole } from '../core/types.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { ApplyState, Intent } from './codec.js';
import {
  ByteReader,
  ByteWriter,
  decodeApplyState,
  decodeConfChangeContext,
  decodeEntry,
  decodeHardState,
  decodeIntent,
  decodeTombstone,
  encodeApplyState,
  encodeConfChangeContext,
  encodeEntry,
  encodeHardState,
  encodeIntent,
  encodeTombstone,
  fromPbMessage,
  toPbMessage,
} from './codec.js';
import type { KvEngine, KvOp } from './engine.js';
import { RuntimeError } from './errors.js';
import {
  ALL_GROUPS_RANGE,
  applyStateKey,
  descriptorKey,
  entryKey,
  hardStateKey,
  intentKey,
  KeySuffix,
  parseGroupKey,
  replicaStateRange,
  stagedChunkKey,
  stagedChunkRange,
  tombstoneKey,
} from './keys.js';
import type { Logger } from './logger.js';
import { noopLogger } from './logger.js';
import { LogMirror } from './logMirror.js';
import type { GroupInput, ProposalResult, Waiter } from './replica.js';
import { Replica } from './replica.js';
import type { CommittedEntry, SnapshotWriter, StateMachine, StateMachineFactory, WriteBatch } from './stateMachine.js';
import type { Transport, TransportHandler } from './transport.js';
import type { GroupId, NodeId, PeerSpec } from './types.js';

export interface RaftHostConfig {
  readonly nodeId: NodeId;
  /** The process's one database; the host does not close it. */
  readonly engine: KvEngine;
  readonly transport: Transport;
  readonly stateMachine: StateMachineFactory;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Uniform [0,1) randomness for election timeouts. Defaults to a PRNG seeded from `rngSeed`. */
  readonly rng?: () => number;
  readonly rngSeed?: number;
  /** Wall time of one Raft tick. Default 100 ms. */
  readonly tickMs?: number;
  /** Default 10 ticks (randomized in [e, 2e) by the core). */
  readonly electionTicks?: number;
  /** Default 2 ticks. */
  readonly heartbeatTicks?: number;
  readonly maxSizePerMsgBytes?: number;
  readonly maxInflightMsgs?: number;
  /** Entries kept below appliedIndex when truncating the log (followers this close catch up by log). */
  readonly logLagEntries?: number;
  /** Snapshot chunk limit (each gRPC message stays under it). Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /** Inbound Raft messages queued but not yet stepped, over all groups; beyond it batches are dropped. */
  readonly maxInboundMessages?: number;
  /** Groups drained per scheduler turn. */
  readonly maxGroupsPerTurn?: number;
  readonly maxProposalBytes?: number;
  /** Quiesce idle groups (default true). */
  readonly quiesce?: boolean;
  /**
   * How long a leader holds the bare commit notice an ack made due (default 10 ms; 0 sends it in
   * the same turn). A proposal to the group meanwhile makes it unneeded: its append carries the
   * commit index. So a client writing in a loop costs each follower one message and one turn per
   * write instead of two, and the notices of groups not written again leave together when the
   * timer fires. When writes stop, followers apply the last ones up to this much later, and the
   * group quiesces only after that.
   */
  readonly commitNoticeDelayMs?: number;
  /**
   * How `readIndex` confirms leadership. `safe` (default): one heartbeat round per batch of reads
   * (§6.4 ReadIndex). `leaseBased`: answered from the leader's commit index with no round trip,
   * trusting the check-quorum leader lease — which relies on bounded clock drift AND on the
   * process not being paused (GC, SIGSTOP, an overloaded machine) for longer than the lease: a
   * paused leader that resumes may serve a stale read before it notices it was deposed. Opt in only
   * where that cannot happen.
   */
  readonly readOnly?: 'safe' | 'leaseBased';
  /**
   * Clock-checked leader leases (TiKV style), on top of `safe` ReadIndex. Each ReadIndex round the
   * leader completes proves that a quorum heard from it after the round began at t0; with
   * check-quorum those voters refuse to vote for anyone else for an election timeout after that, so
   * no other leader can exist before t0 + electionTicks × tickMs. The leader then answers reads from
   * its commit index with no round trip until t0 + `leaseRatio` × that (default 0.9: the margin is
   * for clock RATE drift between processes; the clock is monotonic, so a paused process — GC,
   * SIGSTOP — wakes up with its lease expired rather than trusting it). A leadership transfer ends
   * the lease at once (its TimeoutNow bypasses the voters' check). Reads past the lease's first half
   * renew it in the background. Default off; ignored unless `readOnly` is `safe`.
   */
  readonly leaseReads?: boolean;
  /** Fraction of the minimum election timeout a lease lasts. Default 0.9. */
  readonly leaseRatio?: number;
  /**
   * Called for a message to a group this host does not have. Return true to create an empty
   * (uninitialized) replica that a snapshot will fill — e.g. a learner being added here. The KV node
   * must refuse when the group's range overlaps a local replica that has not applied its split yet.
   */
  readonly onUnknownGroup?: (info: UnknownGroupInfo) => boolean;
  /**
   * Called once this replica has applied (durably) a ConfChange that removes it from its group. The
   * replica stays hosted — it can no longer campaign — until the application calls `destroyGroup`.
   * Runs on the scheduler's path: do not block; schedule the destroy.
   */
  readonly onReplicaRemoved?: (info: ReplicaRemovedInfo) => void;
  /**
   * Called when a message arrives from a replica that is not in the receiving replica's applied
   * membership — typically a replica removed while it was cut off, which never applied its removal
   * and keeps sending (campaigning, answering). A hint, not a proof (a follower that has not yet
   * applied an AddNode sees the new replica as stale too): the application asks the placement
   * driver or the leader, and if the sender is really gone tells its node to `destroyGroup`.
   * Reported at most once per (group, sender) per election timeout.
   */
  readonly onStalePeer?: (info: StalePeerInfo) => void;
}

export interface ReplicaRemovedInfo {
  readonly groupId: GroupId;
  /** This host's replica, now removed from the group. */
  readonly replicaId: ReplicaId;
  /** Index of the ConfChange entry that removed it. */
  readonly index: number;
}

export interface StalePeerInfo {
  readonly groupId: GroupId;
  /** The receiving (local) replica. */
  readonly replicaId: ReplicaId;
  /** The sender, not a member of the local replica's applied configuration. */
  readonly fromReplicaId: ReplicaId;
  readonly fromNodeId: NodeId;
  /** Whether the local replica is the group's leader (its membership view is authoritative). */
  readonly localIsLeader: boolean;
}

export interface DestroyGroupOptions {
  /** Why the replica is dropped (logged), e.g. 'removed by conf change', 'stale peer'. */
  readonly reason?: string;
}

export interface UnknownGroupInfo {
  readonly groupId: GroupId;
  readonly replicaId: ReplicaId;
  readonly fromNode: NodeId;
  /** The sender's group descriptor, when it attached one. */
  readonly groupContext: Uint8Array;
}

export interface CreateGroupSpec {
  readonly groupId: GroupId;
  /** This host's replica. */
  readonly replicaId: ReplicaId;
  /** The initial members, including this one. Every member is created with the same list. */
  readonly peers: readonly PeerSpec[];
  readonly descriptor?: Uint8Array;
  /**
   * For this long after creation the replica starts no election of its own unless it hears from a
   * leader first (its ticks are dropped): another member is about to campaign (see `campaign`).
   */
  readonly holdElectionMs?: number;
}

export interface GroupStatus {
  readonly groupId: GroupId;
  readonly replicaId: ReplicaId;
  readonly role: 'leader' | 'follower' | 'candidate' | 'preCandidate';
  readonly leaderReplicaId: ReplicaId;
  readonly leaderNodeId: NodeId;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly truncatedIndex: number;
  readonly lastIndex: number;
  readonly quiesced: boolean;
  readonly confState: ConfState;
  readonly peers: ReadonlyMap<ReplicaId, NodeId>;
}

export interface HostStats {
  turns: number;
  /** Durable (sync) batches written by the scheduler. */
  syncWrites: number;
  /** Committed entries applied (all groups). */
  appliedEntries: number;
  /** Reads answered from a leader lease, without a ReadIndex round. */
  leaseReads: number;
  batchesSent: number;
  messagesSent: number;
  inboundDropped: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
}

export interface ProposeOptions {
  /** Reject with TIMEOUT after this long (the proposal may still commit). */
  readonly timeoutMs?: number;
}

const EMPTY = new Uint8Array();
const ROLE_NAMES = ['follower', 'candidate', 'leader', 'preCandidate'] as const;

interface TurnWork {
  readonly g: Replica;
  readonly rd: Ready;
  /** The Ready consumed a staged snapshot (or the stepped Snap message was refused by Raft). */
  readonly steppedSnapshot: boolean;
  /** Messages of `rd.earlyMessages` already sent before the write (not sent again). */
  readonly sentEarly: Set<Message>;
}

/** A Ready whose Raft log writes are in the turn's log batch; apply state/descriptor after a snapshot install. */
interface LoggedWork extends TurnWork {
  readonly applyState: ApplyState;
  readonly descriptor: Uint8Array | undefined;
}

/** What applying a Ready's committed entries produced (`#apply`). */
interface Applied {
  readonly applyState: ApplyState;
  readonly results: PreparedWork['results'];
  readonly descriptor: Uint8Array | undefined;
  readonly removedSelfAt: number;
  readonly farewells: Farewell[];
}

interface PreparedWork extends TurnWork {
  readonly applyState: ApplyState;
  readonly results: Array<{ index: number; term: number; result: unknown }>;
  readonly truncateTo: number;
  readonly descriptor: Uint8Array | undefined;
  /** Index of an applied ConfChange that removed this replica, 0 if none. */
  readonly removedSelfAt: number;
  /** Leader only: replicas this Ready removed, to be told the commit index of their removal. */
  readonly farewells: readonly Farewell[];
}

/**
 * A leader stops replicating to a replica as soon as it applies the replica's removal, so the
 * removed replica may never learn that the entry removing it committed. The leader sends it one
 * last heartbeat carrying that commit (bounded by what the replica is known to hold, as any
 * heartbeat); if it is lost or the replica lags, the replica ends up campaigning and `onStalePeer`
 * reports it instead.
 */
interface Farewell {
  readonly to: ReplicaId;
  readonly toNode: NodeId;
  readonly commit: number;
}

/** Snapshot stream layout: chunk 0 is the runtime's meta (apply state + descriptor); the rest are the state machine's. */
function encodeSnapshotMeta(applyState: ApplyState, descriptor: Uint8Array | undefined): Uint8Array {
  const w = new ByteWriter().u8(1).bytes(encodeApplyState(applyState));
  if (descriptor === undefined) w.u8(0);
  else w.u8(1).bytes(descriptor);
  return w.finish();
}

function decodeSnapshotMeta(b: Uint8Array): { applyState: ApplyState; descriptor: Uint8Array | undefined } {
  const r = new ByteReader(b);
  if (r.u8() !== 1) throw new Error('unsupported snapshot meta version');
  const applyState = decodeApplyState(r.bytes());
  const descriptor = r.u8() === 1 ? r.bytes().slice() : undefined;
  return { applyState, descriptor };
}

function toRuntimeError(e: unknown, g: Replica): Error {
  if (e instanceof RaftError) {
    switch (e.code) {
      case 'NOT_LEADER':
        return new RuntimeError('NOT_LEADER', e.message, {
          groupId: g.groupId,
          leaderReplicaId: e.leaderId,
          leaderNodeId: g.peerNode(e.leaderId) ?? 0,
        });
      case 'PROPOSAL_DROPPED':
      case 'TRANSFER_IN_PROGRESS':
      case 'CONF_CHANGE_PENDING':
        return new RuntimeError(e.code, e.message, { groupId: g.groupId });
      default:
        return new RuntimeError('PROPOSAL_DROPPED', e.message, { groupId: g.groupId, cause: e });
    }
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** A Ready that commits entries some local proposal waits for. */
function answersProposals(w: TurnWork): boolean {
  return w.rd.committedEntries.length > 0 && w.g.waiters.size > 0;
}

/**
 * True when every entry the Ready applies is already durable here: no snapshot, and its committed
 * entries all precede the entries it persists (a follower may be told to commit entries that arrive
 * in the same message; those must be in the log before anything is applied from them).
 */
function appliesOnlyDurable(w: TurnWork): boolean {
  const { rd } = w;
  if (rd.snapshot !== undefined || w.steppedSnapshot) return false;
  const lastCommitted = rd.committedEntries.at(-1)?.index;
  const firstNew = rd.entries[0]?.index;
  return lastCommitted === undefined || firstNew === undefined || lastCommitted < firstNew;
}

/**
 * Settles the proposals whose entries a prepared Ready applied: the proposer's entry (same term)
 * resolves with its result; another leader's entry at that index rejects it. Called once per turn,
 * as soon as every applied entry is durable in the log: before the apply batch is written (and
 * before the log fsync of new entries when applying first).
 */
function settleResults(p: PreparedWork): void {
  const g = p.g;
  for (const r of p.results) {
    const w = g.waiters.get(r.index);
    if (w === undefined) continue;
    g.waiters.delete(r.index);
    if (w.term === r.term) w.resolve({ index: r.index, result: r.result });
    else
      w.reject(
        new RuntimeError('PROPOSAL_DROPPED', `entry ${r.index} was overwritten by term ${r.term}`, {
          groupId: g.groupId,
        }),
      );
  }
}

/**
 * RaftHost runs many Raft groups in one process (TiKV raftstore / CockroachDB Store style).
 *
 * - Scheduler: each replica has flags (ticks, inbox, inputs); an event queues it once in the run
 *   queue. A setImmediate-driven loop drains up to `maxGroupsPerTurn` replicas per turn, collects
 *   their Readys, and handles them together.
 * - Group commit: the Raft writes (entries, hard state) of every replica in the turn go into ONE
 *   `write(ops, { sync })`; leaders' appends/heartbeats (Ready.earlyMessages) leave before it,
 *   every other message once it is durable. The committed entries' applied data and apply states
 *   are computed while it is in flight and written after it in ONE unsynced atomic batch.
 *   Proposals resolve as soon as their entries are durable and applied (before that batch lands);
 *   reads and Readys advance after it. At most one scheduler turn is in flight.
 * - Quiescence: a leader with nothing in flight stops ticking and tells its followers, which stop
 *   too. A proposal or message wakes a group; a follower also wakes when its leader's process has
 *   not been heard from for an election timeout (processes exchange keepalives on the transport).
 */
export class RaftHost {
  readonly nodeId: NodeId;
  readonly stats: HostStats = {
    turns: 0,
    syncWrites: 0,
    appliedEntries: 0,
    leaseReads: 0,
    batchesSent: 0,
    messagesSent: 0,
    inboundDropped: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
  };

  readonly #engine: KvEngine;
  readonly #transport: Transport;
  readonly #factory: StateMachineFactory;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #rng: () => number;
  readonly #tickMs: number;
  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #maxSizePerMsg: number;
  readonly #maxInflight: number;
  readonly #lag: number;
  readonly #chunkBytes: number;
  readonly #maxInbound: number;
  readonly #maxGroupsPerTurn: number;
  readonly #maxProposalBytes: number;
  readonly #quiesceEnabled: boolean;
  readonly #commitNoticeDelayMs: number;
  /** Leaders holding a commit notice until the timer below fires. */
  readonly #commitNoticeHeld = new Set<Replica>();
  #cancelCommitNoticeTimer: (() => void) | undefined;
  readonly #readOnly: 'safe' | 'leaseBased';
  /** Lease length in ms, 0 when lease reads are off. */
  readonly #leaseMs: number;
  readonly #onUnknownGroup: ((info: UnknownGroupInfo) => boolean) | undefined;
  readonly #onReplicaRemoved: ((info: ReplicaRemovedInfo) => void) | undefined;
  readonly #onStalePeer: ((info: StalePeerInfo) => void) | undefined;
  /** Destroyed replica ids per group (durable under 0x07, plus destroys in progress): never recreated. */
  readonly #tombstones = new Map<GroupId, Set<ReplicaId>>();
  readonly #destroying = new Map<GroupId, Promise<void>>();
  /** `${groupId}/${fromReplicaId}` → when onStalePeer last fired for it. */
  readonly #staleReportedMs = new Map<string, number>();

  readonly #groups = new Map<GroupId, Replica>();
  /** Non-quiesced replicas: the only ones ticked. */
  readonly #active = new Set<Replica>();
  #runQueue: Replica[] = [];
  #inboundQueued = 0;
  #loopScheduled = false;
  #turnRunning: Promise<void> | undefined;
  #closed = false;
  #failed: Error | undefined;
  #cancelTick: (() => void) | undefined;
  #tickCount = 0;
  #readSeq = 0;
  /** Per peer process: last time anything arrived from it, and whether we consider it down. */
  readonly #lastHeardMs = new Map<NodeId, number>();
  readonly #peerDown = new Set<NodeId>();
  #peerNodes: NodeId[] = [];
  #peersDirty = true;
  #idleWaiters: Array<() => void> = [];

  private constructor(config: RaftHostConfig) {
    this.nodeId = config.nodeId;
    this.#engine = config.engine;
    this.#transport = config.transport;
    this.#factory = config.stateMachine;
    this.#clock = config.clock ?? systemClock;
    this.#log = (config.logger ?? noopLogger).child({ nodeId: config.nodeId });
    this.#rng = config.rng ?? seededRng(config.rngSeed ?? Math.floor(Math.random() * 2 ** 32));
    this.#tickMs = config.tickMs ?? 100;
    this.#electionTicks = config.electionTicks ?? 10;
    this.#heartbeatTicks = config.heartbeatTicks ?? 2;
    this.#maxSizePerMsg = config.maxSizePerMsgBytes ?? 1 << 20;
    this.#maxInflight = config.maxInflightMsgs ?? 256;
    this.#lag = config.logLagEntries ?? 512;
    this.#chunkBytes = config.snapshotChunkBytes ?? 1 << 20;
    this.#maxInbound = config.maxInboundMessages ?? 100_000;
    this.#maxGroupsPerTurn = config.maxGroupsPerTurn ?? 4096;
    this.#maxProposalBytes = config.maxProposalBytes ?? 8 << 20;
    this.#quiesceEnabled = config.quiesce ?? true;
    this.#commitNoticeDelayMs = config.commitNoticeDelayMs ?? 10;
    if (!(this.#commitNoticeDelayMs >= 0)) {
      throw new RuntimeError('INVALID_ARGUMENT', `commitNoticeDelayMs must be >= 0, got ${config.commitNoticeDelayMs}`);
    }
    this.#readOnly = config.readOnly ?? 'safe';
    const leaseRatio = config.leaseRatio ?? 0.9;
    if (!(leaseRatio > 0 && leaseRatio < 1)) {
      throw new RuntimeError('INVALID_ARGUMENT', `leaseRatio must be in (0, 1), got ${leaseRatio}`);
    }
    this.#leaseMs =
      config.leaseReads === true && this.#readOnly === 'safe' ? leaseRatio * this.#electionTicks * this.#tickMs : 0;
    this.#onUnknownGroup = config.onUnknownGroup;
    this.#onReplicaRemoved = config.onReplicaRemoved;
    this.#onStalePeer = config.onStalePeer;
  }

  /**
   * open loads every group from the engine (finishing any snapshot install a crash interrupted),
   * starts the transport and the tick timer.
   */
  static async open(config: RaftHostConfig): Promise<RaftHost> {
    const host = new RaftHost(config);
    await host.#load();
    const handler: TransportHandler = {
      onBatch: (b) => host.#onBatch(b),
      onSnapshot: (h, c) => host.#onSnapshot(h, c),
    };
    await host.#transport.start(handler);
    host.#cancelTick = host.#clock.setInterval(() => host.#onTick(), host.#tickMs);
    host.#log.info({ groups: host.#groups.size }, 'raft host opened');
    return host;
  }

  // ------------------------------------------------------------------ public API

  /** createGroup bootstraps a new replica of a group with its initial membership (durably). */
  async createGroup(spec: CreateGroupSpec): Promise<void> {
    // A re-add waits for a destroy of the same group still under way (it clears the group's keys).
    await this.#destroying.get(spec.groupId)?.catch(() => {});
    this.#checkOpen();
    if (this.#groups.has(spec.groupId)) {
      throw new RuntimeError('GROUP_EXISTS', `group ${spec.groupId} exists`, { groupId: spec.groupId });
    }
    if (!spec.peers.some((p) => p.replicaId === spec.replicaId && p.nodeId === this.nodeId)) {
      throw new RuntimeError('INVALID_ARGUMENT', `peers must include replica ${spec.replicaId} on node ${this.nodeId}`);
    }
    if (this.#isTombstoned(spec.groupId, spec.replicaId)) {
      throw new RuntimeError(
        'INVALID_ARGUMENT',
        `replica ${spec.replicaId} of group ${spec.groupId} was destroyed here; a re-add needs a new replica id`,
        { groupId: spec.groupId },
      );
    }
    const applyState: ApplyState = {
      appliedIndex: 0,
      appliedTerm: 0,
      truncatedIndex: 0,
      truncatedTerm: 0,
      confState: {
        voters: spec.peers.filter((p) => p.learner !== true).map((p) => p.replicaId),
        learners: spec.peers.filter((p) => p.learner === true).map((p) => p.replicaId),
      },
      peers: new Map(spec.peers.map((p) => [p.replicaId, p.nodeId])),
    };
    const hardState: HardState = { term: 0, vote: 0, commit: 0 };
    const ops: KvOp[] = [
      { type: 'put', key: applyStateKey(spec.groupId), value: encodeApplyState(applyState) },
      { type: 'put', key: hardStateKey(spec.groupId), value: encodeHardState(hardState) },
    ];
    if (spec.descriptor !== undefined) {
      ops.push({ type: 'put', key: descriptorKey(spec.groupId), value: spec.descriptor });
    }
    await this.#engine.write(ops, { sync: true });
    this.#checkOpen();
    const g = this.#addReplica(spec.groupId, spec.replicaId, applyState, hardState, [], spec.descriptor);
    if (spec.holdElectionMs !== undefined && spec.holdElectionMs > 0) {
      g.electionHeldUntilMs = this.#clock.nowMs() + spec.holdElectionMs;
    }
  }

  /**
   * destroyGroup drops this process's replica of a group (after its removal by a ConfChange, or
   * when the placement driver says it is stale). Order, each step crash-safe:
   *
   * 1. the replica leaves the host at once: its pending proposals and reads reject with
   *    GROUP_NOT_FOUND, inbound messages for it are dropped, the scheduler skips it;
   * 2. after the scheduler's in-flight write, ONE synced write records the destroy intent
   *    (`0x02‖groupId‖0x06`, with the replica id and the descriptor);
   * 3. the state machine deletes its data (`StateMachine.destroy`), then the runtime clears the
   *    replica's log, hard state, apply state, descriptor and staged snapshot chunks (non-atomic);
   * 4. ONE synced write adds the replica id to the group's tombstone (`0x07`) and deletes the intent.
   *
   * A restart that finds the intent re-runs steps 3–4 before loading any group, so the replica
   * never comes back. The tombstone keeps messages to the destroyed replica id (a stale heartbeat
   * or append) from recreating it, and `createGroup` refuses that id; a later re-add of the group
   * with a NEW replica id works as for any new replica. Concurrent calls for the same group share
   * one destroy. If step 3 or 4 fails the promise rejects with STORAGE and the restart finishes it.
   */
  destroyGroup(groupId: GroupId, opts: DestroyGroupOptions = {}): Promise<void> {
    const running = this.#destroying.get(groupId);
    if (running !== undefined) return running;
    try {
      this.#checkOpen();
      const g = this.#group(groupId);
      const p = this.#destroy(g, opts.reason ?? 'unspecified').finally(() => this.#destroying.delete(groupId));
      this.#destroying.set(groupId, p);
      return p;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * propose replicates `data` through the group's log. Resolves once the entry is applied on this
   * replica (the leader) with the state machine's result and the entry's index. Rejects with
   * NOT_LEADER (leader hints), PROPOSAL_DROPPED, TRANSFER_IN_PROGRESS, TOO_LARGE, CLOSED, TIMEOUT.
   */
  propose<R = unknown>(groupId: GroupId, data: Uint8Array, opts: ProposeOptions = {}): Promise<ProposalResult<R>> {
    return this.#submit(groupId, opts, (g, waiter) => {
      if (data.length === 0) throw new RuntimeError('INVALID_ARGUMENT', 'empty proposal', { groupId });
      if (data.length > this.#maxProposalBytes) {
        throw new RuntimeError('TOO_LARGE', `proposal of ${data.length} bytes exceeds ${this.#maxProposalBytes}`, {
          groupId,
        });
      }
      this.#rejectIfFollower(g);
      return { kind: 'propose', data, waiter };
    }) as Promise<ProposalResult<R>>;
  }

  /**
   * proposeConfChange changes membership one replica at a time (add learner, promote with
   * AddVoter, remove). `nodeId` says which process hosts an added replica. Resolves with the new
   * ConfState once applied here.
   */
  proposeConfChange(
    groupId: GroupId,
    change: { type: ConfChangeType; replicaId: ReplicaId; nodeId?: NodeId; context?: Uint8Array },
    opts: ProposeOptions = {},
  ): Promise<ProposalResult<ConfState>> {
    return this.#submit(groupId, opts, (g, waiter) => {
      this.#rejectIfFollower(g);
      if (change.type !== CCT.RemoveNode && (change.nodeId ?? 0) === 0) {
        throw new RuntimeError('INVALID_ARGUMENT', 'adding a replica needs its nodeId', { groupId });
      }
      return {
        kind: 'confChange',
        type: change.type,
        replicaId: change.replicaId,
        context: encodeConfChangeContext(change.nodeId ?? 0, change.context),
        waiter,
      };
    }) as Promise<ProposalResult<ConfState>>;
  }

  /**
   * readIndex returns a linearizable read point (§6.4 ReadIndex): resolves with an index once this
   * replica has applied at least that far, so a read of local state is linearizable.
   */
  readIndex(groupId: GroupId, opts: ProposeOptions = {}): Promise<number> {
    const g = this.#group(groupId);
    return new Promise<number>((resolve, reject) => {
      if (this.#closed) return reject(this.#closedError());
      // One deadline for the read's whole life: waiting for its ReadIndex round, then (lease or
      // round) waiting for the apply to reach the read point.
      let key: string | undefined;
      let settled = false;
      let cancel: (() => void) | undefined;
      const ok = (index: number) => {
        if (settled) return;
        settled = true;
        cancel?.();
        resolve(index);
      };
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        cancel?.();
        reject(e);
      };
      if (opts.timeoutMs !== undefined) {
        cancel = this.#clock.setTimeout(() => {
          if (key !== undefined) g.readWaiters.delete(key);
          fail(new RuntimeError('TIMEOUT', 'read index timed out', { groupId }));
        }, opts.timeoutMs);
      }
      if (this.#leaseRead(g, ok, fail)) return;
      const ctx = this.#nextReadCtx();
      key = Buffer.from(ctx).toString('hex');
      g.readWaiters.set(key, { resolve: ok, reject: fail });
      g.inputs.push({ kind: 'readIndex', ctx });
      this.#wake(g);
      this.#schedule(g);
    });
  }

  /**
   * leaseRead answers a read from the leader's commit index when its lease holds (see
   * `RaftHostConfig.leaseReads`): every write acknowledged so far is committed at or below it, and
   * no other leader can have committed anything since. Returns false when a ReadIndex round is needed.
   */
  #leaseRead(g: Replica, resolve: (index: number) => void, reject: (e: Error) => void): boolean {
    if (this.#leaseMs === 0 || !g.isLeader) return false;
    const raft = g.node.raft;
    const now = this.#clock.nowMs();
    if (raft.leadTransferee !== 0) {
      this.#endLease(g);
      return false;
    }
    if (raft.state !== StateRole.Leader || raft.term !== g.leaseTerm || now >= g.leaseUntilMs) return false;
    const index = raft.log.committed;
    this.stats.leaseReads++;
    if (index <= g.applyState.appliedIndex) resolve(index);
    else g.pendingReads.push({ index, resolve, reject });
    // Past half the lease: one ReadIndex round renews it, before readers have to wait for one.
    if (g.leaseUntilMs - now < this.#leaseMs / 2 && !g.leaseRenewing) {
      g.leaseRenewing = true;
      const ctx = this.#nextReadCtx();
      g.inputs.push({ kind: 'readIndex', ctx });
      this.#wake(g);
      this.#schedule(g);
    }
    return true;
  }

  /** Ends the lease, and keeps ReadIndex rounds begun until now from renewing it. */
  #endLease(g: Replica): void {
    g.leaseUntilMs = 0;
    g.leaseNotBeforeMs = this.#clock.nowMs();
  }

  #nextReadCtx(): Uint8Array {
    const ctx = new Uint8Array(12);
    new DataView(ctx.buffer).setUint32(0, this.nodeId);
    new DataView(ctx.buffer).setFloat64(4, ++this.#readSeq);
    return ctx;
  }

  /** transferLeader asks the group's leader (this replica) to hand leadership to `to` (thesis §3.10). */
  transferLeader(groupId: GroupId, to: ReplicaId): void {
    const g = this.#group(groupId);
    this.#endLease(g); // the transferee campaigns past the voters' lease check
    g.inputs.push({ kind: 'transferLeader', to });
    this.#wake(g);
    this.#schedule(g);
  }

  /** campaign makes this replica start an election now (tests, bootstrapping, leader moves). */
  campaign(groupId: GroupId): void {
    const g = this.#group(groupId);
    g.inputs.push({ kind: 'campaign' });
    this.#wake(g);
    this.#schedule(g);
  }

  hasGroup(groupId: GroupId): boolean {
    return this.#groups.has(groupId);
  }

  /** isLeader: `status(groupId).role === 'leader'` without building a status (per-request checks). */
  isLeader(groupId: GroupId): boolean {
    return this.#group(groupId).node.raft.state === StateRole.Leader;
  }

  groupIds(): GroupId[] {
    return [...this.#groups.keys()];
  }

  status(groupId: GroupId): GroupStatus {
    const g = this.#group(groupId);
    const st = g.node.status();
    return {
      groupId,
      replicaId: g.replicaId,
      role: ROLE_NAMES[st.softState.role] ?? 'follower',
      leaderReplicaId: st.softState.leaderId,
      leaderNodeId: g.peerNode(st.softState.leaderId) ?? 0,
      term: st.hardState.term,
      commitIndex: st.hardState.commit,
      appliedIndex: g.applyState.appliedIndex,
      truncatedIndex: g.applyState.truncatedIndex,
      lastIndex: st.lastIndex,
      quiesced: g.quiesced,
      confState: g.applyState.confState,
      peers: g.applyState.peers,
    };
  }

  /** Number of groups currently ticking (not quiesced). */
  get activeGroupCount(): number {
    return this.#active.size;
  }

  /** Leaders holding a commit notice for `commitNoticeDelayMs` (sent when that timer fires). */
  get commitNoticesHeld(): number {
    return this.#commitNoticeHeld.size;
  }

  /** idle resolves when the run queue is empty and no scheduler turn is running. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * close stops the host. Graceful: waits for the running turn. `abrupt: true` simulates a crash:
   * nothing more is written or sent (a write already handed to the engine may or may not land).
   * Pending proposals reject with CLOSED. The engine is left open for the caller to close.
   */
  async close(opts: { abrupt?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelTick?.();
    this.#cancelCommitNoticeTimer?.();
    this.#commitNoticeHeld.clear();
    if (opts.abrupt !== true && this.#turnRunning !== undefined) await this.#turnRunning.catch(() => {});
    const err = this.#closedError();
    for (const g of this.#groups.values()) this.#failReplica(g, err);
    await this.#transport.close();
    for (const w of this.#idleWaiters.splice(0)) w();
    this.#log.info({}, opts.abrupt === true ? 'raft host stopped abruptly' : 'raft host closed');
  }

  // ------------------------------------------------------------------ loading

  async #load(): Promise<void> {
    interface Loaded {
      entries: Entry[];
      hardState?: HardState;
      applyState?: ApplyState;
      descriptor?: Uint8Array;
      intent?: Intent;
      tombstone?: Set<ReplicaId>;
    }
    const loaded = new Map<GroupId, Loaded>();
    for await (const [key, value] of this.#engine.iterate(ALL_GROUPS_RANGE)) {
      const k = parseGroupKey(key);
      if (k === undefined) continue;
      let l = loaded.get(k.groupId);
      if (l === undefined) {
        l = { entries: [] };
        loaded.set(k.groupId, l);
      }
      switch (k.suffix) {
        case KeySuffix.Entry:
          l.entries.push(decodeEntry(k.index, value.slice()));
          break;
        case KeySuffix.HardState:
          l.hardState = decodeHardState(value);
          break;
        case KeySuffix.ApplyState:
          l.applyState = decodeApplyState(value);
          break;
        case KeySuffix.Descriptor:
          l.descriptor = value.slice();
          break;
        case KeySuffix.Intent:
          l.intent = decodeIntent(value);
          break;
        case KeySuffix.Tombstone:
          l.tombstone = decodeTombstone(value);
          break;
        default:
          break;
      }
    }
    // First finish every destroy a crash interrupted: those replicas must not come back.
    for (const [groupId, l] of loaded) {
      if (l.tombstone !== undefined) this.#tombstones.set(groupId, l.tombstone);
      if (l.intent?.kind !== 'destroy') continue;
      this.#log.warn({ groupId, replicaId: l.intent.replicaId }, 'finishing interrupted replica destroy');
      await this.#finishDestroy(groupId, l.intent, this.#factory(groupId, l.intent.descriptor));
      loaded.delete(groupId);
    }
    for (const [groupId, l] of loaded) {
      let applyState = l.applyState ?? emptyApplyState();
      let descriptor = l.descriptor;
      let entries = l.entries;
      if (l.intent?.kind === 'install') {
        // A crash interrupted a snapshot install: the staged chunks are durable, so run it again.
        this.#log.warn({ groupId, index: l.intent.index }, 'finishing interrupted snapshot install');
        const sm = this.#factory(groupId, descriptor);
        const done = await this.#installStaged(
          groupId,
          sm,
          l.intent,
          applyState,
          entries.map((e) => e.index),
        );
        await this.#engine.write(done.ops, { sync: true });
        applyState = done.applyState;
        descriptor = done.descriptor ?? descriptor;
        entries = [];
      }
      entries = entries.filter((e) => e.index > applyState.truncatedIndex);
      const hs = l.hardState ?? { term: 0, vote: 0, commit: 0 };
      const lastIndex = entries[entries.length - 1]?.index ?? applyState.truncatedIndex;
      // Applied entries are committed: the hard state may lag a snapshot install that crashed before it was saved.
      const commit = Math.min(Math.max(hs.commit, applyState.appliedIndex), lastIndex);
      if (l.hardState === undefined && l.applyState === undefined) continue; // only staging leftovers
      const self = findSelf(applyState, this.nodeId);
      if (self === 0) {
        this.#log.warn({ groupId }, 'group on disk has no replica on this node; skipped');
        continue;
      }
      this.#addReplica(groupId, self, applyState, { ...hs, commit }, entries, descriptor);
    }
  }

  #addReplica(
    groupId: GroupId,
    replicaId: ReplicaId,
    applyState: ApplyState,
    hardState: HardState,
    entries: readonly Entry[],
    descriptor: Uint8Array | undefined,
  ): Replica {
    let replica: Replica | undefined;
    const mirror = new LogMirror(
      { index: applyState.truncatedIndex, term: applyState.truncatedTerm },
      applyState.confState,
      hardState,
      entries,
      () => (replica as Replica).applyState,
    );
    const log = this.#log.child({ groupId, replicaId });
    const node = new RawNode({
      id: replicaId,
      electionTick: this.#electionTicks,
      heartbeatTick: this.#heartbeatTicks,
      storage: mirror,
      applied: applyState.appliedIndex,
      maxSizePerMsg: this.#maxSizePerMsg,
      maxInflightMsgs: this.#maxInflight,
      checkQuorum: true,
      preVote: true,
      readOnlyOption: this.#readOnly,
      rng: this.#rng,
      logger: log,
    });
    replica = new Replica({
      groupId,
      replicaId,
      node,
      mirror,
      sm: this.#factory(groupId, descriptor),
      applyState,
      hardState,
      descriptor,
    });
    this.#groups.set(groupId, replica);
    this.#active.add(replica);
    this.#peersDirty = true;
    return replica;
  }

  // ------------------------------------------------------------------ scheduler

  #schedule(g: Replica): void {
    if (!g.scheduled) {
      g.scheduled = true;
      this.#runQueue.push(g);
    }
    this.#kick();
  }

  #kick(): void {
    if (this.#loopScheduled || this.#turnRunning !== undefined || this.#closed) return;
    this.#loopScheduled = true;
    setImmediate(() => {
      this.#loopScheduled = false;
      if (this.#closed || this.#turnRunning !== undefined) return;
      const p = this.#turn().catch((e: unknown) => this.#fail(e));
      this.#turnRunning = p;
      void p.finally(() => {
        this.#turnRunning = undefined;
        if (this.#runQueue.length > 0) this.#kick();
        else if (this.#isIdle()) for (const w of this.#idleWaiters.splice(0)) w();
      });
    });
  }

  #isIdle(): boolean {
    return this.#closed || (this.#runQueue.length === 0 && this.#turnRunning === undefined && !this.#loopScheduled);
  }

  #onTick(): void {
    if (this.#closed) return;
    this.#tickCount++;
    for (const g of this.#active) {
      g.pendingTicks++;
      this.#schedule(g);
    }
    this.#checkPeers();
  }

  /** One scheduler turn: drain queued replicas, collect Readys, persist them in one batch, then send/apply/advance. */
  async #turn(): Promise<void> {
    this.stats.turns++;
    const take =
      this.#runQueue.length <= this.#maxGroupsPerTurn
        ? this.#runQueue
        : this.#runQueue.slice(0, this.#maxGroupsPerTurn);
    this.#runQueue = take === this.#runQueue ? [] : this.#runQueue.slice(this.#maxGroupsPerTurn);
    const work: TurnWork[] = [];
    const drained: Replica[] = [];
    for (const g of take) {
      g.scheduled = false;
      if (this.#groups.get(g.groupId) !== g) continue;
      const steppedSnapshot = this.#drain(g);
      drained.push(g);
      if (g.node.hasReady()) work.push({ g, rd: g.node.ready(), steppedSnapshot, sentEarly: new Set() });
      else if (steppedSnapshot) g.staged = undefined;
    }
    const outbox = new Map<NodeId, raftpb.MessageBatch>();
    if (work.length > 0) {
      // Thesis §10.2.1: leaders' appends and heartbeats leave now, in parallel with this turn's
      // write; everything else (acks, votes, responses) waits until the write is durable.
      const early = new Map<NodeId, raftpb.MessageBatch>();
      for (const w of work) {
        for (const m of w.rd.earlyMessages) {
          if (m.type === MessageType.Snap) continue; // streamed from an LSM snapshot between writes
          w.sentEarly.add(m);
          this.#route(w.g, m, early);
        }
      }
      this.#flush(early);
      // 1. The Raft log writes of every group (entries, hard state, snapshot completion): ONE
      //    batch, synced if any Ready needs it. Applying runs while it is in flight.
      const logOps: KvOp[] = [];
      const logged: LoggedWork[] = [];
      let sync = false;
      for (const w of work) {
        logged.push(
          w.rd.snapshot === undefined ? this.#prepareLog(w, logOps) : await this.#prepareLogWithSnapshot(w, logOps),
        );
        if (w.rd.mustSync) sync = true;
        if (this.#closed) return;
      }
      // Apply first (see below) when a leader has proposals to answer and nothing it applies is
      // only being persisted in this turn.
      const applyFirst = sync && logOps.length > 0 && work.some(answersProposals) && work.every(appliesOnlyDurable);
      // Without an fsync there is nothing to overlap: one unsynced write of both batches (below).
      const logWrite =
        logOps.length > 0 && sync && !applyFirst ? this.#engine.write(logOps, { sync }) : Promise.resolve();
      logWrite.catch(() => {}); // awaited below; do not report it as unhandled meanwhile
      // 2. Apply committed entries (the state machines read through the engine, which holds every
      //    earlier apply) into a second batch: data, apply state and truncation stay atomic.
      const applyOps: KvOp[] = [];
      const prepared: PreparedWork[] = [];
      for (const l of logged) {
        // Only a Ready with committed entries has anything to wait for (the state machine's apply).
        const committed = l.rd.committedEntries;
        const applied = committed.length > 0 ? await this.#apply(l.g, committed, l.applyState, applyOps) : undefined;
        prepared.push(this.#prepareApply(l, applyOps, applied));
        if (this.#closed) return;
      }
      if (applyFirst) {
        // The leader's answers need this turn's apply results, not its fsync of NEW entries: every
        // entry applied here was made durable by an earlier turn (appliesOnlyDurable), so answer
        // now, then write the log batch and the apply batch as ONE synced, atomic batch (one trip
        // to the thread pool instead of an unsynced apply write followed by the synced log write).
        for (const p of prepared) settleResults(p);
        await this.#engine.write([...logOps, ...applyOps], { sync });
        applyOps.length = 0;
      } else await logWrite;
      if (sync) this.stats.syncWrites++;
      if (this.#closed) return;
      if (sync) {
        // 3. The Ready contract's step 2 needs only the log durable: acks and votes leave now, not
        //    after the apply batch.
        for (const p of prepared) this.#routeMessages(p, outbox);
        this.#flush(outbox);
        outbox.clear();
      } else if (logOps.length > 0) applyOps.unshift(...logOps);
      // 4. Every entry applied in this turn is durable in the log now (unsynced turns carry no new
      //    entries): answer the proposals without waiting for the apply batch — what they wait for
      //    is commit plus the state machine's result. Reads still wait for the batch (they wait for
      //    applyState, set by #finish after it) and so does the next turn's apply (one turn at a time).
      if (!applyFirst) for (const p of prepared) settleResults(p);
      // 5. The apply batch. Unsynced: committed entries are durable in the log, so a crash that
      //    loses it only re-applies them at restart (LevelDB orders it before any later synced write).
      if (applyOps.length > 0) await this.#engine.write(applyOps, { sync: false });
      if (this.#closed) return;
      if (!sync) for (const p of prepared) this.#routeMessages(p, outbox);
      for (const p of prepared) this.#finish(p, outbox);
    }
    for (const g of drained) {
      if (g.node.commitNoticePending()) this.#holdCommitNotice(g);
      this.#maybeQuiesce(g, outbox);
    }
    this.#flush(outbox);
  }

  /**
   * Holds g's commit notice for commitNoticeDelayMs; a proposal to g meanwhile carries the commit
   * index on its append, and the timer then finds nothing to send for g. A proposal to another
   * group does not take the notice along: on the follower that would add the notice's step, Ready
   * and apply to the turn the new entry waits in (one client, 8 shards gathered on one node: put
   * p50 0.85 → 0.81 ms; docs/benchmarks.md, sixth round).
   */
  #holdCommitNotice(g: Replica): void {
    this.#commitNoticeHeld.add(g);
    this.#cancelCommitNoticeTimer ??= this.#clock.setTimeout(() => {
      this.#cancelCommitNoticeTimer = undefined;
      this.#releaseCommitNotices();
    }, this.#commitNoticeDelayMs);
  }

  #releaseCommitNotices(): void {
    this.#cancelCommitNoticeTimer?.();
    this.#cancelCommitNoticeTimer = undefined;
    for (const h of this.#commitNoticeHeld) {
      if (this.#groups.get(h.groupId) !== h || !h.node.commitNoticePending()) continue;
      h.commitNoticeDue = true;
      this.#schedule(h);
    }
    this.#commitNoticeHeld.clear();
  }

  /** drain feeds the replica's queued ticks, messages and requests into the core. Returns whether a Snap was stepped. */
  #drain(g: Replica): boolean {
    const node = g.node;
    if (g.electionHeldUntilMs > 0) {
      // Created to let another member win the first election: no ticks, so no campaign of its own,
      // until a leader is heard from or the hold runs out.
      if (g.leaderId !== 0 || this.#clock.nowMs() >= g.electionHeldUntilMs) g.electionHeldUntilMs = 0;
      else g.pendingTicks = 0;
    }
    for (; g.pendingTicks > 0; g.pendingTicks--) node.tick();
    let steppedSnapshot = false;
    if (g.inbox.length > 0) {
      this.#inboundQueued -= g.inbox.length;
      for (const m of g.inbox.splice(0)) {
        if (m.type === MessageType.Snap) steppedSnapshot = true;
        try {
          node.step(m);
        } catch (e) {
          this.#log.warn(
            { groupId: g.groupId, type: m.type, from: m.from, err: String(e) },
            'dropped message: step failed',
          );
        }
      }
    }
    // ReadIndex batching: every read queued since the last drain shares ONE core read context (the
    // first one's). Each was invoked before this call, so the read point the core records now (the
    // commit index, confirmed by one heartbeat round) is linearizable for all of them.
    let readBatch: string[] | undefined;
    // Proposal batching: consecutive proposals go into the core as ONE append, so each follower
    // gets one MsgApp (and sends one ack) per drain rather than one per proposal.
    const proposals: Extract<GroupInput, { kind: 'propose' }>[] = [];
    for (const input of g.inputs.splice(0)) {
      if (input.kind === 'propose') {
        proposals.push(input);
        continue;
      }
      if (proposals.length > 0) this.#proposeBatch(g, proposals.splice(0));
      if (input.kind === 'readIndex') {
        const key = Buffer.from(input.ctx).toString('hex');
        if (readBatch === undefined) {
          const raft = g.node.raft;
          if (raft.state !== StateRole.Leader && (raft.state !== StateRole.Follower || raft.lead === 0)) {
            // No leader to confirm the read point: the core would drop the context and its readers
            // would wait for their deadline. Answer them now, so the caller can retry elsewhere.
            this.#rejectReadWaiters(g, key);
            continue;
          }
          readBatch = [];
          g.readBatches.set(key, readBatch);
          if (this.#leaseMs > 0 && g.node.raft.state === StateRole.Leader) {
            g.leaseRounds.set(key, { startedMs: this.#clock.nowMs(), term: g.node.raft.term });
          }
          g.node.readIndex(input.ctx);
        } else readBatch.push(key);
        continue;
      }
      this.#handleInput(g, input);
    }
    if (proposals.length > 0) this.#proposeBatch(g, proposals);
    // After the proposals: their appends carry the commit index, and nothing may be left to send.
    if (g.commitNoticeDue || this.#commitNoticeDelayMs === 0) {
      g.commitNoticeDue = false;
      g.node.flushCommit();
    }
    return steppedSnapshot;
  }

  #proposeBatch(g: Replica, batch: readonly Extract<GroupInput, { kind: 'propose' }>[]): void {
    try {
      const at = g.node.proposeBatch(batch.map((p) => p.data));
      batch.forEach((p, i) => {
        g.waiters.set(at.index + i, { term: at.term, resolve: p.waiter.resolve, reject: p.waiter.reject });
      });
    } catch (e) {
      const err = toRuntimeError(e, g);
      for (const p of batch) p.waiter.reject(err);
    }
  }

  #handleInput(g: Replica, input: GroupInput): void {
    const node = g.node;
    switch (input.kind) {
      case 'propose': // batched in #drain
        this.#proposeBatch(g, [input]);
        return;
      case 'confChange': {
        try {
          const at = node.proposeConfChange({
            type: input.type as ConfChangeType,
            replicaId: input.replicaId,
            context: input.context,
          });
          g.waiters.set(at.index, { term: at.term, resolve: input.waiter.resolve, reject: input.waiter.reject });
        } catch (e) {
          input.waiter.reject(toRuntimeError(e, g));
        }
        return;
      }
      case 'transferLeader':
        node.transferLeader(input.to);
        return;
      case 'campaign':
        node.campaign();
        return;
      case 'readIndex': // batched in #drain
        node.readIndex(input.ctx);
        return;
      case 'reportSnapshot':
        node.reportSnapshot(input.to, input.ok);
        return;
      case 'reportUnreachable':
        node.reportUnreachable(input.to);
        return;
    }
  }

  /**
   * prepareLog adds one Ready's Raft log effects to the turn's log batch: entries (and deletes of a
   * replaced suffix), hard state. Synchronous — one call per group per turn, with nothing to wait
   * for; a Ready carrying a snapshot goes through `#prepareLogWithSnapshot` instead.
   */
  #prepareLog(w: TurnWork, ops: KvOp[]): LoggedWork {
    this.#saveInitialApplyState(w.g, ops);
    return this.#addLogOps(w, ops, w.g.applyState, w.g.descriptor, w.g.mirror.lastIndex());
  }

  /**
   * prepareLogWithSnapshot: as `#prepareLog`, after installing the Ready's snapshot (its non-atomic
   * part runs now, behind a durable intent; the completing ops go in the batch).
   */
  async #prepareLogWithSnapshot(w: TurnWork, ops: KvOp[]): Promise<LoggedWork> {
    const { g, rd } = w;
    const gid = g.groupId;
    const snapshot = rd.snapshot as Snapshot;
    this.#saveInitialApplyState(g, ops);
    // Index of the last entry currently on disk, to delete entries the snapshot replaces.
    const diskLast = g.mirror.lastIndex();
    const md = snapshot.metadata;
    const staged = g.staged;
    if (staged === undefined || staged.index !== md.index || staged.term !== md.term) {
      throw new Error(
        `group ${gid}: Ready has snapshot ${md.index}/${md.term} but staged is ${JSON.stringify(staged)}`,
      );
    }
    const intent: Intent = { kind: 'install', index: md.index, term: md.term, chunkCount: staged.chunkCount };
    await this.#engine.write([{ type: 'put', key: intentKey(gid), value: encodeIntent(intent) }], { sync: true });
    const entryIndexes: number[] = [];
    for (let i = g.applyState.truncatedIndex + 1; i <= diskLast; i++) entryIndexes.push(i);
    const done = await this.#installStaged(gid, g.sm, intent, g.applyState, entryIndexes);
    ops.push(...done.ops);
    this.stats.snapshotsInstalled++;
    return this.#addLogOps(w, ops, done.applyState, done.descriptor ?? g.descriptor, md.index);
  }

  /** An uninitialized replica: its apply state (which names it) must be as durable as its vote. */
  #saveInitialApplyState(g: Replica, ops: KvOp[]): void {
    if (!g.applyStateUnsaved) return;
    ops.push({ type: 'put', key: applyStateKey(g.groupId), value: encodeApplyState(g.applyState) });
    g.applyStateUnsaved = false;
  }

  /** Entries (deleting a replaced suffix up to `diskLast`, the last index on disk) and hard state. */
  #addLogOps(
    w: TurnWork,
    ops: KvOp[],
    applyState: ApplyState,
    descriptor: Uint8Array | undefined,
    diskLast: number,
  ): LoggedWork {
    const { g, rd } = w;
    const gid = g.groupId;
    if (rd.entries.length > 0) {
      for (const e of rd.entries) ops.push({ type: 'put', key: entryKey(gid, e.index), value: encodeEntry(e) });
      const newLast = (rd.entries[rd.entries.length - 1] as Entry).index;
      for (let i = newLast + 1; i <= diskLast; i++) ops.push({ type: 'del', key: entryKey(gid, i) });
    }
    if (rd.hardState !== undefined) {
      ops.push({ type: 'put', key: hardStateKey(gid), value: encodeHardState(rd.hardState) });
    }
    return { ...w, applyState, descriptor };
  }

  /**
   * prepareApply completes one Ready's part of the apply batch: after `#apply` (which added the state
   * machine's writes for its committed entries, when it had any), the new apply state and log
   * truncation. Synchronous: a turn awaits only the state machines.
   */
  #prepareApply(l: LoggedWork, ops: KvOp[], applied: Applied | undefined): PreparedWork {
    const { g, rd } = l;
    const gid = g.groupId;
    let { applyState, descriptor } = l;
    let applyStateDirty = false;
    const results: PreparedWork['results'] = [];
    let removedSelfAt = 0;
    let farewells: readonly Farewell[] = [];
    if (applied !== undefined) {
      applyState = applied.applyState;
      descriptor = applied.descriptor ?? descriptor;
      results.push(...applied.results);
      removedSelfAt = applied.removedSelfAt;
      farewells = applied.farewells;
      applyStateDirty = true;
    }
    // Truncate the log behind the applied index, keeping `lag` entries for followers slightly behind.
    let truncateTo = 0;
    const target = applyState.appliedIndex - this.#lag;
    // (Not in a Ready that installs a snapshot: the mirror still holds the replaced log until #finish.)
    if (
      rd.snapshot === undefined &&
      target - applyState.truncatedIndex >= Math.max(1, this.#lag) &&
      target <= g.mirror.lastIndex()
    ) {
      truncateTo = target;
      for (let i = applyState.truncatedIndex + 1; i <= target; i++) ops.push({ type: 'del', key: entryKey(gid, i) });
      applyState = { ...applyState, truncatedIndex: target, truncatedTerm: g.mirror.term(target) };
      applyStateDirty = true;
    }
    if (applyStateDirty) ops.push({ type: 'put', key: applyStateKey(gid), value: encodeApplyState(applyState) });
    return { ...l, applyState, results, truncateTo, descriptor, removedSelfAt, farewells };
  }

  async #apply(g: Replica, committed: readonly Entry[], base: ApplyState, ops: KvOp[]): Promise<Applied> {
    let confState = base.confState;
    let removedSelfAt = 0;
    const farewells: Farewell[] = [];
    let peers: Map<ReplicaId, NodeId> | undefined;
    const smEntries: CommittedEntry[] = [];
    for (const e of committed) {
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        const ctx = decodeConfChangeContext(cc.context);
        if (cc.type === CCT.RemoveNode && cc.replicaId !== g.replicaId && g.isLeader) {
          const match = g.node.raft.progress.get(cc.replicaId)?.match ?? 0;
          const commit = Math.min(match, g.node.status().hardState.commit);
          const toNode = (peers ?? base.peers).get(cc.replicaId);
          if (toNode !== undefined && commit >= e.index) farewells.push({ to: cc.replicaId, toNode, commit });
        }
        confState = g.node.applyConfChange(cc);
        peers ??= new Map(base.peers);
        if (cc.type === CCT.RemoveNode) {
          peers.delete(cc.replicaId);
          if (cc.replicaId === g.replicaId) removedSelfAt = e.index;
        } else if (ctx.nodeId !== 0) peers.set(cc.replicaId, ctx.nodeId);
        smEntries.push({
          kind: 'confChange',
          index: e.index,
          term: e.term,
          change: {
            type: cc.type,
            replicaId: cc.replicaId,
            nodeId: ctx.nodeId || (base.peers.get(cc.replicaId) ?? 0),
            context: ctx.appContext,
          },
          confState,
        });
      } else if (e.data.length > 0) {
        smEntries.push({ kind: 'normal', index: e.index, term: e.term, data: e.data });
      }
    }
    let descriptor: Uint8Array | undefined;
    const batch: WriteBatch = {
      put: (key, value) => ops.push({ type: 'put', key, value }),
      del: (key) => ops.push({ type: 'del', key }),
    };
    const smResults =
      smEntries.length === 0
        ? []
        : await g.sm.applyEntries(smEntries, {
            groupId: g.groupId,
            batch,
            reader: this.#engine,
            setDescriptor: (d) => {
              descriptor = d;
              ops.push({ type: 'put', key: descriptorKey(g.groupId), value: d });
            },
          });
    const results: PreparedWork['results'] = smEntries.map((e, i) => ({
      index: e.index,
      term: e.term,
      result: e.kind === 'confChange' ? e.confState : smResults[i],
    }));
    const last = committed[committed.length - 1] as Entry;
    this.stats.appliedEntries += committed.length;
    if (peers !== undefined) this.#peersDirty = true;
    return {
      applyState: { ...base, appliedIndex: last.index, appliedTerm: last.term, confState, peers: peers ?? base.peers },
      results,
      descriptor,
      removedSelfAt,
      farewells,
    };
  }

  /** routeMessages queues the Ready's messages not already sent early (once its log writes are durable). */
  #routeMessages(p: PreparedWork, outbox: Map<NodeId, raftpb.MessageBatch>): void {
    const { g, rd } = p;
    if (rd.softState !== undefined) {
      if (rd.softState.role !== StateRole.Leader) this.#endLease(g);
      g.leaderId = rd.softState.leaderId;
      g.isLeader = rd.softState.role === StateRole.Leader;
      if (g.isLeader || rd.softState.leaderId === 0) this.#wake(g);
    }
    for (const m of rd.messages) if (!p.sentEarly.has(m)) this.#route(g, m, outbox);
  }

  /** finish runs after the turn's batches are written: update mirrors, resolve proposals and reads, advance. */
  #finish(p: PreparedWork, outbox: Map<NodeId, raftpb.MessageBatch>): void {
    const { g, rd } = p;
    if (rd.snapshot !== undefined) {
      g.mirror.applySnapshot({ metadata: rd.snapshot.metadata, data: EMPTY });
      void Promise.resolve(g.sm.onSnapshotInstalled?.(this.#engine)).catch((e: unknown) =>
        this.#log.error({ groupId: g.groupId, err: String(e) }, 'onSnapshotInstalled failed'),
      );
    }
    if (p.steppedSnapshot) g.staged = undefined;
    if (rd.entries.length > 0) g.mirror.append(rd.entries);
    if (rd.hardState !== undefined) {
      g.mirror.setHardState(rd.hardState);
      g.hardState = rd.hardState;
    }
    g.applyState = p.applyState;
    g.descriptor = p.descriptor;
    if (p.truncateTo > 0) g.mirror.compact(p.truncateTo);
    for (const f of p.farewells) {
      this.#batchFor(outbox, f.toNode).heartbeats.push({
        groupId: g.groupId,
        from: g.replicaId,
        to: f.to,
        term: g.node.status().hardState.term,
        commit: f.commit,
        context: EMPTY as Buffer,
      });
    }
    const applied = g.applyState.appliedIndex;
    if (g.waiters.size > 0 && (rd.snapshot !== undefined || rd.committedEntries.length > 0)) {
      // Log matching: once an entry of term T is committed, no entry of a lower term at a higher
      // index can ever commit (terms never decrease along a log). So a waiter of an older term is
      // dropped for sure, whatever its index: without this, a proposal beyond the new leader's log
      // would wait for its deadline when no later write reaches its index.
      const appliedTerm = g.applyState.appliedTerm;
      const committed = rd.committedEntries;
      const firstCommitted = committed[0]?.index ?? applied + 1;
      for (const [index, w] of g.waiters) {
        if (index <= applied) {
          g.waiters.delete(index);
          const entry = index >= firstCommitted ? committed[index - firstCommitted] : undefined;
          if (entry === undefined) {
            // Covered by a snapshot: this replica never saw the entry applied; it may have been.
            w.reject(
              new RuntimeError('OUTCOME_UNKNOWN', `entry ${index} was applied from a snapshot; outcome unknown here`, {
                groupId: g.groupId,
              }),
            );
          } else if (entry.term === w.term) {
            w.resolve({ index, result: undefined }); // an empty proposal: committed, nothing applied
          } else {
            // Another leader's entry (an empty one: entries with data answered above) took the index.
            w.reject(
              new RuntimeError('PROPOSAL_DROPPED', `entry ${index} was overwritten by term ${entry.term}`, {
                groupId: g.groupId,
              }),
            );
          }
        } else if (w.term < appliedTerm) {
          g.waiters.delete(index);
          w.reject(
            new RuntimeError(
              'PROPOSAL_DROPPED',
              `entry ${index} of term ${w.term} can no longer commit: term ${appliedTerm} has committed`,
              { groupId: g.groupId },
            ),
          );
        }
      }
    }
    // A transfer may also begin from a forwarded request (a follower's TransferLeader): every Ready
    // of a leader in the middle of one ends the lease.
    if (this.#leaseMs > 0 && g.node.raft.leadTransferee !== 0) this.#endLease(g);
    for (const rs of rd.readStates) {
      const key = Buffer.from(rs.requestCtx).toString('hex');
      const round = g.leaseRounds.get(key);
      if (round !== undefined) {
        g.leaseRounds.delete(key);
        g.leaseRenewing = false;
        const raft = g.node.raft;
        // A quorum answered a round begun at startedMs, in this same term, after any transfer seen.
        if (
          raft.state === StateRole.Leader &&
          raft.term === round.term &&
          raft.leadTransferee === 0 &&
          round.startedMs > g.leaseNotBeforeMs
        ) {
          if (g.leaseTerm !== round.term) g.leaseUntilMs = 0;
          g.leaseTerm = round.term;
          g.leaseUntilMs = Math.max(g.leaseUntilMs, round.startedMs + this.#leaseMs);
        }
      }
      const batched = g.readBatches.get(key);
      g.readBatches.delete(key);
      const w = g.readWaiters.get(key);
      if (w !== undefined) {
        g.readWaiters.delete(key);
        g.pendingReads.push({ index: rs.index, resolve: w.resolve, reject: w.reject });
      }
      if (batched === undefined) continue;
      for (const k of batched) {
        const bw = g.readWaiters.get(k);
        if (bw === undefined) continue; // timed out
        g.readWaiters.delete(k);
        g.pendingReads.push({ index: rs.index, resolve: bw.resolve, reject: bw.reject });
      }
    }
    // A replica that stops leading (or a follower whose leader changes) loses every read context it
    // held — the core resets them and they never come back. Their readers are told now, not at their
    // deadline, so they retry at the new leader.
    if (rd.softState !== undefined && rd.softState.role !== StateRole.Leader && g.readWaiters.size > 0) {
      for (const key of [...g.readWaiters.keys()]) this.#rejectReadWaiters(g, key);
    }
    if (g.readWaiters.size === 0 && g.readBatches.size > 0) g.readBatches.clear();
    if (g.leaseRounds.size > 0 && g.node.raft.state !== StateRole.Leader) {
      g.leaseRounds.clear();
      g.leaseRenewing = false;
    }
    if (g.pendingReads.length > 0) {
      const still: typeof g.pendingReads = [];
      for (const r of g.pendingReads) {
        if (r.index <= applied) r.resolve(r.index);
        else still.push(r);
      }
      g.pendingReads.splice(0, g.pendingReads.length, ...still);
    }
    g.node.advance(rd);
    // advance may reveal more work (e.g. entries committed by this Ready's acks): run again.
    if (g.node.hasReady()) this.#schedule(g);
    if (p.removedSelfAt > 0) {
      this.#log.info(
        { groupId: g.groupId, replicaId: g.replicaId, index: p.removedSelfAt },
        'replica removed from group',
      );
      this.#callApp('onReplicaRemoved', () =>
        this.#onReplicaRemoved?.({ groupId: g.groupId, replicaId: g.replicaId, index: p.removedSelfAt }),
      );
    }
  }

  // ------------------------------------------------------------------ messages out

  #batchFor(outbox: Map<NodeId, raftpb.MessageBatch>, node: NodeId): raftpb.MessageBatch {
    let b = outbox.get(node);
    if (b === undefined) {
      b = { fromNode: this.nodeId, messages: [], heartbeats: [], heartbeatResponses: [], quiescedGroups: [] };
      outbox.set(node, b);
    }
    return b;
  }

  #route(g: Replica, m: Message, outbox: Map<NodeId, raftpb.MessageBatch>): void {
    const toNode = g.peerNode(m.to);
    if (toNode === undefined) {
      this.#log.debug({ groupId: g.groupId, to: m.to, type: m.type }, 'no address for replica; message dropped');
      g.inputs.push({ kind: 'reportUnreachable', to: m.to });
      return;
    }
    if (m.type === MessageType.Snap) {
      void this.#sendSnapshot(g, m, toNode);
      return;
    }
    const b = this.#batchFor(outbox, toNode);
    if (m.type === MessageType.Heartbeat || m.type === MessageType.HeartbeatResp) {
      // Coalesced: one compact entry per group in the per-peer batch.
      const hb: raftpb.CoalescedHeartbeat = {
        groupId: g.groupId,
        from: m.from,
        to: m.to,
        term: m.term,
        commit: m.commit,
        context: (m.context ?? EMPTY) as Buffer,
      };
      if (m.type === MessageType.Heartbeat) b.heartbeats.push(hb);
      else b.heartbeatResponses.push(hb);
      return;
    }
    // Attach the descriptor while the target is not replicating normally: it may not have the group yet.
    const pr = g.isLeader ? g.node.raft.progress.get(m.to) : undefined;
    const attach = pr !== undefined && pr.state !== 'replicate' && g.descriptor !== undefined;
    b.messages.push({
      groupId: g.groupId,
      fromNode: this.nodeId,
      toNode,
      message: toPbMessage(m),
      groupContext: (attach ? (g.descriptor as Uint8Array) : EMPTY) as Buffer,
    });
  }

  #flush(outbox: Map<NodeId, raftpb.MessageBatch>): void {
    for (const [node, b] of outbox) {
      this.stats.batchesSent++;
      this.stats.messagesSent += b.messages.length + b.heartbeats.length + b.heartbeatResponses.length;
      this.#transport.send(node, b);
    }
  }

  // ------------------------------------------------------------------ messages in

  #onBatch(b: raftpb.MessageBatch): void {
    if (this.#closed) return;
    this.#lastHeardMs.set(b.fromNode, this.#clock.nowMs());
    this.#peerDown.delete(b.fromNode);
    const n = b.messages.length + b.heartbeats.length + b.heartbeatResponses.length;
    if (n === 0 && b.quiescedGroups.length === 0) return;
    if (this.#inboundQueued + n > this.#maxInbound) {
      // Bounded receive queue: dropping is safe, Raft retransmits.
      this.stats.inboundDropped += n;
      this.#log.debug({ fromNode: b.fromNode, messages: n }, 'inbound queue full; batch dropped');
      return;
    }
    for (const gm of b.messages) {
      if (gm.message === undefined) continue;
      const g =
        this.#groups.get(gm.groupId) ?? this.#maybeCreate(gm.groupId, gm.message.to, b.fromNode, gm.groupContext);
      if (g === undefined) continue;
      this.#deliver(g, fromPbMessage(gm.message), b.fromNode);
    }
    for (const hb of b.heartbeats) {
      const g = this.#groups.get(hb.groupId) ?? this.#maybeCreate(hb.groupId, hb.to, b.fromNode, EMPTY);
      if (g !== undefined) this.#deliver(g, heartbeatMessage(MessageType.Heartbeat, hb), b.fromNode);
    }
    for (const hb of b.heartbeatResponses) {
      const g = this.#groups.get(hb.groupId);
      if (g !== undefined) this.#deliver(g, heartbeatMessage(MessageType.HeartbeatResp, hb), b.fromNode);
    }
    for (const groupId of b.quiescedGroups) {
      const g = this.#groups.get(groupId);
      if (g === undefined || g.quiesced) continue;
      // Followers quiesce on their leader's word, once caught up; anything else keeps them ticking.
      const st = g.node.status();
      if (
        st.softState.role === StateRole.Follower &&
        st.softState.leaderId !== 0 &&
        g.peerNode(st.softState.leaderId) === b.fromNode &&
        g.inbox.length === 0 &&
        g.inputs.length === 0 &&
        st.hardState.commit === st.lastIndex &&
        !g.node.hasReady()
      ) {
        this.#quiesce(g);
      }
    }
  }

  #deliver(g: Replica, m: Message, fromNode: NodeId): void {
    if (!g.applyState.peers.has(m.from)) g.learnedPeers.set(m.from, fromNode);
    // Only requests: a response answers something this replica sent (e.g. the farewell heartbeat).
    if (this.#onStalePeer !== undefined && !isResponse(m.type)) this.#maybeReportStalePeer(g, m.from, fromNode);
    g.inbox.push(m);
    this.#inboundQueued++;
    this.#wake(g);
    this.#schedule(g);
  }

  #maybeCreate(
    groupId: GroupId,
    replicaId: ReplicaId,
    fromNode: NodeId,
    groupContext: Uint8Array,
  ): Replica | undefined {
    if (this.#onUnknownGroup === undefined || replicaId === 0) return undefined;
    if (this.#destroying.has(groupId) || this.#isTombstoned(groupId, replicaId)) {
      // A stale heartbeat or append for a replica destroyed here: never recreate it.
      this.#log.debug({ groupId, replicaId, fromNode }, 'message for a destroyed replica dropped');
      return undefined;
    }
    if (!this.#onUnknownGroup({ groupId, replicaId, fromNode, groupContext })) return undefined;
    this.#log.info({ groupId, replicaId, fromNode }, 'creating uninitialized replica for unknown group');
    // Record itself in peers so a restart finds the replica (and the vote it may have cast) again.
    const applyState = { ...emptyApplyState(), peers: new Map([[replicaId, this.nodeId]]) };
    const g = this.#addReplica(groupId, replicaId, applyState, { term: 0, vote: 0, commit: 0 }, [], undefined);
    g.applyStateUnsaved = true;
    return g;
  }

  // ------------------------------------------------------------------ quiescence and liveness

  #quiesce(g: Replica): void {
    if (g.quiesced) return;
    g.quiesced = true;
    this.#active.delete(g);
    g.pendingTicks = 0;
  }

  #wake(g: Replica): void {
    if (!g.quiesced) return;
    g.quiesced = false;
    this.#active.add(g);
  }

  /** A leader with nothing in flight quiesces and tells every follower's process. */
  #maybeQuiesce(g: Replica, outbox: Map<NodeId, raftpb.MessageBatch>): void {
    if (!this.#quiesceEnabled || g.quiesced || !g.isLeader || g.scheduled) return;
    if (g.hasPendingWork() || g.node.hasReady() || !g.node.isQuiescable()) return;
    this.#quiesce(g);
    const notified = new Set<NodeId>();
    for (const [replicaId, node] of g.applyState.peers) {
      if (replicaId === g.replicaId || notified.has(node)) continue;
      notified.add(node);
      this.#batchFor(outbox, node).quiescedGroups.push(g.groupId);
    }
  }

  /**
   * Per-tick: send a keepalive to every peer process each heartbeat interval, and wake quiesced
   * followers whose leader's process has been silent for an election timeout so they campaign.
   */
  #checkPeers(): void {
    if (this.#peersDirty) {
      const nodes = new Set<NodeId>();
      for (const g of this.#groups.values()) for (const n of g.applyState.peers.values()) nodes.add(n);
      nodes.delete(this.nodeId);
      this.#peerNodes = [...nodes];
      this.#peersDirty = false;
    }
    const now = this.#clock.nowMs();
    const sendKeepalive = this.#tickCount % this.#heartbeatTicks === 0;
    const deadAfterMs = this.#electionTicks * this.#tickMs;
    for (const node of this.#peerNodes) {
      if (sendKeepalive) {
        this.#transport.send(node, {
          fromNode: this.nodeId,
          messages: [],
          heartbeats: [],
          heartbeatResponses: [],
          quiescedGroups: [],
        });
      }
      const last = this.#lastHeardMs.get(node);
      if (last === undefined) {
        this.#lastHeardMs.set(node, now);
        continue;
      }
      if (now - last >= deadAfterMs && !this.#peerDown.has(node)) {
        this.#peerDown.add(node);
        let woken = 0;
        for (const g of this.#groups.values()) {
          if (g.quiesced && g.peerNode(g.leaderId) === node) {
            this.#wake(g);
            woken++;
          }
        }
        this.#log.warn({ peerNode: node, woken }, 'peer process silent for an election timeout');
      }
    }
  }

  // ------------------------------------------------------------------ snapshots

  /**
   * sendSnapshot streams the group's state to a follower: data and apply state are read through ONE
   * LSM snapshot taken now (between scheduler writes), so they agree; the Raft metadata sent is the
   * apply state's, which is at least as new as what the core asked for.
   */
  async #sendSnapshot(g: Replica, m: Message, toNode: NodeId): Promise<void> {
    if (g.sendingSnapshots.has(m.to)) return;
    g.sendingSnapshots.add(m.to);
    const view = this.#engine.snapshot();
    let ok = false;
    try {
      const raw = await view.get(applyStateKey(g.groupId));
      if (raw === undefined) throw new Error('no apply state');
      const applyState = decodeApplyState(raw);
      const descriptor = await view.get(descriptorKey(g.groupId));
      const snapshot: Snapshot = {
        metadata: { index: applyState.appliedIndex, term: applyState.appliedTerm, confState: applyState.confState },
        data: EMPTY,
      };
      const header: raftpb.GroupMessage = {
        groupId: g.groupId,
        fromNode: this.nodeId,
        toNode,
        message: toPbMessage({ ...m, snapshot }),
        groupContext: (descriptor ?? EMPTY) as Buffer,
      };
      const limit = this.#chunkBytes;
      const sm = g.sm;
      async function* chunks(): AsyncIterable<Uint8Array> {
        yield encodeSnapshotMeta(applyState, descriptor);
        for await (const c of sm.snapshotChunks(view, limit)) {
          if (c.length > limit)
            throw new RuntimeError('TOO_LARGE', `snapshot chunk of ${c.length} bytes over ${limit}`);
          yield c;
        }
      }
      this.#log.info({ groupId: g.groupId, to: m.to, toNode, index: applyState.appliedIndex }, 'sending snapshot');
      await this.#transport.sendSnapshot(toNode, header, chunks());
      ok = true;
      this.stats.snapshotsSent++;
    } catch (e) {
      this.#log.warn({ groupId: g.groupId, to: m.to, err: String(e) }, 'snapshot send failed; Raft will retry');
    } finally {
      await view.close().catch(() => {});
      g.sendingSnapshots.delete(m.to);
      if (!this.#closed && this.#groups.get(g.groupId) === g) {
        g.inputs.push({ kind: 'reportSnapshot', to: m.to, ok });
        this.#wake(g);
        this.#schedule(g);
      }
    }
  }

  /**
   * onSnapshot stages an inbound snapshot's chunks durably under the group's staging keys, then
   * hands the Snap message to Raft. The install happens when Raft's Ready carries the snapshot.
   */
  async #onSnapshot(header: raftpb.GroupMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.#closed) throw this.#closedError();
    const pm = header.message;
    if (pm === undefined || pm.type !== MessageType.Snap || pm.snapshot === undefined) {
      throw new RuntimeError('INVALID_ARGUMENT', 'snapshot header without a Snap message');
    }
    const gid = header.groupId;
    const g = this.#groups.get(gid) ?? this.#maybeCreate(gid, pm.to, header.fromNode, header.groupContext);
    if (g === undefined) throw new RuntimeError('GROUP_NOT_FOUND', `no replica of group ${gid}`, { groupId: gid });
    if (g.receivingSnapshot || g.staged !== undefined) {
      throw new RuntimeError('SNAPSHOT_FAILED', `group ${gid} is already receiving or installing a snapshot`);
    }
    g.receivingSnapshot = true;
    try {
      // Leftovers of an abandoned receive are garbage: no intent refers to them.
      await this.#engine.clearRange(stagedChunkRange(gid));
      let seq = 0;
      let ops: KvOp[] = [];
      let bytes = 0;
      for await (const c of chunks) {
        ops.push({ type: 'put', key: stagedChunkKey(gid, seq++), value: c });
        bytes += c.length;
        if (bytes >= 4 << 20) {
          await this.#engine.write(ops, { sync: false });
          ops = [];
          bytes = 0;
        }
        if (this.#closed) throw this.#closedError();
      }
      await this.#engine.write(ops, { sync: true });
      if (!this.#closed && !this.#groups.has(gid)) {
        // Destroyed while receiving: its staging keys were cleared before these landed.
        await this.#engine.clearRange(stagedChunkRange(gid));
        throw new RuntimeError('GROUP_NOT_FOUND', `group ${gid} was destroyed`, { groupId: gid });
      }
      if (this.#closed || this.#groups.get(gid) !== g) throw this.#closedError();
      const msg = fromPbMessage(pm);
      const md = (msg.snapshot as Snapshot).metadata;
      g.staged = { index: md.index, term: md.term, chunkCount: seq };
      this.#deliver(g, msg, header.fromNode);
      this.#log.info({ groupId: gid, index: md.index, chunks: seq }, 'snapshot received and staged');
    } finally {
      g.receivingSnapshot = false;
    }
  }

  /**
   * installStaged replays staged chunks into the state machine (idempotent; used by a live install
   * and by a restart that finds an install intent) and returns the ops that complete it atomically:
   * new apply state and descriptor, deletion of the replaced log, staged chunks and the intent.
   */
  async #installStaged(
    gid: GroupId,
    sm: StateMachine,
    intent: Extract<Intent, { kind: 'install' }>,
    before: ApplyState,
    entryIndexesOnDisk: readonly number[],
  ): Promise<{ ops: KvOp[]; applyState: ApplyState; descriptor: Uint8Array | undefined }> {
    const it = this.#engine.iterate(stagedChunkRange(gid))[Symbol.asyncIterator]();
    let count = 0;
    let meta: ReturnType<typeof decodeSnapshotMeta>;
    try {
      const first = await it.next();
      if (first.done === true) throw new Error(`group ${gid}: staged snapshot is empty`);
      count++;
      meta = decodeSnapshotMeta(first.value[1]);
      const rest: AsyncIterable<Uint8Array> = {
        [Symbol.asyncIterator]: () => ({
          next: async (): Promise<IteratorResult<Uint8Array>> => {
            const r = await it.next();
            if (r.done === true) return { done: true, value: undefined };
            count++;
            return { done: false, value: r.value[1] };
          },
        }),
      };
      await sm.installSnapshot(rest, {
        clearRange: (range) => this.#engine.clearRange(range),
        write: (ops) => this.#engine.write(ops, { sync: false }),
      });
    } finally {
      await it.return?.();
    }
    if (count !== intent.chunkCount) {
      throw new Error(`group ${gid}: staged snapshot has ${count} chunks, intent says ${intent.chunkCount}`);
    }
    const applyState: ApplyState = {
      appliedIndex: intent.index,
      appliedTerm: intent.term,
      truncatedIndex: intent.index,
      truncatedTerm: intent.term,
      confState: meta.applyState.confState,
      peers: meta.applyState.peers,
    };
    const ops: KvOp[] = [{ type: 'put', key: applyStateKey(gid), value: encodeApplyState(applyState) }];
    if (meta.descriptor !== undefined) ops.push({ type: 'put', key: descriptorKey(gid), value: meta.descriptor });
    for (const i of entryIndexesOnDisk) ops.push({ type: 'del', key: entryKey(gid, i) });
    for (let s = 0; s < intent.chunkCount; s++) ops.push({ type: 'del', key: stagedChunkKey(gid, s) });
    ops.push({ type: 'del', key: intentKey(gid) });
    void before;
    this.#peersDirty = true;
    return { ops, applyState, descriptor: meta.descriptor };
  }

  // ------------------------------------------------------------------ destroy

  async #destroy(g: Replica, reason: string): Promise<void> {
    const gid = g.groupId;
    // 1. Leave the host now; the in-memory tombstone refuses messages until the durable one exists.
    this.#groups.delete(gid);
    this.#active.delete(g);
    this.#peersDirty = true;
    this.#addTombstone(gid, g.replicaId);
    for (const key of [...this.#staleReportedMs.keys()])
      if (key.startsWith(`${gid}/`)) this.#staleReportedMs.delete(key);
    this.#inboundQueued -= g.inbox.length;
    g.inbox.length = 0;
    this.#failReplica(
      g,
      new RuntimeError('GROUP_NOT_FOUND', `replica ${g.replicaId} of group ${gid} was destroyed (${reason})`, {
        groupId: gid,
      }),
    );
    this.#log.info({ groupId: gid, replicaId: g.replicaId, reason }, 'destroying replica');
    // 2. The scheduler's in-flight write may carry this replica's last Ready; later turns skip it.
    await this.#turnRunning?.catch(() => {});
    this.#checkOpen();
    const intent: Extract<Intent, { kind: 'destroy' }> = {
      kind: 'destroy',
      replicaId: g.replicaId,
      descriptor: g.descriptor,
    };
    try {
      await this.#engine.write([{ type: 'put', key: intentKey(gid), value: encodeIntent(intent) }], { sync: true });
    } catch (e) {
      // Nothing was deleted: the replica is gone from memory only and comes back at restart.
      this.#log.error({ groupId: gid, err: String(e) }, 'destroy intent not written; replica reloads at restart');
      throw new RuntimeError('STORAGE', `group ${gid}: destroy intent not written`, { groupId: gid, cause: e });
    }
    // 3–4.
    try {
      await this.#finishDestroy(gid, intent, g.sm);
    } catch (e) {
      this.#log.error({ groupId: gid, err: String(e) }, 'replica destroy interrupted; a restart finishes it');
      throw new RuntimeError('STORAGE', `group ${gid}: destroy interrupted (a restart finishes it)`, {
        groupId: gid,
        cause: e,
      });
    }
    this.#log.info({ groupId: gid, replicaId: g.replicaId, reason }, 'replica destroyed');
  }

  /**
   * finishDestroy runs the non-atomic part of a destroy behind its durable intent (live, or at
   * restart): the state machine's data, then the replica's runtime keys, then — in one synced
   * write — the tombstone and the removal of the intent. Idempotent.
   */
  async #finishDestroy(gid: GroupId, intent: Extract<Intent, { kind: 'destroy' }>, sm: StateMachine): Promise<void> {
    const writer: SnapshotWriter = {
      clearRange: (range) => this.#engine.clearRange(range),
      write: (ops) => this.#engine.write(ops, { sync: false }),
    };
    if (sm.destroy !== undefined) await sm.destroy(writer);
    else this.#log.warn({ groupId: gid }, 'state machine has no destroy hook: its data is left in the database');
    await this.#engine.clearRange(replicaStateRange(gid));
    const raw = await this.#engine.get(tombstoneKey(gid));
    const ids = raw === undefined ? new Set<ReplicaId>() : decodeTombstone(raw);
    ids.add(intent.replicaId);
    await this.#engine.write(
      [
        { type: 'put', key: tombstoneKey(gid), value: encodeTombstone(ids) },
        { type: 'del', key: intentKey(gid) },
      ],
      { sync: true },
    );
    for (const id of ids) this.#addTombstone(gid, id);
  }

  #addTombstone(gid: GroupId, replicaId: ReplicaId): void {
    let ids = this.#tombstones.get(gid);
    if (ids === undefined) {
      ids = new Set();
      this.#tombstones.set(gid, ids);
    }
    ids.add(replicaId);
  }

  #isTombstoned(gid: GroupId, replicaId: ReplicaId): boolean {
    return this.#tombstones.get(gid)?.has(replicaId) === true;
  }

  /** onStalePeer: the sender is not in this replica's applied membership (rate-limited per sender). */
  #maybeReportStalePeer(g: Replica, from: ReplicaId, fromNode: NodeId): void {
    const cs = g.applyState.confState;
    if (cs.voters.length === 0 && cs.learners.length === 0) return; // uninitialized: knows no membership yet
    if (cs.voters.includes(from) || cs.learners.includes(from)) return;
    const key = `${g.groupId}/${from}`;
    const now = this.#clock.nowMs();
    const last = this.#staleReportedMs.get(key);
    if (last !== undefined && now - last < this.#electionTicks * this.#tickMs) return;
    this.#staleReportedMs.set(key, now);
    this.#log.info({ groupId: g.groupId, fromReplicaId: from, fromNode }, 'message from a replica not in the group');
    this.#callApp('onStalePeer', () =>
      this.#onStalePeer?.({
        groupId: g.groupId,
        replicaId: g.replicaId,
        fromReplicaId: from,
        fromNodeId: fromNode,
        localIsLeader: g.isLeader,
      }),
    );
  }

  /** Runs an application callback; its exceptions are logged, never thrown into the scheduler. */
  #callApp(name: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#log.error({ err: String(e), callback: name }, 'application callback threw; ignored');
    }
  }

  // ------------------------------------------------------------------ helpers

  #submit(
    groupId: GroupId,
    opts: ProposeOptions,
    make: (g: Replica, waiter: Omit<Waiter, 'term'>) => GroupInput,
  ): Promise<ProposalResult> {
    return new Promise<ProposalResult>((resolve, reject) => {
      try {
        this.#checkOpen();
        const g = this.#group(groupId);
        let cancel: (() => void) | undefined;
        let settled = false;
        const waiter: Omit<Waiter, 'term'> = {
          resolve: (r) => {
            if (settled) return;
            settled = true;
            cancel?.();
            resolve(r);
          },
          reject: (e) => {
            if (settled) return;
            settled = true;
            cancel?.();
            reject(e);
          },
        };
        const input = make(g, waiter);
        if (opts.timeoutMs !== undefined) {
          cancel = this.#clock.setTimeout(
            () => waiter.reject(new RuntimeError('TIMEOUT', 'proposal timed out; outcome unknown', { groupId })),
            opts.timeoutMs,
          );
        }
        g.inputs.push(input);
        this.#wake(g);
        this.#schedule(g);
      } catch (e) {
        reject(e);
      }
    });
  }

  /** Fails the reader waiting on read context `key` with NOT_LEADER (its context is gone). */
  #rejectReadWaiters(g: Replica, key: string): void {
    const w = g.readWaiters.get(key);
    if (w === undefined) return;
    g.readWaiters.delete(key);
    const leaderReplicaId = g.isLeader ? 0 : g.leaderId;
    w.reject(
      new RuntimeError(
        'NOT_LEADER',
        `replica ${g.replicaId} of group ${g.groupId} lost its read point: it is not the leader`,
        { groupId: g.groupId, leaderReplicaId, leaderNodeId: g.peerNode(leaderReplicaId) ?? 0 },
      ),
    );
  }

  /** Fast path: a follower that knows the leader rejects at once instead of queueing. */
  #rejectIfFollower(g: Replica): void {
    if (!g.isLeader && g.leaderId !== 0 && g.leaderId !== g.replicaId) {
      throw new RuntimeError('NOT_LEADER', `replica ${g.replicaId} is not the leader of group ${g.groupId}`, {
        groupId: g.groupId,
        leaderReplicaId: g.leaderId,
        leaderNodeId: g.peerNode(g.leaderId) ?? 0,
      });
    }
  }

  #group(groupId: GroupId): Replica {
    const g = this.#groups.get(groupId);
    if (g === undefined) throw new RuntimeError('GROUP_NOT_FOUND', `no replica of group ${groupId} here`, { groupId });
    return g;
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#closedError();
  }

  #closedError(): RuntimeError {
    return this.#failed !== undefined
      ? new RuntimeError('STORAGE', `host failed: ${this.#failed.message}`, { cause: this.#failed })
      : new RuntimeError('CLOSED', 'raft host closed');
  }

  #failReplica(g: Replica, err: Error): void {
    for (const w of g.waiters.values()) w.reject(err);
    g.waiters.clear();
    for (const w of g.readWaiters.values()) w.reject(err);
    g.readWaiters.clear();
    g.readBatches.clear();
    for (const r of g.pendingReads.splice(0)) r.reject(err);
    for (const input of g.inputs.splice(0)) {
      if (input.kind === 'propose' || input.kind === 'confChange') input.waiter.reject(err);
    }
  }

  /** A failed write leaves memory and disk in doubt: stop; a restart recovers from disk. */
  #fail(e: unknown): void {
    if (this.#closed) return;
    this.#failed = e instanceof Error ? e : new Error(String(e));
    this.#log.error({ err: String(e), stack: this.#failed.stack }, 'raft host failed; stopping');
    void this.close({ abrupt: true });
  }
}

function emptyApplyState(): ApplyState {
  return {
    appliedIndex: 0,
    appliedTerm: 0,
    truncatedIndex: 0,
    truncatedTerm: 0,
    confState: { voters: [], learners: [] },
    peers: new Map(),
  };
}

/** Which replica of the group lives on this node (an uninitialized replica records itself in `peers`). */
function findSelf(applyState: ApplyState, nodeId: NodeId): ReplicaId {
  for (const [replicaId, node] of applyState.peers) if (node === nodeId) return replicaId;
  return 0;
}

function isResponse(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.VoteResp ||
    t === MessageType.PreVoteResp ||
    t === MessageType.ReadIndexResp
  );
}

function heartbeatMessage(type: MessageType, hb: raftpb.CoalescedHeartbeat): Message {
  return {
    type,
    to: hb.to,
    from: hb.from,
    term: hb.term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: hb.commit,
    reject: false,
    rejectHint: 0,
    ...(hb.context.length === 0 ? {} : { context: hb.context }),
  };
}
