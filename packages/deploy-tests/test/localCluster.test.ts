import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OmniClient } from '@omnidict/client';
import { LocalCluster } from '../src/localFromManifests.js';
import { ROOT, renderOverlay } from './helpers.js';

// Boots the dev overlay's processes on 127.0.0.1 with exactly the manifests' environment and
// commands (see src/localFromManifests.ts for the only rewrites), then talks to the cluster through
// the router Service's address. Needs the built binaries (the test command builds before jest).
jest.setTimeout(120_000);

describe('the dev overlay boots a working cluster locally', () => {
  let cluster: LocalCluster | undefined;
  let client: OmniClient | undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'omnidict-manifests-'));

  beforeAll(async () => {
    cluster = await LocalCluster.start({ resources: renderOverlay('dev'), dir, root: ROOT, readyTimeoutMs: 60_000 });
  });

  afterAll(async () => {
    client?.close();
    await cluster?.stop(10_000);
    for (const p of cluster?.processes ?? []) expect(p.exit).toBeDefined();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs every pod of the overlay with the ids its ordinal gives', () => {
    const c = cluster!;
    expect(c.processes.map((p) => p.pod.name).sort()).toEqual(
      [
        'omnidict-node-0',
        'omnidict-node-1',
        'omnidict-node-2',
        'omnidict-pd-0',
        'omnidict-pd-1',
        'omnidict-pd-2',
        'omnidict-router-0',
        'omnidict-router-1',
      ].sort(),
    );
    for (const p of c.processes) expect(p.exit).toBeUndefined();
    // The PD peers list is the manifests' one with every DNS name mapped to a local port.
    const pd = c.processes.find((p) => p.pod.name === 'omnidict-pd-0')!;
    expect(pd.env.OMNIDICT_PEERS).toMatch(/^1=127\.0\.0\.1:\d+,2=127\.0\.0\.1:\d+,3=127\.0\.0\.1:\d+$/);
    expect(pd.env.OMNIDICT_PEERS!.split(',')[0]).toBe(`1=${c.address('omnidict-pd-0.omnidict-pd', 2380)}`);
    expect(pd.env.OMNIDICT_DATA_DIR).toBe(path.join(dir, 'omnidict-pd-0', 'data', 'pd'));
  });

  it('serves a put and a get through the router Service', async () => {
    client = new OmniClient({ routers: cluster!.address('omnidict-router', 7000), defaultTimeoutMs: 5000 });
    const deadline = Date.now() + 60_000;
    let put: Awaited<ReturnType<OmniClient['put']>> | undefined;
    let last: unknown;
    // The routers are Ready once they hold a shard map; the shards may still be electing leaders.
    while (put === undefined && Date.now() < deadline) {
      try {
        put = await client.put('deploy-tests:k', 'v1');
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (put === undefined) throw new Error(`put never succeeded: ${String(last)}\nlogs: ${dir}/logs`);
    const got = await client.get('deploy-tests:k');
    expect(got?.value.toString()).toBe('v1');
  });
});
