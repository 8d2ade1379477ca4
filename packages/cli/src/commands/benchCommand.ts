import type { OmniClient } from '@omnidict/client';
import { type Command, Option } from 'commander';
import {
  type BenchOptions,
  type BenchResult,
  benchKey,
  type Distribution,
  runBench,
  type Workload,
} from '../bench/runBench.js';
import type { CliContext } from '../cliContext.js';
import { type GlobalOptions, printFields, printJson } from '../output.js';
import { oneOf, parsePositiveInt, parseRatio, parseRunDuration, parseUint } from '../parsers.js';
import { withClient } from './kvCommands.js';

interface BenchFlags {
  workload: Workload;
  readRatio: number;
  concurrency: number;
  valueSize: number;
  keys: number;
  duration?: number;
  ops?: number;
  distribution: Distribution;
  pipeline?: boolean;
  preload: boolean;
  keyPrefix: string;
  seed?: number;
}

/** Writes every key once (100 per BatchPut) so reads hit existing data. */
async function preload(client: OmniClient, opts: BenchOptions, value: Buffer): Promise<void> {
  for (let i = 0; i < opts.keys; i += 100) {
    const items = [];
    for (let j = i; j < Math.min(opts.keys, i + 100); j++) items.push({ key: benchKey(opts, j), value });
    await client.batchPut(items);
  }
}

export function addBenchCommand(program: Command, ctx: CliContext): void {
  program
    .command('bench')
    .description('benchmark the cluster: prints ops/s, latency percentiles and errors')
    .addOption(
      new Option('--workload <kind>', 'put | get | mixed | cas')
        .argParser(oneOf('put', 'get', 'mixed', 'cas'))
        .default('mixed'),
    )
    .option('--read-ratio <ratio>', 'fraction of gets in the mixed workload', parseRatio, 0.9)
    .option('--concurrency <n>', 'requests in flight', parsePositiveInt, 16)
    .option('--value-size <bytes>', 'bytes per value', parseUint, 100)
    .option('--keys <n>', 'size of the key space', parsePositiveInt, 10_000)
    .addOption(
      new Option('--duration <duration>', 'run this long (default 10s unless --ops)').argParser(parseRunDuration),
    )
    .option('--ops <n>', 'stop after this many operations', parsePositiveInt)
    .addOption(
      new Option('--distribution <kind>', 'uniform | zipfian key choice')
        .argParser(oneOf('uniform', 'zipfian'))
        .default('uniform'),
    )
    .option('--pipeline', 'send requests over one multiplexed stream instead of unary calls')
    .option('--no-preload', 'skip writing every key before a get/mixed/cas run')
    .option('--key-prefix <prefix>', 'prefix of benchmark keys', 'bench:')
    .option('--seed <n>', 'random seed (printed, to rerun the same key sequence)', parseUint)
    .addHelpText(
      'after',
      '\nExamples:\n  omnictl bench --workload put --concurrency 64 --duration 30s\n  omnictl bench --workload mixed --read-ratio 0.95 --distribution zipfian --pipeline\n  omnictl --json bench --workload get --ops 100000',
    )
    .action(async (flags: BenchFlags, cmd: Command) => {
      const opts: BenchOptions = {
        workload: flags.workload,
        readRatio: flags.readRatio,
        concurrency: flags.concurrency,
        valueSizeBytes: flags.valueSize,
        keys: flags.keys,
        distribution: flags.distribution,
        keyPrefix: flags.keyPrefix,
        seed: flags.seed ?? Math.floor(Math.random() * 2 ** 31),
      };
      if (flags.ops !== undefined) opts.ops = flags.ops;
      if (flags.duration !== undefined || flags.ops === undefined) opts.durationMs = flags.duration ?? 10_000;
      await withClient(cmd, async (client, g) => {
        if (flags.preload && flags.workload !== 'put')
          await preload(client, opts, Buffer.alloc(opts.valueSizeBytes, 0x61));
        const pipeline = flags.pipeline ? client.pipeline({ maxInFlight: opts.concurrency }) : null;
        let stop: () => void = () => undefined;
        const stopSignal = new Promise<void>((resolve) => {
          stop = resolve;
        });
        const unsubscribe = ctx.onSignal?.(() => stop()) ?? (() => undefined);
        const live = ctx.stderrIsTTY;
        try {
          const result = await runBench(pipeline ?? client, opts, {
            stopSignal,
            ...(live
              ? {
                  onProgress: (p) =>
                    ctx.stderr(
                      `\r\x1b[K${(p.elapsedMs / 1000).toFixed(1)}s  ${p.ops} ops  ${Math.round(p.ops / (p.elapsedMs / 1000))} ops/s  ${p.errors} errors`,
                    ),
                }
              : {}),
          });
          if (live) ctx.stderr('\r\x1b[K');
          printResult(ctx, g, result);
        } finally {
          unsubscribe();
          pipeline?.close();
        }
      });
    });
}

function printResult(ctx: CliContext, g: GlobalOptions, r: BenchResult): void {
  if (g.json) {
    printJson(ctx, r);
    return;
  }
  const errors = Object.entries(r.errorsByCode)
    .map(([code, n]) => `${code}: ${n}`)
    .join(', ');
  printFields(ctx, [
    ['workload', r.workload + (r.readRatio === null ? '' : ` (read ratio ${r.readRatio})`)],
    ['distribution', `${r.distribution} over ${r.keys} keys`],
    ['concurrency', r.concurrency],
    ['value size', `${r.valueSizeBytes} B`],
    ['seed', r.seed],
    ['elapsed', `${(r.elapsedMs / 1000).toFixed(2)} s`],
    ['ops', r.ops],
    ['ops/s', r.opsPerSec.toFixed(1)],
    ['latency p50', `${r.latencyMs.p50.toFixed(3)} ms`],
    ['latency p90', `${r.latencyMs.p90.toFixed(3)} ms`],
    ['latency p99', `${r.latencyMs.p99.toFixed(3)} ms`],
    ['latency max', `${r.latencyMs.max.toFixed(3)} ms`],
    ['errors', r.errors === 0 ? '0' : `${r.errors} (${errors})`],
    ...Object.entries(r.firstErrors).map(([code, e]): [string, string] => [
      `first ${code}`,
      `after ${e.afterMs.toFixed(0)} ms: ${e.message}`,
    ]),
    ...(r.workload === 'cas' ? ([['cas conflicts', r.casConflicts]] as [string, number][]) : []),
  ]);
}
