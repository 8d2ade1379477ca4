/** Raft paper §5.3 log replication and §5.4 safety. Modelled on etcd-io/raft raft_paper_test.go. */
import { type Entry, MemoryStorage, MessageType, RawNode, StateRole } from '../../src/index.js';
import { drain, enc, ent, msg, Network, nodeConfig } from '../core/network.js';

function follower(id: number, peers: number[], log: Entry[] = [], term = 0) {
  const storage = new MemoryStorage({ voters: peers });
  storage.append(log);
  storage.setHardState({ term, vote: 0, commit: 0 });
  const node = new RawNode(nodeConfig(id, storage));
  return { node, storage };
}

/** leaderOf: a standalone node 1 that won an election in a 3-node group (votes stepped in by hand). */
function leaderOf(peers = [1, 2, 3], log: Entry[] = [], term = 0) {
  const f = follower(1, peers, log, term);
  f.node.campaign();
  drain(f.node, f.storage);
  const t = f.node.status().hardState.term;
  for (const p of peers.slice(1)) f.node.step(msg({ type: MessageType.VoteResp, from: p, to: 1, term: t }));
  drain(f.node, f.storage);
  return f;
}

const terms = (es: readonly Entry[]) => es.map((e) => e.term);

describe('§5.3 log replication', () => {
  test('the leader appends a proposal to its log and sends App to every follower (Reference: §5.3)', () => {
    const { node, storage } = leaderOf();
    // Acknowledge the election's App so both followers are in replicate state.
    for (const p of [2, 3]) node.step(msg({ type: MessageType.AppResp, from: p, to: 1, term: 1, index: 1 }));
    drain(node, storage);
    const at = node.propose(enc('x'));
    expect(at).toEqual({ index: 2, term: 1 });
    const rd = node.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    const apps = rd.messages.filter((m) => m.type === MessageType.App);
    expect(apps.map((m) => m.to).sort()).toEqual([2, 3]);
    for (const m of apps) {
      expect(m.index).toBe(1);
      expect(m.logTerm).toBe(1);
      expect(m.entries.map((e) => e.index)).toContain(2);
    }
    storage.append(rd.entries);
    node.advance(rd);
  });

  test('an entry is committed once a majority stored it, and the leader applies it (Reference: §5.3)', () => {
    for (const [size, acks, committed] of [
      [1, 0, true],
      [3, 0, false],
      [3, 1, true],
      [5, 1, false],
      [5, 2, true],
    ] as const) {
      const ids = Array.from({ length: size }, (_, i) => i + 1);
      const { node, storage } = leaderOf(ids);
      // Commit the leader's empty entry first.
      for (const p of ids.slice(1)) node.step(msg({ type: MessageType.AppResp, from: p, to: 1, term: 1, index: 1 }));
      drain(node, storage);
      const { index } = node.propose(enc('x'));
      const applied: number[] = [];
      const run = () => {
        while (node.hasReady()) {
          const rd = node.ready();
          storage.append(rd.entries);
          applied.push(...rd.committedEntries.map((e) => e.index));
          node.advance(rd);
        }
      };
      run();
      for (const p of ids.slice(1, 1 + acks)) {
        node.step(msg({ type: MessageType.AppResp, from: p, to: 1, term: 1, index }));
      }
      run();
      expect({ size, acks, commit: node.status().hardState.commit >= index }).toEqual({
        size,
        acks,
        commit: committed,
      });
      expect(applied.includes(index)).toBe(committed);
    }
  });

  test('the leader tells followers the commit index; followers apply committed entries in order (Reference: §5.3)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    net.propose(1, 'b');
    net.tickAll(2);
    for (const id of [1, 2, 3]) {
      expect(net.stateOf(id)).toEqual(['a', 'b']);
      expect(net.committed(id)).toBe(3);
    }
  });

  test('a follower appends entries only if its log matches at (index, logTerm) (consistency check, Reference: §5.3)', () => {
    const log = [ent(1, 1), ent(2, 2)];
    const cases = [
      { term: 2, logTerm: 3, index: 2, reject: true },
      { term: 2, logTerm: 3, index: 3, reject: true },
      { term: 2, logTerm: 1, index: 1, reject: false },
      { term: 2, logTerm: 0, index: 0, reject: false },
      { term: 2, logTerm: 2, index: 2, reject: false },
    ];
    for (const c of cases) {
      const { node, storage } = follower(1, [1, 2, 3], log, 2);
      node.step(msg({ type: MessageType.App, from: 2, to: 1, term: c.term, logTerm: c.logTerm, index: c.index }));
      const resp = drain(node, storage).find((m) => m.type === MessageType.AppResp);
      expect({ ...c, got: resp?.reject }).toEqual({ ...c, got: c.reject });
    }
  });

  test('a follower deletes conflicting entries and everything after them, then appends (Reference: §5.3)', () => {
    const log = [ent(1, 1), ent(2, 2), ent(3, 3)];
    const cases: Array<{ index: number; logTerm: number; ents: Entry[]; want: number[] }> = [
      { index: 2, logTerm: 2, ents: [ent(3, 3), ent(4, 3)], want: [1, 2, 3, 3] },
      { index: 1, logTerm: 1, ents: [ent(2, 3), ent(3, 4)], want: [1, 3, 4] },
      { index: 0, logTerm: 0, ents: [ent(1, 1)], want: [1, 2, 3] },
      { index: 0, logTerm: 0, ents: [ent(1, 3)], want: [3] },
    ];
    for (const c of cases) {
      const { node, storage } = follower(1, [1, 2, 3], log, 2);
      node.step(
        msg({ type: MessageType.App, from: 2, to: 1, term: 4, logTerm: c.logTerm, index: c.index, entries: c.ents }),
      );
      drain(node, storage);
      expect(terms(storage.entries(1, storage.lastIndex() + 1, Infinity))).toEqual(c.want);
    }
  });

  test('a follower never commits beyond the entries it received, even if the leader commit is higher (Reference: §5.3)', () => {
    const { node, storage } = follower(1, [1, 2, 3]);
    node.step(
      msg({
        type: MessageType.App,
        from: 2,
        to: 1,
        term: 1,
        index: 0,
        logTerm: 0,
        entries: [ent(1, 1), ent(2, 1)],
        commit: 5,
      }),
    );
    drain(node, storage);
    expect(node.status().hardState.commit).toBe(2);
  });

  test('a rejecting follower hints at its last index for the leader term so the leader skips a whole term (fast backtracking, Reference: §5.3)', () => {
    // Follower log: terms [1,1,2,2,2,2]; leader log: [1,1,3,3,3,3,3] (index 7, term 3 leader).
    const { node, storage } = follower(
      2,
      [1, 2, 3],
      [1, 1, 2, 2, 2, 2].map((t, i) => ent(i + 1, t)),
      2,
    );
    node.step(msg({ type: MessageType.App, from: 1, to: 2, term: 3, index: 7, logTerm: 3 }));
    const resp = drain(node, storage).find((m) => m.type === MessageType.AppResp);
    expect(resp?.reject).toBe(true);
    expect(resp?.rejectHint).toBe(6);
    expect(resp?.logTerm).toBe(2);
  });

  test('the leader finds the matching point of divergent followers and overwrites their logs (Reference: §5.3, Figure 7)', () => {
    // Figure 7 style: the leader (term 8) and followers with missing / extra / conflicting entries.
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers = [
      [1, 1, 1, 4, 4, 5, 5, 6, 6],
      [1, 1, 1, 4],
      [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      [1, 1, 1, 4, 4, 4, 4],
      [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for (const fl of followers) {
      const net = new Network([1, 2, 3]);
      net.storage(1).append(leaderLog.map((t, i) => ent(i + 1, t)));
      net.storage(1).setHardState({ term: 8, vote: 0, commit: 0 });
      net.storage(2).append(fl.map((t, i) => ent(i + 1, t)));
      net.storage(2).setHardState({ term: 8, vote: 0, commit: 0 });
      net.storage(3).append(leaderLog.map((t, i) => ent(i + 1, t)));
      net.storage(3).setHardState({ term: 8, vote: 0, commit: 0 });
      for (const id of [1, 2, 3]) net.restart(id);
      net.elect(1);
      net.propose(1, 'x');
      expect(terms(net.logOf(2))).toEqual(terms(net.logOf(1)));
      expect(net.committed(2)).toBe(12);
    }
  });

  test('probing needs few round trips thanks to the reject hint (Reference: §5.3)', () => {
    const net = new Network([1, 2, 3]);
    net.storage(1).append(Array.from({ length: 50 }, (_, i) => ent(i + 1, i < 10 ? 1 : 4)));
    net.storage(1).setHardState({ term: 4, vote: 0, commit: 0 });
    net.storage(3).append(Array.from({ length: 50 }, (_, i) => ent(i + 1, i < 10 ? 1 : 4)));
    net.storage(3).setHardState({ term: 4, vote: 0, commit: 0 });
    net.storage(2).append(Array.from({ length: 50 }, (_, i) => ent(i + 1, i < 10 ? 1 : 2)));
    net.storage(2).setHardState({ term: 4, vote: 0, commit: 0 });
    for (const id of [1, 2, 3]) net.restart(id);
    net.elect(1);
    const rejects = net.delivered.filter((m) => m.type === MessageType.AppResp && m.from === 2 && m.reject);
    expect(rejects.length).toBeLessThanOrEqual(2);
    expect(terms(net.logOf(2))).toEqual(terms(net.logOf(1)));
  });
});

describe('flow control', () => {
  test('App batches are bounded by maxSizePerMsg (Reference: §5.3, etcd MaxSizePerMsg)', () => {
    const net = new Network([1, 2, 3], { maxSizePerMsg: 100 });
    net.elect(1);
    net.dropType(MessageType.App);
    for (let i = 0; i < 20; i++) net.node(1).propose(enc('0123456789012345678901234567890123456789'));
    net.stabilize();
    net.heal();
    net.tickAll(3);
    const apps = net.delivered.filter((m) => m.type === MessageType.App && m.to === 2 && m.entries.length > 0);
    for (const m of apps) expect(m.entries.reduce((s, e) => s + e.data.length + 16, 0)).toBeLessThanOrEqual(100);
    expect(apps.length).toBeGreaterThan(5);
    expect(net.stateOf(2)).toHaveLength(20);
  });

  test('in replicate state the leader stops sending after maxInflightMsgs unacknowledged Apps (Reference: etcd inflights)', () => {
    const { node, storage } = leaderOf();
    node.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 1, index: 1 }));
    drain(node, storage);
    expect(node.status().progress?.get(2)?.state).toBe('replicate');
    const maxInflight = 256;
    let toTwo = 0;
    for (let i = 0; i < maxInflight + 10; i++) {
      node.propose(enc('x'));
      toTwo += drain(node, storage).filter((m) => m.type === MessageType.App && m.to === 2).length;
    }
    expect(toTwo).toBe(maxInflight);
    node.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 1, index: 10 }));
    const after = drain(node, storage).filter((m) => m.type === MessageType.App && m.to === 2);
    expect(after.length).toBeGreaterThan(0);
  });

  test('a follower in probe state gets at most one App per heartbeat interval (Reference: etcd progress probe)', () => {
    const { node, storage } = leaderOf();
    drain(node, storage);
    expect(node.status().progress?.get(2)?.state).toBe('probe');
    for (let i = 0; i < 5; i++) node.propose(enc('x'));
    const apps = drain(node, storage).filter((m) => m.type === MessageType.App && m.to === 2);
    expect(apps).toHaveLength(0); // the election's App is still unanswered
    node.step(msg({ type: MessageType.HeartbeatResp, from: 2, to: 1, term: 1 }));
    expect(drain(node, storage).filter((m) => m.type === MessageType.App && m.to === 2)).toHaveLength(1);
  });

  test('reportUnreachable turns a replicating follower back to probe (Reference: etcd MsgUnreachable)', () => {
    const { node, storage } = leaderOf();
    node.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 1, index: 1 }));
    drain(node, storage);
    expect(node.status().progress?.get(2)?.state).toBe('replicate');
    node.reportUnreachable(2);
    expect(node.status().progress?.get(2)?.state).toBe('probe');
  });

  test('lost Apps are repaired by heartbeats (Reference: §5.3 "retries indefinitely")', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.cut(1, 3);
    net.propose(1, 'a');
    net.propose(1, 'b');
    expect(net.stateOf(3)).toEqual([]);
    net.heal();
    net.tickAll(3);
    expect(net.stateOf(3)).toEqual(['a', 'b']);
  });
});

describe('§5.4 safety', () => {
  test('a voter rejects a candidate whose log is less up to date (election restriction, Reference: §5.4.1)', () => {
    const log = [ent(1, 1), ent(2, 2)];
    const cases = [
      { index: 2, logTerm: 2, reject: false },
      { index: 3, logTerm: 2, reject: false },
      { index: 1, logTerm: 2, reject: true },
      { index: 5, logTerm: 1, reject: true },
      { index: 1, logTerm: 3, reject: false },
    ];
    for (const c of cases) {
      const { node, storage } = follower(1, [1, 2, 3], log, 2);
      node.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 3, index: c.index, logTerm: c.logTerm }));
      const resp = drain(node, storage).find((m) => m.type === MessageType.VoteResp);
      expect({ ...c, got: resp?.reject }).toEqual({ ...c, got: c.reject });
    }
  });

  test('a replica missing committed entries cannot become leader (Leader Completeness, Reference: §5.4.1)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.heal();
    net.isolate(1);
    net.campaign(3);
    expect(net.role(3)).not.toBe(StateRole.Leader);
    net.campaign(2);
    expect(net.role(2)).toBe(StateRole.Leader);
  });

  test('a leader does not commit an entry from a previous term by counting replicas (Reference: §5.4.2, Figure 8)', () => {
    // Leader 1 at term 3 holds an uncommitted entry of term 2 at index 2, replicated on a majority.
    const { node, storage } = follower(1, [1, 2, 3], [ent(1, 1), ent(2, 2)], 2);
    node.campaign();
    drain(node, storage);
    node.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term: 3 }));
    drain(node, storage);
    expect(node.status().softState.role).toBe(StateRole.Leader);
    // Follower 2 acknowledges index 2 only (it has not got the term-3 no-op yet).
    node.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 2 }));
    drain(node, storage);
    expect(node.status().hardState.commit).toBe(0);
    // Once the term-3 entry at index 3 is on a majority, index 2 commits indirectly.
    node.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 3, index: 3 }));
    drain(node, storage);
    expect(node.status().hardState.commit).toBe(3);
  });

  test('committed entries survive leader changes (State Machine Safety, Reference: §5.4.3)', () => {
    const net = new Network([1, 2, 3, 4, 5], { seed: 3 });
    net.elect(1);
    net.propose(1, 'a');
    net.isolate(1);
    net.campaign(2);
    net.propose(2, 'b');
    net.heal();
    net.isolate(2);
    net.campaign(3);
    net.propose(3, 'c');
    net.heal();
    net.tickAll(5);
    for (const id of [1, 2, 3, 4, 5]) expect(net.stateOf(id)).toEqual(['a', 'b', 'c']);
  });

  test('followers and candidates persist term and vote before answering (Reference: §5.1, Figure 2 "persistent state")', () => {
    const { node, storage } = follower(1, [1, 2, 3]);
    node.step(msg({ type: MessageType.Vote, from: 2, to: 1, term: 4 }));
    const rd = node.ready();
    expect(rd.hardState).toEqual({ term: 4, vote: 2, commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.some((m) => m.type === MessageType.VoteResp && !m.reject)).toBe(true);
    storage.setHardState(rd.hardState ?? { term: 0, vote: 0, commit: 0 });
    node.advance(rd);
    // After a restart the vote is remembered: a second candidate in term 4 is refused.
    const again = new RawNode(nodeConfig(1, storage));
    again.step(msg({ type: MessageType.Vote, from: 3, to: 1, term: 4 }));
    expect(drain(again, storage).find((m) => m.type === MessageType.VoteResp)?.reject).toBe(true);
  });
});
