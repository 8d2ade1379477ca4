import type { kv } from '@omnidict/proto';
import { OmniError } from '@omnidict/proto';
import { type Bytes, checkMs, toBuffer, toKey } from './bytes.js';

/** Options every call accepts. */
export interface CallOptions {
  /** Deadline for this call (all retries included); defaults to the client's `defaultTimeoutMs`. */
  timeoutMs?: number;
}

export interface PutOptions extends CallOptions {
  /** Time to live in ms; omitted or 0 = no expiry. */
  ttlMs?: number;
}

export interface UpdateOptions extends PutOptions {
  /** Keep the key's current expiry instead of clearing it. */
  keepTtl?: boolean;
}

export interface ReadOptions extends CallOptions {
  /** Allow a possibly stale read served by any replica. */
  stale?: boolean;
}

/** A stored value as `get` returns it. `expireAtMs` is 0 when the key has no expiry. */
export interface GetResult {
  value: Buffer;
  modIndex: number;
  expireAtMs: number;
}

/** A key with its value as `scan`, `batchGet` and a failed `cas` return it. */
export interface Entry extends GetResult {
  key: Buffer;
}

export interface WriteResult {
  /** Raft index the write committed at, usable as `expectedModIndex` in `cas`. */
  modIndex: number;
}

/** Exactly one expectation of a compare-and-swap. */
export type CasExpectation = { expectedModIndex: number } | { expectedValue: Bytes } | { expectAbsent: true };

export interface CasResult {
  swapped: boolean;
  /** The new mod index when swapped. */
  modIndex: number;
  /** The key's current entry when the swap failed; null when the key does not exist. */
  current: Entry | null;
}

export function putRequest(key: Bytes, value: Bytes, opts: PutOptions): kv.PutRequest {
  return { key: toKey(key), value: toBuffer(value), ttlMs: checkMs('ttlMs', opts.ttlMs ?? 0) };
}

export function updateRequest(key: Bytes, value: Bytes, opts: UpdateOptions): kv.UpdateRequest {
  return { ...putRequest(key, value, opts), keepTtl: opts.keepTtl ?? false };
}

export function casRequest(
  key: Bytes,
  expect: CasExpectation,
  value: Bytes,
  opts: PutOptions,
): kv.CompareAndSwapRequest {
  const req: kv.CompareAndSwapRequest = {
    key: toKey(key),
    value: toBuffer(value),
    ttlMs: checkMs('ttlMs', opts.ttlMs ?? 0),
  };
  const given = ['expectedModIndex', 'expectedValue', 'expectAbsent'].filter((k) => k in expect);
  if (given.length !== 1) {
    throw new OmniError('INVALID_ARGUMENT', 'cas needs exactly one of expectedModIndex, expectedValue or expectAbsent');
  }
  if ('expectedModIndex' in expect) {
    req.expected = { $case: 'expectedModIndex', value: checkMs('expectedModIndex', expect.expectedModIndex) };
  } else if ('expectedValue' in expect) {
    req.expected = { $case: 'expectedValue', value: toBuffer(expect.expectedValue) };
  } else {
    req.expected = { $case: 'expectAbsent', value: true };
  }
  return req;
}

export function toEntry(pb: kv.KeyValue): Entry {
  return { key: pb.key, value: pb.value, modIndex: pb.modIndex, expireAtMs: pb.expireAtMs };
}

export function toGetResult(res: kv.GetResponse): GetResult | null {
  if (!res.found || !res.kv) return null;
  return { value: res.kv.value, modIndex: res.kv.modIndex, expireAtMs: res.kv.expireAtMs };
}

export function toCasResult(res: kv.CompareAndSwapResponse): CasResult {
  return { swapped: res.swapped, modIndex: res.modIndex, current: res.current ? toEntry(res.current) : null };
}
