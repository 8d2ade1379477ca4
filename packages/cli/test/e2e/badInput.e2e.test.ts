// Bad input against a real cluster: omnictl answers with one error line and the documented exit
// code; the router itself (called through a raw grpc-js client, bypassing the SDK's own checks)
// answers INVALID_ARGUMENT and proposes nothing.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import type { OmniClient } from '@omnidict/client';
import { CODE_METADATA_KEY, kv } from '@omnidict/proto';
import { freePort } from '../../src/launcher/localCluster.js';
import { CLI_MAIN, E2eCluster, expectOneErrorLine, omnictl } from './harness.js';

// The root jest config runs packages as projects, where a project's testTimeout does not apply.
jest.setTimeout(120_000);

const MAX_KEY = 4096;
const MAX_VALUE = 1024 * 1024;

let cluster: E2eCluster;
let client: OmniClient;
let raw: kv.KVClient;

beforeAll(async () => {
  cluster = await E2eCluster.start('bad-input', ['--shards', '2']);
  client = cluster.client();
  raw = new kv.KVClient(cluster.routerAddress, credentials.createInsecure());
}, 300_000);

afterAll(async () => {
  raw?.close();
  client?.close();
  await cluster?.stop();
}, 120_000);

describe('omnictl: one error line, documented exit code', () => {
  const cli = (...args: string[]) => cluster.cli(args);

  test('empty and oversized keys exit 2; the 4096-byte key is accepted', async () => {
    expectOneErrorLine(await cli('put', '', 'x'), 2, /key must not be empty/);
    expectOneErrorLine(await cli('get', ''), 2, /key must not be empty/);
    expectOneErrorLine(await cli('put', 'k'.repeat(MAX_KEY + 1), 'x'), 2, /4097 bytes; the limit is 4096/);
    expectOneErrorLine(await cli('exists', 'k'.repeat(MAX_KEY + 1)), 2, /4097 bytes/);
    expect(await cli('put', 'k'.repeat(MAX_KEY), 'x')).toMatchObject({ code: 0, stderr: '' });
    expect((await client.get('k'.repeat(MAX_KEY)))?.value.toString()).toBe('x');
  });

  test('a value over 1 MiB exits 2 and is not written; exactly 1 MiB is accepted', async () => {
    const big = path.join(cluster.dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(MAX_VALUE + 1, 7));
    expectOneErrorLine(await cli('put', 'big', '--file', big), 2, /value is 1048577 bytes; the limit is 1048576/);
    expect(await client.exists('big')).toBe(false);
    const limit = path.join(cluster.dir, 'limit.bin');
    writeFileSync(limit, Buffer.alloc(MAX_VALUE, 7));
    expect(await cli('put', 'big', '--file', limit)).toMatchObject({ code: 0, stderr: '' });
    expect((await client.get('big'))?.value.length).toBe(MAX_VALUE);
  });

  test('unknown command, wrong argument count and malformed flags exit 2', async () => {
    expectOneErrorLine(await cli('frobnicate'), 2, /unknown command 'frobnicate'/);
    expectOneErrorLine(await cli('get'), 2, /missing required argument 'key'/);
    expectOneErrorLine(await cli('get', 'a', 'b'), 2, /too many arguments/);
    expectOneErrorLine(await cli('expire', 'a'), 2, /missing required argument/);
    expectOneErrorLine(await cli('put', 'a', 'b', '--ttl', 'abc'), 2, /--ttl/);
    expectOneErrorLine(await cli('put', 'a', 'b', '--ttl', '0'), 2, /greater than zero/);
    expectOneErrorLine(await cli('--timeout', 'soon', 'get', 'a'), 2, /--timeout/);
    expectOneErrorLine(await cli('scan', '--limit', '-3'), 2, /--limit/);
    expectOneErrorLine(await cli('cas', 'a', 'b', '--expect-mod-index', 'x1'), 2, /--expect-mod-index/);
    expectOneErrorLine(await cli('scan', '--cursor', '%%%'), 2, /malformed --cursor/);
    expectOneErrorLine(await cli('get', 'a', '--frob'), 2, /unknown option '--frob'/);
    expectOneErrorLine(await cli('cas', 'a', 'b'), 2, /exactly one of/);
    expectOneErrorLine(await cli('--router', 'not an address', 'get', 'a'), 2);
    // none of these wrote anything
    expect(await client.exists('a')).toBe(false);
  });

  test('an unreachable router or PD exits 4 and the line names the address', async () => {
    const port = await freePort();
    const dead = `127.0.0.1:${port}`;
    expectOneErrorLine(
      await omnictl(['--router', dead, '--timeout', '3s', 'put', 'k', 'v']),
      4,
      new RegExp(`router ${dead}`),
    );
    expectOneErrorLine(await omnictl(['--router', dead, 'get', 'k']), 4, new RegExp(dead));
    expectOneErrorLine(
      await omnictl(['--pd', dead, '--timeout', '3s', 'shard', 'list']),
      4,
      new RegExp(`placement driver ${dead}`),
    );
    expectOneErrorLine(await omnictl(['--pd', dead, 'node', 'list'], { env: {} }), 4, new RegExp(dead));
  });
});

interface RawResult {
  err: ServiceError | null;
}

function rawCall<Req>(method: (req: Req, md: Metadata, cb: (err: ServiceError | null) => void) => unknown, req: Req) {
  return new Promise<RawResult>((resolve) => {
    method(req, new Metadata(), (err) => resolve({ err }));
  });
}

function expectStatus(r: RawResult, code: status, omniCode: string, fragment: RegExp): void {
  expect(r.err).not.toBeNull();
  expect({ code: r.err?.code, omni: r.err?.metadata.get(CODE_METADATA_KEY)[0] }).toEqual({ code, omni: omniCode });
  expect(r.err?.details).toMatch(fragment);
}

describe('router over raw gRPC', () => {
  test('empty and oversized keys and values: INVALID_ARGUMENT, nothing proposed', async () => {
    const before = await client.put('guard', 'original');
    const put = (req: Partial<kv.PutRequest>) =>
      rawCall(raw.put.bind(raw), { key: Buffer.alloc(0), value: Buffer.alloc(0), ttlMs: 0, ...req });

    expectStatus(await put({ value: Buffer.from('x') }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', /empty/);
    expectStatus(
      await put({ key: Buffer.alloc(MAX_KEY + 1, 'g'), value: Buffer.from('x') }),
      status.INVALID_ARGUMENT,
      'TOO_LARGE',
      /4097 bytes/,
    );
    expectStatus(
      await put({ key: Buffer.from('guard'), value: Buffer.alloc(MAX_VALUE + 1) }),
      status.INVALID_ARGUMENT,
      'TOO_LARGE',
      /1048577 bytes/,
    );
    expectStatus(
      await rawCall(raw.update.bind(raw), {
        key: Buffer.from('guard'),
        value: Buffer.alloc(MAX_VALUE + 1),
        ttlMs: 0,
        keepTtl: false,
      }),
      status.INVALID_ARGUMENT,
      'TOO_LARGE',
      /bytes/,
    );
    expectStatus(
      await rawCall(raw.compareAndSwap.bind(raw), {
        key: Buffer.from('guard'),
        value: Buffer.alloc(MAX_VALUE + 1),
        ttlMs: 0,
        expected: { $case: 'expectedValue', value: Buffer.from('original') },
      }),
      status.INVALID_ARGUMENT,
      'TOO_LARGE',
      /bytes/,
    );
    expectStatus(
      await rawCall(raw.delete.bind(raw), { key: Buffer.alloc(0) }),
      status.INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /empty/,
    );
    expectStatus(
      await rawCall(raw.expire.bind(raw), { key: Buffer.alloc(MAX_KEY + 1, 'g'), ttlMs: 1000 }),
      status.INVALID_ARGUMENT,
      'TOO_LARGE',
      /4097/,
    );
    expectStatus(
      await rawCall(raw.get.bind(raw), { key: Buffer.alloc(0), stale: false }),
      status.INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /empty/,
    );
    // One bad item fails the whole batch before anything is proposed: the good items are not written.
    expectStatus(
      await rawCall(raw.batchPut.bind(raw), {
        puts: [
          { key: Buffer.from('batch-good'), value: Buffer.from('g'), ttlMs: 0 },
          { key: Buffer.from('guard'), value: Buffer.alloc(MAX_VALUE + 1), ttlMs: 0 },
        ],
      }),
      status.INVALID_ARGUMENT,
      'TOO_LARGE',
      /bytes/,
    );
    expectStatus(
      await rawCall(raw.batchGet.bind(raw), { keys: [Buffer.from('guard'), Buffer.alloc(0)], stale: false }),
      status.INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
      /empty/,
    );

    const after = await client.get('guard');
    expect(after).toEqual({ value: Buffer.from('original'), modIndex: before.modIndex, expireAtMs: 0 });
    // Nothing reached the guard shard's Raft log: the next write there takes the very next index.
    expect((await client.put('guard', 'next')).modIndex).toBe(before.modIndex + 1);
    expect(await client.exists('batch-good')).toBe(false);
    const keys: string[] = [];
    for await (const k of client.keys('*')) keys.push(k.toString());
    expect(keys.filter((k) => !k.startsWith('kkkk')).sort()).toEqual(['big', 'guard']);
  });
});

test('a reader that closes the pipe early (omnictl get big | head -c 1) ends omnictl quietly with exit 0', async () => {
  const { spawn } = await import('node:child_process');
  // Larger than a pipe's buffer, so omnictl is still writing when the reader goes away.
  await client.put('pipe:big', Buffer.alloc(MAX_VALUE, 0x62));
  const child = spawn(process.execPath, [CLI_MAIN, '--router', cluster.routerAddress, 'get', 'pipe:big'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
});
