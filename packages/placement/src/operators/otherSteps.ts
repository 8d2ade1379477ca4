import type { common } from '@omnidict/proto';
import type { OperatorParams } from './operatorTypes.js';
import type { Step } from './step.js';
import {
  callNode,
  currentShard,
  fail,
  learn,
  mayIssue,
  NEXT,
  nodeAddress,
  nodeRaftAddresses,
  requestHeader,
  VOTER,
  WAIT,
} from './step.js';

/**
 * How long the replicas created before the first one wait for its campaign before electing among
 * themselves (if its node never answers, the shard still gets a leader after this).
 */
export const FIRST_LEADER_HOLD_MS = 10_000;

/**
 * create (bootstrap): CreateShard on every replica's node (each node once it acknowledges;
 * CONFLICT = already exists counts as done) → waitLeader: done once a leader reports the shard.
 * The first listed replica is PD's choice of first leader (see placeBootstrap): it is created last,
 * once the others exist, and asked to campaign, so the shard starts with that leader at once; the
 * others are created holding their own elections for FIRST_LEADER_HOLD_MS, so none wins first.
 */
export function createSteps(): Step[] {
  return [
    {
      name: 'createReplicas',
      async run(op, ctx, mem) {
        const shard = currentShard(op, ctx, mem);
        if (!shard) return fail(`shard ${op.shardId} is gone`);
        // Every node must acknowledge (a leader elected by two of three replicas does not prove the
        // third exists); after a PD leader change the calls are re-sent and CONFLICT acknowledges.
        const pending = shard.replicas.filter((r) => !mem.acked.has(r.nodeId));
        if (pending.length === 0) return NEXT;
        if (!mayIssue(ctx, mem)) return WAIT;
        const addresses = nodeRaftAddresses(ctx, shard);
        const first = shard.replicas[0];
        const create = async (r: common.Replica, campaign: boolean) => {
          const address = nodeAddress(ctx, r.nodeId);
          if (address === undefined) return;
          const holdElectionMs = campaign ? 0 : FIRST_LEADER_HOLD_MS;
          const res = await callNode(op, mem, `create on node ${r.nodeId}`, () =>
            ctx.admin.createShard(address, {
              shard,
              nodeAddresses: addresses,
              uninitialized: false,
              campaign,
              holdElectionMs,
            }),
          );
          if ('ok' in res || res.code === 'CONFLICT') mem.acked.add(r.nodeId);
        };
        await Promise.all(pending.filter((r) => r !== first).map((r) => create(r, false)));
        if (first !== undefined && !mem.acked.has(first.nodeId)) {
          if (shard.replicas.every((r) => r === first || mem.acked.has(r.nodeId))) await create(first, true);
        }
        return shard.replicas.every((r) => mem.acked.has(r.nodeId)) ? NEXT : WAIT;
      },
    },
    {
      name: 'waitLeader',
      async run(_op, ctx) {
        return ctx.stats ? NEXT : WAIT;
      },
    },
  ];
}

type SplitParams = Extract<OperatorParams, { readonly kind: 'split' }>;

/**
 * split: SplitShard on the leader's node → waitReport: done once PD state knows the new shard (a
 * report, or the descriptors the split call returned, showing the new epoch).
 */
export function splitSteps(params: SplitParams): Step[] {
  return [
    {
      name: 'split',
      async run(op, ctx, mem) {
        if (ctx.state.shards.has(params.newShardId)) return NEXT;
        const shard = currentShard(op, ctx, mem);
        if (!shard) return fail(`shard ${op.shardId} is gone`);
        if ((shard.epoch?.version ?? 0) > params.fromVersion) return NEXT;
        if (params.splitAt !== 0 && (params.splitAt <= shard.start || params.splitAt >= shard.end)) {
          return fail(`split position ${params.splitAt} is outside [${shard.start}, ${shard.end})`);
        }
        if (shard.replicas.length !== params.newReplicaIds.length) {
          return fail(`shard ${shard.id} has ${shard.replicas.length} replicas, ${params.newReplicaIds.length} ids`);
        }
        const leader = ctx.stats && nodeAddress(ctx, ctx.stats.leaderNodeId);
        if (!leader || !mayIssue(ctx, mem)) return WAIT;
        const r = await callNode(op, mem, 'split', () =>
          ctx.admin.splitShard(leader, {
            header: requestHeader(shard),
            splitAt: params.splitAt,
            newShardId: params.newShardId,
            newReplicaIds: [...params.newReplicaIds],
          }),
        );
        if ('outcome' in r) return r.outcome;
        learn(op, mem, r.ok.left);
        learn(op, mem, r.ok.right);
        return r.ok.right ? NEXT : WAIT;
      },
    },
    {
      name: 'waitReport',
      async run(_op, ctx) {
        return ctx.state.shards.has(params.newShardId) ? NEXT : WAIT;
      },
    },
  ];
}

type TransferParams = Extract<OperatorParams, { readonly kind: 'transferLeader' }>;

/** transferLeader: TransferLeader on the current leader's node, re-sent until the report names the target. */
export function transferLeaderSteps(params: TransferParams): Step[] {
  return [
    {
      name: 'transferLeader',
      async run(op, ctx, mem) {
        const shard = currentShard(op, ctx, mem);
        if (!shard) return fail(`shard ${op.shardId} is gone`);
        const target = shard.replicas.find((r) => r.replicaId === params.toReplicaId);
        if (target?.role !== VOTER) {
          return fail(`replica ${params.toReplicaId} is not a voter of shard ${shard.id}`);
        }
        const targetState = ctx.state.nodes.get(target.nodeId)?.state;
        if (targetState !== 'up') return fail(`target node ${target.nodeId} is ${targetState ?? 'unknown'}`);
        const stats = ctx.stats;
        if (!stats) return WAIT;
        if (stats.leaderReplicaId === params.toReplicaId) return NEXT;
        const leader = nodeAddress(ctx, stats.leaderNodeId);
        if (!leader || !mayIssue(ctx, mem)) return WAIT;
        const r = await callNode(op, mem, 'transfer leader', () =>
          ctx.admin.transferLeader(leader, { header: requestHeader(shard), toReplicaId: params.toReplicaId }),
        );
        return 'outcome' in r ? r.outcome : WAIT;
      },
    },
  ];
}
