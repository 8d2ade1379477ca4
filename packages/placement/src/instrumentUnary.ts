import type * as grpc from '@grpc/grpc-js';

/** Observes one answered PD RPC: its method, outcome code ('OK' or the header's error code), duration. */
export type PdRequestObserver = (method: string, code: string, durationMs: number) => void;

/**
 * Wraps every unary handler of a service implementation so `observe` sees each answer. PD answers
 * errors inside the response header (NOT_LEADER, ...), so the code is read from there. Streaming
 * handlers are left as they are.
 */
export function instrumentUnary<T extends object>(impl: T, observe: PdRequestObserver | undefined): T {
  if (observe === undefined) return impl;
  const out: Record<string, unknown> = {};
  for (const [method, handler] of Object.entries(impl)) {
    if (typeof handler !== 'function' || handler.length !== 2) {
      out[method] = handler;
      continue;
    }
    const unary = handler as grpc.handleUnaryCall<unknown, { header?: { error?: { code?: string } } }>;
    out[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const startedMs = performance.now();
      unary(call as never, (err, res) => {
        const code = err ? 'INTERNAL' : res?.header?.error?.code || 'OK';
        observe(method, code, performance.now() - startedMs);
        cb(err, res);
      });
    };
  }
  return out as T;
}
