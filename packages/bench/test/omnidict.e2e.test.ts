import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildBinaries } from '@omnidict/cli';
import { Cleanup } from '../src/cleanup.js';
import { type CompareOptions, CompareRun } from '../src/compareRun.js';
import { isAlive } from '../src/processes.js';
import { renderReport } from '../src/report.js';

// End to end, OmniDict side only (etcd is not assumed installed, and tests never skip): a tiny
// bench:compare run against real local clusters started by the omnictl launcher — the comparison
// cells, one shard-scaling row and the idle-CPU sample — then everything it started must be gone.
// It builds the binaries first (tsc -b is fast), so a broken build fails the test with its output.

const repoRoot = path.resolve(__dirname, '..', '..', '..');

test('a tiny comparison run measures OmniDict, scales shards, samples idle CPU and stops everything', async () => {
  buildBinaries(repoRoot);
  const lines: string[] = [];
  const options: CompareOptions = {
    systems: ['omnidict'],
    workloads: ['put', 'get'],
    concurrency: [4],
    durationMs: 1000,
    warmupMs: 0,
    valueSizeBytes: 256,
    keys: 100,
    readRatio: 0.9,
    omniShards: 4,
    omniClient: 'unary',
    shardCounts: [2],
    balancedShardCounts: [2],
    shardConcurrency: 8,
    idleShards: 16,
    idleSampleMs: 1000,
    idleSettleMs: 1000,
    settleMs: 0,
    seed: 7,
    cliMain: path.join(repoRoot, 'packages', 'cli', 'dist', 'main.js'),
    install: false,
    keep: false,
  };
  const cleanup = new Cleanup((l) => lines.push(l));
  const run = new CompareRun(options, cleanup, (l) => lines.push(l));
  const report = await run.run();
  const log = lines.join('\n');

  expect({ cells: report.cells.map((c) => [c.workload, c.concurrency, c.error ?? 'ok']), log }).toEqual({
    cells: [
      ['put', 4, 'ok'],
      ['get', 4, 'ok'],
    ],
    log,
  });
  for (const c of report.cells) {
    expect(c.system).toBe('OmniDict');
    expect(c.result!.ops).toBeGreaterThan(0);
    expect({ workload: c.workload, firstErrors: c.result!.firstErrors, log }).toEqual({
      workload: c.workload,
      firstErrors: {},
      log,
    });
    expect(c.result!.latencyMs.p50).toBeGreaterThan(0);
  }
  expect(report.shardCells.map((c) => [c.shards, c.leaders])).toEqual([
    [2, 'gather'],
    [2, 'balance'],
  ]);
  for (const c of report.shardCells) expect(c.result?.ops).toBeGreaterThan(0);
  expect(report.idle?.error).toBeUndefined();
  expect(report.idle?.nodes.map((n) => n.id).sort()).toEqual([1, 2, 3]);
  for (const n of report.idle!.nodes) expect(Number.isFinite(n.cpuPercent) && n.cpuPercent >= 0).toBe(true);

  const text = renderReport(report);
  expect(text).toMatch(/\| put {16}\| +4 \| +– \|/);
  expect(text).toContain('idle CPU with 16 shards');
  expect(text).toMatch(/\| +2 \| on one node \|/);
  expect(text).toMatch(/\| +2 \| balanced +\|/);

  // Four clusters of 7 processes each were started; none may be left, nor the working directory.
  expect(run.startedPids()).toHaveLength(28);
  expect(run.startedPids().filter(isAlive)).toEqual([]);
  expect(existsSync(await run.workDir())).toBe(false);
  expect(cleanup.size).toBe(0);
}, 240_000);
