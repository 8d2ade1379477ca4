import type { PdCommand } from '../src/state/pdState.js';
import { decodeCommand, encodeCommand, OPERATOR_HISTORY_LIMIT, PdState } from '../src/state/pdState.js';
import { desc, stateWith } from './helpers.js';

describe('PdState nodes', () => {
  test('register bumps the revision once; re-registering the same address is a no-op', () => {
    const s = new PdState();
    s.apply({ type: 'registerNode', nodeId: 1, address: 'a:1', atMs: 5 });
    expect(s.revision).toBe(1);
    s.apply({ type: 'registerNode', nodeId: 1, address: 'a:1', atMs: 6 });
    expect(s.revision).toBe(1);
    s.apply({ type: 'registerNode', nodeId: 1, address: 'b:1', atMs: 7 });
    expect(s.nodes.get(1)).toMatchObject({ address: 'b:1', state: 'up', registeredMs: 5 });
    expect(s.revision).toBe(2);
  });

  test('down, back up on register, removed for good', () => {
    const s = stateWith(1);
    expect(s.apply({ type: 'setNodeState', nodeId: 1, state: 'down', atMs: 100 })).toEqual({});
    expect(s.nodes.get(1)).toMatchObject({ state: 'down', stateSinceMs: 100 });
    s.apply({ type: 'registerNode', nodeId: 1, address: 'n1:1', atMs: 200 });
    expect(s.nodes.get(1)).toMatchObject({ state: 'up', stateSinceMs: 200 });
    s.apply({ type: 'setNodeState', nodeId: 1, state: 'removed', atMs: 300 });
    expect(s.apply({ type: 'registerNode', nodeId: 1, address: 'n1:1', atMs: 400 }).error?.code).toBe('CONFLICT');
    expect(s.apply({ type: 'setNodeState', nodeId: 1, state: 'up', atMs: 400 }).error?.code).toBe('CONFLICT');
    expect(s.apply({ type: 'setNodeState', nodeId: 9, state: 'up', atMs: 400 }).error?.code).toBe('NOT_FOUND');
    expect(s.apply({ type: 'registerNode', nodeId: 0, address: 'x', atMs: 1 }).error?.code).toBe('INVALID_ARGUMENT');
  });
});

describe('PdState shard reports: newest epoch wins', () => {
  const base = desc(10, 0, 100, 3, 5, [[11, 1]]);
  test.each([
    ['lower version is ignored', 2, 9, false],
    ['equal version, lower confVer is ignored', 3, 4, false],
    ['identical epoch is ignored', 3, 5, false],
    ['equal version, higher confVer wins', 3, 6, true],
    ['higher version, lower confVer wins', 4, 1, true],
  ])('%s', (_name, version, confVer, accepted) => {
    const s = stateWith(2, [base]);
    const before = s.revision;
    const report = desc(10, 0, 100, version, confVer, [
      [11, 1],
      [12, 2],
    ]);
    expect(s.apply({ type: 'reportShards', shards: [report] }).accepted).toBe(accepted ? 1 : 0);
    expect(s.shards.get(10)?.epoch).toEqual(accepted ? { version, confVer } : { version: 3, confVer: 5 });
    expect(s.revision).toBe(accepted ? before + 1 : before);
  });

  test('after a split the parent is replaced, and a stale pre-split report is ignored', () => {
    const s = stateWith(1, [desc(1, 0, 100, 1, 1, [[2, 1]])]);
    // The right half reports first: it overlaps the parent, which has a lower version → parent dropped.
    s.apply({ type: 'reportShards', shards: [desc(5, 50, 100, 2, 1, [[6, 1]])] });
    expect([...s.shards.keys()]).toEqual([5]);
    s.apply({ type: 'reportShards', shards: [desc(1, 0, 50, 2, 1, [[2, 1]])] });
    expect(s.sortedShards().map((d) => [d.id, d.start, d.end])).toEqual([
      [1, 0, 50],
      [5, 50, 100],
    ]);
    // A lagging replica still reporting the parent's old range is ignored.
    expect(s.apply({ type: 'reportShards', shards: [desc(1, 0, 100, 1, 9, [[2, 1]])] }).accepted).toBe(0);
    expect(s.shards.get(1)?.end).toBe(50);
    // And a never-seen shard from before the split overlapping a newer one is ignored too.
    expect(s.apply({ type: 'reportShards', shards: [desc(77, 40, 60, 1, 1, [])] }).accepted).toBe(0);
  });

  test('ids seen in reports are never allocated again', () => {
    const s = stateWith(1, [desc(40, 0, 100, 1, 1, [[41, 1]])]);
    expect(s.apply({ type: 'allocIds', count: 1 }).firstId).toBe(42);
  });
});

describe('PdState id allocation', () => {
  test('monotonic blocks, survive a snapshot round trip, reject bad counts', () => {
    const s = new PdState();
    expect(s.apply({ type: 'allocIds', count: 3 }).firstId).toBe(1);
    expect(s.apply({ type: 'allocIds', count: 2 }).firstId).toBe(4);
    const t = PdState.fromSnapshot(s.snapshot());
    expect(t.apply({ type: 'allocIds', count: 1 }).firstId).toBe(6);
    expect(s.apply({ type: 'allocIds', count: 0 }).error?.code).toBe('INVALID_ARGUMENT');
    expect(s.apply({ type: 'allocIds', count: 1.5 }).error?.code).toBe('INVALID_ARGUMENT');
  });
});

describe('PdState bootstrap and operators', () => {
  const bootstrap: PdCommand = {
    type: 'bootstrap',
    clusterId: 99,
    shards: [
      { start: 0, end: 2 ** 31, nodeIds: [1, 2, 3] },
      { start: 2 ** 31, end: 2 ** 32, nodeIds: [2, 3, 1] },
    ],
    atMs: 1000,
  };

  test('bootstrap allocates shard, replica and operator ids in order, once', () => {
    const s = stateWith(3);
    expect(s.apply(bootstrap)).toEqual({});
    expect(s.bootstrapped).toBe(true);
    expect(s.clusterId).toBe(99);
    expect(s.sortedShards()).toEqual([
      desc(1, 0, 2 ** 31, 1, 1, [
        [2, 1],
        [3, 2],
        [4, 3],
      ]),
      desc(6, 2 ** 31, 2 ** 32, 1, 1, [
        [7, 2],
        [8, 3],
        [9, 1],
      ]),
    ]);
    expect(s.activeOperators().map((o) => [o.id, o.kind, o.shardId, o.state])).toEqual([
      [5, 'create', 1, 'pending'],
      [10, 'create', 6, 'pending'],
    ]);
    expect(s.apply(bootstrap).error?.code).toBe('CONFLICT');
    expect(s.nextId).toBe(11);
  });

  test('startOperator allocates the ids a spec left open; one operator per shard', () => {
    const s = stateWith(3, [
      desc(1, 0, 100, 1, 1, [
        [2, 1],
        [3, 2],
        [4, 3],
      ]),
    ]);
    const r = s.apply({
      type: 'startOperator',
      spec: {
        shardId: 1,
        reason: 'test',
        source: 'admin',
        params: { kind: 'split', splitAt: 50, newShardId: 0, newReplicaIds: [], fromVersion: 0 },
      },
      atMs: 7,
    });
    expect(r.operator).toMatchObject({
      id: 5,
      kind: 'split',
      state: 'pending',
      createdMs: 7,
      params: { kind: 'split', splitAt: 50, newShardId: 6, newReplicaIds: [7, 8, 9], fromVersion: 1 },
    });
    const again = s.apply({
      type: 'startOperator',
      spec: {
        shardId: 1,
        reason: 'x',
        source: 'admin',
        params: { kind: 'transferLeader', toNodeId: 2, toReplicaId: 0 },
      },
      atMs: 8,
    });
    expect(again.error?.code).toBe('CONFLICT');
    expect(
      s.apply({
        type: 'startOperator',
        spec: { shardId: 404, reason: 'x', source: 'admin', params: { kind: 'create' } },
        atMs: 8,
      }).error?.code,
    ).toBe('NOT_FOUND');
    s.apply({ type: 'updateOperator', id: 5, state: 'done', step: 'waitReport', reason: 'test', atMs: 9 });
    const third = s.apply({
      type: 'startOperator',
      spec: {
        shardId: 1,
        reason: 'x',
        source: 'admin',
        params: { kind: 'transferLeader', toNodeId: 2, toReplicaId: 0 },
      },
      atMs: 10,
    });
    expect(third.operator?.params).toEqual({ kind: 'transferLeader', toNodeId: 2, toReplicaId: 3 });
    expect(
      s.apply({ type: 'updateOperator', id: 5, state: 'running', step: 'x', reason: '', atMs: 11 }).error?.code,
    ).toBe('CONFLICT');
  });

  test('finished operator history is pruned to the limit, oldest first', () => {
    const s = stateWith(1, [desc(1, 0, 100, 1, 1, [[2, 1]])]);
    const n = OPERATOR_HISTORY_LIMIT + 5;
    for (let i = 0; i < n; i++) {
      const op = s.apply({
        type: 'startOperator',
        spec: {
          shardId: 1,
          reason: '',
          source: 'admin',
          params: { kind: 'transferLeader', toNodeId: 1, toReplicaId: 2 },
        },
        atMs: i,
      }).operator!;
      s.apply({ type: 'updateOperator', id: op.id, state: 'failed', step: 'transferLeader', reason: 'x', atMs: i });
    }
    expect(s.operators.size).toBe(OPERATOR_HISTORY_LIMIT);
    expect(Math.min(...s.operators.keys())).toBe(3 + 5);
  });
});

describe('PdState codec and snapshots', () => {
  const commands: PdCommand[] = [
    { type: 'registerNode', nodeId: 1, address: 'a:1', atMs: 1 },
    { type: 'registerNode', nodeId: 2, address: 'b:1', atMs: 2 },
    { type: 'registerNode', nodeId: 3, address: 'c:1', atMs: 3 },
    { type: 'setConfig', config: { replicationFactor: 3, initialShards: 4 } },
    { type: 'bootstrap', clusterId: 7, shards: [{ start: 0, end: 2 ** 32, nodeIds: [1, 2, 3] }], atMs: 4 },
    { type: 'setNodeState', nodeId: 2, state: 'down', atMs: 5 },
    { type: 'allocIds', count: 10 },
    { type: 'leaderChanged', leaderId: 2, address: 'pd2:1', atMs: 6 },
    { type: 'updateOperator', id: 5, state: 'running', step: 'createReplicas', reason: 'bootstrap', atMs: 7 },
  ];

  test('commands survive encode/decode; a wrong tag is rejected', () => {
    for (const c of commands) expect(decodeCommand(encodeCommand(c))).toEqual(c);
    const bytes = encodeCommand(commands[0]!);
    bytes[0] = 0x02;
    expect(() => decodeCommand(bytes)).toThrow(/tag/);
  });

  test('replicas applying the same encoded log reach byte-identical snapshots; restore reproduces the state', () => {
    const a = new PdState();
    const b = new PdState();
    for (const c of commands) {
      const bytes = encodeCommand(c);
      expect(a.apply(decodeCommand(bytes))).toEqual(b.apply(decodeCommand(bytes)));
    }
    expect(Buffer.from(a.snapshot()).equals(Buffer.from(b.snapshot()))).toBe(true);
    const c = PdState.fromSnapshot(a.snapshot());
    expect(Buffer.from(c.snapshot()).equals(Buffer.from(a.snapshot()))).toBe(true);
    expect(c.nodes.get(2)?.state).toBe('down');
    expect(c.config.initialShards).toBe(4);
    expect(c.revision).toBe(a.revision);
    expect(c.activeOperators()).toHaveLength(1);
    expect(c.bootstrapped).toBe(true);
    // The restored allocator continues where the original stopped.
    expect(c.apply({ type: 'allocIds', count: 1 }).firstId).toBe(a.apply({ type: 'allocIds', count: 1 }).firstId);
  });
});
