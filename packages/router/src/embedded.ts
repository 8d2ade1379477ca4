import { EventEmitter } from 'node:events';
import type { ClientDuplexStream, ClientUnaryCall, Metadata, ServiceError } from '@grpc/grpc-js';
import { OmniClient } from '@omnidict/client';
import { type kv, toServiceError } from '@omnidict/proto';
import { asOmniError, createKvHandlers, type KvHandlers } from './kvService.js';
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
  /**
   * An OmniClient (the whole SDK API, its deadlines and retry rules, `pipeline()` included) whose
   * calls go through this embedded router instead of a router process. Closing the client does not
   * close the router.
   */
  client(options?: { defaultTimeoutMs?: number }): OmniClient;
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
  const handlers = createKvHandlers({ router, maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES });
  return {
    router,
    kv: handlers,
    client: (clientOptions = {}) =>
      new OmniClient({
        routers: EMBEDDED_ADDRESS,
        ...clientOptions,
        connect: () => inProcessKvClient(handlers),
      }),
    close: () => router.close(),
  };
}

/** Deadline of a pipelined request inside the embedded router, as the router process's default. */
const STREAM_REQUEST_TIMEOUT_MS = 10_000;

/**
 * The `Stream` RPC in process, for `OmniClient.pipeline()`: each request written runs at once and
 * its answer (result or error, with the request's id) is emitted as `data`, in completion order —
 * what the router's stream handler does.
 */
function inProcessStream(handlers: KvHandlers): ClientDuplexStream<kv.StreamRequest, kv.StreamResponse> {
  const stream = new EventEmitter() as EventEmitter & { write(req: kv.StreamRequest): boolean; end(): void };
  let ended = false;
  stream.write = (req) => {
    handlers.streamOp(req, Date.now() + STREAM_REQUEST_TIMEOUT_MS).then(
      (res) => {
        if (!ended) stream.emit('data', res);
      },
      (e: unknown) => {
        if (!ended) stream.emit('data', { id: req.id, error: asOmniError(e).toProto() });
      },
    );
    return true;
  };
  stream.end = () => {
    ended = true;
  };
  return stream as unknown as ClientDuplexStream<kv.StreamRequest, kv.StreamResponse>;
}

/** The name an embedded client's calls report as their router (in error messages). */
const EMBEDDED_ADDRESS = 'embedded-router:1';

type UnaryHandler = (req: never, deadlineMs: number) => Promise<unknown>;

/**
 * A `kv.KVClient` whose unary methods call the handlers in this process: errors travel as the
 * router's gRPC service would send them (`toServiceError`), so the SDK maps them exactly as it maps
 * a router's. Only the call shapes OmniClient uses are supported: unary (request, metadata, options,
 * callback) and `stream()`.
 */
function inProcessKvClient(handlers: KvHandlers): kv.KVClient {
  const unary =
    (handler: UnaryHandler) =>
    (
      req: never,
      _metadata: Metadata,
      options: { deadline?: Date | number },
      callback: (err: ServiceError | null, res?: unknown) => void,
    ): ClientUnaryCall => {
      const d = options.deadline;
      const deadlineMs = d instanceof Date ? d.getTime() : (d ?? Date.now() + 10_000);
      handler(req, deadlineMs).then(
        (res) => callback(null, res),
        (e: unknown) => callback(toServiceError(asOmniError(e)) as ServiceError),
      );
      return {} as ClientUnaryCall;
    };
  const methods: Record<string, unknown> = {
    put: unary(handlers.put as UnaryHandler),
    get: unary(handlers.get as UnaryHandler),
    delete: unary(handlers.delete as UnaryHandler),
    update: unary(handlers.update as UnaryHandler),
    exists: unary(handlers.exists as UnaryHandler),
    expire: unary(handlers.expire as UnaryHandler),
    ttl: unary(handlers.ttl as UnaryHandler),
    persist: unary(handlers.persist as UnaryHandler),
    compareAndSwap: unary(handlers.compareAndSwap as UnaryHandler),
    batchGet: unary(handlers.batchGet as UnaryHandler),
    batchPut: unary(handlers.batchPut as UnaryHandler),
    scan: unary(handlers.scan as UnaryHandler),
    flush: unary(handlers.flush as UnaryHandler),
    stream: () => inProcessStream(handlers),
    close: () => undefined,
  };
  // Anything else (waitForReady, getChannel, …) is not part of what OmniClient calls.
  return methods as unknown as kv.KVClient;
}
