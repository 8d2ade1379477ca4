/**
 * simMain is the simulation CLI (`pnpm --filter @omnidict/raft run sim -- ...`):
 *
 *   --seeds N [--start S]   run seeds S..S+N-1 (S defaults to 1); print `N seeds passed`, or the
 *                           first failing seed, its error and the command that reruns it
 *   --seed S                run one seed and print its readable trace (passing or not)
 *   --steps K               random-phase events per seed (default DEFAULT_STEPS, 2500)
 *
 * Exit code 0 when every seed passed, 1 on a failing seed, 2 on bad usage. Runs on load.
 */
import { runSeeds } from './runSeeds.js';
import { rerunCommand, runSimulation } from './simulation.js';

function parseArgs(argv: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') continue;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const v = Number(argv[++i]);
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
    out.set(a.slice(2), v);
  }
  for (const k of out.keys()) {
    if (!['seeds', 'start', 'seed', 'steps'].includes(k)) throw new Error(`unknown option --${k}`);
  }
  return out;
}

function main(): number {
  let args: Map<string, number>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`sim: ${(e as Error).message}\nusage: sim --seeds N [--start S] | --seed S [--steps K]\n`);
    return 2;
  }
  const steps = args.get('steps');
  const opts = steps === undefined ? {} : { steps };
  const one = args.get('seed');
  if (one !== undefined) {
    const r = runSimulation({ ...opts, seed: one, trace: true });
    if (r.ok) {
      process.stdout.write(`${r.trace ?? ''}\n\nseed ${one} passed: ${JSON.stringify(r.stats)}\n`);
      return 0;
    }
    process.stdout.write(`${r.trace}\n\nseed ${one} FAILED: ${r.error}\n`);
    return 1;
  }
  const count = args.get('seeds') ?? 100;
  const start = args.get('start') ?? 1;
  const began = Date.now();
  const r = runSeeds(start, count, opts);
  const secs = ((Date.now() - began) / 1000).toFixed(1);
  if (r.ok) {
    process.stdout.write(`${count} seeds passed (seeds ${start}..${start + count - 1}, ${secs}s)\n`);
    return 0;
  }
  const f = r.failure;
  process.stdout.write(
    `seed ${f.seed} FAILED after ${r.passed} passing seeds: ${f.error}\nrerun: ${rerunCommand(f.seed)}` +
      `${steps === undefined ? '' : ` --steps ${steps}`}\n`,
  );
  return 1;
}

process.exitCode = main();
