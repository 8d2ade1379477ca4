import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type PdHandle, startPd } from '@omnidict/placement';
import { common, type nodepb, OmniError, pdpb, ringPosition } from '@omnidict/proto';
import { type NodeHandle, startNode } from '../../src/index.js';
import { FAST_RAFT, NodeKvClient, sleep } from './testCluster.js';

const VOTER_ROLE = common.ReplicaRole.REPLICA_ROLE_VOTER;

/**
 * PdCluster: 3 PD replicas and N storage nodes in this process, over real gRPC on 127.0.0.1 (ports
 * picked by the OS), wired the way the binaries are: nodes know only the PD service addresses and
 * learn everything else from PD.
 */
export interface PdClusterOptions {
  readonly shards?: number;
  readonly downTimeoutMs?: number;
  readonly replaceDownAfterMs?: number;
}

export class PdCluster {
  readonly pds: PdHandle[] = [];
  readonly nodes = new Map<number, { handle: NodeHandle; dir: string }>();
  readonly #dirs: string[] = [];
  readonly pdClient = new TestPdClient([]);

  static async start(nodeCount: number, o: PdClusterOptions = {}): Promise<PdCluster> {
    const c = new PdCluster();
    const peers = new Map([1, 2, 3].map((id) => [id, '127.0.0.1:0']));
    for (const id of [1, 2, 3]) {
      c.pds.push(
        await startPd({
          id,
          listen: '127.0.0.1:0',
          peers,
          raftListen: '127.0.0.1:0',
          tickMs: 20,
          scheduleIntervalMs: 100,
          replicationFactor: 3,
          initialShards: o.shards ?? 8,
          downTimeoutMs: o.downTimeoutMs ?? 60_000,
          scheduler: { replaceDownAfterMs: o.replaceDownAfterMs ?? 60_000, maxOperators: 4 },
          operators: { retryMs: 200 },
        }),
      );
    }
    for (const a of c.pds) for (const b of c.pds) if (a !== b) a.setRaftPeer(b.id, b.raftAddress);
    c.pdClient.addresses = c.pds.map((p) => p.address);
    for (let id = 1; id <= nodeCount; id++) await c.startNode(id);
    return c;
  }

  async startNode(nodeId: number): Promise<NodeHandle> {
    const dir = mkdtempSync(join(tmpdir(), `omnidict-pdnode${nodeId}-`));
    this.#dirs.push(dir);
    const handle = await startNode({
      nodeId,
      listen: '127.0.0.1:0',
      raftListen: '127.0.0.1:0',
      dataDir: dir,
      raft: FAST_RAFT,
      sweepIntervalMs: 0,
      pd: this.pds.map((p) => p.address),
      pdHeartbeatMs: 100,
    });
    this.nodes.set(nodeId, { handle, dir });
    return handle;
  }

  /** Closes a node; `abrupt` = a crash (no leadership hand-over, no more heartbeats). */
  async stopNode(nodeId: number, opts: { abrupt?: boolean } = {}): Promise<void> {
    const n = this.nodes.get(nodeId);
    if (n === undefined) return;
    this.nodes.delete(nodeId);
    await n.handle.close(opts);
  }

  leaderPd(): PdHandle | undefined {
    return this.pds.find((p) => p.isLeader());
  }

  shardMap(): Promise<pdpb.ShardMap> {
    return this.pdClient.call<pdpb.ShardMap>((c, cb) => c.getShardMap({}, cb));
  }

  /**
   * PD's view and every live node's own view, for a timeout message that explains itself: nodes,
   * operators (active ones and the most recent finished ones, with state, step, reason and params),
   * each shard's descriptor as PD knows it, and each local replica's role, leader, term and indexes.
   */
  describe(recentOperators = 12): string {
    const pd = this.leaderPd();
    if (pd === undefined) return 'no PD leader';
    const s = pd.state;
    const lines: string[] = [];
    lines.push(`PD leader ${pd.id}; nodes: ${[...s.nodes.values()].map((n) => `${n.id}=${n.state}`).join(' ')}`);
    const ops = [...s.operators.values()].sort((a, b) => a.id - b.id);
    const active = ops.filter((o) => o.state === 'pending' || o.state === 'running');
    const finished = ops.filter((o) => o.state === 'done' || o.state === 'failed').slice(-recentOperators);
    lines.push(`operators (${active.length} active, last ${finished.length} finished):`);
    for (const o of [...active, ...finished]) {
      lines.push(
        `  #${o.id} ${o.kind} shard ${o.shardId} ${o.state} step=${o.step || '-'} params=${JSON.stringify(o.params)}` +
          ` age=${o.updatedMs - o.createdMs}ms reason=${o.reason}`,
      );
    }
    lines.push('shards (PD):');
    for (const d of [...s.shards.values()].sort((a, b) => a.id - b.id)) {
      const replicas = d.replicas.map((r) => `${r.replicaId}@n${r.nodeId}${r.role === VOTER_ROLE ? '' : '(learner)'}`);
      lines.push(`  ${d.id} v${d.epoch?.version}/c${d.epoch?.confVer} [${replicas.join(', ')}]`);
    }
    lines.push('replicas (nodes):');
    for (const [nodeId, n] of [...this.nodes].sort((a, b) => a[0] - b[0])) {
      const host = n.handle.store.host;
      const groups = host.groupIds().sort((a, b) => a - b);
      const parts = groups.map((g) => {
        const st = host.status(g);
        return `${g}/${st.replicaId}:${st.role[0]} lead=${st.leaderReplicaId} t${st.term} c${st.commitIndex} a${st.appliedIndex}`;
      });
      lines.push(`  n${nodeId}: ${parts.join('; ')}`);
    }
    return lines.join('\n');
  }

  async close(): Promise<void> {
    this.pdClient.close();
    for (const id of [...this.nodes.keys()]) await this.stopNode(id);
    for (const p of this.pds) await p.close();
    for (const d of this.#dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** A PD client for tests that follows NOT_LEADER hints and tries every replica in turn. */
export class TestPdClient {
  readonly #clients = new Map<string, pdpb.PDClient>();

  constructor(public addresses: string[]) {}

  async call<Res extends { header?: pdpb.ResponseHeader | undefined }>(
    method: (c: pdpb.PDClient, cb: (err: grpc.ServiceError | null, res: Res) => void) => void,
    deadlineMs = 15_000,
  ): Promise<Res> {
    const end = Date.now() + deadlineMs;
    let i = 0;
    let next = this.addresses[0] ?? '';
    while (Date.now() < end) {
      const address = next;
      const res = await new Promise<Res | undefined>((resolve) =>
        method(this.#client(address), (err, r) => resolve(err ? undefined : r)),
      );
      const e = res?.header?.error;
      if (res !== undefined && (e === undefined || e.code === '')) return res;
      if (e !== undefined && e.code !== 'NOT_LEADER') throw OmniError.fromProto(e);
      const hint = res?.header?.leaderAddress ?? '';
      if (hint !== '' && hint !== address) next = hint;
      else {
        i = (i + 1) % this.addresses.length;
        next = this.addresses[i] ?? '';
        await sleep(50);
      }
    }
    throw new Error('no PD leader answered');
  }

  #client(address: string): pdpb.PDClient {
    let c = this.#clients.get(address);
    if (c === undefined) {
      c = new pdpb.PDClient(address, grpc.credentials.createInsecure());
      this.#clients.set(address, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

const RETRYABLE = new Set(['NOT_LEADER', 'STALE_EPOCH', 'SHARD_NOT_FOUND', 'UNAVAILABLE', 'TIMEOUT']);

/**
 * MiniRouter routes single-key NodeKV requests the way a router does, over PD's shard map to the leader's SERVICE address from the map's
 * `node_addresses`; NOT_LEADER hints (leader node id + service address) are followed, and any
 * retryable error refreshes the map. Used to check routes and to write under moves.
 */
export class MiniRouter {
  #map: pdpb.ShardMap | undefined;
  readonly #leaders = new Map<number, number>();
  readonly #addresses = new Map<number, string>();
  readonly #clients = new Map<string, NodeKvClient>();
  /** Every NOT_LEADER hint address seen, to check they are service addresses. */
  readonly hintAddresses: string[] = [];

  constructor(private readonly cluster: Pick<PdCluster, 'shardMap'>) {}

  async refresh(): Promise<pdpb.ShardMap> {
    const map = await this.cluster.shardMap();
    this.#map = map;
    for (const [id, a] of Object.entries(map.nodeAddresses)) this.#addresses.set(Number(id), a);
    this.#leaders.clear();
    for (const r of map.routes) if (r.shard && r.leaderNodeId) this.#leaders.set(r.shard.id, r.leaderNodeId);
    return map;
  }

  /** Sends `op` on `key`'s shard until it succeeds or fails with a non-retryable error. */
  async execute(key: Buffer, op: nodepb.NodeRequest['op'], deadlineMs = 20_000): Promise<nodepb.NodeResponse> {
    const end = Date.now() + deadlineMs;
    let last = '';
    for (let attempt = 0; Date.now() < end; attempt++) {
      if (this.#map === undefined || attempt > 0) {
        if (attempt > 0) await sleep(Math.min(200, 20 * attempt));
        try {
          if (this.#map === undefined || attempt % 3 === 0) await this.refresh();
        } catch (err) {
          last = String(err);
          continue;
        }
      }
      const pos = ringPosition(key);
      const route = this.#map?.routes.find((r) => r.shard && r.shard.start <= pos && pos < r.shard.end);
      if (route?.shard === undefined) {
        last = `no route for position ${pos}`;
        continue;
      }
      const shard = route.shard;
      const nodeId = this.#leaders.get(shard.id) ?? shard.replicas[attempt % shard.replicas.length]?.nodeId ?? 0;
      const address = this.#addresses.get(nodeId);
      if (address === undefined) {
        last = `no address for node ${nodeId}`;
        continue;
      }
      const client = this.#client(address);
      const res = await withTimeout(
        client.one({ header: { shardId: shard.id, epoch: shard.epoch, staleRead: false, timeoutMs: 3000 }, op }),
        4000,
      );
      if (res === undefined) {
        // A dead node's stream never answers: drop it and try again (another replica, a new map).
        last = `no answer from node ${nodeId}`;
        client.close();
        this.#clients.delete(address);
        this.#leaders.delete(shard.id);
        continue;
      }
      const e = res.error;
      if (e === undefined || e.code === '') return res;
      last = `${e.code}: ${e.message}`;
      if (!RETRYABLE.has(e.code)) return res;
      if (e.code === 'NOT_LEADER' && e.leaderNodeId !== 0) {
        this.#leaders.set(shard.id, e.leaderNodeId);
        if (e.leaderAddress !== '') {
          this.hintAddresses.push(e.leaderAddress);
          this.#addresses.set(e.leaderNodeId, e.leaderAddress);
        }
      } else {
        this.#leaders.delete(shard.id);
      }
    }
    throw new Error(`request on key ${key.toString()} did not succeed: ${last}`);
  }

  #client(address: string): NodeKvClient {
    let c = this.#clients.get(address);
    if (c === undefined) {
      c = new NodeKvClient(address);
      this.#clients.set(address, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Polls `fn` until it returns a truthy value. On timeout the error carries `explain()` (e.g.
 * `PdCluster.describe`), so a failure shows the state it was stuck in.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  explain?: () => string,
) {
  const end = Date.now() + timeoutMs;
  let lastErr = '';
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = String(err);
    }
    await sleep(50);
  }
  let state = '';
  if (explain !== undefined) {
    try {
      state = `\n${explain()}`;
    } catch (err) {
      state = `\n(explain failed: ${String(err)})`;
    }
  }
  throw new Error(
    `timed out waiting for ${what} after ${timeoutMs} ms${lastErr ? ` (last error: ${lastErr})` : ''}${state}`,
  );
}
