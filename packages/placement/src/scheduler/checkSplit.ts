import type { common } from '@omnidict/proto';
import type { OperatorSpec } from '../operators/operatorTypes.js';
import type { PlanContext } from './checkReplicas.js';

/**
 * splitPosition is where a shard splits: at its median key position when that lies strictly inside
 * the range, else at the middle of the range. Undefined when the range is a single position.
 */
export function splitPosition(shard: common.ShardDescriptor, medianPosition: number): number | undefined {
  if (shard.end - shard.start < 2) return undefined;
  if (medianPosition > shard.start && medianPosition < shard.end) return medianPosition;
  return shard.start + Math.floor((shard.end - shard.start) / 2);
}

/**
 * checkSplit plans a split of a shard whose approximate size or key count (from its leader's
 * heartbeat) reaches the configured threshold. The split position is decided here, so the node
 * splits exactly where PD planned.
 */
export function checkSplit(ctx: PlanContext, shard: common.ShardDescriptor): OperatorSpec | undefined {
  const stats = ctx.soft.shardStats.get(shard.id);
  if (!stats || ctx.busy.has(shard.id)) return undefined;
  const { splitMaxBytes, splitMaxKeys } = ctx.config;
  const bySize = splitMaxBytes > 0 && stats.approximateBytes >= splitMaxBytes;
  const byKeys = splitMaxKeys > 0 && stats.approximateKeys >= splitMaxKeys;
  if (!bySize && !byKeys) return undefined;
  const splitAt = splitPosition(shard, stats.medianPosition);
  if (splitAt === undefined) return undefined;
  return {
    shardId: shard.id,
    reason: bySize
      ? `size ${stats.approximateBytes} B >= ${splitMaxBytes} B`
      : `keys ${stats.approximateKeys} >= ${splitMaxKeys}`,
    source: 'scheduler',
    params: { kind: 'split', splitAt, newShardId: 0, newReplicaIds: [], fromVersion: 0 },
  };
}
