import { common, type nodepb, type pdpb, ringPosition } from '@omnidict/proto';
import { MiniRouter, PdCluster, waitFor } from './pdCluster.js';
import { NodeKvClient, sleep } from './testCluster.js';

const b = (s: string) => Buffer.from(s);
const VOTER = common.ReplicaRole.REPLICA_ROLE_VOTER;

/** The shard map once every shard has a leader and `rf` voters on up nodes (and no operator runs). */
async function settledMap(c: PdCluster, shards: number, timeoutMs = 30_000): Promise<pdpb.ShardMap> {
  return waitFor(
    `${shards} shards, each with 3 voters and a leader`,
    async () => {
      const map = await c.shardMap();
      const pd = c.leaderPd();
      if (pd === undefined || pd.state.activeOperators().length > 0) return undefined;
      if (map.routes.length !== shards) return undefined;
      const ok = map.routes.every(
        (r) =>
          r.leaderNodeId !== 0 &&
          r.shard !== undefined &&
          r.shard.replicas.length === 3 &&
          r.shard.replicas.every((x) => x.role === VOTER && pd.state.nodes.get(x.nodeId)?.state === 'up'),
      );
      return ok ? map : undefined;
    },
    timeoutMs,
    () => c.describe(),
  );
}

async function put(router: MiniRouter, key: string, value: string): Promise<nodepb.NodeResponse> {
  return router.execute(b(key), { $case: 'put', value: { key: b(key), value: b(value), ttlMs: 0 } });
}

async function get(router: MiniRouter, key: string): Promise<string | undefined> {
  const r = await router.execute(b(key), { $case: 'get', value: { key: b(key), stale: false } });
  if (r.error) throw new Error(`get ${key}: ${r.error.code} ${r.error.message}`);
  if (r.result?.$case !== 'get') throw new Error(`get ${key}: unexpected ${r.result?.$case}`);
  return r.result.value.found ? r.result.value.kv?.value.toString() : undefined;
}

/** Writes unique keys in a loop until stopped; records every acknowledged write. */
const writers: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  for (const w of writers.splice(0)) await w.stop();
});

function startWriter(router: MiniRouter, prefix: string) {
  const acked = new Map<string, string>();
  const failures: string[] = [];
  let stop = false;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      const key = `${prefix}-${i}`;
      const value = `v${i}`;
      try {
        const r = await put(router, key, value);
        if (r.error) failures.push(`${key}: ${r.error.code} ${r.error.message}`);
        else acked.set(key, value);
      } catch (err) {
        failures.push(`${key}: ${String(err)}`);
      }
    }
  })();
  const writer = {
    acked,
    failures,
    async stop() {
      stop = true;
      await done;
    },
  };
  writers.push(writer);
  return writer;
}

async function expectAllReadable(router: MiniRouter, acked: ReadonlyMap<string, string>): Promise<void> {
  const missing: string[] = [];
  for (const [key, value] of acked) {
    const got = await get(router, key);
    if (got !== value) missing.push(`${key}=${String(got)} (want ${value})`);
  }
  expect(missing).toEqual([]);
}

/** With DBG=1, prints PD's view every 2 s (nodes, active operators, shards) while a test runs. */
function debugDump(c: PdCluster): () => void {
  if (!process.env.DBG) return () => {};
  const t = setInterval(() => {
    const pd = c.leaderPd();
    if (!pd) return;
    const ops = [...pd.state.operators.values()].filter(
      (o) => o.state === 'running' || o.state === 'pending' || o.state === 'failed',
    );
    const shards = [...pd.state.shards.values()].map((s) => {
      const leaders = [...c.nodes]
        .filter(([, n]) => n.handle.store.host.hasGroup(s.id) && n.handle.store.host.status(s.id).role === 'leader')
        .map(([id]) => id);
      return `${s.id}@${s.epoch?.confVer}:[${s.replicas.map((r) => `${r.replicaId}/n${r.nodeId}${r.role ? 'L' : ''}`).join(',')}] lead=${leaders}`;
    });
    process.stdout.write(
      `${JSON.stringify({ nodes: [...pd.state.nodes.values()].map((n) => [n.id, n.state, replicasOn(c, n.id)]), ops: ops.map((o) => [o.id, o.kind, o.shardId, o.state, o.step, o.reason]), shards })}\n`,
    );
  }, 2000);
  return () => clearInterval(t);
}

function replicasOn(c: PdCluster, nodeId: number): number {
  const pd = c.leaderPd();
  if (pd === undefined) return 0;
  let n = 0;
  for (const s of pd.state.shards.values()) if (s.replicas.some((r) => r.nodeId === nodeId)) n++;
  return n;
}

describe('PD + storage nodes: bootstrap and routing', () => {
  let c: PdCluster;
  let router: MiniRouter;
  beforeAll(async () => {
    c = await PdCluster.start(3);
    router = new MiniRouter(c);
  });
  afterAll(async () => {
    router.close();
    await c.close();
  });

  test('8 shards × 3 replicas bootstrap; the map serves leaders and SERVICE addresses; KV works', async () => {
    const map = await settledMap(c, 8);
    // Routers get service addresses, never Raft ones.
    const service: Record<number, string> = {};
    for (const [id, n] of c.nodes) service[id] = n.handle.address;
    expect(map.nodeAddresses).toEqual(service);
    for (const n of c.nodes.values()) expect(n.handle.address).not.toBe(n.handle.raftAddress);
    // Ranges tile the ring; every replica set spans 3 distinct nodes.
    const sorted = map.routes.map((r) => r.shard!).sort((x, y) => x.start - y.start);
    expect(sorted[0]?.start).toBe(0);
    expect(sorted[sorted.length - 1]?.end).toBe(2 ** 32);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]?.start).toBe(sorted[i - 1]?.end);
    for (const s of sorted) expect(new Set(s.replicas.map((r) => r.nodeId)).size).toBe(3);
    // PD keeps both addresses of each node.
    const nodes = await c.pdClient.call<pdpb.ListNodesResponse>((cl, cb) => cl.listNodes({}, cb));
    for (const n of nodes.nodes) {
      expect(n.address).toBe(c.nodes.get(n.id)?.handle.address);
      expect(n.raftAddress).toBe(c.nodes.get(n.id)?.handle.raftAddress);
    }
    // Every route's leader is what the node itself says.
    for (const r of map.routes) {
      const host = c.nodes.get(r.leaderNodeId)?.handle.store.host;
      expect(host?.status(r.shard!.id).leaderNodeId).toBe(r.leaderNodeId);
    }

    // put/get through a route, straight at the leader's service address.
    const route = map.routes[3]!;
    const shard = route.shard!;
    const kv = new NodeKvClient(map.nodeAddresses[route.leaderNodeId]!);
    const key = findKeyIn(shard);
    const header = { shardId: shard.id, epoch: shard.epoch, staleRead: false, timeoutMs: 5000 };
    const w = await kv.one({ header, op: { $case: 'put', value: { key: b(key), value: b('hello'), ttlMs: 0 } } });
    expect(w.error).toBeUndefined();
    const r = await kv.one({ header, op: { $case: 'get', value: { key: b(key), stale: false } } });
    expect(r.result).toMatchObject({ $case: 'get', value: { found: true, kv: { value: b('hello') } } });

    // A follower answers NOT_LEADER with the leader's node id and SERVICE address.
    const followerId = shard.replicas.find((x) => x.nodeId !== route.leaderNodeId)!.nodeId;
    const fkv = new NodeKvClient(map.nodeAddresses[followerId]!);
    const nl = await fkv.one({ header, op: { $case: 'put', value: { key: b(key), value: b('x'), ttlMs: 0 } } });
    expect(nl.error?.code).toBe('NOT_LEADER');
    expect(nl.error?.leaderNodeId).toBe(route.leaderNodeId);
    expect(nl.error?.leaderAddress).toBe(map.nodeAddresses[route.leaderNodeId]);
    kv.close();
    fkv.close();

    // Routed writes to every shard.
    for (let i = 0; i < 50; i++) expect((await put(router, `k${i}`, `v${i}`)).error).toBeUndefined();
    for (let i = 0; i < 50; i++) expect(await get(router, `k${i}`)).toBe(`v${i}`);
  }, 60_000);
});

describe('PD + storage nodes: a node joins and balance moves replicas onto it under writes', () => {
  let c: PdCluster;
  let router: MiniRouter;
  beforeAll(async () => {
    c = await PdCluster.start(3);
    router = new MiniRouter(c);
  });
  afterAll(async () => {
    router.close();
    await c.close();
  });

  test('every acknowledged write is readable after the moves', async () => {
    await settledMap(c, 8);
    const stopDump = debugDump(c);
    const writer = startWriter(router, 'join');
    await sleep(500);
    const n4 = await c.startNode(4);
    await waitFor(
      'node 4 to get replicas',
      () => replicasOn(c, 4) >= 5 || undefined,
      90_000,
      () => c.describe(),
    );
    await settledMap(c, 8, 60_000);
    await sleep(500);
    await writer.stop();
    expect(writer.acked.size).toBeGreaterThan(5);
    expect(writer.failures).toEqual([]);
    const pd = c.leaderPd()!;
    const failed = [...pd.state.operators.values()].filter((o) => o.state === 'failed');
    expect(failed.map((o) => `${o.kind} ${o.shardId}: ${o.reason}`)).toEqual([]);
    // Node 4 really serves its replicas (its Raft groups exist and hold data).
    const hosted = [...pd.state.shards.values()].filter((s) => s.replicas.some((r) => r.nodeId === 4));
    for (const s of hosted) expect(n4.store.host.hasGroup(s.id)).toBe(true);
    await expectAllReadable(router, writer.acked);
    stopDump();
  }, 150_000);
});

describe('PD + storage nodes: a crashed node is marked down and its replicas are repaired', () => {
  let c: PdCluster;
  let router: MiniRouter;
  beforeAll(async () => {
    c = await PdCluster.start(4, { downTimeoutMs: 3000, replaceDownAfterMs: 1000 });
    router = new MiniRouter(c);
  });
  afterAll(async () => {
    router.close();
    await c.close();
  });

  test('acknowledged writes survive; no shard keeps a replica on the dead node', async () => {
    // Each phase's duration is printed, so a slow run in CI shows where the time went.
    const phases: string[] = [];
    let t = Date.now();
    const phase = (name: string) => {
      phases.push(`${name} ${Date.now() - t} ms`);
      t = Date.now();
    };
    try {
      await settledMap(c, 8, 60_000);
      phase('settled');
      const stopDump = debugDump(c);
      const writer = startWriter(router, 'crash');
      await sleep(500);
      const victim = [1, 2, 3, 4].sort((x, y) => replicasOn(c, y) - replicasOn(c, x))[0]!;
      expect(replicasOn(c, victim)).toBeGreaterThan(0);
      await c.stopNode(victim, { abrupt: true });
      await waitFor(
        'the node marked down',
        () => c.leaderPd()?.state.nodes.get(victim)?.state === 'down',
        20_000,
        () => c.describe(),
      );
      phase(`node ${victim} (${replicasOn(c, victim)} replicas) down`);
      const ackedAtDown = writer.acked.size;
      await waitFor(
        'replicas repaired',
        () => replicasOn(c, victim) === 0 || undefined,
        90_000,
        () => c.describe(),
      );
      phase('repaired');
      await settledMap(c, 8, 60_000);
      phase('settled again');
      // Writes go on after the crash (not only before it).
      await waitFor('writes after the repair', () => writer.acked.size > ackedAtDown + 5 || undefined, 30_000);
      phase('writes resumed');
      await writer.stop();
      phase('writer stopped');
      expect(writer.failures).toEqual([]);
      await expectAllReadable(router, writer.acked);
      const status = await c.pdClient.call<pdpb.ClusterStatus>((cl, cb) => cl.getClusterStatus({}, cb));
      expect(status).toMatchObject({ nodesUp: 3, shardCount: 8, shardsHealthy: 8 });
      stopDump();
    } finally {
      console.log(`crash and repair: ${phases.join(', ')}`);
    }
  }, 280_000);
});

/** A key whose ring position falls in the shard's range. */
function findKeyIn(shard: common.ShardDescriptor): string {
  for (let i = 0; ; i++) {
    const k = `key-${i}`;
    const p = ringPosition(k);
    if (p >= shard.start && p < shard.end) return k;
  }
}
