import { credentials } from '@grpc/grpc-js';
import { pdpb } from '@omnidict/proto';
import type { PdHandle } from '../src/pdServer.js';
import { startPd } from '../src/pdServer.js';
import { FakeNodes } from './fakeNodes.js';

/** A PD client that follows NOT_LEADER hints, trying every known address in turn. */
class PdClient {
  readonly #clients = new Map<string, pdpb.PDClient>();
  addresses: string[];

  constructor(addresses: string[]) {
    this.addresses = addresses;
  }

  #client(address: string): pdpb.PDClient {
    let c = this.#clients.get(address);
    if (!c) {
      c = new pdpb.PDClient(address, credentials.createInsecure());
      this.#clients.set(address, c);
    }
    return c;
  }

  /** Calls `method` until a leader answers; returns the response and the address that answered. */
  async call<Res extends { header?: pdpb.ResponseHeader | undefined }>(
    method: (c: pdpb.PDClient, cb: (err: Error | null, res: Res) => void) => void,
    deadlineMs = 15_000,
  ): Promise<{ res: Res; address: string; hops: number }> {
    const end = Date.now() + deadlineMs;
    let next = this.addresses[0]!;
    let hops = 0;
    let i = 0;
    while (Date.now() < end) {
      hops++;
      const address = next;
      const res = await new Promise<Res | undefined>((resolve) =>
        method(this.#client(address), (err, r) => resolve(err ? undefined : r)),
      );
      if (res && !res.header?.error) return { res, address, hops };
      const hint = res?.header?.error?.code === 'NOT_LEADER' ? res.header.leaderAddress : '';
      if (res?.header?.error && res.header.error.code !== 'NOT_LEADER') {
        throw new Error(`${res.header.error.code}: ${res.header.error.message}`);
      }
      if (hint && hint !== address) next = hint;
      else {
        i = (i + 1) % this.addresses.length;
        next = this.addresses[i]!;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error('no PD leader answered');
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('three PD replicas on 127.0.0.1', () => {
  const pds: PdHandle[] = [];
  const fake = new FakeNodes((nodeId) => `node${nodeId}:1`);
  let client: PdClient;

  beforeAll(async () => {
    const peers = new Map([1, 2, 3].map((id) => [id, '127.0.0.1:0']));
    for (const id of [1, 2, 3]) {
      pds.push(
        await startPd({
          id,
          listen: '127.0.0.1:0',
          peers,
          raftListen: '127.0.0.1:0',
          tickMs: 20,
          scheduleIntervalMs: 50,
          initialShards: 4,
          downTimeoutMs: 60_000,
          admin: fake,
        }),
      );
    }
    for (const a of pds) for (const b of pds) if (a !== b) a.setRaftPeer(b.id, b.raftAddress);
    client = new PdClient(pds.map((p) => p.address));
  });

  afterAll(async () => {
    client.close();
    for (const p of pds) await p.close();
  });

  test('bootstrap, NOT_LEADER redirects, a new leader after a crash keeps nodes and shards', async () => {
    const leader = await waitFor('a PD leader', () => pds.find((p) => p.isLeader()));
    // Followers answer with NOT_LEADER and the leader's address.
    const follower = pds.find((p) => p !== leader)!;
    const viaFollower = await new Promise<pdpb.ClusterStatus>((resolve, reject) =>
      new pdpb.PDClient(follower.address, credentials.createInsecure()).getClusterStatus({}, (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
    expect(viaFollower.header?.error?.code).toBe('NOT_LEADER');
    await waitFor('the hint', () => follower.leaderAddress() === leader.address);

    // Register three nodes: the leader bootstraps 4 shards over them.
    for (const nodeId of [1, 2, 3]) {
      const { res } = await client.call<pdpb.RegisterNodeResponse>((c, cb) =>
        c.registerNode({ nodeId, address: `node${nodeId}:1` }, cb),
      );
      expect(res.header?.error).toBeUndefined();
    }
    await waitFor('bootstrap', () => leader.state.bootstrapped && leader.state.shards.size === 4);
    const { res: map1 } = await client.call<pdpb.ShardMap>((c, cb) => c.getShardMap({}, cb));
    expect(map1.routes).toHaveLength(4);
    expect(Object.keys(map1.nodeAddresses)).toHaveLength(3);
    // The create operators drove the twin: every replica exists on its node.
    await waitFor('replicas created', () => fake.created.size === 12);
    const { res: ids1 } = await client.call<pdpb.AllocIdsResponse>((c, cb) => c.allocIds({ count: 5 }, cb));
    // Followers applied the same state.
    await waitFor('followers caught up', () => pds.every((p) => p.state.shards.size === 4));
    // Followers announce their client addresses: cluster status lists every member, not only leaders.
    await waitFor('every member announced', () => pds.every((p) => leader.state.pdAddresses.get(p.id) === p.address));
    const { res: status } = await client.call<pdpb.ClusterStatus>((c, cb) => c.getClusterStatus({}, cb));
    expect(status.pdMembers).toEqual(pds.map((p) => p.address));

    // Crash the leader.
    await leader.close({ abrupt: true });
    const survivors = pds.filter((p) => p !== leader);
    const second = await waitFor('a new PD leader', () => survivors.find((p) => p.isLeader()));
    client.addresses = [leader.address, ...survivors.map((p) => p.address)];
    const { res: nodes, address } = await client.call<pdpb.ListNodesResponse>((c, cb) => c.listNodes({}, cb));
    expect(address).toBe(second.address);
    expect(nodes.nodes.map((n) => [n.id, n.address])).toEqual([
      [1, 'node1:1'],
      [2, 'node2:1'],
      [3, 'node3:1'],
    ]);
    const { res: map2 } = await client.call<pdpb.ShardMap>((c, cb) => c.getShardMap({}, cb));
    expect(map2.routes.map((r) => r.shard)).toEqual(map1.routes.map((r) => r.shard));
    expect(map2.revision).toBeGreaterThan(map1.revision);
    // The allocator continues past everything the old leader handed out.
    const { res: ids2 } = await client.call<pdpb.AllocIdsResponse>((c, cb) => c.allocIds({ count: 1 }, cb));
    expect(ids2.first).toBeGreaterThanOrEqual(ids1.first + 5);
    pds.splice(pds.indexOf(leader), 1);
  });

  test('WatchShardMap: the full map, then a new full map with a higher revision on each change', async () => {
    const leader = await waitFor('a PD leader', () => pds.find((p) => p.isLeader()));
    const c = new pdpb.PDClient(leader.address, credentials.createInsecure());
    const stream = c.watchShardMap({});
    const maps: pdpb.ShardMap[] = [];
    stream.on('data', (m: pdpb.ShardMap) => maps.push(m));
    stream.on('error', () => {});
    await waitFor('first map', () => maps.length >= 1);
    expect(maps[0]!.routes).toHaveLength(4);
    await new Promise<pdpb.RegisterNodeResponse>((resolve, reject) =>
      c.registerNode({ nodeId: 4, address: 'node4:1' }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    await waitFor('a second map', () => maps.find((m) => m.nodeAddresses[4] === 'node4:1'));
    const last = maps.at(-1)!;
    expect(last.revision).toBeGreaterThan(maps[0]!.revision);
    stream.cancel();
    c.close();
  });
});
