import { type ChannelCredentials, type ChannelOptions, credentials as grpcCredentials } from '@grpc/grpc-js';
import { kv, OmniError } from '@omnidict/proto';
import { parseAddresses } from './addresses.js';
import { type Bytes, toBuffer, toKey } from './bytes.js';
import { backoffMs, callUnary, neverSent, sleep, type UnaryInvoker } from './grpcCall.js';
import { Pipeline, type PipelineOptions } from './pipeline.js';
import {
  type CallOptions,
  type CasExpectation,
  type CasResult,
  casRequest,
  type Entry,
  type GetResult,
  type PutOptions,
  putRequest,
  type ReadOptions,
  toCasResult,
  toEntry,
  toGetResult,
  type UpdateOptions,
  updateRequest,
  type WriteResult,
} from './results.js';

export interface OmniClientOptions {
  /** Router addresses (`host:port`), as an array or a comma-separated string. */
  routers: string[] | string;
  /** Deadline of a call when the call does not give one. Default 5000 ms. */
  defaultTimeoutMs?: number;
  /** Retries of an idempotent call after UNAVAILABLE, each on the next router. Default 3. */
  maxRetries?: number;
  /** First backoff step between retries; doubles per attempt with full jitter. Default 50 ms. */
  retryBaseMs?: number;
  credentials?: ChannelCredentials;
  channelOptions?: ChannelOptions;
  /**
   * How to reach a router address. Default: a grpc-js `KVClient` over `credentials`. `embedRouter`
   * (@omnidict/router) passes an in-process one, so the same client runs with no router process.
   */
  connect?: (address: string) => kv.KVClient;
}

export interface ScanOptions extends ReadOptions {
  /** Glob over key bytes: `*`, `?`, `[abc]`, `[a-z]`, `\` escapes. Default: every key. */
  pattern?: string;
  /** Cursor from the previous page; omit (or null) to start. */
  cursor?: Uint8Array | null;
  /** Page size hint; the server may return fewer. */
  limit?: number;
  keysOnly?: boolean;
}

export interface ScanPage {
  items: Entry[];
  /** Cursor for the next page; null when the scan is complete. */
  nextCursor: Buffer | null;
}

export interface BatchPutItem {
  key: Bytes;
  value: Bytes;
  ttlMs?: number;
}

/**
 * OmniClient is the typed promise API over the router's `omnidict.v1.KV` service.
 *
 * Contract: every call carries a gRPC deadline (`timeoutMs` or `defaultTimeoutMs`) covering all of
 * its retries; an expired deadline throws OmniError TIMEOUT. Only idempotent reads (get, exists, ttl,
 * scan, batchGet) are retried on UNAVAILABLE, with backoff, moving to the next router each time. A
 * write is retried only when grpc-js proves it never left the process (no connection established);
 * a write that may have been applied is never resent — the caller sees UNAVAILABLE or TIMEOUT.
 * Every failure is an OmniError.
 */
export class OmniClient {
  readonly routers: readonly string[];
  private readonly defaultTimeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly credentials: ChannelCredentials;
  private readonly channelOptions: ChannelOptions;
  private readonly connect: ((address: string) => kv.KVClient) | undefined;
  private readonly clients = new Map<string, kv.KVClient>();
  private readonly pipelines = new Set<Pipeline>();
  /** Index of the router calls go to first; moves on after UNAVAILABLE. */
  private current = 0;
  private closed = false;

  constructor(opts: OmniClientOptions) {
    this.routers = parseAddresses('router', opts.routers);
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 5000;
    this.maxRetries = opts.maxRetries ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? 50;
    this.credentials = opts.credentials ?? grpcCredentials.createInsecure();
    this.channelOptions = opts.channelOptions ?? {};
    this.connect = opts.connect;
  }

  async put(key: Bytes, value: Bytes, opts: PutOptions = {}): Promise<WriteResult> {
    const req = putRequest(key, value, opts);
    const res = await this.invoke('Put', false, opts, (c) => c.put.bind(c, req));
    return { modIndex: res.modIndex };
  }

  /** Returns null when the key does not exist (or has expired). */
  async get(key: Bytes, opts: ReadOptions = {}): Promise<GetResult | null> {
    const req: kv.GetRequest = { key: toKey(key), stale: opts.stale ?? false };
    return toGetResult(await this.invoke('Get', true, opts, (c) => c.get.bind(c, req)));
  }

  /** Writes only when the key exists; throws OmniError NOT_FOUND otherwise. */
  async update(key: Bytes, value: Bytes, opts: UpdateOptions = {}): Promise<WriteResult> {
    const req = updateRequest(key, value, opts);
    const res = await this.invoke('Update', false, opts, (c) => c.update.bind(c, req));
    return { modIndex: res.modIndex };
  }

  /** Returns whether the key existed. */
  async delete(key: Bytes, opts: CallOptions = {}): Promise<boolean> {
    const req: kv.DeleteRequest = { key: toKey(key) };
    return (await this.invoke('Delete', false, opts, (c) => c.delete.bind(c, req))).deleted;
  }

  async exists(key: Bytes, opts: ReadOptions = {}): Promise<boolean> {
    const req: kv.ExistsRequest = { key: toKey(key), stale: opts.stale ?? false };
    return (await this.invoke('Exists', true, opts, (c) => c.exists.bind(c, req))).exists;
  }

  /** Sets a time to live; returns false when the key does not exist. */
  async expire(key: Bytes, ttlMs: number, opts: CallOptions = {}): Promise<boolean> {
    const req: kv.ExpireRequest = { key: toKey(key), ttlMs: checkPositive('ttlMs', ttlMs) };
    return (await this.invoke('Expire', false, opts, (c) => c.expire.bind(c, req))).applied;
  }

  /** Remaining time to live in ms; -2 when the key does not exist, -1 when it has no expiry. */
  async ttl(key: Bytes, opts: CallOptions = {}): Promise<number> {
    const req: kv.TtlRequest = { key: toKey(key) };
    return (await this.invoke('Ttl', true, opts, (c) => c.ttl.bind(c, req))).ttlMs;
  }

  /** Removes an expiry; returns true when one was removed. */
  async persist(key: Bytes, opts: CallOptions = {}): Promise<boolean> {
    const req: kv.PersistRequest = { key: toKey(key) };
    return (await this.invoke('Persist', false, opts, (c) => c.persist.bind(c, req))).applied;
  }

  async cas(key: Bytes, expect: CasExpectation, value: Bytes, opts: PutOptions = {}): Promise<CasResult> {
    const req = casRequest(key, expect, value, opts);
    return toCasResult(await this.invoke('CompareAndSwap', false, opts, (c) => c.compareAndSwap.bind(c, req)));
  }

  /** One result per key, in order; null for an absent key. */
  async batchGet(keys: Bytes[], opts: ReadOptions = {}): Promise<(GetResult | null)[]> {
    const req: kv.BatchGetRequest = { keys: keys.map(toKey), stale: opts.stale ?? false };
    const res = await this.invoke('BatchGet', true, opts, (c) => c.batchGet.bind(c, req));
    return res.results.map(toGetResult);
  }

  /** Returns the mod index of each put, in order. */
  async batchPut(items: BatchPutItem[], opts: CallOptions = {}): Promise<number[]> {
    const req: kv.BatchPutRequest = {
      puts: items.map((it) => putRequest(it.key, it.value, it.ttlMs === undefined ? {} : { ttlMs: it.ttlMs })),
    };
    return (await this.invoke('BatchPut', false, opts, (c) => c.batchPut.bind(c, req))).modIndexes;
  }

  /** One page of a scan; pass `nextCursor` back to continue. */
  async scan(opts: ScanOptions = {}): Promise<ScanPage> {
    const req: kv.ScanRequest = {
      pattern: opts.pattern ?? '',
      cursor: opts.cursor ? toBuffer(opts.cursor) : Buffer.alloc(0),
      limit: opts.limit ?? 0,
      keysOnly: opts.keysOnly ?? false,
      stale: opts.stale ?? false,
    };
    const res = await this.invoke('Scan', true, opts, (c) => c.scan.bind(c, req));
    return { items: res.kvs.map(toEntry), nextCursor: res.nextCursor.length > 0 ? res.nextCursor : null };
  }

  /** Every key matching `pattern`, walking all scan pages; each page gets its own deadline. */
  async *keys(pattern = '', opts: ReadOptions & { pageSize?: number } = {}): AsyncGenerator<Buffer> {
    let cursor: Buffer | null = null;
    do {
      const page: ScanPage = await this.scan({
        ...opts,
        pattern,
        cursor,
        limit: opts.pageSize ?? 1000,
        keysOnly: true,
      });
      for (const item of page.items) yield item.key;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /** Deletes every key in the cluster; returns how many were deleted. */
  async flush(opts: CallOptions = {}): Promise<number> {
    const req: kv.FlushRequest = {};
    return (await this.invoke('Flush', false, opts, (c) => c.flush.bind(c, req))).deleted;
  }

  /**
   * pipeline opens a multiplexed stream (the `Stream` RPC) for high-throughput clients: many
   * requests in flight on one stream, answered out of order. Close it when done (client.close()
   * closes it too).
   */
  pipeline(opts: PipelineOptions = {}): Pipeline {
    this.checkOpen();
    const p = new Pipeline(
      () => this.clientFor(this.routers[this.current]!),
      () => this.routers[this.current]!,
      () => this.rotate(this.current),
      { defaultTimeoutMs: this.defaultTimeoutMs, ...opts },
      () => this.pipelines.delete(p),
    );
    this.pipelines.add(p);
    return p;
  }

  /** Closes pipelines and channels; later calls fail with CANCELLED. */
  close(): void {
    this.closed = true;
    for (const p of [...this.pipelines]) p.close();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private checkOpen(): void {
    if (this.closed) throw new OmniError('CANCELLED', 'client is closed');
  }

  private clientFor(addr: string): kv.KVClient {
    this.checkOpen();
    let c = this.clients.get(addr);
    if (!c) {
      c = this.connect?.(addr) ?? new kv.KVClient(addr, this.credentials, this.channelOptions);
      this.clients.set(addr, c);
    }
    return c;
  }

  /** Moves to the router after `from`, unless another failure already moved on. */
  private rotate(from: number): void {
    if (this.current === from) this.current = (from + 1) % this.routers.length;
  }

  private async invoke<Res>(
    method: string,
    idempotent: boolean,
    opts: CallOptions,
    bind: (c: kv.KVClient) => UnaryInvoker<Res>,
  ): Promise<Res> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const deadlineMs = Date.now() + timeoutMs;
    const unreachable = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      const index = this.current;
      const addr = this.routers[index]!;
      try {
        return await callUnary(bind(this.clientFor(addr)), deadlineMs, `router ${addr}`, method);
      } catch (err) {
        if (!(err instanceof OmniError)) throw err;
        if (err.code === 'UNAVAILABLE') this.rotate(index);
        if (err.code === 'TIMEOUT' && Date.now() >= deadlineMs) {
          throw new OmniError('TIMEOUT', `${method} on ${addr}: deadline of ${timeoutMs} ms exceeded`, {
            cause: err,
          });
        }
        if (neverSent(err)) unreachable.add(addr);
        const mayRetry = idempotent ? err.retryable : neverSent(err);
        const waitMs = backoffMs(attempt, this.retryBaseMs);
        if (!mayRetry || attempt >= this.maxRetries || Date.now() + waitMs >= deadlineMs) {
          if (err.code === 'UNAVAILABLE' && unreachable.size > 1) {
            throw new OmniError('UNAVAILABLE', `no router reachable (${[...unreachable].join(', ')}): ${err.message}`, {
              cause: err,
            });
          }
          throw err;
        }
        await sleep(waitMs);
      }
    }
  }
}

function checkPositive(name: string, ms: number): number {
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new OmniError('INVALID_ARGUMENT', `${name} must be a positive integer number of ms, got ${ms}`);
  }
  return ms;
}
