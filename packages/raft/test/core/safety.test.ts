/**
 * Randomized safety check over many seeds: random partitions, drops and restarts, checking Election
 * Safety, Log Matching and State Machine Safety (§5.2, §5.3, §5.4) after every tick.
 */
import { MessageType, StateRole } from '../../src/index.js';
import { enc, Network, seededRng } from './network.js';

function runSeed(seed: number): void {
  const rng = seededRng(seed);
  const ids = [1, 2, 3, 4, 5];
  const net = new Network(ids, { seed, preVote: seed % 2 === 0, checkQuorum: seed % 3 === 0 });
  net.filter = () => rng() > 0.1;
  const leaderOfTerm = new Map<number, number>();
  let proposals = 0;
  for (let step = 0; step < 300; step++) {
    const r = rng();
    if (r < 0.05) {
      net.heal();
      net.filter = () => rng() > 0.1;
      net.isolate(ids[Math.floor(rng() * ids.length)] as number);
    } else if (r < 0.08) {
      net.heal();
      net.filter = () => rng() > 0.1;
    } else if (r < 0.1) {
      const id = ids[Math.floor(rng() * ids.length)] as number;
      net.restart(id);
    }
    for (const id of net.leaders()) {
      try {
        net.node(id).propose(enc(`p${proposals}`));
        proposals++;
      } catch {
        // a leader in transfer or removed: fine
      }
    }
    net.tickAll(1);
    for (const id of ids) {
      const st = net.node(id).status();
      if (st.softState.role === StateRole.Leader) {
        const prev = leaderOfTerm.get(st.hardState.term);
        if (prev !== undefined && prev !== id)
          throw new Error(`seed ${seed}: two leaders in term ${st.hardState.term}`);
        leaderOfTerm.set(st.hardState.term, id);
      }
    }
    // State Machine Safety: applied sequences are prefixes of one another.
    const states = ids.map((id) => net.stateOf(id));
    const longest = states.reduce((a, b) => (b.length > a.length ? b : a));
    for (const s of states) {
      for (let i = 0; i < s.length; i++) {
        if (s[i] !== longest[i]) throw new Error(`seed ${seed}: applied state diverges at ${i}`);
      }
    }
  }
  // Log Matching on persisted logs: same index and term ⇒ same data.
  const logs = ids.map((id) => new Map(net.logOf(id).map((e) => [e.index, e])));
  for (const a of logs) {
    for (const b of logs) {
      for (const [i, e] of a) {
        const f = b.get(i);
        if (f !== undefined && f.term === e.term && Buffer.compare(f.data, e.data) !== 0) {
          throw new Error(`seed ${seed}: log matching violated at ${i}`);
        }
      }
    }
  }
  // Liveness after healing.
  net.heal();
  net.tickAll(60);
  expect(net.leaders().length).toBe(1);
  expect(net.delivered.some((m) => m.type === MessageType.App)).toBe(true);
}

test('safety holds over 40 random seeds with drops, partitions and restarts (Reference: §5.2, §5.3, §5.4)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    try {
      runSeed(seed);
    } catch (e) {
      throw new Error(`seed ${seed} failed: ${(e as Error).message}`);
    }
  }
});
