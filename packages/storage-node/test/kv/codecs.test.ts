import { ringPosition } from '@omnidict/proto';
import {
  DATA_PREFIX,
  dataKey,
  dataRange,
  decodeCommand,
  decodeDataKey,
  decodeExpiryKey,
  decodeRecord,
  encodeCommand,
  encodeRecord,
  expiredRange,
  expiryKey,
  type KvCommand,
} from '../../src/index.js';
import { b } from '../helpers.js';

const cmp = (x: Uint8Array, y: Uint8Array) => Buffer.compare(Buffer.from(x), Buffer.from(y));

describe('key codec', () => {
  test('data keys round-trip and order by (position, key)', () => {
    const k = dataKey(0xdeadbeef, b('hello'));
    expect(k[0]).toBe(DATA_PREFIX);
    expect(decodeDataKey(k)).toEqual({ pos: 0xdeadbeef, userKey: b('hello') });
    expect(cmp(dataKey(1, b('zzz')), dataKey(2, b('a')))).toBeLessThan(0);
    expect(cmp(dataKey(7, b('a')), dataKey(7, b('ab')))).toBeLessThan(0);
    expect(cmp(dataKey(0xffffffff, b('x')), dataKey(0x7fffffff, b('x')))).toBeGreaterThan(0);
  });

  test('a shard range holds exactly the keys whose position is in [start, end), end = 2^32 included', () => {
    const inRange = (r: { gte: Uint8Array; lt: Uint8Array }, k: Uint8Array) => cmp(k, r.gte) >= 0 && cmp(k, r.lt) < 0;
    const r = dataRange(100, 200);
    expect(inRange(r, dataKey(100, b('')))).toBe(true);
    expect(inRange(r, dataKey(199, b('\xff\xff')))).toBe(true);
    expect(inRange(r, dataKey(200, b('')))).toBe(false);
    expect(inRange(r, dataKey(99, b('\xff')))).toBe(false);
    const top = dataRange(0xffff0000, 2 ** 32);
    expect(inRange(top, dataKey(0xffffffff, Buffer.alloc(4096, 0xff)))).toBe(true);
    expect(inRange(top, Buffer.of(0x02, 0, 0))).toBe(false);
    const all = dataRange(0, 2 ** 32);
    expect(inRange(all, dataKey(0, b('')))).toBe(true);
  });

  test('expiry keys round-trip, order by time, and expiredRange includes exactly <= now', () => {
    const k = expiryKey(1_700_000_000_123, 42, b('k'));
    expect(decodeExpiryKey(k)).toEqual({ expireAtMs: 1_700_000_000_123, pos: 42, userKey: b('k') });
    expect(cmp(expiryKey(5, 0xffffffff, b('z')), expiryKey(6, 0, b('a')))).toBeLessThan(0);
    const r = expiredRange(1000);
    expect(cmp(expiryKey(1000, 0xffffffff, Buffer.alloc(10, 0xff)), r.lt)).toBeLessThan(0);
    expect(cmp(expiryKey(1001, 0, b('')), r.lt)).toBeGreaterThanOrEqual(0);
    // Times beyond 2^32 ms keep their order (u64 big-endian).
    expect(cmp(expiryKey(2 ** 33, 0, b('')), expiryKey(2 ** 33 + 1, 0, b('')))).toBeLessThan(0);
  });

  test('decoders reject other key spaces', () => {
    expect(() => decodeDataKey(Buffer.of(0x02, 0, 0, 0, 0))).toThrow(RangeError);
    expect(() => decodeExpiryKey(dataKey(1, b('x')))).toThrow(RangeError);
  });
});

describe('value record codec', () => {
  test.each([
    { value: b('v'), expireAtMs: 0, modIndex: 1 },
    { value: Buffer.alloc(0), expireAtMs: 0, modIndex: 2 ** 40 + 3 },
    { value: b('with ttl'), expireAtMs: 1_700_000_000_000, modIndex: 99 },
    { value: Buffer.alloc(20_000, 7), expireAtMs: Number.MAX_SAFE_INTEGER, modIndex: Number.MAX_SAFE_INTEGER },
  ])('round-trips %#', (record) => {
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
  });

  test('is compact: 9 bytes of overhead without expiry, 17 with', () => {
    expect(encodeRecord({ value: b('abc'), expireAtMs: 0, modIndex: 5 }).length).toBe(12);
    expect(encodeRecord({ value: b('abc'), expireAtMs: 5, modIndex: 5 }).length).toBe(20);
  });

  test('rejects corrupt bytes', () => {
    expect(() => decodeRecord(Buffer.of(9, 0, 0))).toThrow(/corrupt value record/);
    expect(() => decodeRecord(Buffer.of(2, 0, 0, 0, 0, 0, 0, 0, 1))).toThrow(/corrupt/);
  });
});

describe('command codec', () => {
  const now = 1_700_000_000_000;
  const cases: KvCommand[] = [
    { type: 'put', nowMs: now, key: b('k'), value: b('v'), expireAtMs: 0 },
    { type: 'put', nowMs: 0, key: Buffer.alloc(4096, 1), value: Buffer.alloc(20_000, 2), expireAtMs: now + 5 },
    { type: 'update', nowMs: now, key: b('k'), value: b(''), expireAtMs: 0, keepTtl: true },
    { type: 'update', nowMs: now, key: b('k'), value: b('x'), expireAtMs: now + 1, keepTtl: false },
    { type: 'delete', nowMs: now, key: b('k') },
    { type: 'expire', nowMs: now, key: b('k'), expireAtMs: Number.MAX_SAFE_INTEGER },
    { type: 'persist', nowMs: now, key: b('k') },
    {
      type: 'cas',
      nowMs: now,
      key: b('k'),
      expected: { kind: 'modIndex', modIndex: 2 ** 50 },
      value: b('n'),
      expireAtMs: 0,
    },
    {
      type: 'cas',
      nowMs: now,
      key: b('k'),
      expected: { kind: 'value', value: b('old') },
      value: b('n'),
      expireAtMs: 9,
    },
    { type: 'cas', nowMs: now, key: b('k'), expected: { kind: 'absent' }, value: b('n'), expireAtMs: 0 },
    { type: 'deleteRange', nowMs: now },
    { type: 'expireSweep', nowMs: now, entries: [] },
    {
      type: 'expireSweep',
      nowMs: now,
      entries: [
        { key: b('a'), expireAtMs: 5 },
        { key: b('b'), expireAtMs: now },
      ],
    },
    { type: 'split', nowMs: now, at: 0xffffffff, newShardId: 77, newReplicaIds: [10, 11, 12] },
  ];

  test.each(cases.map((c) => [c.type, c] as const))('%s round-trips', (_type, cmd) => {
    const bytes = encodeCommand(cmd);
    expect(decodeCommand(bytes)).toEqual(cmd);
    // Decoding a copy at an odd offset inside a larger buffer gives the same command.
    const padded = Buffer.concat([Buffer.of(0xaa), bytes]).subarray(1);
    expect(decodeCommand(padded)).toEqual(cmd);
  });

  test('a put carries only a few bytes beyond key and value', () => {
    const bytes = encodeCommand({ type: 'put', nowMs: now, key: b('key'), value: b('value'), expireAtMs: 0 });
    expect(bytes.length).toBeLessThanOrEqual(1 + 6 + 1 + 3 + 1 + 5 + 1);
  });

  test('rejects unknown tags, truncation and trailing bytes', () => {
    expect(() => decodeCommand(Buffer.of(200, 0))).toThrow(/unknown command tag 200/);
    const bytes = encodeCommand({ type: 'put', nowMs: now, key: b('k'), value: b('value'), expireAtMs: 0 });
    expect(() => decodeCommand(bytes.subarray(0, bytes.length - 3))).toThrow(/truncated/);
    expect(() => decodeCommand(Buffer.concat([bytes, Buffer.of(0)]))).toThrow(/trailing/);
  });

  test('rejects integers that are not exact in JS', () => {
    expect(() => encodeCommand({ type: 'deleteRange', nowMs: 2 ** 53 })).toThrow(RangeError);
    expect(() => encodeCommand({ type: 'deleteRange', nowMs: -1 })).toThrow(RangeError);
  });

  test('ringPosition is the published murmur3 (sanity for on-disk order)', () => {
    expect(ringPosition('')).toBe(0);
  });
});
