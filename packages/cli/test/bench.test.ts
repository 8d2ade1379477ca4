import { KvTwin } from '@omnidict/client';
import { seededRng } from '@omnidict/raft';
import { zipfian } from '../src/bench/zipfian.js';
import { omnictl } from './capture.js';

let twin: KvTwin;

beforeAll(async () => {
  twin = await KvTwin.start();
});

afterAll(async () => {
  await twin.stop();
});

test('bench prints ops/s, latency percentiles and errors', async () => {
  const res = await omnictl([
    '--router',
    twin.address,
    'bench',
    '--workload',
    'put',
    '--ops',
    '300',
    '--concurrency',
    '8',
  ]);
  expect(res.code).toBe(0);
  for (const label of ['ops/s', 'latency p50', 'latency p90', 'latency p99', 'latency max', 'errors']) {
    expect(res.stdout).toContain(label);
  }
  expect(res.stdout).toMatch(/│ ops\s+│ 300\s+│/);
  expect(res.stderr).toBe('');
  expect(twin.callCount('Put')).toBe(300);
});

test('bench --json is one result object; mixed with zipfian over a pipeline', async () => {
  const res = await omnictl([
    '--router',
    twin.address,
    '--json',
    'bench',
    '--workload',
    'mixed',
    '--read-ratio',
    '0.8',
    '--distribution',
    'zipfian',
    '--keys',
    '200',
    '--ops',
    '500',
    '--pipeline',
    '--seed',
    '42',
  ]);
  expect(res.code).toBe(0);
  const r = JSON.parse(res.stdout);
  expect(r).toMatchObject({
    workload: 'mixed',
    distribution: 'zipfian',
    readRatio: 0.8,
    seed: 42,
    ops: 500,
    errors: 0,
  });
  expect(r.opsPerSec).toBeGreaterThan(0);
  expect(r.latencyMs.p50).toBeLessThanOrEqual(r.latencyMs.p99);
  expect(r.latencyMs.p99).toBeLessThanOrEqual(r.latencyMs.max);
  expect(twin.callCount('BatchPut')).toBe(2); // preload of 200 keys
});

test('cas workload counts lost races as conflicts, failures as errors by code', async () => {
  twin.fail('CompareAndSwap', 'UNAVAILABLE', 5);
  const res = await omnictl([
    '--router',
    twin.address,
    '--json',
    'bench',
    '--workload',
    'cas',
    '--keys',
    '5',
    '--ops',
    '200',
    '--concurrency',
    '4',
  ]);
  const r = JSON.parse(res.stdout);
  expect(r.errors).toBe(5);
  expect(r.errorsByCode).toEqual({ UNAVAILABLE: 5 });
  expect(r.firstErrors.UNAVAILABLE.message).toMatch(/./);
  expect(r.firstErrors.UNAVAILABLE.afterMs).toBeGreaterThanOrEqual(0);
  expect(r.ops).toBe(195);
});

test('bench --duration stops on time; progress goes to stderr only on a TTY', async () => {
  const res = await omnictl(
    ['--router', twin.address, 'bench', '--workload', 'get', '--keys', '10', '--duration', '1200ms'],
    {
      tty: true,
    },
  );
  expect(res.code).toBe(0);
  expect(res.stderr).toMatch(/ops\/s {2}0 errors/);
});

test('zipfian draws favour low indexes and stay in range', () => {
  const next = zipfian(1000, seededRng(7));
  const counts = new Array<number>(1000).fill(0);
  for (let i = 0; i < 20_000; i++) {
    const k = next();
    expect(k).toBeGreaterThanOrEqual(0);
    expect(k).toBeLessThan(1000);
    counts[k]! += 1;
  }
  expect(counts[0]!).toBeGreaterThan(counts[500]! * 20);
});
