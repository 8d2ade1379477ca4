import type { common, pdpb } from '@omnidict/proto';
import { decodeCursor, encodeCursor, RING_END, RouteTable } from '../src/index.js';

function desc(id: number, start: number, end: number, version = 1, confVer = 1): common.ShardDescriptor {
  return {
    id,
    start,
    end,
    epoch: { version, confVer },
    replicas: [1, 2, 3].map((n) => ({ replicaId: id * 10 + n, nodeId: n, role: 0 })),
  };
}

function map(revision: number, shards: common.ShardDescriptor[]): pdpb.ShardMap {
  return {
    revision,
    routes: shards.map((shard) => ({ shard, leaderReplicaId: 0, leaderNodeId: 1 })),
    nodeAddresses: { 1: 'n1', 2: 'n2', 3: 'n3' },
  };
}

const Q = RING_END / 4;

describe('RouteTable', () => {
  test('locates positions by binary search, including the ring ends', () => {
    const t = new RouteTable();
    expect(t.locate(0)).toBeUndefined();
    t.applyMap(map(1, [desc(1, 0, Q), desc(2, Q, 2 * Q), desc(3, 2 * Q, 3 * Q), desc(4, 3 * Q, RING_END)]));
    expect(t.locate(0)?.shard.id).toBe(1);
    expect(t.locate(Q - 1)?.shard.id).toBe(1);
    expect(t.locate(Q)?.shard.id).toBe(2);
    expect(t.locate(RING_END - 1)?.shard.id).toBe(4);
    expect(t.nodeAddress(2)).toBe('n2');
  });

  test('a split hint replaces the parent; a lagging PD map does not bring it back', () => {
    const t = new RouteTable();
    t.applyMap(map(1, [desc(1, 0, 2 * Q), desc(2, 2 * Q, RING_END)]));
    // Only the left half is known at first: the right half is a gap until the sibling arrives.
    expect(t.applyDescriptors([desc(1, 0, Q, 2)])).toBe(true);
    expect(t.locate(Q + 5)).toBeUndefined();
    t.applyDescriptors([desc(9, Q, 2 * Q, 2)]);
    expect(t.locate(Q + 5)?.shard.id).toBe(9);
    t.applyMap(map(2, [desc(1, 0, 2 * Q), desc(2, 2 * Q, RING_END)]));
    expect(t.locate(5)?.shard.end).toBe(Q);
    expect(t.locate(Q + 5)?.shard.id).toBe(9);
    // An older descriptor is ignored; older map revisions too.
    expect(t.applyDescriptors([desc(1, 0, 2 * Q, 1)])).toBe(false);
    expect(t.applyMap(map(1, []))).toBe(false);
    expect(t.all().map((r) => r.shard.id)).toEqual([1, 9, 2]);
  });

  test('leader hints: named leader, or walk to the next voter when none is named', () => {
    const t = new RouteTable();
    t.applyMap(map(1, [desc(1, 0, RING_END)]));
    const r = t.locate(7)!;
    expect(t.targetNode(r)).toBe(1);
    t.applyLeaderHint(1, 1, 3, 'n3-new');
    expect(t.targetNode(r)).toBe(3);
    expect(t.nodeAddress(3)).toBe('n3-new');
    t.applyLeaderHint(1, 3, 0, '');
    expect(t.targetNode(r)).toBe(1);
  });
});

describe('scan cursor', () => {
  test('round-trips (range start, position, key) and rejects garbage', () => {
    const c = { rangeStart: 123, pos: 0xfffffffe, key: Buffer.from('k\u0000ey') };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    expect(() => decodeCursor(Buffer.from([1, 2]))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
