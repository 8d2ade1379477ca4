// Every KV operation through omnictl (a spawned process) and through the SDK, against a real
// cluster started by the launcher: 3 PDs, 3 nodes, a router.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { OmniClient } from '@omnidict/client';
import { type CliResult, E2eCluster, expectOneErrorLine, sleep } from './harness.js';

// The root jest config runs packages as projects, where a project's testTimeout does not apply.
jest.setTimeout(120_000);

let cluster: E2eCluster;
let client: OmniClient;

beforeAll(async () => {
  cluster = await E2eCluster.start('kv', ['--shards', '4']);
  client = cluster.client();
}, 300_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop();
}, 120_000);

function ok(r: CliResult): string {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return r.stdout;
}

function json<T>(r: CliResult): T {
  return JSON.parse(ok(r)) as T;
}

describe('omnictl', () => {
  const cli = (...args: string[]) => cluster.cli(args);

  test('put, get, update, delete, exists (text and --json); values from argument, stdin and --file', async () => {
    expect(ok(await cli('put', 'cli:k1', 'v1'))).toMatch(/^OK \(modIndex \d+\)\n$/);
    expect(ok(await cli('get', 'cli:k1'))).toBe('v1\n');
    const got = json<{ key: string; value: string; modIndex: number; expireAtMs: number }>(
      await cli('--json', 'get', 'cli:k1'),
    );
    expect(got).toMatchObject({ key: 'cli:k1', value: 'v1', expireAtMs: 0 });
    expect(got.modIndex).toBeGreaterThan(0);

    const updated = json<{ ok: boolean; modIndex: number }>(await cli('--json', 'update', 'cli:k1', 'v2'));
    expect(updated.ok).toBe(true);
    expect(updated.modIndex).toBeGreaterThan(got.modIndex);
    expect(ok(await cli('get', 'cli:k1'))).toBe('v2\n');
    expectOneErrorLine(await cli('update', 'cli:missing', 'x'), 3, /key "cli:missing" not found/);
    expectOneErrorLine(await cli('get', 'cli:missing'), 3, /key "cli:missing" not found/);

    expect(ok(await cli('exists', 'cli:k1'))).toBe('1\n');
    expect(ok(await cli('exists', 'cli:missing'))).toBe('0\n');
    expect(json(await cli('--json', 'exists', 'cli:k1'))).toEqual({ exists: true });

    expect(ok(await cluster.cli(['put', 'cli:stdin', '-'], { input: 'from stdin' }))).toMatch(/^OK/);
    expect(ok(await cli('get', 'cli:stdin'))).toBe('from stdin\n');
    const file = path.join(cluster.dir, 'value.bin');
    writeFileSync(file, 'from a file');
    expect(ok(await cli('put', 'cli:file', '--file', file))).toMatch(/^OK/);
    expect((await client.get('cli:file'))?.value.toString()).toBe('from a file');

    expect(ok(await cli('delete', 'cli:k1'))).toBe('1\n');
    expect(json(await cli('--json', 'del', 'cli:k1'))).toEqual({ deleted: false });
    expectOneErrorLine(await cli('get', 'cli:k1'), 3);
    expect(await client.exists('cli:k1')).toBe(false);
  });

  test('ttl, expire, persist: ttl decreases, persist removes the expiry, a short ttl expires', async () => {
    ok(await cli('put', 'cli:t', 'v'));
    expect(ok(await cli('ttl', 'cli:t'))).toBe('-1\n');
    expect(ok(await cli('ttl', 'cli:nothing'))).toBe('-2\n');
    expect(ok(await cli('expire', 'cli:nothing', '10s'))).toBe('0\n');
    expect(ok(await cli('expire', 'cli:t', '10s'))).toBe('1\n');
    const first = Number(ok(await cli('ttl', 'cli:t')));
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(10_000);
    await sleep(1100);
    const second = json<{ ttlMs: number }>(await cli('--json', 'ttl', 'cli:t')).ttlMs;
    expect(second).toBeGreaterThan(0);
    expect(second).toBeLessThan(first);
    expect(ok(await cli('persist', 'cli:t'))).toBe('1\n');
    expect(ok(await cli('ttl', 'cli:t'))).toBe('-1\n');
    expect(ok(await cli('persist', 'cli:t'))).toBe('0\n');
    await sleep(300);
    expect(ok(await cli('get', 'cli:t'))).toBe('v\n');

    // 2 s, not 1 s: each omnictl call is a fresh Node process (~0.3–0.8 s on a loaded 2-core box).
    ok(await cli('put', 'cli:short', 'soon gone', '--ttl', '2s'));
    expect(ok(await cli('get', 'cli:short'))).toBe('soon gone\n');
    const expireAtMs = json<{ expireAtMs: number }>(await cli('--json', 'get', 'cli:short')).expireAtMs;
    expect(expireAtMs).toBeGreaterThan(Date.now() - 1000);
    await sleep(2500);
    expectOneErrorLine(await cli('get', 'cli:short'), 3);
    expect(ok(await cli('exists', 'cli:short'))).toBe('0\n');
    expect(ok(await cli('ttl', 'cli:short'))).toBe('-2\n');
  });

  test('keys and scan walk every shard with a glob; scan pages continue with --cursor', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `cli:scan:${String(i).padStart(2, '0')}`);
    for (const k of names) ok(await cli('put', k, `v-${k}`));
    ok(await cli('put', 'cli:other', 'x'));

    const listed = ok(await cli('keys', 'cli:scan:*'))
      .trimEnd()
      .split('\n')
      .sort();
    expect(listed).toEqual(names);
    expect(json<string[]>(await cli('--json', 'keys', 'cli:scan:0?')).sort()).toEqual(names.slice(0, 10));

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const args: string[] = ['--json', 'scan', '--pattern', 'cli:scan:*', '--limit', '5'];
      if (cursor) args.push('--cursor', cursor);
      const page: { items: { key: string; value: string; modIndex: number }[]; nextCursor: string | null } = json<{
        items: { key: string; value: string; modIndex: number }[];
        nextCursor: string | null;
      }>(await cli(...args));
      for (const it of page.items) {
        expect(it.value).toBe(`v-${it.key}`);
        seen.push(it.key);
      }
      cursor = page.nextCursor;
      pages++;
      expect(pages).toBeLessThan(50);
    } while (cursor);
    expect(seen.sort()).toEqual(names);
    expect(pages).toBeGreaterThan(1);

    const table = ok(await cli('scan', '--pattern', 'cli:scan:1*', '--limit', '100'));
    expect(table).toContain('cli:scan:10');
    expect(table).toContain('v-cli:scan:11');
    expect(table).toMatch(/\(end of scan\)\n$/);
  });

  test('cas with each expectation kind; exit 6 when it does not swap', async () => {
    const put = json<{ modIndex: number }>(await cli('--json', 'put', 'cli:cas', '1'));
    expect(ok(await cli('cas', 'cli:cas', '2', '--expect-mod-index', String(put.modIndex)))).toMatch(/^OK/);
    expectOneErrorLine(
      await cli('cas', 'cli:cas', '3', '--expect-mod-index', String(put.modIndex)),
      6,
      /did not swap: current value "2"/,
    );
    expect(ok(await cli('cas', 'cli:cas', '3', '--expect-value', '2'))).toMatch(/^OK/);
    expectOneErrorLine(await cli('cas', 'cli:cas', '4', '--expect-value', '2'), 6);
    expect(ok(await cli('get', 'cli:cas'))).toBe('3\n');

    expect(ok(await cli('cas', 'cli:lock', 'me', '--expect-absent', '--ttl', '30s'))).toMatch(/^OK/);
    const conflict = await cli('--json', 'cas', 'cli:lock', 'you', '--expect-absent');
    expect(conflict.code).toBe(6);
    const body = JSON.parse(conflict.stdout) as { swapped: boolean; current: { value: string; expireAtMs: number } };
    expect(body.swapped).toBe(false);
    expect(body.current.value).toBe('me');
    expect(body.current.expireAtMs).toBeGreaterThan(Date.now());
    expectOneErrorLine(await cli('cas', 'cli:lock', 'x', '--expect-absent', '--expect-value', 'me'), 2);
  });

  test('mput and mget: several keys across shards in one request each; a missing key is (nil)', async () => {
    expect(ok(await cli('mput', 'cli:m1=one', 'cli:m2=two=2', 'cli:m3=three', '--ttl', '1h'))).toBe('OK (3 keys)\n');
    const rs = json<Array<{ key: string; found: boolean; value?: string; expireAtMs?: number }>>(
      await cli('--json', 'mget', 'cli:m1', 'cli:m2', 'cli:m-absent', 'cli:m3'),
    );
    expect(rs.map((r) => [r.key, r.found, r.value])).toEqual([
      ['cli:m1', true, 'one'],
      ['cli:m2', true, 'two=2'],
      ['cli:m-absent', false, undefined],
      ['cli:m3', true, 'three'],
    ]);
    expect(rs[0]!.expireAtMs).toBeGreaterThan(Date.now());
    const table = ok(await cli('mget', 'cli:m1', 'cli:m-absent'));
    expect(table).toContain('one');
    expect(table).toContain('(nil)');
    expectOneErrorLine(await cli('mput', 'no-equals-sign'), 2, /expected key=value, got "no-equals-sign"/);
    expectOneErrorLine(await cli('mput', '=v'), 2, /expected key=value/);
    expect(ok(await cli('get', 'cli:m2'))).toBe('two=2\n');
  });

  test('--embedded routes in omnictl itself (no router): same results, same errors and exit codes', async () => {
    // The router process is bypassed: requests go from omnictl to the nodes using PD's shard map.
    ok(await cli('put', 'cli:emb', 'via-router'));
    expect(ok(await cli('--embedded', 'get', 'cli:emb'))).toBe('via-router\n');
    expect(ok(await cli('--embedded', 'put', 'cli:emb', 'embedded'))).toMatch(/^OK \(modIndex \d+\)/);
    expect(ok(await cli('get', 'cli:emb'))).toBe('embedded\n');
    expectOneErrorLine(await cli('--embedded', 'update', 'cli:emb-missing', 'x'), 3, /not found/);
    expectOneErrorLine(await cli('--embedded', 'cas', 'cli:emb', 'x', '--expect-value', 'nope'), 6);
    const bench = json<{ ops: number; errors: number }>(
      await cli('--embedded', '--json', 'bench', '--workload', 'mixed', '--ops', '200', '--keys', '20'),
    );
    expect(bench).toMatchObject({ ops: 200, errors: 0 });
  });

  test('flush needs --yes and then deletes every key', async () => {
    ok(await cli('put', 'cli:flush', 'x'));
    expectOneErrorLine(await cli('flush'), 2, /--yes/);
    expect(ok(await cli('exists', 'cli:flush'))).toBe('1\n');
    expect(ok(await cli('flush', '--yes'))).toMatch(/^OK \(\d+ keys deleted\)\n$/);
    expect(ok(await cli('keys'))).toBe('');
    expect(json(await cli('--json', 'flush', '--yes'))).toEqual({ deleted: 0 });
  });
});

describe('SDK', () => {
  test('put, get, update, delete, exists; a write through the SDK is seen by omnictl and back', async () => {
    const w = await client.put('sdk:k', 'v1');
    expect(w.modIndex).toBeGreaterThan(0);
    expect(await client.get('sdk:k')).toEqual({ value: Buffer.from('v1'), modIndex: w.modIndex, expireAtMs: 0 });
    const u = await client.update('sdk:k', Buffer.from([0, 1, 255]));
    expect(u.modIndex).toBeGreaterThan(w.modIndex);
    expect((await client.get('sdk:k'))?.value).toEqual(Buffer.from([0, 1, 255]));
    expect(json<{ valueBase64: string }>(await cluster.cli(['--json', 'get', 'sdk:k'])).valueBase64).toBe(
      Buffer.from([0, 1, 255]).toString('base64'),
    );
    await expect(client.update('sdk:absent', 'x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await client.get('sdk:absent')).toBeNull();
    expect(await client.exists('sdk:k')).toBe(true);
    expect(await client.exists('sdk:k', { stale: true })).toBe(true);
    expect(await client.delete('sdk:k')).toBe(true);
    expect(await client.delete('sdk:k')).toBe(false);
    expect(await client.exists('sdk:k')).toBe(false);

    ok(await cluster.cli(['put', 'sdk:from-cli', 'hello']));
    expect((await client.get('sdk:from-cli'))?.value.toString()).toBe('hello');
  });

  test('ttl, expire, persist; a 1s ttl expires; update keeps or clears the expiry', async () => {
    await client.put('sdk:t', 'v');
    expect(await client.ttl('sdk:t')).toBe(-1);
    expect(await client.ttl('sdk:none')).toBe(-2);
    expect(await client.expire('sdk:none', 1000)).toBe(false);
    expect(await client.expire('sdk:t', 10_000)).toBe(true);
    const first = await client.ttl('sdk:t');
    await sleep(1100);
    const second = await client.ttl('sdk:t');
    expect(first).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(0);
    expect(second).toBeLessThan(first);
    await client.update('sdk:t', 'v2', { keepTtl: true });
    expect(await client.ttl('sdk:t')).toBeGreaterThan(0);
    expect(await client.persist('sdk:t')).toBe(true);
    expect(await client.ttl('sdk:t')).toBe(-1);
    expect(await client.persist('sdk:t')).toBe(false);

    await client.put('sdk:short', 'soon gone', { ttlMs: 1000 });
    const got = await client.get('sdk:short');
    expect(got?.value.toString()).toBe('soon gone');
    expect(got?.expireAtMs).toBeGreaterThan(0);
    await sleep(1500);
    expect(await client.get('sdk:short')).toBeNull();
    expect(await client.exists('sdk:short')).toBe(false);
    expect(await client.ttl('sdk:short')).toBe(-2);
    // an expired key is absent for update and cas too
    await expect(client.update('sdk:short', 'x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await client.cas('sdk:short', { expectAbsent: true }, 'back')).swapped).toBe(true);
  });

  test('batch put and batch get across shards', async () => {
    const items = Array.from({ length: 40 }, (_, i) => ({ key: `sdk:batch:${i}`, value: `b${i}` }));
    const mods = await client.batchPut([...items, { key: 'sdk:batch:ttl', value: 't', ttlMs: 1000 }]);
    expect(mods).toHaveLength(41);
    for (const m of mods) expect(m).toBeGreaterThan(0);
    const got = await client.batchGet([...items.map((it) => it.key), 'sdk:batch:absent', 'sdk:batch:ttl']);
    expect(got.slice(0, 40).map((g) => g?.value.toString())).toEqual(items.map((it) => it.value));
    expect(got.slice(0, 40).map((g) => g?.modIndex)).toEqual(mods.slice(0, 40));
    expect(got[40]).toBeNull();
    expect(got[41]?.expireAtMs).toBeGreaterThan(0);
    await sleep(1500);
    expect((await client.batchGet(['sdk:batch:ttl', 'sdk:batch:0']))[0]).toBeNull();
  });

  test('scan pages and the keys iterator cover every shard', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `sdk:scan:${i}`).sort();
    await client.batchPut(names.map((k) => ({ key: k, value: k.toUpperCase() })));
    const seen: string[] = [];
    let cursor: Buffer | null = null;
    let pages = 0;
    do {
      const page: Awaited<ReturnType<OmniClient['scan']>> = await client.scan({
        pattern: 'sdk:scan:*',
        cursor,
        limit: 7,
      });
      for (const it of page.items) {
        expect(it.value.toString()).toBe(it.key.toString().toUpperCase());
        seen.push(it.key.toString());
      }
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    expect(seen.sort()).toEqual(names);
    expect(pages).toBeGreaterThan(1);

    const keysOnly = await client.scan({ pattern: 'sdk:scan:1?', keysOnly: true, limit: 1000 });
    for (const it of keysOnly.items) expect(it.value.length).toBe(0);

    const all: string[] = [];
    for await (const k of client.keys('sdk:scan:*', { pageSize: 4 })) all.push(k.toString());
    expect(all.sort()).toEqual(names);
  });

  test('cas with each expectation kind reports the current entry when it does not swap', async () => {
    const absent = await client.cas('sdk:cas', { expectAbsent: true }, 'a');
    expect(absent.swapped).toBe(true);
    const again = await client.cas('sdk:cas', { expectAbsent: true }, 'b');
    expect(again).toMatchObject({ swapped: false, current: { value: Buffer.from('a'), modIndex: absent.modIndex } });

    const byIndex = await client.cas('sdk:cas', { expectedModIndex: absent.modIndex }, 'b');
    expect(byIndex.swapped).toBe(true);
    expect(byIndex.modIndex).toBeGreaterThan(absent.modIndex);
    expect((await client.cas('sdk:cas', { expectedModIndex: absent.modIndex }, 'c')).swapped).toBe(false);

    expect((await client.cas('sdk:cas', { expectedValue: 'b' }, 'c', { ttlMs: 60_000 })).swapped).toBe(true);
    const wrong = await client.cas('sdk:cas', { expectedValue: 'b' }, 'd');
    expect(wrong.swapped).toBe(false);
    expect(wrong.current?.value.toString()).toBe('c');
    expect(await client.ttl('sdk:cas')).toBeGreaterThan(0);

    const missing = await client.cas('sdk:cas-missing', { expectedValue: 'x' }, 'y');
    expect(missing).toMatchObject({ swapped: false, current: null });
    expect(await client.exists('sdk:cas-missing')).toBe(false);
  });

  test('flush deletes every key and returns the count', async () => {
    await client.batchPut([
      { key: 'sdk:f1', value: '1' },
      { key: 'sdk:f2', value: '2' },
    ]);
    expect(await client.flush()).toBeGreaterThanOrEqual(2);
    expect(await client.batchGet(['sdk:f1', 'sdk:f2'])).toEqual([null, null]);
    const page = await client.scan({ limit: 1000 });
    expect(page.items).toEqual([]);
    expect(await client.flush()).toBe(0);
  });
});
