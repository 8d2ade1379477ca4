import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type common, nodepb, OmniError } from '@omnidict/proto';
import type { Logger } from '@omnidict/raft/runtime';
import { type NodeHandle, startNode } from '../../src/index.js';
import type { StoreRaftOptions } from '../../src/nodeServer.js';

/** A NodeKV client over one Execute stream, matching responses to requests by id. */
export class NodeKvClient {
  readonly #client: nodepb.NodeKVClient;
  readonly #stream: grpc.ClientDuplexStream<nodepb.NodeRequestBatch, nodepb.NodeResponseBatch>;
  readonly #waiting = new Map<number, (r: nodepb.NodeResponse) => void>();
  #nextId = 1;

  /** `target`: a port on 127.0.0.1, or a host:port address. */
  constructor(target: number | string) {
    const address = typeof target === 'number' ? `127.0.0.1:${target}` : target;
    this.#client = new nodepb.NodeKVClient(address, grpc.credentials.createInsecure());
    this.#stream = this.#client.execute();
    this.#stream.on('data', (batch: nodepb.NodeResponseBatch) => {
      for (const r of batch.responses) {
        this.#waiting.get(r.id)?.(r);
        this.#waiting.delete(r.id);
      }
    });
    this.#stream.on('error', () => {});
  }

  /** Sends the requests as ONE batch; resolves with the responses in request order. */
  batch(reqs: Array<Omit<nodepb.NodeRequest, 'id'>>): Promise<nodepb.NodeResponse[]> {
    const withIds = reqs.map((r) => ({ ...r, id: this.#nextId++ }));
    const done = Promise.all(
      withIds.map((r) => new Promise<nodepb.NodeResponse>((resolve) => this.#waiting.set(r.id, resolve))),
    );
    this.#stream.write({ requests: withIds });
    return done;
  }

  async one(req: Omit<nodepb.NodeRequest, 'id'>): Promise<nodepb.NodeResponse> {
    const [r] = await this.batch([req]);
    return r as nodepb.NodeResponse;
  }

  close(): void {
    this.#stream.end();
    this.#client.close();
  }
}

export const FAST_RAFT = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2 } as const;

export interface TestNode {
  nodeId: number;
  dir: string;
  handle: NodeHandle;
  kv: NodeKvClient;
  admin: nodepb.NodeAdminClient;
}

/** In-process storage nodes over real gRPC on 127.0.0.1 (ports picked by the OS). */
export class TestCluster {
  readonly nodes = new Map<number, TestNode>();

  async startNode(
    nodeId: number,
    dir = mkdtempSync(join(tmpdir(), `omnidict-node${nodeId}-`)),
    opts: { raft?: StoreRaftOptions; sweepIntervalMs?: number; logger?: Logger } = {},
  ): Promise<TestNode> {
    const handle = await startNode({
      nodeId,
      listen: '127.0.0.1:0',
      raftListen: '127.0.0.1:0',
      dataDir: dir,
      raft: opts.raft ?? FAST_RAFT,
      sweepIntervalMs: opts.sweepIntervalMs ?? 100,
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
    });
    const node: TestNode = {
      nodeId,
      dir,
      handle,
      kv: new NodeKvClient(handle.port),
      admin: new nodepb.NodeAdminClient(`127.0.0.1:${handle.port}`, grpc.credentials.createInsecure()),
    };
    this.nodes.set(nodeId, node);
    return node;
  }

  node(nodeId: number): TestNode {
    const n = this.nodes.get(nodeId);
    if (n === undefined) throw new Error(`no node ${nodeId}`);
    return n;
  }

  raftAddresses(): Record<number, string> {
    const out: Record<number, string> = {};
    for (const [id, n] of this.nodes) out[id] = `127.0.0.1:${n.handle.raftPort}`;
    return out;
  }

  /**
   * Creates the replicas in descriptor order. `campaignOn`: the node asked to campaign at once
   * (create it last); `holdOthersMs`: how long the other replicas hold their own elections.
   */
  async createShard(
    d: common.ShardDescriptor,
    uninitializedOn: number[] = [],
    campaignOn?: number,
    holdOthersMs = 0,
  ): Promise<void> {
    for (const r of d.replicas) {
      const campaign = r.nodeId === campaignOn;
      await this.createShardOn(r.nodeId, d, {
        uninitialized: uninitializedOn.includes(r.nodeId),
        campaign,
        holdElectionMs: campaign ? 0 : holdOthersMs,
      });
    }
  }

  /** CreateShard on one node; throws the node's error. */
  async createShardOn(
    nodeId: number,
    d: common.ShardDescriptor,
    opts: { uninitialized?: boolean; campaign?: boolean; holdElectionMs?: number } = {},
  ): Promise<void> {
    const res = await unary<nodepb.CreateShardResponse>((cb) =>
      this.node(nodeId).admin.createShard(
        {
          shard: d,
          nodeAddresses: this.raftAddresses(),
          uninitialized: opts.uninitialized ?? false,
          campaign: opts.campaign ?? false,
          holdElectionMs: opts.holdElectionMs ?? 0,
        },
        cb,
      ),
    );
    if (res.error) throw OmniError.fromProto(res.error);
  }

  /** The node currently leading `shardId` (waits for an election). */
  async leaderOf(shardId: number, timeoutMs = 10_000): Promise<TestNode> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const n of this.nodes.values()) {
        const host = n.handle.store.host;
        if (host.hasGroup(shardId) && host.status(shardId).role === 'leader') return n;
      }
      if (Date.now() > deadline) throw new Error(`no leader for shard ${shardId}`);
      await sleep(20);
    }
  }

  descriptorOn(nodeId: number, shardId: number): common.ShardDescriptor {
    const sm = this.node(nodeId).handle.store.replicas.get(shardId);
    if (sm === undefined) throw new Error(`node ${nodeId} has no shard ${shardId}`);
    return sm.descriptor;
  }

  async stopNode(nodeId: number, opts: { abrupt?: boolean } = {}): Promise<string> {
    const n = this.node(nodeId);
    n.kv.close();
    n.admin.close();
    await n.handle.close(opts);
    this.nodes.delete(nodeId);
    return n.dir;
  }

  async close(): Promise<void> {
    for (const id of [...this.nodes.keys()]) {
      const dir = await this.stopNode(id);
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

export function unary<T>(fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function fullShard(id: number, nodes: number[], start = 0, end = 2 ** 32): common.ShardDescriptor {
  return {
    id,
    start,
    end,
    epoch: { version: 1, confVer: 1 },
    replicas: nodes.map((nodeId, i) => ({ replicaId: id * 100 + i + 1, nodeId, role: 0 })),
  };
}
