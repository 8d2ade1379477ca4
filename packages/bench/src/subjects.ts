import type { BenchTarget } from '@omnidict/cli';
import { OmniClient, OmniError, type Pipeline } from '@omnidict/client';
import { embedRouter } from '@omnidict/router';
import { Etcd3 } from 'etcd3';

/**
 * A system under test as the comparison drives it: a BenchTarget for omnictl's workload engine
 * (put = durable replicated write, get = linearizable read), a bulk loader for the read workloads'
 * keys, the error classifier, and close.
 */
export interface Subject {
  name: string;
  target: BenchTarget;
  preload(keys: readonly string[], value: Uint8Array): Promise<void>;
  errorCode(err: unknown): string;
  close(): void;
}

/** Runs `fn` over `items` with at most `parallel` calls in flight. */
async function forEachParallel<T>(
  items: readonly T[],
  parallel: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** How the benchmark reaches OmniDict. */
export type OmniClientMode = 'unary' | 'pipeline' | 'embedded';

/**
 * omniSubject drives OmniDict: through the router with the SDK's unary calls (the same kind of
 * client etcd3 is: one grpc-js channel, one unary call per operation) or its pipelined stream; or
 * `embedded`: the router's routing layer inside the benchmark process (`embedRouter`, as TiKV's
 * client does), one gRPC hop fewer per request — the counterpart of etcd3 talking to the members.
 */
export function omniSubject(
  endpoints: { readonly routerAddress: string; readonly pdAddresses: readonly string[] },
  mode: OmniClientMode,
  maxInFlight: number,
): Subject {
  const embedded = mode === 'embedded' ? embedRouter({ pdAddresses: endpoints.pdAddresses }) : null;
  const client =
    embedded?.client({ defaultTimeoutMs: 10_000 }) ??
    new OmniClient({ routers: endpoints.routerAddress, defaultTimeoutMs: 10_000 });
  let pipeline: Pipeline | null = null;
  // The stream opens on first use, so a unary-only run never holds one.
  const stream = () => {
    pipeline ??= client.pipeline({ maxInFlight });
    return pipeline;
  };
  const target: BenchTarget =
    mode === 'pipeline' ? { put: (k, v) => stream().put(k, v), get: (k) => stream().get(k) } : client;
  return {
    name: 'OmniDict',
    target,
    preload: (keys, value) =>
      forEachParallel(chunks(keys, 100), 4, async (batch) => {
        await client.batchPut(batch.map((key) => ({ key, value })));
      }),
    errorCode: (err) => (err instanceof OmniError ? err.code : errorName(err)),
    close: () => {
      pipeline?.close();
      client.close();
      embedded?.close();
    },
  };
}

/**
 * etcdSubject drives etcd through the `etcd3` library (grpc-js underneath). Its gets are etcd's
 * default linearizable Range (not `serializable`); puts are plain KV.Put. The client spreads calls
 * over every member, as etcd clients do; followers forward to the leader.
 */
export function etcdSubject(endpoints: readonly string[]): Subject {
  const client = new Etcd3({
    hosts: [...endpoints],
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 10_000 }),
  });
  return {
    name: 'etcd',
    target: {
      put: (k, v) =>
        client
          .put(k)
          .value(Buffer.from(v.buffer, v.byteOffset, v.byteLength))
          .exec(),
      get: (k) => client.get(k).buffer(),
    },
    preload: (keys, value) => {
      const buf = Buffer.from(value);
      // One transaction per 100 keys (etcd's default --max-txn-ops is 128).
      return forEachParallel(chunks(keys, 100), 4, async (batch) => {
        await client
          .if(batch[0]!, 'Version', '>', -1)
          .then(...batch.map((k) => client.put(k).value(buf)))
          .commit();
      });
    },
    errorCode: errorName,
    close: () => client.close(),
  };
}

/** etcd3 errors are classes (`GRPCDeadlineExceededError`, ...): their name is the code. */
function errorName(err: unknown): string {
  return err instanceof Error && err.name !== 'Error' ? err.name : 'INTERNAL';
}
