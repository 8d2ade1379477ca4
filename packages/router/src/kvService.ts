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

/**
 * createKvService implements `omnidict.v1.KV`. Every request is validated before anything is
 * forwarded (empty key → INVALID_ARGUMENT, key > 4 KiB or value > maxValueBytes → TOO_LARGE); every
 * error leaves through `toServiceError`, so clients get the OmniDict code in metadata.
 */
export function createKvService(opts: KvServiceOptions): kv.KVServer {
  const { router, metrics, logger, maxValueBytes } = opts;

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

  const put = (req: kv.PutRequest, deadlineMs: number) => {
    validateKey(req.key);
    validateValue(req.value, maxValueBytes);
    return router.keyOp(req.key, 'put', req, write(deadlineMs));
  };
  const get = (req: kv.GetRequest, deadlineMs: number) => {
    validateKey(req.key);
    return router.keyOp(req.key, 'get', req, read(deadlineMs, req.stale));
  };
  const del = (req: kv.DeleteRequest, deadlineMs: number) => {
    validateKey(req.key);
    return router.keyOp(req.key, 'delete', req, write(deadlineMs));
  };
  const update = (req: kv.UpdateRequest, deadlineMs: number) => {
    validateKey(req.key);
    validateValue(req.value, maxValueBytes);
    return router.keyOp(req.key, 'update', req, write(deadlineMs));
  };
  const cas = (req: kv.CompareAndSwapRequest, deadlineMs: number) => {
    validateKey(req.key);
    validateValue(req.value, maxValueBytes);
    if (req.expected?.$case === 'expectedValue') validateValue(req.expected.value, maxValueBytes);
    return router.keyOp(req.key, 'cas', req, write(deadlineMs));
  };

  const service: kv.KVServer = {
    put: unary('Put', put),
    get: unary('Get', get),
    delete: unary('Delete', del),
    update: unary('Update', update),
    exists: unary('Exists', (req: kv.ExistsRequest, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'exists', req, read(deadlineMs, req.stale));
    }),
    expire: unary('Expire', (req: kv.ExpireRequest, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'expire', req, write(deadlineMs));
    }),
    ttl: unary('Ttl', (req: kv.TtlRequest, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'ttl', req, read(deadlineMs));
    }),
    persist: unary('Persist', (req: kv.PersistRequest, deadlineMs) => {
      validateKey(req.key);
      return router.keyOp(req.key, 'persist', req, write(deadlineMs));
    }),
    compareAndSwap: unary('CompareAndSwap', cas),
    batchGet: unary('BatchGet', async (req: kv.BatchGetRequest, deadlineMs): Promise<kv.BatchGetResponse> => {
      for (const key of req.keys) validateKey(key);
      // One node request per key, all issued in this turn: the node channels batch them per node.
      const results = await Promise.all(
        req.keys.map((key) => router.keyOp(key, 'get', { key, stale: req.stale }, read(deadlineMs, req.stale))),
      );
      return { results };
    }),
    batchPut: unary('BatchPut', async (req: kv.BatchPutRequest, deadlineMs): Promise<kv.BatchPutResponse> => {
      for (const p of req.puts) {
        validateKey(p.key);
        validateValue(p.value, maxValueBytes);
      }
      // Not atomic: on an error some puts may have been applied (documented in docs/router.md).
      const results = await Promise.all(req.puts.map((p) => router.keyOp(p.key, 'put', p, write(deadlineMs))));
      return { modIndexes: results.map((r) => r.modIndex) };
    }),
    scan: unary('Scan', (req: kv.ScanRequest, deadlineMs) => router.scanPage(req, deadlineMs)),
    flush: unary(
      'Flush',
      async (_req: kv.FlushRequest, deadlineMs): Promise<kv.FlushResponse> => ({
        deleted: await router.flush(deadlineMs),
      }),
    ),
    stream: streamHandler(),
  };
  return service;

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
        streamOp(req, deadlineMs)
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

  async function streamOp(req: kv.StreamRequest, deadlineMs: number): Promise<kv.StreamResponse> {
    const op = req.op;
    switch (op?.$case) {
      case 'put':
        return { id: req.id, result: { $case: 'put', value: await put(op.value, deadlineMs) } };
      case 'get':
        return { id: req.id, result: { $case: 'get', value: await get(op.value, deadlineMs) } };
      case 'delete':
        return { id: req.id, result: { $case: 'delete', value: await del(op.value, deadlineMs) } };
      case 'update':
        return { id: req.id, result: { $case: 'update', value: await update(op.value, deadlineMs) } };
      case 'cas':
        return { id: req.id, result: { $case: 'cas', value: await cas(op.value, deadlineMs) } };
      default:
        throw new OmniError('INVALID_ARGUMENT', `stream request ${req.id} has no operation`);
    }
  }
}

function asOmniError(e: unknown): OmniError {
  if (e instanceof OmniError) return e;
  return new OmniError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}
