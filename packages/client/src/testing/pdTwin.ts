import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { OmniError, pdpb } from '@omnidict/proto';

interface PdState {
  nodes: pdpb.NodeInfo[];
  shards: pdpb.ShardRoute[];
  operators: pdpb.OperatorInfo[];
  nextOperatorId: number;
  /** GetOperator polls a running operator takes to finish; a move to `failToNodeId` fails. */
  pollsToFinish: number;
  failToNodeId: number;
}

/**
 * PdTwin is an in-memory placement driver group for tests: `replicas` grpc-js servers on 127.0.0.1
 * sharing one state, of which only `leaderIndex` answers; the others reply NOT_LEADER with the
 * leader's address in ResponseHeader (like a PD follower). Operators advance one step per poll.
 */
export class PdTwin {
  leaderIndex = 0;
  /** Calls received per replica address. */
  readonly calls = new Map<string, number>();
  readonly state: PdState;

  private constructor(
    private readonly servers: Server[],
    readonly addresses: string[],
  ) {
    this.state = {
      nodes: [1, 2, 3, 4].map((id) => ({
        id,
        address: `127.0.0.1:${20160 + id}`,
        state: id === 4 ? pdpb.NodeState.NODE_STATE_DOWN : pdpb.NodeState.NODE_STATE_UP,
        lastHeartbeatMs: Date.now(),
        shardCount: 2,
        leaderCount: id === 4 ? 0 : 1,
        capacityBytes: 100 * 2 ** 30,
        usedBytes: 2 ** 20 * id,
      })),
      shards: [1, 2].map((id) => ({
        shard: {
          id,
          start: id === 1 ? 0 : 2 ** 31,
          end: id === 1 ? 2 ** 31 : 2 ** 32,
          epoch: { version: 1, confVer: 1 },
          replicas: [1, 2, 3].map((n) => ({ replicaId: id * 10 + n, nodeId: n, role: 0 })),
        },
        leaderReplicaId: id * 10 + 1,
        leaderNodeId: 1,
      })),
      operators: [],
      nextOperatorId: 1,
      pollsToFinish: 3,
      failToNodeId: 99,
    };
  }

  static async start(replicas = 3): Promise<PdTwin> {
    const servers: Server[] = [];
    const addresses: string[] = [];
    for (let i = 0; i < replicas; i++) {
      const server = new Server();
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      );
      servers.push(server);
      addresses.push(`127.0.0.1:${port}`);
    }
    const twin = new PdTwin(servers, addresses);
    servers.forEach((s, i) => {
      s.addService(pdpb.PDService, twin.handlers(i));
    });
    return twin;
  }

  callCount(address: string): number {
    return this.calls.get(address) ?? 0;
  }

  async stop(): Promise<void> {
    for (const s of this.servers) s.forceShutdown();
  }

  private shard(id: number): pdpb.ShardRoute {
    const s = this.state.shards.find((r) => r.shard?.id === id);
    if (!s) throw new OmniError('NOT_FOUND', `shard ${id} not found`);
    return s;
  }

  private node(id: number): pdpb.NodeInfo {
    const n = this.state.nodes.find((x) => x.id === id);
    if (!n) throw new OmniError('NOT_FOUND', `node ${id} not found`);
    return n;
  }

  private addOperator(kind: string, shardId: number, step: string): pdpb.OperatorResponse {
    if (
      this.state.operators.some((o) => o.shardId === shardId && o.state <= pdpb.OperatorState.OPERATOR_STATE_RUNNING)
    ) {
      throw new OmniError('CONFLICT', `an operator already runs on shard ${shardId}`);
    }
    const now = Date.now();
    const op: pdpb.OperatorInfo = {
      id: this.state.nextOperatorId++,
      kind,
      shardId,
      state: pdpb.OperatorState.OPERATOR_STATE_RUNNING,
      step,
      reason: 'admin',
      createdMs: now,
      updatedMs: now,
      progress: 0,
    };
    this.state.operators.push(op);
    return { operator: op };
  }

  private advance(op: pdpb.OperatorInfo, failing: boolean): void {
    if (op.state !== pdpb.OperatorState.OPERATOR_STATE_RUNNING) return;
    op.progress = Math.min(1, op.progress + 1 / this.state.pollsToFinish);
    op.updatedMs = Date.now();
    op.step = op.progress < 1 ? 'catching up learner' : 'done';
    if (failing && op.progress >= 0.5) {
      op.state = pdpb.OperatorState.OPERATOR_STATE_FAILED;
      op.step = 'add learner';
      op.reason = 'target node is down';
    } else if (op.progress >= 1) op.state = pdpb.OperatorState.OPERATOR_STATE_DONE;
  }

  private readonly failingOps = new Set<number>();

  private handlers(index: number): UntypedServiceImplementation {
    const self = this;
    const addr = this.addresses[index]!;
    function unary<Req, Res>(codec: { fromPartial(p: object): Res }, fn: (req: Req) => object) {
      return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => {
        self.calls.set(addr, self.callCount(addr) + 1);
        const leader = self.addresses[self.leaderIndex]!;
        if (index !== self.leaderIndex) {
          const header: pdpb.ResponseHeader = {
            error: new OmniError('NOT_LEADER', `pd ${addr} is not the leader`).toProto(),
            leaderAddress: leader,
          };
          cb(null, codec.fromPartial({ header }));
          return;
        }
        try {
          cb(null, codec.fromPartial({ header: { leaderAddress: leader }, ...fn(call.request) }));
        } catch (err) {
          const e = err instanceof OmniError ? err : new OmniError('INTERNAL', String(err));
          cb(null, codec.fromPartial({ header: { error: e.toProto(), leaderAddress: leader } }));
        }
      };
    }
    const s = this.state;
    const impl: { [K in keyof pdpb.PDServer]?: unknown } = {
      listNodes: unary(pdpb.ListNodesResponse, () => ({ nodes: s.nodes })),
      removeNode: unary(pdpb.RemoveNodeResponse, (r: pdpb.RemoveNodeRequest) => {
        this.node(r.nodeId).state = pdpb.NodeState.NODE_STATE_REMOVED;
        return {};
      }),
      listShards: unary(pdpb.ListShardsResponse, () => ({ shards: s.shards })),
      listOperators: unary(pdpb.ListOperatorsResponse, () => ({ operators: s.operators })),
      splitShard: unary(pdpb.OperatorResponse, (r: pdpb.SplitShardRequest) =>
        this.addOperator('split', this.shard(r.shardId).shard!.id, 'split'),
      ),
      moveReplica: unary(pdpb.OperatorResponse, (r: pdpb.MoveReplicaRequest) => {
        this.shard(r.shardId);
        this.node(r.fromNodeId);
        const res = this.addOperator('move', r.shardId, 'add learner');
        if (r.toNodeId === s.failToNodeId) this.failingOps.add(res.operator!.id);
        return res;
      }),
      transferLeader: unary(pdpb.OperatorResponse, (r: pdpb.TransferLeaderRequest) =>
        this.addOperator('transfer-leader', this.shard(r.shardId).shard!.id, 'transfer leader'),
      ),
      getOperator: unary(pdpb.OperatorResponse, (r: pdpb.GetOperatorRequest) => {
        const op = s.operators.find((o) => o.id === r.operatorId);
        if (!op) throw new OmniError('NOT_FOUND', `operator ${r.operatorId} not found`);
        this.advance(op, this.failingOps.has(op.id));
        return { operator: op };
      }),
      getClusterStatus: unary(
        pdpb.ClusterStatus,
        (): Omit<pdpb.ClusterStatus, 'header'> => ({
          clusterId: 7,
          pdLeaderId: this.leaderIndex + 1,
          pdMembers: this.addresses,
          nodeCount: s.nodes.length,
          nodesUp: s.nodes.filter((n) => n.state === pdpb.NodeState.NODE_STATE_UP).length,
          shardCount: s.shards.length,
          shardsHealthy: s.shards.length,
          operatorsRunning: s.operators.filter((o) => o.state === pdpb.OperatorState.OPERATOR_STATE_RUNNING).length,
          replicationFactor: 3,
        }),
      ),
      getShardMap: unary(
        pdpb.ShardMap,
        (): Omit<pdpb.ShardMap, 'header'> => ({
          revision: 1,
          routes: s.shards,
          nodeAddresses: Object.fromEntries(s.nodes.map((n) => [n.id, n.address])),
        }),
      ),
    };
    return impl as UntypedServiceImplementation;
  }
}
