import type { KvEngine, KvOp, KvRange, KvReader, KvSnapshot } from './engine.js';

/** Keys are held as latin1 strings: code units 0..255 compare exactly like the bytes. */
function toStr(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function fromStr(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

class SortedView implements KvReader {
  readonly #map: Map<string, Uint8Array>;
  #sorted: string[] | undefined;

  constructor(map: Map<string, Uint8Array>) {
    this.#map = map;
  }

  invalidate(): void {
    this.#sorted = undefined;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#map.get(toStr(key));
  }

  async *iterate(range: KvRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    this.#sorted ??= [...this.#map.keys()].sort();
    const sorted = this.#sorted;
    const lo = toStr(range.gte);
    const hi = toStr(range.lt);
    let i = lowerBound(sorted, lo);
    for (; i < sorted.length; i++) {
      const k = sorted[i] as string;
      if (k >= hi) break;
      const v = this.#map.get(k);
      if (v !== undefined) yield [fromStr(k), v];
    }
  }
}

function lowerBound(arr: readonly string[], key: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((arr[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * MemoryEngine is the in-memory twin of LevelEngine. Every completed write counts as durable: a test
 * "crashes" a host by abandoning it and opening a new host over the same engine (`reopen()`).
 */
export class MemoryEngine implements KvEngine {
  readonly #map = new Map<string, Uint8Array>();
  readonly #view = new SortedView(this.#map);
  #closed = false;
  /** Number of `write` calls with sync: true (for tests and benches). */
  syncWrites = 0;

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#check();
    return this.#view.get(key);
  }

  iterate(range: KvRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    this.#check();
    return this.#view.iterate(range);
  }

  async write(ops: readonly KvOp[], opts: { readonly sync: boolean }): Promise<void> {
    this.#check();
    if (opts.sync) this.syncWrites++;
    for (const op of ops) {
      if (op.type === 'put') this.#map.set(toStr(op.key), op.value);
      else this.#map.delete(toStr(op.key));
    }
    this.#view.invalidate();
  }

  snapshot(): KvSnapshot {
    this.#check();
    const view = new SortedView(new Map(this.#map));
    return {
      get: (key) => view.get(key),
      iterate: (range) => view.iterate(range),
      close: async () => {},
    };
  }

  async clearRange(range: KvRange): Promise<void> {
    this.#check();
    const ops: KvOp[] = [];
    for await (const [key] of this.#view.iterate(range)) ops.push({ type: 'del', key });
    await this.write(ops, { sync: false });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** reopen makes a closed engine usable again with its contents intact (a process restart). */
  reopen(): this {
    this.#closed = false;
    return this;
  }

  get size(): number {
    return this.#map.size;
  }

  #check(): void {
    if (this.#closed) throw new Error('MemoryEngine is closed');
  }
}
