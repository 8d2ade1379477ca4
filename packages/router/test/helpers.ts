import { type Client, credentials, Metadata, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { fromServiceError, kv, type OmniError } from '@omnidict/proto';
import { service as healthService } from 'grpc-health-check';
import { type RouterHandle, type RouterOptions, startRouter } from '../src/index.js';
import { ClusterTwin, type ClusterTwinOptions } from './twins/index.js';

export interface Harness {
  cluster: ClusterTwin;
  router: RouterHandle;
  client: kv.KVClient;
  close(): Promise<void>;
}

/** A cluster twin and a router in front of it, with a real grpc-js KV client. */
export async function startHarness(
  clusterOptions: ClusterTwinOptions = {},
  routerOptions: Partial<RouterOptions> = {},
): Promise<Harness> {
  const cluster = await ClusterTwin.start(clusterOptions);
  const router = await startRouter({
    listen: '127.0.0.1:0',
    pdAddresses: cluster.pdAddresses,
    waitForMapMs: 5000,
    ...routerOptions,
  });
  const client = new kv.KVClient(router.address, credentials.createInsecure());
  return {
    cluster,
    router,
    client,
    async close() {
      client.close();
      await router.close(100);
      cluster.close();
    },
  };
}

type UnaryFn = (
  req: unknown,
  metadata: Metadata,
  options: { deadline: number },
  cb: (err: ServiceError | null, res: unknown) => void,
) => unknown;

/** rpc calls one unary KV method by name with a deadline and resolves with its response. */
export function rpc<Res>(client: kv.KVClient, method: keyof kv.KVServer, req: unknown, timeoutMs = 5000): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryFn>)[method]!;
  return new Promise((resolve, reject) => {
    fn.call(client, req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    );
  });
}

/** The OmniError and gRPC status of a failed call. */
export async function failure(p: Promise<unknown>): Promise<{ omni: OmniError; grpcCode: number; message: string }> {
  try {
    await p;
  } catch (e) {
    const se = e as ServiceError;
    return { omni: fromServiceError(se), grpcCode: se.code, message: se.details };
  }
  throw new Error('expected the call to fail');
}

export const key = (s: string) => Buffer.from(s);

/** A client for grpc.health.v1.Health, built from grpc-health-check's own definition. */
export function healthClient(address: string): Client & {
  check(req: { service: string }, cb: (err: ServiceError | null, res: { status: string }) => void): void;
} {
  const Ctor = makeGenericClientConstructor(healthService as never, 'Health');
  return new Ctor(address, credentials.createInsecure()) as never;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
