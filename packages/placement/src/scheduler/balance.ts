import type { NodeId } from '../ids.js';
import type { OperatorSpec } from '../operators/operatorTypes.js';
import type { PlanContext } from './checkReplicas.js';
import { isNodeUp, isVoter } from './clusterView.js';

/** Ids of the up nodes with the most and the fewest entries in `counts` (ties: lowest id). */
function extremes(counts: ReadonlyMap<NodeId, number>): { max: NodeId; min: NodeId } | undefined {
  const sorted = [...counts].sort((a, b) => a[0] - b[0]);
  if (sorted.length < 2) return undefined;
  let max = sorted[0]!;
  let min = sorted[0]!;
  for (const e of sorted) {
    if (e[1] > max[1]) max = e;
    if (e[1] < min[1]) min = e;
  }
  return { max: max[0], min: min[0] };
}

/** A shard whose replicas are all voters on up nodes: safe to move or transfer. */
function isSettled(ctx: PlanContext, shardId: number): boolean {
  const shard = ctx.state.shards.get(shardId);
  if (!shard || ctx.busy.has(shardId) || !ctx.soft.shardStats.has(shardId)) return false;
  return shard.replicas.every((r) => isVoter(r) && isNodeUp(ctx.state, r.nodeId));
}

/**
 * balanceReplicas moves one replica from the up node with the most replicas to the one with the
 * fewest, while the difference is at least `replicaBalanceThreshold` (so a node that joins fills
 * up). Updates `ctx.counts` for each planned move; returns at most `limit` moves.
 */
export function balanceReplicas(ctx: PlanContext, limit: number): OperatorSpec[] {
  const out: OperatorSpec[] = [];
  while (out.length < limit) {
    const ex = extremes(ctx.counts);
    if (!ex) break;
    const maxCount = ctx.counts.get(ex.max) ?? 0;
    const minCount = ctx.counts.get(ex.min) ?? 0;
    if (maxCount - minCount < ctx.config.replicaBalanceThreshold) break;
    const shard = [...ctx.state.shards.values()]
      .sort((a, b) => a.id - b.id)
      .find(
        (s) =>
          isSettled(ctx, s.id) &&
          s.replicas.some((r) => r.nodeId === ex.max) &&
          !s.replicas.some((r) => r.nodeId === ex.min),
      );
    if (!shard) break;
    const from = shard.replicas.find((r) => r.nodeId === ex.max)!;
    out.push({
      shardId: shard.id,
      reason: `balance replicas: node ${ex.max} has ${maxCount}, node ${ex.min} has ${minCount}`,
      source: 'scheduler',
      params: {
        kind: 'move',
        add: { nodeId: ex.min, replicaId: 0 },
        remove: { nodeId: from.nodeId, replicaId: from.replicaId },
      },
    });
    ctx.busy.add(shard.id);
    ctx.counts.set(ex.max, maxCount - 1);
    ctx.counts.set(ex.min, minCount + 1);
  }
  return out;
}

/** Shards led by each up node (0 for none), from the shard heartbeats. */
function leaderCounts(ctx: PlanContext): Map<NodeId, number> {
  const leaders = new Map<NodeId, number>();
  for (const nodeId of ctx.counts.keys()) leaders.set(nodeId, 0);
  for (const [shardId, stats] of ctx.soft.shardStats) {
    if (!ctx.state.shards.has(shardId)) continue;
    const c = leaders.get(stats.leaderNodeId);
    if (c !== undefined) leaders.set(stats.leaderNodeId, c + 1);
  }
  return leaders;
}

/**
 * balanceLeaders transfers leadership of one shard from the up node leading the most shards to
 * the one leading the fewest, when it holds a voter of that shard and the difference is at least
 * `leaderBalanceThreshold`. Leader counts come from shard heartbeats (soft state).
 */
export function balanceLeaders(ctx: PlanContext, limit: number): OperatorSpec[] {
  const leaders = leaderCounts(ctx);
  const out: OperatorSpec[] = [];
  const tried = new Set<string>();
  while (out.length < limit) {
    const ex = extremes(leaders);
    if (!ex) break;
    const maxCount = leaders.get(ex.max) ?? 0;
    const minCount = leaders.get(ex.min) ?? 0;
    if (maxCount - minCount < ctx.config.leaderBalanceThreshold) break;
    const pair = `${ex.max}->${ex.min}`;
    if (tried.has(pair)) break;
    tried.add(pair);
    const shard = [...ctx.state.shards.values()]
      .sort((a, b) => a.id - b.id)
      .find(
        (s) =>
          isSettled(ctx, s.id) &&
          ctx.soft.shardStats.get(s.id)?.leaderNodeId === ex.max &&
          s.replicas.some((r) => r.nodeId === ex.min),
      );
    if (!shard) continue;
    const to = shard.replicas.find((r) => r.nodeId === ex.min)!;
    out.push({
      shardId: shard.id,
      reason: `balance leaders: node ${ex.max} leads ${maxCount}, node ${ex.min} leads ${minCount}`,
      source: 'scheduler',
      params: { kind: 'transferLeader', toNodeId: ex.min, toReplicaId: to.replicaId },
    });
    ctx.busy.add(shard.id);
    leaders.set(ex.max, maxCount - 1);
    leaders.set(ex.min, minCount + 1);
    tried.clear();
  }
  return out;
}

/**
 * gatherLeaders (leader placement `gather`) transfers leadership of settled shards to one node: the
 * up node already leading the most shards (ties: lowest id), so that after a failover the leaders
 * stay where they went instead of moving back. A shard moves only when that node holds a voter of
 * it. Returns at most `limit` transfers.
 */
export function gatherLeaders(ctx: PlanContext, limit: number): OperatorSpec[] {
  const leaders = leaderCounts(ctx);
  const target = extremes(leaders)?.max;
  if (target === undefined) return [];
  const out: OperatorSpec[] = [];
  for (const shard of [...ctx.state.shards.values()].sort((a, b) => a.id - b.id)) {
    if (out.length >= limit) break;
    const from = ctx.soft.shardStats.get(shard.id)?.leaderNodeId;
    if (from === undefined || from === target || !isSettled(ctx, shard.id)) continue;
    const to = shard.replicas.find((r) => r.nodeId === target);
    if (to === undefined) continue;
    out.push({
      shardId: shard.id,
      reason: `gather leaders on node ${target} (leads ${leaders.get(target)}); shard led by node ${from}`,
      source: 'scheduler',
      params: { kind: 'transferLeader', toNodeId: target, toReplicaId: to.replicaId },
    });
    ctx.busy.add(shard.id);
  }
  return out;
}
