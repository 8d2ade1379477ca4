import { common, nodepb, OmniError } from '@omnidict/proto';
import type { NodeAdminApi } from '../src/operators/nodeAdminApi.js';
import type { ShardStats } from '../src/scheduler/clusterView.js';

interface FakeShard {
  desc: common.ShardDescriptor;
  leaderReplicaId: number;
  appliedIndex: number;
  match: Map<number, number>;
}

type Method = 'createShard' | 'splitShard' | 'changeReplicas' | 'transferLeader';

/**
 * FakeNodes is the in-memory twin of the storage nodes behind NodeAdmin: one authoritative
 * descriptor, leader and match index per shard. It checks what real nodes check (calls reach the
 * leader's node, the epoch in the header is current) and lets tests inject faults.
 */
export class FakeNodes implements NodeAdminApi {
  readonly shards = new Map<number, FakeShard>();
  /** `${nodeId}/${shardId}` for every CreateShard a node accepted. */
  readonly created = new Set<string>();
  /** Replicas created with `campaign` set (PD's chosen first leader). */
  readonly campaigned = new Set<string>();
  readonly calls: string[] = [];
  /** Addresses that throw UNAVAILABLE (a dead or partitioned node). */
  readonly unreachable = new Set<string>();
  /** Errors returned by the next calls of a method (one per call). */
  readonly injected = new Map<Method, string[]>();
  /** When true, TransferLeader is accepted but leadership never moves. */
  stubbornLeaders = false;
  /** When true, learners never catch up. */
  frozenLearners = false;

  constructor(private readonly addressOf: (nodeId: number) => string) {}

  add(desc: common.ShardDescriptor, leaderReplicaId = desc.replicas[0]?.replicaId ?? 0, appliedIndex = 100): void {
    const match = new Map(desc.replicas.map((r) => [r.replicaId, appliedIndex]));
    this.shards.set(desc.id, { desc: structuredClone(desc), leaderReplicaId, appliedIndex, match });
  }

  desc(shardId: number): common.ShardDescriptor | undefined {
    return this.shards.get(shardId)?.desc;
  }

  /** The leader's heartbeat report of a shard, as soft state. */
  stats(shardId: number, nowMs = 0): ShardStats | undefined {
    const s = this.shards.get(shardId);
    const leader = s?.desc.replicas.find((r) => r.replicaId === s.leaderReplicaId);
    if (!s || !leader) return undefined;
    return {
      leaderNodeId: leader.nodeId,
      leaderReplicaId: leader.replicaId,
      approximateKeys: 0,
      approximateBytes: 0,
      medianPosition: 0,
      appliedIndex: s.appliedIndex,
      replicaMatch: Object.fromEntries(s.match),
      reportedMs: nowMs,
    };
  }

  /** One Raft round: learners that exist on their node replicate half of what they miss. */
  replicate(): void {
    if (this.frozenLearners) return;
    for (const s of this.shards.values()) {
      for (const r of s.desc.replicas) {
        if (!this.created.has(`${r.nodeId}/${s.desc.id}`) && r.role === common.ReplicaRole.REPLICA_ROLE_LEARNER)
          continue;
        const m = s.match.get(r.replicaId) ?? 0;
        s.match.set(r.replicaId, m + Math.ceil((s.appliedIndex - m) / 2));
      }
    }
  }

  async createShard(address: string, req: nodepb.CreateShardRequest): Promise<nodepb.CreateShardResponse> {
    const pre = this.precheck('createShard', address);
    if (pre) return { error: pre };
    const shard = req.shard!;
    const replica = shard.replicas.find((r) => this.addressOf(r.nodeId) === address);
    if (!replica) return { error: err('INVALID_ARGUMENT', 'this node is not in the descriptor') };
    const key = `${replica.nodeId}/${shard.id}`;
    if (this.created.has(key)) return { error: err('CONFLICT', 'replica exists') };
    this.created.add(key);
    if (req.campaign) this.campaigned.add(key);
    if (!this.shards.has(shard.id)) this.add(shard);
    return {};
  }

  async splitShard(address: string, req: nodepb.SplitShardRequest): Promise<nodepb.SplitShardResponse> {
    const s = this.leaderCheck('splitShard', address, req.header);
    if ('error' in s) return { error: s.error };
    const d = s.shard.desc;
    const at = req.splitAt || d.start + Math.floor((d.end - d.start) / 2);
    const version = (d.epoch?.version ?? 0) + 1;
    const left: common.ShardDescriptor = { ...d, end: at, epoch: { version, confVer: d.epoch?.confVer ?? 0 } };
    const right: common.ShardDescriptor = {
      id: req.newShardId,
      start: at,
      end: d.end,
      epoch: { version, confVer: d.epoch?.confVer ?? 0 },
      replicas: d.replicas.map((r, i) => ({ ...r, replicaId: req.newReplicaIds[i]! })),
    };
    s.shard.desc = left;
    const leaderIdx = d.replicas.findIndex((r) => r.replicaId === s.shard.leaderReplicaId);
    this.add(right, right.replicas[leaderIdx]?.replicaId, s.shard.appliedIndex);
    return { left, right };
  }

  async changeReplicas(address: string, req: nodepb.ChangeReplicasRequest): Promise<nodepb.ChangeReplicasResponse> {
    const s = this.leaderCheck(`changeReplicas(${req.change},${req.replica?.replicaId})`, address, req.header);
    if ('error' in s) return { error: s.error };
    const d = s.shard.desc;
    const r = req.replica!;
    const exists = d.replicas.find((x) => x.replicaId === r.replicaId);
    let replicas = d.replicas;
    switch (req.change) {
      case nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_ADD_LEARNER:
        if (exists) return { error: err('CONFLICT', 'replica exists') };
        replicas = [...d.replicas, { ...r, role: common.ReplicaRole.REPLICA_ROLE_LEARNER }];
        s.shard.match.set(r.replicaId, 0);
        break;
      case nodepb.ReplicaChangeType.REPLICA_CHANGE_TYPE_PROMOTE:
        if (!exists) return { error: err('NOT_FOUND', 'no such replica') };
        replicas = d.replicas.map((x) =>
          x.replicaId === r.replicaId ? { ...x, role: common.ReplicaRole.REPLICA_ROLE_VOTER } : x,
        );
        break;
      default:
        if (!exists) return { error: err('NOT_FOUND', 'no such replica') };
        if (r.replicaId === s.shard.leaderReplicaId) return { error: err('CONFLICT', 'cannot remove the leader') };
        replicas = d.replicas.filter((x) => x.replicaId !== r.replicaId);
    }
    s.shard.desc = { ...d, epoch: { version: d.epoch?.version ?? 0, confVer: (d.epoch?.confVer ?? 0) + 1 }, replicas };
    return { shard: s.shard.desc };
  }

  async transferLeader(address: string, req: nodepb.TransferLeaderRequest): Promise<nodepb.TransferLeaderResponse> {
    const s = this.leaderCheck('transferLeader', address, req.header);
    if ('error' in s) return { error: s.error };
    // A replica on an unreachable (dead) node never takes over: the transfer just lapses.
    const to = s.shard.desc.replicas.find((r) => r.replicaId === req.toReplicaId);
    const reachable = to !== undefined && !this.unreachable.has(this.addressOf(to.nodeId));
    if (!this.stubbornLeaders && reachable) s.shard.leaderReplicaId = req.toReplicaId;
    return {};
  }

  private precheck(call: string, address: string): common.Error | undefined {
    this.calls.push(`${call}@${address}`);
    const method = call.split('(')[0] as Method;
    if (this.unreachable.has(address)) throw new OmniError('UNAVAILABLE', `${address} is unreachable`);
    const queue = this.injected.get(method);
    const code = queue?.shift();
    return code ? err(code, 'injected') : undefined;
  }

  private leaderCheck(
    method: string,
    address: string,
    header: common.RequestHeader | undefined,
  ): { shard: FakeShard } | { error: common.Error } {
    const pre = this.precheck(method, address);
    if (pre) return { error: pre };
    const shard = this.shards.get(header?.shardId ?? 0);
    if (!shard) return { error: err('SHARD_NOT_FOUND', 'no such shard') };
    const leader = shard.desc.replicas.find((r) => r.replicaId === shard.leaderReplicaId);
    if (!leader || this.addressOf(leader.nodeId) !== address) return { error: err('NOT_LEADER', 'not leader') };
    const e = shard.desc.epoch;
    if (header?.epoch?.version !== e?.version || header?.epoch?.confVer !== e?.confVer) {
      return { error: { ...err('STALE_EPOCH', 'stale epoch'), currentShard: shard.desc } };
    }
    return { shard };
  }
}

function err(code: string, message: string): common.Error {
  return { code, message, leaderReplicaId: 0, leaderNodeId: 0, leaderAddress: '', newShards: [] };
}
