import { status } from '@grpc/grpc-js';
import { type kv, ringPosition } from '@omnidict/proto';
import { decodeCursor } from '../src/index.js';
import { failure, type Harness, healthClient, key, rpc, sleep, startHarness } from './helpers.js';

describe('router against cluster twins', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ nodes: 3, shards: 4 }, { maxValueBytes: 1024, metricsPort: 0 });
  });
  afterEach(async () => {
    await h.close();
  });

  test('routes every key to the leader of the shard owning its ring position', async () => {
    for (let i = 0; i < 40; i++) {
      await rpc<kv.PutResponse>(h.client, 'put', { key: key(`k${i}`), value: key(`v${i}`), ttlMs: 0 });
    }
    const puts = h.cluster.seen.filter((s) => s.op === 'put');
    expect(puts).toHaveLength(40);
    for (const s of puts) {
      const shard = h.cluster.shardAt(ringPosition(Buffer.from(s.key!)));
      expect(s.shardId).toBe(shard.desc.id);
      expect(s.nodeId).toBe(shard.leaderNodeId);
    }
    expect(new Set(puts.map((s) => s.shardId)).size).toBe(4);
    const got = await rpc<kv.GetResponse>(h.client, 'get', { key: key('k7'), stale: false });
    expect(got.found).toBe(true);
    expect(got.kv?.value.toString()).toBe('v7');
  });

  test('concurrent requests share node stream batches', async () => {
    for (const n of h.cluster.nodes) n.resetCounters();
    const keys = Array.from({ length: 300 }, (_, i) => key(`batch-${i}`));
    const batch = await rpc<kv.BatchGetResponse>(h.client, 'batchGet', { keys, stale: false });
    expect(batch.results).toHaveLength(300);
    const requests = h.cluster.nodes.reduce((a, n) => a + n.requests, 0);
    const batches = h.cluster.nodes.reduce((a, n) => a + n.batches, 0);
    expect(requests).toBe(300);
    // One BatchGet issues every key in one turn: at most one batch per node.
    expect(batches).toBeLessThanOrEqual(h.cluster.nodes.length);

    for (const n of h.cluster.nodes) n.resetCounters();
    await Promise.all(keys.map((k) => rpc(h.client, 'put', { key: k, value: k, ttlMs: 0 })));
    const requests2 = h.cluster.nodes.reduce((a, n) => a + n.requests, 0);
    const batches2 = h.cluster.nodes.reduce((a, n) => a + n.batches, 0);
    expect(requests2).toBe(300);
    expect(batches2).toBeLessThan(300 / 3);
  });

  test('NOT_LEADER is retried at the hinted leader and the hint is cached', async () => {
    const k = key('leader-moves');
    const shard = h.cluster.shardAt(ringPosition(k));
    const oldLeader = shard.leaderNodeId;
    const newLeader = (oldLeader % 3) + 1;
    h.cluster.setLeader(shard.desc.id, newLeader); // PD is not told
    await rpc(h.client, 'put', { key: k, value: key('x'), ttlMs: 0 });
    const seen = h.cluster.seen.filter((s) => s.key === 'leader-moves');
    expect(seen).toHaveLength(2);
    expect(seen[0]!.nodeId).toBe(oldLeader);
    expect(seen[1]!.nodeId).toBe(newLeader);
    expect(h.router.router.table.byShardId(shard.desc.id)?.leaderNodeId).toBe(newLeader);
    await rpc(h.client, 'get', { key: k, stale: false });
    expect(h.cluster.seen.filter((s) => s.key === 'leader-moves').at(-1)!.nodeId).toBe(newLeader);
  });

  test('STALE_EPOCH after a split updates the table and lands on the new shard', async () => {
    const first = h.cluster.shards[0]!.desc;
    const mid = Math.floor((first.start + first.end) / 2);
    // A key in the right half of shard 1.
    let i = 0;
    while (ringPosition(`split-${i}`) < mid || ringPosition(`split-${i}`) >= first.end) i++;
    const k = key(`split-${i}`);
    const { right } = h.cluster.split(first.id, mid); // PD is not told
    await rpc(h.client, 'put', { key: k, value: key('v'), ttlMs: 0 });
    const seen = h.cluster.seen.filter((s) => s.key === k.toString());
    expect(seen.map((s) => s.shardId)).toEqual([first.id, right.id]);
    expect(h.router.router.table.locate(ringPosition(k))?.shard.id).toBe(right.id);
    expect(h.router.router.table.locate(first.start)?.shard.end).toBe(mid);
    // A lagging PD map does not undo what the node said.
    h.cluster.publish();
    await sleep(50);
    expect(h.router.router.table.locate(ringPosition(k))?.shard.id).toBe(right.id);
  });

  test('UNAVAILABLE is retried within the deadline, then the router answers TIMEOUT', async () => {
    const k = key('flaky');
    const leader = h.cluster.node(h.cluster.shardAt(ringPosition(k)).leaderNodeId)!;
    leader.failNext('UNAVAILABLE', 3);
    const put = await rpc<kv.PutResponse>(h.client, 'put', { key: k, value: key('v'), ttlMs: 0 });
    expect(put.modIndex).toBeGreaterThan(0);
    expect(h.cluster.seen.filter((s) => s.key === 'flaky')).toHaveLength(4);

    leader.failNext('UNAVAILABLE', 1e9);
    const f = await failure(rpc(h.client, 'get', { key: k, stale: false }, 400));
    expect(f.grpcCode).toBe(status.DEADLINE_EXCEEDED);
    expect(f.omni.code).toBe('TIMEOUT');
    expect(f.message).toContain('UNAVAILABLE');
    expect(h.cluster.seen.filter((s) => s.key === 'flaky').length).toBeGreaterThan(5);
  });

  test('a write in flight when the node dies is not retried: outcome unknown', async () => {
    const k = key('lost-write');
    const leader = h.cluster.node(h.cluster.shardAt(ringPosition(k)).leaderNodeId)!;
    await rpc(h.client, 'get', { key: k, stale: false }); // open the stream
    let release!: () => void;
    leader.hold = new Promise((r) => {
      release = r;
    });
    const pending = failure(rpc(h.client, 'put', { key: k, value: key('v'), ttlMs: 0 }, 3000));
    await sleep(100);
    leader.kill();
    release();
    const f = await pending;
    expect(f.omni.code).toBe('UNAVAILABLE');
    expect(f.message).toContain('may or may not have been applied');
    expect(h.cluster.seen.filter((s) => s.key === 'lost-write' && s.op === 'put')).toHaveLength(1);
  });

  test('a write that timed out on a paused leader is not retried, and the next write finds the new leader', async () => {
    const k = key('paused-leader');
    const shard = h.cluster.shardAt(ringPosition(k));
    const paused = h.cluster.node(shard.leaderNodeId)!;
    await rpc(h.client, 'get', { key: k, stale: false }); // open the stream
    let release!: () => void;
    paused.hold = new Promise((r) => {
      release = r;
    });
    try {
      // The shard elects another leader while the old one is paused; PD is not told.
      const newLeader = (shard.leaderNodeId % 3) + 1;
      h.cluster.setLeader(shard.desc.id, newLeader);
      const f = await failure(rpc(h.client, 'put', { key: k, value: key('v1'), ttlMs: 0 }, 300));
      expect(f.omni.code).toBe('TIMEOUT');
      expect(f.message).toContain('may or may not have been applied');
      // Without moving off the paused node this write would time out the same way.
      await rpc(h.client, 'put', { key: k, value: key('v2'), ttlMs: 0 }, 2000);
      const seen = h.cluster.seen.filter((s) => s.key === 'paused-leader' && s.op === 'put');
      expect(seen.at(-1)!.nodeId).toBe(newLeader);
      expect(h.router.router.table.byShardId(shard.desc.id)?.leaderNodeId).toBe(newLeader);
    } finally {
      paused.hold = undefined;
      release();
    }
  });

  test('a write to a node that is down is retried (never sent) and lands once it is back', async () => {
    const k = key('comes-back');
    const leader = h.cluster.node(h.cluster.shardAt(ringPosition(k)).leaderNodeId)!;
    const port = Number(leader.address.split(':')[1]);
    leader.kill();
    const put = rpc<kv.PutResponse>(h.client, 'put', { key: k, value: key('v'), ttlMs: 0 }, 5000);
    await sleep(300);
    await leader.start(port);
    expect((await put).modIndex).toBeGreaterThan(0);
    expect(h.cluster.seen.filter((s) => s.key === 'comes-back' && s.nodeId === leader.nodeId).length).toBe(1);
    expect(h.cluster.data.has(k.toString('hex'))).toBe(true);
  });

  test('scan pages across all shards; a split mid-scan loses and duplicates nothing', async () => {
    const all = new Set<string>();
    for (let i = 0; i < 250; i++) {
      h.cluster.put(`scan-${i}`, `v${i}`);
      all.add(`scan-${i}`);
    }
    h.cluster.put('other', 'x');
    const got: string[] = [];
    const positions: number[] = [];
    let cursor: Buffer = Buffer.alloc(0);
    let pages = 0;
    do {
      const page = await rpc<kv.ScanResponse>(h.client, 'scan', {
        pattern: 'scan-*',
        cursor,
        limit: 17,
        keysOnly: true,
        stale: false,
      });
      pages++;
      for (const e of page.kvs) {
        got.push(e.key.toString());
        positions.push(ringPosition(e.key));
        expect(e.value.length).toBe(0);
      }
      cursor = page.nextCursor;
      if (pages === 3) {
        // Split the shard the cursor points into, between the cursor and the shard's end.
        const at = decodeCursor(cursor).pos;
        const s = h.cluster.shardAt(at);
        h.cluster.split(s.desc.id, Math.floor((at + s.desc.end) / 2));
      }
      if (pages === 6) {
        // And one ahead of the scan, published through PD this time.
        const last = h.cluster.shards.at(-1)!.desc;
        h.cluster.split(last.id, Math.floor((last.start + last.end) / 2));
        h.cluster.publish();
      }
    } while (cursor.length > 0);
    expect(got).toHaveLength(250);
    expect(new Set(got)).toEqual(all);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(pages).toBe(Math.ceil(250 / 17));
  });

  test('flush deletes every key on every shard, including a split one', async () => {
    for (let i = 0; i < 100; i++) h.cluster.put(`f${i}`, 'v');
    const s = h.cluster.shards[1]!.desc;
    h.cluster.split(s.id, Math.floor((s.start + s.end) / 2));
    const res = await rpc<kv.FlushResponse>(h.client, 'flush', {});
    expect(res.deleted).toBe(100);
    expect(h.cluster.data.size).toBe(0);
  });

  test('validation errors carry gRPC statuses and reach no node', async () => {
    const before = h.cluster.seen.length;
    const empty = await failure(rpc(h.client, 'put', { key: Buffer.alloc(0), value: key('v'), ttlMs: 0 }));
    expect(empty.grpcCode).toBe(status.INVALID_ARGUMENT);
    expect(empty.omni.code).toBe('INVALID_ARGUMENT');
    const bigKey = await failure(rpc(h.client, 'get', { key: Buffer.alloc(4097, 1), stale: false }));
    expect(bigKey.grpcCode).toBe(status.INVALID_ARGUMENT);
    expect(bigKey.omni.code).toBe('TOO_LARGE');
    const bigValue = await failure(rpc(h.client, 'put', { key: key('k'), value: Buffer.alloc(1025), ttlMs: 0 }));
    expect(bigValue.omni.code).toBe('TOO_LARGE');
    const batch = await failure(
      rpc(h.client, 'batchPut', {
        puts: [
          { key: key('ok'), value: key('v'), ttlMs: 0 },
          { key: key('bad'), value: Buffer.alloc(2000), ttlMs: 0 },
        ],
      }),
    );
    expect(batch.omni.code).toBe('TOO_LARGE');
    const cursor = await failure(
      rpc(h.client, 'scan', { pattern: '', cursor: Buffer.from([9]), limit: 1, keysOnly: false, stale: false }),
    );
    expect(cursor.omni.code).toBe('INVALID_ARGUMENT');
    expect(h.cluster.seen.length).toBe(before);
    // A key of exactly 4096 bytes is fine.
    await rpc(h.client, 'put', { key: Buffer.alloc(4096, 2), value: Buffer.alloc(1024), ttlMs: 0 });
  });

  test('single-key operations pass through with their semantics', async () => {
    const k = key('ops');
    const upd = await failure(rpc(h.client, 'update', { key: k, value: key('x'), ttlMs: 0, keepTtl: false }));
    expect(upd.omni.code).toBe('NOT_FOUND');
    expect(upd.grpcCode).toBe(status.NOT_FOUND);
    const put = await rpc<kv.PutResponse>(h.client, 'put', { key: k, value: key('1'), ttlMs: 0 });
    expect((await rpc<kv.ExistsResponse>(h.client, 'exists', { key: k, stale: false })).exists).toBe(true);
    expect((await rpc<kv.TtlResponse>(h.client, 'ttl', { key: k })).ttlMs).toBe(-1);
    expect((await rpc<kv.ExpireResponse>(h.client, 'expire', { key: k, ttlMs: 60_000 })).applied).toBe(true);
    expect((await rpc<kv.TtlResponse>(h.client, 'ttl', { key: k })).ttlMs).toBeGreaterThan(50_000);
    expect((await rpc<kv.PersistResponse>(h.client, 'persist', { key: k })).applied).toBe(true);
    const bad = await rpc<kv.CompareAndSwapResponse>(h.client, 'compareAndSwap', {
      key: k,
      expected: { $case: 'expectedModIndex', value: put.modIndex + 1000 },
      value: key('2'),
      ttlMs: 0,
    });
    expect(bad.swapped).toBe(false);
    expect(bad.current?.value.toString()).toBe('1');
    const cas = await rpc<kv.CompareAndSwapResponse>(h.client, 'compareAndSwap', {
      key: k,
      expected: { $case: 'expectedValue', value: key('1') },
      value: key('2'),
      ttlMs: 0,
    });
    expect(cas.swapped).toBe(true);
    expect((await rpc<kv.DeleteResponse>(h.client, 'delete', { key: k })).deleted).toBe(true);
    expect((await rpc<kv.TtlResponse>(h.client, 'ttl', { key: k })).ttlMs).toBe(-2);
    const bp = await rpc<kv.BatchPutResponse>(h.client, 'batchPut', {
      puts: Array.from({ length: 20 }, (_, i) => ({ key: key(`bp${i}`), value: key(`${i}`), ttlMs: 0 })),
    });
    expect(bp.modIndexes).toHaveLength(20);
    const bg = await rpc<kv.BatchGetResponse>(h.client, 'batchGet', { keys: [key('bp3'), key('nope')], stale: false });
    expect(bg.results.map((r) => r.found)).toEqual([true, false]);
    expect(bg.results[0]!.kv?.value.toString()).toBe('3');
  });

  test('the Stream RPC answers every request by id', async () => {
    const stream = h.client.stream();
    const answers = new Map<number, kv.StreamResponse>();
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (r: kv.StreamResponse) => answers.set(r.id, r));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    for (let i = 1; i <= 50; i++) {
      stream.write({ id: i, op: { $case: 'put', value: { key: key(`s${i}`), value: key(`v${i}`), ttlMs: 0 } } });
    }
    stream.write({ id: 51, op: { $case: 'put', value: { key: Buffer.alloc(0), value: key('v'), ttlMs: 0 } } });
    stream.write({ id: 52, op: { $case: 'get', value: { key: key('s1'), stale: false } } });
    stream.end();
    await done;
    expect(answers.size).toBe(52);
    expect(answers.get(7)?.result?.$case).toBe('put');
    expect(answers.get(51)?.error?.code).toBe('INVALID_ARGUMENT');
    const get = answers.get(52)?.result;
    expect(get?.$case === 'get' && get.value.found).toBe(true);
  });

  test('health reports SERVING once the shard map is loaded', async () => {
    const hc = healthClient(h.router.address);
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      hc.check({ service: 'omnidict.v1.KV' }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(res.status).toBe('SERVING');
    hc.close();
  });
});

describe('metrics', () => {
  test('/metrics serves request counters by method and code', async () => {
    const h = await startHarness({}, { metricsPort: 0 });
    await h.close();
    // metricsPort 0 means off.
    expect(h.router.metricsPort).toBeUndefined();
    const h2 = await startHarness({}, { metricsPort: 19_000 + Math.floor(Math.random() * 1000) });
    try {
      await rpc(h2.client, 'put', { key: key('m'), value: key('v'), ttlMs: 0 });
      await failure(rpc(h2.client, 'get', { key: Buffer.alloc(0), stale: false }));
      const body = await (await fetch(`http://127.0.0.1:${h2.router.metricsPort}/metrics`)).text();
      expect(body).toContain('omnidict_router_requests_total{method="Put",code="OK"} 1');
      expect(body).toContain('omnidict_router_requests_total{method="Get",code="INVALID_ARGUMENT"} 1');
      expect(body).toContain('omnidict_router_request_duration_seconds_bucket');
      expect(body).toContain('omnidict_router_node_batches_total');
    } finally {
      await h2.close();
    }
  });
});
