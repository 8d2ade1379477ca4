import { common, OmniError } from '@omnidict/proto';
import type { ClusterState, ShardStats } from '../scheduler/clusterView.js';
import type { OperatorRecord } from '../state/pdState.js';
import type { NodeAdminApi } from './nodeAdminApi.js';
import type { OperatorKind } from './operatorTypes.js';

export interface OperatorConfig {
  /** An operator still active this long after it was created fails with a timeout. */
  readonly timeoutMsByKind: Readonly<Record<OperatorKind, number>>;
  /** A step re-sends its NodeAdmin call at most once per this interval while its effect is not seen. */
  readonly retryMs: number;
  /** A learner is caught up when its match index is within this many entries of the leader's applied index. */
  readonly catchUpLagEntries: number;
}

export const DEFAULT_OPERATOR_CONFIG: OperatorConfig = {
  timeoutMsByKind: {
    create: 60_000,
    split: 60_000,
    transferLeader: 30_000,
    move: 600_000,
    repair: 600_000,
    addReplica: 600_000,
    removeReplica: 120_000,
  },
  retryMs: 1_000,
  catchUpLagEntries: 10,
};

/** What one drive of an operator may read and call. */
export interface OperatorContext {
  readonly nowMs: number;
  readonly state: ClusterState;
  /** The shard leader's last report of the operator's shard (soft state). */
  readonly stats: ShardStats | undefined;
  readonly admin: NodeAdminApi;
  readonly config: OperatorConfig;
}

/**
 * Per-operator scratch memory on the PD leader (not replicated; a new leader starts empty and
 * simply re-checks each step, which is why every step is idempotent).
 */
export interface OperatorMemory {
  /** When the current step last sent its call (retry pacing). */
  lastIssuedMs: number;
  /** Newest descriptor of the shard learned from NodeAdmin responses. */
  latest: common.ShardDescriptor | undefined;
  /** Descriptors learned from responses during this drive; the driver proposes them to PD state. */
  learned: common.ShardDescriptor[];
  /** Nodes that acknowledged a step addressed to several nodes (create). */
  acked: Set<number>;
  lastError: string;
  progress: number;
}

export function newOperatorMemory(): OperatorMemory {
  return {
    lastIssuedMs: Number.NEGATIVE_INFINITY,
    latest: undefined,
    learned: [],
    acked: new Set(),
    lastError: '',
    progress: 0,
  };
}

export type StepOutcome =
  | { readonly kind: 'next' }
  | { readonly kind: 'wait' }
  | { readonly kind: 'fail'; readonly reason: string };

export const NEXT: StepOutcome = { kind: 'next' };
export const WAIT: StepOutcome = { kind: 'wait' };
export const fail = (reason: string): StepOutcome => ({ kind: 'fail', reason });

/**
 * A Step "ensures" one effect: it returns `next` once the effect is visible (in PD state, in a
 * response, or in the leader's report), else sends its call (paced by `retryMs`) and waits.
 * Steps are idempotent so that a new PD leader can resume an operator at its recorded step.
 */
export interface Step {
  readonly name: string;
  run(op: OperatorRecord, ctx: OperatorContext, mem: OperatorMemory): Promise<StepOutcome>;
}

/** Compares epochs: positive when `a` is newer. */
export function compareEpoch(a: common.ShardDescriptor, b: common.ShardDescriptor): number {
  return (a.epoch?.version ?? 0) - (b.epoch?.version ?? 0) || (a.epoch?.confVer ?? 0) - (b.epoch?.confVer ?? 0);
}

/** The newest descriptor of the operator's shard: PD state or what this operator learned. */
export function currentShard(op: OperatorRecord, ctx: OperatorContext, mem: OperatorMemory) {
  const fromState = ctx.state.shards.get(op.shardId);
  if (!mem.latest) return fromState;
  if (!fromState) return mem.latest;
  return compareEpoch(mem.latest, fromState) > 0 ? mem.latest : fromState;
}

export function learn(op: OperatorRecord, mem: OperatorMemory, d: common.ShardDescriptor | undefined): void {
  if (!d) return;
  mem.learned.push(d);
  if (d.id === op.shardId && (!mem.latest || compareEpoch(d, mem.latest) > 0)) mem.latest = d;
}

/** A node's gRPC SERVICE address: where NodeAdmin calls go. */
export function nodeAddress(ctx: OperatorContext, nodeId: number): string | undefined {
  const node = ctx.state.nodes.get(nodeId);
  return node && node.state !== 'removed' ? node.address : undefined;
}

/** A node's RAFT transport address: what CreateShard / ChangeReplicas payloads carry. */
export function nodeRaftAddress(ctx: OperatorContext, nodeId: number): string | undefined {
  const node = ctx.state.nodes.get(nodeId);
  return node && node.state !== 'removed' ? node.raftAddress || node.address : undefined;
}

/** RAFT transport addresses of the nodes a shard's replicas live on (CreateShard `node_addresses`). */
export function nodeRaftAddresses(ctx: OperatorContext, shard: common.ShardDescriptor): Record<number, string> {
  const out: Record<number, string> = {};
  for (const r of shard.replicas) {
    const a = nodeRaftAddress(ctx, r.nodeId);
    if (a !== undefined) out[r.nodeId] = a;
  }
  return out;
}

export function requestHeader(shard: common.ShardDescriptor): common.RequestHeader {
  return {
    shardId: shard.id,
    epoch: { version: shard.epoch?.version ?? 0, confVer: shard.epoch?.confVer ?? 0 },
    staleRead: false,
    timeoutMs: 0,
  };
}

/** True when the step may send its call now (first time, or `retryMs` after the last send). */
export function mayIssue(ctx: OperatorContext, mem: OperatorMemory): boolean {
  if (ctx.nowMs - mem.lastIssuedMs < ctx.config.retryMs) return false;
  mem.lastIssuedMs = ctx.nowMs;
  return true;
}

const RETRYABLE = new Set(['NOT_LEADER', 'STALE_EPOCH', 'SHARD_NOT_FOUND', 'UNAVAILABLE', 'TIMEOUT']);

/**
 * Sends one NodeAdmin call and classifies the result: `ok` with the response, `retry` (transient,
 * remembered in `mem.lastError`; a STALE_EPOCH's current descriptor is learned), or a failed outcome.
 */
export async function callNode<R extends { error?: common.Error | undefined }>(
  op: OperatorRecord,
  mem: OperatorMemory,
  what: string,
  call: () => Promise<R>,
): Promise<{ readonly ok: R } | { readonly outcome: StepOutcome; readonly code: string }> {
  let res: R;
  try {
    res = await call();
  } catch (err) {
    const code = err instanceof OmniError ? err.code : 'UNAVAILABLE';
    mem.lastError = `${what}: ${code}: ${err instanceof Error ? err.message : String(err)}`;
    return { outcome: RETRYABLE.has(code) ? WAIT : fail(mem.lastError), code };
  }
  const e = res.error;
  if (!e || e.code === '') return { ok: res };
  mem.lastError = `${what}: ${e.code}: ${e.message}`;
  learn(op, mem, e.currentShard);
  for (const d of e.newShards) learn(op, mem, d);
  return { outcome: RETRYABLE.has(e.code) ? WAIT : fail(mem.lastError), code: e.code };
}

export const LEARNER = common.ReplicaRole.REPLICA_ROLE_LEARNER;
export const VOTER = common.ReplicaRole.REPLICA_ROLE_VOTER;
