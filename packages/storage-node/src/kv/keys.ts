/*
 * Key codec for the KV key spaces of the node's one LSM (DESIGN.md "Storage: one LSM per node").
 * All integers are big-endian so that byte order is numeric order:
 *
 *   0x01 ‖ pos(u32) ‖ userKey                     data → value record (record.ts)
 *   0x05 ‖ expireAtMs(u64) ‖ pos(u32) ‖ userKey   expiry index → empty value
 *
 * Data is ordered by ring position, so a shard owning positions [start, end) owns exactly the
 * contiguous key range [0x01‖start, 0x01‖end); end = 2^32 maps to the prefix upper bound 0x02.
 * The Raft key space (0x02…) belongs to the runtime (packages/raft/src/runtime/keys.ts).
 */

export const DATA_PREFIX = 0x01;
export const EXPIRY_PREFIX = 0x05;

/** One past the last ring position. */
export const RING_END = 0x1_0000_0000;

/** Largest expireAtMs we accept: JS numbers are exact up to 2^53. */
export const MAX_EXPIRE_AT_MS = Number.MAX_SAFE_INTEGER;

/** Half-open byte range [gte, lt). */
export interface KeyRange {
  readonly gte: Uint8Array;
  readonly lt: Uint8Array;
}

export function writeU32(buf: Uint8Array, offset: number, n: number): void {
  buf[offset] = (n >>> 24) & 0xff;
  buf[offset + 1] = (n >>> 16) & 0xff;
  buf[offset + 2] = (n >>> 8) & 0xff;
  buf[offset + 3] = n & 0xff;
}

export function readU32(buf: Uint8Array, offset: number): number {
  return (
    ((buf[offset] as number) * 0x100_0000 +
      (((buf[offset + 1] as number) << 16) | ((buf[offset + 2] as number) << 8) | (buf[offset + 3] as number))) >>>
    0
  );
}

/** Writes a non-negative safe integer as u64 BE. */
export function writeU64(buf: Uint8Array, offset: number, n: number): void {
  writeU32(buf, offset, Math.floor(n / RING_END));
  writeU32(buf, offset + 4, n >>> 0);
}

export function readU64(buf: Uint8Array, offset: number): number {
  return readU32(buf, offset) * RING_END + readU32(buf, offset + 4);
}

/** `0x01 ‖ pos ‖ userKey`. */
export function dataKey(pos: number, userKey: Uint8Array): Buffer {
  const key = Buffer.allocUnsafe(5 + userKey.length);
  key[0] = DATA_PREFIX;
  writeU32(key, 1, pos);
  key.set(userKey, 5);
  return key;
}

export interface DecodedDataKey {
  readonly pos: number;
  readonly userKey: Buffer;
}

/** Inverse of `dataKey`; throws on a key from another key space. */
export function decodeDataKey(key: Uint8Array): DecodedDataKey {
  if (key.length < 5 || key[0] !== DATA_PREFIX) throw new RangeError('not a data key');
  const buf = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return { pos: readU32(buf, 1), userKey: buf.subarray(5) };
}

/** Smallest data key at ring position `pos` (pos may be 2^32: the end of the data key space). */
export function dataKeyLowerBound(pos: number): Buffer {
  if (pos >= RING_END) return Buffer.of(DATA_PREFIX + 1);
  const key = Buffer.allocUnsafe(5);
  key[0] = DATA_PREFIX;
  writeU32(key, 1, pos);
  return key;
}

/** The data keys of ring positions [start, end): one contiguous LSM range. */
export function dataRange(start: number, end: number): KeyRange {
  return { gte: dataKeyLowerBound(start), lt: dataKeyLowerBound(end) };
}

/** `0x05 ‖ expireAtMs ‖ pos ‖ userKey`. */
export function expiryKey(expireAtMs: number, pos: number, userKey: Uint8Array): Buffer {
  const key = Buffer.allocUnsafe(13 + userKey.length);
  key[0] = EXPIRY_PREFIX;
  writeU64(key, 1, expireAtMs);
  writeU32(key, 9, pos);
  key.set(userKey, 13);
  return key;
}

export interface DecodedExpiryKey {
  readonly expireAtMs: number;
  readonly pos: number;
  readonly userKey: Buffer;
}

export function decodeExpiryKey(key: Uint8Array): DecodedExpiryKey {
  if (key.length < 13 || key[0] !== EXPIRY_PREFIX) throw new RangeError('not an expiry index key');
  const buf = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return { expireAtMs: readU64(buf, 1), pos: readU32(buf, 9), userKey: buf.subarray(13) };
}

/** Expiry index entries with expireAtMs <= nowMs (of every shard on the node). */
export function expiredRange(nowMs: number): KeyRange {
  const lt = Buffer.allocUnsafe(9);
  lt[0] = EXPIRY_PREFIX;
  writeU64(lt, 1, nowMs + 1);
  return { gte: Buffer.of(EXPIRY_PREFIX), lt };
}

/** The whole expiry index. */
export const EXPIRY_RANGE: KeyRange = { gte: Buffer.of(EXPIRY_PREFIX), lt: Buffer.of(EXPIRY_PREFIX + 1) };
