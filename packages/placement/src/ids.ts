/** Id of a storage node, chosen by the node's operator (flag) and registered with PD. */
export type NodeId = number;
/** Id of a shard (one Raft group); allocated by PD. */
export type ShardId = number;
/** Id of one replica of a shard, unique across the cluster; allocated by PD. */
export type ReplicaId = number;
/** Id of a PD operator; allocated by PD from the same id space. */
export type OperatorId = number;
