import { common } from '@omnidict/proto';
import type { ShardStats, SoftState } from '../src/scheduler/clusterView.js';
import { PdState } from '../src/state/pdState.js';

export const VOTER = common.ReplicaRole.REPLICA_ROLE_VOTER;
export const LEARNER = common.ReplicaRole.REPLICA_ROLE_LEARNER;

export function desc(
  id: number,
  start: number,
  end: number,
  version: number,
  confVer: number,
  replicas: Array<[replicaId: number, nodeId: number, role?: common.ReplicaRole]> = [],
): common.ShardDescriptor {
  return {
    id,
    start,
    end,
    epoch: { version, confVer },
    replicas: replicas.map(([replicaId, nodeId, role]) => ({ replicaId, nodeId, role: role ?? VOTER })),
  };
}

/** A state with nodes 1..n up (registered at t=0) and, optionally, shards. */
export function stateWith(nodeCount: number, shards: common.ShardDescriptor[] = []): PdState {
  const s = new PdState();
  for (let i = 1; i <= nodeCount; i++) s.apply({ type: 'registerNode', nodeId: i, address: `n${i}:1`, atMs: 0 });
  if (shards.length > 0) {
    s.bootstrapped = true;
    s.apply({ type: 'reportShards', shards });
  }
  return s;
}

export function stats(leaderNodeId: number, leaderReplicaId: number, extra: Partial<ShardStats> = {}): ShardStats {
  return {
    leaderNodeId,
    leaderReplicaId,
    approximateKeys: 0,
    approximateBytes: 0,
    medianPosition: 0,
    appliedIndex: 10,
    replicaMatch: {},
    reportedMs: 0,
    ...extra,
  };
}

/** Soft state where every shard's leader is its first replica. */
export function softLeadersFirst(state: PdState, nowMs = 0, extra: Partial<ShardStats> = {}): SoftState {
  const m = new Map<number, ShardStats>();
  for (const s of state.shards.values()) {
    const r = s.replicas[0];
    if (r) m.set(s.id, stats(r.nodeId, r.replicaId, extra));
  }
  return { nowMs, shardStats: m };
}
