import { MemoryStorage } from '../core/memoryStorage.js';
import type { ConfState, Entry, HardState, Snapshot, Storage } from '../core/types.js';

/** The durable applied position the mirror reports as the group's snapshot. */
export interface AppliedPosition {
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  readonly confState: ConfState;
}

const EMPTY = new Uint8Array();

/**
 * LogMirror implements the core's Storage over an in-memory mirror of the group's log tail
 * (truncatedIndex, lastIndex] — the unapplied entries plus the lag margin — loaded from the LSM at
 * startup and updated after every durable write. The core only reads it.
 *
 * `snapshot()` describes the state machine at its durable appliedIndex: that is what the runtime
 * streams (it reads the data and apply state through one LSM snapshot, which may be newer, never older).
 */
export class LogMirror implements Storage {
  readonly #mem: MemoryStorage;
  readonly #applied: () => AppliedPosition;

  constructor(
    truncated: { index: number; term: number },
    confState: ConfState,
    hardState: HardState,
    entries: readonly Entry[],
    applied: () => AppliedPosition,
  ) {
    this.#mem = new MemoryStorage();
    if (truncated.index > 0 || confState.voters.length > 0 || confState.learners.length > 0) {
      this.#mem.applySnapshot({ metadata: { index: truncated.index, term: truncated.term, confState }, data: EMPTY });
    }
    this.#mem.append(entries);
    this.#mem.setHardState(hardState);
    this.#applied = applied;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.#mem.initialState();
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.#mem.entries(lo, hi, maxBytes);
  }

  term(i: number): number {
    return this.#mem.term(i);
  }

  firstIndex(): number {
    return this.#mem.firstIndex();
  }

  lastIndex(): number {
    return this.#mem.lastIndex();
  }

  snapshot(): Snapshot {
    const a = this.#applied();
    return { metadata: { index: a.appliedIndex, term: a.appliedTerm, confState: a.confState }, data: EMPTY };
  }

  /** Mirrors a durable append (entries overlapping the tail replace it). */
  append(entries: readonly Entry[]): void {
    this.#mem.append(entries);
  }

  setHardState(hs: HardState): void {
    this.#mem.setHardState(hs);
  }

  /** Mirrors a durable snapshot install: the log restarts after `metadata.index`. */
  applySnapshot(snap: Snapshot): void {
    this.#mem.applySnapshot(snap);
  }

  /** Mirrors a durable truncation of entries <= index. */
  compact(index: number): void {
    this.#mem.compact(index);
  }
}
