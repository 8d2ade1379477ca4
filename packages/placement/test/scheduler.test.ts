import { RING_SIZE } from '@omnidict/proto';
import { checkLiveness } from '../src/scheduler/checkLiveness.js';
import { splitPosition } from '../src/scheduler/checkSplit.js';
import type { SchedulerConfig, ShardStats } from '../src/scheduler/clusterView.js';
import { DEFAULT_SCHEDULER_CONFIG } from '../src/scheduler/clusterView.js';
import { placeBootstrap } from '../src/scheduler/placeBootstrap.js';
import { schedule } from '../src/scheduler/schedule.js';
import { desc, LEARNER, softLeadersFirst, stateWith, stats } from './helpers.js';

const config: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, maxOperators: 10, replaceDownAfterMs: 1000 };

/** Three shards on nodes 1,2,3 with leaders on their first replica. */
function threeShards() {
  return [
    desc(1, 0, 100, 1, 1, [
      [11, 1],
      [12, 2],
      [13, 3],
    ]),
    desc(2, 100, 200, 1, 1, [
      [21, 2],
      [22, 3],
      [23, 1],
    ]),
    desc(3, 200, RING_SIZE, 1, 1, [
      [31, 3],
      [32, 1],
      [33, 2],
    ]),
  ];
}

describe('placeBootstrap', () => {
  test('waits for replicationFactor up nodes', () => {
    expect(placeBootstrap(stateWith(2))).toBeUndefined();
    const s = stateWith(3);
    s.apply({ type: 'setNodeState', nodeId: 3, state: 'down', atMs: 1 });
    expect(placeBootstrap(s)).toBeUndefined();
  });

  test('evenRanges(initialShards) tiling the ring, each on replicationFactor distinct up nodes, deterministic', () => {
    const s = stateWith(5);
    const layout = placeBootstrap(s)!;
    expect(layout).toHaveLength(8);
    expect(layout[0]!.start).toBe(0);
    expect(layout[7]!.end).toBe(RING_SIZE);
    for (let i = 1; i < layout.length; i++) expect(layout[i]!.start).toBe(layout[i - 1]!.end);
    for (const shard of layout) {
      expect(new Set(shard.nodeIds).size).toBe(3);
      for (const n of shard.nodeIds) expect([1, 2, 3, 4, 5]).toContain(n);
    }
    expect(placeBootstrap(stateWith(5))).toEqual(layout);
    // All five nodes get replicas: ketama spreads the shards.
    expect(new Set(layout.flatMap((l) => l.nodeIds)).size).toBe(5);
  });

  test('gather lists the lowest-id up node first (the first leader), balance keeps the ring order', () => {
    const s = stateWith(5);
    s.apply({ type: 'setNodeState', nodeId: 1, state: 'down', atMs: 1 });
    const ring = placeBootstrap(s)!;
    const gathered = placeBootstrap(s, 'gather')!;
    expect(new Set(ring.map((l) => l.nodeIds[0])).size).toBeGreaterThan(1);
    for (let i = 0; i < ring.length; i++) {
      expect([...gathered[i]!.nodeIds].sort()).toEqual([...ring[i]!.nodeIds].sort());
      const expectedFirst = ring[i]!.nodeIds.includes(2) ? 2 : ring[i]!.nodeIds[0];
      expect(gathered[i]!.nodeIds[0]).toBe(expectedFirst);
    }
    expect(gathered.some((l) => l.nodeIds[0] === 2)).toBe(true);
  });

  test('honours the configured shard count and replication factor; never after bootstrap', () => {
    const s = stateWith(3);
    s.apply({ type: 'setConfig', config: { initialShards: 3, replicationFactor: 1 } });
    const layout = placeBootstrap(s)!;
    expect(layout.map((l) => l.nodeIds.length)).toEqual([1, 1, 1]);
    s.apply({ type: 'bootstrap', clusterId: 1, shards: layout, atMs: 0 });
    expect(placeBootstrap(s)).toBeUndefined();
    expect(schedule(s, { nowMs: 0, shardStats: new Map() }, config).bootstrap).toBeUndefined();
  });
});

describe('checkLiveness', () => {
  const timeout = 100;
  test.each([
    ['up, heard recently → no change', 'up', 950, []],
    ['up, silent past the timeout → down', 'up', 850, [{ nodeId: 1, state: 'down' }]],
    ['down, heard again → up', 'down', 990, [{ nodeId: 1, state: 'up' }]],
    ['down, still silent → no change', 'down', 500, []],
    ['removed → never changes', 'removed', 500, []],
  ] as const)('%s', (_name, nodeState, lastMs, expected) => {
    const s = stateWith(1);
    if (nodeState !== 'up') s.apply({ type: 'setNodeState', nodeId: 1, state: nodeState, atMs: 0 });
    expect(checkLiveness(s, new Map([[1, lastMs]]), 1000, timeout, 0)).toEqual(expected);
  });

  test('a new leader judges nodes without heartbeats from when it took over', () => {
    const s = stateWith(2);
    expect(checkLiveness(s, new Map(), 1050, timeout, 1000)).toEqual([]);
    expect(checkLiveness(s, new Map([[1, 1150]]), 1200, timeout, 1000)).toEqual([{ nodeId: 2, state: 'down' }]);
  });
});

describe('replica checker', () => {
  test('a healthy, fully replicated cluster needs nothing', () => {
    const s = stateWith(3, threeShards());
    expect(schedule(s, softLeadersFirst(s), config).operators).toEqual([]);
  });

  test('a replica on a node down longer than the timeout is repaired onto the best node', () => {
    const s = stateWith(5, threeShards());
    s.apply({ type: 'setNodeState', nodeId: 2, state: 'down', atMs: 0 });
    // Node 4 and 5 are empty; 4 wins the tie by id, then 5 (counts include planned adds).
    const early = schedule(s, softLeadersFirst(s, 999), config).operators;
    expect(early.filter((o) => o.params.kind === 'repair')).toEqual([]);
    const ops = schedule(s, softLeadersFirst(s, 1000), config).operators;
    expect(ops.map((o) => [o.shardId, o.params])).toEqual([
      [1, { kind: 'repair', add: { nodeId: 4, replicaId: 0 }, remove: { nodeId: 2, replicaId: 12 } }],
      [2, { kind: 'repair', add: { nodeId: 5, replicaId: 0 }, remove: { nodeId: 2, replicaId: 21 } }],
      [3, { kind: 'repair', add: { nodeId: 4, replicaId: 0 }, remove: { nodeId: 2, replicaId: 33 } }],
    ]);
  });

  test('no target node → the dead replica stays (no under-replication by removal)', () => {
    const s = stateWith(3, threeShards());
    s.apply({ type: 'setNodeState', nodeId: 3, state: 'removed', atMs: 0 });
    expect(schedule(s, softLeadersFirst(s, 5000), config).operators).toEqual([]);
  });

  test('a move that failed after promoting onto a node that then died: the dead extra voter is removed', () => {
    // 4 nodes, shard 1 has a voter on each (the move added 14 on node 4, then node 4 went down).
    const s = stateWith(4, [
      desc(1, 0, RING_SIZE, 1, 3, [
        [11, 1],
        [12, 2],
        [13, 3],
        [14, 4],
      ]),
    ]);
    s.apply({ type: 'setNodeState', nodeId: 4, state: 'down', atMs: 0 });
    expect(schedule(s, softLeadersFirst(s, 5000), config).operators.map((o) => o.params)).toEqual([
      { kind: 'removeReplica', remove: { nodeId: 4, replicaId: 14 } },
    ]);
  });

  test('without a known leader or without a healthy quorum nothing is planned', () => {
    const s = stateWith(4, threeShards());
    s.apply({ type: 'setNodeState', nodeId: 2, state: 'down', atMs: 0 });
    s.apply({ type: 'setNodeState', nodeId: 3, state: 'down', atMs: 0 });
    expect(schedule(s, softLeadersFirst(s, 5000), config).operators).toEqual([]);
    const t = stateWith(4, threeShards());
    t.apply({ type: 'setNodeState', nodeId: 2, state: 'down', atMs: 0 });
    expect(schedule(t, { nowMs: 5000, shardStats: new Map() }, config).operators).toEqual([]);
  });

  test('under-replicated → addReplica; over-replicated → remove a non-leader voter from the busiest node', () => {
    const s = stateWith(4, [
      desc(1, 0, 100, 1, 1, [
        [11, 1],
        [12, 2],
      ]),
      desc(2, 100, RING_SIZE, 1, 1, [
        [21, 1],
        [22, 2],
        [23, 3],
        [24, 4],
      ]),
    ]);
    const ops = schedule(s, softLeadersFirst(s), config).operators;
    expect(ops.map((o) => [o.shardId, o.params])).toEqual([
      [1, { kind: 'addReplica', add: { nodeId: 3, replicaId: 0 } }],
      // Counts include the planned add on node 3 (1:2, 2:2, 3:2, 4:1); 21 on node 1 leads, so the
      // victim is a tie between nodes 2 and 3, broken towards the higher id.
      [2, { kind: 'removeReplica', remove: { nodeId: 3, replicaId: 23 } }],
    ]);
  });

  test('a leftover learner is promoted when voters are short, else removed', () => {
    const short = stateWith(3, [
      desc(1, 0, RING_SIZE, 1, 1, [
        [11, 1],
        [12, 2],
        [13, 3, LEARNER],
      ]),
    ]);
    expect(schedule(short, softLeadersFirst(short), config).operators[0]?.params).toEqual({
      kind: 'addReplica',
      add: { nodeId: 3, replicaId: 13 },
    });
    const full = stateWith(4, [
      desc(1, 0, RING_SIZE, 1, 1, [
        [11, 1],
        [12, 2],
        [13, 3],
        [14, 4, LEARNER],
      ]),
    ]);
    expect(schedule(full, softLeadersFirst(full), config).operators[0]?.params).toEqual({
      kind: 'removeReplica',
      remove: { nodeId: 4, replicaId: 14 },
    });
  });
});

describe('split checker', () => {
  test.each([
    ['small shard → no split', 10, 10, 0, undefined],
    ['bytes at threshold → split at median', 1000, 0, 40, 40],
    ['keys at threshold → split at median', 0, 100, 60, 60],
    ['median outside the range → split at the middle', 1000, 0, 500, 50],
    ['median unknown → split at the middle', 1000, 0, 0, 50],
  ])('%s', (_name, bytes, keys, median, splitAt) => {
    const s = stateWith(3, [
      desc(1, 0, 100, 1, 1, [
        [11, 1],
        [12, 2],
        [13, 3],
      ]),
    ]);
    const soft = softLeadersFirst(s, 0, { approximateBytes: bytes, approximateKeys: keys, medianPosition: median });
    const ops = schedule(s, soft, { ...config, splitMaxBytes: 1000, splitMaxKeys: 100 }).operators;
    expect(ops.map((o) => (o.params.kind === 'split' ? o.params.splitAt : o.params.kind))).toEqual(
      splitAt === undefined ? [] : [splitAt],
    );
  });

  test('a range of one position cannot split', () => {
    expect(splitPosition(desc(1, 5, 6, 1, 1), 0)).toBeUndefined();
    expect(splitPosition(desc(1, 5, 7, 1, 1), 0)).toBe(6);
  });
});

describe('balance', () => {
  test('a node that joins receives replicas from the most loaded nodes until counts are even', () => {
    const s = stateWith(4, threeShards());
    const ops = schedule(s, softLeadersFirst(s), config).operators;
    // 9 replicas over 4 nodes: 3,3,3,0 → 2,3,3,1 → 2,2,3,2: stops once max - min < 2.
    expect(ops.map((o) => [o.shardId, o.params.kind])).toEqual([
      [1, 'move'],
      [2, 'move'],
    ]);
    for (const o of ops) {
      expect(o.params.kind === 'move' && o.params.add?.nodeId).toBe(4);
    }
    expect(ops.map((o) => (o.params.kind === 'move' ? o.params.remove?.nodeId : 0))).toEqual([1, 2]);
  });

  test('leaders are transferred from the node leading the most shards to one leading the fewest', () => {
    const s = stateWith(3, threeShards());
    const shardStats = new Map<number, ShardStats>([
      [1, stats(1, 11)],
      [2, stats(1, 23)],
      [3, stats(1, 32)],
    ]);
    const ops = schedule(s, { nowMs: 0, shardStats }, config).operators;
    expect(ops.map((o) => [o.shardId, o.params])).toEqual([
      [1, { kind: 'transferLeader', toNodeId: 2, toReplicaId: 12 }],
      [2, { kind: 'transferLeader', toNodeId: 3, toReplicaId: 22 }],
    ]);
  });

  test('gather: leaders go to the node already leading the most shards, where it holds a replica', () => {
    const gather: SchedulerConfig = { ...config, leaderPlacement: 'gather' };
    const shards = threeShards();
    // Shard 4 has no replica on node 2: it cannot be gathered there.
    shards.push(
      desc(4, RING_SIZE - 10, RING_SIZE, 1, 1, [
        [41, 1],
        [42, 3],
        [43, 4],
      ]),
    );
    shards[2] = { ...shards[2]!, end: RING_SIZE - 10 };
    const s = stateWith(4, shards);
    const shardStats = new Map<number, ShardStats>([
      [1, stats(2, 12)],
      [2, stats(2, 21)],
      [3, stats(3, 31)],
      [4, stats(1, 41)],
    ]);
    // (Node 4 also gets replicas moved to it: replica balance is the same under both placements.)
    const ops = schedule(s, { nowMs: 0, shardStats }, gather).operators.filter(
      (o) => o.params.kind === 'transferLeader',
    );
    expect(ops.map((o) => [o.shardId, o.params])).toEqual([
      [3, { kind: 'transferLeader', toNodeId: 2, toReplicaId: 33 }],
    ]);
    // Balanced counts (1 each): the lowest id among the leading nodes gathers them.
    const even = new Map<number, ShardStats>([
      [1, stats(3, 13)],
      [2, stats(2, 21)],
      [3, stats(1, 32)],
    ]);
    const evenOps = schedule(stateWith(3, threeShards()), { nowMs: 0, shardStats: even }, gather).operators;
    expect(evenOps.map((o) => [o.shardId, o.params])).toEqual([
      [1, { kind: 'transferLeader', toNodeId: 1, toReplicaId: 11 }],
      [2, { kind: 'transferLeader', toNodeId: 1, toReplicaId: 23 }],
    ]);
    // Once gathered, nothing more is planned (balance would now spread them).
    const gathered = new Map<number, ShardStats>([
      [1, stats(1, 11)],
      [2, stats(1, 23)],
      [3, stats(1, 32)],
    ]);
    expect(schedule(stateWith(3, threeShards()), { nowMs: 0, shardStats: gathered }, gather).operators).toEqual([]);
  });

  test('no balancing while a repair is planned or running', () => {
    const s = stateWith(5, threeShards());
    s.apply({ type: 'setNodeState', nodeId: 1, state: 'down', atMs: 0 });
    const ops = schedule(s, softLeadersFirst(s, 5000), config).operators;
    expect(ops.every((o) => o.params.kind === 'repair')).toBe(true);
  });
});

describe('limits', () => {
  test('at most maxOperators active in total, counting running ones; never two on a shard', () => {
    const s = stateWith(5, threeShards());
    s.apply({ type: 'setNodeState', nodeId: 2, state: 'down', atMs: 0 });
    s.apply({
      type: 'startOperator',
      spec: {
        shardId: 1,
        reason: 'admin',
        source: 'admin',
        params: { kind: 'transferLeader', toNodeId: 3, toReplicaId: 0 },
      },
      atMs: 0,
    });
    const ops = schedule(s, softLeadersFirst(s, 5000), { ...config, maxOperators: 2 }).operators;
    expect(ops.map((o) => o.shardId)).toEqual([2]);
    expect(schedule(s, softLeadersFirst(s, 5000), { ...config, maxOperators: 1 }).operators).toEqual([]);
  });
});
