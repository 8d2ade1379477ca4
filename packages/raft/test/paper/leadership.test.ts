/** Leadership transfer (thesis §3.10), pre-vote (thesis §9.6) and check-quorum / leader lease (thesis §6.2, §4.2.3). */
import { MemoryStorage, MessageType, RawNode, StateRole } from '../../src/index.js';
import { drain, enc, msg, Network, nodeConfig } from '../core/network.js';

describe('leadership transfer (§3.10)', () => {
  test('transferLeader to an up-to-date follower makes it leader at once via TimeoutNow (Reference: thesis §3.10)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.node(1).transferLeader(2);
    net.stabilize();
    expect(net.role(2)).toBe(StateRole.Leader);
    expect(net.role(1)).toBe(StateRole.Follower);
    expect(net.term(2)).toBe(2);
    expect(net.delivered.some((m) => m.type === MessageType.TimeoutNow && m.to === 2)).toBe(true);
  });

  test('the leader first catches a lagging transferee up, then sends TimeoutNow (Reference: thesis §3.10)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.heal();
    net.node(1).transferLeader(3);
    net.stabilize();
    expect(net.role(3)).toBe(StateRole.Leader);
    expect(net.stateOf(3)).toEqual(['a']);
  });

  test('proposals are refused with TRANSFER_IN_PROGRESS during a transfer (Reference: thesis §3.10)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    net.node(1).transferLeader(3);
    net.stabilize();
    expect(() => net.node(1).propose(enc('x'))).toThrow(expect.objectContaining({ code: 'TRANSFER_IN_PROGRESS' }));
  });

  test('a transfer that does not finish within an election timeout is aborted (Reference: thesis §3.10)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    net.node(1).transferLeader(3);
    net.stabilize();
    expect(net.node(1).status().leadTransferee).toBe(3);
    net.tick(1, 10);
    expect(net.node(1).status().leadTransferee).toBe(0);
    expect(net.role(1)).toBe(StateRole.Leader);
    expect(() => net.node(1).propose(enc('x'))).not.toThrow();
  });

  test('a follower forwards transferLeader to the leader (Reference: thesis §3.10)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.node(3).transferLeader(3);
    net.stabilize();
    expect(net.role(3)).toBe(StateRole.Leader);
  });

  test('a transfer to self or to a non-member is ignored (Reference: thesis §3.10)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.node(1).transferLeader(1);
    net.node(1).transferLeader(9);
    net.stabilize();
    expect(net.role(1)).toBe(StateRole.Leader);
    expect(net.node(1).status().leadTransferee).toBe(0);
  });

  test('a transfer campaign bypasses the leader lease of the other followers (Reference: thesis §3.10, §4.2.3)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, preVote: true });
    net.elect(1);
    net.node(1).transferLeader(2);
    net.stabilize();
    expect(net.role(2)).toBe(StateRole.Leader);
  });
});

describe('pre-vote (thesis §9.6)', () => {
  test('a partitioned node with pre-vote does not bump its term, so it does not disrupt the group on return (Reference: thesis §9.6)', () => {
    const net = new Network([1, 2, 3], { preVote: true });
    net.elect(1);
    net.isolate(3);
    net.tickAll(50);
    expect(net.term(3)).toBe(1);
    expect(net.role(3)).toBe(StateRole.PreCandidate);
    net.heal();
    net.tickAll(3);
    expect(net.leaders()).toEqual([1]);
    expect(net.term(1)).toBe(1);
  });

  test('without pre-vote the returning node forces a new election (contrast, Reference: thesis §9.6)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    net.tickAll(50);
    expect(net.term(3)).toBeGreaterThan(1);
    net.heal();
    net.tickAll(50);
    expect(net.term(1)).toBeGreaterThan(1);
  });

  test('a pre-candidate that wins the pre-vote runs a real election (Reference: thesis §9.6)', () => {
    const net = new Network([1, 2, 3], { preVote: true });
    net.campaign(1);
    expect(net.role(1)).toBe(StateRole.Leader);
    expect(net.term(1)).toBe(1);
    expect(net.delivered.filter((m) => m.type === MessageType.PreVote)).toHaveLength(2);
  });

  test('a pre-vote is granted without recording a vote or changing the term (Reference: thesis §9.6)', () => {
    const storage = new MemoryStorage({ voters: [1, 2, 3] });
    storage.setHardState({ term: 2, vote: 3, commit: 0 });
    const node = new RawNode(nodeConfig(1, storage, { preVote: true }));
    node.step(msg({ type: MessageType.PreVote, from: 2, to: 1, term: 3 }));
    const resp = drain(node, storage).find((m) => m.type === MessageType.PreVoteResp);
    expect(resp?.reject).toBe(false);
    expect(resp?.term).toBe(3);
    expect(node.status().hardState).toEqual({ term: 2, vote: 3, commit: 0 });
  });

  test('a pre-vote from a less up-to-date candidate is rejected (Reference: §5.4.1, thesis §9.6)', () => {
    const net = new Network([1, 2, 3], { preVote: true });
    net.elect(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.heal();
    net.isolate(1);
    net.campaign(3);
    expect(net.role(3)).not.toBe(StateRole.Leader);
    expect(net.term(3)).toBe(1);
  });
});

describe('check-quorum and leader lease (thesis §6.2, §4.2.3)', () => {
  test('a leader that cannot hear from a quorum for an election timeout steps down (Reference: thesis §6.2)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.elect(1);
    net.isolate(1);
    net.tick(1, 21);
    expect(net.role(1)).toBe(StateRole.Follower);
    expect(() => net.node(1).propose(enc('x'))).toThrow(expect.objectContaining({ code: 'PROPOSAL_DROPPED' }));
  });

  test('a leader hearing from a quorum stays leader (Reference: thesis §6.2)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.elect(1);
    net.isolate(3);
    net.tickAll(50);
    expect(net.leaders()).toContain(1);
    expect(net.role(1)).toBe(StateRole.Leader);
  });

  test('followers with a live leader ignore vote requests (leader lease, Reference: thesis §4.2.3)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.elect(1);
    net.campaign(3);
    expect(net.role(3)).toBe(StateRole.Candidate);
    expect(net.role(1)).toBe(StateRole.Leader);
    expect(net.term(1)).toBe(1);
    expect(net.term(2)).toBe(1);
  });

  test('once the lease expires, followers vote again (Reference: thesis §4.2.3)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.elect(1);
    net.stop(1);
    net.tickAll(25);
    expect(net.leaders().length).toBe(1);
    expect(net.leaders()[0]).not.toBe(1);
  });

  test('a stale leader learns the new term from the response to its heartbeat (Reference: §5.1, thesis §6.2)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, preVote: true });
    net.elect(1);
    net.isolate(1);
    net.tick(2, 30);
    net.tick(3, 30);
    const leader = net.leaders().find((id) => id !== 1);
    expect(leader).toBeDefined();
    net.heal();
    net.node(1).tick(); // heartbeat from the stale leader
    net.stabilize();
    expect(net.role(1)).toBe(StateRole.Follower);
    expect(net.term(1)).toBe(net.term(leader as number));
  });
});
