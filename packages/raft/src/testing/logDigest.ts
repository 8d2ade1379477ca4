import type { Entry } from '../core/types.js';

/*
 * A log digest is a 32-bit hash chain over a log prefix: digest(i) = mix(digest(i-1), entry i).
 * Two logs with the same digest at index i hold the same entries 1..i (up to hash collisions,
 * which can only hide a bug, never invent one). The simulated state machine IS this digest, so a
 * snapshot carries the digest at its index and state-machine safety reduces to comparing numbers.
 */

/** digestEntry extends the chain `prev` with entry `e` (its term, type and data; index is implied). */
export function digestEntry(prev: number, e: Entry): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  h = Math.imul(h ^ e.term, 0x01000193);
  h = Math.imul(h ^ (e.type + 1), 0x01000193);
  const d = e.data;
  for (let i = 0; i < d.length; i++) h = Math.imul(h ^ (d[i] as number), 0x01000193);
  h = Math.imul(h ^ d.length, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** Digest of the bootstrap state (the log before any entry). */
export const EMPTY_DIGEST = 0;

/** encodeSnapshotData stores the simulated state machine (applied index and digest) in a snapshot. */
export function encodeSnapshotData(index: number, digest: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(index / 2 ** 32));
  view.setUint32(4, index >>> 0);
  view.setUint32(8, digest >>> 0);
  return out;
}

/** decodeSnapshotData is the inverse of encodeSnapshotData; an empty snapshot is the bootstrap state. */
export function decodeSnapshotData(data: Uint8Array): { index: number; digest: number } {
  if (data.length === 0) return { index: 0, digest: EMPTY_DIGEST };
  if (data.length !== 12) throw new Error(`simulated snapshot data has ${data.length} bytes, want 12`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { index: view.getUint32(0) * 2 ** 32 + view.getUint32(4), digest: view.getUint32(8) };
}
