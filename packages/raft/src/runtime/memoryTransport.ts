import type { raftpb } from '@omnidict/proto';
import type { Clock } from './clock.js';
import { RuntimeError } from './errors.js';
import type { Transport, TransportHandler } from './transport.js';
import type { NodeId } from './types.js';

/** A filter decides the fate of one batch on the link from → to. The first non-'deliver' verdict wins. */
export type LinkVerdict = 'deliver' | 'drop' | { readonly delayMs: number };
export type LinkFilter = (from: NodeId, to: NodeId, batch: raftpb.MessageBatch) => LinkVerdict;

/**
 * MemoryNetwork is the in-memory twin of the gRPC transport: every host registers a transport for its
 * NodeId; batches are delivered asynchronously (setImmediate, FIFO per link) through filters that
 * partition, drop and delay traffic. Delays run on the injected clock (a ManualClock in tests).
 */
export class MemoryNetwork {
  readonly #clock: Clock;
  readonly #rng: () => number;
  readonly #nodes = new Map<NodeId, MemoryTransport>();
  readonly #filters = new Set<LinkFilter>();
  #cut = new Set<string>();
  #dropRate = 0;
  #delayMs = 0;
  delivered = 0;
  dropped = 0;
  /** Batches queued for immediate delivery (not delayed ones); tests wait for 0 to settle. */
  pending = 0;

  constructor(opts: { clock: Clock; rng?: () => number }) {
    this.#clock = opts.clock;
    this.#rng = opts.rng ?? Math.random;
  }

  /** transport returns a (new) transport for `nodeId`; a restarted host replaces its old one. */
  transport(nodeId: NodeId): MemoryTransport {
    return new MemoryTransport(nodeId, this);
  }

  /** partition cuts every link between nodes of different sides (nodes not listed keep all links). */
  partition(...sides: NodeId[][]): void {
    for (let i = 0; i < sides.length; i++) {
      for (let j = 0; j < sides.length; j++) {
        if (i === j) continue;
        for (const a of sides[i] ?? []) for (const b of sides[j] ?? []) this.#cut.add(`${a}>${b}`);
      }
    }
  }

  /** isolate cuts every link to and from `nodeId`. */
  isolate(nodeId: NodeId): void {
    for (const other of this.#nodes.keys()) {
      if (other === nodeId) continue;
      this.#cut.add(`${nodeId}>${other}`);
      this.#cut.add(`${other}>${nodeId}`);
    }
  }

  /** heal restores all links and removes drop rate and delay (custom filters stay until removed). */
  heal(): void {
    this.#cut = new Set();
    this.#dropRate = 0;
    this.#delayMs = 0;
  }

  setDropRate(p: number): void {
    this.#dropRate = p;
  }

  setDelayMs(ms: number): void {
    this.#delayMs = ms;
  }

  /** addFilter installs a custom filter; returns its remover. */
  addFilter(f: LinkFilter): () => void {
    this.#filters.add(f);
    return () => {
      this.#filters.delete(f);
    };
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.#cut.has(`${from}>${to}`);
  }

  /** @internal */
  register(t: MemoryTransport): void {
    this.#nodes.set(t.nodeId, t);
  }

  /** @internal */
  unregister(t: MemoryTransport): void {
    if (this.#nodes.get(t.nodeId) === t) this.#nodes.delete(t.nodeId);
  }

  /** @internal */
  route(from: NodeId, to: NodeId, batch: raftpb.MessageBatch): void {
    let verdict: LinkVerdict = 'deliver';
    if (this.isCut(from, to) || (this.#dropRate > 0 && this.#rng() < this.#dropRate)) verdict = 'drop';
    for (const f of this.#filters) {
      if (verdict !== 'deliver') break;
      verdict = f(from, to, batch);
    }
    if (verdict === 'drop') {
      this.dropped++;
      return;
    }
    const delayMs = Math.max(this.#delayMs, verdict === 'deliver' ? 0 : verdict.delayMs);
    const deliver = (): void => {
      const target = this.#nodes.get(to);
      if (target === undefined || this.isCut(from, to)) {
        this.dropped++;
        return;
      }
      this.delivered++;
      target.deliver(batch);
    };
    if (delayMs > 0) {
      this.#clock.setTimeout(deliver, delayMs);
    } else {
      this.pending++;
      setImmediate(() => {
        this.pending--;
        deliver();
      });
    }
  }

  /** @internal */
  async routeSnapshot(
    from: NodeId,
    to: NodeId,
    header: raftpb.GroupMessage,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    const target = this.#nodes.get(to);
    if (target === undefined || this.isCut(from, to)) {
      throw new RuntimeError('UNAVAILABLE', `node ${to} unreachable from ${from}`);
    }
    const isCut = (): boolean => this.isCut(from, to);
    async function* guarded(): AsyncIterable<Uint8Array> {
      for await (const c of chunks) {
        if (isCut()) throw new RuntimeError('UNAVAILABLE', `link ${from}>${to} cut during snapshot`);
        yield c;
      }
    }
    await target.deliverSnapshot(header, guarded());
  }
}

export class MemoryTransport implements Transport {
  readonly nodeId: NodeId;
  readonly #network: MemoryNetwork;
  #handler: TransportHandler | undefined;

  constructor(nodeId: NodeId, network: MemoryNetwork) {
    this.nodeId = nodeId;
    this.#network = network;
  }

  async start(handler: TransportHandler): Promise<void> {
    this.#handler = handler;
    this.#network.register(this);
  }

  send(toNode: NodeId, batch: raftpb.MessageBatch): void {
    if (this.#handler === undefined) return;
    this.#network.route(this.nodeId, toNode, batch);
  }

  sendSnapshot(toNode: NodeId, header: raftpb.GroupMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    return this.#network.routeSnapshot(this.nodeId, toNode, header, chunks);
  }

  async close(): Promise<void> {
    this.#handler = undefined;
    this.#network.unregister(this);
  }

  /** @internal */
  deliver(batch: raftpb.MessageBatch): void {
    this.#handler?.onBatch(batch);
  }

  /** @internal */
  deliverSnapshot(header: raftpb.GroupMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const h = this.#handler;
    if (h === undefined) return Promise.reject(new RuntimeError('UNAVAILABLE', `node ${this.nodeId} is closed`));
    return h.onSnapshot(header, chunks);
  }
}
