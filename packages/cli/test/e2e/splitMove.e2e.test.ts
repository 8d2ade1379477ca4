// A split and a move while an SDK writer runs: every acknowledged write is readable afterwards.
import type { OmniClient, PdClient } from '@omnidict/client';
import { pdpb } from '@omnidict/proto';
import { E2eCluster, findLost, Writer, waitFor, waitSettled } from './harness.js';

// The root jest config runs packages as projects, where a project's testTimeout does not apply.
jest.setTimeout(120_000);

let cluster: E2eCluster;
let client: OmniClient;
let pd: PdClient;

beforeAll(async () => {
  cluster = await E2eCluster.start('split-move', ['--nodes', '4', '--shards', '2']);
  client = cluster.client();
  pd = cluster.pd();
}, 300_000);

afterAll(async () => {
  client?.close();
  pd?.close();
  await cluster?.stop();
}, 120_000);

const DONE = pdpb.OperatorState.OPERATOR_STATE_DONE;
const FAILED = pdpb.OperatorState.OPERATOR_STATE_FAILED;

/** Polls an operator until it is done; throws as soon as it failed, or when it still runs after `timeoutMs`. */
async function waitOperatorDone(id: number, timeoutMs: number): Promise<pdpb.OperatorInfo> {
  const op = await waitFor(`operator ${id} to finish`, timeoutMs, async () => {
    const info = await pd.getOperator(id);
    return info.state === DONE || info.state === FAILED ? info : undefined;
  });
  if (op.state === FAILED) {
    throw new Error(`operator ${id} (${op.kind} shard ${op.shardId}) failed at ${op.step}: ${op.reason}`);
  }
  return op;
}

async function acksAtLeast(writer: Writer, n: number, what: string): Promise<void> {
  await waitFor(`${n} acknowledged writes ${what} (failures: ${writer.failureSummary})`, 30_000, async () =>
    writer.acked.length >= n ? true : undefined,
  );
}

test('split then move a replica under a running writer loses no acknowledged write', async () => {
  const writer = new Writer(client, 'sm', 4);
  writer.start();
  try {
    await acksAtLeast(writer, 100, 'before the split');
    const before = await waitSettled(pd);
    expect(before).toHaveLength(2);
    const target = before[0]!.shard!;

    const splitStart = Date.now();
    const split = await pd.splitShard(target.id);
    expect(split.shardId).toBe(target.id);
    await waitOperatorDone(split.id, 60_000);
    const afterSplit = await waitFor('the shard map to show 3 shards', 30_000, async () => {
      const routes = await pd.listShards();
      return routes.length === 3 && routes.every((r) => r.leaderNodeId > 0) ? routes : undefined;
    });
    const splitMs = Date.now() - splitStart;
    const halves = afterSplit.filter((r) => r.shard!.start >= target.start && r.shard!.end <= target.end);
    expect(halves).toHaveLength(2);
    expect(Math.min(...halves.map((r) => r.shard!.start))).toBe(target.start);
    expect(Math.max(...halves.map((r) => r.shard!.end))).toBe(target.end);
    const acksAtSplit = writer.acked.length;
    await acksAtLeast(writer, acksAtSplit + 100, 'after the split');

    // Move the leader's replica of the new half to the node that holds none of it. PD's own
    // scheduler may be balancing leaders right after the split: an operator it runs on the shard
    // makes ours CONFLICT, so wait for it and ask again.
    const newId = halves.find((r) => r.shard!.id !== target.id)?.shard?.id ?? target.id;
    const moveStart = Date.now();
    const plan = await waitFor(`PD to accept a move of shard ${newId}`, 60_000, async () => {
      const route = (await waitSettled(pd)).find((r) => r.shard?.id === newId)!;
      const holders = new Set(route.shard!.replicas.map((r) => r.nodeId));
      const to = [1, 2, 3, 4].find((n) => !holders.has(n));
      if (to === undefined) throw new Error(`shard ${newId} has replicas on every node`);
      const op = await pd.moveReplica(newId, route.leaderNodeId, to);
      return { shard: route.shard!, from: route.leaderNodeId, to, op };
    });
    const { shard, from, to, op: move } = plan;
    await waitOperatorDone(move.id, 90_000);
    const moveMs = Date.now() - moveStart;
    const placed = await waitFor(`shard ${shard.id} to be on node ${to} and not on ${from}`, 30_000, async () => {
      const r = (await pd.listShards()).find((s) => s.shard?.id === shard.id);
      const nodes = r?.shard?.replicas.map((x) => x.nodeId) ?? [];
      return nodes.includes(to) && !nodes.includes(from) && r!.leaderNodeId > 0 ? nodes : undefined;
    });
    expect(placed).toHaveLength(3);
    const acksAtMove = writer.acked.length;
    await acksAtLeast(writer, acksAtMove + 100, 'after the move');
    await writer.stop();

    const lost = await findLost(client, writer.acked);
    console.log(
      `split+move under load: ${writer.acked.length} writes acknowledged, failures ${writer.failureSummary}; ` +
        `split of shard ${target.id} done in ${splitMs} ms, move of shard ${shard.id} ${from}→${to} in ${moveMs} ms; ` +
        `${lost.length} lost`,
    );
    expect(lost).toEqual([]);

    // The same state through omnictl's admin commands.
    const cliJson = async <T>(...args: string[]): Promise<T> => {
      const r = await cluster.cli(['--json', ...args]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      return JSON.parse(r.stdout) as T;
    };
    const listed = await cliJson<{ id: number; replicas: { nodeId: number }[] }[]>('shard', 'list');
    expect(listed).toHaveLength(3);
    expect(listed.find((x) => x.id === shard.id)?.replicas.map((x) => x.nodeId)).toContain(to);
    expect(await cliJson<{ id: number; state: string }>('operator', 'get', String(move.id))).toMatchObject({
      id: move.id,
      state: 'done',
    });
    const nodes = await cliJson<{ id: number; state: string }[]>('node', 'list');
    expect(nodes.map((n) => `${n.id} ${n.state}`).sort()).toEqual(['1 up', '2 up', '3 up', '4 up']);
    expect(await cliJson<{ shardCount: number; nodesUp: number }>('cluster', 'status')).toMatchObject({
      shardCount: 3,
      nodesUp: 4,
    });
  } finally {
    await writer.stop();
  }
}, 240_000);
