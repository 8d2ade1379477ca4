import type {
  handleBidiStreamingCall,
  handleUnaryCall,
  ServerDuplexStream,
  ServerUnaryCall,
  ServiceError,
} from '@grpc/grpc-js';
import { type kv, OmniError, toServiceError } from '@omnidict/proto';
import type { Logger } from './logger.js';
import type { RouterMetrics } from './metrics.js';
import type { CallContext, Router } from './router.js';
import { validateKey, validateValue } from './validation.js';

export interface KvServiceOptions {
  router: Router;
  metrics: RouterMetrics;
  logger: Logger;
  maxValueBytes: number;
  /** Deadline used when a call carries none. */
  defaultTimeoutMs: number;
}

/**
 * The router gives up this long before the client's deadline, so its TIMEOUT (with the last error)
 * reaches the client before the client's own DEADLINE_EXCEEDED fires.
 */
const DEADLINE_MARGIN_MS = 20;

/** deadlineOf turns a call's gRPC deadline into the router's give-up time. */
function deadlineOf(call: { getDeadline(): Date | number }, defaultTimeoutMs: number): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  if (!Number.isFinite(ms)) return Date.now() + defaultTimeoutMs;
  const budget = ms - Date.now();
  return Date.now() + Math.max(1, budget - Math.min(DEADLINE_MARGIN_MS, budget / 10));
}

const read = (deadlineMs: number, stale = false): CallContext => ({ deadlineMs, idempotent: true, staleRead: stale });
const write = (deadlineMs: number): CallContext => ({ deadlineMs, idempotent: false });

/** Every KV operation as a plain async function: the request and the time to give up by. */
export interface KvHandlers {
  put(req: kv.PutRequest, deadlineMs: number): Promise<kv.PutResponse>;
  get(req: kv.GetRequest, deadlineMs: number): Promise<kv.GetResponse>;
  delete(req: kv.DeleteRequest, deadlineMs: number): Promise<kv.DeleteResponse>;
  update(req: kv.UpdateRequest, deadlineMs: number): Promise<kv.UpdateResponse>;
  exists(req: kv.ExistsRequest, deadlineMs: number): Promise<kv.ExistsResponse>;
  expire(req: kv.ExpireRequest, deadlineMs: number): Promise<kv.ExpireResponse>;
  ttl(req: kv.TtlRequest, deadlineMs: number): Promise<kv.TtlResponse>;
  persist(req: kv.PersistRequest, deadlineMs: number): Promise<kv.PersistResponse>;
  compareAndSwap(req: kv.CompareAndSwapRequest, deadlineMs: number): Promise<kv.CompareAndSwapResponse>;
  batchGet(req: kv.BatchGetRequest, deadlineMs: number): Promise<kv.BatchGetResponse>;
  batchPut(req: kv.BatchPutRequest, deadlineMs: number): Promise<kv.BatchPutResponse>;
  scan(req: kv.ScanRequest, deadlineMs: number): Promise<kv.ScanResponse>;
  flush(req: kv.FlushRequest, deadlineMs: number): Promise<kv.FlushResponse>;
  /** One operation of the Stream RPC. */
  streamOp(req: kv.StreamRequest, deadlineMs: number): Promise<kv.StreamResponse>;
}

export type KvHandlerOptions = Pick<KvServiceOptions, 'router' | 'maxValueBytes'>;

/**
 * createKvHandlers is the KV API over a Router, without gRPC: what the router's gRPC service
 * serves, and what an application embeds to route requests itself (`EmbeddedRouter`). Every
 * request is validated before anything is forwarded (empty key → INVALID_ARGUMENT, key > 4 KiB or
 * value > maxValueBytes → TOO_LARGE); failures are OmniErrors.
 */
export function createKvHandlers(opts: KvHandlerOptions): KvHandlers {
  const { router, maxValueBytes } = opts;
  const handlers: KvHandlers = {
    put: async (req, deadlineMs) => {
      validateKey(req.key);
      validateValue(req.value, maxValueBytes);
      return router.keyOp(req.key, 'put', req, write(deadlineMs));
    },
    get: async (req, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'get', req, read(deadlineMs, req.stale));
    },
    delete: async (req, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'delete', req, write(deadlineMs));
    },
    update: async (req, deadlineMs) => {
      validateKey(req.key);
      validateValue(req.value, maxValueBytes);
      return router.keyOp(req.key, 'update', req, write(deadlineMs));
    },
    exists: async (req, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'exists', req, read(deadlineMs, req.stale));
    },
    expire: async (req, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'expire', req, write(deadlineMs));
    },
    ttl: async (req, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'ttl', req, read(deadlineMs));
    },
    persist: async (req, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'persist', req, write(deadlineMs));
    },
    compareAndSwap: async (req, deadlineMs) => {
      validateKey(req.key);
      validateValue(req.value, maxValueBytes);
      if (req.expected?.$case === 'expectedValue') validateValue(req.expected.value, maxValueBytes);
      return router.keyOp(req.key, 'cas', req, write(deadlineMs));
    },
    batchGet: async (req, deadlineMs) => {
      for (const key of req.keys) validateKey(key);
      // One node request per key, all issued in this turn: the node channels batch them per node.
      const results = await Promise.all(
        req.keys.map((key) => router.keyOp(key, 'get', { key, stale: req.stale }, read(deadlineMs, req.stale))),
      );
      return { results };
    },
    batchPut: async (req, deadlineMs) => {
      for (const p of req.puts) {
        validateKey(p.key);
        validateValue(p.value, maxValueBytes);
      }
      // Not atomic: on an error some puts may have been applied (documented in docs/router.md).
      const results = await Promise.all(req.puts.map((p) => router.keyOp(p.key, 'put', p, write(deadlineMs))));
      return { modIndexes: results.map((r) => r.modIndex) };
    },
    scan: (req, deadlineMs) => router.scanPage(req, deadlineMs),
    flush: async (_req, deadlineMs) => ({ deleted: await router.flush(deadlineMs) }),
    streamOp: async (req, deadlineMs) => {
      const op = req.op;
      switch (op?.$case) {
        case 'put':
          return { id: req.id, result: { $case: 'put', value: await handlers.put(op.value, deadlineMs) } };
        case 'get':
          return { id: req.id, result: { $case: 'get', value: await handlers.get(op.value, deadlineMs) } };
        case 'delete':
          return { id: req.id, result: { $case: 'delete', value: await handlers.delete(op.value, deadlineMs) } };
        case 'update':
          return { id: req.id, result: { $case: 'update', value: await handlers.update(op.value, deadlineMs) } };
        case 'cas':
          return { id: req.id, result: { $case: 'cas', value: await handlers.compareAndSwap(op.value, deadlineMs) } };
        default:
          throw new OmniError('INVALID_ARGUMENT', `stream request ${req.id} has no operation`);
      }
    },
  };
  return handlers;
}

/**
 * createKvService implements `omnidict.v1.KV` over `createKvHandlers`; every error leaves through
 * `toServiceError`, so clients get the OmniDict code in metadata.
 */
export function createKvService(opts: KvServiceOptions): kv.KVServer {
  const { metrics, logger } = opts;
  const h = createKvHandlers(opts);

  function unary<Req, Res>(
    method: string,
    fn: (req: Req, deadlineMs: number) => Promise<Res>,
  ): handleUnaryCall<Req, Res> {
    return (call: ServerUnaryCall<Req, Res>, callback) => {
      const startedNs = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - startedNs) / 1e9;
      let result: Promise<Res>;
      try {
        result = fn(call.request, deadlineOf(call, opts.defaultTimeoutMs));
      } catch (e) {
        result = Promise.reject(e);
      }
      result.then(
        (res) => {
          metrics.observe(method, 'OK', seconds());
          callback(null, res);
        },
        (e: unknown) => {
          const err = asOmniError(e);
          metrics.observe(method, err.code, seconds());
          if (err.code === 'INTERNAL') logger.error({ method, err }, 'request failed');
          else logger.debug({ method, code: err.code, msg: err.message }, 'request failed');
          callback(toServiceError(err) as ServiceError);
        },
      );
    };
  }

  return {
    put: unary('Put', h.put),
    get: unary('Get', h.get),
    delete: unary('Delete', h.delete),
    update: unary('Update', h.update),
    exists: unary('Exists', h.exists),
    expire: unary('Expire', h.expire),
    ttl: unary('Ttl', h.ttl),
    persist: unary('Persist', h.persist),
    compareAndSwap: unary('CompareAndSwap', h.compareAndSwap),
    batchGet: unary('BatchGet', h.batchGet),
    batchPut: unary('BatchPut', h.batchPut),
    scan: unary('Scan', h.scan),
    flush: unary('Flush', h.flush),
    stream: streamHandler(),
  };

  /**
   * Stream: every request is executed as soon as it arrives; responses are written as they finish
   * (any order), each with the request's id and either a result or an error. The server half-closes
   * after the client has half-closed and every response is written.
   */
  function streamHandler(): handleBidiStreamingCall<kv.StreamRequest, kv.StreamResponse> {
    return (call: ServerDuplexStream<kv.StreamRequest, kv.StreamResponse>) => {
      let pending = 0;
      let clientDone = false;
      let cancelled = false;
      const maybeEnd = () => {
        if (clientDone && pending === 0 && !cancelled) call.end();
      };
      call.on('cancelled', () => {
        cancelled = true;
      });
      call.on('error', () => {
        cancelled = true;
      });
      call.on('data', (req: kv.StreamRequest) => {
        pending++;
        const startedNs = process.hrtime.bigint();
        const method = `Stream.${req.op?.$case ?? 'none'}`;
        const deadlineMs = deadlineOf(call, opts.defaultTimeoutMs);
        h.streamOp(req, deadlineMs)
          .then(
            (res) => {
              metrics.observe(method, 'OK', Number(process.hrtime.bigint() - startedNs) / 1e9);
              if (!cancelled) call.write(res);
            },
            (e: unknown) => {
              const err = asOmniError(e);
              metrics.observe(method, err.code, Number(process.hrtime.bigint() - startedNs) / 1e9);
              if (!cancelled) call.write({ id: req.id, error: err.toProto() });
            },
          )
          .finally(() => {
            pending--;
            maybeEnd();
          });
      });
      call.on('end', () => {
        clientDone = true;
        maybeEnd();
      });
    };
  }
}

/** Any failure as an OmniError (unknown ones are INTERNAL). */
export function asOmniError(e: unknown): OmniError {
  if (e instanceof OmniError) return e;
  return new OmniError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}
