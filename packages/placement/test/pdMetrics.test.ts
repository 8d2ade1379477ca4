import { instrumentUnary, registerPdRequestMetrics } from '@omnidict/placement';
import { Registry } from 'prom-client';

test('PD RPCs are counted by method and by the code in their response header', async () => {
  const registry = new Registry();
  const observe = registerPdRequestMetrics(registry);
  type Res = { header?: { error?: { code?: string } } };
  const impl = instrumentUnary(
    {
      listNodes: (_call: unknown, cb: (err: Error | null, res?: Res) => void) => cb(null, { header: {} }),
      removeNode: (_call: unknown, cb: (err: Error | null, res?: Res) => void) =>
        cb(null, { header: { error: { code: 'NOT_LEADER' } } }),
      watchShardMap: (_call: unknown) => undefined,
    },
    observe,
  );
  const call = (fn: (c: unknown, cb: (err: Error | null, res?: Res) => void) => void) =>
    new Promise<Res | undefined>((resolve) => fn({}, (_e, r) => resolve(r)));
  await call(impl.listNodes);
  await call(impl.listNodes);
  expect(await call(impl.removeNode)).toEqual({ header: { error: { code: 'NOT_LEADER' } } });
  const text = await registry.metrics();
  expect(text).toMatch(/omnidict_pd_requests_total\{method="listNodes",code="OK"\} 2/);
  expect(text).toMatch(/omnidict_pd_requests_total\{method="removeNode",code="NOT_LEADER"\} 1/);
  expect(text).not.toMatch(/method="watchShardMap"/);
});
