/**
 * KvEngine is the storage seam: the one ordered key-value database a process keeps (DESIGN.md
 * "Storage: one LSM per node"). `LevelEngine` wraps classic-level; `MemoryEngine` is the in-memory twin.
 * The runtime keeps at most one `write` in flight per host, so writes are applied in call order.
 */
export type KvOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/** Half-open key range [gte, lt). */
export interface KvRange {
  readonly gte: Uint8Array;
  readonly lt: Uint8Array;
}

export interface KvReader {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Ascending iteration over [gte, lt). The iterator is closed when the loop ends or breaks. */
  iterate(range: KvRange): AsyncIterable<readonly [Uint8Array, Uint8Array]>;
}

/** A consistent read view (classic-level explicit snapshot). Must be closed. */
export interface KvSnapshot extends KvReader {
  close(): Promise<void>;
}

export interface KvEngine extends KvReader {
  /** Atomic batch. `sync: true` means durable (fsync) when the promise resolves. */
  write(ops: readonly KvOp[], opts: { readonly sync: boolean }): Promise<void>;
  /** Explicit snapshot: reads through it see the database as of this call. */
  snapshot(): KvSnapshot;
  /** Deletes [gte, lt). NOT atomic (LevelDB deletes in steps): callers record their intent first. */
  clearRange(range: KvRange): Promise<void>;
  close(): Promise<void>;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
