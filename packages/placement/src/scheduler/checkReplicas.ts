import type { common } from '@omnidict/proto';
import type { NodeId } from '../ids.js';
import type { OperatorSpec } from '../operators/operatorTypes.js';
import type { ClusterState, SchedulerConfig, SoftState } from './clusterView.js';
import { isNodeUp, isVoter, quorum } from './clusterView.js';

/** Tracks what one scheduling round planned, so later checks see earlier decisions. */
export interface PlanContext {
  readonly state: ClusterState;
  readonly soft: SoftState;
  readonly config: SchedulerConfig;
  /** Shards with an active or planned operator: never two operators on one shard. */
  readonly busy: Set<number>;
  /** Replica count per up node, including planned adds and removes. */
  readonly counts: Map<NodeId, number>;
}

/**
 * True when a replica's node is gone for good as far as placement is concerned: unknown, removed,
 * or down for at least `replaceDownAfterMs`.
 */
export function isReplicaDead(ctx: PlanContext, nodeId: NodeId): boolean {
  const node = ctx.state.nodes.get(nodeId);
  if (!node || node.state === 'removed') return true;
  return node.state === 'down' && ctx.soft.nowMs - node.stateSinceMs >= ctx.config.replaceDownAfterMs;
}

/** The up node with the fewest replicas that does not host the shard (ties: lowest id). */
export function bestTarget(ctx: PlanContext, shard: common.ShardDescriptor): NodeId | undefined {
  const hosting = new Set(shard.replicas.map((r) => r.nodeId));
  let best: NodeId | undefined;
  let bestCount = Number.POSITIVE_INFINITY;
  for (const [nodeId, count] of [...ctx.counts].sort((a, b) => a[0] - b[0])) {
    if (hosting.has(nodeId) || !isNodeUp(ctx.state, nodeId)) continue;
    if (count < bestCount) {
      best = nodeId;
      bestCount = count;
    }
  }
  return best;
}

/**
 * checkReplicas is the replica checker for one shard: it keeps `replicationFactor` healthy voters.
 * In order: a leftover learner is promoted (when voters are short) or removed; a voter on a dead
 * node is replaced (add on the best node, then remove); missing voters are added; extra voters are
 * removed. Nothing is planned for a shard without a known leader or without a healthy quorum
 * (membership changes need one).
 */
export function checkReplicas(ctx: PlanContext, shard: common.ShardDescriptor): OperatorSpec | undefined {
  const stats = ctx.soft.shardStats.get(shard.id);
  if (!stats || ctx.busy.has(shard.id)) return undefined;
  const rf = ctx.state.config.replicationFactor;
  const voters = shard.replicas.filter(isVoter);
  const healthyVoters = voters.filter((r) => isNodeUp(ctx.state, r.nodeId));
  if (healthyVoters.length < quorum(voters.length)) return undefined;
  const spec = (params: OperatorSpec['params'], reason: string): OperatorSpec => ({
    shardId: shard.id,
    reason,
    source: 'scheduler',
    params,
  });

  const learner = shard.replicas.find((r) => !isVoter(r));
  if (learner) {
    const ref = { nodeId: learner.nodeId, replicaId: learner.replicaId };
    if (voters.length < rf && isNodeUp(ctx.state, learner.nodeId)) {
      return spec({ kind: 'addReplica', add: ref }, `promote leftover learner ${learner.replicaId}`);
    }
    return spec({ kind: 'removeReplica', remove: ref }, `remove leftover learner ${learner.replicaId}`);
  }

  const dead = voters.find((r) => isReplicaDead(ctx, r.nodeId));
  if (dead) {
    const remove = { nodeId: dead.nodeId, replicaId: dead.replicaId };
    const target = bestTarget(ctx, shard);
    if (target !== undefined) {
      return spec(
        { kind: 'repair', add: { nodeId: target, replicaId: 0 }, remove },
        `replica ${dead.replicaId} on dead node ${dead.nodeId}`,
      );
    }
    if (voters.length > rf) return spec({ kind: 'removeReplica', remove }, `replica on dead node ${dead.nodeId}`);
    return undefined;
  }

  if (voters.length < rf) {
    const target = bestTarget(ctx, shard);
    if (target === undefined) return undefined;
    return spec({ kind: 'addReplica', add: { nodeId: target, replicaId: 0 } }, `${voters.length} of ${rf} voters`);
  }

  if (voters.length > rf) {
    // Remove from the most loaded node, never the leader (its removal would need a transfer first).
    const candidates = voters
      .filter((r) => r.replicaId !== stats.leaderReplicaId)
      .sort((a, b) => (ctx.counts.get(b.nodeId) ?? 0) - (ctx.counts.get(a.nodeId) ?? 0) || b.nodeId - a.nodeId);
    const victim = candidates[0];
    if (!victim) return undefined;
    return spec(
      { kind: 'removeReplica', remove: { nodeId: victim.nodeId, replicaId: victim.replicaId } },
      `${voters.length} of ${rf} voters`,
    );
  }
  return undefined;
}
