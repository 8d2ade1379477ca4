import { MemoryStorage, type Message, MessageType, RawNode, StateRole } from '../../src/index.js';
import { drain, enc, msg, Network, nodeConfig } from './network.js';

describe('RawNode Ready contract', () => {
  test('a fresh node has no Ready; campaigning yields hard state, soft state and vote requests', () => {
    const storage = new MemoryStorage({ voters: [1, 2, 3] });
    const node = new RawNode(nodeConfig(1, storage));
    expect(node.hasReady()).toBe(false);
    node.campaign();
    expect(node.hasReady()).toBe(true);
    const rd = node.ready();
    expect(rd.softState).toEqual({ leaderId: 0, role: StateRole.Candidate });
    expect(rd.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.map((m) => m.type)).toEqual([MessageType.Vote, MessageType.Vote]);
    storage.setHardState(rd.hardState ?? storage.hardState);
    node.advance(rd);
    expect(node.hasReady()).toBe(false);
  });

  test('hardState and softState appear only when they change', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const node = net.node(1);
    node.tick();
    const rd = node.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.softState).toBeUndefined();
    expect(rd.mustSync).toBe(false);
    node.advance(rd);
  });

  test('entries are handed out once; committed entries after they are persisted', () => {
    const storage = new MemoryStorage({ voters: [1] });
    const node = new RawNode(nodeConfig(1, storage));
    node.campaign();
    let rd = node.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([1]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
    storage.append(rd.entries);
    node.advance(rd);
    node.propose(enc('x'));
    rd = node.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
    storage.append(rd.entries);
    node.advance(rd);
    expect(node.hasReady()).toBe(false);
    expect(node.status().applied).toBe(2);
  });

  test("a leader's appends may go before its write; votes and acks never (thesis §10.2.1)", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const leader = net.node(1);
    leader.propose(enc('x'));
    const rd = leader.ready();
    expect(rd.entries.length).toBe(1);
    expect(rd.earlyMessages.map((m) => m.type)).toEqual([MessageType.App, MessageType.App]);
    expect(rd.earlyMessages.every((m) => rd.messages.includes(m))).toBe(true);
    // The leader alone is not a quorum, and it does not count its own entry until handed out.
    expect(rd.committedEntries).toEqual([]);
    net.storage(1).append(rd.entries);
    leader.advance(rd);

    // A candidate's vote requests change the durable term/vote: never early.
    const c = net.node(2);
    c.campaign();
    const rc = c.ready();
    expect(rc.messages.length).toBeGreaterThan(0);
    expect(rc.earlyMessages).toEqual([]);
  });

  test('proposeBatch: consecutive indexes, one append per follower; a follower refuses the whole batch', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const leader = net.node(1);
    const last = leader.status().lastIndex;
    const at = leader.proposeBatch([enc('a'), enc('b'), enc('c')]);
    expect(at.index).toBe(last + 1);
    const rd = leader.ready();
    expect(rd.entries.map((e) => [e.index, e.term, new TextDecoder().decode(e.data)])).toEqual([
      [last + 1, at.term, 'a'],
      [last + 2, at.term, 'b'],
      [last + 3, at.term, 'c'],
    ]);
    const apps = rd.messages.filter((m) => m.type === MessageType.App);
    expect(apps.map((m) => [m.to, m.entries.length])).toEqual([
      [2, 3],
      [3, 3],
    ]);
    net.storage(1).append(rd.entries);
    leader.advance(rd);
    expect(() => net.node(2).proposeBatch([enc('x'), enc('y')])).toThrow(/not the leader/);
    expect(() => leader.proposeBatch([])).toThrow(RangeError);
  });

  test('a commit advanced by acks rides on the same Ready appends, or goes once per follower', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const leader = net.node(1);
    const round = (proposeAgain: boolean): Message[] => {
      leader.propose(enc('x'));
      const apps = drain(leader, net.storage(1));
      const acks = apps.flatMap((m) => {
        const f = net.node(m.to);
        f.step(m);
        return drain(f, net.storage(m.to));
      });
      expect(acks.map((m) => m.type)).toEqual([MessageType.AppResp, MessageType.AppResp]);
      for (const a of acks) leader.step(a);
      if (proposeAgain) leader.propose(enc('y'));
      return drain(leader, net.storage(1));
    };
    const committed = leader.status().hardState.commit;
    // Both acks commit 'x'; the append of 'y' in the same Ready tells each follower the new commit.
    let out = round(true);
    expect(out.map((m) => [m.type, m.to, m.entries.length, m.commit])).toEqual([
      [MessageType.App, 2, 1, committed + 1],
      [MessageType.App, 3, 1, committed + 1],
    ]);
    for (const m of out) {
      net.node(m.to).step(m);
      for (const r of drain(net.node(m.to), net.storage(m.to))) leader.step(r);
    }
    drain(leader, net.storage(1));
    // No proposal: two acks, one bare commit notice per follower.
    out = round(false);
    expect(out.map((m) => [m.type, m.to, m.entries.length, m.commit])).toEqual([
      [MessageType.App, 2, 0, committed + 3],
      [MessageType.App, 3, 0, committed + 3],
    ]);
  });

  test('a commit notice waits for flushCommit; a later append carries it instead; no quiescence meanwhile', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const leader = net.node(1);
    const storage = net.storage(1);
    const ackAll = (apps: Message[]): void => {
      for (const m of apps) {
        net.node(m.to).step(m);
        for (const r of drain(net.node(m.to), net.storage(m.to))) leader.step(r);
      }
    };
    const shape = (ms: Message[]) => ms.map((m) => [m.type, m.to, m.entries.length, m.commit]);
    const x = leader.propose(enc('x')).index;
    ackAll(drain(leader, storage, false));
    // The acks commit 'x': applied, but no notice goes until the driver flushes.
    expect(drain(leader, storage, false)).toEqual([]);
    expect(leader.status().hardState.commit).toBe(x);
    expect(leader.commitNoticePending()).toBe(true);
    expect(leader.hasReady()).toBe(false);
    expect(leader.isQuiescable()).toBe(false);
    // A proposal first: its append carries the commit, and nothing is left to flush.
    const y = leader.propose(enc('y')).index;
    const apps = drain(leader, storage, false);
    expect(shape(apps)).toEqual([
      [MessageType.App, 2, 1, x],
      [MessageType.App, 3, 1, x],
    ]);
    expect(leader.commitNoticePending()).toBe(false);
    ackAll(apps);
    expect(drain(leader, storage, false)).toEqual([]);
    expect(leader.commitNoticePending()).toBe(true);
    // No proposal this time: flushing sends one bare notice per follower, then the group can rest.
    leader.flushCommit();
    const notices = drain(leader, storage, false);
    expect(shape(notices)).toEqual([
      [MessageType.App, 2, 0, y],
      [MessageType.App, 3, 0, y],
    ]);
    expect(leader.commitNoticePending()).toBe(false);
    ackAll(notices);
    drain(leader, storage, false);
    expect(leader.isQuiescable()).toBe(true);
    for (const id of [2, 3]) expect(net.node(id).status().hardState.commit).toBe(y);
  });

  test('a commit enabled by the hand-out itself reaches followers only after the write', () => {
    // One voter and a learner: the voter's own write is the quorum.
    const net = new Network([1], {}, [2]);
    net.elect(1);
    const leader = net.node(1);
    leader.propose(enc('y'));
    const rd = leader.ready();
    const idx = (rd.entries[rd.entries.length - 1] as { index: number }).index;
    expect(rd.committedEntries.map((e) => e.index)).toContain(idx);
    for (const m of rd.earlyMessages) expect(m.commit).toBeLessThan(idx);
    expect(rd.messages.some((m) => m.type === MessageType.App && m.commit >= idx)).toBe(true);
  });

  test('restart from storage resumes term, vote, commit and applied', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    const st = net.node(2).status();
    const again = net.restart(2);
    expect(again.status().hardState).toEqual(st.hardState);
    expect(again.status().applied).toBe(st.applied);
    expect(again.hasReady()).toBe(false);
  });

  test('restart with applied behind commit re-delivers the unapplied committed entries', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    const storage = net.storage(2);
    const node = new RawNode(nodeConfig(2, storage, {}, 1));
    const rd = node.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
  });

  test('local message types from the network are dropped', () => {
    const storage = new MemoryStorage({ voters: [1, 2, 3] });
    const node = new RawNode(nodeConfig(1, storage));
    for (const type of [MessageType.Hup, MessageType.Beat, MessageType.CheckQuorum, MessageType.Unreachable]) {
      node.step(msg({ type, from: 2, to: 1 }));
    }
    expect(node.status().softState.role).toBe(StateRole.Follower);
    expect(node.hasReady()).toBe(false);
  });

  test('responses from replicas not in the configuration are dropped', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.node(1).step(msg({ type: MessageType.AppResp, from: 9, to: 1, term: 1, index: 1 }));
    expect(net.node(1).status().progress?.has(9)).toBe(false);
  });

  test('status reports progress only on the leader', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    const p = net.node(1).status().progress;
    expect(p?.get(2)).toEqual(expect.objectContaining({ match: 2, next: 3, state: 'replicate' }));
    expect(net.node(2).status().progress).toBeUndefined();
  });

  test('isQuiescable once every replica has acknowledged the whole log and learned the commit index', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    expect(net.node(1).isQuiescable()).toBe(true);
    expect(net.node(2).isQuiescable()).toBe(false);
    net.isolate(3);
    net.propose(1, 'b');
    expect(net.node(1).isQuiescable()).toBe(false);
    net.heal();
    net.tickAll(2);
    expect(net.node(1).isQuiescable()).toBe(true);
    // A follower that answers with a lower commit index (restarted, its commit not yet synced) is
    // not told everything any more: no quiescence until a heartbeat brings it up again.
    const leader = net.node(1);
    const last = leader.status().lastIndex;
    const term = leader.status().hardState.term;
    leader.step(msg({ type: MessageType.HeartbeatResp, from: 3, to: 1, term, commit: last - 1 }));
    expect(leader.isQuiescable()).toBe(false);
    net.tickAll(2);
    expect(leader.isQuiescable()).toBe(true);
  });

  test('invalid configurations are refused', () => {
    const s = new MemoryStorage({ voters: [1] });
    expect(() => new RawNode({ ...nodeConfig(1, s), id: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
    expect(() => new RawNode({ ...nodeConfig(1, s), electionTick: 1, heartbeatTick: 1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
  });

  test('the same seed gives the same run (determinism)', () => {
    const run = (seed: number) => {
      const net = new Network([1, 2, 3, 4, 5], { seed });
      net.tickAll(40);
      return net.delivered.map((m: Message) => `${m.type}:${m.from}>${m.to}@${m.term}`).join(',');
    };
    expect(run(5)).toBe(run(5));
    expect(run(5)).not.toBe(run(6));
  });

  test('drain helper: a follower acknowledges App only in the Ready that persists the entries', () => {
    const storage = new MemoryStorage({ voters: [1, 2] });
    const node = new RawNode(nodeConfig(2, storage));
    node.step(
      msg({
        type: MessageType.App,
        from: 1,
        to: 2,
        term: 1,
        entries: [{ index: 1, term: 1, type: 0, data: enc('a') }],
      }),
    );
    const rd = node.ready();
    expect(rd.entries).toHaveLength(1);
    expect(rd.messages.find((m) => m.type === MessageType.AppResp)?.index).toBe(1);
    storage.append(rd.entries);
    node.advance(rd);
    expect(drain(node, storage)).toEqual([]);
  });
});
