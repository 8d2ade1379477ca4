/**
 * A small deterministic in-memory network of RawNodes for the core's tests. Each node has a
 * MemoryStorage and a toy state machine (the list of applied commands). `stabilize()` honours the
 * Ready contract: persist snapshot/entries/hard state, then queue messages, then apply committed
 * entries (calling applyConfChange for ConfChange entries), then advance.
 */
import {
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
  MemoryStorage,
  type Message,
  MessageType,
  type RaftConfig,
  RawNode,
  type ReadOnlyOption,
  type ReadState,
  type ReplicaId,
  StateRole,
  seededRng,
} from '../../src/index.js';

export { seededRng };

export interface NodeOptions {
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  readOnlyOption?: ReadOnlyOption;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  seed?: number;
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** nodeConfig builds a RaftConfig with test defaults (electionTick 10, heartbeatTick 1). */
export function nodeConfig(id: ReplicaId, storage: MemoryStorage, o: NodeOptions = {}, applied = 0): RaftConfig {
  return {
    id,
    storage,
    electionTick: o.electionTick ?? 10,
    heartbeatTick: o.heartbeatTick ?? 1,
    rng: seededRng((o.seed ?? 1) * 1000 + id),
    applied,
    ...(o.preVote === undefined ? {} : { preVote: o.preVote }),
    ...(o.checkQuorum === undefined ? {} : { checkQuorum: o.checkQuorum }),
    ...(o.readOnlyOption === undefined ? {} : { readOnlyOption: o.readOnlyOption }),
    ...(o.maxSizePerMsg === undefined ? {} : { maxSizePerMsg: o.maxSizePerMsg }),
    ...(o.maxInflightMsgs === undefined ? {} : { maxInflightMsgs: o.maxInflightMsgs }),
  };
}

/** msg builds a Message with zero defaults. */
export function msg(m: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: 0,
    from: 0,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...m,
  };
}

export function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: EntryType.Normal, data: enc(data) };
}

export class Network {
  readonly nodes = new Map<ReplicaId, RawNode>();
  readonly storages = new Map<ReplicaId, MemoryStorage>();
  /** Applied commands (non-empty Normal entries, decoded) per node: the toy state machine. */
  readonly state = new Map<ReplicaId, string[]>();
  readonly appliedIndex = new Map<ReplicaId, number>();
  readonly confStates = new Map<ReplicaId, ConfState>();
  readonly readStates = new Map<ReplicaId, ReadState[]>();
  /** Every message delivered (for assertions). */
  readonly delivered: Message[] = [];
  readonly opts: NodeOptions;
  #queue: Message[] = [];
  #cut = new Set<string>();
  #isolated = new Set<ReplicaId>();
  #dropTypes = new Set<number>();
  /** Optional extra filter: return false to drop. */
  filter: ((m: Message) => boolean) | undefined;

  constructor(ids: ReplicaId[], opts: NodeOptions = {}, learners: ReplicaId[] = []) {
    this.opts = opts;
    for (const id of ids) this.addNode(id, new MemoryStorage({ voters: ids, learners }));
    for (const id of learners) this.addNode(id, new MemoryStorage({ voters: ids, learners }));
  }

  /** addNode starts a node over `storage` (a fresh empty storage means "joining, not yet a member"). */
  addNode(id: ReplicaId, storage: MemoryStorage = new MemoryStorage(), opts: NodeOptions = this.opts): RawNode {
    const node = new RawNode(nodeConfig(id, storage, opts));
    this.nodes.set(id, node);
    this.storages.set(id, storage);
    this.state.set(id, []);
    this.appliedIndex.set(id, 0);
    this.confStates.set(id, storage.initialState().confState);
    this.readStates.set(id, []);
    return node;
  }

  node(id: ReplicaId): RawNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  storage(id: ReplicaId): MemoryStorage {
    const s = this.storages.get(id);
    if (s === undefined) throw new Error(`no storage ${id}`);
    return s;
  }

  stateOf(id: ReplicaId): string[] {
    return this.state.get(id) ?? [];
  }

  /** restart simulates a crash and restart: the node comes back from its storage only. */
  restart(id: ReplicaId): RawNode {
    const storage = this.storage(id);
    const node = new RawNode(nodeConfig(id, storage, this.opts, this.appliedIndex.get(id) ?? 0));
    this.nodes.set(id, node);
    return node;
  }

  /** remove takes a node off the network entirely (its messages are dropped). */
  stop(id: ReplicaId): void {
    this.nodes.delete(id);
  }

  isolate(id: ReplicaId): void {
    this.#isolated.add(id);
  }

  cut(a: ReplicaId, b: ReplicaId): void {
    this.#cut.add(`${a}-${b}`);
    this.#cut.add(`${b}-${a}`);
  }

  dropType(t: number): void {
    this.#dropTypes.add(t);
  }

  heal(): void {
    this.#cut.clear();
    this.#isolated.clear();
    this.#dropTypes.clear();
    this.filter = undefined;
  }

  #passes(m: Message): boolean {
    if (!this.nodes.has(m.to)) return false;
    if (this.#isolated.has(m.from) || this.#isolated.has(m.to)) return false;
    if (this.#cut.has(`${m.from}-${m.to}`)) return false;
    if (this.#dropTypes.has(m.type)) return false;
    if (this.filter !== undefined && !this.filter(m)) return false;
    return true;
  }

  /** handleReady processes one Ready of node `id` per the contract; returns its messages. */
  handleReady(id: ReplicaId): Message[] {
    const node = this.node(id);
    const storage = this.storage(id);
    const rd = node.ready();
    if (rd.snapshot !== undefined) {
      storage.applySnapshot(rd.snapshot);
      this.state.set(id, JSON.parse(dec(rd.snapshot.data) || '[]') as string[]);
      this.appliedIndex.set(id, rd.snapshot.metadata.index);
      this.confStates.set(id, rd.snapshot.metadata.confState);
    }
    storage.append(rd.entries);
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        const cs = node.applyConfChange(decodeConfChange(e.data));
        this.confStates.set(id, cs);
        storage.setConfState(cs);
      } else if (e.data.length > 0) {
        this.stateOf(id).push(dec(e.data));
      }
      this.appliedIndex.set(id, e.index);
    }
    this.readStates.get(id)?.push(...rd.readStates);
    node.advance(rd);
    return [...rd.messages];
  }

  /** send queues messages for delivery (subject to filters). */
  send(...msgs: Message[]): void {
    this.#queue.push(...msgs);
  }

  /** stabilize runs Readys and delivers messages until nothing is left to do. */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const [id, node] of this.nodes) {
        node.flushCommit(); // a driver that sends commit notices at once
        while (node.hasReady()) {
          busy = true;
          this.#queue.push(...this.handleReady(id));
        }
      }
      if (this.#queue.length > 0) {
        busy = true;
        const q = this.#queue;
        this.#queue = [];
        for (const m of q) this.#deliver(m);
      }
      if (!busy) return;
    }
    throw new Error('network did not stabilize');
  }

  #deliver(m: Message): void {
    const from = this.nodes.get(m.from);
    if (!this.#passes(m)) {
      if (m.type === MessageType.Snap) from?.reportSnapshot(m.to, false);
      return;
    }
    this.delivered.push(m);
    this.node(m.to).step(m);
    if (m.type === MessageType.Snap) from?.reportSnapshot(m.to, true);
  }

  /** tickAll ticks every node `n` times, stabilizing after each tick. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.stabilize();
    }
  }

  tick(id: ReplicaId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.node(id).tick();
      this.stabilize();
    }
  }

  campaign(id: ReplicaId): void {
    this.node(id).campaign();
    this.stabilize();
  }

  /** elect makes `id` campaign and asserts it became leader. */
  elect(id: ReplicaId): RawNode {
    this.campaign(id);
    const n = this.node(id);
    if (n.status().softState.role !== StateRole.Leader) throw new Error(`node ${id} did not become leader`);
    return n;
  }

  propose(id: ReplicaId, data: string): { index: number; term: number } {
    const r = this.node(id).propose(enc(data));
    this.stabilize();
    return r;
  }

  leaders(): ReplicaId[] {
    return [...this.nodes].filter(([, n]) => n.status().softState.role === StateRole.Leader).map(([id]) => id);
  }

  role(id: ReplicaId): StateRole {
    return this.node(id).status().softState.role;
  }

  term(id: ReplicaId): number {
    return this.node(id).status().hardState.term;
  }

  committed(id: ReplicaId): number {
    return this.node(id).status().hardState.commit;
  }

  /** compact snapshots node `id` at its applied index and discards the log up to it. */
  compact(id: ReplicaId): void {
    const s = this.storage(id);
    const applied = this.appliedIndex.get(id) ?? 0;
    s.createSnapshot(applied, this.confStates.get(id), enc(JSON.stringify(this.stateOf(id))));
    s.compact(applied);
  }

  /** logOf returns all entries persisted by node `id` (from its storage). */
  logOf(id: ReplicaId): Entry[] {
    const s = this.storage(id);
    if (s.lastIndex() < s.firstIndex()) return [];
    return s.entries(s.firstIndex(), s.lastIndex() + 1, Number.POSITIVE_INFINITY);
  }
}

/** stepAndDrain delivers `m` to a standalone node and returns the messages of the resulting Ready. */
export function drain(node: RawNode, storage: MemoryStorage, flushCommit = true): Message[] {
  const out: Message[] = [];
  if (flushCommit) node.flushCommit(); // commit notices go at once
  while (node.hasReady()) {
    const rd = node.ready();
    if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    out.push(...rd.messages);
    node.advance(rd);
  }
  return out;
}
