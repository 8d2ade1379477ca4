export { decodeConfChange, encodeConfChange } from './core/confChangeCodec.js';
export { RaftError, type RaftErrorCode } from './core/errors.js';
export { MemoryStorage } from './core/memoryStorage.js';
export type { ProgressState } from './core/progress.js';
export { isLocalMessage, isResponseMessage } from './core/raft.js';
export { type ProgressStatus, type RaftStatus, RawNode } from './core/rawNode.js';
export { seededRng } from './core/rng.js';
export {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type RaftConfig,
  type RaftLogger,
  type ReadOnlyOption,
  type ReadState,
  type Ready,
  type ReplicaId,
  type Snapshot,
  type SnapshotMetadata,
  type SoftState,
  StateRole,
  type Storage,
} from './core/types.js';
