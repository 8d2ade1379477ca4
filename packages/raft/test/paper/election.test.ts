/** Raft paper §5.2 leader election (and §5.1 terms). Modelled on etcd-io/raft raft_paper_test.go. */
import { MemoryStorage, MessageType, RawNode, StateRole } from '../../src/index.js';
import { drain, msg, Network, nodeConfig } from '../core/network.js';

function standalone(id: number, peers: number[], o = {}) {
  const storage = new MemoryStorage({ voters: peers });
  const node = new RawNode(nodeConfig(id, storage, o));
  return { node, storage };
}

describe('§5.1 terms', () => {
  test('a replica seeing a higher term updates its term and reverts to follower (Reference: §5.1)', () => {
    for (const setup of ['follower', 'candidate', 'leader'] as const) {
      const { node, storage } = standalone(1, [1, 2, 3]);
      if (setup !== 'follower') node.campaign();
      if (setup === 'leader') {
        drain(node, storage);
        node.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
      }
      drain(node, storage);
      node.step(msg({ type: MessageType.App, from: 2, to: 1, term: 5 }));
      const st = node.status();
      expect(st.hardState.term).toBe(5);
      expect(st.softState.role).toBe(StateRole.Follower);
      expect(st.softState.leaderId).toBe(2);
    }
  });

  test('a stale-term message is ignored (Reference: §5.1)', () => {
    const { node, storage } = standalone(1, [1, 2, 3]);
    node.step(msg({ type: MessageType.App, from: 2, to: 1, term: 3 }));
    drain(node, storage);
    node.step(msg({ type: MessageType.App, from: 3, to: 1, term: 2, entries: [] }));
    expect(drain(node, storage)).toEqual([]);
    expect(node.status().softState.leaderId).toBe(2);
  });
});

describe('§5.2 leader election', () => {
  test('replicas start as followers (Reference: §5.2)', () => {
    const { node } = standalone(1, [1, 2, 3]);
    expect(node.status().softState.role).toBe(StateRole.Follower);
    expect(node.status().hardState.term).toBe(0);
  });

  test('a leader sends heartbeats every heartbeat interval to maintain authority (Reference: §5.2)', () => {
    const { node, storage } = standalone(1, [1, 2, 3], { heartbeatTick: 2 });
    node.campaign();
    drain(node, storage);
    node.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
    drain(node, storage);
    node.tick();
    expect(drain(node, storage).filter((m) => m.type === MessageType.Heartbeat)).toEqual([]);
    node.tick();
    const hb = drain(node, storage).filter((m) => m.type === MessageType.Heartbeat);
    expect(hb.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(hb.every((m) => m.term === 1)).toBe(true);
  });

  test('a follower that hears nothing for an election timeout becomes candidate, votes for itself and requests votes (Reference: §5.2)', () => {
    const { node, storage } = standalone(1, [1, 2, 3]);
    for (let i = 0; i < 20; i++) node.tick();
    const st = node.status();
    expect(st.softState.role).toBe(StateRole.Candidate);
    expect(st.hardState.term).toBe(1);
    expect(st.hardState.vote).toBe(1);
    const votes = drain(node, storage).filter((m) => m.type === MessageType.Vote);
    expect(votes.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(votes.every((m) => m.term === 1 && m.index === 0 && m.logTerm === 0)).toBe(true);
  });

  test('a candidate that times out starts a new election with a higher term (Reference: §5.2)', () => {
    const { node } = standalone(1, [1, 2, 3]);
    node.campaign();
    for (let i = 0; i < 20; i++) node.tick();
    expect(node.status().hardState.term).toBe(2);
    expect(node.status().softState.role).toBe(StateRole.Candidate);
  });

  test('a candidate wins with votes from a majority, loses with rejections from a majority (Reference: §5.2)', () => {
    const cases: Array<[number, Record<number, boolean>, StateRole]> = [
      [1, {}, StateRole.Leader],
      [3, { 2: true, 3: true }, StateRole.Leader],
      [3, { 2: true }, StateRole.Leader],
      [5, { 2: true, 3: true, 4: true, 5: true }, StateRole.Leader],
      [5, { 2: true, 3: true }, StateRole.Leader],
      [3, { 2: false, 3: false }, StateRole.Follower],
      [5, { 2: true }, StateRole.Candidate],
      [5, { 2: false, 3: false }, StateRole.Candidate],
      [5, { 2: false, 3: false, 4: false }, StateRole.Follower],
      [5, {}, StateRole.Candidate],
    ];
    for (const [size, votes, want] of cases) {
      const ids = Array.from({ length: size }, (_, i) => i + 1);
      const { node } = standalone(1, ids);
      node.campaign();
      for (const [from, granted] of Object.entries(votes)) {
        node.step(msg({ type: MessageType.VoteResp, from: Number(from), to: 1, term: 1, reject: !granted }));
      }
      expect({ size, votes, role: node.status().softState.role }).toEqual({ size, votes, role: want });
    }
  });

  test('a follower grants at most one vote per term, first come first served (Reference: §5.2)', () => {
    for (const [vote, from, reject] of [
      [0, 2, false],
      [0, 3, false],
      [2, 2, false],
      [3, 3, false],
      [2, 3, true],
      [3, 2, true],
    ] as const) {
      const storage = new MemoryStorage({ voters: [1, 2, 3] });
      storage.setHardState({ term: 1, vote, commit: 0 });
      const node = new RawNode(nodeConfig(1, storage));
      node.step(msg({ type: MessageType.Vote, from, to: 1, term: 1 }));
      const resp = drain(node, storage).find((m) => m.type === MessageType.VoteResp);
      expect({ vote, from, reject: resp?.reject }).toEqual({ vote, from, reject });
    }
  });

  test('a candidate receiving an App from a leader of the same or newer term becomes follower (Reference: §5.2)', () => {
    for (const term of [1, 2]) {
      const { node } = standalone(1, [1, 2, 3]);
      node.campaign();
      node.step(msg({ type: MessageType.App, from: 2, to: 1, term }));
      expect(node.status().softState.role).toBe(StateRole.Follower);
      expect(node.status().softState.leaderId).toBe(2);
      expect(node.status().hardState.term).toBe(term);
    }
  });

  test('randomized election timeouts lie in [electionTick, 2*electionTick) and differ between replicas (Reference: §5.2)', () => {
    const seen = new Set<number>();
    for (let id = 1; id <= 30; id++) {
      const storage = new MemoryStorage({ voters: [1, 2, 3] });
      const node = new RawNode(nodeConfig(1, storage, { seed: id }));
      let ticks = 0;
      while (node.status().softState.role === StateRole.Follower && ticks < 100) {
        node.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(3);
  });

  test('followers time out at different ticks, so one candidate usually wins alone (Reference: §5.2)', () => {
    const net = new Network([1, 2, 3], { seed: 7 });
    for (let i = 0; i < 30 && net.leaders().length === 0; i++) net.tickAll();
    expect(net.leaders()).toHaveLength(1);
    const leader = net.leaders()[0] as number;
    for (const id of [1, 2, 3]) expect(net.node(id).status().softState.leaderId).toBe(leader);
  });

  test('a cluster elects exactly one leader per term across many seeds (Election Safety, Reference: §5.2)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const net = new Network([1, 2, 3, 4, 5], { seed });
      const leadersByTerm = new Map<number, Set<number>>();
      for (let i = 0; i < 100; i++) {
        net.tickAll();
        for (const id of net.leaders()) {
          const t = net.term(id);
          const s = leadersByTerm.get(t) ?? new Set();
          s.add(id);
          leadersByTerm.set(t, s);
        }
        if (i === 50) net.isolate(net.leaders()[0] ?? 1);
      }
      for (const [, s] of leadersByTerm) expect(s.size).toBe(1);
      expect(leadersByTerm.size).toBeGreaterThanOrEqual(2);
    }
  });

  test('a leader that is partitioned away is replaced; when it returns it steps down (Reference: §5.2)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(1);
    net.tickAll(30);
    const newLeader = net.leaders().find((id) => id !== 1);
    expect(newLeader).toBeDefined();
    net.heal();
    net.tickAll(3);
    expect(net.leaders()).toEqual([newLeader]);
    expect(net.role(1)).toBe(StateRole.Follower);
    expect(net.term(1)).toBe(net.term(newLeader as number));
  });

  test('the leader appends an empty entry of its term on election (Reference: §5.4.2, §8)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const log = net.logOf(1);
    expect(log).toHaveLength(1);
    expect(log[0]?.term).toBe(1);
    expect(log[0]?.data.length).toBe(0);
    expect(net.committed(2)).toBe(1);
  });
});
