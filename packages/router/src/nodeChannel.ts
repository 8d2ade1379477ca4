import { type ClientDuplexStream, credentials, type ServiceError } from '@grpc/grpc-js';
import { nodepb, OmniError } from '@omnidict/proto';
import type { Logger } from './logger.js';

type NodeRequest = nodepb.NodeRequest;
type NodeResponse = nodepb.NodeResponse;

/**
 * ChannelError is how a NodeChannel fails a request it could not get an answer for. `delivered`
 * states whether the request may have reached the node: false means it surely never left this
 * process (no connection, or it was still queued), so even a non-idempotent write may be retried.
 */
export class ChannelError extends OmniError {
  readonly delivered: boolean;

  constructor(code: 'UNAVAILABLE' | 'TIMEOUT', message: string, delivered: boolean, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
    this.name = 'ChannelError';
    this.delivered = delivered;
  }
}

export interface NodeChannelOptions {
  logger: Logger;
  /** Largest number of requests in one NodeRequestBatch. */
  maxBatchSize?: number;
  /** How long to wait for a connection before failing queued requests as undelivered. */
  connectTimeoutMs?: number;
  /** Reconnect backoff after a failure: doubles from min to max; reset by a healthy stream. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Called once per batch written (metrics). */
  onBatch?: (size: number) => void;
}

interface Pending {
  request: NodeRequest;
  resolve: (r: NodeResponse) => void;
  reject: (e: ChannelError) => void;
  timer: NodeJS.Timeout | undefined;
  delivered: boolean;
}

type State = 'idle' | 'connecting' | 'ready' | 'backoff' | 'closed';

/**
 * NodeChannel is ONE long-lived NodeKV.Execute stream to one storage node. Requests made in the
 * same event-loop turn are written as one NodeRequestBatch (flushed on setImmediate, at most
 * `maxBatchSize` per batch); responses are matched by request id and may come in any order.
 *
 * Contract:
 * - Requests are written only on a connected channel. If the connection cannot be made, queued
 *   requests fail with UNAVAILABLE, `delivered: false`.
 * - When the stream breaks, every request written on it and not yet answered fails with
 *   UNAVAILABLE, `delivered: true` (the node may have applied it).
 * - A request whose deadline passes fails with TIMEOUT (`delivered` as above).
 * - While reconnecting after a failure (backoff), new requests fail fast as undelivered so the
 *   caller can refresh its routes instead of waiting on a dead node.
 */
export class NodeChannel {
  readonly address: string;
  private readonly client: nodepb.NodeKVClient;
  private readonly opts: Required<Omit<NodeChannelOptions, 'onBatch'>> & {
    onBatch: ((size: number) => void) | undefined;
  };
  private state: State = 'idle';
  private stream: ClientDuplexStream<nodepb.NodeRequestBatch, nodepb.NodeResponseBatch> | undefined;
  private readonly queue: Pending[] = [];
  private readonly inflight = new Map<number, Pending>();
  private nextId = 1;
  private flushScheduled = false;
  private backoffMs: number;
  private backoffTimer: NodeJS.Timeout | undefined;
  private lastFailure: string = '';

  constructor(address: string, options: NodeChannelOptions) {
    this.address = address;
    this.opts = {
      logger: options.logger,
      maxBatchSize: options.maxBatchSize ?? 256,
      connectTimeoutMs: options.connectTimeoutMs ?? 1000,
      minBackoffMs: options.minBackoffMs ?? 50,
      maxBackoffMs: options.maxBackoffMs ?? 2000,
      onBatch: options.onBatch,
    };
    this.backoffMs = this.opts.minBackoffMs;
    this.client = new nodepb.NodeKVClient(address, credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': this.opts.minBackoffMs,
      'grpc.max_reconnect_backoff_ms': this.opts.maxBackoffMs,
    });
  }

  /** Requests written and not yet answered. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /**
   * send queues one request (its `id` is assigned here) and resolves with the node's response,
   * which may carry an `error`. Rejects only with ChannelError.
   */
  send(request: Omit<NodeRequest, 'id'>, timeoutMs: number): Promise<NodeResponse> {
    if (this.state === 'closed') {
      return Promise.reject(new ChannelError('UNAVAILABLE', `channel to ${this.address} is closed`, false));
    }
    if (this.state === 'backoff') {
      return Promise.reject(
        new ChannelError('UNAVAILABLE', `node ${this.address} unreachable: ${this.lastFailure}`, false),
      );
    }
    return new Promise<NodeResponse>((resolve, reject) => {
      const id = this.nextId++;
      const p: Pending = { request: { ...request, id }, resolve, reject, timer: undefined, delivered: false };
      p.timer = setTimeout(() => this.expire(p), Math.max(1, timeoutMs));
      this.queue.push(p);
      if (this.state === 'idle') this.connect();
      else if (this.state === 'ready') this.scheduleFlush();
    });
  }

  /** close fails everything pending and ends the stream; the channel cannot be reused. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.failAll('channel closed');
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    this.client.close();
  }

  private connect(): void {
    this.state = 'connecting';
    this.client.waitForReady(Date.now() + this.opts.connectTimeoutMs, (err) => {
      if (this.state !== 'connecting') return;
      if (err) {
        this.enterBackoff(`connect failed: ${err.message}`);
        return;
      }
      this.openStream();
    });
  }

  private openStream(): void {
    const stream = this.client.execute();
    this.stream = stream;
    this.state = 'ready';
    let healthy = false;
    stream.on('data', (batch: nodepb.NodeResponseBatch) => {
      if (!healthy) {
        healthy = true;
        this.backoffMs = this.opts.minBackoffMs;
      }
      for (const r of batch.responses) {
        const p = this.inflight.get(r.id);
        if (!p) continue; // Already timed out; the answer is dropped on purpose.
        this.inflight.delete(r.id);
        if (p.timer) clearTimeout(p.timer);
        p.resolve(r);
      }
    });
    const broken = (why: string) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (this.state === 'closed') return;
      this.enterBackoff(why);
    };
    stream.on('error', (e: ServiceError) => broken(`stream error: ${e.details || e.message}`));
    stream.on('end', () => broken('stream ended by node'));
    this.scheduleFlush();
  }

  private enterBackoff(why: string): void {
    this.lastFailure = why;
    this.opts.logger.warn({ node: this.address, reason: why, inflight: this.inflight.size }, 'node channel down');
    this.failAll(why);
    this.state = 'backoff';
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs);
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      if (this.state === 'backoff') this.state = 'idle';
    }, delay);
  }

  private failAll(why: string): void {
    for (const p of this.inflight.values()) this.fail(p, 'UNAVAILABLE', `${this.address}: ${why}; outcome unknown`);
    this.inflight.clear();
    for (const p of this.queue.splice(0)) this.fail(p, 'UNAVAILABLE', `${this.address}: ${why}`);
  }

  private fail(p: Pending, code: 'UNAVAILABLE' | 'TIMEOUT', message: string): void {
    if (p.timer) clearTimeout(p.timer);
    p.reject(new ChannelError(code, message, p.delivered));
  }

  private expire(p: Pending): void {
    p.timer = undefined;
    const q = this.queue.indexOf(p);
    if (q >= 0) this.queue.splice(q, 1);
    else if (!this.inflight.delete(p.request.id)) return;
    this.fail(p, 'TIMEOUT', `no answer from ${this.address} before the deadline`);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const stream = this.stream;
    if (this.state !== 'ready' || !stream) return;
    while (this.queue.length > 0) {
      const chunk = this.queue.splice(0, this.opts.maxBatchSize);
      for (const p of chunk) {
        p.delivered = true;
        this.inflight.set(p.request.id, p);
      }
      stream.write({ requests: chunk.map((p) => p.request) });
      this.opts.onBatch?.(chunk.length);
    }
  }
}
