/**
 * @omnidict/raft/runtime: the multi-Raft runtime shared by storage nodes and the placement driver.
 * See docs/runtime.md. The core (src/core) never imports this module.
 */

export type { Clock } from './clock.js';
export { ManualClock, systemClock } from './clock.js';
export type { ApplyState } from './codec.js';
export type { KvEngine, KvOp, KvRange, KvReader, KvSnapshot } from './engine.js';
export { compareBytes } from './engine.js';
export type { RuntimeErrorCode, RuntimeErrorDetails } from './errors.js';
export { RuntimeError } from './errors.js';
export type {
  CreateGroupSpec,
  DestroyGroupOptions,
  GroupStatus,
  HostStats,
  ProposeOptions,
  RaftHostConfig,
  ReplicaRemovedInfo,
  StalePeerInfo,
  UnknownGroupInfo,
} from './host.js';
export { RaftHost } from './host.js';
export {
  applyStateKey,
  descriptorKey,
  entryKey,
  groupRange,
  hardStateKey,
  intentKey,
  RAFT_PREFIX,
  replicaStateRange,
  tombstoneKey,
} from './keys.js';
export { LevelEngine } from './levelEngine.js';
export type { Logger } from './logger.js';
export { noopLogger } from './logger.js';
export { MemoryEngine } from './memoryEngine.js';
export type { LinkFilter, LinkVerdict } from './memoryTransport.js';
export { MemoryNetwork, MemoryTransport } from './memoryTransport.js';
export type { NetTransportConfig } from './netTransport.js';
export { NetTransport } from './netTransport.js';
export { registerRaftMetrics } from './promMetrics.js';
export type { ProposalResult } from './replica.js';
export type {
  AppliedConfChange,
  ApplyContext,
  CommittedEntry,
  SnapshotWriter,
  StateMachine,
  StateMachineFactory,
  WriteBatch,
} from './stateMachine.js';
export { decodeSnapshotChunk, destroyRanges, installRanges, snapshotRanges } from './stateMachine.js';
export type { Transport, TransportHandler } from './transport.js';
export type { GroupId, NodeId, PeerSpec, ReplicaId } from './types.js';
