// bench:compare — OmniDict against etcd on this machine. Starts a 3-member etcd cluster and a local
// OmniDict cluster (3 PD, 3 nodes, 1 router), runs omnictl's workload engine against each in turn
// through Node + grpc-js clients, and prints one comparison table, a shard-scaling table and the
// idle CPU of a node hosting many shards. Exit 0 when every cell was measured, 1 when some failed,
// 2 when the run could not be carried out, 130/143 on Ctrl-C/SIGTERM (after stopping everything).

import { writeFile } from 'node:fs/promises';
import {
  findCliMain,
  parseDuration,
  parsePositiveDuration,
  parsePositiveInt,
  parseRatio,
  parseRunDuration,
  parseUint,
} from '@omnidict/cli';
import { Command, Option } from 'commander';
import { Cleanup } from './cleanup.js';
import { type CompareOptions, CompareRun } from './compareRun.js';
import { parseCountList, parseSystems, parseWorkloads } from './options.js';
import { renderReport } from './report.js';
import type { OmniClientMode } from './subjects.js';

interface Flags {
  systems: CompareOptions['systems'];
  workloads: CompareOptions['workloads'];
  concurrency: number[];
  duration: number;
  warmup: number;
  valueSize: number;
  keys: number;
  readRatio: number;
  omniShards: number;
  omniClient: OmniClientMode;
  shards: number[];
  balancedShards: number[];
  shardConcurrency: number;
  idleShards: number;
  idleSample: number;
  idleSettle: number;
  settle: number;
  seed?: number;
  cli?: string;
  etcd?: string;
  install: boolean;
  keep: boolean;
  json?: string;
}

const program = new Command('bench:compare')
  .description('OmniDict against a 3-member etcd cluster on this machine, same workloads, same client stack')
  .option('--systems <list>', 'etcd,omnidict', parseSystems, ['etcd', 'omnidict'])
  .option('--workloads <list>', 'put,get,mixed (get = linearizable read)', parseWorkloads, ['put', 'get', 'mixed'])
  .option('--concurrency <list>', 'concurrent clients per cell', parseCountList, [1, 16, 64, 256])
  .option('--duration <duration>', 'measured time per cell', parseRunDuration, 5000)
  .option(
    '--warmup <duration>',
    'warm-up per system (and per shard-table cluster) before its first cell: half put, half mixed (0 = none)',
    parseDuration,
    5000,
  )
  .option('--value-size <bytes>', 'bytes per value', parsePositiveInt, 256)
  .option('--keys <n>', 'size of the key space (preloaded for reads)', parsePositiveInt, 1000)
  .option('--read-ratio <ratio>', 'fraction of gets in the mixed workload', parseRatio, 0.9)
  .option('--omni-shards <n>', 'shards of the OmniDict cluster in the comparison', parsePositiveInt, 8)
  .addOption(
    new Option(
      '--omni-client <mode>',
      'how the benchmark reaches OmniDict: unary SDK calls to the router (like etcd3), the SDK pipelined stream, or embedded (the router inside the benchmark process)',
    )
      .choices(['unary', 'pipeline', 'embedded'])
      .default('unary'),
  )
  .option('--shards <list>', 'shard counts of the scaling table, or none', parseCountList, [1, 8, 64])
  .option(
    '--balanced-shards <list>',
    'shard counts measured again with leaders balanced across nodes (--leader-placement balance), or none',
    parseCountList,
    [8],
  )
  .option('--shard-concurrency <n>', 'clients in the scaling table', parsePositiveInt, 64)
  .option('--idle-shards <n>', 'shards of the idle-CPU measurement (0 = skip)', parseUint, 1000)
  .option(
    '--settle <duration>',
    'wait after each OmniDict cluster is up before measuring (0 = none)',
    parseDuration,
    5000,
  )
  .option('--idle-sample <duration>', 'how long idle CPU is sampled', parsePositiveDuration, 10_000)
  .option('--idle-settle <duration>', 'wait before sampling idle CPU', parseDuration, 15_000)
  .option('--seed <n>', 'key-sequence seed (printed)', parseUint)
  .option('--cli <path>', 'omnictl entry point (default: packages/cli/dist/main.js of this checkout)')
  .option('--etcd <path>', 'etcd binary (default: etcd on PATH, installed with apt-get when missing)')
  .option('--no-install', 'fail instead of installing etcd-server when etcd is missing')
  .option('--keep', 'keep data directories and logs')
  .option('--json <file>', 'also write every figure as JSON to this file')
  .addHelpText(
    'after',
    `
Examples:
  pnpm bench:compare
  pnpm bench:compare -- --workloads put --concurrency 1,64 --duration 3s --shards none --idle-shards 0
  pnpm bench:compare -- --systems omnidict --omni-client pipeline --json /tmp/omni.json`,
  );

async function main(): Promise<number> {
  // `pnpm bench:compare -- --flags` hands the script a literal `--` first.
  program.parse(process.argv.filter((a, i) => !(i === 2 && a === '--')));
  const f = program.opts<Flags>();
  const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
  const cliMain = f.cli ?? findCliMain([process.argv[1] ?? '.', process.cwd()]);
  if (!cliMain) {
    say('cannot find packages/cli/dist/main.js; run "pnpm build" or pass --cli');
    return 2;
  }
  const options: CompareOptions = {
    systems: f.systems,
    workloads: f.workloads,
    concurrency: f.concurrency,
    durationMs: f.duration,
    warmupMs: f.warmup,
    valueSizeBytes: f.valueSize,
    keys: f.keys,
    readRatio: f.readRatio,
    omniShards: f.omniShards,
    omniClient: f.omniClient,
    shardCounts: f.shards,
    balancedShardCounts: f.balancedShards,
    shardConcurrency: f.shardConcurrency,
    idleShards: f.idleShards,
    idleSampleMs: f.idleSample,
    idleSettleMs: f.idleSettle,
    settleMs: f.settle,
    seed: f.seed ?? Math.floor(Math.random() * 2 ** 31),
    cliMain,
    install: f.install,
    keep: f.keep === true,
    ...(f.etcd ? { etcdBinary: f.etcd } : {}),
  };
  say(`seed ${options.seed}; ${(options.durationMs / 1000).toFixed(1)} s per cell`);
  const cleanup = new Cleanup(say);
  const uninstall = cleanup.installProcessHandlers();
  try {
    const report = await new CompareRun(options, cleanup, say).run();
    process.stdout.write(`${renderReport(report)}\n`);
    if (f.json) await writeFile(f.json, `${JSON.stringify(report, null, 2)}\n`);
    const failed =
      report.cells.some((c) => !c.result) ||
      report.shardCells.some((c) => !c.result) ||
      report.idle?.error !== undefined;
    return failed ? 1 : 0;
  } catch (err) {
    say(`failed: ${(err as Error).message}`);
    await cleanup.stopAll();
    return 2;
  } finally {
    uninstall();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
