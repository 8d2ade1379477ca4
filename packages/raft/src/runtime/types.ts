import type { ReplicaId } from '../core/types.js';

export type { ReplicaId };

/** Id of a Raft group (a shard, or the placement driver's single group). Encoded as u64 BE on disk. */
export type GroupId = number;

/** Id of a process hosting replicas (a storage node or a PD replica). Transport addresses are per NodeId. */
export type NodeId = number;

/** One member of a group: which replica, on which process. */
export interface PeerSpec {
  readonly replicaId: ReplicaId;
  readonly nodeId: NodeId;
  /** Learners receive the log but do not vote. Defaults to false. */
  readonly learner?: boolean;
}
