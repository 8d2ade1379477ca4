import type { common } from '@omnidict/proto';
import type { NodeId, ReplicaId, ShardId } from '../ids.js';

/**
 * Operator kinds. `move`, `repair`, `addReplica` and `removeReplica` are one state machine (a
 * replica change: optionally add a replica, optionally remove one); the kind says why it runs.
 */
export type ReplicaChangeKind = 'move' | 'repair' | 'addReplica' | 'removeReplica';
export type OperatorKind = 'create' | 'split' | 'transferLeader' | ReplicaChangeKind;

export interface ReplicaRef {
  readonly nodeId: NodeId;
  /** 0 in a spec = allocate a fresh replica id when the operator starts. */
  readonly replicaId: ReplicaId;
}

export type OperatorParams =
  /** Create every replica of a bootstrap shard on its node. */
  | { readonly kind: 'create' }
  | {
      readonly kind: 'split';
      /** Ring position where the new (right) shard starts; 0 = the shard's median key position. */
      readonly splitAt: number;
      /** 0 in a spec = allocate. */
      readonly newShardId: ShardId;
      /** One per replica of the shard, in descriptor order; empty in a spec = allocate. */
      readonly newReplicaIds: readonly ReplicaId[];
      /** The shard's epoch version when the operator started; done once a higher one is known. */
      readonly fromVersion: number;
    }
  | {
      readonly kind: ReplicaChangeKind;
      readonly add?: ReplicaRef;
      readonly remove?: ReplicaRef;
    }
  | { readonly kind: 'transferLeader'; readonly toNodeId: NodeId; readonly toReplicaId: ReplicaId };

/** What a scheduler (or an admin RPC) asks to start. Ids left as 0 are allocated on apply. */
export interface OperatorSpec {
  readonly shardId: ShardId;
  readonly reason: string;
  readonly source: 'scheduler' | 'admin';
  readonly params: OperatorParams;
}

/**
 * Fills the ids a spec left open, using `alloc` (the replicated id allocator), in a fixed order so
 * every PD replica computes the same result: split → new shard id, then one replica id per replica
 * in descriptor order; replica change → the added replica's id; transfer → the target's replica id.
 */
export function materializeOperator(
  params: OperatorParams,
  shard: common.ShardDescriptor,
  alloc: () => number,
): OperatorParams {
  switch (params.kind) {
    case 'create':
      return params;
    case 'split': {
      const newShardId = params.newShardId || alloc();
      const newReplicaIds = params.newReplicaIds.length > 0 ? params.newReplicaIds : shard.replicas.map(() => alloc());
      return { ...params, newShardId, newReplicaIds, fromVersion: shard.epoch?.version ?? 0 };
    }
    case 'transferLeader': {
      const toReplicaId =
        params.toReplicaId || (shard.replicas.find((r) => r.nodeId === params.toNodeId)?.replicaId ?? 0);
      return { ...params, toReplicaId };
    }
    default: {
      if (!params.add || params.add.replicaId) return params;
      return { ...params, add: { nodeId: params.add.nodeId, replicaId: alloc() } };
    }
  }
}

/** True for the kinds that run the replica-change state machine. */
export function isReplicaChange(
  params: OperatorParams,
): params is Extract<OperatorParams, { readonly kind: ReplicaChangeKind }> {
  return (
    params.kind === 'move' ||
    params.kind === 'repair' ||
    params.kind === 'addReplica' ||
    params.kind === 'removeReplica'
  );
}
