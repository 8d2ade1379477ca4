// More process faults under a running writer: kill -9 of the PD leader (admin calls and operators
// keep working), SIGSTOP/SIGCONT of a shard leader's node (a pause), and SIGTERM of a node (it exits
// by itself and comes back). No acknowledged write is lost.
import type { OmniClient, PdClient } from '@omnidict/client';
import { E2eCluster, findLost, isRunning, sleep, Writer, waitFor, waitSettled } from './harness.js';

// The root jest config runs packages as projects, where a project's testTimeout does not apply.
jest.setTimeout(120_000);

let cluster: E2eCluster;
let client: OmniClient;
let pd: PdClient;

beforeAll(async () => {
  cluster = await E2eCluster.start('pd-pause', ['--shards', '4']);
  client = cluster.client();
  pd = cluster.pd();
}, 300_000);

afterAll(async () => {
  client?.close();
  pd?.close();
  await cluster?.stop();
}, 120_000);

test('PD leader kill -9, a paused leader node, a SIGTERM-ed node: writes continue, nothing lost', async () => {
  const writer = new Writer(client, 'pp', 4);
  writer.start();
  try {
    await waitFor('100 acknowledged writes', 30_000, async () => writer.acked.length >= 100);
    const routes = await waitSettled(pd);

    const pdLeaderId = (await pd.clusterStatus()).pdLeaderId;
    const pdLeader = cluster.process('pd', pdLeaderId);
    const pdKilledAtMs = Date.now();
    await cluster.kill9(pdLeader);
    const split = await waitFor('a split to be accepted after the PD leader died', 30_000, async () =>
      pd.splitShard(routes[0]!.shard!.id, 0, { timeoutMs: 3000 }),
    );
    const pdFailoverMs = Date.now() - pdKilledAtMs;
    expect((await pd.clusterStatus()).pdLeaderId).not.toBe(pdLeaderId);
    cluster.restart(pdLeader);
    await waitFor(`split operator ${split.id} to finish`, 60_000, async () => (await pd.listShards()).length === 5);

    // After a PD leader kill and a split, balance may run a while before no operator is active.
    const target = (await waitSettled(pd, 90_000))[0]!;
    const paused = cluster.process('node', target.leaderNodeId);
    const ackedAtPause = writer.acked.length;
    process.kill(paused.pid, 'SIGSTOP');
    await sleep(4000);
    const ackedDuringPause = writer.acked.length - ackedAtPause;
    process.kill(paused.pid, 'SIGCONT');
    await waitFor('200 writes after the pause', 30_000, async () => writer.acked.length >= ackedAtPause + 200);

    const stopped = cluster.process('node', (paused.id % 3) + 1);
    const termAtMs = Date.now();
    process.kill(stopped.pid, 'SIGTERM');
    await waitFor(
      `node ${stopped.id} to exit after SIGTERM`,
      20_000,
      async () => !isRunning(stopped.pid, stopped.binary),
    );
    const termExitMs = Date.now() - termAtMs;
    const ackedAtTerm = writer.acked.length;
    await waitFor('200 writes with a node stopped', 30_000, async () => writer.acked.length >= ackedAtTerm + 200);
    cluster.restart(stopped);
    await waitSettled(pd);
    await writer.stop();

    const lost = await findLost(client, writer.acked);
    const stale = await client.batchGet(
      writer.acked.slice(-100).map((a) => a.key),
      { stale: true },
    );
    console.log(
      `PD leader ${pdLeaderId} kill -9: a split was accepted ${pdFailoverMs} ms later; ` +
        `SIGSTOP of node ${paused.id} for 4 s: ${ackedDuringPause} writes acknowledged meanwhile; ` +
        `SIGTERM of node ${stopped.id}: exited in ${termExitMs} ms; ${writer.acked.length} writes acknowledged, ` +
        `failures ${writer.failureSummary}; ${lost.length} lost`,
    );
    expect(lost).toEqual([]);
    expect(stale.filter((s) => s === null)).toEqual([]);
  } finally {
    await writer.stop();
  }
}, 200_000);
