import murmurhash from 'murmurhash';

/**
 * The ring: every key has a position in [0, 2^32), the 32-bit MurmurHash3 (x86_32, seed 0) of its
 * bytes. Shards own half-open ranges of positions. This function is part of the on-disk format
 * (data keys are ordered by position) and of routing, so every component calls this one.
 */
export const RING_SIZE = 2 ** 32;

const encoder = new TextEncoder();

/** Ring position of a key: murmur3_x86_32(key bytes, seed 0), an unsigned 32-bit integer. */
export function ringPosition(key: Uint8Array | string): number {
  const bytes = typeof key === 'string' ? encoder.encode(key) : key;
  return murmurhash.v3(bytes, 0);
}

/** murmur3_x86_32 with an explicit seed; exported only so tests can check published vectors. */
export function murmur3(bytes: Uint8Array, seed: number): number {
  return murmurhash.v3(bytes, seed);
}

/** Cuts the ring into `count` contiguous ranges of (almost) equal size that tile [0, 2^32). */
export function evenRanges(count: number): Array<{ start: number; end: number }> {
  if (!Number.isInteger(count) || count < 1 || count > 65536) {
    throw new RangeError(`shard count must be an integer in [1, 65536], got ${count}`);
  }
  const ranges: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < count; i++) {
    ranges.push({ start: Math.floor((RING_SIZE * i) / count), end: Math.floor((RING_SIZE * (i + 1)) / count) });
  }
  return ranges;
}
