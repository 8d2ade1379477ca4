import { encodeConfChange } from './confChangeCodec.js';
import type { ProgressState } from './progress.js';
import { isLocalMessage, isResponseMessage, localMessage, Raft } from './raft.js';
import type { ConfChange, ConfState, HardState, Message, RaftConfig, Ready, ReplicaId, SoftState } from './types.js';
import { EntryType, MessageType, NONE, StateRole } from './types.js';

/** Follower progress as the leader sees it (see Progress). */
export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly recentActive: boolean;
  readonly isLearner: boolean;
}

export interface RaftStatus {
  readonly id: ReplicaId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  readonly leadTransferee: ReplicaId;
  /** Only on the leader. */
  readonly progress?: Map<ReplicaId, ProgressStatus>;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/**
 * RawNode is the application's handle on one Raft replica (etcd-io/raft rawnode.go). It is
 * single-threaded and synchronous: feed it ticks, messages and proposals, then loop
 * `if (hasReady()) { rd = ready(); ...handle rd per the Ready contract...; advance(rd) }`.
 * `ready()` must not be called again before the previous Ready was advanced.
 */
export class RawNode {
  readonly raft: Raft;
  #prevSoftState: SoftState;
  #prevHardState: HardState;

  /** constructor restarts from storage.initialState() (hard state, membership) and config.applied. */
  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.#prevSoftState = this.raft.softState();
    this.#prevHardState = this.raft.hardState();
  }

  get id(): ReplicaId {
    return this.raft.id;
  }

  /** tick advances logical time by one tick (election and heartbeat timeouts are counted in ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** campaign starts an election now (a pre-election first when preVote is on). */
  campaign(): void {
    this.raft.step(this.#local(MessageType.Hup, this.id));
  }

  /**
   * step feeds a message received from a peer. Local-only message types are dropped, as are
   * responses from replicas not in the configuration (etcd's ErrStepPeerNotFound).
   */
  step(m: Message): void {
    if (isLocalMessage(m.type)) {
      this.raft.logger.warn({ type: m.type, from: m.from }, 'dropping local message type received from network');
      return;
    }
    if (isResponseMessage(m.type) && !this.raft.progress.has(m.from)) {
      this.raft.logger.debug({ type: m.type, from: m.from }, 'dropping response from unknown replica');
      return;
    }
    this.raft.step(m);
  }

  /**
   * propose appends `data` to the log on the leader and returns the index/term it was appended at.
   * Throws NOT_LEADER (with leaderId) on a follower, PROPOSAL_DROPPED when no leader is known or this
   * replica was removed, TRANSFER_IN_PROGRESS during a leadership transfer.
   */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.raft.propose(EntryType.Normal, [data]);
  }

  /**
   * proposeBatch appends several commands at consecutive indexes (the first is returned) and sends
   * them to each follower in one append, not one append per command; same errors as propose.
   */
  proposeBatch(data: readonly Uint8Array[]): { index: number; term: number } {
    return this.raft.propose(EntryType.Normal, data);
  }

  /** proposeConfChange proposes a membership change; same errors as propose plus CONF_CHANGE_PENDING. */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    return this.raft.propose(EntryType.ConfChange, [encodeConfChange(cc)]);
  }

  /**
   * applyConfChange must be called when the application applies a committed ConfChange entry
   * (decode it with decodeConfChange). Returns the new membership, to be persisted with the apply.
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** transferLeader asks the leader to hand leadership to `to` (TimeoutNow, thesis §3.10). */
  transferLeader(to: ReplicaId): void {
    this.raft.step({ ...this.#local(MessageType.TransferLeader, to) });
  }

  /**
   * readIndex requests a linearizable read point; the answer appears in a later Ready.readStates
   * with the same ctx (which should be unique per request). Dropped silently if no leader is known.
   */
  readIndex(ctx: Uint8Array): void {
    this.raft.step({ ...this.#local(MessageType.ReadIndex, this.id), context: ctx });
  }

  /** reportUnreachable: sending to `id` failed; the leader falls back to probing it. */
  reportUnreachable(id: ReplicaId): void {
    this.raft.step(this.#local(MessageType.Unreachable, id));
  }

  /** reportSnapshot: the result of sending a snapshot to `id`. */
  reportSnapshot(id: ReplicaId, ok: boolean): void {
    this.raft.step({ ...this.#local(MessageType.SnapStatus, id), reject: !ok });
  }

  hasReady(): boolean {
    const r = this.raft;
    const ss = r.softState();
    if (ss.leaderId !== this.#prevSoftState.leaderId || ss.role !== this.#prevSoftState.role) return true;
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.#prevHardState)) return true;
    if (r.log.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstable.entries.length > 0) return true;
    return r.log.hasNextEnts();
  }

  /**
   * commitNoticePending: this leader's commit index advanced on an ack and some follower has not
   * been told (no append or heartbeat carried it since). Nothing is sent until the driver calls
   * `flushCommit` — at once, or after a short delay in which a new proposal's append may carry the
   * commit index instead. Followers learn it from the next append or heartbeat in any case; a
   * leader with a notice pending is not quiescable.
   */
  commitNoticePending(): boolean {
    return this.raft.commitNoticesDue();
  }

  /** flushCommit queues a bare commit notice (an empty append) for each follower that needs one. */
  flushCommit(): void {
    this.raft.flushCommit();
  }

  /** ready returns the pending work; see the Ready contract in types.ts. */
  ready(): Ready {
    const r = this.raft;
    const entries = r.log.unstableEntries();
    const snap = r.log.unstable.snapshot;
    // Messages so far were generated while the leader counted itself only for entries of earlier,
    // advanced (durable) Readys. Only those may be sent early (thesis §10.2.1).
    const earlyCandidates = r.msgs.length;
    // The leader counts itself for the entries handed out now: whatever that commits (only a
    // quorum of one can, the followers have not seen them) is visible only through this Ready's
    // hardState and committedEntries — both handled after step 1 makes the entries durable — and
    // through messages generated from here on, which are never early.
    const lastEntry = entries[entries.length - 1];
    if (lastEntry !== undefined) r.acknowledgeOwnEntries(lastEntry.index, lastEntry.term);
    const ss = r.softState();
    const hs = r.hardState();
    const hsChanged = !hardStateEqual(hs, this.#prevHardState);
    const ssChanged = ss.leaderId !== this.#prevSoftState.leaderId || ss.role !== this.#prevSoftState.role;
    // A leader's appends/heartbeats may leave before its own write is durable, provided its term
    // and vote are already durable (this Ready does not change them).
    const termVoteDurable = hs.term === this.#prevHardState.term && hs.vote === this.#prevHardState.vote;
    const earlyMessages: Message[] = [];
    if (termVoteDurable && snap === undefined && r.state === StateRole.Leader) {
      for (let i = 0; i < earlyCandidates; i++) {
        const m = r.msgs[i] as Message;
        if (
          m.term === r.term &&
          (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap)
        ) {
          earlyMessages.push(m);
        }
      }
    }
    const rd: Ready = {
      ...(ssChanged ? { softState: ss } : {}),
      ...(hsChanged ? { hardState: hs } : {}),
      ...(snap === undefined ? {} : { snapshot: snap }),
      entries,
      committedEntries: r.log.nextEnts(Number.POSITIVE_INFINITY),
      messages: r.msgs,
      earlyMessages,
      readStates: r.readStates,
      mustSync:
        entries.length > 0 ||
        snap !== undefined ||
        hs.term !== this.#prevHardState.term ||
        hs.vote !== this.#prevHardState.vote,
    };
    r.msgs = [];
    r.readStates = [];
    return rd;
  }

  /** advance acknowledges that `rd` was persisted, sent and applied (in that order). */
  advance(rd: Ready): void {
    const r = this.raft;
    if (rd.softState !== undefined) this.#prevSoftState = rd.softState;
    if (rd.hardState !== undefined) this.#prevHardState = rd.hardState;
    if (rd.snapshot !== undefined) {
      r.log.stableSnapTo(rd.snapshot.metadata.index);
      if (r.log.applied < rd.snapshot.metadata.index) r.log.appliedTo(rd.snapshot.metadata.index);
    }
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) r.log.stableTo(last.index, last.term);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied !== undefined) r.log.appliedTo(lastApplied.index);
    r.maybeCampaignAfterApply();
  }

  status(): RaftStatus {
    const r = this.raft;
    const base = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.confState(),
      leadTransferee: r.leadTransferee,
    };
    if (r.state !== StateRole.Leader) return base;
    const progress = new Map<ReplicaId, ProgressStatus>();
    for (const [id, pr] of r.progress) {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        recentActive: pr.recentActive,
        isLearner: pr.isLearner,
      });
    }
    return { ...base, progress };
  }

  /**
   * isQuiescable: this leader has nothing left to do until the next proposal — every member has
   * acknowledged the whole log and reported it committed, and no transfer or read is pending. A
   * multi-Raft runtime may then stop ticking the group (and its followers).
   */
  isQuiescable(): boolean {
    const r = this.raft;
    if (r.state !== StateRole.Leader || r.leadTransferee !== NONE) return false;
    if (r.readOnly.pendingCount > 0 || r.pendingReadIndexMessages.length > 0 || r.msgs.length > 0) return false;
    const last = r.log.lastIndex();
    if (r.log.committed !== last) return false;
    for (const [id, pr] of r.progress) {
      if (id === r.id) continue;
      if (pr.match !== last || pr.commitKnown < last || pr.state !== 'replicate') return false;
    }
    return true;
  }

  #local(type: Message['type'], from: ReplicaId): Message {
    return localMessage(type, this.id, from);
  }
}
