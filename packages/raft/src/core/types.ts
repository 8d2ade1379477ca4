/**
 * Raft core data types. The core is a pure, deterministic state machine (etcd-io/raft style):
 * no I/O, no timers, no Promises, no wall clock. Time is `tick()`, randomness an injected RNG.
 *
 * Ids: a `ReplicaId` is unique within a group (it is the Raft "node id"); 0 means "none".
 */

/** Replica id within one Raft group. 0 means "no replica" (no vote, no leader). */
export type ReplicaId = number;

export const NONE: ReplicaId = 0;

export const EntryType = {
  Normal: 0,
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque command bytes. An empty Normal entry is the no-op a new leader appends (§5.4.2, §8). */
  readonly data: Uint8Array;
}

/** State that must be on stable storage before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: ReplicaId;
  readonly commit: number;
}

/**
 * Group membership. OmniDict changes membership one voter at a time, learners first
 * (Raft thesis §4.1 single-server changes; see docs/raft.md for why not joint consensus).
 */
export interface ConfState {
  readonly voters: readonly ReplicaId[];
  readonly learners: readonly ReplicaId[];
}

export const ConfChangeType = {
  AddVoter: 0,
  AddLearner: 1,
  RemoveNode: 2,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** One membership change. AddVoter on an existing learner promotes it. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly replicaId: ReplicaId;
  /** Opaque application context carried with the change (e.g. the node address). */
  readonly context?: Uint8Array;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/**
 * A snapshot of the state machine at `metadata.index`. `data` is opaque to the core; the
 * multi-Raft runtime leaves it empty and streams the real data on its own RPC.
 */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export const MessageType = {
  /** Local: start an election (or pre-election). */
  Hup: 0,
  /** Local: leader should broadcast heartbeats. */
  Beat: 1,
  /** Local: a proposal. */
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  Snap: 7,
  Heartbeat: 8,
  HeartbeatResp: 9,
  Unreachable: 10,
  SnapStatus: 11,
  CheckQuorum: 12,
  TransferLeader: 13,
  TimeoutNow: 14,
  ReadIndex: 15,
  ReadIndexResp: 16,
  PreVote: 17,
  PreVoteResp: 18,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface Message {
  readonly type: MessageType;
  readonly to: ReplicaId;
  readonly from: ReplicaId;
  readonly term: number;
  /** Term of the entry at `index` (App: the entry preceding `entries`; Vote: the candidate's last). */
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  /** On a rejected AppResp: the follower's hint for fast backtracking (§5.3 optimisation). */
  readonly rejectHint: number;
  /** ReadIndex request context, echoed in ReadState; heartbeat context for read-index rounds. */
  readonly context?: Uint8Array;
}

/** A linearizable read point: once `index` is applied locally, a read for `requestCtx` may be served. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: Uint8Array;
}

export const StateRole = {
  Follower: 0,
  Candidate: 1,
  Leader: 2,
  PreCandidate: 3,
} as const;
export type StateRole = (typeof StateRole)[keyof typeof StateRole];

/** Volatile state worth reporting to the application; not persisted. */
export interface SoftState {
  readonly leaderId: ReplicaId;
  readonly role: StateRole;
}

/**
 * Ready is the batch of work the core hands to the application. The application MUST process it
 * in this order, then call `advance()`:
 *
 * 1. Persist `snapshot` (if any), then append `entries` to stable storage and save `hardState`
 *    (if any) — durably (fsync) when `mustSync` is true. All of this BEFORE step 2.
 * 2. Send `messages`. Messages may promise things (a vote, an append ack) that are only true once
 *    step 1 is durable, so they are never sent earlier — with ONE exception: the messages listed
 *    in `earlyMessages` (a subset of `messages`) MAY be sent before or in parallel with step 1
 *    (Raft thesis §10.2.1). They are a leader's App, Heartbeat and Snap messages of its current
 *    term, listed only when this Ready changes neither term nor vote (those are already durable)
 *    and installs no snapshot. They promise nothing about the leader's own log: the leader counts
 *    itself toward the commit quorum only for entries reported durable by `advance()` (below).
 *    An application that sends them early must not send them again in step 2; one that ignores
 *    `earlyMessages` and sends all of `messages` after step 1 is also correct.
 * 3. Apply `committedEntries` to the state machine, in order. They are always already persisted
 *    (by this or an earlier Ready). For a ConfChange entry call `applyConfChange`.
 * 4. Hand `readStates` to waiting readers: each may be served once `index` is applied.
 *
 * `advance()` tells the core the Ready was handled; the next `ready()` only holds newer work.
 * It is also the persistence report: a leader's own progress (its `match` in the commit quorum)
 * advances to the last of `entries` only in `advance()`, never when the entries are appended, so
 * `advance()` must not be called before step 1 is durable; it may commit entries (a follower
 * quorum may have acknowledged them first), so check `hasReady()` after it. Inputs (`step`,
 * `tick`, proposals) are fed only between `advance()` and the next `ready()`.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  /** The subset of `messages` that may be sent before step 1 is durable (see above). */
  readonly earlyMessages: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

/**
 * Storage is the read-only view of the persisted log the core consults. The application writes it
 * (from Ready) and the core only reads. Methods are synchronous: a real implementation keeps the
 * unapplied tail of the log in memory and mirrors it to disk.
 */
export interface Storage {
  /** Hard state and membership as persisted; called once when a node starts. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at most `maxBytes` of data in total but always at least one entry.
   * Throws RaftError('COMPACTED') if lo <= the snapshot index, RaftError('UNAVAILABLE') if hi > lastIndex+1.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i, for i in [firstIndex-1, lastIndex]. Throws COMPACTED / UNAVAILABLE otherwise. */
  term(i: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry in the log (or the snapshot index when the log is empty). */
  lastIndex(): number;
  /**
   * The most recent snapshot. May throw RaftError('SNAPSHOT_TEMPORARILY_UNAVAILABLE') while one is
   * being made. The leader asks for it when a follower needs compacted entries, or when a follower
   * is uninitialized (a joining replica whose storage has no configuration): a joining replica is
   * always initialized by a snapshot, so a storage whose latest snapshot is still the bootstrap one
   * (index 0) should start making one and throw SNAPSHOT_TEMPORARILY_UNAVAILABLE meanwhile.
   */
  snapshot(): Snapshot;
}

/** Read-only option for ReadIndex: `safe` confirms leadership with a heartbeat round (§6.4);
 * `leaseBased` trusts the leader lease kept by check-quorum, which relies on bounded clock drift. */
export type ReadOnlyOption = 'safe' | 'leaseBased';

export interface RaftConfig {
  readonly id: ReplicaId;
  /** Ticks a follower waits without hearing a leader before campaigning; randomized in [e, 2e). */
  readonly electionTick: number;
  /** Ticks between leader heartbeats. Must be < electionTick. */
  readonly heartbeatTick: number;
  readonly storage: Storage;
  /** Last applied index, when restarting. */
  readonly applied?: number;
  /** Maximum bytes of entries in one App message. */
  readonly maxSizePerMsg?: number;
  /** Maximum in-flight App messages to one follower (flow control). */
  readonly maxInflightMsgs?: number;
  readonly checkQuorum?: boolean;
  readonly preVote?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  /** Uniform random number in [0, 1); must be deterministic for a given seed in tests. */
  readonly rng: () => number;
  readonly logger?: RaftLogger;
}

/** Minimal logger interface so the core does not depend on pino. */
export interface RaftLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}
