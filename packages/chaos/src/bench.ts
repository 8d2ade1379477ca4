// Checker benchmark: prints how long the linearizability and lost-write checks take on generated
// histories of several shapes. Figures only; nothing here asserts on time.
//
//   node packages/chaos/dist/bench.js [--seed N]

import { checkLinearizability } from './checker/linearizability.js';
import { checkLostWrites } from './checker/lostWrites.js';
import { Rng } from './rng.js';
import type { GenerateOptions } from './testing/historyGenerator.js';
import { generateLinearizableHistory, mutateHistory } from './testing/historyGenerator.js';

const seedArg = process.argv.indexOf('--seed');
const seed = seedArg >= 0 ? Number(process.argv[seedArg + 1]) : 1;

const shapes: { name: string; options: Partial<GenerateOptions> }[] = [
  { name: '10k ops, 20 keys, 10 clients', options: { ops: 10_000, keys: 20, clients: 10, maxJitterMs: 10 } },
  { name: '10k ops, 20 keys, 50 clients', options: { ops: 10_000, keys: 20, clients: 50, maxJitterMs: 20 } },
  { name: '10k ops, 5 keys, 10 clients', options: { ops: 10_000, keys: 5, clients: 10, maxJitterMs: 10 } },
  { name: '2k ops, 1 key, 10 clients', options: { ops: 2_000, keys: 1, clients: 10, maxJitterMs: 10 } },
  {
    name: '10k ops, 20 keys, 10 clients, 10% unknown',
    options: { ops: 10_000, keys: 20, clients: 10, unknownFraction: 0.1 },
  },
];

console.log(`checker bench, seed ${seed} (ttl slack 0; times in ms)`);
console.log('shape | ops | verdict | check ms | slowest key ms | lost-write ms | mutated verdict | mutated ms');
for (const shape of shapes) {
  const history = generateLinearizableHistory({ ...shape.options, seed });
  let started = performance.now();
  const result = checkLinearizability(history, { ttlSlackMs: 0, timeBudgetMsPerKey: 60_000 });
  const checkMs = performance.now() - started;
  const slowest = Math.max(...result.keys.map((k) => k.elapsedMs));
  started = performance.now();
  checkLostWrites(history, { ttlSlackMs: 0 });
  const lostMs = performance.now() - started;
  const mutation = mutateHistory(history, 'staleRead', new Rng(seed));
  let mutated = 'n/a';
  let mutatedMs = 0;
  if (mutation !== undefined) {
    started = performance.now();
    mutated = checkLinearizability(mutation.history, { ttlSlackMs: 0, timeBudgetMsPerKey: 60_000 }).verdict;
    mutatedMs = performance.now() - started;
  }
  console.log(
    [
      shape.name,
      history.ops.length,
      result.verdict,
      checkMs.toFixed(0),
      slowest.toFixed(0),
      lostMs.toFixed(0),
      mutated,
      mutatedMs.toFixed(0),
    ].join(' | '),
  );
}
