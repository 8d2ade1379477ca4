import { common } from '@omnidict/proto';
import type { NodeId, OperatorId, ShardId } from '../ids.js';
import type { OperatorKind, OperatorParams, OperatorSpec } from '../operators/operatorTypes.js';
import { materializeOperator } from '../operators/operatorTypes.js';

/**
 * PdState is the replicated state of the placement driver: every PD replica applies the same
 * commands in the same (Raft log) order and reaches the same state. `apply` is deterministic: it
 * reads no clock and no randomness — timestamps and the cluster id travel inside the commands,
 * decided by the leader that proposed them.
 *
 * Soft state (liveness heartbeats, load, shard leaders) is NOT here; it lives on the leader only.
 */

export type NodeStateName = 'up' | 'down' | 'removed';
export type OperatorStateName = 'pending' | 'running' | 'done' | 'failed';

export interface NodeRecord {
  readonly id: NodeId;
  /** gRPC service address (NodeKV, NodeAdmin): routers and PD's NodeAdmin calls dial it. */
  readonly address: string;
  /**
   * Raft transport address (the node's --raft-listen): what CreateShard's `node_addresses` and
   * ChangeReplicas' `node_address` carry, since peers' Raft traffic dials it. Equal to `address`
   * for a node registered without one.
   */
  readonly raftAddress: string;
  readonly state: NodeStateName;
  readonly registeredMs: number;
  /** When `state` last changed (the leader's clock when it proposed the change). */
  readonly stateSinceMs: number;
}

export interface OperatorRecord {
  readonly id: OperatorId;
  readonly kind: OperatorKind;
  readonly shardId: ShardId;
  readonly state: OperatorStateName;
  /** Name of the current step ('' before the first step ran). */
  readonly step: string;
  /** Why it was started (pending/running) or why it failed. */
  readonly reason: string;
  readonly source: 'scheduler' | 'admin';
  readonly params: OperatorParams;
  readonly createdMs: number;
  readonly updatedMs: number;
}

export interface ClusterConfig {
  readonly replicationFactor: number;
  readonly initialShards: number;
}

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = { replicationFactor: 3, initialShards: 8 };

/** How many finished (done/failed) operators the history keeps; older ones are pruned on apply. */
export const OPERATOR_HISTORY_LIMIT = 256;

/** Range and nodes of one shard to create at bootstrap; ids are allocated when the command applies. */
export interface BootstrapShard {
  readonly start: number;
  readonly end: number;
  readonly nodeIds: readonly NodeId[];
}

/**
 * PdCommand is one PD log entry. Every command that needs a time carries `atMs`, set by the
 * proposing leader, so that all replicas apply the same value.
 */
export type PdCommand =
  | {
      readonly type: 'registerNode';
      readonly nodeId: NodeId;
      readonly address: string;
      /** Absent in entries written before raft addresses were registered: same as `address`. */
      readonly raftAddress?: string;
      readonly atMs: number;
    }
  | { readonly type: 'setNodeState'; readonly nodeId: NodeId; readonly state: NodeStateName; readonly atMs: number }
  | { readonly type: 'setConfig'; readonly config: Partial<ClusterConfig> }
  | {
      readonly type: 'bootstrap';
      readonly clusterId: number;
      readonly shards: readonly BootstrapShard[];
      readonly atMs: number;
    }
  /** Shard descriptors as reported by leaders (or returned by NodeAdmin calls); newest epoch wins. */
  | { readonly type: 'reportShards'; readonly shards: readonly common.ShardDescriptor[] }
  | { readonly type: 'allocIds'; readonly count: number }
  | { readonly type: 'startOperator'; readonly spec: OperatorSpec; readonly atMs: number }
  | {
      readonly type: 'updateOperator';
      readonly id: OperatorId;
      readonly state: OperatorStateName;
      readonly step: string;
      readonly reason: string;
      readonly atMs: number;
    }
  /** Proposed by every new leader: bumps the map revision so revisions stay monotonic across leaders. */
  | { readonly type: 'leaderChanged'; readonly leaderId: number; readonly address: string; readonly atMs: number }
  /** A PD replica's client address, announced to the leader (AnnouncePdMember). */
  | { readonly type: 'pdMember'; readonly pdId: number; readonly address: string };

/** What applying a command produced; `error` is set when the command was rejected (state unchanged). */
export interface ApplyResult {
  readonly error?: { readonly code: 'CONFLICT' | 'NOT_FOUND' | 'INVALID_ARGUMENT'; readonly message: string };
  /** allocIds: the first id of the allocated block. */
  readonly firstId?: number;
  /** startOperator: the new operator. */
  readonly operator?: OperatorRecord;
  /** reportShards: how many descriptors were accepted (newer than what PD had). */
  readonly accepted?: number;
}

const OK: ApplyResult = {};

export class PdState {
  clusterId = 0;
  bootstrapped = false;
  /** The next id the allocator hands out. Only grows, and is part of snapshots: ids are never reused. */
  nextId = 1;
  /** Bumped by every change a router could care about (nodes, shards, leader change). */
  revision = 0;
  config: ClusterConfig = DEFAULT_CLUSTER_CONFIG;
  readonly nodes = new Map<NodeId, NodeRecord>();
  readonly shards = new Map<ShardId, common.ShardDescriptor>();
  readonly operators = new Map<OperatorId, OperatorRecord>();
  /** The PD replica that last took office, and the client address of every PD replica that led. */
  pdLeaderId = 0;
  readonly pdAddresses = new Map<number, string>();

  /** Applies one committed command. Deterministic: same state + same command → same state and result. */
  apply(cmd: PdCommand): ApplyResult {
    switch (cmd.type) {
      case 'registerNode':
        return this.applyRegisterNode(cmd.nodeId, cmd.address, cmd.raftAddress || cmd.address, cmd.atMs);
      case 'setNodeState':
        return this.applySetNodeState(cmd.nodeId, cmd.state, cmd.atMs);
      case 'setConfig':
        return this.applySetConfig(cmd.config);
      case 'bootstrap':
        return this.applyBootstrap(cmd.clusterId, cmd.shards, cmd.atMs);
      case 'reportShards':
        return this.applyReportShards(cmd.shards);
      case 'allocIds':
        return this.applyAllocIds(cmd.count);
      case 'startOperator':
        return this.applyStartOperator(cmd.spec, cmd.atMs);
      case 'updateOperator':
        return this.applyUpdateOperator(cmd);
      case 'leaderChanged':
        this.pdLeaderId = cmd.leaderId;
        if (cmd.address) this.pdAddresses.set(cmd.leaderId, cmd.address);
        this.revision++;
        return OK;
      case 'pdMember':
        this.pdAddresses.set(cmd.pdId, cmd.address);
        return OK;
    }
  }

  /** The operator currently pending or running on a shard, if any (at most one by construction). */
  activeOperatorOf(shardId: ShardId): OperatorRecord | undefined {
    for (const op of this.operators.values()) {
      if (op.shardId === shardId && isActive(op)) return op;
    }
    return undefined;
  }

  activeOperators(): OperatorRecord[] {
    return [...this.operators.values()].filter(isActive);
  }

  /** Shards sorted by ring start: the range table. */
  sortedShards(): common.ShardDescriptor[] {
    return [...this.shards.values()].sort((a, b) => a.start - b.start || a.id - b.id);
  }

  private applyRegisterNode(nodeId: NodeId, address: string, raftAddress: string, atMs: number): ApplyResult {
    if (!Number.isInteger(nodeId) || nodeId <= 0) {
      return { error: { code: 'INVALID_ARGUMENT', message: `node id must be a positive integer, got ${nodeId}` } };
    }
    const old = this.nodes.get(nodeId);
    if (old?.state === 'removed') {
      return { error: { code: 'CONFLICT', message: `node ${nodeId} was removed; a removed id is never reused` } };
    }
    if (old && old.address === address && old.raftAddress === raftAddress && old.state === 'up') return OK;
    this.nodes.set(nodeId, {
      id: nodeId,
      address,
      raftAddress,
      state: 'up',
      registeredMs: old?.registeredMs ?? atMs,
      stateSinceMs: old?.state === 'up' ? old.stateSinceMs : atMs,
    });
    this.revision++;
    return OK;
  }

  private applySetNodeState(nodeId: NodeId, state: NodeStateName, atMs: number): ApplyResult {
    const old = this.nodes.get(nodeId);
    if (!old) return { error: { code: 'NOT_FOUND', message: `node ${nodeId} is not registered` } };
    if (old.state === state) return OK;
    if (old.state === 'removed') return { error: { code: 'CONFLICT', message: `node ${nodeId} was removed` } };
    this.nodes.set(nodeId, { ...old, state, stateSinceMs: atMs });
    this.revision++;
    return OK;
  }

  private applySetConfig(config: Partial<ClusterConfig>): ApplyResult {
    const next = { ...this.config, ...config };
    if (!(Number.isInteger(next.replicationFactor) && next.replicationFactor >= 1)) {
      return { error: { code: 'INVALID_ARGUMENT', message: 'replicationFactor must be an integer >= 1' } };
    }
    if (!(Number.isInteger(next.initialShards) && next.initialShards >= 1)) {
      return { error: { code: 'INVALID_ARGUMENT', message: 'initialShards must be an integer >= 1' } };
    }
    this.config = next;
    return OK;
  }

  /**
   * Bootstrap creates the initial shards (epoch {1, 1}, all replicas voters) and one `create`
   * operator per shard. Ids are allocated here, in range order: shard id, then one replica id per
   * node, then the operator id. Applies at most once.
   */
  private applyBootstrap(clusterId: number, shards: readonly BootstrapShard[], atMs: number): ApplyResult {
    if (this.bootstrapped) return { error: { code: 'CONFLICT', message: 'the cluster is already bootstrapped' } };
    this.bootstrapped = true;
    this.clusterId = clusterId;
    for (const s of shards) {
      const id = this.nextId++;
      const replicas = s.nodeIds.map((nodeId) => ({
        replicaId: this.nextId++,
        nodeId,
        role: common.ReplicaRole.REPLICA_ROLE_VOTER,
      }));
      this.shards.set(id, { id, start: s.start, end: s.end, epoch: { version: 1, confVer: 1 }, replicas });
      const opId = this.nextId++;
      this.operators.set(opId, {
        id: opId,
        kind: 'create',
        shardId: id,
        state: 'pending',
        step: '',
        reason: 'bootstrap',
        source: 'scheduler',
        params: { kind: 'create' },
        createdMs: atMs,
        updatedMs: atMs,
      });
    }
    this.revision++;
    return OK;
  }

  /**
   * Newest epoch wins (DESIGN.md "Placement driver"). A descriptor is ignored when PD knows the
   * same shard with a higher version, or the same version and a higher or equal confVer, or when an
   * overlapping shard has a higher version (the report is from before a split PD already knows).
   * An accepted descriptor drops every other shard it overlaps whose version is lower (the parent
   * of a split), as TiKV's PD does: a brief gap in the map is safe, an overlap is not.
   */
  private applyReportShards(shards: readonly common.ShardDescriptor[]): ApplyResult {
    let accepted = 0;
    for (const d of shards) {
      const version = d.epoch?.version ?? 0;
      const confVer = d.epoch?.confVer ?? 0;
      const old = this.shards.get(d.id);
      if (old) {
        const ov = old.epoch?.version ?? 0;
        const oc = old.epoch?.confVer ?? 0;
        if (version < ov || (version === ov && confVer <= oc)) continue;
      }
      const overlapping = [...this.shards.values()].filter((s) => s.id !== d.id && s.start < d.end && d.start < s.end);
      if (overlapping.some((s) => (s.epoch?.version ?? 0) >= version)) continue;
      for (const s of overlapping) this.shards.delete(s.id);
      this.shards.set(d.id, normalizeDescriptor(d));
      // Ids chosen outside the allocator (never expected) must still never be handed out again.
      this.nextId = Math.max(this.nextId, d.id + 1, ...d.replicas.map((r) => r.replicaId + 1));
      accepted++;
    }
    if (accepted > 0) this.revision++;
    return { accepted };
  }

  private applyAllocIds(count: number): ApplyResult {
    if (!Number.isInteger(count) || count < 1 || count > 1_000_000) {
      return { error: { code: 'INVALID_ARGUMENT', message: `id count must be in [1, 1000000], got ${count}` } };
    }
    const firstId = this.nextId;
    this.nextId += count;
    return { firstId };
  }

  private applyStartOperator(spec: OperatorSpec, atMs: number): ApplyResult {
    const shard = this.shards.get(spec.shardId);
    if (!shard) return { error: { code: 'NOT_FOUND', message: `shard ${spec.shardId} is not known` } };
    const active = this.activeOperatorOf(spec.shardId);
    if (active) {
      return {
        error: {
          code: 'CONFLICT',
          message: `operator ${active.id} (${active.kind}) already runs on shard ${spec.shardId}`,
        },
      };
    }
    const id = this.nextId++;
    const params = materializeOperator(spec.params, shard, () => this.nextId++);
    const op: OperatorRecord = {
      id,
      kind: spec.params.kind,
      shardId: spec.shardId,
      state: 'pending',
      step: '',
      reason: spec.reason,
      source: spec.source,
      params,
      createdMs: atMs,
      updatedMs: atMs,
    };
    this.operators.set(id, op);
    return { operator: op };
  }

  private applyUpdateOperator(cmd: Extract<PdCommand, { type: 'updateOperator' }>): ApplyResult {
    const old = this.operators.get(cmd.id);
    if (!old) return { error: { code: 'NOT_FOUND', message: `operator ${cmd.id} is not known` } };
    if (!isActive(old)) return { error: { code: 'CONFLICT', message: `operator ${cmd.id} already ${old.state}` } };
    this.operators.set(cmd.id, { ...old, state: cmd.state, step: cmd.step, reason: cmd.reason, updatedMs: cmd.atMs });
    if (cmd.state === 'done' || cmd.state === 'failed') this.pruneHistory();
    return OK;
  }

  private pruneHistory(): void {
    const finished = [...this.operators.values()].filter((op) => !isActive(op)).map((op) => op.id);
    if (finished.length <= OPERATOR_HISTORY_LIMIT) return;
    finished.sort((a, b) => a - b);
    for (const id of finished.slice(0, finished.length - OPERATOR_HISTORY_LIMIT)) this.operators.delete(id);
  }

  /** The whole state as bytes (format: see `encodeSnapshot`). */
  snapshot(): Uint8Array {
    const data: SnapshotData = {
      format: 1,
      clusterId: this.clusterId,
      bootstrapped: this.bootstrapped,
      nextId: this.nextId,
      revision: this.revision,
      config: this.config,
      nodes: [...this.nodes.values()].sort((a, b) => a.id - b.id),
      shards: [...this.shards.values()].sort((a, b) => a.id - b.id),
      operators: [...this.operators.values()].sort((a, b) => a.id - b.id),
      pdLeaderId: this.pdLeaderId,
      pdAddresses: [...this.pdAddresses].sort((a, b) => a[0] - b[0]),
    };
    return encodeJson(SNAPSHOT_TAG, data);
  }

  /** Replaces the whole state with a snapshot taken by `snapshot()`. */
  restore(bytes: Uint8Array): void {
    const data = decodeJson(SNAPSHOT_TAG, bytes) as SnapshotData;
    if (data.format !== 1) throw new Error(`unknown PD snapshot format ${String(data.format)}`);
    this.clusterId = data.clusterId;
    this.bootstrapped = data.bootstrapped;
    this.nextId = data.nextId;
    this.revision = data.revision;
    this.config = data.config;
    this.nodes.clear();
    this.shards.clear();
    this.operators.clear();
    for (const n of data.nodes) this.nodes.set(n.id, { ...n, raftAddress: n.raftAddress || n.address });
    for (const s of data.shards) this.shards.set(s.id, s);
    for (const o of data.operators) this.operators.set(o.id, o);
    this.pdLeaderId = data.pdLeaderId;
    this.pdAddresses.clear();
    for (const [id, address] of data.pdAddresses) this.pdAddresses.set(id, address);
  }

  static fromSnapshot(bytes: Uint8Array): PdState {
    const s = new PdState();
    s.restore(bytes);
    return s;
  }
}

interface SnapshotData {
  format: 1;
  clusterId: number;
  bootstrapped: boolean;
  nextId: number;
  revision: number;
  config: ClusterConfig;
  nodes: NodeRecord[];
  shards: common.ShardDescriptor[];
  operators: OperatorRecord[];
  pdLeaderId: number;
  pdAddresses: Array<[number, string]>;
}

export function isActive(op: OperatorRecord): boolean {
  return op.state === 'pending' || op.state === 'running';
}

/** A plain, fully populated copy (no ts-proto oddities, epoch always present). */
export function normalizeDescriptor(d: common.ShardDescriptor): common.ShardDescriptor {
  return {
    id: d.id,
    start: d.start,
    end: d.end,
    epoch: { version: d.epoch?.version ?? 0, confVer: d.epoch?.confVer ?? 0 },
    replicas: d.replicas.map((r) => ({ replicaId: r.replicaId, nodeId: r.nodeId, role: r.role })),
  };
}

/**
 * Wire formats. A PD log entry is one tag byte 0x01 followed by the command as UTF-8 JSON; a
 * snapshot is tag 0x02 followed by the state as UTF-8 JSON. JSON because the commands are small and
 * rare (PD traffic is heartbeats, not data), debuggable with `xxd`, and every number in them is an
 * integer below 2^53. A new incompatible format gets a new tag.
 */
const COMMAND_TAG = 0x01;
const SNAPSHOT_TAG = 0x02;

export function encodeCommand(cmd: PdCommand): Uint8Array {
  return encodeJson(COMMAND_TAG, cmd);
}

export function decodeCommand(bytes: Uint8Array): PdCommand {
  return decodeJson(COMMAND_TAG, bytes) as PdCommand;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeJson(tag: number, value: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(value));
  const out = new Uint8Array(body.length + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

function decodeJson(tag: number, bytes: Uint8Array): unknown {
  if (bytes[0] !== tag) throw new Error(`PD codec: expected tag 0x0${tag}, got ${String(bytes[0])}`);
  return JSON.parse(decoder.decode(bytes.subarray(1)));
}
