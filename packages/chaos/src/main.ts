// omnidict-chaos: `pnpm chaos -- --duration SECONDS --seed S`. Runs a local cluster under faults
// with a register workload, checks the history, and ends with exactly one line
//   ops=N faults=M anomalies=K lost=L
// Exit 0 when K = L = 0; 1 when an anomaly or a lost write was found (the history file and the
// cluster's logs are kept and their path printed); 2 when the run itself could not be carried out.

import { findCliMain } from '@omnidict/cli';
import { Command, InvalidArgumentError } from 'commander';
import { randomSeed } from './rng.js';
import { ALL_FAULTS, removeRunDir, runChaos } from './runner/chaosRun.js';
import type { FaultKind } from './runner/nemesis.js';

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function faultList(value: string): FaultKind[] {
  if (value === 'none') return [];
  const kinds = value.split(',').map((s) => s.trim());
  for (const kind of kinds) {
    if (!(ALL_FAULTS as string[]).includes(kind)) throw new InvalidArgumentError(`unknown fault ${kind}`);
  }
  return kinds as FaultKind[];
}

const program = new Command('omnidict-chaos')
  .description('Run OmniDict under faults and check the clients’ history for linearizability.')
  .option('--duration <seconds>', 'how long the workload and the nemesis run', integer, 30)
  .option('--seed <n>', 'seed of the workload and the nemesis (random when omitted; printed)', integer)
  .option('--clients <n>', 'concurrent logical clients', integer, 8)
  .option('--keys <n>', 'size of the key set', integer, 8)
  .option('--nodes <n>', 'storage nodes', integer, 4)
  .option('--pds <n>', 'placement driver replicas', integer, 3)
  .option('--shards <n>', 'initial shards', integer, 8)
  .option('--op-timeout <ms>', 'deadline of each client call', integer, 2000)
  .option('--ttl-slack <ms>', 'allowed clock disagreement between clients and leaders for TTL checks', integer, 50)
  .option('--faults <list>', `comma-separated faults, or none (${ALL_FAULTS.join(',')})`, faultList, ALL_FAULTS)
  .option('--cli <path>', 'omnictl entry point (default: packages/cli/dist/main.js of this checkout)')
  .option('--keep', 'keep the run directory even after a clean run', false)
  .option('--embedded', 'clients route in process (embedRouter) instead of through the router process', false);

async function main(): Promise<number> {
  // `pnpm chaos -- --duration 60` passes the `--` through; drop it so the flags parse as flags.
  program.parse(process.argv.filter((a, i) => !(i === 2 && a === '--')));
  const opts = program.opts<{
    duration: number;
    seed?: number;
    clients: number;
    keys: number;
    nodes: number;
    pds: number;
    shards: number;
    opTimeout: number;
    ttlSlack: number;
    faults: FaultKind[];
    cli?: string;
    keep: boolean;
    embedded: boolean;
  }>();
  const cliMain = opts.cli ?? findCliMain([process.argv[1] ?? '.', process.cwd()]);
  if (cliMain === undefined) {
    console.error('omnidict-chaos: error: cannot find packages/cli/dist/main.js; build the cli or pass --cli');
    return 2;
  }
  const seed = opts.seed ?? randomSeed();
  const report = await runChaos({
    seed,
    durationMs: opts.duration * 1000,
    clients: opts.clients,
    keys: opts.keys,
    nodes: opts.nodes,
    pds: opts.pds,
    shards: opts.shards,
    opTimeoutMs: opts.opTimeout,
    ttlSlackMs: opts.ttlSlack,
    faults: opts.faults,
    cliMain,
    keep: opts.keep,
    embedded: opts.embedded,
    log: (line) => console.log(line),
  });
  const failed = report.anomalies > 0 || report.lost > 0;
  if (failed || opts.keep) console.log(`history: ${report.historyPath} (rerun with --seed ${seed})`);
  else removeRunDir(report);
  if (report.undecided > 0) console.log(`chaos: ${report.undecided} keys undecided (search budget exceeded)`);
  console.log(`ops=${report.ops} faults=${report.faults} anomalies=${report.anomalies} lost=${report.lost}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`omnidict-chaos: error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
