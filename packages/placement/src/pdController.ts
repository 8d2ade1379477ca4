import type { pdpb } from '@omnidict/proto';
import type { NodeId, OperatorId, ShardId } from './ids.js';
import { driveOperator } from './operators/driveOperator.js';
import type { NodeAdminApi } from './operators/nodeAdminApi.js';
import type { OperatorConfig, OperatorMemory } from './operators/step.js';
import { newOperatorMemory } from './operators/step.js';
import { checkLiveness } from './scheduler/checkLiveness.js';
import type { SchedulerConfig, ShardStats } from './scheduler/clusterView.js';
import { schedule } from './scheduler/schedule.js';
import type { ApplyResult, PdCommand, PdState } from './state/pdState.js';
import { normalizeDescriptor } from './state/pdState.js';

/** The pino-compatible subset PD logs through. */
export interface PdLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PdControllerOptions {
  /** The replicated state as applied on this replica (read only here). */
  readonly state: PdState;
  /** Proposes a command through PD's Raft log; resolves with its apply result on this replica. */
  readonly propose: (cmd: PdCommand) => Promise<ApplyResult>;
  readonly admin: NodeAdminApi;
  readonly now: () => number;
  readonly scheduler: SchedulerConfig;
  readonly operators: OperatorConfig;
  /** A node silent for longer than this is marked down. */
  readonly downTimeoutMs: number;
  readonly newClusterId: () => number;
  readonly logger: PdLogger;
  /** Called when soft state a router cares about (a shard leader) changed. */
  readonly onSoftChange?: () => void;
}

/** Node load from its last heartbeat (soft state). */
export interface NodeLoad {
  readonly lastHeartbeatMs: number;
  readonly heartbeat: pdpb.NodeHeartbeatRequest;
}

/**
 * PdController is the PD leader's brain: soft state (heartbeats, shard leaders and stats),
 * liveness, the scheduler and the operator loop. It exists only while this replica leads; a new
 * leader starts a fresh controller from the replicated state (operators resume at their recorded
 * step). All decisions are proposed through Raft before they count.
 */
export class PdController {
  readonly nodeLoad = new Map<NodeId, NodeLoad>();
  readonly shardStats = new Map<ShardId, ShardStats>();
  /** Bumped whenever a shard's leader changes; served map revisions include it. */
  softRevision = 0;
  readonly #o: PdControllerOptions;
  readonly #sinceMs: number;
  readonly #memories = new Map<OperatorId, OperatorMemory>();
  readonly #lastHeartbeat = new Map<NodeId, number>();
  #ticking = false;
  #closed = false;

  constructor(options: PdControllerOptions) {
    this.#o = options;
    this.#sinceMs = options.now();
  }

  close(): void {
    this.#closed = true;
  }

  /** Progress (0..1) of an operator's catch-up, from the leader's memory. */
  progressOf(id: OperatorId): number {
    return this.#memories.get(id)?.progress ?? 0;
  }

  handleNodeHeartbeat(req: pdpb.NodeHeartbeatRequest): void {
    const now = this.#o.now();
    this.#lastHeartbeat.set(req.nodeId, now);
    this.nodeLoad.set(req.nodeId, { lastHeartbeatMs: now, heartbeat: req });
  }

  /** Registration counts as a heartbeat. */
  noteAlive(nodeId: NodeId): void {
    this.#lastHeartbeat.set(nodeId, this.#o.now());
  }

  /**
   * handleShardHeartbeat records each reporting leader's stats (soft) and proposes the descriptors
   * that are newer than PD's (newest epoch wins on apply, so a race only wastes a proposal).
   */
  async handleShardHeartbeat(req: pdpb.ShardHeartbeatRequest): Promise<void> {
    const now = this.#o.now();
    this.#lastHeartbeat.set(req.nodeId, now);
    const newer = [];
    let softChanged = false;
    for (const report of req.shards) {
      const d = report.shard;
      if (!d) continue;
      const prev = this.shardStats.get(d.id);
      if (prev?.leaderReplicaId !== report.leaderReplicaId) softChanged = true;
      this.shardStats.set(d.id, {
        leaderNodeId: req.nodeId,
        leaderReplicaId: report.leaderReplicaId,
        approximateKeys: report.approximateKeys,
        approximateBytes: report.approximateBytes,
        medianPosition: report.medianPosition,
        appliedIndex: report.appliedIndex,
        replicaMatch: { ...report.replicaMatch },
        reportedMs: now,
      });
      const known = this.#o.state.shards.get(d.id);
      const v = d.epoch?.version ?? 0;
      const c = d.epoch?.confVer ?? 0;
      if (
        !known ||
        v > (known.epoch?.version ?? 0) ||
        (v === known.epoch?.version && c > (known.epoch?.confVer ?? 0))
      ) {
        newer.push(normalizeDescriptor(d));
      }
    }
    if (softChanged) {
      this.softRevision++;
      this.#o.onSoftChange?.();
    }
    if (newer.length > 0) await this.#o.propose({ type: 'reportShards', shards: newer });
  }

  /**
   * tick is one round of the leader loop: liveness changes, then a scheduling round (bootstrap or
   * new operators), then one drive of every active operator, in parallel. Overlapping calls are
   * skipped (a slow NodeAdmin call delays the next round, never doubles it).
   */
  async tick(): Promise<void> {
    if (this.#ticking || this.#closed) return;
    this.#ticking = true;
    try {
      await this.#tick();
    } catch (err) {
      this.#o.logger.warn({ err }, 'PD leader loop round failed; retrying next round');
    } finally {
      this.#ticking = false;
    }
  }

  async #tick(): Promise<void> {
    const { state, now } = this.#o;
    const nowMs = now();
    for (const change of checkLiveness(state, this.#lastHeartbeat, nowMs, this.#o.downTimeoutMs, this.#sinceMs)) {
      this.#o.logger.info(change, `node ${change.nodeId} is ${change.state}`);
      await this.#o.propose({ type: 'setNodeState', nodeId: change.nodeId, state: change.state, atMs: nowMs });
    }
    // Stats of shards PD no longer knows (split parents, dropped) must not count as leaders.
    for (const id of this.shardStats.keys()) if (!state.shards.has(id)) this.shardStats.delete(id);

    const plan = schedule(state, { nowMs, shardStats: this.shardStats }, this.#o.scheduler);
    if (plan.bootstrap) {
      const r = await this.#o.propose({
        type: 'bootstrap',
        clusterId: this.#o.newClusterId(),
        shards: plan.bootstrap,
        atMs: nowMs,
      });
      if (!r.error) this.#o.logger.info({ shards: plan.bootstrap.length }, 'cluster bootstrapped');
    }
    for (const spec of plan.operators) {
      const r = await this.#o.propose({ type: 'startOperator', spec, atMs: nowMs });
      if (r.operator) {
        this.#o.logger.info(
          { operatorId: r.operator.id, kind: r.operator.kind, shardId: spec.shardId, reason: spec.reason },
          'operator started',
        );
      }
    }
    await Promise.all(state.activeOperators().map((op) => this.#drive(op.id)));
    for (const id of this.#memories.keys()) {
      const op = state.operators.get(id);
      if (!op || (op.state !== 'pending' && op.state !== 'running')) this.#memories.delete(id);
    }
  }

  async #drive(id: OperatorId): Promise<void> {
    const op = this.#o.state.operators.get(id);
    if (!op || this.#closed) return;
    const mem = this.#memories.get(id) ?? newOperatorMemory();
    this.#memories.set(id, mem);
    const nowMs = this.#o.now();
    const r = await driveOperator(
      op,
      {
        nowMs,
        state: this.#o.state,
        stats: this.shardStats.get(op.shardId),
        admin: this.#o.admin,
        config: this.#o.operators,
      },
      mem,
    );
    if (this.#closed) return;
    if (r.learned.length > 0)
      await this.#o.propose({ type: 'reportShards', shards: r.learned.map(normalizeDescriptor) });
    if (r.changed) {
      await this.#o.propose({
        type: 'updateOperator',
        id,
        state: r.state,
        step: r.step,
        reason: r.reason,
        atMs: nowMs,
      });
      if (r.state === 'failed')
        this.#o.logger.warn({ operatorId: id, kind: op.kind, reason: r.reason }, 'operator failed');
      if (r.state === 'done') this.#o.logger.info({ operatorId: id, kind: op.kind }, 'operator done');
    }
  }
}
