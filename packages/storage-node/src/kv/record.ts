import { readU64, writeU64 } from './keys.js';

/**
 * ValueRecord is what a data key maps to. `expireAtMs` is an absolute time (ms since the epoch, on
 * the clock of the leader that proposed the write); 0 means no expiry. `modIndex` is the Raft index
 * of the last write to the key.
 */
export interface ValueRecord {
  readonly value: Buffer;
  readonly expireAtMs: number;
  readonly modIndex: number;
}

/*
 * Encoding (compact, versioned by the tag byte):
 *   tag 0x01: 0x01 ‖ modIndex(u64 BE) ‖ value                      (no expiry; 9 bytes overhead)
 *   tag 0x02: 0x02 ‖ modIndex(u64 BE) ‖ expireAtMs(u64 BE) ‖ value  (17 bytes overhead)
 */
const TAG_PLAIN = 0x01;
const TAG_EXPIRING = 0x02;

export function encodeRecord(record: ValueRecord): Buffer {
  const expiring = record.expireAtMs > 0;
  const header = expiring ? 17 : 9;
  const buf = Buffer.allocUnsafe(header + record.value.length);
  buf[0] = expiring ? TAG_EXPIRING : TAG_PLAIN;
  writeU64(buf, 1, record.modIndex);
  if (expiring) writeU64(buf, 9, record.expireAtMs);
  buf.set(record.value, header);
  return buf;
}

/** Inverse of `encodeRecord`. The returned value shares memory with `bytes`. */
export function decodeRecord(bytes: Uint8Array): ValueRecord {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = buf[0];
  if (tag === TAG_PLAIN && buf.length >= 9) {
    return { value: buf.subarray(9), expireAtMs: 0, modIndex: readU64(buf, 1) };
  }
  if (tag === TAG_EXPIRING && buf.length >= 17) {
    return { value: buf.subarray(17), expireAtMs: readU64(buf, 9), modIndex: readU64(buf, 1) };
  }
  throw new RangeError(`corrupt value record (tag ${tag}, ${buf.length} bytes)`);
}

/** True when the record is logically absent at `nowMs` (expireAtMs <= now). */
export function isExpired(record: ValueRecord, nowMs: number): boolean {
  return record.expireAtMs !== 0 && record.expireAtMs <= nowMs;
}
