import type { Entry } from './types.js';

/** entrySize is the byte size counted against maxSizePerMsg / maxBytes limits. */
export function entrySize(e: Entry): number {
  return e.data.length + 16;
}

/** limitSize returns the longest prefix of `ents` within `maxBytes`, but always at least one entry. */
export function limitSize<T extends Entry>(ents: T[], maxBytes: number): T[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0] as T);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n] as T);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
