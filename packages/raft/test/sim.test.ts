import { InvariantChecker, rerunCommand, runSeeds, runSimulation } from '@omnidict/raft/testing';

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

describe('the checker can fail', () => {
  test('a harness that sends a Ready before persisting it is caught within 100 seeds', () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 100; seed++) {
      const r = runSimulation({ seed, sabotage: 'sendBeforePersist' });
      if (!r.ok) failures.push(`seed ${seed}: ${r.error}`);
    }
    console.log(`sabotaged seeds 1..100: ${failures.length} caught\n${failures.join('\n')}`);
    expect(failures.some((f) => /leader completeness|state machine safety|committed a log prefix/.test(f))).toBe(true);
  });

  test('InvariantChecker flags each safety property', () => {
    const c = new InvariantChecker();
    c.observeLeader(1, 2);
    expect(() => c.observeLeader(2, 2)).toThrow(/election safety/);
    c.observePersisted(1, 5, 2, 111);
    expect(() => c.observePersisted(2, 5, 2, 222)).toThrow(/log matching/);
    c.observeCommit(1, 3, 7, 333);
    expect(() => c.checkLeaderLog(3, 4, 6, () => undefined)).toThrow(/leader completeness/);
    expect(() => c.checkLeaderLog(3, 4, 9, () => 444)).toThrow(/leader completeness/);
    expect(() => c.checkLeaderLog(3, 2, 6, () => undefined)).not.toThrow(); // older leader: exempt
    c.observeApply(1, 7, 333);
    expect(() => c.observeApply(2, 7, 555)).toThrow(/state machine safety/);
    expect(() => c.observeHardState(1, { term: 3, vote: 1, commit: 0 }, { term: 3, vote: 2, commit: 0 })).toThrow(
      /double vote/,
    );
    c.observeAck(7);
    c.issueRead('r', 1, true);
    expect(() => c.observeReadState(1, 'r', 6)).toThrow(/linearizability/);
  });
});
