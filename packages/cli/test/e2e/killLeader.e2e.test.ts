// kill -9 of the storage node leading shards in the middle of a write load: writes to those shards
// resume once a new leader is elected, and after the node is restarted from its cluster.json
// command line every acknowledged write is read back. The local cluster gathers leaders on one node
// (`--leader-placement gather`): node 1 leads every shard from bootstrap, and after the kill and
// restart PD gathers the leaders on one node again.
import type { OmniClient, PdClient } from '@omnidict/client';
import { pdpb } from '@omnidict/proto';
import { E2eCluster, findLost, shardOf, sleep, Writer, waitFor, waitSettled } from './harness.js';

// The root jest config runs packages as projects, where a project's testTimeout does not apply.
jest.setTimeout(120_000);

let cluster: E2eCluster;
let client: OmniClient;
let pd: PdClient;

beforeAll(async () => {
  cluster = await E2eCluster.start('kill-leader', ['--shards', '4']);
  client = cluster.client();
  pd = cluster.pd();
}, 300_000);

afterAll(async () => {
  client?.close();
  pd?.close();
  await cluster?.stop();
}, 120_000);

test('kill -9 of a leader node mid-load: writes resume, no acknowledged write is lost', async () => {
  const writer = new Writer(client, 'kl', 6);
  writer.start();
  try {
    await waitFor('200 acknowledged writes before the kill', 30_000, async () => writer.acked.length >= 200);
    const routes = await waitSettled(pd);
    // The node leading the most shards: node 1, the bootstrap's first leader of every shard.
    const led = new Map<number, number[]>();
    for (const r of routes) led.set(r.leaderNodeId, [...(led.get(r.leaderNodeId) ?? []), r.shard!.id]);
    const [victimId, affected] = [...led].sort((a, b) => b[1].length - a[1].length)[0]!;
    expect([victimId, affected.length]).toEqual([1, 4]);
    const victim = cluster.process('node', victimId);

    const killedAtMs = Date.now();
    await cluster.kill9(victim);
    const ackedAtKill = writer.acked.length;

    // Writes resume: every shard the victim led acknowledges a write issued after the kill.
    const resumeMs = await waitFor(
      `writes to shards ${affected.join(', ')} to resume after the kill (failures: ${writer.failureSummary})`,
      30_000,
      async () => {
        const firstAck = new Map<number, number>();
        for (const a of writer.acked) {
          if (a.issuedMs < killedAtMs) continue;
          const shard = shardOf(routes, a.key);
          if (affected.includes(shard) && !firstAck.has(shard)) firstAck.set(shard, a.ackedMs - killedAtMs);
        }
        return firstAck.size === affected.length ? Math.max(...firstAck.values()) : undefined;
      },
      50,
    );
    let longestGapMs = 0;
    const after = writer.acked.filter((a) => a.ackedMs >= killedAtMs).map((a) => a.ackedMs);
    after.reduce((prev, t) => {
      longestGapMs = Math.max(longestGapMs, t - prev);
      return t;
    }, killedAtMs);
    const failuresAtResume = writer.failureSummary;

    await sleep(1000);
    const restarted = cluster.restart(victim);
    await waitFor(`node ${victimId} to be up again in the PD`, 30_000, async () => {
      const node = (await pd.listNodes()).find((n) => n.id === victimId);
      return node?.state === pdpb.NodeState.NODE_STATE_UP && node.lastHeartbeatMs > killedAtMs ? node : undefined;
    });
    const ackedAtRestart = writer.acked.length;
    await waitFor('writes after the restart', 30_000, async () => writer.acked.length >= ackedAtRestart + 100);
    await writer.stop();

    // The leaders elected after the kill end up on one node again (PD transfers them to the node
    // already leading the most: usually a survivor, or node 1 if its restarted replicas won elections
    // before PD saw it gone).
    const regathered = await waitFor('every shard led by one node again', 60_000, async () => {
      const now = await waitSettled(pd);
      const leaders = new Set(now.map((r) => r.leaderNodeId));
      return leaders.size === 1 ? [...leaders][0] : undefined;
    });

    const lost = await findLost(client, writer.acked);
    console.log(
      `kill -9 of node ${victimId} (leader of shards ${affected.join(', ')}) mid-load: ` +
        `writes to those shards resumed ${resumeMs} ms after the kill; longest gap between acknowledgements ` +
        `${longestGapMs} ms; failures until then: ${failuresAtResume}; ${ackedAtKill} writes acknowledged before ` +
        `the kill, ${writer.acked.length} in all (restarted as pid ${restarted.pid}); leaders gathered on node ` +
        `${regathered} afterwards; ${lost.length} lost`,
    );
    expect(lost).toEqual([]);
  } finally {
    await writer.stop();
  }
}, 180_000);
