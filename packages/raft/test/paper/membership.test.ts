/** Raft paper §6 cluster membership changes: one voter at a time, learners first (thesis §4.1, §4.2.1). */
import { ConfChangeType, MemoryStorage, MessageType, RaftError, StateRole } from '../../src/index.js';
import { Network } from '../core/network.js';

function addLearnerThenVoter(net: Network, leader: number, id: number): void {
  net.addNode(id, new MemoryStorage());
  net.node(leader).proposeConfChange({ type: ConfChangeType.AddLearner, replicaId: id });
  net.stabilize();
  // A joining replica is initialized by a snapshot (Storage.snapshot contract).
  net.compact(leader);
  net.tickAll(3);
  net.node(leader).proposeConfChange({ type: ConfChangeType.AddVoter, replicaId: id });
  net.stabilize();
  net.tickAll(3);
}

describe('§6 membership changes', () => {
  test('a new replica joins as a learner, catches up, then is promoted to voter (Reference: §6, thesis §4.2.1)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    net.addNode(4, new MemoryStorage());
    net.node(1).proposeConfChange({ type: ConfChangeType.AddLearner, replicaId: 4 });
    net.stabilize();
    net.tickAll(3);
    // Without a snapshot the uninitialized replica is not fed raw entries: it has no configuration.
    expect(net.node(4).status().lastIndex).toBe(0);
    net.compact(1);
    net.tickAll(3);
    expect(net.node(1).status().confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(net.stateOf(4)).toEqual(['a']);
    expect(net.node(4).status().confState.learners).toEqual([4]);
    net.node(1).proposeConfChange({ type: ConfChangeType.AddVoter, replicaId: 4 });
    net.stabilize();
    for (const id of [1, 2, 3, 4])
      expect(net.node(id).status().confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });
  });

  test('only one conf change may be pending at a time (Reference: §6, thesis §4.1)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(2);
    net.isolate(3);
    net.node(1).proposeConfChange({ type: ConfChangeType.AddLearner, replicaId: 4 });
    expect(() => net.node(1).proposeConfChange({ type: ConfChangeType.AddLearner, replicaId: 5 })).toThrow(
      expect.objectContaining({ code: 'CONF_CHANGE_PENDING' }),
    );
    net.heal();
    net.tickAll(3);
    expect(() => net.node(1).proposeConfChange({ type: ConfChangeType.AddLearner, replicaId: 5 })).not.toThrow();
  });

  test('a new leader accepts no conf change until an entry of its term is committed (Reference: thesis §4.1 bug fix)', () => {
    const net = new Network([1, 2, 3]);
    net.isolate(2);
    net.isolate(3);
    net.node(1).campaign();
    net.heal();
    // Node 1 is not leader without votes; make it win but block its App so the no-op stays uncommitted.
    net.dropType(MessageType.App);
    net.campaign(1);
    expect(net.role(1)).toBe(StateRole.Leader);
    expect(() => net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, replicaId: 3 })).toThrow(
      expect.objectContaining({ code: 'CONF_CHANGE_PENDING' }),
    );
    net.heal();
    net.tickAll(2);
    expect(() => net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, replicaId: 3 })).not.toThrow();
  });

  test('removing a follower shrinks the quorum: 2 of a 3→2 group can commit without the removed one (Reference: §6)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, replicaId: 3 });
    net.stabilize();
    expect(net.node(1).status().confState.voters).toEqual([1, 2]);
    net.stop(3);
    net.propose(1, 'after');
    expect(net.stateOf(2)).toEqual(['after']);
  });

  test('after removal of two voters a single remaining leader commits alone (Reference: §6)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    for (const id of [3, 2]) {
      net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, replicaId: id });
      net.stabilize();
      net.stop(id);
    }
    net.propose(1, 'solo');
    expect(net.stateOf(1)).toEqual(['solo']);
  });

  test('a removed leader steps down after applying its removal and hands over via TimeoutNow (Reference: §6, thesis §4.2.2)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, replicaId: 1 });
    net.stabilize();
    expect(net.role(1)).toBe(StateRole.Follower);
    const newLeader = net.leaders();
    expect(newLeader).toHaveLength(1);
    expect(newLeader[0]).not.toBe(1);
    expect(() => net.node(1).propose(new Uint8Array([1]))).toThrow(RaftError);
    // The remaining two replicate without the old leader.
    const l = newLeader[0] as number;
    net.stop(1);
    net.propose(l, 'x');
    expect(net.stateOf(2)).toEqual(['x']);
    expect(net.stateOf(3)).toEqual(['x']);
  });

  test('a removed replica cannot campaign (Reference: §6 "disruptive servers")', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, replicaId: 3 });
    net.stabilize();
    net.tickAll(3);
    expect(net.node(3).status().confState.voters).toEqual([1, 2]);
    const term = net.term(3);
    net.isolate(3);
    net.tickAll(50);
    expect(net.term(3)).toBe(term);
    expect(net.role(3)).toBe(StateRole.Follower);
  });

  test('growing 3 → 5 one at a time keeps committing (Reference: §6)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    addLearnerThenVoter(net, 1, 4);
    addLearnerThenVoter(net, 1, 5);
    expect(net.node(1).status().confState.voters).toEqual([1, 2, 3, 4, 5]);
    // With 5 voters, losing 2 still leaves a quorum.
    net.isolate(2);
    net.isolate(3);
    net.propose(1, 'q');
    expect(net.stateOf(5)).toEqual(['q']);
    expect(net.stateOf(2)).toEqual([]);
  });

  test('a conf change entry round-trips through the codec with its context (Reference: §6)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const { index } = net.node(1).proposeConfChange({
      type: ConfChangeType.AddLearner,
      replicaId: 9,
      context: new Uint8Array([7, 8]),
    });
    net.stabilize();
    const e = net.logOf(2).find((x) => x.index === index);
    expect(e?.type).toBe(1);
  });
});

describe('learners', () => {
  test('learners receive the log but are not counted in the commit quorum (Reference: thesis §4.2.1)', () => {
    const net = new Network([1, 2], {}, [3]);
    net.elect(1);
    net.isolate(2);
    net.propose(1, 'a');
    expect(net.committed(1)).toBe(1);
    expect(net.logOf(3).length).toBe(2);
    net.heal();
    net.tickAll(2);
    expect(net.stateOf(3)).toEqual(['a']);
  });

  test('learners never campaign and do not vote (Reference: thesis §4.2.1)', () => {
    const net = new Network([1, 2], {}, [3]);
    net.tickAll(100);
    expect(net.role(3)).toBe(StateRole.Follower);
    expect(
      net.delivered.some((m) => m.from === 3 && (m.type === MessageType.Vote || m.type === MessageType.PreVote)),
    ).toBe(false);
    expect(net.delivered.some((m) => m.to === 3 && m.type === MessageType.Vote)).toBe(false);
  });

  test('a voter cannot be elected by learner votes (Reference: thesis §4.2.1)', () => {
    const net = new Network([1, 2], {}, [3]);
    net.isolate(2);
    net.campaign(1);
    expect(net.role(1)).toBe(StateRole.Candidate);
  });

  test('a learner cannot be the target of a leadership transfer (Reference: §3.10)', () => {
    const net = new Network([1, 2], {}, [3]);
    net.elect(1);
    net.node(1).transferLeader(3);
    net.stabilize();
    expect(net.role(1)).toBe(StateRole.Leader);
    expect(net.node(1).status().leadTransferee).toBe(0);
  });
});
