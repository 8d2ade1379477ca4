import { OmniError } from '@omnidict/proto';
import { buildWriteCommand, isWriteOp, type WriteOp } from '../../src/index.js';
import { b } from '../helpers.js';

const NOW = 1_700_000_000_000;

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof OmniError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an OmniError');
}

const putOp = (key: Buffer, value: Buffer, ttlMs = 0): WriteOp => ({ $case: 'put', value: { key, value, ttlMs } });

describe('buildWriteCommand', () => {
  test('the leader turns TTLs into absolute expiry times', () => {
    expect(buildWriteCommand(putOp(b('k'), b('v'), 1500), NOW)).toEqual({
      type: 'put',
      nowMs: NOW,
      key: b('k'),
      value: b('v'),
      expireAtMs: NOW + 1500,
    });
    expect(buildWriteCommand(putOp(b('k'), b('v')), NOW)).toMatchObject({ expireAtMs: 0 });
    expect(buildWriteCommand({ $case: 'expire', value: { key: b('k'), ttlMs: 0 } }, NOW)).toMatchObject({
      type: 'expire',
      expireAtMs: NOW,
    });
    expect(
      buildWriteCommand(
        {
          $case: 'cas',
          value: { key: b('k'), value: b('v'), ttlMs: 10, expected: { $case: 'expectAbsent', value: true } },
        },
        NOW,
      ),
    ).toMatchObject({ type: 'cas', expected: { kind: 'absent' }, expireAtMs: NOW + 10 });
  });

  test('empty key is INVALID_ARGUMENT, oversized key or value TOO_LARGE, with clear messages', () => {
    expect(codeOf(() => buildWriteCommand(putOp(b(''), b('v')), NOW))).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'key must not be empty',
    });
    expect(codeOf(() => buildWriteCommand(putOp(Buffer.alloc(4097), b('v')), NOW))).toEqual({
      code: 'TOO_LARGE',
      message: 'key is 4097 bytes; the limit is 4096 bytes',
    });
    expect(buildWriteCommand(putOp(Buffer.alloc(4096, 1), Buffer.alloc(1024 * 1024)), NOW).type).toBe('put');
    expect(codeOf(() => buildWriteCommand(putOp(b('k'), Buffer.alloc(1024 * 1024 + 1)), NOW))).toEqual({
      code: 'TOO_LARGE',
      message: 'value is 1048577 bytes; the limit is 1048576 bytes',
    });
    expect(
      codeOf(() => buildWriteCommand(putOp(b('k'), Buffer.alloc(11)), NOW, { maxKeyBytes: 4096, maxValueBytes: 10 }))
        .code,
    ).toBe('TOO_LARGE');
    expect(codeOf(() => buildWriteCommand({ $case: 'delete', value: { key: b('') } }, NOW)).code).toBe(
      'INVALID_ARGUMENT',
    );
  });

  test('a CAS without an expectation, or with expect_absent false, is INVALID_ARGUMENT', () => {
    expect(
      codeOf(() =>
        buildWriteCommand({ $case: 'cas', value: { key: b('k'), value: b('v'), ttlMs: 0, expected: undefined } }, NOW),
      ).code,
    ).toBe('INVALID_ARGUMENT');
    expect(
      codeOf(() =>
        buildWriteCommand(
          {
            $case: 'cas',
            value: { key: b('k'), value: b('v'), ttlMs: 0, expected: { $case: 'expectAbsent', value: false } },
          },
          NOW,
        ),
      ).code,
    ).toBe('INVALID_ARGUMENT');
  });

  test('update with both keep_ttl and a ttl is INVALID_ARGUMENT; absurd TTLs are rejected', () => {
    expect(
      codeOf(() =>
        buildWriteCommand({ $case: 'update', value: { key: b('k'), value: b('v'), ttlMs: 5, keepTtl: true } }, NOW),
      ).code,
    ).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => buildWriteCommand(putOp(b('k'), b('v'), 2 ** 53), NOW)).message).toMatch(/out of range/);
  });

  test('isWriteOp tells writes from reads', () => {
    expect(isWriteOp({ $case: 'deleteRange', value: {} })).toBe(true);
    expect(isWriteOp({ $case: 'get', value: { key: b('k'), stale: false } })).toBe(false);
    expect(isWriteOp(undefined)).toBe(false);
  });
});
