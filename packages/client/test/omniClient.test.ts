import { KvTwin, OmniClient, OmniError } from '@omnidict/client';

let twin: KvTwin;
let client: OmniClient;

beforeEach(async () => {
  twin = await KvTwin.start();
  client = new OmniClient({ routers: twin.address, defaultTimeoutMs: 2000, retryBaseMs: 1 });
});

afterEach(async () => {
  client.close();
  await twin.stop();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(OmniError);
    return (err as OmniError).code;
  }
  throw new Error('expected a rejection');
}

test('put, get, update, delete, exists round-trip with Buffers', async () => {
  const { modIndex } = await client.put('k', 'v1');
  expect(modIndex).toBeGreaterThan(0);
  const got = await client.get('k');
  expect(got?.value.toString()).toBe('v1');
  expect(got?.modIndex).toBe(modIndex);
  expect(Buffer.isBuffer(got?.value)).toBe(true);
  await client.update('k', new Uint8Array([0x68, 0x69]));
  expect((await client.get(Buffer.from('k')))?.value.toString()).toBe('hi');
  expect(await client.exists('k')).toBe(true);
  expect(await client.delete('k')).toBe(true);
  expect(await client.delete('k')).toBe(false);
  expect(await client.get('k')).toBeNull();
  expect(await client.exists('k')).toBe(false);
});

test('ttl, expire and persist follow Redis semantics', async () => {
  expect(await client.ttl('nokey')).toBe(-2);
  await client.put('k', 'v');
  expect(await client.ttl('k')).toBe(-1);
  expect(await client.expire('k', 60_000)).toBe(true);
  const left = await client.ttl('k');
  expect(left).toBeGreaterThan(50_000);
  expect(left).toBeLessThanOrEqual(60_000);
  expect(await client.persist('k')).toBe(true);
  expect(await client.ttl('k')).toBe(-1);
  expect(await client.expire('absent', 1000)).toBe(false);
  await client.put('short', 'v', { ttlMs: 1 });
  await new Promise((r) => setTimeout(r, 10));
  expect(await client.get('short')).toBeNull();
});

test('cas by mod index, by value and expect-absent', async () => {
  const first = await client.cas('c', { expectAbsent: true }, 'a');
  expect(first.swapped).toBe(true);
  const again = await client.cas('c', { expectAbsent: true }, 'b');
  expect(again.swapped).toBe(false);
  expect(again.current?.value.toString()).toBe('a');
  const byIndex = await client.cas('c', { expectedModIndex: first.modIndex }, 'b');
  expect(byIndex.swapped).toBe(true);
  expect((await client.cas('c', { expectedValue: 'zzz' }, 'c')).swapped).toBe(false);
  expect((await client.cas('c', { expectedValue: 'b' }, 'c')).swapped).toBe(true);
  expect((await client.cas('gone', { expectedValue: 'b' }, 'c')).current).toBeNull();
});

test('batchGet, batchPut, scan pages and keys() walking every page', async () => {
  const items = Array.from({ length: 25 }, (_, i) => ({ key: `user:${String(i).padStart(2, '0')}`, value: `v${i}` }));
  const indexes = await client.batchPut([...items, { key: 'other', value: 'x' }]);
  expect(indexes).toHaveLength(26);
  const got = await client.batchGet(['user:03', 'missing', 'other']);
  expect(got.map((g) => g?.value.toString() ?? null)).toEqual(['v3', null, 'x']);
  const page = await client.scan({ pattern: 'user:*', limit: 10 });
  expect(page.items.length).toBeLessThanOrEqual(10);
  expect(page.nextCursor).not.toBeNull();
  const keys: string[] = [];
  for await (const k of client.keys('user:*', { pageSize: 7 })) keys.push(k.toString());
  expect(keys).toEqual(items.map((i) => i.key));
  expect(await client.flush()).toBe(26);
  expect(await client.exists('other')).toBe(false);
});

test('maps server errors to typed codes', async () => {
  expect(await codeOf(client.update('absent', 'v'))).toBe('NOT_FOUND');
  twin.fail('Put', 'CONFLICT');
  expect(await codeOf(client.put('k', 'v'))).toBe('CONFLICT');
  twin.fail('Get', 'INTERNAL');
  expect(await codeOf(client.get('k'))).toBe('INTERNAL');
  twin.fail('Put', 'TOO_LARGE');
  expect(await codeOf(client.put('k', 'v'))).toBe('TOO_LARGE');
});

test('rejects empty and oversized keys before sending anything', async () => {
  expect(await codeOf(client.put('', 'v'))).toBe('INVALID_ARGUMENT');
  expect(await codeOf(client.get('x'.repeat(4097)))).toBe('TOO_LARGE');
  expect(twin.callCount('Put') + twin.callCount('Get')).toBe(0);
  expect(() => new OmniClient({ routers: 'nonsense' })).toThrow(/malformed router address/);
});

test('a passed deadline becomes TIMEOUT', async () => {
  twin.delay('Get', 500);
  const err = await client.get('k', { timeoutMs: 50 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OmniError);
  expect((err as OmniError).code).toBe('TIMEOUT');
  expect((err as OmniError).message).toContain('50 ms');
});

test('reads are retried on UNAVAILABLE, writes are not', async () => {
  twin.fail('Get', 'UNAVAILABLE', 2);
  await client.put('k', 'v');
  expect((await client.get('k'))?.value.toString()).toBe('v');
  expect(twin.callCount('Get')).toBe(3);

  twin.fail('Put', 'UNAVAILABLE', 1, true);
  expect(await codeOf(client.put('k', 'v2'))).toBe('UNAVAILABLE');
  expect(twin.callCount('Put')).toBe(2);

  twin.fail('CompareAndSwap', 'UNAVAILABLE', 1);
  expect(await codeOf(client.cas('k', { expectAbsent: true }, 'x'))).toBe('UNAVAILABLE');
  expect(twin.callCount('CompareAndSwap')).toBe(1);

  twin.fail('Exists', 'UNAVAILABLE', 10);
  expect(await codeOf(client.exists('k'))).toBe('UNAVAILABLE');
  expect(twin.callCount('Exists')).toBe(4); // 1 + maxRetries
});

test('reads fail over to the next router; an unreachable router is named', async () => {
  const dead = '127.0.0.1:1';
  const multi = new OmniClient({ routers: [dead, twin.address], retryBaseMs: 1, defaultTimeoutMs: 3000 });
  try {
    await multi.put('k', 'v').catch(() => undefined);
    expect((await multi.get('k'))?.value.toString()).toBe('v');
  } finally {
    multi.close();
  }
  const lone = new OmniClient({ routers: dead, retryBaseMs: 1, maxRetries: 1, defaultTimeoutMs: 3000 });
  try {
    const err = (await lone.get('k').catch((e: unknown) => e)) as OmniError;
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toContain(dead);
  } finally {
    lone.close();
  }
});

test('a write that never left the process moves on to the next router', async () => {
  const multi = new OmniClient({ routers: ['127.0.0.1:1', twin.address], retryBaseMs: 1, defaultTimeoutMs: 3000 });
  try {
    await multi.put('w', 'v');
    expect(twin.callCount('Put')).toBe(1);
  } finally {
    multi.close();
  }
});
