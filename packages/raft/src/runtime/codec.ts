import type { raftpb } from '@omnidict/proto';
import type { ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot } from '../core/types.js';
import { readU32, readU64, writeU32, writeU64 } from './keys.js';
import type { NodeId, ReplicaId } from './types.js';

/** Growable binary writer for the runtime's small on-disk records (all versioned, big-endian). */
export class ByteWriter {
  #buf = new Uint8Array(64);
  #len = 0;

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  u8(n: number): this {
    this.#ensure(1);
    this.#buf[this.#len++] = n;
    return this;
  }

  u32(n: number): this {
    this.#ensure(4);
    writeU32(this.#buf, this.#len, n);
    this.#len += 4;
    return this;
  }

  u64(n: number): this {
    this.#ensure(8);
    writeU64(this.#buf, this.#len, n);
    this.#len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

export class ByteReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#buf.length) throw new Error(`corrupt record: need ${n} bytes at ${this.#pos}`);
  }

  u8(): number {
    this.#need(1);
    return this.#buf[this.#pos++] as number;
  }

  u32(): number {
    this.#need(4);
    const n = readU32(this.#buf, this.#pos);
    this.#pos += 4;
    return n;
  }

  u64(): number {
    this.#need(8);
    const n = readU64(this.#buf, this.#pos);
    this.#pos += 8;
    return n;
  }

  bytes(): Uint8Array {
    const len = this.u32();
    this.#need(len);
    const b = this.#buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return b;
  }

  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }
}

const VERSION = 1;

function checkVersion(r: ByteReader, what: string): void {
  const v = r.u8();
  if (v !== VERSION) throw new Error(`unsupported ${what} record version ${v}`);
}

export function encodeHardState(hs: HardState): Uint8Array {
  return new ByteWriter().u8(VERSION).u64(hs.term).u64(hs.vote).u64(hs.commit).finish();
}

export function decodeHardState(b: Uint8Array): HardState {
  const r = new ByteReader(b);
  checkVersion(r, 'hard state');
  return { term: r.u64(), vote: r.u64(), commit: r.u64() };
}

/**
 * ApplyState: how far the state machine has applied, and where the log was truncated. Written in the
 * same batch as the state machine's writes for those entries, so data and appliedIndex never
 * disagree. `confState` and `peers` are the membership as of `appliedIndex` (they are part of the
 * applied state: a restart does not re-deliver entries <= appliedIndex).
 */
export interface ApplyState {
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  readonly truncatedIndex: number;
  readonly truncatedTerm: number;
  readonly confState: ConfState;
  /** Which process hosts each replica (voters and learners). */
  readonly peers: ReadonlyMap<ReplicaId, NodeId>;
}

export function encodeApplyState(s: ApplyState): Uint8Array {
  const w = new ByteWriter().u8(VERSION).u64(s.appliedIndex).u64(s.appliedTerm).u64(s.truncatedIndex);
  w.u64(s.truncatedTerm).u32(s.confState.voters.length);
  for (const v of s.confState.voters) w.u64(v);
  w.u32(s.confState.learners.length);
  for (const l of s.confState.learners) w.u64(l);
  w.u32(s.peers.size);
  for (const [replica, node] of s.peers) w.u64(replica).u64(node);
  return w.finish();
}

export function decodeApplyState(b: Uint8Array): ApplyState {
  const r = new ByteReader(b);
  checkVersion(r, 'apply state');
  const appliedIndex = r.u64();
  const appliedTerm = r.u64();
  const truncatedIndex = r.u64();
  const truncatedTerm = r.u64();
  const voters: number[] = [];
  for (let n = r.u32(); n > 0; n--) voters.push(r.u64());
  const learners: number[] = [];
  for (let n = r.u32(); n > 0; n--) learners.push(r.u64());
  const peers = new Map<ReplicaId, NodeId>();
  for (let n = r.u32(); n > 0; n--) peers.set(r.u64(), r.u64());
  return { appliedIndex, appliedTerm, truncatedIndex, truncatedTerm, confState: { voters, learners }, peers };
}

/** Log entry value: the index is in the key. */
export function encodeEntry(e: Entry): Uint8Array {
  const out = new Uint8Array(10 + e.data.length);
  out[0] = VERSION;
  writeU64(out, 1, e.term);
  out[9] = e.type;
  out.set(e.data, 10);
  return out;
}

export function decodeEntry(index: number, b: Uint8Array): Entry {
  if (b[0] !== VERSION || b.length < 10) throw new Error(`corrupt log entry at index ${index}`);
  return { index, term: readU64(b, 1), type: b[9] as EntryType, data: b.subarray(10) };
}

/**
 * Intent recorded durably before a non-atomic multi-step operation on a group; a restart finishes it.
 * A destroy carries what a restart needs to finish it after the replica's own keys are gone: the
 * replica id (for the tombstone) and the descriptor (the state machine's factory input).
 */
export type Intent =
  | { readonly kind: 'install'; readonly index: number; readonly term: number; readonly chunkCount: number }
  | { readonly kind: 'destroy'; readonly replicaId: ReplicaId; readonly descriptor: Uint8Array | undefined };

export function encodeIntent(i: Intent): Uint8Array {
  const w = new ByteWriter().u8(VERSION);
  if (i.kind === 'install') w.u8(1).u64(i.index).u64(i.term).u32(i.chunkCount);
  else {
    w.u8(2).u64(i.replicaId);
    if (i.descriptor === undefined) w.u8(0);
    else w.u8(1).bytes(i.descriptor);
  }
  return w.finish();
}

export function decodeIntent(b: Uint8Array): Intent {
  const r = new ByteReader(b);
  checkVersion(r, 'intent');
  const kind = r.u8();
  if (kind === 1) return { kind: 'install', index: r.u64(), term: r.u64(), chunkCount: r.u32() };
  if (kind === 2) {
    const replicaId = r.u64();
    const descriptor = r.u8() === 1 ? r.bytes().slice() : undefined;
    return { kind: 'destroy', replicaId, descriptor };
  }
  throw new Error(`unknown intent kind ${kind}`);
}

/** Tombstone: the replica ids of a group destroyed on this node. u8 version | u32 count | u64 ids. */
export function encodeTombstone(replicaIds: Iterable<ReplicaId>): Uint8Array {
  const ids = [...replicaIds];
  const w = new ByteWriter().u8(VERSION).u32(ids.length);
  for (const id of ids) w.u64(id);
  return w.finish();
}

export function decodeTombstone(b: Uint8Array): Set<ReplicaId> {
  const r = new ByteReader(b);
  checkVersion(r, 'tombstone');
  const n = r.u32();
  const ids = new Set<ReplicaId>();
  for (let i = 0; i < n; i++) ids.add(r.u64());
  return ids;
}

/**
 * The runtime's envelope in ConfChange.context: which process hosts the replica, then the
 * application's own context. u8 version | u64 nodeId | bytes appContext.
 */
export function encodeConfChangeContext(nodeId: NodeId, appContext: Uint8Array | undefined): Uint8Array {
  return new ByteWriter()
    .u8(VERSION)
    .u64(nodeId)
    .bytes(appContext ?? new Uint8Array())
    .finish();
}

export function decodeConfChangeContext(b: Uint8Array | undefined): { nodeId: NodeId; appContext: Uint8Array } {
  if (b === undefined || b.length === 0) return { nodeId: 0, appContext: new Uint8Array() };
  const r = new ByteReader(b);
  checkVersion(r, 'conf change context');
  return { nodeId: r.u64(), appContext: r.bytes() };
}

const EMPTY = new Uint8Array();

function toPbConfState(cs: ConfState): raftpb.ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

function fromPbConfState(cs: raftpb.ConfState | undefined): ConfState {
  return { voters: cs?.voters ?? [], learners: cs?.learners ?? [] };
}

export function toPbMessage(m: Message): raftpb.RaftMessage {
  return {
    type: m.type,
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map((e) => ({ term: e.term, index: e.index, type: e.type, data: e.data as Buffer })),
    commit: m.commit,
    snapshot:
      m.snapshot === undefined
        ? undefined
        : {
            index: m.snapshot.metadata.index,
            term: m.snapshot.metadata.term,
            confState: toPbConfState(m.snapshot.metadata.confState),
          },
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: (m.context ?? EMPTY) as Buffer,
  };
}

export function fromPbMessage(m: raftpb.RaftMessage): Message {
  const snapshot: Snapshot | undefined =
    m.snapshot === undefined
      ? undefined
      : {
          metadata: {
            index: m.snapshot.index,
            term: m.snapshot.term,
            confState: fromPbConfState(m.snapshot.confState),
          },
          data: EMPTY,
        };
  return {
    type: m.type as MessageType,
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map((e) => ({ term: e.term, index: e.index, type: e.type as EntryType, data: e.data })),
    commit: m.commit,
    ...(snapshot === undefined ? {} : { snapshot }),
    reject: m.reject,
    rejectHint: m.rejectHint,
    ...(m.context.length === 0 ? {} : { context: m.context }),
  };
}
