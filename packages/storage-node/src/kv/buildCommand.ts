import { type nodepb, OmniError } from '@omnidict/proto';
import type { CasExpectation, KvCommand } from './commands.js';
import { MAX_EXPIRE_AT_MS } from './keys.js';

/** Size limits enforced before anything is proposed (DESIGN.md "Errors"). */
export interface KvLimits {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
}

export const MAX_KEY_BYTES = 4096;
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
export const DEFAULT_LIMITS: KvLimits = { maxKeyBytes: MAX_KEY_BYTES, maxValueBytes: DEFAULT_MAX_VALUE_BYTES };

/** Empty key → INVALID_ARGUMENT; key over the limit → TOO_LARGE. */
export function validateKey(key: Uint8Array, limits: KvLimits = DEFAULT_LIMITS): void {
  if (key.length === 0) throw new OmniError('INVALID_ARGUMENT', 'key must not be empty');
  if (key.length > limits.maxKeyBytes) {
    throw new OmniError('TOO_LARGE', `key is ${key.length} bytes; the limit is ${limits.maxKeyBytes} bytes`);
  }
}

/** Value over the limit → TOO_LARGE. Empty values are allowed. */
export function validateValue(value: Uint8Array, limits: KvLimits = DEFAULT_LIMITS): void {
  if (value.length > limits.maxValueBytes) {
    throw new OmniError('TOO_LARGE', `value is ${value.length} bytes; the limit is ${limits.maxValueBytes} bytes`);
  }
}

/**
 * Absolute expiry for a TTL, computed by the LEADER at proposal time: 0 when ttlMs is 0 (no
 * expiry), else nowMs + ttlMs. A TTL so large the time would not be exact → INVALID_ARGUMENT.
 */
export function expireAtFromTtl(ttlMs: number, nowMs: number): number {
  if (ttlMs === 0) return 0;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0 || nowMs + ttlMs > MAX_EXPIRE_AT_MS) {
    throw new OmniError('INVALID_ARGUMENT', `ttl ${ttlMs} ms is out of range`);
  }
  return nowMs + ttlMs;
}

/** The write operations of a node request. */
export type WriteOp = Extract<
  NonNullable<nodepb.NodeRequest['op']>,
  { $case: 'put' | 'delete' | 'update' | 'expire' | 'persist' | 'cas' | 'deleteRange' }
>;

export function isWriteOp(op: nodepb.NodeRequest['op']): op is WriteOp {
  switch (op?.$case) {
    case 'put':
    case 'delete':
    case 'update':
    case 'expire':
    case 'persist':
    case 'cas':
    case 'deleteRange':
      return true;
    default:
      return false;
  }
}

/**
 * Validates a write request and turns it into the command the leader proposes, fixing time:
 * `nowMs` is the leader's clock and every TTL becomes an absolute expireAtMs. Throws OmniError
 * (INVALID_ARGUMENT / TOO_LARGE) before anything is proposed.
 */
export function buildWriteCommand(op: WriteOp, nowMs: number, limits: KvLimits = DEFAULT_LIMITS): KvCommand {
  switch (op.$case) {
    case 'put': {
      const { key, value, ttlMs } = op.value;
      validateKey(key, limits);
      validateValue(value, limits);
      return { type: 'put', nowMs, key, value, expireAtMs: expireAtFromTtl(ttlMs, nowMs) };
    }
    case 'update': {
      const { key, value, ttlMs, keepTtl } = op.value;
      validateKey(key, limits);
      validateValue(value, limits);
      if (keepTtl && ttlMs !== 0) throw new OmniError('INVALID_ARGUMENT', 'update: keep_ttl and ttl_ms are exclusive');
      return { type: 'update', nowMs, key, value, expireAtMs: expireAtFromTtl(ttlMs, nowMs), keepTtl };
    }
    case 'delete':
      validateKey(op.value.key, limits);
      return { type: 'delete', nowMs, key: op.value.key };
    case 'expire': {
      validateKey(op.value.key, limits);
      // ttl 0 expires the key now (Redis EXPIRE key 0 deletes it).
      const expireAtMs = op.value.ttlMs === 0 ? nowMs : expireAtFromTtl(op.value.ttlMs, nowMs);
      return { type: 'expire', nowMs, key: op.value.key, expireAtMs: Math.max(expireAtMs, 1) };
    }
    case 'persist':
      validateKey(op.value.key, limits);
      return { type: 'persist', nowMs, key: op.value.key };
    case 'cas': {
      const { key, value, ttlMs, expected } = op.value;
      validateKey(key, limits);
      validateValue(value, limits);
      let expectation: CasExpectation;
      switch (expected?.$case) {
        case 'expectedModIndex':
          expectation = { kind: 'modIndex', modIndex: expected.value };
          break;
        case 'expectedValue':
          validateValue(expected.value, limits);
          expectation = { kind: 'value', value: expected.value };
          break;
        case 'expectAbsent':
          if (!expected.value) throw new OmniError('INVALID_ARGUMENT', 'compare-and-swap: expect_absent must be true');
          expectation = { kind: 'absent' };
          break;
        default:
          throw new OmniError(
            'INVALID_ARGUMENT',
            'compare-and-swap needs one of expected_mod_index, expected_value, expect_absent',
          );
      }
      return { type: 'cas', nowMs, key, expected: expectation, value, expireAtMs: expireAtFromTtl(ttlMs, nowMs) };
    }
    case 'deleteRange':
      return { type: 'deleteRange', nowMs };
  }
}
