import { common } from '@omnidict/proto';
import type { NodeId, OperatorId, ShardId } from '../ids.js';
import type { ClusterConfig, NodeRecord, OperatorRecord } from '../state/pdState.js';
import { isActive } from '../state/pdState.js';

/** The replicated state the schedulers read (PdState satisfies it). */
export interface ClusterState {
  readonly bootstrapped: boolean;
  readonly config: ClusterConfig;
  readonly nodes: ReadonlyMap<NodeId, NodeRecord>;
  readonly shards: ReadonlyMap<ShardId, common.ShardDescriptor>;
  readonly operators: ReadonlyMap<OperatorId, OperatorRecord>;
}

/** What the PD leader last heard from a shard's leader (soft state, never replicated). */
export interface ShardStats {
  readonly leaderNodeId: NodeId;
  readonly leaderReplicaId: number;
  readonly approximateKeys: number;
  readonly approximateBytes: number;
  /** Ring position of the shard's median key; 0 = unknown. */
  readonly medianPosition: number;
  readonly appliedIndex: number;
  /** Match index per replica id, as the leader sees it. */
  readonly replicaMatch: Readonly<Record<number, number>>;
  readonly reportedMs: number;
}

/** Soft state of the PD leader at one instant. */
export interface SoftState {
  readonly nowMs: number;
  readonly shardStats: ReadonlyMap<ShardId, ShardStats>;
}

export interface SchedulerConfig {
  /** Operators pending or running at once, across the cluster. */
  readonly maxOperators: number;
  /** A replica on a node marked down for at least this long is replaced. */
  readonly replaceDownAfterMs: number;
  /** Split a shard whose approximate size reaches this many bytes (0 = never by size). */
  readonly splitMaxBytes: number;
  /** Split a shard whose approximate key count reaches this (0 = never by keys). */
  readonly splitMaxKeys: number;
  /** Move replicas when the busiest up node has at least this many more replicas than the idlest. */
  readonly replicaBalanceThreshold: number;
  /** Transfer leaders when the busiest up node leads at least this many more shards than the idlest. */
  readonly leaderBalanceThreshold: number;
  /**
   * Where shard leaders go. `balance` (multi-host clusters): even leader counts across up nodes.
   * `gather` (every node on one host, sharing its cores): every leader on one node — the lowest-id
   * up node at bootstrap, later the up node already leading the most shards — as etcd's one leader.
   */
  readonly leaderPlacement: LeaderPlacement;
}

export type LeaderPlacement = 'balance' | 'gather';
export const LEADER_PLACEMENTS: readonly LeaderPlacement[] = ['balance', 'gather'];

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = {
  maxOperators: 4,
  replaceDownAfterMs: 30_000,
  splitMaxBytes: 64 * 1024 * 1024,
  splitMaxKeys: 1_000_000,
  replicaBalanceThreshold: 2,
  leaderBalanceThreshold: 2,
  leaderPlacement: 'balance',
};

export function isVoter(r: common.Replica): boolean {
  return r.role !== common.ReplicaRole.REPLICA_ROLE_LEARNER;
}

export function upNodeIds(state: ClusterState): NodeId[] {
  return [...state.nodes.values()]
    .filter((n) => n.state === 'up')
    .map((n) => n.id)
    .sort((a, b) => a - b);
}

export function isNodeUp(state: ClusterState, nodeId: NodeId): boolean {
  return state.nodes.get(nodeId)?.state === 'up';
}

/** Shards with an operator pending or running. */
export function busyShards(state: ClusterState): Set<ShardId> {
  const busy = new Set<ShardId>();
  for (const op of state.operators.values()) if (isActive(op)) busy.add(op.shardId);
  return busy;
}

/** Replica count per up node (0 for an up node without replicas). */
export function replicaCounts(state: ClusterState): Map<NodeId, number> {
  const counts = new Map<NodeId, number>(upNodeIds(state).map((id) => [id, 0]));
  for (const s of state.shards.values()) {
    for (const r of s.replicas) {
      const c = counts.get(r.nodeId);
      if (c !== undefined) counts.set(r.nodeId, c + 1);
    }
  }
  return counts;
}

/** Majority of `n` voters. */
export function quorum(n: number): number {
  return Math.floor(n / 2) + 1;
}
