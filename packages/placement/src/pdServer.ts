import * as grpc from '@grpc/grpc-js';
import { type common, OmniError, pdpb } from '@omnidict/proto';
import type { HostStats, KvEngine } from '@omnidict/raft/runtime';
import { LevelEngine, MemoryEngine, NetTransport, RaftHost, RuntimeError } from '@omnidict/raft/runtime';
import { HealthImplementation } from 'grpc-health-check';
import { instrumentUnary, type PdRequestObserver } from './instrumentUnary.js';
import { GrpcNodeAdmin } from './operators/grpcNodeAdmin.js';
import type { NodeAdminApi } from './operators/nodeAdminApi.js';
import type { OperatorParams } from './operators/operatorTypes.js';
import type { OperatorConfig } from './operators/step.js';
import { DEFAULT_OPERATOR_CONFIG } from './operators/step.js';
import type { PdLogger } from './pdController.js';
import { PdController } from './pdController.js';
import { loadPdState, PdStateMachine } from './pdStateMachine.js';
import type { SchedulerConfig } from './scheduler/clusterView.js';
import { DEFAULT_SCHEDULER_CONFIG, isVoter } from './scheduler/clusterView.js';
import type { ApplyResult, OperatorRecord, PdCommand, PdState } from './state/pdState.js';
import { encodeCommand } from './state/pdState.js';

/** The one Raft group PD runs. Its replica ids and process ids are the PD ids. */
export const PD_GROUP_ID = 1;
export const PD_SERVICE_NAME = 'omnidict.pd.v1.PD';
/** Served map revision = state revision × 2^20 + shard leader changes seen since that state revision. */
const SOFT_REVISION_SPAN = 2 ** 20;

export interface PdLoggerFull extends PdLogger {
  debug(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): PdLoggerFull;
}

export interface PdOptions {
  /** This PD replica's id (its Raft replica and process id), one of `peers`' keys. */
  readonly id: number;
  /** host:port of the PD gRPC service (port 0 picks a free port). */
  readonly listen: string;
  /** Address clients and other PD replicas' hints use for this replica's PD service; defaults to `listen` with the bound port. */
  readonly advertise?: string;
  /** Raft transport address of every PD replica, this one included. */
  readonly peers: ReadonlyMap<number, string>;
  /** Where this replica's Raft transport listens; defaults to `peers.get(id)`. Port 0 allowed (see `setRaftPeer`). */
  readonly raftListen?: string;
  /** classic-level directory; omitted = in-memory engine (tests only: nothing survives close). */
  readonly dataDir?: string;
  /** An engine to use instead of opening one (tests keep it across restarts); the caller closes it. */
  readonly engine?: KvEngine;
  readonly replicationFactor?: number;
  readonly initialShards?: number;
  /** A node silent this long is marked down. Default 10 s. */
  readonly downTimeoutMs?: number;
  readonly scheduler?: Partial<SchedulerConfig>;
  readonly operators?: Partial<OperatorConfig>;
  /** Interval of the leader loop (liveness, scheduling, operators). Default 500 ms. */
  readonly scheduleIntervalMs?: number;
  /** Raft tick. Default 100 ms. */
  readonly tickMs?: number;
  readonly admin?: NodeAdminApi;
  readonly logger?: PdLoggerFull;
  /** Hook to add reflection (or other services) to the server before it starts. */
  readonly configureServer?: (server: grpc.Server) => void;
  /** Sees every answered unary PD RPC (method, code, duration); the binary wires it to Prometheus. */
  readonly observeRequest?: PdRequestObserver;
}

export interface PdHandle {
  readonly id: number;
  /** The bound PD service address (advertised form). */
  readonly address: string;
  /** The bound Raft transport address. */
  readonly raftAddress: string;
  /** True once this replica leads AND has applied its own term's first entry (serves requests). */
  isLeader(): boolean;
  /** The PD service address of the leader as this replica knows it ('' when unknown). */
  leaderAddress(): string;
  /** The replicated state as applied here (read only). */
  readonly state: PdState;
  /** The Raft runtime's counters (fsyncs, applied entries, messages), for metrics. */
  readonly raftStats: Readonly<HostStats>;
  /** Tells the transport where a peer's Raft endpoint is (for peers started on port 0). */
  setRaftPeer(id: number, address: string): void;
  /** Graceful by default; `abrupt` simulates a crash (no more writes or messages). */
  close(opts?: { abrupt?: boolean }): Promise<void>;
}

const noop = () => {};
const silentLogger: PdLoggerFull = { debug: noop, info: noop, warn: noop, error: noop, child: () => silentLogger };

const OPERATOR_STATE: Record<OperatorRecord['state'], pdpb.OperatorState> = {
  pending: pdpb.OperatorState.OPERATOR_STATE_PENDING,
  running: pdpb.OperatorState.OPERATOR_STATE_RUNNING,
  done: pdpb.OperatorState.OPERATOR_STATE_DONE,
  failed: pdpb.OperatorState.OPERATOR_STATE_FAILED,
};
const NODE_STATE = {
  up: pdpb.NodeState.NODE_STATE_UP,
  down: pdpb.NodeState.NODE_STATE_DOWN,
  removed: pdpb.NodeState.NODE_STATE_REMOVED,
} as const;

/**
 * startPd runs one PD replica: a RaftHost with the single PD group over classic-level, the PD gRPC
 * service, gRPC health, and — while this replica leads — the leader loop. Followers answer every
 * RPC with `header.error = NOT_LEADER` and `header.leader_address`.
 */
export async function startPd(options: PdOptions): Promise<PdHandle> {
  const log = (options.logger ?? silentLogger).child({ pdId: options.id });
  const ownEngine = options.engine === undefined;
  const engine: KvEngine =
    options.engine ?? (options.dataDir !== undefined ? await LevelEngine.open(options.dataDir) : new MemoryEngine());
  const sm = new PdStateMachine(await loadPdState(engine), () => server.onApplied());
  const raftListen = options.raftListen ?? options.peers.get(options.id);
  if (raftListen === undefined) throw new OmniError('INVALID_ARGUMENT', `peers has no address for PD ${options.id}`);
  const transport = new NetTransport({
    nodeId: options.id,
    listenAddress: raftListen,
    peers: new Map([...options.peers].filter(([id]) => id !== options.id)),
    logger: log as never,
  });
  const host = await RaftHost.open({
    nodeId: options.id,
    engine,
    transport,
    stateMachine: () => sm,
    logger: log as never,
    tickMs: options.tickMs ?? 100,
    rngSeed: Date.now() ^ (options.id * 7919),
  });
  if (!host.hasGroup(PD_GROUP_ID)) {
    const peers = [...options.peers.keys()].sort((a, b) => a - b).map((id) => ({ replicaId: id, nodeId: id }));
    await host.createGroup({ groupId: PD_GROUP_ID, replicaId: options.id, peers });
  }
  const server = new PdServer(options, log, host, sm, transport);
  try {
    await server.start();
  } catch (err) {
    await host.close();
    if (ownEngine) await engine.close();
    throw err;
  }
  return {
    id: options.id,
    address: server.address,
    raftAddress: raftListen.replace(/:0$/, `:${transport.port}`),
    state: sm.state,
    raftStats: host.stats,
    isLeader: () => server.isLeader(),
    leaderAddress: () => server.leaderAddress(),
    setRaftPeer: (id, address) => transport.setPeer(id, address),
    close: async (opts) => {
      await server.close(opts?.abrupt === true);
      await host.close(opts ?? {});
      if (ownEngine) await engine.close();
    },
  };
}

interface Watcher {
  readonly call: grpc.ServerWritableStream<pdpb.GetShardMapRequest, pdpb.ShardMap>;
  lastRevision: number;
}

class PdServer {
  address = '';
  readonly #o: PdOptions;
  readonly #log: PdLoggerFull;
  readonly #host: RaftHost;
  readonly #sm: PdStateMachine;
  readonly #grpc = new grpc.Server();
  readonly #health = new HealthImplementation({ '': 'NOT_SERVING', [PD_SERVICE_NAME]: 'NOT_SERVING' });
  readonly #admin: NodeAdminApi;
  readonly #scheduler: SchedulerConfig;
  readonly #operators: OperatorConfig;
  readonly #watchers = new Set<Watcher>();
  #controller: PdController | undefined;
  #becoming = false;
  #leaderTerm = 0;
  #timer: NodeJS.Timeout | undefined;
  #announcing = false;
  #lastAnnounceMs = 0;
  /** A client to the PD leader, for AnnouncePdMember. */
  #peerClient: { address: string; client: pdpb.PDClient } | undefined;
  #lastLoopMs = 0;
  #notifyQueued = false;
  #revBase = { stateRevision: -1, softAt: 0 };
  #closed = false;

  constructor(o: PdOptions, log: PdLoggerFull, host: RaftHost, sm: PdStateMachine, _transport: NetTransport) {
    this.#o = o;
    this.#log = log;
    this.#host = host;
    this.#sm = sm;
    this.#admin = o.admin ?? new GrpcNodeAdmin();
    this.#scheduler = { ...DEFAULT_SCHEDULER_CONFIG, ...o.scheduler };
    this.#operators = { ...DEFAULT_OPERATOR_CONFIG, ...o.operators };
  }

  get state(): PdState {
    return this.#sm.state;
  }

  isLeader(): boolean {
    return this.#controller !== undefined;
  }

  leaderAddress(): string {
    if (this.#controller) return this.address;
    const st = this.#host.status(PD_GROUP_ID);
    return st.leaderNodeId ? (this.state.pdAddresses.get(st.leaderNodeId) ?? '') : '';
  }

  async start(): Promise<void> {
    this.#grpc.addService(pdpb.PDService, instrumentUnary(this.#service(), this.#o.observeRequest));
    this.#health.addToServer(this.#grpc);
    this.#o.configureServer?.(this.#grpc);
    const port = await new Promise<number>((resolve, reject) =>
      this.#grpc.bindAsync(this.#o.listen, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.address = this.#o.advertise ?? this.#o.listen.replace(/:0$/, `:${port}`);
    this.#health.setStatus('', 'SERVING');
    this.#health.setStatus(PD_SERVICE_NAME, 'SERVING');
    this.#timer = setInterval(() => this.#poll(), Math.min(100, this.#o.tickMs ?? 100));
    this.#log.info({ address: this.address }, 'PD replica serving');
  }

  async close(abrupt: boolean): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#stepDown();
    for (const w of this.#watchers) w.call.end();
    this.#watchers.clear();
    this.#health.setStatus('', 'NOT_SERVING');
    if (abrupt) this.#grpc.forceShutdown();
    else await new Promise<void>((resolve) => this.#grpc.tryShutdown(() => resolve()));
    if (this.#admin instanceof GrpcNodeAdmin) this.#admin.close();
    this.#peerClient?.client.close();
  }

  /** Called after every apply: wake map watchers. */
  onApplied(): void {
    this.#queueNotify();
  }

  // ---------------------------------------------------------------- leadership

  #poll(): void {
    if (this.#closed) return;
    const st = this.#host.status(PD_GROUP_ID);
    const leading = st.role === 'leader';
    if (this.#controller && (!leading || st.term !== this.#leaderTerm)) this.#stepDown();
    if (leading && !this.#controller && !this.#becoming) void this.#becomeLeader(st.term);
    const now = Date.now();
    if (!leading) this.#maybeAnnounce(now);
    if (this.#controller && now - this.#lastLoopMs >= (this.#o.scheduleIntervalMs ?? 500)) {
      this.#lastLoopMs = now;
      void this.#controller.tick();
    }
  }

  /**
   * A follower whose client address the replicated state lacks (or has stale) tells the leader, at
   * most once a second; a leader records its own address when it takes office.
   */
  #maybeAnnounce(now: number): void {
    const s = this.state;
    if (this.#announcing || now - this.#lastAnnounceMs < 1000 || s.pdAddresses.get(this.#o.id) === this.address) return;
    const leaderAddress = s.pdLeaderId !== this.#o.id ? s.pdAddresses.get(s.pdLeaderId) : undefined;
    if (leaderAddress === undefined) return;
    this.#announcing = true;
    this.#lastAnnounceMs = now;
    if (this.#peerClient?.address !== leaderAddress) {
      this.#peerClient?.client.close();
      this.#peerClient = {
        address: leaderAddress,
        client: new pdpb.PDClient(leaderAddress, grpc.credentials.createInsecure()),
      };
    }
    this.#peerClient.client.announcePdMember(
      { pdId: this.#o.id, address: this.address },
      new grpc.Metadata(),
      { deadline: Date.now() + 2000 },
      (err, res) => {
        this.#announcing = false;
        const failure = err?.message ?? res?.header?.error?.message;
        if (failure) this.#log.debug({ leaderAddress, err: failure }, 'announcing this PD member failed; will retry');
      },
    );
  }

  /**
   * becomeLeader commits a `leaderChanged` entry of this term before serving: once it applies, every
   * earlier entry has applied here too, so the state the leader serves and schedules from is complete
   * (Raft §8), and map revisions jump above anything the previous leader served.
   */
  async #becomeLeader(term: number): Promise<void> {
    this.#becoming = true;
    try {
      await this.#propose({ type: 'leaderChanged', leaderId: this.#o.id, address: this.address, atMs: Date.now() });
      const want: { replicationFactor?: number; initialShards?: number } = {};
      const cfg = this.state.config;
      if (this.#o.replicationFactor !== undefined && this.#o.replicationFactor !== cfg.replicationFactor) {
        want.replicationFactor = this.#o.replicationFactor;
      }
      if (
        !this.state.bootstrapped &&
        this.#o.initialShards !== undefined &&
        this.#o.initialShards !== cfg.initialShards
      ) {
        want.initialShards = this.#o.initialShards;
      }
      if (Object.keys(want).length > 0) await this.#propose({ type: 'setConfig', config: want });
      const st = this.#host.status(PD_GROUP_ID);
      if (st.role !== 'leader' || st.term !== term || this.#closed) return;
      this.#leaderTerm = term;
      this.#controller = new PdController({
        state: this.state,
        propose: (cmd) => this.#propose(cmd),
        admin: this.#admin,
        now: Date.now,
        scheduler: this.#scheduler,
        operators: this.#operators,
        downTimeoutMs: this.#o.downTimeoutMs ?? 10_000,
        newClusterId: () => Math.floor(Math.random() * 2 ** 48) + 1,
        logger: this.#log,
        onSoftChange: () => this.#queueNotify(),
      });
      this.#revBase = { stateRevision: -1, softAt: 0 };
      this.#log.info({ term }, 'PD leader: serving');
      this.#queueNotify();
    } catch (err) {
      this.#log.warn({ err: String(err) }, 'could not take office as PD leader; will retry');
    } finally {
      this.#becoming = false;
    }
  }

  #stepDown(): void {
    if (!this.#controller) return;
    this.#controller.close();
    this.#controller = undefined;
    this.#log.info({}, 'PD leader: stepped down');
    this.#queueNotify();
  }

  async #propose(cmd: PdCommand): Promise<ApplyResult> {
    let res: ApplyResult;
    try {
      res = (await this.#host.propose<ApplyResult>(PD_GROUP_ID, encodeCommand(cmd), { timeoutMs: 5_000 })).result;
    } catch (err) {
      if (err instanceof RuntimeError && err.code === 'NOT_LEADER') throw this.#notLeader();
      if (err instanceof RuntimeError && (err.code === 'TIMEOUT' || err.code === 'OUTCOME_UNKNOWN'))
        throw new OmniError('TIMEOUT', err.message);
      if (err instanceof RuntimeError) throw new OmniError('UNAVAILABLE', `${err.code}: ${err.message}`);
      throw err;
    }
    return res;
  }

  #notLeader(): OmniError {
    const st = this.#host.status(PD_GROUP_ID);
    return new OmniError('NOT_LEADER', `PD ${this.#o.id} is not the leader`, {
      leaderAddress: this.leaderAddress(),
      leaderNodeId: st.leaderNodeId,
      leaderReplicaId: st.leaderReplicaId,
    });
  }

  /** Proposes and turns a rejected apply into an OmniError. */
  async #must(cmd: PdCommand): Promise<ApplyResult> {
    const r = await this.#propose(cmd);
    if (r.error) throw new OmniError(r.error.code, r.error.message);
    return r;
  }

  // ---------------------------------------------------------------- shard map

  #buildMap(): pdpb.ShardMap {
    const c = this.#controller;
    const soft = c?.softRevision ?? 0;
    if (this.#revBase.stateRevision !== this.state.revision) {
      this.#revBase = { stateRevision: this.state.revision, softAt: soft };
    }
    const revision =
      this.state.revision * SOFT_REVISION_SPAN + Math.min(soft - this.#revBase.softAt, SOFT_REVISION_SPAN - 1);
    return {
      header: { leaderAddress: this.address },
      revision,
      routes: this.#routes(),
      nodeAddresses: this.#nodeAddresses(),
    };
  }

  #routes(): pdpb.ShardRoute[] {
    return this.state.sortedShards().map((shard) => {
      const st = this.#controller?.shardStats.get(shard.id);
      return { shard, leaderReplicaId: st?.leaderReplicaId ?? 0, leaderNodeId: st?.leaderNodeId ?? 0 };
    });
  }

  /** Node id → SERVICE address (routers, NOT_LEADER hints), or → RAFT transport address (peers' Raft). */
  #nodeAddresses(kind: 'service' | 'raft' = 'service'): Record<number, string> {
    const out: Record<number, string> = {};
    for (const n of this.state.nodes.values()) {
      if (n.state !== 'removed') out[n.id] = kind === 'raft' ? n.raftAddress || n.address : n.address;
    }
    return out;
  }

  #queueNotify(): void {
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    setImmediate(() => {
      this.#notifyQueued = false;
      if (this.#watchers.size === 0) return;
      if (!this.#controller) {
        const header = { error: this.#notLeader().toProto(), leaderAddress: this.leaderAddress() };
        for (const w of this.#watchers) {
          w.call.write(pdpb.ShardMap.fromPartial({ header }));
          w.call.end();
        }
        this.#watchers.clear();
        return;
      }
      const map = this.#buildMap();
      for (const w of this.#watchers) {
        if (map.revision <= w.lastRevision) continue;
        w.lastRevision = map.revision;
        w.call.write(map);
      }
    });
  }

  // ---------------------------------------------------------------- service

  #guard(): pdpb.ResponseHeader | undefined {
    if (this.#controller) return undefined;
    return { error: this.#notLeader().toProto(), leaderAddress: this.leaderAddress() };
  }

  #errorHeader(err: unknown): pdpb.ResponseHeader {
    const e = err instanceof OmniError ? err : new OmniError('INTERNAL', String(err), { cause: err });
    if (e.code === 'INTERNAL') this.#log.error({ err: String(err) }, 'PD request failed');
    return { error: e.toProto(), leaderAddress: this.leaderAddress() };
  }

  #unary<Req, Res>(
    codec: { fromPartial(o: never): Res },
    fn: (req: Req) => Promise<object>,
  ): grpc.handleUnaryCall<Req, Res> {
    const make = (o: object) => codec.fromPartial(o as never);
    return (call, cb) => {
      const header = this.#guard();
      if (header) return cb(null, make({ header }));
      fn(call.request).then(
        (body) => cb(null, make({ ...body, header: { leaderAddress: this.address } })),
        (err) => cb(null, make({ header: this.#errorHeader(err) })),
      );
    };
  }

  #ctl(): PdController {
    if (!this.#controller) throw this.#notLeader();
    return this.#controller;
  }

  #operatorInfo(op: OperatorRecord): pdpb.OperatorInfo {
    return {
      id: op.id,
      kind: op.kind,
      shardId: op.shardId,
      state: OPERATOR_STATE[op.state],
      step: op.step,
      reason: op.reason,
      createdMs: op.createdMs,
      updatedMs: op.updatedMs,
      progress: op.state === 'done' ? 1 : (this.#controller?.progressOf(op.id) ?? 0),
    };
  }

  async #startAdminOperator(shardId: number, params: OperatorParams, reason: string): Promise<object> {
    const r = await this.#must({
      type: 'startOperator',
      spec: { shardId, reason, source: 'admin', params },
      atMs: Date.now(),
    });
    return { operator: this.#operatorInfo(r.operator!) };
  }

  #shard(id: number): common.ShardDescriptor {
    const s = this.state.shards.get(id);
    if (!s) throw new OmniError('NOT_FOUND', `shard ${id} is not known`);
    return s;
  }

  #service(): pdpb.PDServer {
    return {
      registerNode: this.#unary(pdpb.RegisterNodeResponse, async (req: pdpb.RegisterNodeRequest) => {
        if (!req.address) throw new OmniError('INVALID_ARGUMENT', 'address is required');
        await this.#must({
          type: 'registerNode',
          nodeId: req.nodeId,
          address: req.address,
          raftAddress: req.raftAddress || req.address,
          atMs: Date.now(),
        });
        this.#ctl().noteAlive(req.nodeId);
        return { clusterId: this.state.clusterId };
      }),
      nodeHeartbeat: this.#unary(pdpb.NodeHeartbeatResponse, async (req: pdpb.NodeHeartbeatRequest) => {
        const node = this.state.nodes.get(req.nodeId);
        if (!node) throw new OmniError('NOT_FOUND', `node ${req.nodeId} is not registered; call RegisterNode`);
        if (node.state === 'removed') throw new OmniError('CONFLICT', `node ${req.nodeId} was removed`);
        this.#ctl().handleNodeHeartbeat(req);
        return {
          operators: [],
          nodeAddresses: this.#nodeAddresses(),
          nodeRaftAddresses: this.#nodeAddresses('raft'),
        };
      }),
      shardHeartbeat: this.#unary(pdpb.ShardHeartbeatResponse, async (req: pdpb.ShardHeartbeatRequest) => {
        await this.#ctl().handleShardHeartbeat(req);
        return { operators: [] };
      }),
      allocIds: this.#unary(pdpb.AllocIdsResponse, async (req: pdpb.AllocIdsRequest) => {
        const count = req.count || 1;
        const r = await this.#must({ type: 'allocIds', count });
        return { first: r.firstId, count };
      }),
      getShardMap: this.#unary(pdpb.ShardMap, async () => this.#buildMap()),
      watchShardMap: (call) => {
        const header = this.#guard();
        if (header) {
          call.write(pdpb.ShardMap.fromPartial({ header }));
          call.end();
          return;
        }
        const map = this.#buildMap();
        const w: Watcher = { call, lastRevision: map.revision };
        this.#watchers.add(w);
        call.on('cancelled', () => this.#watchers.delete(w));
        call.on('close', () => this.#watchers.delete(w));
        call.write(map);
      },
      announcePdMember: this.#unary(pdpb.AnnouncePdMemberResponse, async (req: pdpb.AnnouncePdMemberRequest) => {
        if (!this.#o.peers.has(req.pdId)) {
          throw new OmniError(
            'INVALID_ARGUMENT',
            `PD ${req.pdId} is not a member (members: ${[...this.#o.peers.keys()].join(', ')})`,
          );
        }
        if (req.address === '') throw new OmniError('INVALID_ARGUMENT', 'address must not be empty');
        if (this.state.pdAddresses.get(req.pdId) !== req.address) {
          await this.#must({ type: 'pdMember', pdId: req.pdId, address: req.address });
        }
        return {};
      }),
      getClusterStatus: this.#unary(pdpb.ClusterStatus, async () => {
        const s = this.state;
        const up = (id: number) => s.nodes.get(id)?.state === 'up';
        const rf = s.config.replicationFactor;
        return {
          clusterId: s.clusterId,
          pdLeaderId: this.#o.id,
          pdMembers: [...this.#o.peers.keys()].sort((a, b) => a - b).map((id) => s.pdAddresses.get(id) ?? ''),
          nodeCount: [...s.nodes.values()].filter((n) => n.state !== 'removed').length,
          nodesUp: [...s.nodes.values()].filter((n) => n.state === 'up').length,
          shardCount: s.shards.size,
          shardsHealthy: [...s.shards.values()].filter(
            (d) => d.replicas.filter((r) => isVoter(r) && up(r.nodeId)).length >= rf,
          ).length,
          operatorsRunning: s.activeOperators().length,
          replicationFactor: rf,
        };
      }),
      listNodes: this.#unary(pdpb.ListNodesResponse, async () => {
        const counts = new Map<number, number>();
        for (const d of this.state.shards.values()) {
          for (const r of d.replicas) counts.set(r.nodeId, (counts.get(r.nodeId) ?? 0) + 1);
        }
        const leaders = new Map<number, number>();
        for (const st of this.#ctl().shardStats.values())
          leaders.set(st.leaderNodeId, (leaders.get(st.leaderNodeId) ?? 0) + 1);
        const nodes = [...this.state.nodes.values()]
          .sort((a, b) => a.id - b.id)
          .map((n) => {
            const load = this.#ctl().nodeLoad.get(n.id);
            return {
              id: n.id,
              address: n.address,
              raftAddress: n.raftAddress || n.address,
              state: NODE_STATE[n.state],
              lastHeartbeatMs: load?.lastHeartbeatMs ?? 0,
              shardCount: counts.get(n.id) ?? 0,
              leaderCount: leaders.get(n.id) ?? 0,
              capacityBytes: load?.heartbeat.capacityBytes ?? 0,
              usedBytes: load?.heartbeat.usedBytes ?? 0,
            };
          });
        return { nodes };
      }),
      removeNode: this.#unary(pdpb.RemoveNodeResponse, async (req: pdpb.RemoveNodeRequest) => {
        await this.#must({ type: 'setNodeState', nodeId: req.nodeId, state: 'removed', atMs: Date.now() });
        return {};
      }),
      listShards: this.#unary(pdpb.ListShardsResponse, async () => ({ shards: this.#routes() })),
      listOperators: this.#unary(pdpb.ListOperatorsResponse, async () => ({
        operators: [...this.state.operators.values()].sort((a, b) => a.id - b.id).map((o) => this.#operatorInfo(o)),
      })),
      getOperator: this.#unary(pdpb.OperatorResponse, async (req: pdpb.GetOperatorRequest) => {
        const op = this.state.operators.get(req.operatorId);
        if (!op) throw new OmniError('NOT_FOUND', `operator ${req.operatorId} is not known`);
        return { operator: this.#operatorInfo(op) };
      }),
      splitShard: this.#unary(pdpb.OperatorResponse, async (req: pdpb.SplitShardRequest) => {
        const shard = this.#shard(req.shardId);
        if (req.splitAt !== 0 && (req.splitAt <= shard.start || req.splitAt >= shard.end)) {
          throw new OmniError(
            'INVALID_ARGUMENT',
            `split position ${req.splitAt} is outside [${shard.start}, ${shard.end})`,
          );
        }
        return this.#startAdminOperator(
          shard.id,
          { kind: 'split', splitAt: req.splitAt, newShardId: 0, newReplicaIds: [], fromVersion: 0 },
          'admin split',
        );
      }),
      moveReplica: this.#unary(pdpb.OperatorResponse, async (req: pdpb.MoveReplicaRequest) => {
        const shard = this.#shard(req.shardId);
        const from = shard.replicas.find((r) => r.nodeId === req.fromNodeId);
        if (!from)
          throw new OmniError('INVALID_ARGUMENT', `node ${req.fromNodeId} has no replica of shard ${shard.id}`);
        if (this.state.nodes.get(req.toNodeId)?.state !== 'up') {
          throw new OmniError('INVALID_ARGUMENT', `target node ${req.toNodeId} is not up`);
        }
        if (shard.replicas.some((r) => r.nodeId === req.toNodeId)) {
          throw new OmniError('INVALID_ARGUMENT', `node ${req.toNodeId} already hosts shard ${shard.id}`);
        }
        return this.#startAdminOperator(
          shard.id,
          {
            kind: 'move',
            add: { nodeId: req.toNodeId, replicaId: 0 },
            remove: { nodeId: from.nodeId, replicaId: from.replicaId },
          },
          'admin move',
        );
      }),
      transferLeader: this.#unary(pdpb.OperatorResponse, async (req: pdpb.TransferLeaderRequest) => {
        const shard = this.#shard(req.shardId);
        const to = shard.replicas.find((r) => r.nodeId === req.toNodeId && isVoter(r));
        if (!to) throw new OmniError('INVALID_ARGUMENT', `node ${req.toNodeId} has no voter of shard ${shard.id}`);
        return this.#startAdminOperator(
          shard.id,
          { kind: 'transferLeader', toNodeId: to.nodeId, toReplicaId: to.replicaId },
          'admin transfer',
        );
      }),
    };
  }
}
