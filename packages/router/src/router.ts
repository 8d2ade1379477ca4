import { type kv, type nodepb, OmniError, type pdpb, ringPosition } from '@omnidict/proto';
import type { Logger } from './logger.js';
import type { RouterMetrics } from './metrics.js';
import { ChannelError, NodeChannel } from './nodeChannel.js';
import { PdWatcher } from './pdWatcher.js';
import { RING_END, type Route, RouteTable } from './routeTable.js';
import { decodeCursor, encodeCursor, type ScanCursor } from './scanCursor.js';

type Op = NonNullable<nodepb.NodeRequest['op']>;
type OpCase = Op['$case'];
type OpOf<C extends OpCase> = Extract<Op, { $case: C }>;
type Result = NonNullable<nodepb.NodeResponse['result']>;
type ResultOf<C extends OpCase> = Extract<Result, { $case: C }>['value'];

/** How one request is to be executed. */
export interface CallContext {
  /** Absolute time (ms since the epoch) after which the router gives up with TIMEOUT. */
  deadlineMs: number;
  /**
   * Whether the operation may be re-executed after it possibly reached a node. Reads and
   * DeleteRange are; writes are not (see docs/router.md, "Retries").
   */
  idempotent: boolean;
  staleRead?: boolean;
}

export interface RouterCoreOptions {
  pdAddresses: readonly string[];
  logger: Logger;
  metrics?: RouterMetrics;
  /** Largest NodeRequestBatch written to a node. */
  maxBatchSize?: number;
  /** Retry backoff bounds (ms); the wait doubles per attempt, with jitter. */
  minRetryBackoffMs?: number;
  maxRetryBackoffMs?: number;
  /** Node channel reconnect bounds (ms). */
  minReconnectBackoffMs?: number;
  maxReconnectBackoffMs?: number;
}

/** Default and largest number of keys in one Scan page. */
export const DEFAULT_SCAN_LIMIT = 100;
export const MAX_SCAN_LIMIT = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Router routes requests to shard leaders and retries on stale routes. It holds no durable state:
 * the range table is a cache of PD's map plus hints from nodes, so any number of routers can serve
 * one cluster.
 */
export class Router {
  readonly table = new RouteTable();
  readonly pd: PdWatcher;
  private readonly channels = new Map<string, NodeChannel>();
  private readonly opts: RouterCoreOptions;
  private readonly log: Logger;
  private closed = false;

  constructor(options: RouterCoreOptions) {
    this.opts = options;
    this.log = options.logger;
    this.pd = new PdWatcher({
      addresses: options.pdAddresses,
      logger: options.logger.child({ component: 'pdWatcher' }),
      onMap: (map) => this.onMap(map),
    });
  }

  start(): void {
    this.pd.start();
  }

  close(): void {
    this.closed = true;
    this.pd.close();
    for (const c of this.channels.values()) c.close();
    this.channels.clear();
  }

  /**
   * execute sends one node operation for ring position `pos` to the shard owning it, retrying
   * NOT_LEADER (following the hint), STALE_EPOCH (updating the table from the error, or from PD),
   * SHARD_NOT_FOUND and UNAVAILABLE (refresh from PD, back off) until `ctx.deadlineMs`. Returns the
   * result and the route that served it. `makeOp` is called once per attempt with the route chosen.
   */
  async execute<C extends OpCase>(
    pos: number,
    opCase: C,
    makeOp: (route: Route) => OpOf<C>['value'],
    ctx: CallContext,
  ): Promise<{ result: ResultOf<C>; route: Route }> {
    let lastError: OmniError | undefined;
    let failures = 0;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new OmniError('UNAVAILABLE', 'router is shutting down');
      const remaining = ctx.deadlineMs - Date.now();
      if (remaining <= 0) throw deadlineError(attempt - 1, lastError);
      if (failures > 0) {
        await sleep(Math.min(this.backoffMs(failures), ctx.deadlineMs - Date.now()));
        if (ctx.deadlineMs - Date.now() <= 0) throw deadlineError(attempt - 1, lastError);
      }
      const route = this.table.locate(pos);
      if (!route) {
        lastError = new OmniError('UNAVAILABLE', `no shard known for ring position ${pos}`);
        failures++;
        await this.refresh(ctx.deadlineMs, 'NO_ROUTE');
        continue;
      }
      const nodeId = this.table.targetNode(route);
      const address = this.table.nodeAddress(nodeId);
      if (address === undefined) {
        lastError = new OmniError('UNAVAILABLE', `no address known for node ${nodeId} (shard ${route.shard.id})`);
        failures++;
        await this.refresh(ctx.deadlineMs, 'NO_ADDRESS');
        continue;
      }
      const header = {
        shardId: route.shard.id,
        staleRead: ctx.staleRead ?? false,
        timeoutMs: Math.max(1, Math.min(0xffffffff, ctx.deadlineMs - Date.now())),
        ...(route.shard.epoch ? { epoch: route.shard.epoch } : {}),
      };
      const op = { $case: opCase, value: makeOp(route) } as Op;
      let response: nodepb.NodeResponse;
      try {
        response = await this.channel(address).send({ header, op }, ctx.deadlineMs - Date.now());
      } catch (e) {
        if (!(e instanceof ChannelError)) throw e;
        // The node may be down or paused (SIGSTOP, a partition: its stream stays open and requests
        // just time out): the next request to this shard tries another replica, whose NOT_LEADER
        // hint finds the new leader, and PD is asked where the leader went. This holds for a write
        // that is not retried too, so the caller's next write does not wait on the same node.
        this.table.applyLeaderHint(route.shard.id, nodeId, 0, '');
        void this.refresh(ctx.deadlineMs, 'CHANNEL');
        if (e.delivered && !ctx.idempotent) {
          // The write may have been applied: re-sending could apply it twice. Say so and stop.
          throw new OmniError(
            e.code,
            `${e.message}; the write may or may not have been applied (not retried: not idempotent)`,
          );
        }
        lastError = e;
        failures++;
        this.opts.metrics?.retries.inc({ reason: `CHANNEL_${e.code}` });
        continue;
      }
      const errPb = response.error;
      if (!errPb || errPb.code === '') {
        const result = response.result;
        if (result?.$case !== opCase) {
          throw new OmniError('INTERNAL', `node ${nodeId} answered ${opCase} with ${result?.$case ?? 'nothing'}`);
        }
        return { result: result.value as ResultOf<C>, route };
      }
      const err = OmniError.fromProto(errPb);
      lastError = err;
      this.opts.metrics?.retries.inc({ reason: err.code });
      switch (err.code) {
        case 'NOT_LEADER': {
          const hinted = err.details.leaderNodeId ?? 0;
          this.table.applyLeaderHint(route.shard.id, nodeId, hinted, err.details.leaderAddress ?? '');
          // A useful hint is retried at once; a missing or circular one (an election) backs off.
          if (hinted === 0 || hinted === nodeId) failures++;
          break;
        }
        case 'STALE_EPOCH': {
          const descriptors = [
            ...(err.details.currentShard ? [err.details.currentShard] : []),
            ...(err.details.newShards ?? []),
          ];
          if (!this.table.applyDescriptors(descriptors)) {
            failures++;
            await this.refresh(ctx.deadlineMs, 'STALE_EPOCH');
          }
          break;
        }
        case 'SHARD_NOT_FOUND':
          if (err.details.currentShard) this.table.applyDescriptors([err.details.currentShard]);
          this.table.applyLeaderHint(route.shard.id, nodeId, 0, '');
          failures++;
          await this.refresh(ctx.deadlineMs, 'SHARD_NOT_FOUND');
          break;
        case 'UNAVAILABLE':
          // Contract with nodes: UNAVAILABLE means the request was not applied (no quorum, not
          // ready); an outcome-unknown proposal is answered with TIMEOUT instead.
          failures++;
          void this.refresh(ctx.deadlineMs, 'UNAVAILABLE');
          break;
        default:
          throw err;
      }
    }
  }

  /** Convenience for single-key operations: routes by the key's ring position. */
  async keyOp<C extends OpCase>(key: Uint8Array, opCase: C, value: OpOf<C>['value'], ctx: CallContext) {
    const { result } = await this.execute(ringPosition(key), opCase, () => value, ctx);
    return result;
  }

  /**
   * scanPage returns up to `limit` keys in (ring position, key) order starting at the request's
   * cursor, walking shards in ring order. The next cursor is (range start, last position, last key),
   * so resuming routes by position: correct across splits and moves between pages. A page may be
   * short (the router stops early when half of the caller's time is spent) but never skips keys.
   */
  async scanPage(req: kv.ScanRequest, deadlineMs: number): Promise<kv.ScanResponse> {
    const limit = Math.min(req.limit === 0 ? DEFAULT_SCAN_LIMIT : req.limit, MAX_SCAN_LIMIT);
    let point: ScanCursor =
      req.cursor.length > 0 ? decodeCursor(req.cursor) : { rangeStart: 0, pos: 0, key: Buffer.alloc(0) };
    const started = Date.now();
    const softDeadline = started + (deadlineMs - started) / 2;
    const kvs: kv.KeyValue[] = [];
    while (kvs.length < limit) {
      const from = point;
      const { result, route } = await this.execute(
        from.pos,
        'scan',
        (r) => ({
          pattern: req.pattern,
          // "Strictly after (pos, empty key)" is "from pos inclusive": empty keys are never stored.
          hasAfter: !(from.key.length === 0 && from.pos === r.shard.start),
          afterPos: from.pos,
          afterKey: from.key,
          limit: limit - kvs.length,
          keysOnly: req.keysOnly,
        }),
        { deadlineMs, idempotent: true, staleRead: req.stale },
      );
      const n = Math.min(result.kvs.length, limit - kvs.length);
      for (let i = 0; i < n; i++) kvs.push(result.kvs[i]!);
      if (n > 0) {
        const last = result.kvs[n - 1]!;
        point = {
          rangeStart: route.shard.start,
          pos: result.positions[n - 1] ?? ringPosition(last.key),
          key: last.key,
        };
      }
      if (result.done && n === result.kvs.length) {
        if (route.shard.end >= RING_END) return { kvs, nextCursor: Buffer.alloc(0) };
        point = { rangeStart: route.shard.end, pos: route.shard.end, key: Buffer.alloc(0) };
      }
      if (Date.now() > softDeadline && kvs.length > 0) break;
    }
    return { kvs, nextCursor: encodeCursor(point) };
  }

  /**
   * flush runs DeleteRange over the whole ring, one chain per shard known at the start, in
   * parallel. Each chain walks its range by position, so a split during the flush is covered.
   * Returns the number of keys deleted.
   */
  async flush(deadlineMs: number): Promise<number> {
    if (!this.table.hasMap) await this.refresh(deadlineMs, 'FLUSH');
    const routes = this.table.all();
    const ranges =
      routes.length > 0 ? routes.map((r) => [r.shard.start, r.shard.end] as const) : [[0, RING_END] as const];
    const counts = await Promise.all(
      ranges.map(async ([start, end]) => {
        let deleted = 0;
        let pos = start;
        while (pos < end) {
          const { result, route } = await this.execute(pos, 'deleteRange', () => ({}), {
            deadlineMs,
            idempotent: true,
          });
          deleted += result.deleted;
          pos = route.shard.end;
        }
        return deleted;
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Forces a PD refresh, bounded by the deadline; failures are logged and the caller retries. */
  async refresh(deadlineMs: number, reason: string): Promise<void> {
    const remaining = deadlineMs - Date.now();
    if (remaining <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.pd.refresh(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, remaining);
        }),
      ]);
    } catch (e) {
      this.log.warn({ reason, err: (e as Error).message }, 'shard map refresh failed');
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  private onMap(map: pdpb.ShardMap): void {
    if (this.table.applyMap(map)) {
      this.opts.metrics?.mapRevision.inc();
      this.log.debug({ revision: map.revision, shards: this.table.size }, 'shard map applied');
    }
  }

  private channel(address: string): NodeChannel {
    let c = this.channels.get(address);
    if (!c) {
      const metrics = this.opts.metrics;
      c = new NodeChannel(address, {
        logger: this.log.child({ node: address }),
        ...(this.opts.maxBatchSize !== undefined ? { maxBatchSize: this.opts.maxBatchSize } : {}),
        ...(this.opts.minReconnectBackoffMs !== undefined ? { minBackoffMs: this.opts.minReconnectBackoffMs } : {}),
        ...(this.opts.maxReconnectBackoffMs !== undefined ? { maxBackoffMs: this.opts.maxReconnectBackoffMs } : {}),
        ...(metrics
          ? {
              onBatch: (size: number) => {
                metrics.nodeBatches.inc();
                metrics.nodeRequests.inc(size);
              },
            }
          : {}),
      });
      this.channels.set(address, c);
    }
    return c;
  }

  private backoffMs(failures: number): number {
    const min = this.opts.minRetryBackoffMs ?? 10;
    const max = this.opts.maxRetryBackoffMs ?? 500;
    const base = Math.min(max, min * 2 ** Math.min(failures - 1, 16));
    return base / 2 + Math.random() * (base / 2);
  }
}

function deadlineError(attempts: number, last: OmniError | undefined): OmniError {
  const why = last ? `; last error ${last.code}: ${last.message}` : '';
  return new OmniError('TIMEOUT', `deadline exceeded after ${attempts} attempt(s)${why}`, last ? { cause: last } : {});
}
