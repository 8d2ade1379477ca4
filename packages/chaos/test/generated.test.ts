import { checkLinearizability } from '../src/checker/linearizability.js';
import { Rng } from '../src/rng.js';
import type { MutationKind } from '../src/testing/historyGenerator.js';
import { generateLinearizableHistory, mutateHistory } from '../src/testing/historyGenerator.js';

// Randomized: histories linearizable by construction must be accepted; mutated ones, broken by
// construction, must be rejected. Rerun a failure with CHAOS_TEST_SEED=<seed printed below>.

const baseSeed = Number(process.env.CHAOS_TEST_SEED ?? Math.floor(Math.random() * 1_000_000));
const RUNS = 40;

beforeAll(() => {
  console.log(`generated histories: base seed ${baseSeed} (CHAOS_TEST_SEED=${baseSeed} to rerun)`);
});

function shape(seed: number): Parameters<typeof generateLinearizableHistory>[0] {
  const rng = new Rng(seed ^ 0x5eed);
  return {
    seed,
    ops: rng.between(50, 400),
    keys: rng.between(1, 4),
    clients: rng.between(2, 10),
    maxJitterMs: rng.pick([0.5, 2, 5, 10]),
    ttlFraction: rng.pick([0, 0.1, 0.3]),
  };
}

test('histories generated from a sequential execution are accepted', () => {
  for (let i = 0; i < RUNS; i++) {
    const seed = baseSeed + i;
    const history = generateLinearizableHistory(shape(seed));
    const result = checkLinearizability(history, { ttlSlackMs: 0 });
    const bad = result.keys.find((k) => k.verdict !== 'ok');
    if (bad !== undefined) {
      throw new Error(`seed ${seed}: ${bad.verdict}\n${bad.explanation?.text ?? bad.reason ?? ''}`);
    }
  }
});

test.each<MutationKind>(['neverWritten', 'staleRead', 'duplicateCas'])('%s mutations are rejected', (kind) => {
  let mutated = 0;
  for (let i = 0; i < RUNS; i++) {
    const seed = baseSeed + i;
    const mutation = mutateHistory(generateLinearizableHistory(shape(seed)), kind, new Rng(seed));
    if (mutation === undefined) continue;
    mutated++;
    const result = checkLinearizability(mutation.history, { ttlSlackMs: 0 });
    if (result.verdict !== 'violation') {
      throw new Error(`seed ${seed}: ${mutation.description} was accepted (${result.verdict})`);
    }
    const key = mutation.history.ops[mutation.opId]?.key;
    expect(result.keys.find((k) => k.key === key)?.verdict).toBe('violation');
  }
  // The generator's mix makes every kind applicable to most histories.
  expect(mutated).toBeGreaterThan(RUNS / 2);
});
