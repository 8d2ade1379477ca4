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
    // A well-formed history: no operation completes before it was invoked.
    const backwards = history.ops.find((op) => op.completeMs !== undefined && op.completeMs < op.invokeMs);
    if (backwards !== undefined) throw new Error(`seed ${seed}: op #${backwards.id} completes before it was invoked`);
    const result = checkLinearizability(history, { ttlSlackMs: 0 });
    const bad = result.keys.find((k) => k.verdict !== 'ok');
    if (bad !== undefined) {
      throw new Error(`seed ${seed}: ${bad.verdict}\n${bad.explanation?.text ?? bad.reason ?? ''}`);
    }
  }
});

// Deciding linearizability is NP-complete: a broken history makes the search exhaust every
// configuration before the break, and a rare seed (about 1 in 2,000: one key, many pending
// unknown-outcome cas ops) needs more than the budget. The checker then answers `unknown`, which is
// honest; what must never happen is `ok`. So a mutated history must be rejected, or — for at most a
// few seeds per run, printed — left undecided.
const BUDGET_MS = 5_000;
const MAX_UNDECIDED = 2;

test.each<MutationKind>(['neverWritten', 'staleRead', 'duplicateCas'])(
  '%s mutations are rejected',
  (kind) => {
    let mutated = 0;
    const undecided: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const seed = baseSeed + i;
      const mutation = mutateHistory(generateLinearizableHistory(shape(seed)), kind, new Rng(seed));
      if (mutation === undefined) continue;
      mutated++;
      const result = checkLinearizability(mutation.history, { ttlSlackMs: 0, timeBudgetMsPerKey: BUDGET_MS });
      if (result.verdict === 'unknown') {
        undecided.push(seed);
        continue;
      }
      if (result.verdict !== 'violation') {
        throw new Error(`seed ${seed}: ${mutation.description} was accepted (${result.verdict})`);
      }
      const key = mutation.history.ops[mutation.opId]?.key;
      expect(result.keys.find((k) => k.key === key)?.verdict).toBe('violation');
    }
    if (undecided.length > 0)
      console.log(`${kind}: undecided within ${BUDGET_MS} ms for seeds ${undecided.join(', ')}`);
    expect(undecided.length).toBeLessThanOrEqual(MAX_UNDECIDED);
    // The generator's mix makes every kind applicable to most histories.
    expect(mutated).toBeGreaterThan(RUNS / 2);
  },
  120_000,
);
