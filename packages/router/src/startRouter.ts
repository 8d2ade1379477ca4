import { Server, ServerCredentials } from '@grpc/grpc-js';
import { kv, type MetricsServer, serveMetrics } from '@omnidict/proto';
import { HealthImplementation } from 'grpc-health-check';
import { createKvService } from './kvService.js';
import { type Logger, silentLogger } from './logger.js';
import { RouterMetrics } from './metrics.js';
import { Router } from './router.js';
import { DEFAULT_MAX_VALUE_BYTES } from './validation.js';

export interface RouterOptions {
  /** host:port to serve omnidict.v1.KV on; port 0 picks a free port. Default 127.0.0.1:7000. */
  listen?: string;
  /** Every PD replica's address. */
  pdAddresses: readonly string[];
  /** Port of the Prometheus /metrics endpoint (same host as `listen`); 0 or absent = off. */
  metricsPort?: number;
  maxValueBytes?: number;
  /** Deadline for calls that carry none. Default 10 s. */
  defaultTimeoutMs?: number;
  maxBatchSize?: number;
  logger?: Logger;
  /**
   * Adds gRPC server reflection. Given as a hook because loading the .proto descriptors needs
   * file paths that only the binary knows (see reflection.ts).
   */
  addReflection?: (server: Server) => void;
  /** Wait this long for the first shard map before resolving (0 = do not wait). Default 0. */
  waitForMapMs?: number;
}

/** A running router. */
export interface RouterHandle {
  /** The bound KV address, host:port. */
  readonly address: string;
  /** The bound metrics port, when metrics are on. */
  readonly metricsPort: number | undefined;
  readonly router: Router;
  readonly metrics: RouterMetrics;
  /** Graceful stop: NOT_SERVING, drain in-flight calls (up to `graceMs`), then close everything. */
  close(graceMs?: number): Promise<void>;
}

/** The health service name the router reports besides the overall status (""). */
export const KV_SERVICE_NAME = 'omnidict.v1.KV';

/**
 * startRouter binds the KV service, health checking, optional reflection and metrics, and starts
 * watching PD. Health is NOT_SERVING until the first shard map has arrived, then SERVING.
 */
export async function startRouter(options: RouterOptions): Promise<RouterHandle> {
  const logger = options.logger ?? silentLogger;
  const metrics = new RouterMetrics();
  const router = new Router({
    pdAddresses: options.pdAddresses,
    logger,
    metrics,
    ...(options.maxBatchSize !== undefined ? { maxBatchSize: options.maxBatchSize } : {}),
  });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [KV_SERVICE_NAME]: 'NOT_SERVING' });
  const server = new Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  server.addService(
    kv.KVService,
    createKvService({
      router,
      metrics,
      logger,
      maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
      defaultTimeoutMs: options.defaultTimeoutMs ?? 10_000,
    }),
  );
  health.addToServer(server);
  options.addReflection?.(server);

  const listen = options.listen ?? '127.0.0.1:7000';
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(listen, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const host = listen.slice(0, listen.lastIndexOf(':'));
  const address = `${host}:${port}`;

  router.start();
  let stopping = false;
  void router.pd.waitForMap().then(
    () => {
      if (stopping) return;
      health.setStatus('', 'SERVING');
      health.setStatus(KV_SERVICE_NAME, 'SERVING');
      logger.info({ revision: router.pd.latestRevision }, 'first shard map received; serving');
    },
    () => {},
  );
  if (options.waitForMapMs) await router.pd.waitForMap(options.waitForMapMs);

  let metricsServer: MetricsServer | undefined;
  if (options.metricsPort !== undefined && options.metricsPort !== 0) {
    metricsServer = await serveMetrics(metrics.registry, options.metricsPort, host);
  }
  const metricsPort = metricsServer?.port;
  logger.info({ address, metricsPort, pd: options.pdAddresses }, 'router listening');

  return {
    address,
    metricsPort,
    router,
    metrics,
    async close(graceMs = 5000) {
      if (stopping) return;
      stopping = true;
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(KV_SERVICE_NAME, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      router.close();
      logger.info({ address }, 'router stopped');
      await metricsServer?.close();
    },
  };
}
