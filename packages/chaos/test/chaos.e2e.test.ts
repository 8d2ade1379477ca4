import path from 'node:path';
import { buildBinaries } from '@omnidict/cli';
import { ALL_FAULTS, removeRunDir, runChaos } from '../src/runner/chaosRun.js';

// End to end: a short chaos run against real processes (PD, storage nodes, router) started by the
// omnictl launcher, with every kind of fault. It builds the binaries first (tsc -b is fast), so it
// never skips: a missing or broken binary fails the test with the build's or the launcher's output.

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const seed = Number(process.env.CHAOS_TEST_SEED ?? Math.floor(Math.random() * 1_000_000));

test('a 30 s chaos run finds no anomalies and no lost writes', async () => {
  console.log(`chaos e2e: seed ${seed} (CHAOS_TEST_SEED=${seed} to rerun)`);
  buildBinaries(repoRoot);
  const lines: string[] = [];
  const report = await runChaos({
    seed,
    durationMs: 30_000,
    clients: 6,
    keys: 6,
    nodes: 4,
    pds: 3,
    shards: 4,
    opTimeoutMs: 2000,
    ttlSlackMs: 50,
    faults: ALL_FAULTS,
    cliMain: path.join(repoRoot, 'packages', 'cli', 'dist', 'main.js'),
    keep: false,
    log: (line) => lines.push(line),
  });
  const summary = `seed ${seed}, history ${report.historyPath}\n${lines.join('\n')}`;
  expect({ anomalies: report.anomalies, lost: report.lost, summary }).toEqual({ anomalies: 0, lost: 0, summary });
  expect(report.ops).toBeGreaterThan(100);
  expect(report.faults).toBeGreaterThan(3);
  removeRunDir(report);
}, 180_000);
