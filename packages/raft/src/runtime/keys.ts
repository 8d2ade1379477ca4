import type { GroupId } from './types.js';

/*
 * On-disk key layout (DESIGN.md "Storage: one LSM per node"). All integers big-endian so byte order
 * is numeric order.
 *
 *   0x01 ‖ pos(u32) ‖ userKey                 KV data (owned by the KV state machine, not the runtime)
 *   0x02 ‖ groupId(u64) ‖ 0x01 ‖ index(u64)   Raft log entry
 *   0x02 ‖ groupId ‖ 0x02                     hard state {term, vote, commit}
 *   0x02 ‖ groupId ‖ 0x03                     apply state {appliedIndex, truncatedIndex, truncatedTerm, ...}
 *   0x02 ‖ groupId ‖ 0x04                     group descriptor (opaque bytes from the application)
 *   0x02 ‖ groupId ‖ 0x05 ‖ seq(u32)          staged snapshot chunk (received, not yet installed)
 *   0x02 ‖ groupId ‖ 0x06                     intent record (snapshot install / replica destroy in progress)
 *   0x02 ‖ groupId ‖ 0x07                     tombstone: replica ids of this group destroyed here (never recreated)
 */
export const RAFT_PREFIX = 0x02;
const SUFFIX_ENTRY = 0x01;
const SUFFIX_HARD_STATE = 0x02;
const SUFFIX_APPLY_STATE = 0x03;
const SUFFIX_DESCRIPTOR = 0x04;
const SUFFIX_STAGED_CHUNK = 0x05;
const SUFFIX_INTENT = 0x06;
const SUFFIX_TOMBSTONE = 0x07;

export const KeySuffix = {
  Entry: SUFFIX_ENTRY,
  HardState: SUFFIX_HARD_STATE,
  ApplyState: SUFFIX_APPLY_STATE,
  Descriptor: SUFFIX_DESCRIPTOR,
  StagedChunk: SUFFIX_STAGED_CHUNK,
  Intent: SUFFIX_INTENT,
  Tombstone: SUFFIX_TOMBSTONE,
} as const;

/** Big-endian u32 at `offset` (byte arithmetic: no DataView per call on these hot paths). */
export function writeU32(buf: Uint8Array, offset: number, n: number): void {
  buf[offset] = n >>> 24;
  buf[offset + 1] = n >>> 16;
  buf[offset + 2] = n >>> 8;
  buf[offset + 3] = n;
}

export function readU32(buf: Uint8Array, offset: number): number {
  return (
    (buf[offset] as number) * 0x100_0000 +
    (((buf[offset + 1] as number) << 16) | ((buf[offset + 2] as number) << 8) | (buf[offset + 3] as number))
  );
}

/** Big-endian u64 of a safe integer at `offset`. */
export function writeU64(buf: Uint8Array, offset: number, n: number): void {
  writeU32(buf, offset, Math.floor(n / 0x1_0000_0000));
  writeU32(buf, offset + 4, n >>> 0);
}

export function readU64(buf: Uint8Array, offset: number): number {
  return readU32(buf, offset) * 0x1_0000_0000 + readU32(buf, offset + 4);
}

function groupKey(groupId: GroupId, suffix: number, extraBytes: number): Uint8Array {
  const key = new Uint8Array(10 + extraBytes);
  key[0] = RAFT_PREFIX;
  writeU64(key, 1, groupId);
  key[9] = suffix;
  return key;
}

export function entryKey(groupId: GroupId, index: number): Uint8Array {
  const key = groupKey(groupId, SUFFIX_ENTRY, 8);
  writeU64(key, 10, index);
  return key;
}

export function hardStateKey(groupId: GroupId): Uint8Array {
  return groupKey(groupId, SUFFIX_HARD_STATE, 0);
}

export function applyStateKey(groupId: GroupId): Uint8Array {
  return groupKey(groupId, SUFFIX_APPLY_STATE, 0);
}

export function descriptorKey(groupId: GroupId): Uint8Array {
  return groupKey(groupId, SUFFIX_DESCRIPTOR, 0);
}

export function stagedChunkKey(groupId: GroupId, seq: number): Uint8Array {
  const key = groupKey(groupId, SUFFIX_STAGED_CHUNK, 4);
  writeU32(key, 10, seq);
  return key;
}

export function intentKey(groupId: GroupId): Uint8Array {
  return groupKey(groupId, SUFFIX_INTENT, 0);
}

export function tombstoneKey(groupId: GroupId): Uint8Array {
  return groupKey(groupId, SUFFIX_TOMBSTONE, 0);
}

/**
 * The replica state a destroy deletes: log, hard state, apply state, descriptor and staged chunks
 * [0x02‖groupId‖0x01, 0x02‖groupId‖0x06) — everything but the intent and the tombstone.
 */
export function replicaStateRange(groupId: GroupId): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: groupKey(groupId, SUFFIX_ENTRY, 0), lt: groupKey(groupId, SUFFIX_INTENT, 0) };
}

/** Every runtime key of one group: [0x02‖groupId, 0x02‖groupId+1). */
export function groupRange(groupId: GroupId): { gte: Uint8Array; lt: Uint8Array } {
  const gte = new Uint8Array(9);
  gte[0] = RAFT_PREFIX;
  writeU64(gte, 1, groupId);
  const lt = new Uint8Array(9);
  lt[0] = RAFT_PREFIX;
  writeU64(lt, 1, groupId + 1);
  return { gte, lt };
}

export function stagedChunkRange(groupId: GroupId): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: groupKey(groupId, SUFFIX_STAGED_CHUNK, 0), lt: groupKey(groupId, SUFFIX_STAGED_CHUNK + 1, 0) };
}

export function entryRange(groupId: GroupId): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: groupKey(groupId, SUFFIX_ENTRY, 0), lt: groupKey(groupId, SUFFIX_ENTRY + 1, 0) };
}

/** The whole Raft key space [0x02, 0x03). */
export const ALL_GROUPS_RANGE = { gte: Uint8Array.of(RAFT_PREFIX), lt: Uint8Array.of(RAFT_PREFIX + 1) };

/** Parses a runtime key: group id, suffix, and (for entries) the index. */
export function parseGroupKey(key: Uint8Array): { groupId: GroupId; suffix: number; index: number } | undefined {
  if (key.length < 10 || key[0] !== RAFT_PREFIX) return undefined;
  const groupId = readU64(key, 1);
  const suffix = key[9] as number;
  const index = suffix === SUFFIX_ENTRY && key.length === 18 ? readU64(key, 10) : 0;
  return { groupId, suffix, index };
}
