import type { ConfChangeType, ConfState } from '../core/types.js';
import type { KvOp, KvRange, KvReader } from './engine.js';
import { RuntimeError } from './errors.js';
import type { GroupId, NodeId, ReplicaId } from './types.js';

/** A committed membership change, as the state machine sees it. */
export interface AppliedConfChange {
  readonly type: ConfChangeType;
  readonly replicaId: ReplicaId;
  /** The process hosting the replica (0 for RemoveNode when unknown). */
  readonly nodeId: NodeId;
  /** The application's context passed to `proposeConfChange`. */
  readonly context: Uint8Array;
}

/**
 * A committed entry handed to the state machine. The leader's empty no-op entries are not passed.
 * For a conf change the runtime has already applied it to Raft; `confState` is the new membership.
 */
export type CommittedEntry =
  | { readonly kind: 'normal'; readonly index: number; readonly term: number; readonly data: Uint8Array }
  | {
      readonly kind: 'confChange';
      readonly index: number;
      readonly term: number;
      readonly change: AppliedConfChange;
      readonly confState: ConfState;
    };

/** Write handle of one apply: everything put here becomes durable atomically with appliedIndex. */
export interface WriteBatch {
  put(key: Uint8Array, value: Uint8Array): void;
  del(key: Uint8Array): void;
}

export interface ApplyContext {
  readonly groupId: GroupId;
  /** Writes of this apply. They are NOT visible through `reader` until the batch is written. */
  readonly batch: WriteBatch;
  /** Reads the database as of the last completed write (previous applies of this group are visible). */
  readonly reader: KvReader;
  /** Replaces the group descriptor (key 0x02‖groupId‖0x04), atomically with this apply. */
  setDescriptor(descriptor: Uint8Array): void;
}

/** Writer used while installing a snapshot; writes are not atomic with each other. */
export interface SnapshotWriter {
  /** Deletes [gte, lt) (non-atomic; the runtime's durable install intent makes this safe). */
  clearRange(range: KvRange): Promise<void>;
  write(ops: readonly KvOp[]): Promise<void>;
}

/**
 * StateMachine is the seam between the runtime and an application (the KV shard state machine, the
 * placement driver). Contract:
 *
 * - All durable state lives in the process's one database, written through `ctx.batch` in
 *   `applyEntries`. The runtime writes the batch atomically with the new appliedIndex, so after a
 *   crash data and appliedIndex agree and no entry is applied twice.
 * - `applyEntries` is deterministic: every replica computes the same writes from the same entries.
 *   It returns one result per entry (same order); on the leader the result resolves the proposal.
 *   Entries of one call may depend on each other: the state machine overlays its own writes if it
 *   reads keys it wrote earlier in the same call.
 * - `snapshotChunks` reads ONLY through `view` (one explicit LSM snapshot that also holds the apply
 *   state) and yields chunks of at most `maxChunkBytes`.
 * - `installSnapshot` replaces all of the group's data with the chunks. It must be idempotent:
 *   after a crash in the middle the runtime runs it again, from the same chunks, at restart.
 * - `destroy` (optional) deletes all of the group's data when the replica is dropped from this
 *   process (`RaftHost.destroyGroup`). Like an install it runs behind a durable intent and must be
 *   idempotent: a restart after a crash calls it again on a fresh instance built from the same
 *   descriptor. A state machine without it leaves its data behind (the runtime logs a warning).
 */
export interface StateMachine<R = unknown> {
  applyEntries(entries: readonly CommittedEntry[], ctx: ApplyContext): readonly R[] | Promise<readonly R[]>;
  snapshotChunks(view: KvReader, maxChunkBytes: number): AsyncIterable<Uint8Array>;
  installSnapshot(chunks: AsyncIterable<Uint8Array>, writer: SnapshotWriter): Promise<void>;
  /** Optional: called after a snapshot was installed (rebuild in-memory caches from the database). */
  onSnapshotInstalled?(reader: KvReader): void | Promise<void>;
  /**
   * Optional: deletes the group's data (a KV shard clears `0x01‖start..0x01‖end` and its expiry
   * entries). Idempotent; see the contract above. `destroyRanges` is the helper for range state machines.
   */
  destroy?(writer: SnapshotWriter): Promise<void>;
}

/** Creates the state machine of a group when the host opens or creates it. */
export type StateMachineFactory = (groupId: GroupId, descriptor: Uint8Array | undefined) => StateMachine;

/*
 * Range helpers: most state machines keep their data in contiguous key ranges (a KV shard is ONE
 * range `0x01‖start .. 0x01‖end`; the PD keeps its tables under one prefix). These two functions
 * are the whole snapshot half of such a state machine.
 *
 * Chunk format: repeated (u32 keyLen | key | u32 valueLen | value).
 */

/** snapshotRanges streams every pair in `ranges` through `view`, in chunks of at most `maxChunkBytes`. */
export async function* snapshotRanges(
  view: KvReader,
  ranges: readonly KvRange[],
  maxChunkBytes: number,
): AsyncIterable<Uint8Array> {
  let parts: Uint8Array[] = [];
  let size = 0;
  for (const range of ranges) {
    for await (const [key, value] of view.iterate(range)) {
      const pairBytes = 8 + key.length + value.length;
      if (pairBytes > maxChunkBytes) {
        throw new RuntimeError('TOO_LARGE', `snapshot pair of ${pairBytes} bytes exceeds chunk limit ${maxChunkBytes}`);
      }
      if (size + pairBytes > maxChunkBytes) {
        yield Buffer.concat(parts, size);
        parts = [];
        size = 0;
      }
      const header = new Uint8Array(4);
      new DataView(header.buffer).setUint32(0, key.length);
      const vheader = new Uint8Array(4);
      new DataView(vheader.buffer).setUint32(0, value.length);
      parts.push(header, key, vheader, value);
      size += pairBytes;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

/** decodeSnapshotChunk yields the pairs of one chunk written by `snapshotRanges`. */
export function* decodeSnapshotChunk(chunk: Uint8Array): Iterable<readonly [Uint8Array, Uint8Array]> {
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let pos = 0;
  while (pos < chunk.length) {
    const kl = view.getUint32(pos);
    const key = chunk.subarray(pos + 4, pos + 4 + kl);
    pos += 4 + kl;
    const vl = view.getUint32(pos);
    const value = chunk.subarray(pos + 4, pos + 4 + vl);
    pos += 4 + vl;
    yield [key, value];
  }
}

/** destroyRanges clears `ranges` (idempotent): the whole `destroy` of a range state machine. */
export async function destroyRanges(writer: SnapshotWriter, ranges: readonly KvRange[]): Promise<void> {
  for (const range of ranges) await writer.clearRange(range);
}

/** installRanges clears `ranges` and writes the pairs of `chunks` (idempotent). */
export async function installRanges(
  chunks: AsyncIterable<Uint8Array>,
  writer: SnapshotWriter,
  ranges: readonly KvRange[],
): Promise<void> {
  for (const range of ranges) await writer.clearRange(range);
  for await (const chunk of chunks) {
    const ops: KvOp[] = [];
    for (const [key, value] of decodeSnapshotChunk(chunk)) ops.push({ type: 'put', key, value });
    await writer.write(ops);
  }
}
