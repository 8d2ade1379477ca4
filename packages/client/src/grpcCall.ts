import { type CallOptions, type ClientUnaryCall, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { CODE_METADATA_KEY, fromServiceError, OmniError } from '@omnidict/proto';

/** The shape shared by every generated grpc-js unary method. */
export type UnaryInvoker<Res> = (
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (err: ServiceError | null, res: Res) => void,
) => ClientUnaryCall;

/**
 * callUnary runs one unary call with an absolute deadline and turns any failure into an OmniError
 * whose message names the method and the address, so a CLI user sees which process failed.
 */
export function callUnary<Res>(invoke: UnaryInvoker<Res>, deadlineMs: number, target: string, method: string) {
  return new Promise<Res>((resolve, reject) => {
    invoke(new Metadata(), { deadline: new Date(deadlineMs) }, (err, res) => {
      if (err) reject(toOmniError(err, target, method));
      else resolve(res);
    });
  });
}

/** True when the status came from the OmniDict server (it carries an `omnidict-code`), not from transport. */
function hasServerCode(err: ServiceError): boolean {
  return (err.metadata?.get(CODE_METADATA_KEY).length ?? 0) > 0;
}

/** Maps a grpc-js error to an OmniError, naming `target` when the transport failed. */
export function toOmniError(err: ServiceError, target: string, method: string): OmniError {
  if (!hasServerCode(err)) {
    if (err.code === status.UNAVAILABLE) {
      return new OmniError('UNAVAILABLE', `cannot reach ${target} (${method}): ${transportReason(err)}`, {
        cause: err,
      });
    }
    if (err.code === status.DEADLINE_EXCEEDED) {
      return new OmniError('TIMEOUT', `${method} on ${target}: deadline exceeded`, { cause: err });
    }
  }
  return fromServiceError(err);
}

/** The useful part of a grpc-js transport failure ("connect ECONNREFUSED 127.0.0.1:1"). */
function transportReason(err: ServiceError): string {
  const details = err.details || err.message;
  const m = /Last error: (?:Error: )?(.*?)(?:\. Resolution note:.*)?$/s.exec(details);
  return (m?.[1] ?? details).trim() || 'unavailable';
}

/**
 * neverSent reports whether a failed call provably never reached a server: grpc-js could not pick a
 * connected subchannel, so the request did not leave the process. Only then may a write be retried.
 */
export function neverSent(err: OmniError): boolean {
  const cause = err.details.cause as Partial<ServiceError> | undefined;
  return (
    err.code === 'UNAVAILABLE' &&
    cause?.code === status.UNAVAILABLE &&
    typeof cause.details === 'string' &&
    cause.details.startsWith('No connection established')
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Exponential backoff with full jitter, capped at `capMs`. */
export function backoffMs(attempt: number, baseMs: number, capMs = 1000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}
