import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { pdpb } from '@omnidict/proto';
import { startPd } from '../src/pdServer.js';
import { FakeNodes } from './fakeNodes.js';

async function waitFor<T>(fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out');
}

test('a PD replica restarted on its classic-level data dir keeps nodes, shards and the id allocator', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'omnidict-pd-'));
  const options = {
    id: 1,
    listen: '127.0.0.1:0',
    peers: new Map([[1, '127.0.0.1:0']]),
    dataDir: dir,
    tickMs: 20,
    scheduleIntervalMs: 50,
    replicationFactor: 1,
    initialShards: 2,
    admin: new FakeNodes((n) => `node${n}:1`),
  };
  try {
    const first = await startPd(options);
    await waitFor(() => first.isLeader());
    const before = { nextId: 0, shards: 0 };
    const c = new pdpb.PDClient(first.address, credentials.createInsecure());
    await new Promise((resolve, reject) =>
      c.registerNode({ nodeId: 7, address: 'node7:1' }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    c.close();
    await waitFor(() => first.state.bootstrapped && first.state.shards.size === 2);
    before.nextId = first.state.nextId;
    before.shards = first.state.shards.size;
    await first.close();

    // A restarted replica replays its committed log after it opens; what it must never do is
    // serve (lead) with less than it had: check once it leads.
    const second = await startPd(options);
    try {
      await waitFor(() => second.isLeader());
      expect(second.state.nodes.get(7)?.address).toBe('node7:1');
      expect(second.state.shards.size).toBe(before.shards);
      expect(second.state.nextId).toBeGreaterThanOrEqual(before.nextId);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
