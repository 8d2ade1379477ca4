import { OmniError, ringPosition } from '@omnidict/proto';
import { type EmbeddedRouter, embedRouter } from '../src/index.js';
import { key } from './helpers.js';
import { ClusterTwin } from './twins/index.js';

// The embedded router is the router in the application's process: the same routing, retries and
// validation, with requests going straight to the nodes' leaders.
let cluster: ClusterTwin;
let embedded: EmbeddedRouter;
beforeEach(async () => {
  cluster = await ClusterTwin.start({ nodes: 3, shards: 4 });
  embedded = embedRouter({ pdAddresses: cluster.pdAddresses, maxValueBytes: 1024 });
});
afterEach(() => {
  embedded.close();
  cluster.close();
});

describe('embedRouter against cluster twins', () => {
  const deadline = () => Date.now() + 5000;

  test('requests made before the first shard map wait for it, then reach each shard leader', async () => {
    const puts = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        embedded.kv.put({ key: key(`e${i}`), value: key(`v${i}`), ttlMs: 0 }, deadline()),
      ),
    );
    expect(puts.every((p) => p.modIndex > 0)).toBe(true);
    const seen = cluster.seen.filter((s) => s.op === 'put');
    expect(seen).toHaveLength(20);
    for (const s of seen) expect(s.nodeId).toBe(cluster.shardAt(ringPosition(Buffer.from(s.key!))).leaderNodeId);
    const got = await embedded.kv.get({ key: key('e7'), stale: false }, deadline());
    expect(got.kv?.value.toString()).toBe('v7');
  });

  test('NOT_LEADER is followed to the hinted leader, as in the router process', async () => {
    const k = key('moves');
    await embedded.kv.put({ key: k, value: key('1'), ttlMs: 0 }, deadline());
    const shard = cluster.shardAt(ringPosition(k));
    const newLeader = (shard.leaderNodeId % 3) + 1;
    cluster.setLeader(shard.desc.id, newLeader); // PD is not told
    await embedded.kv.put({ key: k, value: key('2'), ttlMs: 0 }, deadline());
    expect(
      cluster.seen
        .filter((s) => s.key === 'moves')
        .map((s) => s.nodeId)
        .at(-1),
    ).toBe(newLeader);
  });

  test('bad input fails with an OmniError before anything is sent', async () => {
    const before = cluster.seen.length;
    const tooBig = await embedded.kv
      .put({ key: key('big'), value: Buffer.alloc(1025), ttlMs: 0 }, deadline())
      .catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(OmniError);
    expect((tooBig as OmniError).code).toBe('TOO_LARGE');
    const empty = await embedded.kv.get({ key: Buffer.alloc(0), stale: false }, deadline()).catch((e: unknown) => e);
    expect((empty as OmniError).code).toBe('INVALID_ARGUMENT');
    expect(cluster.seen.length).toBe(before);
  });
});

describe('embedRouter(...).client(): the SDK over the embedded router', () => {
  test('the OmniClient API works end to end, with OmniErrors as from a router process', async () => {
    const client = embedded.client({ defaultTimeoutMs: 5000 });
    const put = await client.put('sdk:a', 'one');
    expect(put.modIndex).toBeGreaterThan(0);
    expect((await client.get('sdk:a'))?.value.toString()).toBe('one');
    const cas = await client.cas('sdk:a', { expectedValue: 'one' }, 'two');
    expect(cas.swapped).toBe(true);
    expect((await client.get('sdk:a'))?.value.toString()).toBe('two');
    expect(await client.get('sdk:missing')).toBeNull();
    const tooBig = await client.put('sdk:big', Buffer.alloc(1025)).catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(OmniError);
    expect((tooBig as OmniError).code).toBe('TOO_LARGE');
    const pipeline = client.pipeline();
    const [p1, p2] = await Promise.all([pipeline.put('sdk:p', 'piped'), pipeline.get('sdk:a')]);
    expect(p1.modIndex).toBeGreaterThan(0);
    expect(p2?.value.toString()).toBe('two');
    const pipedErr = await pipeline.put('', 'x').catch((e: unknown) => e);
    expect((pipedErr as OmniError).code).toBe('INVALID_ARGUMENT');
    client.close();
    // Closing the client leaves the embedded router running for other clients.
    expect((await embedded.client().get('sdk:a'))?.value.toString()).toBe('two');
  });
});
