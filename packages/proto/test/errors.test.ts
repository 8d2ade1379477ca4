import { status } from '@grpc/grpc-js';
import { fromServiceError, OmniError, toServiceError } from '@omnidict/proto';

describe('error model', () => {
  test('a NOT_LEADER error keeps its code and leader hint across the gRPC edge', () => {
    const shard = { id: 3, start: 0, end: 100, epoch: { version: 2, confVer: 1 }, replicas: [] };
    const se = toServiceError(
      new OmniError('STALE_EPOCH', 'epoch moved on', {
        leaderNodeId: 2,
        leaderAddress: '127.0.0.1:5',
        currentShard: shard,
      }),
    );
    expect(se.code).toBe(status.UNAVAILABLE);
    const back = fromServiceError(Object.assign(new Error(se.details), se) as never);
    expect(back.code).toBe('STALE_EPOCH');
    expect(back.message).toBe('epoch moved on');
    expect(back.details.leaderAddress).toBe('127.0.0.1:5');
    expect(back.details.currentShard).toEqual(shard);
    expect(back.retryable).toBe(true);
  });

  test('unknown errors become INTERNAL, and plain gRPC statuses map to codes', () => {
    expect(toServiceError(new Error('boom')).code).toBe(status.INTERNAL);
    const timeout = fromServiceError(
      Object.assign(new Error('x'), { code: status.DEADLINE_EXCEEDED, details: 'late' }),
    );
    expect(timeout.code).toBe('TIMEOUT');
    expect(timeout.retryable).toBe(false);
  });
});
