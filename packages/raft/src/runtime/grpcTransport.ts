import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { raftpb } from '@omnidict/proto';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { RuntimeError } from './errors.js';
import type { Logger } from './logger.js';
import { noopLogger } from './logger.js';
import type { Transport, TransportHandler } from './transport.js';
import type { NodeId } from './types.js';

export interface GrpcTransportConfig {
  readonly nodeId: NodeId;
  /** host:port to listen on; port 0 picks a free port (read `port` after start). */
  readonly listenAddress: string;
  /** Peer processes' addresses; more can be added with `setPeer`. */
  readonly peers?: ReadonlyMap<NodeId, string>;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Batches queued per peer while its stream is down or full; the oldest are dropped beyond it. */
  readonly maxQueuedBatches?: number;
  readonly reconnectBaseMs?: number;
  readonly reconnectMaxMs?: number;
  readonly maxMessageBytes?: number;
}

type RaftStream = grpc.ClientDuplexStream<raftpb.MessageBatch, raftpb.BatchAck>;

/** One peer process: a client, ONE long-lived Raft bidi stream, a bounded send queue, reconnect with backoff. */
class Peer {
  readonly nodeId: NodeId;
  address: string;
  client: raftpb.RaftTransportClient | undefined;
  stream: RaftStream | undefined;
  queue: raftpb.MessageBatch[] = [];
  blocked = false;
  backoffMs = 0;
  cancelReconnect: (() => void) | undefined;
  dropped = 0;

  constructor(nodeId: NodeId, address: string) {
    this.nodeId = nodeId;
    this.address = address;
  }
}

/**
 * GrpcTransport carries Raft traffic between processes on the RaftTransport service:
 * - `Raft(stream MessageBatch) returns (stream BatchAck)`: one long-lived stream per peer process,
 *   each MessageBatch holding the messages of all groups (plus coalesced heartbeats) of one
 *   scheduler turn. Write backpressure pauses the queue; the queue is bounded (oldest dropped).
 * - `Snapshot(stream SnapshotChunk) returns (SnapshotAck)`: header on the first chunk, data in
 *   chunks; the sender awaits 'drain', the receiver pulls with async iteration (backpressure).
 */
export class GrpcTransport implements Transport {
  readonly nodeId: NodeId;
  readonly #listenAddress: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #maxQueued: number;
  readonly #reconnectBaseMs: number;
  readonly #reconnectMaxMs: number;
  readonly #channelOptions: grpc.ChannelOptions;
  readonly #peers = new Map<NodeId, Peer>();
  readonly #serverStreams = new Set<grpc.ServerDuplexStream<raftpb.MessageBatch, raftpb.BatchAck>>();
  #server: grpc.Server | undefined;
  #handler: TransportHandler | undefined;
  #closed = false;
  port = 0;

  constructor(config: GrpcTransportConfig) {
    this.nodeId = config.nodeId;
    this.#listenAddress = config.listenAddress;
    this.#clock = config.clock ?? systemClock;
    this.#log = (config.logger ?? noopLogger).child({ component: 'raftTransport' });
    this.#maxQueued = config.maxQueuedBatches ?? 1024;
    this.#reconnectBaseMs = config.reconnectBaseMs ?? 50;
    this.#reconnectMaxMs = config.reconnectMaxMs ?? 2_000;
    const maxBytes = config.maxMessageBytes ?? 64 << 20;
    this.#channelOptions = {
      'grpc.max_receive_message_length': maxBytes,
      'grpc.max_send_message_length': maxBytes,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    };
    for (const [id, addr] of config.peers ?? []) this.setPeer(id, addr);
  }

  /**
   * setPeer adds or changes a peer process's address (the stream reconnects to the new one). A new
   * address means a new process: batches still queued for the old one are dropped, not replayed
   * into it (Raft resends what is still needed, from the leaders' current view).
   */
  setPeer(nodeId: NodeId, address: string): void {
    const p = this.#peers.get(nodeId);
    if (p === undefined) {
      this.#peers.set(nodeId, new Peer(nodeId, address));
      return;
    }
    if (p.address === address) return;
    p.address = address;
    p.dropped += p.queue.length;
    p.queue = [];
    this.#teardown(p);
    p.client?.close();
    p.client = undefined;
  }

  async start(handler: TransportHandler): Promise<void> {
    this.#handler = handler;
    const server = new grpc.Server(this.#channelOptions);
    const impl: raftpb.RaftTransportServer = {
      raft: (call) => this.#serveRaft(call),
      snapshot: (call, callback) => this.#serveSnapshot(call, callback),
    };
    server.addService(raftpb.RaftTransportService, impl);
    this.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(this.#listenAddress, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err === null ? resolve(port) : reject(err),
      );
    });
    this.#server = server;
  }

  send(toNode: NodeId, batch: raftpb.MessageBatch): void {
    if (this.#closed) return;
    const p = this.#peers.get(toNode);
    if (p === undefined) return;
    p.queue.push(batch);
    if (p.queue.length > this.#maxQueued) {
      p.queue.shift();
      p.dropped++;
    }
    this.#pump(p);
  }

  async sendSnapshot(toNode: NodeId, header: raftpb.GroupMessage, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const p = this.#peers.get(toNode);
    if (p === undefined || this.#closed) throw new RuntimeError('UNAVAILABLE', `no address for node ${toNode}`);
    const client = this.#client(p);
    let call: grpc.ClientWritableStream<raftpb.SnapshotChunk> | undefined;
    const acked = new Promise<void>((resolve, reject) => {
      call = client.snapshot((err, ack) => {
        if (err !== null)
          reject(new RuntimeError('UNAVAILABLE', `snapshot to node ${toNode}: ${err.message}`, { cause: err }));
        else if (ack === undefined || !ack.accepted) {
          reject(new RuntimeError('SNAPSHOT_FAILED', `node ${toNode} refused snapshot: ${ack?.error ?? 'no ack'}`));
        } else resolve();
      });
    });
    const c = call as unknown as grpc.ClientWritableStream<raftpb.SnapshotChunk>;
    try {
      let first = true;
      for await (const data of chunks) {
        const msg: raftpb.SnapshotChunk = { header: first ? header : undefined, data: data as Buffer, last: false };
        first = false;
        if (!c.write(msg)) await Promise.race([once(c, 'drain'), acked]);
      }
      c.write({ header: first ? header : undefined, data: Buffer.alloc(0), last: true });
      c.end();
    } catch (e) {
      c.cancel();
      await acked.catch(() => {});
      throw e;
    }
    await acked;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#peers.values()) {
      this.#teardown(p);
      p.client?.close();
      p.client = undefined;
    }
    for (const s of this.#serverStreams) s.end();
    this.#serverStreams.clear();
    const server = this.#server;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 500);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Dropped batches per peer (queue overflow), for metrics. */
  droppedBatches(): Map<NodeId, number> {
    return new Map([...this.#peers.values()].map((p) => [p.nodeId, p.dropped]));
  }

  #client(p: Peer): raftpb.RaftTransportClient {
    p.client ??= new raftpb.RaftTransportClient(p.address, grpc.credentials.createInsecure(), this.#channelOptions);
    return p.client;
  }

  #pump(p: Peer): void {
    if (this.#closed || p.blocked || p.cancelReconnect !== undefined) return;
    if (p.stream === undefined) this.#connect(p);
    const s = p.stream;
    if (s === undefined) return;
    while (p.queue.length > 0) {
      const b = p.queue.shift() as raftpb.MessageBatch;
      if (!s.write(b)) {
        p.blocked = true;
        s.once('drain', () => {
          p.blocked = false;
          this.#pump(p);
        });
        return;
      }
    }
  }

  #connect(p: Peer): void {
    const s = this.#client(p).raft();
    p.stream = s;
    s.on('data', () => {
      // Acks carry nothing today; receiving one proves the stream is up.
      p.backoffMs = 0;
    });
    const onDown = (err?: Error): void => {
      if (p.stream !== s) return;
      p.stream = undefined;
      p.blocked = false;
      if (this.#closed) return;
      p.backoffMs = p.backoffMs === 0 ? this.#reconnectBaseMs : Math.min(p.backoffMs * 2, this.#reconnectMaxMs);
      this.#log.debug(
        { peerNode: p.nodeId, err: err?.message, retryInMs: p.backoffMs },
        'raft stream down; reconnecting',
      );
      p.cancelReconnect = this.#clock.setTimeout(() => {
        p.cancelReconnect = undefined;
        if (p.queue.length > 0) this.#pump(p);
      }, p.backoffMs);
    };
    s.on('error', (err: Error) => onDown(err));
    s.on('end', () => onDown());
    s.on('close', () => onDown());
  }

  #teardown(p: Peer): void {
    p.cancelReconnect?.();
    p.cancelReconnect = undefined;
    const s = p.stream;
    p.stream = undefined;
    p.blocked = false;
    if (s !== undefined) s.cancel();
  }

  #serveRaft(call: grpc.ServerDuplexStream<raftpb.MessageBatch, raftpb.BatchAck>): void {
    this.#serverStreams.add(call);
    let sinceAck = 0;
    call.on('data', (b: raftpb.MessageBatch) => {
      this.#handler?.onBatch(b);
      // Occasional acks let the sender see the stream is alive without one message per batch.
      if (++sinceAck >= 64) {
        sinceAck = 0;
        call.write({});
      }
    });
    const done = (): void => {
      this.#serverStreams.delete(call);
    };
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
    call.write({});
  }

  #serveSnapshot(
    call: grpc.ServerReadableStream<raftpb.SnapshotChunk, raftpb.SnapshotAck>,
    callback: grpc.sendUnaryData<raftpb.SnapshotAck>,
  ): void {
    const handler = this.#handler;
    const it = (call as AsyncIterable<raftpb.SnapshotChunk>)[Symbol.asyncIterator]();
    const run = async (): Promise<void> => {
      if (handler === undefined) throw new RuntimeError('UNAVAILABLE', 'transport not started');
      const first = await it.next();
      if (first.done === true || first.value.header === undefined) throw new Error('snapshot stream without header');
      const head = first.value;
      async function* data(): AsyncIterable<Uint8Array> {
        if (head.data.length > 0) yield head.data;
        if (head.last) return;
        for (;;) {
          const r = await it.next();
          if (r.done === true) throw new Error('snapshot stream ended before its last chunk');
          if (r.value.data.length > 0) yield r.value.data;
          if (r.value.last) return;
        }
      }
      await handler.onSnapshot(head.header as raftpb.GroupMessage, data());
    };
    run().then(
      () => callback(null, { accepted: true, error: '' }),
      (e: unknown) => {
        this.#log.warn({ err: String(e) }, 'snapshot refused');
        callback(null, { accepted: false, error: e instanceof Error ? e.message : String(e) });
      },
    );
  }
}
