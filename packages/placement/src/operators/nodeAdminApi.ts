import type { nodepb } from '@omnidict/proto';

/**
 * NodeAdminApi is the seam between PD's operators and storage nodes: the `omnidict.node.v1.NodeAdmin`
 * service, addressed by node address. `grpcNodeAdmin` is the real implementation; tests use a twin.
 *
 * Contract: a call either resolves with the response (whose `error` may be set) or rejects with an
 * OmniError (transport failures are UNAVAILABLE / TIMEOUT). Operators retry on NOT_LEADER,
 * STALE_EPOCH, SHARD_NOT_FOUND, UNAVAILABLE and TIMEOUT, and fail on anything else.
 */
export interface NodeAdminApi {
  createShard(address: string, req: nodepb.CreateShardRequest): Promise<nodepb.CreateShardResponse>;
  splitShard(address: string, req: nodepb.SplitShardRequest): Promise<nodepb.SplitShardResponse>;
  changeReplicas(address: string, req: nodepb.ChangeReplicasRequest): Promise<nodepb.ChangeReplicasResponse>;
  transferLeader(address: string, req: nodepb.TransferLeaderRequest): Promise<nodepb.TransferLeaderResponse>;
}
