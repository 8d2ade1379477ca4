import { type common, type kv, OmniError, ringPosition } from '@omnidict/proto';
import { type CasExpectation, decodeCommand, type KvCommand, type SweepEntry } from './commands.js';
import { compileGlob } from './compileGlob.js';
import { dataKey, dataRange, decodeDataKey, decodeExpiryKey, expiredRange, expiryKey, type KeyRange } from './keys.js';
import { decodeRecord, encodeRecord, isExpired, type ValueRecord } from './record.js';

/** Read side of the node's LSM (structurally the runtime's `KvReader`). */
export interface KvReader {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Ascending iteration over [gte, lt). */
  iterate(range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]>;
}

/** Write side of one atomic apply batch (a classic-level chained batch or a list of ops; see levelAdapters.ts). */
export interface KvWriteBatch {
  put(key: Uint8Array, value: Uint8Array): void;
  del(key: Uint8Array): void;
}

/**
 * ApplyContext is the state of ONE atomic apply batch: reads during apply go through `overlay`
 * first, so several commands in the batch that touch the same key see each other's writes before
 * the batch reaches the LSM. Contract: the caller writes `batch` (together with the apply state)
 * before creating the next context whose reads could touch the same keys, and shares one context
 * among all shards applied into the same batch.
 */
export class ApplyContext {
  /** latin1(dataKey) → record written in this batch, or null when deleted in it. */
  readonly overlay = new Map<string, ValueRecord | null>();

  /**
   * `ttlKeys` (optional): the node's TtlKeySet. With it, a plain put skips the LSM read of a key
   * that cannot carry an expiry (see `readForOverwrite`); without it every overwrite reads.
   */
  constructor(
    readonly reader: KvReader,
    readonly batch: KvWriteBatch,
    readonly ttlKeys?: TtlKeySet,
  ) {}

  async read(key: Buffer): Promise<ValueRecord | undefined> {
    const o = this.overlay.get(key.toString('latin1'));
    if (o !== undefined) return o ?? undefined;
    const bytes = await this.reader.get(key);
    return bytes === undefined ? undefined : decodeRecord(bytes);
  }

  /**
   * The previous record as far as an unconditional overwrite needs it: only its expiry matters (its
   * index entry must go). When the TtlKeySet says the stored record has no expiry, no LSM read is
   * made and undefined is returned — the write is then byte-identical to one that read a record
   * without expiry, so apply stays deterministic across replicas whatever each one's set holds, as
   * long as the set is a superset of the keys whose stored record has an expiry.
   */
  async readForOverwrite(key: Buffer): Promise<ValueRecord | undefined> {
    const id = key.toString('latin1');
    const o = this.overlay.get(id);
    if (o !== undefined) return o ?? undefined;
    if (this.ttlKeys !== undefined && !this.ttlKeys.has(id)) return undefined;
    const bytes = await this.reader.get(key);
    return bytes === undefined ? undefined : decodeRecord(bytes);
  }

  /** Writes `record` under `key`, keeping the expiry index in step with the previous record. */
  write(key: Buffer, pos: number, userKey: Uint8Array, prev: ValueRecord | undefined, record: ValueRecord): void {
    if (prev !== undefined && prev.expireAtMs !== 0 && prev.expireAtMs !== record.expireAtMs) {
      this.batch.del(expiryKey(prev.expireAtMs, pos, userKey));
    }
    if (record.expireAtMs !== 0 && prev?.expireAtMs !== record.expireAtMs) {
      this.batch.put(expiryKey(record.expireAtMs, pos, userKey), EMPTY);
    }
    this.batch.put(key, encodeRecord(record));
    const id = key.toString('latin1');
    this.overlay.set(id, record);
    if (record.expireAtMs !== 0) this.ttlKeys?.add(id);
    else this.ttlKeys?.delete(id);
  }

  remove(key: Buffer, pos: number, userKey: Uint8Array, prev: ValueRecord): void {
    if (prev.expireAtMs !== 0) this.batch.del(expiryKey(prev.expireAtMs, pos, userKey));
    this.batch.del(key);
    const id = key.toString('latin1');
    this.overlay.set(id, null);
    this.ttlKeys?.delete(id);
  }
}

/**
 * TtlKeySet: latin1(dataKey) of every key on this node whose stored record may carry an expiry. It
 * must be a SUPERSET of the truth (extra members only cost a read): built from the expiry index at
 * open (`Store.open`, before any apply), added to by every write with an expiry and by snapshot
 * installs, removed from only when a write leaves the key without expiry or deletes it. Data keys
 * are node-wide unique (position ‖ key), so one set serves every shard of the node.
 */
export type TtlKeySet = Set<string>;

const EMPTY = Buffer.alloc(0);

/** Outcome of applying one command. Failures are values: apply is deterministic and never throws for them. */
export type KvResult =
  | { readonly type: 'put'; readonly modIndex: number }
  | { readonly type: 'update'; readonly modIndex: number }
  | { readonly type: 'delete'; readonly deleted: boolean; readonly modIndex: number }
  | { readonly type: 'expire'; readonly applied: boolean; readonly modIndex: number }
  | { readonly type: 'persist'; readonly applied: boolean; readonly modIndex: number }
  | {
      readonly type: 'cas';
      readonly swapped: boolean;
      readonly modIndex: number;
      /** On failure, the live record (absent when the key does not exist). */
      readonly current?: kv.KeyValue;
    }
  | { readonly type: 'deleteRange'; readonly deleted: number; readonly modIndex: number }
  | { readonly type: 'expireSweep'; readonly deleted: number }
  | { readonly type: 'split'; readonly left: common.ShardDescriptor; readonly right: common.ShardDescriptor }
  | { readonly type: 'error'; readonly error: OmniError };

export interface ScanOptions {
  readonly pattern: string;
  /** Resume strictly after (pos, key); undefined = from the shard's start. */
  readonly after?: { readonly pos: number; readonly key: Uint8Array };
  readonly limit: number;
  readonly keysOnly: boolean;
}

export interface ScanResult {
  readonly kvs: kv.KeyValue[];
  /** Ring position of each returned key, parallel to kvs. */
  readonly positions: number[];
  /** True when the shard's range was scanned to its end. */
  readonly done: boolean;
}

/** Largest scan page a node serves. */
export const MAX_SCAN_LIMIT = 10_000;
export const DEFAULT_SCAN_LIMIT = 100;

/**
 * KvStateMachine is one shard replica's key-value state: the data keys of the ring positions in its
 * descriptor's [start, end) inside the node's shared LSM. `apply` is deterministic: replicas that
 * apply the same log from the same state write byte-identical data. Writes return modIndex = the
 * entry's Raft index (0 when the command changed nothing). A single-key command whose key is
 * outside the range at apply time (a split was applied first) fails STALE_EPOCH and writes nothing.
 */
export class KvStateMachine {
  private desc: common.ShardDescriptor;

  constructor(descriptor: common.ShardDescriptor) {
    this.desc = descriptor;
  }

  get descriptor(): common.ShardDescriptor {
    return this.desc;
  }

  /** Replaces the descriptor (membership changes; recovery). The range may only be changed by Split. */
  setDescriptor(descriptor: common.ShardDescriptor): void {
    this.desc = descriptor;
  }

  /** True when ring position `pos` belongs to this shard. */
  owns(pos: number): boolean {
    return pos >= this.desc.start && pos < this.desc.end;
  }

  /** The shard's data keys. */
  dataRange(): KeyRange {
    return dataRange(this.desc.start, this.desc.end);
  }

  /** Decodes and applies a log entry's data (see `apply`). */
  applyEntry(ctx: ApplyContext, index: number, data: Uint8Array): Promise<KvResult> {
    return this.apply(ctx, index, decodeCommand(data));
  }

  /** Applies a committed command at Raft index `index`, adding its writes to `ctx.batch`. */
  async apply(ctx: ApplyContext, index: number, cmd: KvCommand): Promise<KvResult> {
    switch (cmd.type) {
      case 'deleteRange':
        return this.applyDeleteRange(ctx, index);
      case 'expireSweep':
        return this.applyExpireSweep(ctx, cmd.entries);
      case 'split':
        return this.applySplit(cmd.at, cmd.newShardId, cmd.newReplicaIds);
      default:
        break;
    }
    const pos = ringPosition(cmd.key);
    if (!this.owns(pos)) return { type: 'error', error: this.keyOutsideRange(pos) };
    const key = dataKey(pos, cmd.key);
    if (cmd.type === 'put') {
      // A put's outcome does not depend on the stored record; it is read only for its expiry entry.
      const prev = await ctx.readForOverwrite(key);
      ctx.write(key, pos, cmd.key, prev, {
        value: Buffer.from(cmd.value),
        expireAtMs: cmd.expireAtMs,
        modIndex: index,
      });
      return { type: 'put', modIndex: index };
    }
    const stored = await ctx.read(key);
    const live = stored !== undefined && !isExpired(stored, cmd.nowMs) ? stored : undefined;
    switch (cmd.type) {
      case 'update': {
        if (live === undefined) {
          return { type: 'error', error: new OmniError('NOT_FOUND', 'update of a key that does not exist') };
        }
        const expireAtMs = cmd.keepTtl ? live.expireAtMs : cmd.expireAtMs;
        ctx.write(key, pos, cmd.key, stored, { value: Buffer.from(cmd.value), expireAtMs, modIndex: index });
        return { type: 'update', modIndex: index };
      }
      case 'delete':
        // An expired record is deleted too (reclaiming it early) but reported as not deleted.
        if (stored !== undefined) ctx.remove(key, pos, cmd.key, stored);
        return { type: 'delete', deleted: live !== undefined, modIndex: live !== undefined ? index : 0 };
      case 'expire':
        if (live === undefined) return { type: 'expire', applied: false, modIndex: 0 };
        if (cmd.expireAtMs !== 0 && cmd.expireAtMs <= cmd.nowMs) {
          // Redis: EXPIRE with a non-positive TTL deletes the key.
          ctx.remove(key, pos, cmd.key, live);
        } else {
          ctx.write(key, pos, cmd.key, stored, { value: live.value, expireAtMs: cmd.expireAtMs, modIndex: index });
        }
        return { type: 'expire', applied: true, modIndex: index };
      case 'persist':
        if (live === undefined || live.expireAtMs === 0) return { type: 'persist', applied: false, modIndex: 0 };
        ctx.write(key, pos, cmd.key, stored, { value: live.value, expireAtMs: 0, modIndex: index });
        return { type: 'persist', applied: true, modIndex: index };
      case 'cas': {
        if (!casHolds(cmd.expected, live)) {
          const result: KvResult =
            live === undefined
              ? { type: 'cas', swapped: false, modIndex: 0 }
              : { type: 'cas', swapped: false, modIndex: 0, current: toKeyValue(cmd.key, live, false) };
          return result;
        }
        ctx.write(key, pos, cmd.key, stored, {
          value: Buffer.from(cmd.value),
          expireAtMs: cmd.expireAtMs,
          modIndex: index,
        });
        return { type: 'cas', swapped: true, modIndex: index };
      }
    }
  }

  /** Deletes every record of the range (expired ones included); `deleted` counts the records removed. */
  private async applyDeleteRange(ctx: ApplyContext, index: number): Promise<KvResult> {
    const range = this.dataRange();
    let deleted = 0;
    const seen = new Set<string>();
    for await (const [k, v] of ctx.reader.iterate(range)) {
      const key = Buffer.from(k.buffer, k.byteOffset, k.byteLength);
      const id = key.toString('latin1');
      seen.add(id);
      const o = ctx.overlay.get(id);
      if (o === null) continue;
      const record = o ?? decodeRecord(v);
      const { pos, userKey } = decodeDataKey(key);
      ctx.remove(Buffer.from(key), pos, userKey, record);
      deleted++;
    }
    // Records written earlier in this same batch are not in the LSM yet.
    const lo = Buffer.from(range.gte).toString('latin1');
    const hi = Buffer.from(range.lt).toString('latin1');
    for (const [id, record] of [...ctx.overlay]) {
      if (record === null || seen.has(id) || id < lo || id >= hi) continue;
      const key = Buffer.from(id, 'latin1');
      const { pos, userKey } = decodeDataKey(key);
      ctx.remove(key, pos, userKey, record);
      deleted++;
    }
    return { type: 'deleteRange', deleted, modIndex: index };
  }

  /** Deletes each listed key whose record still carries exactly the expiry the leader saw. */
  private async applyExpireSweep(ctx: ApplyContext, entries: readonly SweepEntry[]): Promise<KvResult> {
    let deleted = 0;
    for (const e of entries) {
      const pos = ringPosition(e.key);
      if (!this.owns(pos)) continue;
      const key = dataKey(pos, e.key);
      const stored = await ctx.read(key);
      if (stored === undefined || stored.expireAtMs !== e.expireAtMs) {
        // The index entry is stale (e.g. left over from before a snapshot install): drop it so the
        // sweep does not propose it again. On replicas without it this is a no-op delete.
        ctx.batch.del(expiryKey(e.expireAtMs, pos, e.key));
        continue;
      }
      ctx.remove(key, pos, e.key, stored);
      deleted++;
    }
    return { type: 'expireSweep', deleted };
  }

  /**
   * Split is metadata-only: this replica keeps [start, at) and the new shard gets [at, end) with the
   * same nodes, replica ids taken from `newReplicaIds` in descriptor order. Both epochs' `version`
   * bumps. The caller persists both descriptors and creates the new group.
   */
  private applySplit(at: number, newShardId: number, newReplicaIds: readonly number[]): KvResult {
    const d = this.desc;
    if (!(at > d.start && at < d.end)) {
      return {
        type: 'error',
        error: new OmniError(
          'INVALID_ARGUMENT',
          `split point ${at} is not inside shard ${d.id} [${d.start}, ${d.end})`,
          {
            currentShard: d,
          },
        ),
      };
    }
    if (newReplicaIds.length !== d.replicas.length) {
      return {
        type: 'error',
        error: new OmniError(
          'INVALID_ARGUMENT',
          `split of shard ${d.id} needs ${d.replicas.length} new replica ids, got ${newReplicaIds.length}`,
        ),
      };
    }
    const epoch = { version: (d.epoch?.version ?? 0) + 1, confVer: d.epoch?.confVer ?? 0 };
    const left: common.ShardDescriptor = { id: d.id, start: d.start, end: at, epoch, replicas: d.replicas };
    const right: common.ShardDescriptor = {
      id: newShardId,
      start: at,
      end: d.end,
      epoch: { ...epoch },
      replicas: d.replicas.map((r, i) => ({ ...r, replicaId: newReplicaIds[i] as number })),
    };
    this.desc = left;
    return { type: 'split', left, right };
  }

  private keyOutsideRange(pos: number): OmniError {
    return new OmniError(
      'STALE_EPOCH',
      `key at ring position ${pos} is outside shard ${this.desc.id} [${this.desc.start}, ${this.desc.end})`,
      { currentShard: this.desc },
    );
  }

  /** Throws STALE_EPOCH when the key does not belong to this shard. Returns its ring position. */
  checkKey(key: Uint8Array): number {
    const pos = ringPosition(key);
    if (!this.owns(pos)) throw this.keyOutsideRange(pos);
    return pos;
  }

  /** The live record of `key` at `nowMs`, or undefined. Reads committed (written) state only. */
  async get(reader: KvReader, key: Uint8Array, nowMs: number): Promise<kv.KeyValue | undefined> {
    const pos = this.checkKey(key);
    const bytes = await reader.get(dataKey(pos, key));
    if (bytes === undefined) return undefined;
    const record = decodeRecord(bytes);
    return isExpired(record, nowMs) ? undefined : toKeyValue(key, record, false);
  }

  async exists(reader: KvReader, key: Uint8Array, nowMs: number): Promise<boolean> {
    return (await this.get(reader, key, nowMs)) !== undefined;
  }

  /** Redis TTL in ms: -2 when the key does not exist, -1 when it has no expiry, else ms left (> 0). */
  async ttl(reader: KvReader, key: Uint8Array, nowMs: number): Promise<number> {
    const kvp = await this.get(reader, key, nowMs);
    if (kvp === undefined) return -2;
    if (kvp.expireAtMs === 0) return -1;
    return kvp.expireAtMs - nowMs;
  }

  /**
   * One page of live keys in (pos, key) order, strictly after `after`, matching `pattern`. Reads
   * until `limit` matches or the end of the range (the node protocol has no resume point other
   * than the last returned key, so a sparse pattern reads further).
   */
  async scan(reader: KvReader, opts: ScanOptions, nowMs: number): Promise<ScanResult> {
    const glob = compileGlob(opts.pattern);
    const limit = opts.limit <= 0 ? DEFAULT_SCAN_LIMIT : Math.min(opts.limit, MAX_SCAN_LIMIT);
    const range = this.dataRange();
    let gte: Uint8Array = range.gte;
    if (opts.after !== undefined) {
      // The smallest key strictly greater than dataKey(after): append a 0x00 byte.
      const afterKey = dataKey(opts.after.pos, opts.after.key);
      const next = Buffer.concat([afterKey, Buffer.of(0)]);
      if (Buffer.compare(next, Buffer.from(gte)) > 0) gte = next;
    }
    const kvs: kv.KeyValue[] = [];
    const positions: number[] = [];
    if (Buffer.compare(Buffer.from(gte), Buffer.from(range.lt)) >= 0) return { kvs, positions, done: true };
    for await (const [k, v] of reader.iterate({ gte, lt: range.lt })) {
      const { pos, userKey } = decodeDataKey(k);
      if (!glob.matchesAll && !glob.matches(userKey)) continue;
      const record = decodeRecord(v);
      if (isExpired(record, nowMs)) continue;
      if (kvs.length === limit) return { kvs, positions, done: false };
      kvs.push(toKeyValue(Buffer.from(userKey), record, opts.keysOnly));
      positions.push(pos);
    }
    return { kvs, positions, done: true };
  }

  /**
   * Leader side of the TTL sweep: reads the expiry index up to `nowMs` (never live data) and returns
   * the ExpireSweep command for this shard's keys, or undefined when nothing has expired.
   */
  async collectExpired(reader: KvReader, nowMs: number, limit = 1000): Promise<KvCommand | undefined> {
    return (await collectExpiredSweeps(reader, nowMs, [this], limit)).get(this);
  }
}

/**
 * The TTL sweep of many shards of one node in ONE pass over the node-wide expiry index (ordered by
 * expiry time, not by shard): each shard's ExpireSweep command with at most `limit` of its expired
 * keys; shards with none are absent. The shards' ranges must not overlap (a node's never do).
 */
export async function collectExpiredSweeps(
  reader: KvReader,
  nowMs: number,
  machines: readonly KvStateMachine[],
  limit = 1000,
): Promise<Map<KvStateMachine, KvCommand>> {
  const byStart = [...machines].sort((a, b) => a.descriptor.start - b.descriptor.start);
  const found = new Map<KvStateMachine, SweepEntry[]>();
  let open = byStart.length; // shards still below `limit`
  if (open > 0) {
    for await (const [k] of reader.iterate(expiredRange(nowMs))) {
      const e = decodeExpiryKey(k);
      const m = byStart[lastStartAtOrBefore(byStart, e.pos)];
      if (m === undefined || !m.owns(e.pos)) continue;
      let entries = found.get(m);
      if (entries === undefined) {
        entries = [];
        found.set(m, entries);
      }
      if (entries.length >= limit) continue;
      entries.push({ key: Buffer.from(e.userKey), expireAtMs: e.expireAtMs });
      if (entries.length === limit && --open === 0) break;
    }
  }
  return new Map([...found].map(([m, entries]) => [m, { type: 'expireSweep', nowMs, entries }]));
}

/** Index of the last machine (sorted by range start) whose range starts at or before `pos`; -1 if none. */
function lastStartAtOrBefore(byStart: readonly KvStateMachine[], pos: number): number {
  let lo = 0;
  let hi = byStart.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((byStart[mid] as KvStateMachine).descriptor.start <= pos) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function casHolds(expected: CasExpectation, live: ValueRecord | undefined): boolean {
  switch (expected.kind) {
    case 'absent':
      return live === undefined;
    case 'modIndex':
      // As in etcd, expecting modIndex 0 means expecting the key to be absent.
      return expected.modIndex === 0 ? live === undefined : live?.modIndex === expected.modIndex;
    case 'value':
      return live !== undefined && Buffer.compare(live.value, expected.value) === 0;
  }
}

function toKeyValue(key: Uint8Array, record: ValueRecord, keysOnly: boolean): kv.KeyValue {
  return {
    key: Buffer.from(key),
    value: keysOnly ? Buffer.alloc(0) : Buffer.from(record.value),
    modIndex: record.modIndex,
    expireAtMs: record.expireAtMs,
  };
}
