import type { BenchResult, Workload } from '@omnidict/cli';
import { type Cell, comparisonTable, formatMs, formatRatio, formatTable, ratio, shardTable } from '../src/table.js';

function result(workload: Workload, concurrency: number, opsPerSec: number, p50: number, p99: number): BenchResult {
  return {
    workload,
    distribution: 'uniform',
    readRatio: null,
    concurrency,
    valueSizeBytes: 256,
    keys: 1000,
    seed: 1,
    ops: Math.round(opsPerSec * 5),
    errors: 0,
    errorsByCode: {},
    firstErrors: {},
    casConflicts: 0,
    elapsedMs: 5000,
    opsPerSec,
    latencyMs: { mean: p50, p50, p90: p99, p99, max: p99 },
  };
}

const cell = (system: string, workload: Workload, c: number, ops: number, p50: number, p99: number): Cell => ({
  system,
  workload,
  concurrency: c,
  result: result(workload, c, ops, p50, p99),
});

describe('ratio', () => {
  test('is subject over baseline', () => {
    expect(ratio(3000, 1000)).toBe(3);
    expect(ratio(0.5, 2)).toBe(0.25);
  });

  test('is missing, not infinite or zero, when a side is missing or the baseline is zero', () => {
    expect(ratio(100, 0)).toBeNull();
    expect(ratio(null, 10)).toBeNull();
    expect(ratio(10, undefined)).toBeNull();
    expect(ratio(Number.NaN, 10)).toBeNull();
    expect(formatRatio(null)).toBe('–');
    expect(formatRatio(2.345)).toBe('2.35×');
  });
});

test('formatMs keeps three significant digits', () => {
  expect([0.4123, 4.123, 41.23, 412.3].map(formatMs)).toEqual(['0.412', '4.12', '41.2', '412']);
  expect(formatMs(undefined)).toBe('–');
});

test('formatTable pads columns, right-aligns numeric ones and escapes pipes', () => {
  const text = formatTable(
    ['name', 'n'],
    [
      ['a|b', '1'],
      ['long name', '1000'],
    ],
    [false, true],
  );
  expect(text.split('\n')).toEqual([
    '| name      |    n |',
    '| --------- | ---: |',
    '| a\\|b      |    1 |',
    '| long name | 1000 |',
  ]);
});

test('comparisonTable puts both systems and their ratios on one row per workload and concurrency', () => {
  const cells: Cell[] = [
    cell('etcd', 'put', 1, 500, 1.2, 9),
    cell('etcd', 'put', 64, 2000, 30, 80),
    cell('OmniDict', 'put', 1, 250, 2.4, 12),
    cell('OmniDict', 'put', 64, 5000, 12, 40),
  ];
  const lines = comparisonTable(cells, 'OmniDict', 'etcd').split('\n');
  expect(lines).toHaveLength(4);
  const cols = (line: string) =>
    line
      .split('|')
      .slice(1, -1)
      .map((s) => s.trim());
  expect(cols(lines[0]!)).toEqual([
    'workload',
    'clients',
    'etcd ops/s',
    'etcd p50 ms',
    'etcd p99 ms',
    'OmniDict ops/s',
    'OmniDict p50 ms',
    'OmniDict p99 ms',
    'ops/s ratio',
    'p50 ratio',
  ]);
  expect(cols(lines[2]!)).toEqual(['put', '1', '500', '1.20', '9.00', '250', '2.40', '12.0', '0.50×', '2.00×']);
  expect(cols(lines[3]!)).toEqual(['put', '64', '2,000', '30.0', '80.0', '5,000', '12.0', '40.0', '2.50×', '0.40×']);
});

test('comparisonTable shows a failed cell as – and explains it under the table', () => {
  const cells: Cell[] = [
    cell('etcd', 'get', 16, 4000, 3, 10),
    { system: 'OmniDict', workload: 'get', concurrency: 16, result: null, error: 'router did not answer' },
  ];
  const withErrors = cell('etcd', 'mixed', 16, 100, 3, 10);
  withErrors.result!.errors = 3;
  withErrors.result!.errorsByCode = { GRPCDeadlineExceededError: 3 };
  const text = comparisonTable([...cells, withErrors], 'OmniDict', 'etcd');
  expect(text).toContain('| get (linearizable) |');
  expect(text).toContain('- OmniDict get at 16 clients: not measured (router did not answer)');
  expect(text).toContain('- etcd mixed at 16 clients: 3 failed operations (GRPCDeadlineExceededError 3)');
  const row = text.split('\n')[2]!;
  expect(
    row
      .split('|')
      .slice(6, 11)
      .map((s) => s.trim()),
  ).toEqual(['–', '–', '–', '–', '–']);
});

test('shardTable compares each shard count and leader placement with the first measured row', () => {
  const text = shardTable([
    { shards: 1, leaders: 'gather', concurrency: 64, result: result('put', 64, 1000, 50, 90) },
    { shards: 8, leaders: 'gather', concurrency: 64, result: result('put', 64, 3000, 20, 40) },
    { shards: 64, leaders: 'gather', concurrency: 64, result: null, error: 'cluster up timed out' },
    { shards: 8, leaders: 'balance', concurrency: 64, result: result('put', 64, 1500, 30, 60) },
  ]);
  const rows = text.split('\n');
  expect(rows[2]).toMatch(/\|\s+1 \| on one node \|\s+64 \|\s+1,000 \|.*\|\s+1\.00× \|$/);
  expect(rows[3]).toMatch(/\|\s+8 \| on one node \|.*\|\s+3\.00× \|$/);
  expect(rows[4]).toMatch(/\|\s+64 \| on one node \|\s+64 \|\s+– \|/);
  expect(rows[5]).toMatch(/\|\s+8 \| balanced\s+\|.*\|\s+1\.50× \|$/);
  expect(text).toContain('- 64 shards (gather) at 64 clients: not measured (cluster up timed out)');
});
