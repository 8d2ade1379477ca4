import { OmniError } from '@omnidict/proto';

/** Largest key, in bytes (DESIGN.md, "Errors"). */
export const MAX_KEY_BYTES = 4096;
/** Default largest value, in bytes; configurable with --max-value-bytes. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/** validateKey: empty → INVALID_ARGUMENT; over MAX_KEY_BYTES → TOO_LARGE. */
export function validateKey(key: Uint8Array): void {
  if (key.length === 0) throw new OmniError('INVALID_ARGUMENT', 'key must not be empty');
  if (key.length > MAX_KEY_BYTES) {
    throw new OmniError('TOO_LARGE', `key is ${key.length} bytes; the limit is ${MAX_KEY_BYTES}`);
  }
}

/** validateValue: over `maxValueBytes` → TOO_LARGE. */
export function validateValue(value: Uint8Array, maxValueBytes: number): void {
  if (value.length > maxValueBytes) {
    throw new OmniError('TOO_LARGE', `value is ${value.length} bytes; the limit is ${maxValueBytes}`);
  }
}
