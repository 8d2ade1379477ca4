import { KvTwin, OmniClient, OmniError } from '@omnidict/client';

let twin: KvTwin;
let client: OmniClient;

beforeEach(async () => {
  twin = await KvTwin.start();
  client = new OmniClient({ routers: twin.address, defaultTimeoutMs: 5000 });
});

afterEach(async () => {
  client.close();
  await twin.stop();
});

test('many concurrent requests on one stream are matched back by id', async () => {
  const p = client.pipeline({ maxInFlight: 64 });
  const n = 2000;
  const puts = await Promise.all(Array.from({ length: n }, (_, i) => p.put(`k${i}`, `v${i}`)));
  expect(new Set(puts.map((r) => r.modIndex)).size).toBe(n);
  const gets = await Promise.all(Array.from({ length: n }, (_, i) => p.get(`k${i}`)));
  gets.forEach((g, i) => {
    expect(g?.value.toString()).toBe(`v${i}`);
  });
  expect(twin.callCount('Stream')).toBe(2 * n);
  expect(twin.callCount('Put')).toBe(0);
  expect(p.inFlight).toBe(0);
  p.close();
});

test('errors inside the stream are per request and typed', async () => {
  const p = client.pipeline();
  const [upd, cas, del] = await Promise.allSettled([
    p.update('absent', 'v'),
    p.cas('c', { expectAbsent: true }, 'x'),
    p.delete('nothing'),
  ]);
  expect(upd.status).toBe('rejected');
  expect((upd as PromiseRejectedResult).reason).toBeInstanceOf(OmniError);
  expect(((upd as PromiseRejectedResult).reason as OmniError).code).toBe('NOT_FOUND');
  expect(cas.status === 'fulfilled' && cas.value.swapped).toBe(true);
  expect(del.status === 'fulfilled' && del.value).toBe(false);
  await expect(p.put('', 'v')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  p.close();
  await expect(p.get('k')).rejects.toMatchObject({ code: 'CANCELLED' });
});

test('a broken stream fails requests in flight with UNAVAILABLE naming the router', async () => {
  const p = client.pipeline();
  await p.put('k', 'v');
  const inflight = p.get('k', { timeoutMs: 3000 });
  await twin.stop();
  const err = (await inflight.catch((e: unknown) => e)) as OmniError;
  expect(err).toBeInstanceOf(OmniError);
  expect(['UNAVAILABLE', 'CANCELLED']).toContain(err.code);
  p.close();
});
