import { type ChannelCredentials, credentials as grpcCredentials } from '@grpc/grpc-js';
import { OmniError, pdpb } from '@omnidict/proto';
import { parseAddresses } from './addresses.js';
import { backoffMs, callUnary, sleep, type UnaryInvoker } from './grpcCall.js';
import type { CallOptions } from './results.js';

export interface PdClientOptions {
  /** Every PD replica's address (`host:port`), as an array or a comma-separated string. */
  pd: string[] | string;
  /** Deadline of a call, leader search included. Default 5000 ms. */
  defaultTimeoutMs?: number;
  credentials?: ChannelCredentials;
}

interface WithHeader {
  header?: pdpb.ResponseHeader | undefined;
}

/**
 * PdClient is the admin API of the placement driver. Given all PD addresses it finds the leader
 * itself: a follower's NOT_LEADER (in ResponseHeader.error or as a status) redirects to the hinted
 * leader address; an unreachable replica sends the call to the next one. Admin RPCs are safe to
 * resend to a new leader because a follower never applies them. Errors are OmniErrors; when no
 * replica can be reached, UNAVAILABLE names every address tried.
 */
export class PdClient {
  readonly addresses: readonly string[];
  private readonly defaultTimeoutMs: number;
  private readonly credentials: ChannelCredentials;
  private readonly clients = new Map<string, pdpb.PDClient>();
  /** Where calls go first: the last known leader. */
  private leader: string;

  constructor(opts: PdClientOptions) {
    this.addresses = parseAddresses('placement driver', opts.pd);
    this.leader = this.addresses[0]!;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 5000;
    this.credentials = opts.credentials ?? grpcCredentials.createInsecure();
  }

  /** The address calls currently go to first. */
  get leaderAddress(): string {
    return this.leader;
  }

  async listNodes(opts: CallOptions = {}): Promise<pdpb.NodeInfo[]> {
    return (await this.call('ListNodes', opts, (c) => c.listNodes.bind(c, {}))).nodes;
  }

  async removeNode(nodeId: number, opts: CallOptions = {}): Promise<void> {
    await this.call('RemoveNode', opts, (c) => c.removeNode.bind(c, { nodeId }));
  }

  async listShards(opts: CallOptions = {}): Promise<pdpb.ShardRoute[]> {
    return (await this.call('ListShards', opts, (c) => c.listShards.bind(c, {}))).shards;
  }

  /** `splitAt` 0 (the default) splits at the shard's median key position. */
  async splitShard(shardId: number, splitAt = 0, opts: CallOptions = {}): Promise<pdpb.OperatorInfo> {
    return operatorOf(await this.call('SplitShard', opts, (c) => c.splitShard.bind(c, { shardId, splitAt })));
  }

  async moveReplica(
    shardId: number,
    fromNodeId: number,
    toNodeId: number,
    opts: CallOptions = {},
  ): Promise<pdpb.OperatorInfo> {
    const req: pdpb.MoveReplicaRequest = { shardId, fromNodeId, toNodeId };
    return operatorOf(await this.call('MoveReplica', opts, (c) => c.moveReplica.bind(c, req)));
  }

  async transferLeader(shardId: number, toNodeId: number, opts: CallOptions = {}): Promise<pdpb.OperatorInfo> {
    const req: pdpb.TransferLeaderRequest = { shardId, toNodeId };
    return operatorOf(await this.call('TransferLeader', opts, (c) => c.transferLeader.bind(c, req)));
  }

  async listOperators(opts: CallOptions = {}): Promise<pdpb.OperatorInfo[]> {
    return (await this.call('ListOperators', opts, (c) => c.listOperators.bind(c, {}))).operators;
  }

  async getOperator(operatorId: number, opts: CallOptions = {}): Promise<pdpb.OperatorInfo> {
    return operatorOf(await this.call('GetOperator', opts, (c) => c.getOperator.bind(c, { operatorId })));
  }

  async clusterStatus(opts: CallOptions = {}): Promise<pdpb.ClusterStatus> {
    return this.call('GetClusterStatus', opts, (c) => c.getClusterStatus.bind(c, {}));
  }

  async getShardMap(opts: CallOptions = {}): Promise<pdpb.ShardMap> {
    return this.call('GetShardMap', opts, (c) => c.getShardMap.bind(c, {}));
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private clientFor(addr: string): pdpb.PDClient {
    let c = this.clients.get(addr);
    if (!c) {
      c = new pdpb.PDClient(addr, this.credentials);
      this.clients.set(addr, c);
    }
    return c;
  }

  /**
   * call sends one RPC to the leader, following NOT_LEADER hints and skipping unreachable replicas
   * until the deadline. A full round over all addresses without success sleeps a backoff step, so an
   * election in progress is waited out rather than spun on.
   */
  private async call<Res extends WithHeader>(
    method: string,
    opts: CallOptions,
    bind: (c: pdpb.PDClient) => UnaryInvoker<Res>,
  ): Promise<Res> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const deadlineMs = Date.now() + timeoutMs;
    const failures = new Map<string, string>();
    const n = this.addresses.length;
    let target = this.leader;
    let misses = 0;
    for (let hops = 0; ; hops++) {
      let err: OmniError;
      try {
        const res = await callUnary(bind(this.clientFor(target)), deadlineMs, `placement driver ${target}`, method);
        const pbErr = res.header?.error;
        if (!pbErr || pbErr.code === '') {
          this.leader = target;
          return res;
        }
        err = OmniError.fromProto(pbErr);
        if (err.code === 'NOT_LEADER' && !err.details.leaderAddress && res.header?.leaderAddress) {
          err = new OmniError('NOT_LEADER', err.message, { ...err.details, leaderAddress: res.header.leaderAddress });
        }
      } catch (e) {
        if (!(e instanceof OmniError)) throw e;
        err = e;
      }
      if (err.code === 'TIMEOUT' || Date.now() >= deadlineMs) {
        const tried = failures.size > 0 ? ` (${describeFailures(failures)})` : '';
        throw new OmniError(
          'TIMEOUT',
          `${method}: no answer from the placement driver within ${timeoutMs} ms${tried}`,
          {
            cause: err,
          },
        );
      }
      if (err.code !== 'NOT_LEADER' && err.code !== 'UNAVAILABLE') throw err;
      failures.set(target, err.message);
      const hint = err.code === 'NOT_LEADER' ? err.details.leaderAddress : undefined;
      // Follow a hint, but not forever: two followers may point at each other during an election.
      if (hint && hint !== target && hops < 4 * n) {
        target = hint;
        continue;
      }
      misses++;
      if (misses % n === 0) {
        // A full round without an answer: give up once every replica was unreachable twice in a
        // row, otherwise wait out a leader election.
        const waitMs = backoffMs(misses / n, 100);
        if (misses >= 2 * n || Date.now() + waitMs >= deadlineMs) {
          throw new OmniError('UNAVAILABLE', `no placement driver leader reachable: ${describeFailures(failures)}`, {
            cause: err,
          });
        }
        await sleep(waitMs);
      }
      const i = this.addresses.indexOf(target);
      target = this.addresses[(i + 1) % n]!;
    }
  }
}

function operatorOf(res: pdpb.OperatorResponse): pdpb.OperatorInfo {
  if (!res.operator) throw new OmniError('INTERNAL', 'placement driver answered without an operator');
  return res.operator;
}

function describeFailures(failures: Map<string, string>): string {
  return [...failures].map(([addr, msg]) => (msg.includes(addr) ? msg : `${addr}: ${msg}`)).join('; ');
}
