import type { OperatorSpec } from '../operators/operatorTypes.js';
import type { BootstrapShard } from '../state/pdState.js';
import { balanceLeaders, balanceReplicas, gatherLeaders } from './balance.js';
import type { PlanContext } from './checkReplicas.js';
import { checkReplicas } from './checkReplicas.js';
import { checkSplit } from './checkSplit.js';
import type { ClusterState, SchedulerConfig, SoftState } from './clusterView.js';
import { busyShards, replicaCounts } from './clusterView.js';
import { placeBootstrap } from './placeBootstrap.js';

export interface SchedulePlan {
  /** Set when the cluster should be bootstrapped now (nothing else is planned then). */
  readonly bootstrap?: BootstrapShard[];
  /** Operators to start, in priority order, within the concurrency limit, at most one per shard. */
  readonly operators: OperatorSpec[];
}

/**
 * schedule is one scheduling round, a pure function of the replicated state and the leader's soft
 * state. Priorities: bootstrap; replica checker (repairs); size splits; then, only when no repair
 * is planned or running, replica balance and leader placement (balance or gather). Never more than
 * `config.maxOperators` operators active in total, never two on one shard.
 */
export function schedule(state: ClusterState, soft: SoftState, config: SchedulerConfig): SchedulePlan {
  const bootstrap = placeBootstrap(state, config.leaderPlacement);
  if (bootstrap) return { bootstrap, operators: [] };
  if (!state.bootstrapped) return { operators: [] };

  const busy = busyShards(state);
  const ctx: PlanContext = { state, soft, config, busy, counts: replicaCounts(state) };
  const room = () => config.maxOperators - busy.size;
  const operators: OperatorSpec[] = [];
  const plan = (spec: OperatorSpec | undefined) => {
    if (!spec || room() <= 0) return;
    operators.push(spec);
    busy.add(spec.shardId);
    if (spec.params.kind !== 'split' && spec.params.kind !== 'transferLeader' && spec.params.kind !== 'create') {
      const { add, remove } = spec.params;
      if (add) ctx.counts.set(add.nodeId, (ctx.counts.get(add.nodeId) ?? 0) + 1);
      if (remove && ctx.counts.has(remove.nodeId)) ctx.counts.set(remove.nodeId, ctx.counts.get(remove.nodeId)! - 1);
    }
  };

  const shards = [...state.shards.values()].sort((a, b) => a.id - b.id);
  for (const shard of shards) plan(checkReplicas(ctx, shard));
  const repairing =
    operators.length > 0 ||
    [...state.operators.values()].some(
      (op) => (op.state === 'pending' || op.state === 'running') && (op.kind === 'repair' || op.kind === 'create'),
    );
  for (const shard of shards) plan(checkSplit(ctx, shard));
  if (!repairing) {
    for (const spec of balanceReplicas(ctx, Math.max(0, room()))) operators.push(spec);
    const placeLeaders = config.leaderPlacement === 'gather' ? gatherLeaders : balanceLeaders;
    for (const spec of placeLeaders(ctx, Math.max(0, room()))) operators.push(spec);
  }
  return { operators };
}
