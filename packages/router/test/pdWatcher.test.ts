import type { pdpb } from '@omnidict/proto';
import { PdWatcher, silentLogger, startRouter } from '../src/index.js';
import { key, rpc, sleep } from './helpers.js';
import { ClusterTwin, PdTwin } from './twins/index.js';

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('PdWatcher', () => {
  let cluster: ClusterTwin;
  afterEach(() => cluster.close());

  test('finds the leader through a NOT_LEADER hint and past an unreachable replica', async () => {
    cluster = await ClusterTwin.start({ pds: 3 });
    const [leader, follower, dead] = cluster.pds as [PdTwin, PdTwin, PdTwin];
    dead.close();
    const maps: pdpb.ShardMap[] = [];
    const w = new PdWatcher({
      // The dead one first, then the follower (which points at the leader).
      addresses: [dead.address, follower.address, leader.address],
      logger: silentLogger,
      onMap: (m) => maps.push(m),
      minBackoffMs: 10,
    });
    w.start();
    await w.waitForMap(5000);
    expect(w.leaderAddress).toBe(leader.address);
    expect(maps.at(-1)?.revision).toBe(leader.revision);

    // Changes arrive on the watch; refresh() also works and keeps the newest revision.
    cluster.split(1, 100);
    cluster.publish();
    await until(() => maps.at(-1)?.revision === leader.revision);
    await w.refresh();
    expect(w.latestRevision).toBe(leader.revision);
    expect(maps.at(-1)?.routes).toHaveLength(5);
    w.close();
  });

  test('reopens a broken watch and follows a leader change', async () => {
    cluster = await ClusterTwin.start({ pds: 2 });
    const [a, b] = cluster.pds as [PdTwin, PdTwin];
    const revisions: number[] = [];
    const w = new PdWatcher({
      addresses: [a.address, b.address],
      logger: silentLogger,
      onMap: (m) => revisions.push(m.revision),
      minBackoffMs: 10,
    });
    w.start();
    await w.waitForMap(5000);
    // Leadership moves to b; a becomes a follower and its watch breaks.
    a.leader = false;
    a.leaderAddress = b.address;
    b.leader = true;
    a.breakWatches();
    cluster.publish();
    await until(() => revisions.at(-1) === b.revision && w.leaderAddress === b.address);
    expect(b.watchCalls).toBeGreaterThan(0);
    w.close();
  });

  test('refresh() fails with UNAVAILABLE when no PD answers', async () => {
    cluster = await ClusterTwin.start({ pds: 1 });
    const gone = new PdTwin();
    await gone.start();
    gone.close();
    const w = new PdWatcher({ addresses: [gone.address], logger: silentLogger, onMap: () => {}, rpcTimeoutMs: 200 });
    await expect(w.refresh()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    w.close();
  });
});

describe('several routers', () => {
  test('serve one cluster at once and see each other’s writes', async () => {
    const cluster = await ClusterTwin.start({ shards: 8 });
    const r1 = await startRouter({ listen: '127.0.0.1:0', pdAddresses: cluster.pdAddresses, waitForMapMs: 5000 });
    const r2 = await startRouter({ listen: '127.0.0.1:0', pdAddresses: cluster.pdAddresses, waitForMapMs: 5000 });
    const { kv } = await import('@omnidict/proto');
    const { credentials } = await import('@grpc/grpc-js');
    const c1 = new kv.KVClient(r1.address, credentials.createInsecure());
    const c2 = new kv.KVClient(r2.address, credentials.createInsecure());
    try {
      await rpc(c1, 'put', { key: key('shared'), value: key('from-r1'), ttlMs: 0 });
      const got = await rpc<{ found: boolean; kv?: { value: Buffer } }>(c2, 'get', {
        key: key('shared'),
        stale: false,
      });
      expect(got.kv?.value.toString()).toBe('from-r1');
      // A split learned by r1 from a node does not confuse r2, which learns it itself.
      const s = cluster.shardAt(0);
      cluster.split(s.desc.id, Math.floor(s.desc.end / 2));
      for (let i = 0; i < 30; i++) {
        await rpc(i % 2 ? c1 : c2, 'put', { key: key(`m${i}`), value: key('v'), ttlMs: 0 });
      }
      expect(cluster.data.size).toBe(31);
    } finally {
      c1.close();
      c2.close();
      await r1.close(100);
      await r2.close(100);
      cluster.close();
    }
  });

  test('a router started before PD is reachable serves once the map arrives', async () => {
    const cluster = await ClusterTwin.start({});
    const r = await startRouter({ listen: '127.0.0.1:0', pdAddresses: ['127.0.0.1:1', ...cluster.pdAddresses] });
    const { kv } = await import('@omnidict/proto');
    const { credentials } = await import('@grpc/grpc-js');
    const c = new kv.KVClient(r.address, credentials.createInsecure());
    try {
      await rpc(c, 'put', { key: key('early'), value: key('v'), ttlMs: 0 }, 5000);
      expect(cluster.data.size).toBe(1);
    } finally {
      c.close();
      await r.close(100);
      cluster.close();
    }
  });
});
