import { seededRng } from '../core/rng.js';

/**
 * Prng is a small, fast, seeded pseudo-random generator: the core's `seededRng` (mulberry32) over a
 * mixed seed. It is deterministic for a given seed on every platform, which is what makes a failing
 * simulation seed reproducible. It is NOT cryptographically secure; the runtime uses it only for
 * election-timeout jitter and tests.
 */
export class Prng {
  readonly #next: () => number;

  constructor(seed: number) {
    // Mix the seed so that nearby seeds (1, 2, 3, ...) start from unrelated states.
    this.#next = seededRng(hash32(seed >>> 0) ^ 0x9e3779b9);
  }

  /** next returns a uniform number in [0, 1). */
  next(): number {
    return this.#next();
  }

  /** int returns a uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** range returns a uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** chance returns true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** pick returns a uniform element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Prng.pick: empty array');
    return items[this.int(items.length)] as T;
  }

  /** shuffle permutes `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** fork returns an independent generator seeded from this one (e.g. one per simulated node). */
  fork(): Prng {
    return new Prng(this.int(0x100000000));
  }

  /** asFunction adapts the generator to `RaftConfig.rng`. */
  asFunction(): () => number {
    return () => this.next();
  }
}

/** mulberry32 returns a `() => number` in [0, 1) for a seed; shorthand for `new Prng(seed).asFunction()`. */
export function mulberry32(seed: number): () => number {
  return new Prng(seed).asFunction();
}

/** hash32 is a 32-bit integer finalizer (murmur3 fmix32); used to spread seeds and build digests. */
export function hash32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
