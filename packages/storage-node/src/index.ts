/**
 * @omnidict/storage-node: the storage node (`omnidict-node`). The KV state machine, its command
 * codec and the key layout are exported for the runtime, tests and tools.
 */

export {
  buildWriteCommand,
  DEFAULT_LIMITS,
  DEFAULT_MAX_VALUE_BYTES,
  expireAtFromTtl,
  isWriteOp,
  type KvLimits,
  MAX_KEY_BYTES,
  validateKey,
  validateValue,
  type WriteOp,
} from './kv/buildCommand.js';
export {
  type CasExpectation,
  CommandTag,
  commandKey,
  decodeCommand,
  encodeCommand,
  type KvCommand,
  type KvCommandType,
  type SweepEntry,
} from './kv/commands.js';
export { compileGlob, type GlobMatcher } from './kv/compileGlob.js';
export {
  DATA_PREFIX,
  dataKey,
  dataRange,
  decodeDataKey,
  decodeExpiryKey,
  EXPIRY_PREFIX,
  EXPIRY_RANGE,
  expiredRange,
  expiryKey,
  type KeyRange,
  RING_END,
} from './kv/keys.js';
export {
  ApplyContext,
  collectExpiredSweeps,
  DEFAULT_SCAN_LIMIT,
  type KvReader,
  type KvResult,
  KvStateMachine,
  type KvWriteBatch,
  MAX_SCAN_LIMIT,
  type ScanOptions,
  type ScanResult,
  type TtlKeySet,
} from './kv/kvStateMachine.js';
export { type AnyLevel, type BatchOp, chainedBatchWriter, levelReader, opsWriter } from './kv/levelAdapters.js';
export { decodeRecord, encodeRecord, isExpired, type ValueRecord } from './kv/record.js';
export { registerNodeMetrics } from './nodeMetrics.js';
export { type NodeHandle, type NodeOptions, nodeAdminService, nodeKvService, startNode } from './nodeServer.js';
export { PdClient, type PdClientOptions } from './pd/pdClient.js';
export { FaultyTransport } from './store/faultyTransport.js';
export { MatchTracker } from './store/matchTracker.js';
export {
  decodeDescriptor,
  encodeDescriptor,
  type ShardApplyResult,
  type ShardHooks,
  ShardStateMachine,
} from './store/shardStateMachine.js';
export {
  type NodeStats,
  type ShardId,
  type ShardReportData,
  type StaleReplica,
  Store,
  type StoreConfig,
  toOmniError,
} from './store/store.js';
