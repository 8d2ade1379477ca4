/** Raft paper §7 log compaction: InstallSnapshot when a follower needs compacted entries. */
import { MemoryStorage, MessageType, RawNode } from '../../src/index.js';
import { drain, enc, ent, msg, Network, nodeConfig } from '../core/network.js';

describe('§7 log compaction', () => {
  test('a leader sends a snapshot to a follower that needs compacted entries (Reference: §7)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    for (const x of ['a', 'b', 'c']) net.propose(1, x);
    net.compact(1);
    expect(net.storage(1).firstIndex()).toBe(5);
    net.heal();
    net.tickAll(3);
    expect(net.delivered.some((m) => m.type === MessageType.Snap && m.to === 3)).toBe(true);
    expect(net.stateOf(3)).toEqual(['a', 'b', 'c']);
    net.propose(1, 'd');
    expect(net.stateOf(3)).toEqual(['a', 'b', 'c', 'd']);
    expect(net.storage(3).firstIndex()).toBe(5);
  });

  test('a follower restores a snapshot via Ready.snapshot and discards its conflicting log (Reference: §7)', () => {
    const storage = new MemoryStorage({ voters: [1, 2] });
    storage.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    storage.setHardState({ term: 1, vote: 0, commit: 0 });
    const node = new RawNode(nodeConfig(2, storage));
    const snap = { metadata: { index: 11, term: 11, confState: { voters: [1, 2], learners: [] } }, data: enc('[]') };
    node.step(msg({ type: MessageType.Snap, from: 1, to: 2, term: 11, snapshot: snap }));
    const rd = node.ready();
    expect(rd.snapshot?.metadata.index).toBe(11);
    expect(rd.hardState?.commit).toBe(11);
    expect(rd.messages.find((m) => m.type === MessageType.AppResp)?.index).toBe(11);
    storage.applySnapshot(snap);
    node.advance(rd);
    expect(node.status().applied).toBe(11);
    expect(storage.lastIndex()).toBe(11);
    expect(node.hasReady()).toBe(false);
  });

  test('a snapshot older than the commit index is ignored (Reference: §7)', () => {
    const storage = new MemoryStorage({ voters: [1, 2] });
    storage.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    storage.setHardState({ term: 1, vote: 0, commit: 3 });
    const node = new RawNode(nodeConfig(2, storage));
    const snap = { metadata: { index: 2, term: 1, confState: { voters: [1, 2], learners: [] } }, data: enc('[]') };
    node.step(msg({ type: MessageType.Snap, from: 1, to: 2, term: 1, snapshot: snap }));
    const rd = node.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.messages.find((m) => m.type === MessageType.AppResp)?.index).toBe(3);
  });

  test('a snapshot whose last entry is already in the log only fast-forwards the commit index (Reference: §7 "retain following entries")', () => {
    const storage = new MemoryStorage({ voters: [1, 2] });
    storage.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    storage.setHardState({ term: 1, vote: 0, commit: 0 });
    const node = new RawNode(nodeConfig(2, storage));
    const snap = { metadata: { index: 2, term: 1, confState: { voters: [1, 2], learners: [] } }, data: enc('[]') };
    node.step(msg({ type: MessageType.Snap, from: 1, to: 2, term: 1, snapshot: snap }));
    const rd = node.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.hardState?.commit).toBe(2);
    expect(node.status().lastIndex).toBe(3);
  });

  test('a snapshot lost in transit is reported failed and sent again later (Reference: §7, etcd progress snapshot)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.compact(1);
    net.heal();
    net.dropType(MessageType.Snap);
    net.tickAll(2);
    // The dropped Snap was reported failed: the leader probes again and re-sends a snapshot later.
    expect(net.stateOf(3)).toEqual([]);
    net.heal();
    net.tickAll(3);
    expect(net.stateOf(3)).toEqual(['a']);
  });

  test('reportSnapshot(ok) moves the follower to probe, then replicate on its next ack (Reference: §7)', () => {
    const storage = new MemoryStorage({ voters: [1, 2] });
    const node = new RawNode(nodeConfig(1, storage));
    node.campaign();
    drain(node, storage);
    node.step(msg({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
    drain(node, storage);
    node.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 1, index: 1 }));
    drain(node, storage);
    node.propose(enc('a'));
    drain(node, storage);
    storage.createSnapshot(2, undefined, enc('["a"]'));
    storage.compact(2);
    // Follower 2 loses its log: it rejects, needs index 1, which is compacted.
    node.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 1, index: 2, reject: true, rejectHint: 0 }));
    const out = drain(node, storage);
    expect(out.some((m) => m.type === MessageType.Snap && m.to === 2)).toBe(true);
    expect(node.status().progress?.get(2)?.state).toBe('snapshot');
    node.reportSnapshot(2, true);
    expect(node.status().progress?.get(2)?.state).toBe('probe');
    node.step(msg({ type: MessageType.AppResp, from: 2, to: 1, term: 1, index: 2 }));
    expect(node.status().progress?.get(2)?.state).toBe('replicate');
  });

  test('a restarted node resumes from its persisted snapshot, hard state and log (Reference: §7, §5.1)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    for (const x of ['a', 'b']) net.propose(1, x);
    net.compact(2);
    net.propose(1, 'c');
    const before = net.node(2).status();
    net.restart(2);
    const after = net.node(2).status();
    expect(after.hardState).toEqual(before.hardState);
    expect(after.lastIndex).toBe(before.lastIndex);
    expect(after.applied).toBe(before.applied);
    net.propose(1, 'd');
    expect(net.stateOf(2)).toEqual(['a', 'b', 'c', 'd']);
  });
});
