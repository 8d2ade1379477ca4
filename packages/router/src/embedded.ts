import { createKvHandlers, type KvHandlers } from './kvService.js';
import { type Logger, silentLogger } from './logger.js';
import { Router } from './router.js';
import { DEFAULT_MAX_VALUE_BYTES } from './validation.js';

export interface EmbeddedRouterOptions {
  /** Every PD replica's address. */
  readonly pdAddresses: readonly string[];
  readonly maxValueBytes?: number;
  readonly maxBatchSize?: number;
  readonly logger?: Logger;
}

/** A router running inside the application's process: the KV API with no router hop. */
export interface EmbeddedRouter {
  readonly router: Router;
  /** The same operations `omnidict-router` serves over gRPC; failures are OmniErrors. */
  readonly kv: KvHandlers;
  close(): void;
}

/**
 * embedRouter runs the routing layer in this process (TiKV's client-go does the same): it watches
 * PD's shard map and talks to the storage nodes' leaders over its own long-lived streams, so a
 * request costs one gRPC hop instead of two (application → router → node). It is the router, not
 * a second implementation: the same `Router`, retries and validation as `omnidict-router`.
 * Requests made before the first shard map arrives wait for it (within their deadline).
 */
export function embedRouter(options: EmbeddedRouterOptions): EmbeddedRouter {
  const router = new Router({
    pdAddresses: options.pdAddresses,
    logger: options.logger ?? silentLogger,
    ...(options.maxBatchSize !== undefined ? { maxBatchSize: options.maxBatchSize } : {}),
  });
  router.start();
  return {
    router,
    kv: createKvHandlers({ router, maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES }),
    close: () => router.close(),
  };
}
