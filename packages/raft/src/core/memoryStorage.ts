import { RaftError } from './errors.js';
import type { ConfState, Entry, HardState, Snapshot, Storage } from './types.js';
import { EntryType } from './types.js';
import { limitSize } from './util.js';

/**
 * MemoryStorage is the in-memory twin of the persisted Raft log (etcd-io/raft `MemoryStorage`).
 * The application writes it from each Ready (snapshot, then entries, then hard state) and the core
 * reads it. `ents[0]` is a dummy entry holding the index/term of the last snapshot (or 0/0).
 */
export class MemoryStorage implements Storage {
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: Snapshot;
  /** ents[i] has index ents[0].index + i; ents[0] is the snapshot's dummy entry. */
  #ents: Entry[];

  constructor(opts: { voters?: number[]; learners?: number[] } = {}) {
    const confState: ConfState = { voters: [...(opts.voters ?? [])], learners: [...(opts.learners ?? [])] };
    this.#snapshot = { metadata: { index: 0, term: 0, confState }, data: new Uint8Array() };
    this.#ents = [dummy(0, 0)];
  }

  get hardState(): HardState {
    return this.#hardState;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.#hardState, confState: this.#snapshot.metadata.confState };
  }

  /** setHardState saves the current term, vote and commit. */
  setHardState(hs: HardState): void {
    this.#hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  /** setConfState records the membership without a snapshot (used when bootstrapping). */
  setConfState(cs: ConfState): void {
    const md = this.#snapshot.metadata;
    this.#snapshot = { metadata: { ...md, confState: cs }, data: this.#snapshot.data };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.#offset();
    if (lo <= offset) throw new RaftError('COMPACTED', `entries: ${lo} <= compacted index ${offset}`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftError('UNAVAILABLE', `entries: hi ${hi} beyond last index ${this.lastIndex()}`);
    }
    if (this.#ents.length === 1) return [];
    return limitSize(this.#ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(i: number): number {
    const offset = this.#offset();
    if (i < offset) throw new RaftError('COMPACTED', `term: ${i} < compacted index ${offset}`);
    const e = this.#ents[i - offset];
    if (e === undefined) throw new RaftError('UNAVAILABLE', `term: ${i} beyond last index ${this.lastIndex()}`);
    return e.term;
  }

  firstIndex(): number {
    return this.#offset() + 1;
  }

  lastIndex(): number {
    return this.#offset() + this.#ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** applySnapshot replaces the storage contents with a snapshot. Throws SNAPSHOT_OUT_OF_DATE if older. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index < this.#snapshot.metadata.index) {
      throw new RaftError('SNAPSHOT_OUT_OF_DATE', `snapshot ${snap.metadata.index} older than current`);
    }
    this.#snapshot = snap;
    this.#ents = [dummy(snap.metadata.index, snap.metadata.term)];
  }

  /**
   * createSnapshot records a snapshot of the state machine at `index` (which must be applied and
   * <= lastIndex). It does not compact the log; call `compact` for that.
   */
  createSnapshot(index: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    if (index <= this.#snapshot.metadata.index) {
      throw new RaftError('SNAPSHOT_OUT_OF_DATE', `snapshot ${index} not newer than current`);
    }
    if (index > this.lastIndex()) throw new RaftError('UNAVAILABLE', `snapshot ${index} beyond last index`);
    const term = this.term(index);
    this.#snapshot = {
      metadata: { index, term, confState: confState ?? this.#snapshot.metadata.confState },
      data,
    };
    return this.#snapshot;
  }

  /** compact discards entries up to and including `index`. Throws COMPACTED if already compacted. */
  compact(index: number): void {
    const offset = this.#offset();
    if (index <= offset) throw new RaftError('COMPACTED', `compact: ${index} already compacted`);
    if (index > this.lastIndex()) throw new RaftError('UNAVAILABLE', `compact: ${index} beyond last index`);
    const i = index - offset;
    const head = this.#ents[i];
    if (head === undefined) throw new RaftError('UNAVAILABLE', `compact: ${index} beyond last index`);
    this.#ents = [dummy(head.index, head.term), ...this.#ents.slice(i + 1)];
  }

  /**
   * append adds entries to the log. Entries that conflict with (overlap) the existing log replace
   * its suffix from the first overlapping index; entries already compacted are ignored.
   */
  append(entries: readonly Entry[]): void {
    const first0 = entries[0];
    if (first0 === undefined) return;
    const first = this.firstIndex();
    const last = first0.index + entries.length - 1;
    if (last < first) return;
    let ents = entries;
    if (first > first0.index) ents = entries.slice(first - first0.index);
    const head = ents[0];
    if (head === undefined) return;
    const offset = head.index - this.#offset();
    if (offset > this.#ents.length) {
      throw new RaftError(
        'UNAVAILABLE',
        `append: missing log entry [last ${this.lastIndex()}, append at ${head.index}]`,
      );
    }
    this.#ents = [...this.#ents.slice(0, offset), ...ents];
  }

  #offset(): number {
    return (this.#ents[0] as Entry).index;
  }
}

function dummy(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array() };
}
