import { OmniError } from '@omnidict/proto';

/** Keys and values may be given as UTF-8 strings or raw bytes; results are always Buffers. */
export type Bytes = string | Uint8Array;

/** Largest key the cluster accepts (DESIGN.md "Errors"); checked before anything is sent. */
export const MAX_KEY_BYTES = 4096;

export function toBuffer(b: Bytes): Buffer {
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * toKey converts a key and enforces the key limits client-side, so a malformed key fails fast with
 * INVALID_ARGUMENT (empty) or TOO_LARGE (over 4 KiB) without a network round trip.
 */
export function toKey(key: Bytes): Buffer {
  const buf = toBuffer(key);
  if (buf.length === 0) throw new OmniError('INVALID_ARGUMENT', 'key must not be empty');
  if (buf.length > MAX_KEY_BYTES) {
    throw new OmniError('TOO_LARGE', `key is ${buf.length} bytes; the limit is ${MAX_KEY_BYTES}`);
  }
  return buf;
}

/** Rejects a negative, fractional or non-finite millisecond count. */
export function checkMs(name: string, ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new OmniError('INVALID_ARGUMENT', `${name} must be a non-negative integer number of ms, got ${ms}`);
  }
  return ms;
}
