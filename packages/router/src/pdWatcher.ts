import { type ClientReadableStream, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { OmniError, pdpb } from '@omnidict/proto';
import type { Logger } from './logger.js';

export interface PdWatcherOptions {
  /** Every PD replica's address; the leader is found among them. */
  addresses: readonly string[];
  logger: Logger;
  /** Called with every map newer than (or as new as) the last one delivered. */
  onMap: (map: pdpb.ShardMap) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Per-RPC deadline of GetShardMap. */
  rpcTimeoutMs?: number;
}

/**
 * PdWatcher keeps the router's view of the shard map current.
 *
 * - It keeps one WatchShardMap stream open to the PD leader. A follower answers with a map whose
 *   header carries NOT_LEADER and `leader_address`: the watcher goes there. An unreachable PD makes
 *   it try the next address. A broken stream is reopened with exponential backoff (reset by a
 *   received map).
 * - `refresh()` forces a GetShardMap (single-flight: concurrent callers share one round trip).
 * - Only maps with a revision >= the newest seen are delivered to `onMap`.
 */
export class PdWatcher {
  private readonly opts: Required<PdWatcherOptions>;
  private readonly addresses: string[];
  private readonly clients = new Map<string, pdpb.PDClient>();
  private current = 0;
  private revision = -1;
  private stream: ClientReadableStream<pdpb.ShardMap> | undefined;
  private closed = false;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private inflightRefresh: Promise<void> | undefined;
  private firstMap: Promise<void>;
  private resolveFirstMap!: () => void;

  constructor(options: PdWatcherOptions) {
    if (options.addresses.length === 0) throw new OmniError('INVALID_ARGUMENT', 'no PD address given');
    this.opts = { minBackoffMs: 100, maxBackoffMs: 3000, rpcTimeoutMs: 2000, ...options };
    this.addresses = [...options.addresses];
    this.backoffMs = this.opts.minBackoffMs;
    this.firstMap = new Promise((resolve) => {
      this.resolveFirstMap = resolve;
    });
  }

  /** Revision of the newest map delivered (-1 before the first). */
  get latestRevision(): number {
    return this.revision;
  }

  /** The PD address currently believed to be the leader. */
  get leaderAddress(): string {
    return this.addresses[this.current] ?? this.addresses[0]!;
  }

  start(): void {
    this.openWatch();
  }

  /**
   * Resolves when the first map has been delivered; with `timeoutMs`, rejects with UNAVAILABLE if
   * none arrived by then.
   */
  waitForMap(timeoutMs?: number): Promise<void> {
    if (timeoutMs === undefined) return this.firstMap;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new OmniError('UNAVAILABLE', `no shard map from PD (${this.addresses.join(',')})`)),
        timeoutMs,
      );
      void this.firstMap.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * refresh asks the PD leader for the map now, following NOT_LEADER hints and skipping
   * unreachable replicas (each address at most twice). Rejects with UNAVAILABLE when no PD answered.
   */
  refresh(): Promise<void> {
    if (this.inflightRefresh) return this.inflightRefresh;
    const p = this.doRefresh().finally(() => {
      this.inflightRefresh = undefined;
    });
    this.inflightRefresh = p;
    return p;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.stream = undefined;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private async doRefresh(): Promise<void> {
    let lastError = 'no PD address tried';
    for (let attempt = 0; attempt < this.addresses.length * 2 && !this.closed; attempt++) {
      const address = this.leaderAddress;
      try {
        const map = await this.getShardMap(address);
        const err = map.header?.error;
        if (err && err.code !== '') {
          lastError = `${address}: ${err.code} ${err.message}`;
          if (err.code === 'NOT_LEADER') this.followHint(map.header?.leaderAddress || err.leaderAddress);
          else this.next();
          continue;
        }
        this.deliver(map);
        return;
      } catch (e) {
        lastError = `${address}: ${(e as Error).message}`;
        this.next();
      }
    }
    throw new OmniError('UNAVAILABLE', `cannot get the shard map from PD: ${lastError}`);
  }

  private getShardMap(address: string): Promise<pdpb.ShardMap> {
    return new Promise((resolve, reject) => {
      this.client(address).getShardMap(
        {},
        new Metadata(),
        { deadline: Date.now() + this.opts.rpcTimeoutMs },
        (err, map) => {
          if (err) reject(err);
          else resolve(map);
        },
      );
    });
  }

  private openWatch(): void {
    if (this.closed) return;
    const address = this.leaderAddress;
    const stream = this.client(address).watchShardMap({});
    this.stream = stream;
    let redirected = false;
    stream.on('data', (map: pdpb.ShardMap) => {
      const err = map.header?.error;
      if (err && err.code !== '') {
        redirected = true;
        if (err.code === 'NOT_LEADER') this.followHint(map.header?.leaderAddress || err.leaderAddress);
        else this.next();
        this.opts.logger.debug({ pd: address, code: err.code, next: this.leaderAddress }, 'PD watch redirected');
        stream.cancel();
        return;
      }
      this.backoffMs = this.opts.minBackoffMs;
      this.deliver(map);
    });
    const ended = (why: string) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (this.closed) return;
      if (redirected) {
        // A hint is fresh information: follow it at once, but never spin faster than the minimum backoff.
        this.scheduleWatch(this.opts.minBackoffMs);
        return;
      }
      this.opts.logger.warn({ pd: address, reason: why }, 'PD watch stream broken; reconnecting');
      this.next();
      this.scheduleWatch(this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs);
    };
    stream.on('error', (e: ServiceError) => ended(e.details || e.message));
    stream.on('end', () => ended('stream ended by PD'));
  }

  private scheduleWatch(delayMs: number): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.openWatch();
    }, delayMs);
  }

  private deliver(map: pdpb.ShardMap): void {
    if (map.revision < this.revision) return;
    this.revision = map.revision;
    this.opts.onMap(map);
    this.resolveFirstMap();
  }

  private followHint(address: string | undefined): void {
    if (!address) {
      this.next();
      return;
    }
    let i = this.addresses.indexOf(address);
    if (i < 0) {
      // A leader we were not told about (e.g. a replaced PD replica): remember it.
      this.addresses.push(address);
      i = this.addresses.length - 1;
    }
    this.current = i;
  }

  private next(): void {
    this.current = (this.current + 1) % this.addresses.length;
  }

  private client(address: string): pdpb.PDClient {
    let c = this.clients.get(address);
    if (!c) {
      c = new pdpb.PDClient(address, credentials.createInsecure());
      this.clients.set(address, c);
    }
    return c;
  }
}
