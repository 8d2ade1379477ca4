/** Raft paper §8 client interaction: read-only queries via ReadIndex (thesis §6.4) and leases. */
import { ConfChangeType, MemoryStorage, MessageType, RaftError, RawNode } from '../../src/index.js';
import { dec, enc, Network, nodeConfig } from '../core/network.js';

describe('§8 read index', () => {
  test('the leader answers a safe read after a heartbeat round confirms its leadership (Reference: §8, thesis §6.4)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    const before = net.delivered.length;
    net.node(1).readIndex(enc('r1'));
    net.stabilize();
    const rs = net.readStates.get(1) ?? [];
    expect(rs).toHaveLength(1);
    expect(rs[0]?.index).toBe(2);
    expect(dec(rs[0]?.requestCtx ?? new Uint8Array())).toBe('r1');
    const hbs = net.delivered.slice(before).filter((m) => m.type === MessageType.Heartbeat);
    expect(hbs.length).toBe(2);
    expect(hbs.every((m) => dec(m.context ?? new Uint8Array()) === 'r1')).toBe(true);
  });

  test('a safe read is not answered without a quorum of heartbeat acks (Reference: §8)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(2);
    net.isolate(3);
    net.node(1).readIndex(enc('r'));
    net.stabilize();
    net.tickAll(5);
    expect(net.readStates.get(1)).toEqual([]);
    net.heal();
    net.tickAll(1);
    expect(net.readStates.get(1)).toHaveLength(1);
  });

  test('a follower forwards the read to the leader and gets the read state (Reference: §8)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'a');
    net.node(2).readIndex(enc('f'));
    net.stabilize();
    const rs = net.readStates.get(2) ?? [];
    expect(rs).toHaveLength(1);
    expect(rs[0]?.index).toBe(2);
    expect(dec(rs[0]?.requestCtx ?? new Uint8Array())).toBe('f');
    expect(net.readStates.get(1)).toEqual([]);
  });

  test('a new leader serves no read index until it commits an entry of its own term (Reference: §8, thesis §6.4)', () => {
    const net = new Network([1, 2, 3]);
    net.dropType(MessageType.App);
    net.campaign(1);
    net.node(1).readIndex(enc('early'));
    net.stabilize();
    expect(net.readStates.get(1)).toEqual([]);
    net.heal();
    net.tickAll(2);
    const rs = net.readStates.get(1) ?? [];
    expect(rs).toHaveLength(1);
    expect(rs[0]?.index).toBe(1);
  });

  test('a single-voter leader answers reads immediately (Reference: §8)', () => {
    const net = new Network([1]);
    net.elect(1);
    net.node(1).readIndex(enc('x'));
    net.stabilize();
    expect(net.readStates.get(1)).toHaveLength(1);
  });

  test('lease-based reads are answered without a heartbeat round (Reference: thesis §6.4.1)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
    net.elect(1);
    const before = net.delivered.length;
    net.node(1).readIndex(enc('lease'));
    net.stabilize();
    expect(net.readStates.get(1)).toHaveLength(1);
    expect(net.delivered.slice(before).filter((m) => m.type === MessageType.Heartbeat)).toEqual([]);
  });

  test('lease-based reads require check-quorum (Reference: thesis §6.4.1)', () => {
    expect(
      () => new RawNode(nodeConfig(1, new MemoryStorage({ voters: [1] }), { readOnlyOption: 'leaseBased' })),
    ).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  test('several pending reads are all answered by one quorum of acks, in order (Reference: §8)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.dropType(MessageType.HeartbeatResp);
    net.node(1).readIndex(enc('a'));
    net.node(1).readIndex(enc('b'));
    net.stabilize();
    expect(net.readStates.get(1)).toEqual([]);
    net.heal();
    net.tickAll(1);
    expect((net.readStates.get(1) ?? []).map((r) => dec(r.requestCtx))).toEqual(['a', 'b']);
  });
});

describe('§8 client interaction: proposals', () => {
  test('a follower refuses proposals with NOT_LEADER and the leader hint (Reference: §8)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    let err: unknown;
    try {
      net.node(2).propose(enc('x'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RaftError);
    expect((err as RaftError).code).toBe('NOT_LEADER');
    expect((err as RaftError).leaderId).toBe(1);
  });

  test('proposals are dropped when no leader is known (Reference: §8)', () => {
    const net = new Network([1, 2, 3]);
    expect(() => net.node(2).propose(enc('x'))).toThrow(expect.objectContaining({ code: 'PROPOSAL_DROPPED' }));
    expect(() => net.node(2).proposeConfChange({ type: ConfChangeType.RemoveNode, replicaId: 3 })).toThrow(
      expect.objectContaining({ code: 'PROPOSAL_DROPPED' }),
    );
  });

  test('propose returns the index and term the entry was appended at (Reference: §8)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    expect(net.propose(1, 'a')).toEqual({ index: 2, term: 1 });
    expect(net.propose(1, 'b')).toEqual({ index: 3, term: 1 });
    expect(net.logOf(2)[2]?.index).toBe(3);
  });
});
