import { type common, nodepb } from '@omnidict/proto';
import type { OperatorParams, ReplicaChangeKind, ReplicaRef } from './operatorTypes.js';
import type { OperatorContext, Step } from './step.js';
import {
  callNode,
  currentShard,
  fail,
  LEARNER,
  learn,
  mayIssue,
  NEXT,
  nodeAddress,
  nodeRaftAddress,
  nodeRaftAddresses,
  requestHeader,
  VOTER,
  WAIT,
} from './step.js';

/**
 * A replica change whose target node is not up cannot finish (its learner never catches up);
 * failing it at once frees the shard for the replica checker, which removes a leftover learner.
 */
function targetDown(ctx: OperatorContext, nodeId: number): string | undefined {
  const state = ctx.state.nodes.get(nodeId)?.state;
  return state === 'up' ? undefined : `target node ${nodeId} is ${state ?? 'unknown'}`;
}

/**
 * Once the added replica is a voter, the change goes on to remove `remove`. If the added replica's
 * node went down meanwhile, removing a replica on an up node would trade a healthy voter for a dead
 * one: fail instead (the replica checker then removes or replaces the dead voter). Removing a
 * replica that is itself on a down node (a repair) still goes ahead.
 */
function addedReplicaLost(ctx: OperatorContext, add: ReplicaRef | undefined, remove: ReplicaRef): string | undefined {
  if (!add || ctx.state.nodes.get(remove.nodeId)?.state !== 'up') return undefined;
  const down = targetDown(ctx, add.nodeId);
  return down && `${down}; keeping replica ${remove.replicaId} on node ${remove.nodeId}`;
}

type ReplicaChangeParams = Extract<OperatorParams, { readonly kind: ReplicaChangeKind }>;

/**
 * The replica-change state machine (move, repair, addReplica, removeReplica), one voter at a time
 * with learners first:
 *   addLearner → createLearner → catchUp → promote   (when `add` is set)
 *   transferLeaderAway → removeReplica               (when `remove` is set)
 * Every ChangeReplicas call goes to the shard leader's node, named by the leader's report.
 */
export function replicaChangeSteps(params: ReplicaChangeParams): Step[] {
  const steps: Step[] = [];
  const { add, remove } = params;
  if (add) {
    steps.push({
      name: 'addLearner',
      async run(op, ctx, mem) {
        const down = targetDown(ctx, add.nodeId);
        if (down) return fail(down);
        const shard = currentShard(op, ctx, mem);
        if (!shard) return fail(`shard ${op.shardId} is gone`);
        if (shard.replicas.some((r) => r.replicaId === add.replicaId)) return NEXT;
        if (shard.replicas.some((r) => r.nodeId === add.nodeId)) {
          return fail(`node ${add.nodeId} already hosts a replica of shard ${shard.id}`);
        }
        const target = nodeRaftAddress(ctx, add.nodeId);
        if (target === undefined) return fail(`target node ${add.nodeId} is not registered`);
        const leader = ctx.stats && nodeAddress(ctx, ctx.stats.leaderNodeId);
        if (!leader || !mayIssue(ctx, mem)) return WAIT;
        const r = await callNode(op, mem, 'add learner', () =>
          ctx.admin.changeReplicas(leader, {
            header: requestHeader(shard),
            change: nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_ADD_LEARNER,
            replica: { replicaId: add.replicaId, nodeId: add.nodeId, role: LEARNER },
            nodeAddress: target,
          }),
        );
        if ('outcome' in r) return r.outcome;
        learn(op, mem, r.ok.shard);
        const now = currentShard(op, ctx, mem);
        return now?.replicas.some((x) => x.replicaId === add.replicaId) ? NEXT : WAIT;
      },
    });
    steps.push({
      name: 'createLearner',
      async run(op, ctx, mem) {
        const down = targetDown(ctx, add.nodeId);
        if (down) return fail(down);
        const shard = currentShard(op, ctx, mem);
        if (!shard) return fail(`shard ${op.shardId} is gone`);
        if ((ctx.stats?.replicaMatch[add.replicaId] ?? 0) > 0) return NEXT;
        const target = nodeAddress(ctx, add.nodeId);
        if (target === undefined) return fail(`target node ${add.nodeId} is not registered`);
        if (!mayIssue(ctx, mem)) return WAIT;
        const r = await callNode(op, mem, 'create learner', () =>
          ctx.admin.createShard(target, {
            shard,
            nodeAddresses: nodeRaftAddresses(ctx, shard),
            uninitialized: true,
            campaign: false,
            holdElectionMs: 0,
          }),
        );
        // CONFLICT from CreateShard means the replica already exists there: the effect we want.
        if ('outcome' in r && r.code !== 'CONFLICT') return r.outcome;
        return NEXT;
      },
    });
    steps.push({
      name: 'catchUp',
      async run(op, ctx, mem) {
        const down = targetDown(ctx, add.nodeId);
        if (down) return fail(down);
        const stats = ctx.stats;
        if (!stats) return WAIT;
        const match = stats.replicaMatch[add.replicaId] ?? 0;
        mem.progress = stats.appliedIndex > 0 ? Math.min(1, match / stats.appliedIndex) : 0;
        if (match > 0 && match + ctx.config.catchUpLagEntries >= stats.appliedIndex) {
          mem.progress = 1;
          return NEXT;
        }
        void op;
        return WAIT;
      },
    });
    steps.push({
      name: 'promote',
      async run(op, ctx, mem) {
        const down = targetDown(ctx, add.nodeId);
        if (down) return fail(down);
        const shard = currentShard(op, ctx, mem);
        if (!shard) return fail(`shard ${op.shardId} is gone`);
        const replica = shard.replicas.find((r) => r.replicaId === add.replicaId);
        if (!replica) return fail(`learner ${add.replicaId} disappeared from shard ${shard.id}`);
        if (replica.role === VOTER) return NEXT;
        const leader = ctx.stats && nodeAddress(ctx, ctx.stats.leaderNodeId);
        if (!leader || !mayIssue(ctx, mem)) return WAIT;
        const r = await callNode(op, mem, 'promote', () =>
          ctx.admin.changeReplicas(leader, {
            header: requestHeader(shard),
            change: nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_PROMOTE,
            replica: { replicaId: add.replicaId, nodeId: add.nodeId, role: VOTER },
            nodeAddress: nodeRaftAddress(ctx, add.nodeId) ?? '',
          }),
        );
        if ('outcome' in r) return r.outcome;
        learn(op, mem, r.ok.shard);
        const now = currentShard(op, ctx, mem);
        return now?.replicas.some((x) => x.replicaId === add.replicaId && x.role === VOTER) ? NEXT : WAIT;
      },
    });
  }
  if (remove) {
    steps.push({
      name: 'transferLeaderAway',
      async run(op, ctx, mem) {
        const shard = currentShard(op, ctx, mem);
        if (!shard) return fail(`shard ${op.shardId} is gone`);
        if (!shard.replicas.some((r) => r.replicaId === remove.replicaId)) return NEXT;
        const lost = addedReplicaLost(ctx, add, remove);
        if (lost) return fail(lost);
        const stats = ctx.stats;
        if (!stats) return WAIT;
        if (stats.leaderReplicaId !== remove.replicaId) return NEXT;
        // Prefer the replica this operator added; else any other voter. Only voters on up nodes: a
        // transfer to a dead replica never completes (and blocks the shard's writes while it runs),
        // so re-sending it would hold the shard until the operator's timeout, with no repair.
        const upVoter = (r: common.Replica) =>
          r.replicaId !== remove.replicaId && r.role === VOTER && ctx.state.nodes.get(r.nodeId)?.state === 'up';
        const to =
          shard.replicas.find((r) => r.replicaId === add?.replicaId && upVoter(r)) ?? shard.replicas.find(upVoter);
        if (!to) return fail(`no voter to take over leadership of shard ${shard.id}`);
        const leader = nodeAddress(ctx, stats.leaderNodeId);
        if (!leader || !mayIssue(ctx, mem)) return WAIT;
        const r = await callNode(op, mem, 'transfer leader', () =>
          ctx.admin.transferLeader(leader, { header: requestHeader(shard), toReplicaId: to.replicaId }),
        );
        return 'outcome' in r ? r.outcome : WAIT;
      },
    });
    steps.push({
      name: 'removeReplica',
      async run(op, ctx, mem) {
        const shard = currentShard(op, ctx, mem);
        if (!shard) return fail(`shard ${op.shardId} is gone`);
        const replica = shard.replicas.find((r) => r.replicaId === remove.replicaId);
        if (!replica) return NEXT;
        const lost = addedReplicaLost(ctx, add, remove);
        if (lost) return fail(lost);
        const stats = ctx.stats;
        if (!stats || stats.leaderReplicaId === remove.replicaId) return WAIT;
        const leader = nodeAddress(ctx, stats.leaderNodeId);
        if (!leader || !mayIssue(ctx, mem)) return WAIT;
        const r = await callNode(op, mem, 'remove replica', () =>
          ctx.admin.changeReplicas(leader, {
            header: requestHeader(shard),
            change: nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_REMOVE,
            replica,
            nodeAddress: nodeRaftAddress(ctx, remove.nodeId) ?? '',
          }),
        );
        if ('outcome' in r) return r.outcome;
        learn(op, mem, r.ok.shard);
        const now = currentShard(op, ctx, mem);
        return now && !now.replicas.some((x) => x.replicaId === remove.replicaId) ? NEXT : WAIT;
      },
    });
  }
  return steps;
}
