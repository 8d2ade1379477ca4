import { KvTwin } from '@omnidict/client';
import { expectOneErrorLine, omnictl } from './capture.js';

let twin: KvTwin;
let r: string[];

beforeAll(async () => {
  twin = await KvTwin.start();
  r = ['--router', twin.address];
});

afterAll(async () => {
  await twin.stop();
});

beforeEach(() => {
  twin.data.clear();
});

test('put then get prints the value; --json gives an object', async () => {
  const put = await omnictl([...r, 'put', 'greeting', 'hello']);
  expect(put).toMatchObject({ code: 0, stderr: '' });
  expect(put.stdout).toMatch(/^OK \(modIndex \d+\)\n$/);
  expect(await omnictl([...r, 'get', 'greeting'])).toMatchObject({ code: 0, stdout: 'hello\n', stderr: '' });
  const json = await omnictl([...r, '--json', 'get', 'greeting']);
  expect(JSON.parse(json.stdout)).toMatchObject({ key: 'greeting', value: 'hello', expireAtMs: 0 });
  const putJson = await omnictl(['put', 'k2', 'v', '--json', ...r]);
  expect(JSON.parse(putJson.stdout)).toEqual({ ok: true, modIndex: expect.any(Number) });
});

test('values from stdin and --file; binary values survive', async () => {
  expect((await omnictl([...r, 'put', 'fromstdin', '-'], { stdin: 'piped value' })).code).toBe(0);
  expect((await omnictl([...r, 'get', 'fromstdin'])).stdout).toBe('piped value\n');
  expect((await omnictl([...r, 'put', 'fromfile', '--file', '-'], { stdin: 'file value' })).code).toBe(0);
  expect((await omnictl([...r, 'get', 'fromfile'])).stdout).toBe('file value\n');
  twin.data.set(Buffer.from('bin').toString('hex'), {
    value: Buffer.from([0xff, 0x00, 0xfe]),
    modIndex: 9,
    expireAtMs: 0,
  });
  const bin = await omnictl([...r, 'get', 'bin']);
  expect(bin.stdoutBytes.subarray(0, 3)).toEqual(Buffer.from([0xff, 0x00, 0xfe]));
  expect(JSON.parse((await omnictl([...r, '--json', 'get', 'bin'])).stdout).valueBase64).toBe('/wD+');
  expectOneErrorLine(await omnictl([...r, 'put', 'k']), 2, /missing value/);
  expectOneErrorLine(await omnictl([...r, 'put', 'k', 'v', '--file', '/nonexistent/x']), 2, /--file/);
  expectOneErrorLine(await omnictl([...r, 'put', 'k', '--file', '/nonexistent/x']), 2, /cannot read --file/);
});

test('get of an absent key: nothing on stdout, one line, exit 3', async () => {
  expectOneErrorLine(await omnictl([...r, 'get', 'nope']), 3, 'key "nope" not found');
});

test('update, delete, exists, ttl, expire, persist', async () => {
  expectOneErrorLine(await omnictl([...r, 'update', 'u', 'v']), 3, /key "u" not found/);
  await omnictl([...r, 'put', 'u', 'v1']);
  expect((await omnictl([...r, 'update', 'u', 'v2'])).code).toBe(0);
  expect((await omnictl([...r, 'get', 'u'])).stdout).toBe('v2\n');
  expect((await omnictl([...r, 'exists', 'u'])).stdout).toBe('1\n');
  expect((await omnictl([...r, 'ttl', 'u'])).stdout).toBe('-1\n');
  expect((await omnictl([...r, 'ttl', 'absent'])).stdout).toBe('-2\n');
  expect((await omnictl([...r, 'expire', 'u', '10m'])).stdout).toBe('1\n');
  const ttl = Number((await omnictl([...r, 'ttl', 'u'])).stdout);
  expect(ttl).toBeGreaterThan(590_000);
  expect(JSON.parse((await omnictl([...r, '--json', 'ttl', 'u'])).stdout).ttlMs).toBeGreaterThan(590_000);
  expect((await omnictl([...r, 'persist', 'u'])).stdout).toBe('1\n');
  expect((await omnictl([...r, 'persist', 'u'])).stdout).toBe('0\n');
  expect((await omnictl([...r, 'expire', 'absent', '10s'])).stdout).toBe('0\n');
  expect(JSON.parse((await omnictl([...r, '--json', 'exists', 'absent'])).stdout)).toEqual({ exists: false });
  expect((await omnictl([...r, 'delete', 'u'])).stdout).toBe('1\n');
  expect(JSON.parse((await omnictl([...r, '--json', 'del', 'u'])).stdout)).toEqual({ deleted: false });
  expect((await omnictl([...r, 'put', 't', 'v', '--ttl', '2h'])).code).toBe(0);
  expect(Number((await omnictl([...r, 'ttl', 't'])).stdout)).toBeGreaterThan(7_000_000);
});

test('keys walks every page; scan prints a table and a cursor; --json for both', async () => {
  for (let i = 0; i < 150; i++)
    twin.data.set(Buffer.from(`user:${String(i).padStart(3, '0')}`).toString('hex'), {
      value: Buffer.from(`v${i}`),
      modIndex: i + 1,
      expireAtMs: 0,
    });
  twin.data.set(Buffer.from('other').toString('hex'), { value: Buffer.from('x'), modIndex: 999, expireAtMs: 0 });
  const keys = await omnictl([...r, 'keys', 'user:*']);
  expect(keys.stdout.trim().split('\n')).toHaveLength(150);
  expect(JSON.parse((await omnictl([...r, '--json', 'keys'])).stdout)).toHaveLength(151);
  const scan = await omnictl([...r, 'scan', '--pattern', 'user:*', '--limit', '5']);
  expect(scan.code).toBe(0);
  expect(scan.stdout).toContain('KEY');
  expect(scan.stdout).toContain('user:000');
  expect(scan.stdout).toContain('v0');
  const cursor = /next cursor: (\S+)/.exec(scan.stdout)?.[1];
  expect(cursor).toBeDefined();
  const page2 = JSON.parse(
    (await omnictl([...r, '--json', 'scan', '--pattern', 'user:*', '--limit', '5', '--cursor', cursor!])).stdout,
  );
  expect(page2.items[0]).toMatchObject({ key: 'user:005', value: 'v5' });
  expect(typeof page2.nextCursor).toBe('string');
  expectOneErrorLine(await omnictl([...r, 'scan', '--cursor', 'not a cursor!']), 2, /cursor/);
  expectOneErrorLine(await omnictl([...r, 'scan', '--limit', '0']), 2, /--limit/);
});

test('flush needs --yes', async () => {
  await omnictl([...r, 'put', 'a', '1']);
  expectOneErrorLine(await omnictl([...r, 'flush']), 2, /--yes/);
  expect((await omnictl([...r, 'flush', '--yes'])).stdout).toBe('OK (1 keys deleted)\n');
  expect(JSON.parse((await omnictl([...r, '--json', 'flush', '-y'])).stdout)).toEqual({ deleted: 0 });
});

test('cas swaps or exits 6 with the current value', async () => {
  expect((await omnictl([...r, 'cas', 'lock', 'me', '--expect-absent'])).stdout).toMatch(/^OK/);
  expectOneErrorLine(await omnictl([...r, 'cas', 'lock', 'you', '--expect-absent']), 6, /current value "me"/);
  const idx = JSON.parse((await omnictl([...r, '--json', 'get', 'lock'])).stdout).modIndex as number;
  expect((await omnictl([...r, 'cas', 'lock', 'x', '--expect-mod-index', String(idx)])).code).toBe(0);
  expect((await omnictl([...r, 'cas', 'lock', 'y', '--expect-value', 'x'])).code).toBe(0);
  const failed = await omnictl([...r, '--json', 'cas', 'lock', 'z', '--expect-value', 'nope']);
  expect(failed.code).toBe(6);
  expect(JSON.parse(failed.stdout)).toMatchObject({ swapped: false, current: { value: 'y' } });
  expectOneErrorLine(await omnictl([...r, 'cas', 'lock', 'z']), 2, /exactly one of/);
  expectOneErrorLine(
    await omnictl([...r, 'cas', 'lock', 'z', '--expect-absent', '--expect-value', 'y']),
    2,
    /exactly one/,
  );
  expectOneErrorLine(await omnictl([...r, 'cas', 'lock', 'z', '--expect-mod-index', 'abc']), 2, /--expect-mod-index/);
});

describe('bad input: one line and the documented exit code', () => {
  test.each(
    [
      [['get', ''], 2, /key must not be empty/],
      [['put', '', 'v'], 2, /key must not be empty/],
      [['get', 'k'.repeat(4097)], 2, /4097 bytes; the limit is 4096/],
      [['frobnicate'], 2, /unknown command 'frobnicate'/],
      [['gett', 'k'], 2, /unknown command 'gett'.*Did you mean get/],
      [['get'], 2, /missing required argument 'key'/],
      [['get', 'a', 'b'], 2, /too many arguments/],
      [['expire', 'k'], 2, /missing required argument 'ttl'/],
      [['put', 'k', 'v', '--ttl', 'abc'], 2, /--ttl <duration>.*'abc' is invalid/],
      [['put', 'k', 'v', '--ttl', '0'], 2, /greater than zero/],
      [['expire', 'k', '-5'], 2, /unknown option|invalid/],
      [['--timeout', 'soon', 'get', 'k'], 2, /--timeout/],
      [['get', 'k', '--bogus'], 2, /unknown option '--bogus'/],
      [['shard', 'split', 'abc'], 2, /shardId/],
      [['shard', 'move', '1', '--from', '2'], 2, /required option '--to <nodeId>'/],
      [['bench', '--workload', 'weird'], 2, /expected one of put, get, mixed, cas/],
      [['bench', '--read-ratio', '1.5'], 2, /between 0 and 1/],
      [['get', 'k', '--router', 'nohost'], 2, /malformed router address "nohost"/],
    ].map(([args, code, fragment]) => [(args as string[]).join(' ').slice(0, 40), args, code, fragment]),
  )('omnictl %s → exit %#', async (_title, args, code, fragment) => {
    const res = await omnictl([...r, ...(args as string[])]);
    expectOneErrorLine(res, code as number, fragment as RegExp);
  });

  test('unreachable router: exit 4 naming the address', async () => {
    expectOneErrorLine(await omnictl(['--router', '127.0.0.1:1', 'get', 'k']), 4, /127\.0\.0\.1:1/);
    expectOneErrorLine(
      await omnictl(['--router', '127.0.0.1:1', 'put', 'k', 'v']),
      4,
      /cannot reach router 127\.0\.0\.1:1/,
    );
    expectOneErrorLine(
      await omnictl(['--router', '127.0.0.1:1,127.0.0.1:2', 'get', 'k']),
      4,
      /no router reachable \(127\.0\.0\.1:1, 127\.0\.0\.1:2\)/,
    );
  });

  test('server errors map to exit codes: TIMEOUT 5, CONFLICT 6, INTERNAL 1, UNAVAILABLE 4', async () => {
    twin.delay('Get', 300);
    expectOneErrorLine(await omnictl([...r, '--timeout', '50ms', 'get', 'k']), 5, /deadline/);
    twin.delay('Get', 0);
    twin.fail('Put', 'CONFLICT');
    expectOneErrorLine(await omnictl([...r, 'put', 'k', 'v']), 6);
    twin.fail('Put', 'INTERNAL');
    expectOneErrorLine(await omnictl([...r, 'put', 'k', 'v']), 1, /injected INTERNAL/);
    twin.fail('Put', 'UNAVAILABLE');
    expectOneErrorLine(await omnictl([...r, 'put', 'k', 'v']), 4);
    twin.fail('Put', 'TOO_LARGE');
    expectOneErrorLine(await omnictl([...r, 'put', 'k', 'v']), 2);
  });

  test('--help and --version exit 0; a bare group prints help and exits 2', async () => {
    const help = await omnictl(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');
    expect(help.stdout).toContain('Examples:');
    expect((await omnictl(['--version'])).stdout).toBe('0.1.0\n');
    const bare = await omnictl(['shard']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: omnictl shard');
  });
});
