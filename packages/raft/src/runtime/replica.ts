import type { RawNode } from '../core/rawNode.js';
import type { ConfState, HardState, Message, ReplicaId } from '../core/types.js';
import type { ApplyState } from './codec.js';
import type { LogMirror } from './logMirror.js';
import type { StateMachine } from './stateMachine.js';
import type { GroupId, NodeId } from './types.js';

/** Outcome of an applied proposal, as the proposer sees it. */
export interface ProposalResult<R = unknown> {
  /** The Raft index the command committed at (usable as a modification index). */
  readonly index: number;
  /** The state machine's result for the entry (for a conf change: the new ConfState). */
  readonly result: R;
}

export interface Waiter {
  readonly term: number;
  resolve(r: ProposalResult): void;
  reject(e: Error): void;
}

/** A request queued for the group's next drain (the core is only touched between Readys). */
export type GroupInput =
  | { readonly kind: 'propose'; readonly data: Uint8Array; readonly waiter: Omit<Waiter, 'term'> }
  | {
      readonly kind: 'confChange';
      readonly type: number;
      readonly replicaId: ReplicaId;
      readonly context: Uint8Array;
      readonly waiter: Omit<Waiter, 'term'>;
    }
  | { readonly kind: 'transferLeader'; readonly to: ReplicaId }
  | { readonly kind: 'campaign' }
  | { readonly kind: 'readIndex'; readonly ctx: Uint8Array }
  | { readonly kind: 'reportSnapshot'; readonly to: ReplicaId; readonly ok: boolean }
  | { readonly kind: 'reportUnreachable'; readonly to: ReplicaId };

/** Snapshot data received and staged under 0x02‖groupId‖0x05, waiting for Raft to restore it. */
export interface StagedSnapshot {
  readonly index: number;
  readonly term: number;
  readonly chunkCount: number;
}

/**
 * Replica is the host's state for one group: the core, the log mirror, the state machine, queued
 * inputs and the scheduler flags. Only the host touches it.
 */
export class Replica {
  readonly groupId: GroupId;
  readonly replicaId: ReplicaId;
  readonly node: RawNode;
  readonly mirror: LogMirror;
  readonly sm: StateMachine;
  /** Durable apply state (what is on disk). */
  applyState: ApplyState;
  /** Durable hard state. */
  hardState: HardState;
  descriptor: Uint8Array | undefined;
  /** The apply state exists only in memory (uninitialized replica): write it with the next batch. */
  applyStateUnsaved = false;

  // Scheduler flags: a replica sits in the run queue at most once however many events arrive.
  scheduled = false;
  pendingTicks = 0;
  readonly inbox: Message[] = [];
  readonly inputs: GroupInput[] = [];
  /** Until this time (host clock, ms; 0 = no hold) the replica's ticks are dropped: see CreateGroupSpec.holdElectionMs. */
  electionHeldUntilMs = 0;
  /** The commit-notice delay passed: the next drain flushes the leader's pending commit notices. */
  commitNoticeDue = false;

  /** Idle: not ticked, no heartbeats. Woken by a proposal, a message, or its leader's process dying. */
  quiesced = false;
  /** Replica ids → process, learned from incoming messages (for replicas not yet in `applyState.peers`). */
  readonly learnedPeers = new Map<ReplicaId, NodeId>();

  readonly waiters = new Map<number, Waiter>();
  readonly readWaiters = new Map<string, { resolve(index: number): void; reject(e: Error): void }>();
  /** ReadIndex batching: core read context (hex) → the other readers' contexts it also answers. */
  readonly readBatches = new Map<string, string[]>();
  /** Read points waiting for applied >= index. */
  readonly pendingReads: Array<{ index: number; resolve(index: number): void; reject(e: Error): void }> = [];

  /** Clock-checked lease (leader only): reads are served locally before `leaseUntilMs` in `leaseTerm`. */
  leaseUntilMs = 0;
  leaseTerm = 0;
  /** ReadIndex rounds this leader began (core context hex → start time and term): they renew the lease. */
  readonly leaseRounds = new Map<string, { startedMs: number; term: number }>();
  /** A renewal round is in flight. */
  leaseRenewing = false;
  /**
   * Rounds begun at or before this time never renew the lease: a leadership transfer was seen in
   * progress then, and its transferee's forced campaign may have won despite the voters' lease.
   */
  leaseNotBeforeMs = 0;

  readonly sendingSnapshots = new Set<ReplicaId>();
  receivingSnapshot = false;
  staged: StagedSnapshot | undefined;
  leaderId: ReplicaId = 0;
  isLeader = false;

  constructor(init: {
    groupId: GroupId;
    replicaId: ReplicaId;
    node: RawNode;
    mirror: LogMirror;
    sm: StateMachine;
    applyState: ApplyState;
    hardState: HardState;
    descriptor: Uint8Array | undefined;
  }) {
    this.groupId = init.groupId;
    this.replicaId = init.replicaId;
    this.node = init.node;
    this.mirror = init.mirror;
    this.sm = init.sm;
    this.applyState = init.applyState;
    this.hardState = init.hardState;
    this.descriptor = init.descriptor;
  }

  peerNode(replicaId: ReplicaId): NodeId | undefined {
    return this.applyState.peers.get(replicaId) ?? this.learnedPeers.get(replicaId);
  }

  confState(): ConfState {
    return this.applyState.confState;
  }

  /** Work that keeps a leader awake: outstanding proposals, reads, snapshots, queued inputs. */
  hasPendingWork(): boolean {
    return (
      this.waiters.size > 0 ||
      this.readWaiters.size > 0 ||
      this.pendingReads.length > 0 ||
      this.inputs.length > 0 ||
      this.inbox.length > 0 ||
      this.sendingSnapshots.size > 0
    );
  }
}
