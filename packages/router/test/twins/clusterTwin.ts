import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { type common, evenRanges, type kv, nodepb, ringPosition } from '@omnidict/proto';
import { globToRegExp } from './glob.js';
import { PdTwin } from './pdTwin.js';

type ShardDescriptor = common.ShardDescriptor;
type ErrorPb = common.Error;
type Op = NonNullable<nodepb.NodeRequest['op']>;
type Result = NonNullable<nodepb.NodeResponse['result']>;

interface Record {
  key: Buffer;
  pos: number;
  value: Buffer;
  modIndex: number;
  expireAtMs: number;
}

export interface TwinShard {
  desc: ShardDescriptor;
  leaderNodeId: number;
  /** Shards split off this one (reported in STALE_EPOCH.new_shards). */
  children: number[];
}

/** A request as a node twin saw it. */
export interface SeenRequest {
  nodeId: number;
  shardId: number;
  op: Op['$case'] | 'none';
  key?: string;
}

/** An injected answer: the next `times` requests matching `filter` get `error` instead of service. */
interface Fault {
  code: string;
  times: number;
  filter: (r: nodepb.NodeRequest) => boolean;
}

function errorPb(code: string, message: string, extra: Partial<ErrorPb> = {}): ErrorPb {
  return { code, message, leaderReplicaId: 0, leaderNodeId: 0, leaderAddress: '', newShards: [], ...extra };
}

function cmp(aPos: number, aKey: Buffer, bPos: number, bKey: Buffer): number {
  return aPos !== bPos ? aPos - bPos : Buffer.compare(aKey, bKey);
}

/**
 * NodeTwin: an in-test storage node serving NodeKV.Execute for the shards of a ClusterTwin whose
 * replicas it holds. It checks shard and epoch like a real node (SHARD_NOT_FOUND, STALE_EPOCH with
 * the current descriptor and split children, NOT_LEADER with a hint), counts batches, and can be
 * told to fail requests.
 */
export class NodeTwin {
  address = '';
  batches = 0;
  requests = 0;
  /** Largest batch received. */
  maxBatch = 0;
  readonly faults: Fault[] = [];
  /** Holds every answer until released (to keep requests in flight). */
  hold: Promise<void> | undefined;
  private server = new Server();
  private readonly streams = new Set<ServerDuplexStream<nodepb.NodeRequestBatch, nodepb.NodeResponseBatch>>();

  constructor(
    readonly nodeId: number,
    private readonly cluster: ClusterTwin,
  ) {}

  async start(port = 0): Promise<this> {
    this.server = new Server();
    this.server.addService(nodepb.NodeKVService, {
      execute: (call: ServerDuplexStream<nodepb.NodeRequestBatch, nodepb.NodeResponseBatch>) => {
        this.streams.add(call);
        call.on('data', (batch: nodepb.NodeRequestBatch) => {
          this.batches++;
          this.requests += batch.requests.length;
          this.maxBatch = Math.max(this.maxBatch, batch.requests.length);
          const responses = batch.requests.map((r) => this.handle(r));
          const send = () => {
            if (this.streams.has(call)) call.write({ responses });
          };
          if (this.hold) void this.hold.then(send);
          else send();
        });
        const drop = () => this.streams.delete(call);
        call.on('end', () => {
          drop();
          call.end();
        });
        call.on('cancelled', drop);
        call.on('error', drop);
      },
    } satisfies nodepb.NodeKVServer);
    const bound = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    this.address = `127.0.0.1:${bound}`;
    return this;
  }

  /** The next `times` requests (optionally only those matching `filter`) are answered with `code`. */
  failNext(code: string, times = 1, filter: (r: nodepb.NodeRequest) => boolean = () => true): void {
    this.faults.push({ code, times, filter });
  }

  /** Stops the server at once, breaking every stream (in-flight requests get no answer). */
  kill(): void {
    for (const s of this.streams) s.destroy(new Error('node twin killed'));
    this.streams.clear();
    this.server.forceShutdown();
  }

  resetCounters(): void {
    this.batches = 0;
    this.requests = 0;
    this.maxBatch = 0;
  }

  private handle(r: nodepb.NodeRequest): nodepb.NodeResponse {
    const c = this.cluster;
    const op = r.op;
    const keyOf = op && 'key' in op.value ? (op.value.key as Buffer) : undefined;
    const shardId = r.header?.shardId ?? 0;
    c.seen.push({
      nodeId: this.nodeId,
      shardId,
      op: op?.$case ?? 'none',
      ...(keyOf ? { key: keyOf.toString() } : {}),
    });
    const fault = this.faults.find((f) => f.times > 0 && f.filter(r));
    if (fault) {
      fault.times--;
      const shard = c.shard(shardId);
      const extra: Partial<ErrorPb> = {};
      if (fault.code === 'NOT_LEADER' && shard) {
        extra.leaderNodeId = shard.leaderNodeId;
        extra.leaderAddress = c.node(shard.leaderNodeId)?.address ?? '';
      }
      return { id: r.id, error: errorPb(fault.code, `injected ${fault.code}`, extra) };
    }
    const shard = c.shard(shardId);
    if (shard === undefined || !hosts(shard, this.nodeId)) {
      return { id: r.id, error: errorPb('SHARD_NOT_FOUND', `node ${this.nodeId} has no replica of shard ${shardId}`) };
    }
    const d = shard.desc;
    if (r.header?.epoch?.version !== d.epoch?.version || r.header?.epoch?.confVer !== d.epoch?.confVer) {
      const newShards = shard.children.map((id) => c.shard(id)?.desc).filter((x): x is ShardDescriptor => !!x);
      return {
        id: r.id,
        error: errorPb('STALE_EPOCH', `shard ${d.id} epoch changed`, { currentShard: d, newShards }),
      };
    }
    if (shard.leaderNodeId !== this.nodeId && !r.header?.staleRead) {
      return {
        id: r.id,
        error: errorPb('NOT_LEADER', `node ${this.nodeId} does not lead shard ${d.id}`, {
          leaderNodeId: shard.leaderNodeId,
          leaderAddress: c.node(shard.leaderNodeId)?.address ?? '',
        }),
      };
    }
    if (keyOf) {
      const pos = ringPosition(keyOf);
      if (pos < d.start || pos >= d.end) {
        return { id: r.id, error: errorPb('INTERNAL', `key at ${pos} is outside shard ${d.id}`) };
      }
    }
    try {
      return { id: r.id, result: c.apply(d, op!) };
    } catch (e) {
      return { id: r.id, error: errorPb((e as { code?: string }).code ?? 'INTERNAL', (e as Error).message) };
    }
  }
}

export interface ClusterTwinOptions {
  nodes?: number;
  shards?: number;
  /** PD replicas; replica 0 leads. */
  pds?: number;
}

/**
 * ClusterTwin: PD twins + node twins over one in-memory keyspace. Every shard has a replica on
 * every node; node (i % nodes) + 1 leads shard i. Data is one map ordered by (position, key), as on
 * a real node, so a split is metadata-only here too.
 */
export class ClusterTwin {
  readonly nodes: NodeTwin[] = [];
  readonly pds: PdTwin[] = [];
  shards: TwinShard[] = [];
  readonly data = new Map<string, Record>();
  readonly seen: SeenRequest[] = [];
  private modIndex = 0;
  private revision = 0;
  private nextShardId = 1000;

  static async start(options: ClusterTwinOptions = {}): Promise<ClusterTwin> {
    const c = new ClusterTwin();
    const nodeCount = options.nodes ?? 3;
    for (let i = 1; i <= nodeCount; i++) c.nodes.push(await new NodeTwin(i, c).start());
    for (let i = 0; i < (options.pds ?? 1); i++) c.pds.push(await new PdTwin().start());
    for (const [i, p] of c.pds.entries()) {
      p.leader = i === 0;
      p.leaderAddress = c.pds[0]!.address;
    }
    c.shards = evenRanges(options.shards ?? 4).map((r, i) => ({
      desc: {
        id: i + 1,
        start: r.start,
        end: r.end,
        epoch: { version: 1, confVer: 1 },
        replicas: c.nodes.map((n) => ({ replicaId: (i + 1) * 100 + n.nodeId, nodeId: n.nodeId, role: 0 })),
      },
      leaderNodeId: (i % nodeCount) + 1,
      children: [],
    }));
    c.publish();
    return c;
  }

  get pdAddresses(): string[] {
    return this.pds.map((p) => p.address);
  }

  shard(id: number): TwinShard | undefined {
    return this.shards.find((s) => s.desc.id === id);
  }

  shardAt(pos: number): TwinShard {
    return this.shards.find((s) => pos >= s.desc.start && pos < s.desc.end)!;
  }

  node(id: number): NodeTwin | undefined {
    return this.nodes.find((n) => n.nodeId === id);
  }

  /** publish pushes the current shards to every PD twin as a new map revision. */
  publish(): void {
    this.revision++;
    const map = {
      revision: this.revision,
      routes: this.shards.map((s) => ({ shard: s.desc, leaderReplicaId: 0, leaderNodeId: s.leaderNodeId })),
      nodeAddresses: Object.fromEntries(this.nodes.map((n) => [n.nodeId, n.address])),
    };
    for (const p of this.pds) p.setMap(map);
  }

  /**
   * split cuts a shard at `at`: the left part keeps the id, both get version + 1, and the right
   * part gets a new id and the same replicas and leader. PD is NOT told (call publish()).
   */
  split(shardId: number, at: number): { left: ShardDescriptor; right: ShardDescriptor } {
    const s = this.shard(shardId)!;
    const version = (s.desc.epoch?.version ?? 0) + 1;
    const confVer = s.desc.epoch?.confVer ?? 0;
    const right: TwinShard = {
      desc: { ...s.desc, id: this.nextShardId++, start: at, epoch: { version, confVer } },
      leaderNodeId: s.leaderNodeId,
      children: [],
    };
    s.desc = { ...s.desc, end: at, epoch: { version, confVer } };
    s.children.push(right.desc.id);
    this.shards.push(right);
    this.shards.sort((a, b) => a.desc.start - b.desc.start);
    return { left: s.desc, right: right.desc };
  }

  /** Moves leadership of a shard (PD is NOT told). */
  setLeader(shardId: number, nodeId: number): void {
    this.shard(shardId)!.leaderNodeId = nodeId;
  }

  put(key: string, value: string): void {
    const k = Buffer.from(key);
    this.data.set(k.toString('hex'), {
      key: k,
      pos: ringPosition(k),
      value: Buffer.from(value),
      modIndex: ++this.modIndex,
      expireAtMs: 0,
    });
  }

  close(): void {
    for (const n of this.nodes) n.kill();
    for (const p of this.pds) p.close();
  }

  /** apply executes one operation on shard `d` (already checked for epoch and leadership). */
  apply(d: ShardDescriptor, op: Op): Result {
    const now = Date.now();
    const live = (key: Buffer): Record | undefined => {
      const r = this.data.get(key.toString('hex'));
      if (r && r.expireAtMs !== 0 && r.expireAtMs <= now) {
        this.data.delete(key.toString('hex'));
        return undefined;
      }
      return r;
    };
    const kvOf = (r: Record): kv.KeyValue => ({
      key: r.key,
      value: r.value,
      modIndex: r.modIndex,
      expireAtMs: r.expireAtMs,
    });
    const write = (key: Buffer, value: Buffer, ttlMs: number, keepExpiry?: number): number => {
      const modIndex = ++this.modIndex;
      const expireAtMs = keepExpiry ?? (ttlMs > 0 ? now + ttlMs : 0);
      this.data.set(key.toString('hex'), { key, pos: ringPosition(key), value, modIndex, expireAtMs });
      return modIndex;
    };
    switch (op.$case) {
      case 'put':
        return { $case: 'put', value: { modIndex: write(op.value.key, op.value.value, op.value.ttlMs) } };
      case 'get': {
        const r = live(op.value.key);
        return { $case: 'get', value: r ? { found: true, kv: kvOf(r) } : { found: false } };
      }
      case 'exists':
        return { $case: 'exists', value: { exists: live(op.value.key) !== undefined } };
      case 'delete': {
        const deleted = live(op.value.key) !== undefined;
        this.data.delete(op.value.key.toString('hex'));
        return { $case: 'delete', value: { deleted, modIndex: deleted ? ++this.modIndex : 0 } };
      }
      case 'update': {
        const r = live(op.value.key);
        if (!r) throw Object.assign(new Error('key not found'), { code: 'NOT_FOUND' });
        const modIndex = write(
          op.value.key,
          op.value.value,
          op.value.ttlMs,
          op.value.keepTtl ? r.expireAtMs : undefined,
        );
        return { $case: 'update', value: { modIndex } };
      }
      case 'expire': {
        const r = live(op.value.key);
        if (!r) return { $case: 'expire', value: { applied: false, modIndex: 0 } };
        r.expireAtMs = now + op.value.ttlMs;
        r.modIndex = ++this.modIndex;
        return { $case: 'expire', value: { applied: true, modIndex: r.modIndex } };
      }
      case 'ttl': {
        const r = live(op.value.key);
        return { $case: 'ttl', value: { ttlMs: !r ? -2 : r.expireAtMs === 0 ? -1 : r.expireAtMs - now } };
      }
      case 'persist': {
        const r = live(op.value.key);
        if (!r || r.expireAtMs === 0) return { $case: 'persist', value: { applied: false, modIndex: 0 } };
        r.expireAtMs = 0;
        r.modIndex = ++this.modIndex;
        return { $case: 'persist', value: { applied: true, modIndex: r.modIndex } };
      }
      case 'cas': {
        const r = live(op.value.key);
        const e = op.value.expected;
        const ok =
          e?.$case === 'expectAbsent'
            ? !r
            : e?.$case === 'expectedModIndex'
              ? r?.modIndex === e.value
              : e?.$case === 'expectedValue'
                ? r !== undefined && Buffer.compare(r.value, e.value) === 0
                : false;
        if (!ok) return { $case: 'cas', value: { swapped: false, modIndex: 0, ...(r ? { current: kvOf(r) } : {}) } };
        return {
          $case: 'cas',
          value: { swapped: true, modIndex: write(op.value.key, op.value.value, op.value.ttlMs) },
        };
      }
      case 'scan': {
        const s = op.value;
        const re = s.pattern === '' ? undefined : globToRegExp(s.pattern);
        const rows = [...this.data.values()]
          .filter((r) => r.pos >= d.start && r.pos < d.end && (r.expireAtMs === 0 || r.expireAtMs > now))
          .filter((r) => !s.hasAfter || cmp(r.pos, r.key, s.afterPos, s.afterKey) > 0)
          .filter((r) => !re || re.test(r.key.toString('latin1')))
          .sort((a, b) => cmp(a.pos, a.key, b.pos, b.key));
        const limit = s.limit === 0 ? 100 : s.limit;
        const page = rows.slice(0, limit);
        return {
          $case: 'scan',
          value: {
            kvs: page.map((r) => (s.keysOnly ? { ...kvOf(r), value: Buffer.alloc(0) } : kvOf(r))),
            positions: page.map((r) => r.pos),
            done: rows.length <= limit,
          },
        };
      }
      case 'deleteRange': {
        let deleted = 0;
        for (const [h, r] of this.data) {
          if (r.pos >= d.start && r.pos < d.end) {
            this.data.delete(h);
            deleted++;
          }
        }
        return { $case: 'deleteRange', value: { deleted } };
      }
    }
  }
}

function hosts(shard: TwinShard, nodeId: number): boolean {
  return shard.desc.replicas.some((x) => x.nodeId === nodeId);
}
