import { driveOperator } from '../src/operators/driveOperator.js';
import type { OperatorParams } from '../src/operators/operatorTypes.js';
import type { OperatorConfig, OperatorMemory } from '../src/operators/step.js';
import { DEFAULT_OPERATOR_CONFIG, newOperatorMemory } from '../src/operators/step.js';
import type { OperatorRecord, PdState } from '../src/state/pdState.js';
import { isActive } from '../src/state/pdState.js';
import { FakeNodes } from './fakeNodes.js';
import { desc, LEARNER, stateWith, VOTER } from './helpers.js';

const config: OperatorConfig = {
  ...DEFAULT_OPERATOR_CONFIG,
  timeoutMsByKind: { ...DEFAULT_OPERATOR_CONFIG.timeoutMsByKind, move: 5_000, repair: 5_000, transferLeader: 3_000 },
  retryMs: 500,
  catchUpLagEntries: 2,
};

const shard1 = () =>
  desc(1, 0, 1000, 1, 1, [
    [11, 1],
    [12, 2],
    [13, 3],
  ]);

/** Nodes 1..4, shard 1 on nodes 1,2,3 led by replica 11, known alike to PD and the twin. */
function setup(): { state: PdState; fake: FakeNodes } {
  const state = stateWith(4, [shard1()]);
  const fake = new FakeNodes((nodeId) => `n${nodeId}:1`);
  fake.add(shard1());
  for (const r of shard1().replicas) fake.created.add(`${r.nodeId}/1`);
  return { state, fake };
}

function start(state: PdState, params: OperatorParams, shardId = 1): OperatorRecord {
  const r = state.apply({
    type: 'startOperator',
    spec: { shardId, reason: 'test', source: 'admin', params },
    atMs: 1000,
  });
  if (!r.operator) throw new Error(r.error?.message);
  return r.operator;
}

/**
 * The PD leader's loop in miniature: drive, propose what was learned and the operator's new step,
 * let the twin's Raft make a round of progress, advance the clock. Returns the final record and the
 * steps it went through.
 */
async function run(
  state: PdState,
  fake: FakeNodes,
  opId: number,
  opts: { rounds?: number; stepMs?: number; mem?: OperatorMemory; until?: (op: OperatorRecord) => boolean } = {},
): Promise<{ op: OperatorRecord; steps: string[] }> {
  const mem = opts.mem ?? newOperatorMemory();
  const steps: string[] = [];
  let now = 1000;
  for (let i = 0; i < (opts.rounds ?? 100); i++) {
    const op = state.operators.get(opId)!;
    if (!isActive(op) || opts.until?.(op)) break;
    const r = await driveOperator(op, { nowMs: now, state, stats: fake.stats(op.shardId), admin: fake, config }, mem);
    if (r.learned.length > 0) state.apply({ type: 'reportShards', shards: r.learned });
    if (r.changed) {
      state.apply({ type: 'updateOperator', id: opId, state: r.state, step: r.step, reason: r.reason, atMs: now });
    }
    if (steps.at(-1) !== r.step) steps.push(r.step);
    fake.replicate();
    now += opts.stepMs ?? 100;
  }
  return { op: state.operators.get(opId)!, steps };
}

describe('move replica', () => {
  test('away from the leader: add learner, create, catch up, promote, transfer leadership, remove', async () => {
    const { state, fake } = setup();
    const op = start(state, { kind: 'move', add: { nodeId: 4, replicaId: 0 }, remove: { nodeId: 1, replicaId: 11 } });
    const { op: final, steps } = await run(state, fake, op.id);
    expect(final.state).toBe('done');
    // Steps whose effect is immediate run in the same drive; the record stops where it waits.
    expect(steps).toEqual(['catchUp', 'transferLeaderAway', 'removeReplica']);
    const newReplicaId = op.params.kind === 'move' ? op.params.add!.replicaId : 0;
    expect(fake.calls).toEqual([
      `changeReplicas(0,${newReplicaId})@n1:1`,
      'createShard@n4:1',
      `changeReplicas(1,${newReplicaId})@n1:1`,
      'transferLeader@n1:1',
      `changeReplicas(2,11)@n4:1`,
    ]);
    expect(fake.desc(1)!.replicas.map((r) => [r.nodeId, r.role])).toEqual([
      [2, VOTER],
      [3, VOTER],
      [4, VOTER],
    ]);
    expect(fake.stats(1)!.leaderReplicaId).toBe(newReplicaId);
    expect(fake.created.has('4/1')).toBe(true);
    // PD's copy follows from the descriptors the calls returned: add, promote, remove = confVer 4.
    expect(state.shards.get(1)).toEqual(fake.desc(1));
    expect(state.shards.get(1)!.epoch).toEqual({ version: 1, confVer: 4 });
  });

  test('a stale PD descriptor gets STALE_EPOCH, learns the current one, and retries', async () => {
    const { state, fake } = setup();
    // The twin moved on (confVer 2) before PD heard about it.
    fake.shards.get(1)!.desc.epoch = { version: 1, confVer: 2 };
    const op = start(state, { kind: 'addReplica', add: { nodeId: 4, replicaId: 0 } });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('done');
    expect(fake.calls.filter((c) => c.startsWith('changeReplicas'))).toHaveLength(3);
    expect(state.shards.get(1)!.replicas.map((r) => r.nodeId)).toEqual([1, 2, 3, 4]);
  });

  test('a learner that never catches up times out in catchUp, with the reason', async () => {
    const { state, fake } = setup();
    fake.frozenLearners = true;
    const op = start(state, { kind: 'move', add: { nodeId: 4, replicaId: 0 }, remove: { nodeId: 2, replicaId: 12 } });
    const { op: final } = await run(state, fake, op.id);
    expect(final).toMatchObject({ state: 'failed', step: 'catchUp' });
    expect(final.reason).toMatch(/timeout after 5000 ms in step catchUp/);
    // Nothing was removed: the shard keeps its three voters (plus the stuck learner).
    expect(fake.desc(1)!.replicas.filter((r) => r.role === VOTER)).toHaveLength(3);
  });

  test('a new PD leader resumes at the recorded step without repeating finished calls', async () => {
    const { state, fake } = setup();
    const op = start(state, { kind: 'move', add: { nodeId: 4, replicaId: 0 }, remove: { nodeId: 2, replicaId: 12 } });
    await run(state, fake, op.id, { until: (o) => o.step === 'catchUp' });
    const addCalls = fake.calls.length;
    // Fresh memory = a new leader that knows only the replicated record.
    const { op: final } = await run(state, fake, op.id, { mem: newOperatorMemory() });
    expect(final.state).toBe('done');
    expect(fake.calls.slice(addCalls).map((c) => c.split('(')[0])).toEqual(['changeReplicas', 'changeReplicas']);
    expect(fake.desc(1)!.replicas.map((r) => r.nodeId)).toEqual([1, 3, 4]);
  });

  test('a non-retryable error fails the operator with the node error as the reason', async () => {
    const { state, fake } = setup();
    fake.injected.set('changeReplicas', ['INVALID_ARGUMENT']);
    const op = start(state, { kind: 'addReplica', add: { nodeId: 4, replicaId: 0 } });
    const { op: final } = await run(state, fake, op.id);
    expect(final).toMatchObject({ state: 'failed', step: 'addLearner' });
    expect(final.reason).toBe('add learner: INVALID_ARGUMENT: injected');
  });

  test('NOT_LEADER and transport errors are retried, paced by retryMs', async () => {
    const { state, fake } = setup();
    fake.injected.set('changeReplicas', ['NOT_LEADER', 'UNAVAILABLE']);
    const op = start(state, { kind: 'addReplica', add: { nodeId: 4, replicaId: 0 } });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('done');
    const adds = fake.calls.filter((c) => c.startsWith('changeReplicas'));
    // 2 failures + add + promote; with stepMs 100 and retryMs 500 the retries are spaced out.
    expect(adds).toHaveLength(4);
  });

  test('repair off an unreachable node: no transfer needed, removal goes through the leader', async () => {
    const { state, fake } = setup();
    fake.unreachable.add('n2:1');
    state.apply({ type: 'setNodeState', nodeId: 2, state: 'down', atMs: 0 });
    const op = start(state, { kind: 'repair', add: { nodeId: 4, replicaId: 0 }, remove: { nodeId: 2, replicaId: 12 } });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('done');
    expect(fake.calls.some((c) => c.endsWith('@n2:1'))).toBe(false);
    expect(fake.desc(1)!.replicas.map((r) => r.nodeId)).toEqual([1, 3, 4]);
  });

  test("the added voter's node dies before the source is removed: fails at once, never transfers to it", async () => {
    // A move from the leader's node 1 to node 4 has promoted replica 14; then node 4 crashes. Sending
    // TransferLeader to the dead replica again and again would hold the shard (no repair can start
    // on it) until the move's timeout; removing replica 11 would trade a healthy voter for a dead one.
    const { state, fake } = setup();
    const fourVoters = desc(1, 0, 1000, 1, 3, [
      [11, 1],
      [12, 2],
      [13, 3],
      [14, 4],
    ]);
    fake.add(fourVoters, 11);
    state.apply({ type: 'reportShards', shards: [fourVoters] });
    const op = start(state, { kind: 'move', add: { nodeId: 4, replicaId: 14 }, remove: { nodeId: 1, replicaId: 11 } });
    state.apply({
      type: 'updateOperator',
      id: op.id,
      state: 'running',
      step: 'transferLeaderAway',
      reason: '',
      atMs: 1000,
    });
    fake.unreachable.add('n4:1');
    state.apply({ type: 'setNodeState', nodeId: 4, state: 'down', atMs: 1000 });
    const { op: final, steps } = await run(state, fake, op.id);
    expect(final).toMatchObject({ state: 'failed', step: 'transferLeaderAway' });
    expect(final.reason).toBe('target node 4 is down; keeping replica 11 on node 1');
    expect(steps).toEqual(['transferLeaderAway']);
    expect(fake.calls).toEqual([]);
    expect(fake.desc(1)!.replicas.map((r) => r.replicaId)).toEqual([11, 12, 13, 14]);
  });

  test('leadership handed away before a removal goes to a voter on an up node, never a dead one', async () => {
    // removeReplica of the leader 11 while the added replica's node is up but another voter's is down.
    const { state, fake } = setup();
    const fourVoters = desc(1, 0, 1000, 1, 3, [
      [11, 1],
      [12, 2],
      [13, 3],
      [14, 4],
    ]);
    fake.add(fourVoters, 11);
    state.apply({ type: 'reportShards', shards: [fourVoters] });
    fake.unreachable.add('n2:1');
    state.apply({ type: 'setNodeState', nodeId: 2, state: 'down', atMs: 0 });
    const op = start(state, { kind: 'removeReplica', remove: { nodeId: 1, replicaId: 11 } });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('done');
    expect(fake.stats(1)!.leaderReplicaId).toBe(13);
    expect(fake.desc(1)!.replicas.map((r) => r.replicaId)).toEqual([12, 13, 14]);
  });

  test('removeReplica of a leftover learner', async () => {
    const { state, fake } = setup();
    const withLearner = desc(1, 0, 1000, 1, 2, [
      [11, 1],
      [12, 2],
      [13, 3],
      [14, 4, LEARNER],
    ]);
    fake.add(withLearner);
    state.apply({ type: 'reportShards', shards: [withLearner] });
    const op = start(state, { kind: 'removeReplica', remove: { nodeId: 4, replicaId: 14 } });
    const { op: final, steps } = await run(state, fake, op.id);
    expect(final.state).toBe('done');
    expect(steps).toEqual(['removeReplica']);
    expect(state.shards.get(1)!.replicas).toHaveLength(3);
  });
});

describe('split', () => {
  test('SplitShard on the leader, done once PD state holds the new shard', async () => {
    const { state, fake } = setup();
    const op = start(state, { kind: 'split', splitAt: 400, newShardId: 0, newReplicaIds: [], fromVersion: 0 });
    const { op: final, steps } = await run(state, fake, op.id);
    expect(final).toMatchObject({ state: 'done', step: 'waitReport' });
    expect(steps).toEqual(['waitReport']);
    const p = op.params.kind === 'split' ? op.params : undefined;
    expect(fake.calls).toEqual(['splitShard@n1:1']);
    expect(state.sortedShards().map((s) => [s.id, s.start, s.end, s.epoch?.version])).toEqual([
      [1, 0, 400, 2],
      [p!.newShardId, 400, 1000, 2],
    ]);
    expect(state.shards.get(p!.newShardId)!.replicas.map((r) => r.replicaId)).toEqual(p!.newReplicaIds);
  });

  test('a split position outside the shard fails without calling a node', async () => {
    const { state, fake } = setup();
    const op = start(state, { kind: 'split', splitAt: 5000, newShardId: 0, newReplicaIds: [], fromVersion: 0 });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('failed');
    expect(final.reason).toMatch(/outside \[0, 1000\)/);
    expect(fake.calls).toEqual([]);
  });

  test('a split already applied (epoch moved on) completes from the report alone', async () => {
    const { state, fake } = setup();
    const op = start(state, { kind: 'split', splitAt: 500, newShardId: 0, newReplicaIds: [], fromVersion: 0 });
    await fake.splitShard('n1:1', {
      header: { shardId: 1, epoch: { version: 1, confVer: 1 }, staleRead: false, timeoutMs: 0 },
      splitAt: 500,
      newShardId: op.params.kind === 'split' ? op.params.newShardId : 0,
      newReplicaIds: op.params.kind === 'split' ? [...op.params.newReplicaIds] : [],
    });
    state.apply({ type: 'reportShards', shards: [...fake.shards.values()].map((s) => s.desc) });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('done');
    expect(fake.calls).toEqual(['splitShard@n1:1']);
  });
});

describe('transfer leader', () => {
  test('done once the leader report names the target', async () => {
    const { state, fake } = setup();
    const op = start(state, { kind: 'transferLeader', toNodeId: 3, toReplicaId: 0 });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('done');
    expect(fake.stats(1)!.leaderReplicaId).toBe(13);
  });

  test('a leader that never moves: re-sent every retryMs, then failed at the timeout', async () => {
    const { state, fake } = setup();
    fake.stubbornLeaders = true;
    const op = start(state, { kind: 'transferLeader', toNodeId: 3, toReplicaId: 0 });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('failed');
    expect(final.reason).toMatch(/timeout after 3000 ms in step transferLeader/);
    // 3000 ms of 100 ms rounds, one call per 500 ms.
    expect(fake.calls).toHaveLength(7);
  });

  test('to a node without a voter of the shard fails at once', async () => {
    const { state, fake } = setup();
    const op = start(state, { kind: 'transferLeader', toNodeId: 4, toReplicaId: 0 });
    const { op: final } = await run(state, fake, op.id);
    expect(final.state).toBe('failed');
    expect(final.reason).toMatch(/not a voter/);
  });
});

describe('create (bootstrap)', () => {
  test('creates every replica, the first listed last and campaigning, retrying an unreachable node, then waits for a leader report', async () => {
    const state = stateWith(3);
    state.apply({
      type: 'bootstrap',
      clusterId: 1,
      shards: [{ start: 0, end: 2 ** 32, nodeIds: [1, 2, 3] }],
      atMs: 1000,
    });
    const fake = new FakeNodes((nodeId) => `n${nodeId}:1`);
    fake.unreachable.add('n3:1');
    const op = state.activeOperators()[0]!;
    const mem = newOperatorMemory();
    await run(state, fake, op.id, { rounds: 8, mem });
    expect(state.operators.get(op.id)).toMatchObject({ state: 'running', step: 'createReplicas' });
    // Node 1 (listed first: the first leader) waits until the other replicas exist.
    expect([...fake.created].sort()).toEqual(['2/1']);
    fake.unreachable.clear();
    const { op: final } = await run(state, fake, op.id, { mem });
    expect(final.state).toBe('done');
    expect([...fake.created].sort()).toEqual(['1/1', '2/1', '3/1']);
    expect([...fake.campaigned]).toEqual(['1/1']);
    expect(fake.calls.filter((c) => c.startsWith('createShard@')).at(-1)).toBe('createShard@n1:1');
    // Nodes 1 and 2 were not asked again once they had acknowledged.
    expect(fake.calls.filter((c) => c === 'createShard@n1:1')).toHaveLength(1);
    expect(fake.calls.filter((c) => c === 'createShard@n2:1')).toHaveLength(1);
  });
});
