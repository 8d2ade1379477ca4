import { once } from 'node:events';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { raftpb } from '@omnidict/proto';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { RuntimeError } from './errors.js';
import type { Logger } from './logger.js';
import { noopLogger } from './logger.js';
import type { Transport, TransportHandler } from './transport.js';
import type { NodeId } from './types.js';

export interface NetTransportConfig {
  readonly nodeId: NodeId;
  /** host:port to listen on; port 0 picks a free port (read `port` after start). */
  readonly listenAddress: string;
  /** Peer processes' addresses; more can be added with `setPeer`. */
  readonly peers?: ReadonlyMap<NodeId, string>;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Batches queued per peer while its connection is down or full; the oldest are dropped beyond it. */
  readonly maxQueuedBatches?: number;
  readonly reconnectBaseMs?: number;
  readonly reconnectMaxMs?: number;
  /** Largest batch frame or snapshot chunk accepted; a connection sending a larger frame is closed. */
  readonly maxMessageBytes?: number;
  /**
   * A batch connection whose receiver has acknowledged nothing for this long after a frame was
   * written is closed and reopened (default 10 s). Receivers acknowledge at most every tenth of it.
   */
  readonly livenessTimeoutMs?: number;
}

/**
 * The first bytes a batch connection sends. A gRPC connection starts with the HTTP/2 preface
 * ("PRI * HTTP/2.0\r\n..."), so the two kinds are told apart by their first PREFACE_BYTES bytes.
 */
const BATCH_PREFACE = Buffer.from('OMNIRAFT/1\n', 'latin1');
const PREFACE_BYTES = BATCH_PREFACE.length;
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1').subarray(0, PREFACE_BYTES);
const FRAME_HEADER_BYTES = 4;
/** What a receiver writes back on a batch connection: proof that frames arrive, nothing more. */
const ACK = Buffer.of(0x06);
const EMPTY: Buffer = Buffer.alloc(0);

/** One peer process: ONE outbound batch connection, a bounded send queue, reconnect with backoff. */
class Peer {
  readonly nodeId: NodeId;
  address: string;
  /** For snapshots only; created on the first one. */
  client: raftpb.RaftTransportClient | undefined;
  socket: net.Socket | undefined;
  queue: raftpb.MessageBatch[] = [];
  blocked = false;
  backoffMs = 0;
  cancelReconnect: (() => void) | undefined;
  /** When a frame was written with no acknowledgement from the receiver since; undefined when none. */
  unackedSinceMs: number | undefined;
  cancelLivenessCheck: (() => void) | undefined;
  dropped = 0;
  connects = 0;

  constructor(nodeId: NodeId, address: string) {
    this.nodeId = nodeId;
    this.address = address;
  }
}

/**
 * NetTransport carries Raft traffic between processes, on ONE listening port:
 * - Batches: one long-lived TCP connection per peer process, opened with BATCH_PREFACE and then
 *   carrying length-prefixed frames (4-byte big-endian length, then a protobuf MessageBatch), each
 *   holding the messages of all groups (plus coalesced heartbeats) of one scheduler turn.
 *   `socket.write` hands a frame to the kernel at once; a gRPC stream write waits until the event
 *   loop next runs its immediates, that is until the rest of the sender's turn is done (about
 *   0.1 ms per put at one client: docs/benchmarks.md, seventh round). Write backpressure pauses
 *   the queue; the queue is bounded (oldest dropped).
 * - Liveness: the receiver writes back one ACK byte at most every `livenessTimeoutMs / 10` while
 *   frames arrive; a sender that hears nothing for `livenessTimeoutMs` after writing closes the
 *   connection and reconnects (resolving the address again). TCP alone would keep writing into a
 *   connection to a host that vanished without a reset (a Kubernetes pod rescheduled under the
 *   same name) for as long as its retransmission timeout, about 15 minutes.
 * - Snapshots: the gRPC `RaftTransport.Snapshot(stream SnapshotChunk) returns (SnapshotAck)`, header
 *   on the first chunk; the sender awaits 'drain', the receiver pulls with async iteration
 *   (backpressure). Connections starting with the HTTP/2 preface are handed to the gRPC server.
 */
export class NetTransport implements Transport {
  readonly nodeId: NodeId;
  readonly #listenAddress: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #maxQueued: number;
  readonly #reconnectBaseMs: number;
  readonly #reconnectMaxMs: number;
  readonly #maxFrameBytes: number;
  readonly #livenessTimeoutMs: number;
  readonly #channelOptions: grpc.ChannelOptions;
  readonly #peers = new Map<NodeId, Peer>();
  readonly #inbound = new Set<net.Socket>();
  #listener: net.Server | undefined;
  #grpcServer: grpc.Server | undefined;
  #injector: grpc.ConnectionInjector | undefined;
  #handler: TransportHandler | undefined;
  #closed = false;
  port = 0;

  constructor(config: NetTransportConfig) {
    this.nodeId = config.nodeId;
    this.#listenAddress = config.listenAddress;
    this.#clock = config.clock ?? systemClock;
    this.#log = (config.logger ?? noopLogger).child({ component: 'raftTransport' });
    this.#maxQueued = config.maxQueuedBatches ?? 1024;
    this.#reconnectBaseMs = config.reconnectBaseMs ?? 50;
    this.#reconnectMaxMs = config.reconnectMaxMs ?? 2_000;
    this.#maxFrameBytes = config.maxMessageBytes ?? 64 << 20;
    this.#livenessTimeoutMs = config.livenessTimeoutMs ?? 10_000;
    this.#channelOptions = {
      'grpc.max_receive_message_length': this.#maxFrameBytes,
      'grpc.max_send_message_length': this.#maxFrameBytes,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    };
    for (const [id, addr] of config.peers ?? []) this.setPeer(id, addr);
  }

  /**
   * setPeer adds or changes a peer process's address (the connection reopens to the new one). A new
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
      snapshot: (call, callback) => this.#serveSnapshot(call, callback),
    };
    server.addService(raftpb.RaftTransportService, impl);
    this.#grpcServer = server;
    this.#injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const { host, port } = parseHostPort(this.#listenAddress);
    const listener = net.createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => this.#log.error({ err: err.message }, 'raft listener failed'));
    this.#listener = listener;
    this.port = (listener.address() as net.AddressInfo).port;
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
    p.client ??= new raftpb.RaftTransportClient(p.address, grpc.credentials.createInsecure(), this.#channelOptions);
    const client = p.client;
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
    const listener = this.#listener;
    const closed = listener === undefined ? Promise.resolve() : new Promise<void>((r) => listener.close(() => r()));
    const server = this.#grpcServer;
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
    this.#injector?.destroy();
    for (const s of this.#inbound) s.destroy();
    this.#inbound.clear();
    await closed;
  }

  /** Per peer: batches dropped (queue overflow, address change) and batch connections opened. */
  peerStats(): Map<NodeId, { readonly droppedBatches: number; readonly connects: number }> {
    return new Map(
      [...this.#peers.values()].map((p) => [p.nodeId, { droppedBatches: p.dropped, connects: p.connects }]),
    );
  }

  #pump(p: Peer): void {
    if (this.#closed || p.blocked || p.cancelReconnect !== undefined) return;
    if (p.socket === undefined) this.#connect(p);
    const s = p.socket;
    if (s === undefined) return;
    while (p.queue.length > 0) {
      const body = raftpb.MessageBatch.encode(p.queue.shift() as raftpb.MessageBatch).finish();
      const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
      frame.writeUInt32BE(body.length, 0);
      frame.set(body, FRAME_HEADER_BYTES);
      this.#awaitAck(p);
      if (!s.write(frame)) {
        p.blocked = true;
        s.once('drain', () => {
          if (p.socket !== s) return;
          p.blocked = false;
          this.#pump(p);
        });
        return;
      }
    }
  }

  #connect(p: Peer): void {
    let target: { host: string; port: number };
    try {
      target = parseHostPort(p.address);
    } catch (e) {
      this.#log.warn({ peerNode: p.nodeId, err: String(e) }, 'bad peer address; batches dropped');
      p.dropped += p.queue.length;
      p.queue = [];
      return;
    }
    const s = net.connect(target);
    p.connects++;
    s.setNoDelay(true);
    s.setKeepAlive(true, 10_000);
    p.socket = s;
    // Written before 'connect': Node queues it, and the frames after it, until the socket opens.
    s.write(BATCH_PREFACE);
    s.on('connect', () => {
      p.backoffMs = 0;
    });
    s.on('data', () => {
      // ACK bytes: the receiver has read what was written before it sent them (or most of it).
      if (p.socket === s) p.unackedSinceMs = undefined;
    });
    let down = false;
    const onDown = (err?: Error): void => {
      if (down) return;
      down = true;
      s.destroy();
      if (p.socket !== s) return;
      p.socket = undefined;
      p.blocked = false;
      this.#stopLivenessCheck(p);
      if (this.#closed) return;
      p.backoffMs = p.backoffMs === 0 ? this.#reconnectBaseMs : Math.min(p.backoffMs * 2, this.#reconnectMaxMs);
      this.#log.debug(
        { peerNode: p.nodeId, err: err?.message, retryInMs: p.backoffMs },
        'raft connection down; reconnecting',
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

  /** Starts the liveness clock for p's connection unless it is already running. */
  #awaitAck(p: Peer): void {
    if (p.unackedSinceMs !== undefined) return;
    p.unackedSinceMs = this.#clock.nowMs();
    if (p.cancelLivenessCheck === undefined) this.#armLivenessCheck(p, this.#livenessTimeoutMs);
  }

  #armLivenessCheck(p: Peer, inMs: number): void {
    p.cancelLivenessCheck = this.#clock.setTimeout(() => {
      p.cancelLivenessCheck = undefined;
      const since = p.unackedSinceMs;
      if (since === undefined || p.socket === undefined) return;
      const silentMs = this.#clock.nowMs() - since;
      if (silentMs < this.#livenessTimeoutMs) {
        this.#armLivenessCheck(p, this.#livenessTimeoutMs - silentMs);
        return;
      }
      this.#log.warn(
        { peerNode: p.nodeId, address: p.address, silentMs },
        'raft peer acknowledged nothing; reconnecting (unacknowledged batches are lost, Raft resends)',
      );
      p.socket.destroy();
    }, inMs);
  }

  #stopLivenessCheck(p: Peer): void {
    p.cancelLivenessCheck?.();
    p.cancelLivenessCheck = undefined;
    p.unackedSinceMs = undefined;
  }

  #teardown(p: Peer): void {
    this.#stopLivenessCheck(p);
    p.cancelReconnect?.();
    p.cancelReconnect = undefined;
    const s = p.socket;
    p.socket = undefined;
    p.blocked = false;
    s?.destroy();
  }

  /** An inbound connection: a batch connection, a gRPC one (snapshots), or anything else (closed). */
  #accept(socket: net.Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#inbound.add(socket);
    socket.on('close', () => this.#inbound.delete(socket));
    socket.on('error', (err) => this.#log.debug({ err: err.message }, 'raft inbound connection failed'));
    let head: Buffer = EMPTY;
    const onHead = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      if (head.length < PREFACE_BYTES) return;
      socket.off('data', onHead);
      const preface = head.subarray(0, PREFACE_BYTES);
      if (preface.equals(BATCH_PREFACE)) {
        this.#serveBatches(socket, head.subarray(PREFACE_BYTES));
      } else if (preface.equals(HTTP2_PREFACE) && this.#injector !== undefined) {
        // Paused before this handler returns, so nothing more is emitted to no listener; the HTTP/2
        // session reads what is unshifted here before the rest of the socket.
        socket.pause();
        socket.unshift(head);
        this.#injector.injectConnection(socket);
      } else {
        this.#log.warn({ remote: socket.remoteAddress }, 'raft port: connection without a known preface closed');
        socket.destroy();
      }
    };
    socket.on('data', onHead);
  }

  /** Reads length-prefixed MessageBatch frames until the connection closes; a bad frame closes it. */
  #serveBatches(socket: net.Socket, initial: Buffer): void {
    socket.setNoDelay(true);
    // Detects a sender whose host vanished without closing the connection.
    socket.setKeepAlive(true, 10_000);
    // Bytes not yet parsed, kept as received and joined once a whole frame is there (joining on
    // every chunk would copy a large frame once per chunk).
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    let needBytes = FRAME_HEADER_BYTES;
    // At most one ACK per ackEveryMs, and every chunk received is followed by one within ackEveryMs.
    const ackEveryMs = Math.max(1, Math.floor(this.#livenessTimeoutMs / 10));
    let lastAckMs = Number.NEGATIVE_INFINITY;
    let cancelAck: (() => void) | undefined;
    const sendAck = (): void => {
      cancelAck = undefined;
      lastAckMs = this.#clock.nowMs();
      if (!socket.destroyed) socket.write(ACK);
    };
    socket.on('close', () => cancelAck?.());
    const onData = (chunk: Buffer): void => {
      if (cancelAck === undefined) {
        const waitMs = lastAckMs + ackEveryMs - this.#clock.nowMs();
        if (waitMs <= 0) sendAck();
        else cancelAck = this.#clock.setTimeout(sendAck, waitMs);
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes < needBytes) return;
      const buf = pending.length === 1 ? chunk : Buffer.concat(pending, pendingBytes);
      pending.length = 0;
      let at = 0;
      for (;;) {
        if (buf.length - at < FRAME_HEADER_BYTES) {
          needBytes = FRAME_HEADER_BYTES;
          break;
        }
        const len = buf.readUInt32BE(at);
        if (len > this.#maxFrameBytes) {
          this.#log.warn(
            { frameBytes: len, maxBytes: this.#maxFrameBytes },
            'raft batch frame too large; connection closed',
          );
          socket.destroy();
          return;
        }
        if (buf.length - at < FRAME_HEADER_BYTES + len) {
          needBytes = FRAME_HEADER_BYTES + len;
          break;
        }
        const body = buf.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + len);
        at += FRAME_HEADER_BYTES + len;
        let batch: raftpb.MessageBatch;
        try {
          batch = raftpb.MessageBatch.decode(body);
        } catch (e) {
          this.#log.warn({ err: String(e) }, 'undecodable raft batch; connection closed');
          socket.destroy();
          return;
        }
        this.#handler?.onBatch(batch);
      }
      pendingBytes = buf.length - at;
      if (pendingBytes > 0) pending.push(buf.subarray(at));
    };
    socket.on('data', onData);
    if (initial.length > 0) onData(initial);
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

/** "host:port", "[v6]:port"; throws RuntimeError INVALID_ARGUMENT otherwise. */
function parseHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  let host = address.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (i <= 0 || host === '' || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RuntimeError('INVALID_ARGUMENT', `not a host:port address: ${JSON.stringify(address)}`);
  }
  return { host, port };
}
