import { statfs } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { fromServiceError, OmniError, pdpb } from '@omnidict/proto';
import type { Logger } from '@omnidict/raft/runtime';
import type { Store } from '../store/store.js';

export interface PdClientOptions {
  /** Service addresses of ALL PD replicas (any order; the leader is found by following hints). */
  readonly pdAddresses: readonly string[];
  readonly nodeId: number;
  /** This node's SERVICE address (NodeKV/NodeAdmin), as routers and PD reach it. */
  readonly serviceAddress: string;
  /** This node's RAFT transport address, as peer nodes reach it. */
  readonly raftAddress: string;
  readonly store: Store;
  readonly logger: Logger;
  /** For capacity_bytes (the file system holding it). */
  readonly dataDir?: string;
  /** Node and shard heartbeat period. Default 1000 ms. */
  readonly heartbeatMs?: number;
  /** Deadline of one PD call. Default 3000 ms. */
  readonly callTimeoutMs?: number;
}

type PdMethod = 'registerNode' | 'nodeHeartbeat' | 'shardHeartbeat';

/**
 * PdClient is a storage node's link to the placement driver: RegisterNode, then every
 * `heartbeatMs` a NodeHeartbeat (counts, capacity, rates) and a ShardHeartbeat listing every shard
 * this node leads (descriptor, leader, size, rates, median position, replica match, applied index).
 *
 * Leader discovery: calls go to the last known PD leader; a NOT_LEADER answer's
 * `header.leader_address` is followed (once per call per hint), an unreachable replica or one
 * without a hint moves on to the next address. Every answer's `node_addresses` (service) and
 * `node_raft_addresses` (Raft) teach the store its peers. A NOT_FOUND heartbeat (PD does not know
 * this node, e.g. after a PD data loss) registers again. Operators are not in the answers: PD calls
 * NodeAdmin directly.
 */
export class PdClient {
  readonly #o: PdClientOptions;
  readonly #clients = new Map<string, pdpb.PDClient>();
  readonly #log: Logger;
  #leader: string;
  #next = 0;
  #registered = false;
  #timers: NodeJS.Timeout[] = [];
  /** In-flight node and shard rounds: each loop runs at most one at a time, independently. */
  #running: { node?: Promise<void> | undefined; shards?: Promise<void> | undefined } = {};
  #closed = false;
  #last = { atMs: Date.now(), reads: 0, writes: 0 };
  #lastErrorLogged = '';

  constructor(options: PdClientOptions) {
    if (options.pdAddresses.length === 0) throw new OmniError('INVALID_ARGUMENT', 'no PD addresses given');
    this.#o = options;
    this.#log = options.logger.child({ component: 'pdClient' });
    this.#leader = options.pdAddresses[0]!;
  }

  /** True once RegisterNode succeeded (reset when PD no longer knows the node). */
  get registered(): boolean {
    return this.#registered;
  }

  /** The PD address calls currently go to. */
  get leaderAddress(): string {
    return this.#leader;
  }

  /**
   * Starts two loops, each every `heartbeatMs` with at most one round in flight: the node loop
   * (register if needed, node heartbeat) and the shard loop (shard heartbeat). They are separate so
   * a slow shard report (PD proposing new descriptors) never delays the liveness signal.
   */
  start(): void {
    const period = this.#o.heartbeatMs ?? 1000;
    const loop = (kind: 'node' | 'shards', round: () => Promise<void>) => () => {
      if (this.#closed || this.#running[kind] !== undefined) return;
      this.#running[kind] = round()
        .catch((err: unknown) => this.#logFailure(err))
        .finally(() => {
          this.#running[kind] = undefined;
        });
    };
    const node = loop('node', () => this.nodeRound());
    const shards = loop('shards', () => this.shardRound());
    this.#timers = [setInterval(node, period), setInterval(shards, period)];
    node();
  }

  /** One round of both loops, in order (tests). */
  async round(): Promise<void> {
    await this.nodeRound();
    await this.shardRound();
  }

  /** Registers when needed, then sends one node heartbeat and learns peer addresses from the answer. */
  async nodeRound(): Promise<void> {
    if (!this.#registered) {
      const res = await this.#call<pdpb.RegisterNodeResponse>('registerNode', {
        nodeId: this.#o.nodeId,
        address: this.#o.serviceAddress,
        raftAddress: this.#o.raftAddress,
      });
      this.#registered = true;
      this.#lastErrorLogged = '';
      this.#log.info(
        {
          pd: this.#leader,
          clusterId: res.clusterId,
          address: this.#o.serviceAddress,
          raftAddress: this.#o.raftAddress,
        },
        'registered with PD',
      );
    }
    const stats = this.#o.store.nodeStats();
    const now = Date.now();
    const secs = Math.max(0.001, (now - this.#last.atMs) / 1000);
    const req: pdpb.NodeHeartbeatRequest = {
      nodeId: this.#o.nodeId,
      shardCount: stats.shardCount,
      leaderCount: stats.leaderCount,
      capacityBytes: await this.#capacityBytes(),
      usedBytes: stats.usedBytes,
      writesPerSec: (stats.writes - this.#last.writes) / secs,
      readsPerSec: (stats.reads - this.#last.reads) / secs,
    };
    this.#last = { atMs: now, reads: stats.reads, writes: stats.writes };
    let hb: pdpb.NodeHeartbeatResponse;
    try {
      hb = await this.#call<pdpb.NodeHeartbeatResponse>('nodeHeartbeat', req);
    } catch (err) {
      if (err instanceof OmniError && err.code === 'NOT_FOUND') {
        this.#registered = false;
        this.#log.warn({ pd: this.#leader }, 'PD does not know this node; registering again');
      }
      throw err;
    }
    this.#o.store.learnServiceAddresses(hb.nodeAddresses);
    this.#o.store.learnPeerAddresses(withoutSelf(hb.nodeRaftAddresses, this.#o.nodeId));
    this.#lastErrorLogged = '';
  }

  /** Sends one shard heartbeat listing every shard this node leads (nothing before registration). */
  async shardRound(): Promise<void> {
    if (!this.#registered) return;
    const shards = await this.#o.store.shardReports(Date.now());
    if (shards.length > 0 && !this.#closed) {
      await this.#call<pdpb.ShardHeartbeatResponse>('shardHeartbeat', { nodeId: this.#o.nodeId, shards });
    }
    this.#lastErrorLogged = '';
  }

  /** Stops the loop and waits for a round in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    await Promise.all([this.#running.node, this.#running.shards]);
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  #logFailure(err: unknown): void {
    const e = err instanceof OmniError ? err : new OmniError('INTERNAL', String(err));
    const text = `${e.code}: ${e.message}`;
    // One warning per distinct failure; a PD outage does not flood the log every second.
    if (text !== this.#lastErrorLogged) this.#log.warn({ pd: this.#leader, err: text }, 'PD heartbeat round failed');
    this.#lastErrorLogged = text;
  }

  async #capacityBytes(): Promise<number> {
    if (this.#o.dataDir === undefined) return 0;
    try {
      const s = await statfs(this.#o.dataDir);
      return s.bsize * s.blocks;
    } catch {
      return 0;
    }
  }

  /**
   * Calls the PD leader. Tries at most 2 × (number of PD replicas) addresses: hints first, then the
   * replicas in order. Rejects with the last error (an OmniError).
   */
  async #call<R extends { header?: pdpb.ResponseHeader | undefined }>(method: PdMethod, req: object): Promise<R> {
    const all = this.#o.pdAddresses;
    let last: OmniError = new OmniError('UNAVAILABLE', 'no PD replica answered');
    for (let attempt = 0; attempt < all.length * 2 && !this.#closed; attempt++) {
      const address = this.#leader;
      let res: R;
      try {
        res = await this.#unary<R>(address, method, req);
      } catch (err) {
        last = err instanceof OmniError ? err : new OmniError('UNAVAILABLE', String(err));
        this.#moveOn();
        continue;
      }
      const e = res.header?.error;
      if (e === undefined || e.code === '') return res;
      last = OmniError.fromProto(e);
      if (last.code === 'NOT_LEADER') {
        const hint = res.header?.leaderAddress || last.details.leaderAddress || '';
        if (hint !== '' && hint !== address) this.#leader = hint;
        else this.#moveOn();
        continue;
      }
      throw last;
    }
    throw last;
  }

  #moveOn(): void {
    const all = this.#o.pdAddresses;
    const i = all.indexOf(this.#leader);
    this.#next = i >= 0 ? (i + 1) % all.length : this.#next % all.length;
    this.#leader = all[this.#next]!;
  }

  #unary<R>(address: string, method: PdMethod, req: object): Promise<R> {
    let client = this.#clients.get(address);
    if (client === undefined) {
      client = new pdpb.PDClient(address, grpc.credentials.createInsecure());
      this.#clients.set(address, client);
    }
    const c = client as unknown as Record<
      PdMethod,
      (
        req: object,
        md: grpc.Metadata,
        opts: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null, res: R) => void,
      ) => void
    >;
    const deadline = new Date(Date.now() + (this.#o.callTimeoutMs ?? 3000));
    return new Promise<R>((resolve, reject) => {
      c[method].call(client, req, new grpc.Metadata(), { deadline }, (err, res) =>
        err ? reject(fromServiceError(err)) : resolve(res),
      );
    });
  }
}

function withoutSelf(addresses: Record<number, string>, self: number): Record<number, string> {
  const out: Record<number, string> = {};
  for (const [id, a] of Object.entries(addresses)) if (Number(id) !== self) out[Number(id)] = a;
  return out;
}
