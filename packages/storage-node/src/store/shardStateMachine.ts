import { common, OmniError } from '@omnidict/proto';
import { ConfChangeType } from '@omnidict/raft';
import type {
  CommittedEntry,
  ApplyContext as RaftApplyContext,
  KvReader as RaftKvReader,
  SnapshotWriter,
  StateMachine,
} from '@omnidict/raft/runtime';
import { decodeSnapshotChunk, descriptorKey, snapshotRanges } from '@omnidict/raft/runtime';
import { decodeCommand } from '../kv/commands.js';
import { dataRange, decodeDataKey, expiryKey } from '../kv/keys.js';
import { ApplyContext, type KvResult, KvStateMachine, type TtlKeySet } from '../kv/kvStateMachine.js';
import { decodeRecord } from '../kv/record.js';

/** Result of a conf change entry, as seen by the proposer (the runtime resolves it with the ConfState). */
export type ShardApplyResult = KvResult | { readonly type: 'confChange'; readonly shard: common.ShardDescriptor };

/** What the Store learns from applies (called synchronously inside apply, before the batch is durable). */
export interface ShardHooks {
  /** A split was applied: `right` must be created locally (after the batch is durable). */
  onSplit(left: common.ShardDescriptor, right: common.ShardDescriptor): void;
  /** Membership changed; `removedSelf` when this replica was removed (its data must be dropped). */
  onConfChange(shard: common.ShardDescriptor, removedSelf: boolean): void;
  /** A snapshot replaced the shard's data and descriptor. */
  onSnapshotInstalled?(shard: common.ShardDescriptor): void;
}

/** Pending split records (node-local key space 0x06): `0x06 ‖ newShardId(u64 BE)` → right descriptor. */
export const PENDING_SPLIT_PREFIX = 0x06;

export function pendingSplitKey(shardId: number): Buffer {
  const key = Buffer.alloc(9);
  key[0] = PENDING_SPLIT_PREFIX;
  key.writeUInt32BE(Math.floor(shardId / 0x1_0000_0000), 1);
  key.writeUInt32BE(shardId >>> 0, 5);
  return key;
}

export const PENDING_SPLIT_RANGE = { gte: Buffer.of(PENDING_SPLIT_PREFIX), lt: Buffer.of(PENDING_SPLIT_PREFIX + 1) };

const DESCRIPTOR_CHUNK = 0x44; // 'D': first snapshot chunk carries the descriptor

export function encodeDescriptor(d: common.ShardDescriptor): Buffer {
  return Buffer.from(common.ShardDescriptor.encode(d).finish());
}

export function decodeDescriptor(bytes: Uint8Array): common.ShardDescriptor {
  return common.ShardDescriptor.decode(bytes);
}

/**
 * ShardStateMachine plugs the KV state machine into the multi-Raft runtime (`StateMachine`).
 * - Normal entries are KV commands (commands.ts), applied through ONE KV ApplyContext per call.
 * - Conf changes update the descriptor's replicas and bump `confVer`, persisted atomically with the
 *   apply through `ctx.setDescriptor`.
 * - Split persists the shrunk descriptor AND a pending-split record for the new shard in the same
 *   batch, so a crash before the new group exists is repaired at restart (`Store.open`).
 * - Snapshots: the descriptor (read through the view) then the data range via `snapshotRanges`.
 *   Install clears the old and new data ranges, writes the pairs and rebuilds their expiry index
 *   entries (the expiry index is not range-contiguous; stale entries are dropped by the sweep).
 */
export class ShardStateMachine implements StateMachine<ShardApplyResult> {
  readonly kv: KvStateMachine;

  constructor(
    readonly shardId: number,
    descriptor: common.ShardDescriptor,
    private readonly selfNodeId: number,
    private readonly hooks: ShardHooks,
    /** The node's keys that may carry an expiry (see TtlKeySet); undefined = every overwrite reads. */
    private readonly ttlKeys?: TtlKeySet,
  ) {
    this.kv = new KvStateMachine(descriptor);
  }

  get descriptor(): common.ShardDescriptor {
    return this.kv.descriptor;
  }

  async applyEntries(entries: readonly CommittedEntry[], ctx: RaftApplyContext): Promise<readonly ShardApplyResult[]> {
    const kctx = new ApplyContext(ctx.reader, ctx.batch, this.ttlKeys);
    const results: ShardApplyResult[] = [];
    for (const e of entries) {
      if (e.kind === 'confChange') {
        results.push(this.applyConfChange(e, ctx));
        continue;
      }
      let cmd: ReturnType<typeof decodeCommand>;
      try {
        cmd = decodeCommand(e.data);
      } catch (err) {
        // Not a KV command: a bug or corruption. Deterministically skipped on every replica.
        results.push({
          type: 'error',
          error: new OmniError('INTERNAL', `entry ${e.index} is not a KV command: ${String(err)}`),
        });
        continue;
      }
      const r = await this.kv.apply(kctx, e.index, cmd);
      if (r.type === 'split') {
        ctx.setDescriptor(encodeDescriptor(r.left));
        ctx.batch.put(pendingSplitKey(r.right.id), encodeDescriptor(r.right));
        this.hooks.onSplit(r.left, r.right);
      }
      results.push(r);
    }
    return results;
  }

  private applyConfChange(e: Extract<CommittedEntry, { kind: 'confChange' }>, ctx: RaftApplyContext): ShardApplyResult {
    const d = this.kv.descriptor;
    const { type, replicaId, nodeId } = e.change;
    let replicas = d.replicas.filter((r) => r.replicaId !== replicaId);
    const existing = d.replicas.find((r) => r.replicaId === replicaId);
    if (type === ConfChangeType.AddLearner) {
      replicas.push({
        replicaId,
        nodeId: nodeId || (existing?.nodeId ?? 0),
        role: common.ReplicaRole.REPLICA_ROLE_LEARNER,
      });
    } else if (type === ConfChangeType.AddVoter) {
      replicas.push({
        replicaId,
        nodeId: nodeId || (existing?.nodeId ?? 0),
        role: common.ReplicaRole.REPLICA_ROLE_VOTER,
      });
    }
    replicas = replicas.sort((a, b) => a.replicaId - b.replicaId);
    const next: common.ShardDescriptor = {
      ...d,
      epoch: { version: d.epoch?.version ?? 0, confVer: (d.epoch?.confVer ?? 0) + 1 },
      replicas,
    };
    this.kv.setDescriptor(next);
    ctx.setDescriptor(encodeDescriptor(next));
    const removedSelf = type === ConfChangeType.RemoveNode && existing?.nodeId === this.selfNodeId;
    this.hooks.onConfChange(next, removedSelf);
    return { type: 'confChange', shard: next };
  }

  async *snapshotChunks(view: RaftKvReader, maxChunkBytes: number): AsyncIterable<Uint8Array> {
    const stored = await view.get(descriptorKey(this.shardId));
    const d = stored !== undefined ? decodeDescriptor(stored) : this.kv.descriptor;
    yield Buffer.concat([Buffer.of(DESCRIPTOR_CHUNK), encodeDescriptor(d)]);
    yield* snapshotRanges(view, [dataRange(d.start, d.end)], maxChunkBytes);
  }

  /**
   * destroy deletes the replica's data range (RaftHost.destroyGroup, behind the runtime's durable
   * destroy intent; idempotent). Expiry index entries are node-wide and ordered by time: the Store
   * drops the range's entries once the destroy finished (stale ones are harmless: the sweep checks
   * the record).
   */
  async destroy(writer: SnapshotWriter): Promise<void> {
    const d = this.kv.descriptor;
    if (d.end > d.start) await writer.clearRange(dataRange(d.start, d.end));
  }

  async installSnapshot(chunks: AsyncIterable<Uint8Array>, writer: SnapshotWriter): Promise<void> {
    let descriptor: common.ShardDescriptor | undefined;
    for await (const chunk of chunks) {
      if (descriptor === undefined) {
        if (chunk[0] !== DESCRIPTOR_CHUNK) throw new OmniError('INTERNAL', 'snapshot does not start with a descriptor');
        descriptor = decodeDescriptor(chunk.subarray(1));
        const old = this.kv.descriptor;
        await writer.clearRange(dataRange(old.start, old.end));
        await writer.clearRange(dataRange(descriptor.start, descriptor.end));
        continue;
      }
      const ops: Array<{ type: 'put'; key: Uint8Array; value: Uint8Array }> = [];
      for (const [key, value] of decodeSnapshotChunk(chunk)) {
        ops.push({ type: 'put', key, value });
        const record = decodeRecord(value);
        if (record.expireAtMs !== 0) {
          this.ttlKeys?.add(Buffer.from(key).toString('latin1'));
          const { pos, userKey } = decodeDataKey(key);
          ops.push({ type: 'put', key: expiryKey(record.expireAtMs, pos, userKey), value: Buffer.alloc(0) });
        }
      }
      await writer.write(ops);
    }
    if (descriptor === undefined) throw new OmniError('INTERNAL', 'empty snapshot');
    this.kv.setDescriptor(descriptor);
    this.hooks.onSnapshotInstalled?.(descriptor);
  }
}
