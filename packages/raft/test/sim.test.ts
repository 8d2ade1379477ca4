import { rerunCommand, runSeeds } from '@omnidict/raft/testing';

/*
 * The seeded Raft simulation (DESIGN.md "Testing layers" 1): every seed runs a group through
 * random message loss, delay, reordering, duplication, partitions, crash-restart, proposals,
 * membership changes, leader transfers and read-index requests, checking Raft's safety properties
 * after every event and liveness after the network heals. A failure names the seed and the
 * command that reruns it with a readable trace.
 *
 * SIM_START shifts the seed range (default 1) to explore new seeds without editing the test.
 */
const START = Number(process.env.SIM_START ?? 1);
const SEEDS_PER_BLOCK = 250;
const BLOCKS = 8;

for (let b = 0; b < BLOCKS; b++) {
  const first = START + b * SEEDS_PER_BLOCK;
  const last = first + SEEDS_PER_BLOCK - 1;
  test(`simulation seeds ${first}..${last}`, () => {
    console.log(`raft simulation: seeds ${first}..${last}`);
    const r = runSeeds(first, SEEDS_PER_BLOCK);
    if (!r.ok) {
      const f = r.failure;
      const tail = f.trace.split('\n').slice(-60).join('\n');
      throw new Error(
        `simulation seed ${f.seed} failed: ${f.error}\nrerun with a full trace: ${rerunCommand(f.seed)}\n` +
          `--- last trace lines ---\n${tail}`,
      );
    }
    expect(r.passed).toBe(SEEDS_PER_BLOCK);
  });
}
