// The router is stateless: killing it and starting it again with the same arguments loses nothing.
import type { OmniClient } from '@omnidict/client';
import { E2eCluster, findLost, isRunning, Writer, waitFor } from './harness.js';

// The root jest config runs packages as projects, where a project's testTimeout does not apply.
jest.setTimeout(120_000);

let cluster: E2eCluster;
let client: OmniClient;

beforeAll(async () => {
  cluster = await E2eCluster.start('router-restart', ['--shards', '4']);
  client = cluster.client();
}, 300_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop();
}, 120_000);

test('kill -9 and restart of the router: every write is read back, through the SDK and omnictl', async () => {
  const writer = new Writer(client, 'rr', 4);
  writer.start();
  await waitFor('200 acknowledged writes', 30_000, async () => writer.acked.length >= 200);
  await writer.stop();
  const batch = Array.from({ length: 100 }, (_, i) => ({ key: `rr-batch-${i}`, value: `b${i}` }));
  await client.batchPut(batch);
  await client.put('rr-ttl', 'long', { ttlMs: 600_000 });

  const router = cluster.process('router', 1);
  await cluster.kill9(router);
  await expect(client.get('rr-ttl', { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  const restartedAtMs = Date.now();
  const restarted = cluster.restart(router);
  // The same client: its channel reconnects to the same address.
  await waitFor('the restarted router to answer', 30_000, async () => client.exists('rr-ttl', { timeoutMs: 1000 }));
  const answerMs = Date.now() - restartedAtMs;

  const lost = await findLost(client, [
    ...writer.acked,
    ...batch.map((b) => ({ ...b, issuedMs: 0, ackedMs: 0 })),
    { key: 'rr-ttl', value: 'long', issuedMs: 0, ackedMs: 0 },
  ]);
  expect(lost).toEqual([]);
  expect(await client.ttl('rr-ttl')).toBeGreaterThan(500_000);
  const viaCli = await cluster.cli(['get', writer.acked[0]!.key]);
  expect(viaCli).toMatchObject({ code: 0, stdout: `${writer.acked[0]!.value}\n`, stderr: '' });
  // Writes work again too.
  await client.put('rr-after', 'x');
  expect((await client.get('rr-after'))?.value.toString()).toBe('x');
  expect(isRunning(restarted.pid, restarted.binary)).toBe(true);
  console.log(
    `router kill -9 + restart: answered ${answerMs} ms after the restart; ` +
      `${writer.acked.length + batch.length + 1} writes read back, ${lost.length} lost`,
  );
}, 120_000);
