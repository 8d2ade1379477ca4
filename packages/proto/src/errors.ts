import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { Error as ErrorCodec, type Error as ErrorPb, type ShardDescriptor } from './gen/omnidict/v1/common.js';

/**
 * The one error model of OmniDict. `code` is a string union; it is mapped to a gRPC status only at
 * a server edge (`toServiceError`) and recovered from one by clients (`fromServiceError`).
 *
 * | code | meaning | gRPC status | omnictl exit |
 * | --- | --- | --- | --- |
 * | NOT_FOUND | the key (or node, shard, operator) does not exist | NOT_FOUND | 3 |
 * | INVALID_ARGUMENT | malformed request: empty key, bad pattern, bad flag | INVALID_ARGUMENT | 2 |
 * | TOO_LARGE | key over 4 KiB or value over the configured limit | INVALID_ARGUMENT | 2 |
 * | NOT_LEADER | this replica is not the leader; details carry a hint | UNAVAILABLE | 4 |
 * | STALE_EPOCH | the sender's shard epoch is old; details carry the current descriptor | UNAVAILABLE | 4 |
 * | SHARD_NOT_FOUND | this node has no replica of the shard | UNAVAILABLE | 4 |
 * | UNAVAILABLE | cannot be served now (no quorum, peer unreachable); retry | UNAVAILABLE | 4 |
 * | TIMEOUT | the deadline passed; a write may or may not have happened | DEADLINE_EXCEEDED | 5 |
 * | CONFLICT | a concurrent change won (e.g. an operator already runs on the shard) | ABORTED | 6 |
 * | CANCELLED | the caller went away | CANCELLED | 1 |
 * | INTERNAL | a bug or a storage failure; the log says more | INTERNAL | 1 |
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'TOO_LARGE'
  | 'NOT_LEADER'
  | 'STALE_EPOCH'
  | 'SHARD_NOT_FOUND'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'CONFLICT'
  | 'CANCELLED'
  | 'INTERNAL';

export const ERROR_CODES: readonly ErrorCode[] = [
  'NOT_FOUND',
  'INVALID_ARGUMENT',
  'TOO_LARGE',
  'NOT_LEADER',
  'STALE_EPOCH',
  'SHARD_NOT_FOUND',
  'UNAVAILABLE',
  'TIMEOUT',
  'CONFLICT',
  'CANCELLED',
  'INTERNAL',
];

export interface ErrorDetails {
  leaderReplicaId?: number;
  leaderNodeId?: number;
  leaderAddress?: string;
  currentShard?: ShardDescriptor;
  newShards?: ShardDescriptor[];
  hint?: string;
  cause?: unknown;
}

/** Metadata key carrying the OmniDict code on a gRPC status. */
export const CODE_METADATA_KEY = 'omnidict-code';
/** Binary metadata key carrying the encoded `omnidict.v1.Error` (leader hint, descriptor). */
const DETAILS_METADATA_KEY = 'omnidict-error-bin';

const GRPC_STATUS: Record<ErrorCode, GrpcStatus> = {
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  TOO_LARGE: GrpcStatus.INVALID_ARGUMENT,
  NOT_LEADER: GrpcStatus.UNAVAILABLE,
  STALE_EPOCH: GrpcStatus.UNAVAILABLE,
  SHARD_NOT_FOUND: GrpcStatus.UNAVAILABLE,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  CONFLICT: GrpcStatus.ABORTED,
  CANCELLED: GrpcStatus.CANCELLED,
  INTERNAL: GrpcStatus.INTERNAL,
};

export class OmniError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'OmniError';
    this.code = code;
    this.details = details;
  }

  /** True for codes a client may retry after refreshing its routes. */
  get retryable(): boolean {
    return (
      this.code === 'NOT_LEADER' ||
      this.code === 'STALE_EPOCH' ||
      this.code === 'SHARD_NOT_FOUND' ||
      this.code === 'UNAVAILABLE'
    );
  }

  /** The wire form carried inside internal responses (node → router, PD → clients). */
  toProto(): ErrorPb {
    const pb: ErrorPb = {
      code: this.code,
      message: this.message,
      leaderReplicaId: this.details.leaderReplicaId ?? 0,
      leaderNodeId: this.details.leaderNodeId ?? 0,
      leaderAddress: this.details.leaderAddress ?? '',
      newShards: this.details.newShards ?? [],
    };
    if (this.details.currentShard) pb.currentShard = this.details.currentShard;
    return pb;
  }

  static fromProto(pb: ErrorPb): OmniError {
    const code = isErrorCode(pb.code) ? pb.code : 'INTERNAL';
    const details: ErrorDetails = {};
    if (pb.leaderReplicaId) details.leaderReplicaId = pb.leaderReplicaId;
    if (pb.leaderNodeId) details.leaderNodeId = pb.leaderNodeId;
    if (pb.leaderAddress) details.leaderAddress = pb.leaderAddress;
    if (pb.currentShard) details.currentShard = pb.currentShard;
    if (pb.newShards.length > 0) details.newShards = pb.newShards;
    return new OmniError(code, pb.message, details);
  }
}

export function isErrorCode(s: string): s is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(s);
}

/** Maps any thrown value to a gRPC ServiceError at a server edge. Unknown errors become INTERNAL. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const e = err instanceof OmniError ? err : new OmniError('INTERNAL', errorMessage(err), { cause: err });
  const metadata = new Metadata();
  metadata.set(CODE_METADATA_KEY, e.code);
  metadata.set(DETAILS_METADATA_KEY, Buffer.from(ErrorCodec.encode(e.toProto()).finish()));
  return { code: GRPC_STATUS[e.code], details: e.message, metadata };
}

/** Recovers an OmniError from a gRPC error received by a client. */
export function fromServiceError(err: ServiceError | Error): OmniError {
  const se = err as Partial<ServiceError>;
  if (se.metadata) {
    const bin = se.metadata.get(DETAILS_METADATA_KEY)[0];
    if (bin instanceof Buffer) return OmniError.fromProto(ErrorCodec.decode(bin));
    const code = se.metadata.get(CODE_METADATA_KEY)[0];
    if (typeof code === 'string' && isErrorCode(code)) return new OmniError(code, se.details ?? err.message);
  }
  switch (se.code) {
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new OmniError('TIMEOUT', se.details || 'deadline exceeded', { cause: err });
    case GrpcStatus.UNAVAILABLE:
      return new OmniError('UNAVAILABLE', se.details || 'unavailable', { cause: err });
    case GrpcStatus.CANCELLED:
      return new OmniError('CANCELLED', se.details || 'cancelled', { cause: err });
    case GrpcStatus.INVALID_ARGUMENT:
      return new OmniError('INVALID_ARGUMENT', se.details || err.message, { cause: err });
    case GrpcStatus.NOT_FOUND:
      return new OmniError('NOT_FOUND', se.details || err.message, { cause: err });
    default:
      return new OmniError('INTERNAL', se.details || err.message, { cause: err });
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
