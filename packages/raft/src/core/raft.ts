import { RaftError } from './errors.js';
import { Progress } from './progress.js';
import { RaftLog } from './raftLog.js';
import { ReadOnly } from './readOnly.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  RaftConfig,
  RaftLogger,
  ReadState,
  ReplicaId,
  Snapshot,
  SoftState,
} from './types.js';
import { ConfChangeType, EntryType, MessageType, NONE, StateRole } from './types.js';

/** Context marking a Vote sent because of a leadership transfer: it bypasses the leader lease (§3.10). */
const CAMPAIGN_TRANSFER = Uint8Array.from([0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72]); // "transfer"

const NO_LIMIT = Number.POSITIVE_INFINITY;

type MessageInit = Partial<Message> & Pick<Message, 'type' | 'to'>;

const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** isLocalMessage: message types that only the local node may generate (never from the network). */
export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.Prop ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus ||
    t === MessageType.CheckQuorum
  );
}

/** isResponseMessage: responses are dropped when they come from a replica we do not track. */
export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.Unreachable ||
    t === MessageType.PreVoteResp
  );
}

/**
 * Raft is the protocol state machine of one replica (etcd-io/raft raft.go). Roles swap the `stepFn`
 * and `tickFn` handlers. It is driven by RawNode; all output is collected in `msgs`/`readStates`
 * and the log's unstable part, and handed out through Ready.
 */
export class Raft {
  readonly id: ReplicaId;
  term = 0;
  vote: ReplicaId = NONE;
  lead: ReplicaId = NONE;
  state: StateRole = StateRole.Follower;
  readonly log: RaftLog;
  readonly logger: RaftLogger;

  readonly maxMsgSize: number;
  readonly maxInflight: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly readOnly: ReadOnly;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly #rng: () => number;

  /** Progress of every member (voters and learners), including self. */
  progress = new Map<ReplicaId, Progress>();
  /** Votes received in the current (pre-)election: id → granted. */
  votes = new Map<ReplicaId, boolean>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  /** Read-index requests held back until the leader commits an entry of its term (§6.4). */
  pendingReadIndexMessages: Message[] = [];
  /**
   * The leader's commit index advanced on an ack and followers may not be told yet. The driver
   * decides when `flushCommit` tells those that no later append or heartbeat told already.
   */
  commitToBroadcast = false;

  /** Transferee of an ongoing leadership transfer, or NONE. */
  leadTransferee: ReplicaId = NONE;
  /** Index of the newest conf change in the log; a new one may be proposed once applied >= it. */
  pendingConfIndex = 0;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  /** A TimeoutNow arrived while a committed conf change was unapplied: campaign once it is applied. */
  campaignAfterApply = false;
  randomizedElectionTimeout = 0;

  #stepFn: (m: Message) => void;
  #tickFn: () => void;

  constructor(c: RaftConfig) {
    if (c.id === NONE) throw new RaftError('INVALID_CONFIG', 'cannot use 0 as replica id');
    if (c.heartbeatTick <= 0) throw new RaftError('INVALID_CONFIG', 'heartbeatTick must be > 0');
    if (c.electionTick <= c.heartbeatTick)
      throw new RaftError('INVALID_CONFIG', 'electionTick must be > heartbeatTick');
    const maxInflight = c.maxInflightMsgs ?? 256;
    if (maxInflight <= 0) throw new RaftError('INVALID_CONFIG', 'maxInflightMsgs must be > 0');
    const readOnlyOption = c.readOnlyOption ?? 'safe';
    if (readOnlyOption === 'leaseBased' && c.checkQuorum !== true) {
      throw new RaftError('INVALID_CONFIG', 'leaseBased reads require checkQuorum');
    }
    this.id = c.id;
    this.log = new RaftLog(c.storage);
    this.logger = c.logger ?? silentLogger;
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxInflight = maxInflight;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.readOnly = new ReadOnly(readOnlyOption);
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.#rng = c.rng;
    this.#stepFn = (m) => this.#stepFollower(m);
    this.#tickFn = () => this.#tickElection();

    const { hardState, confState } = c.storage.initialState();
    this.#applyConfState(confState);
    if (!isEmptyHardState(hardState)) this.#loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) this.log.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- state accessors

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leaderId: this.lead, role: this.state };
  }

  voters(): ReplicaId[] {
    return [...this.progress].filter(([, p]) => !p.isLearner).map(([id]) => id);
  }

  learners(): ReplicaId[] {
    return [...this.progress].filter(([, p]) => p.isLearner).map(([id]) => id);
  }

  confState(): ConfState {
    return { voters: this.voters().sort((a, b) => a - b), learners: this.learners().sort((a, b) => a - b) };
  }

  quorum(): number {
    return Math.floor(this.voters().length / 2) + 1;
  }

  /** promotable: this replica is a voter of its own config and has no snapshot being installed. */
  promotable(): boolean {
    const pr = this.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.log.hasPendingSnapshot();
  }

  #loadState(hs: HardState): void {
    if (hs.commit < this.log.committed || hs.commit > this.log.lastIndex()) {
      throw new RaftError(
        'INVALID_CONFIG',
        `hard state commit ${hs.commit} out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
    }
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  #applyConfState(cs: ConfState): void {
    const next = this.log.lastIndex() + 1;
    this.progress = new Map();
    for (const id of cs.voters) this.progress.set(id, new Progress(next, this.maxInflight, false));
    for (const id of cs.learners) this.progress.set(id, new Progress(next, this.maxInflight, true));
    const self = this.progress.get(this.id);
    if (self !== undefined) self.match = this.log.persistedLastIndex();
  }

  // ---------------------------------------------------------------- sending

  send(init: MessageInit): void {
    const m: Message = {
      type: init.type,
      to: init.to,
      from: init.from ?? this.id,
      term: init.term ?? 0,
      logTerm: init.logTerm ?? 0,
      index: init.index ?? 0,
      entries: init.entries ?? [],
      commit: init.commit ?? 0,
      reject: init.reject ?? false,
      rejectHint: init.rejectHint ?? 0,
      ...(init.snapshot === undefined ? {} : { snapshot: init.snapshot }),
      ...(init.context === undefined ? {} : { context: init.context }),
    };
    const t = m.type;
    const isVoteMsg =
      t === MessageType.Vote ||
      t === MessageType.VoteResp ||
      t === MessageType.PreVote ||
      t === MessageType.PreVoteResp;
    if (isVoteMsg) {
      // Vote messages carry the term explicitly (a pre-vote uses term+1 without bumping ours).
      if (m.term === 0) throw new Error(`raft: term must be set when sending ${t}`);
      this.msgs.push(m);
      return;
    }
    if (init.term !== undefined && init.term !== 0) throw new Error(`raft: term must not be set when sending ${t}`);
    // Forwarded TransferLeader/ReadIndex travel without a term, like local messages (etcd).
    if (t !== MessageType.TransferLeader && t !== MessageType.ReadIndex) {
      this.msgs.push({ ...m, term: this.term });
    } else {
      this.msgs.push(m);
    }
  }

  /**
   * maybeSendAppend sends an App (or a Snap when the needed entries are compacted) to `to`, unless
   * its progress is paused. With sendIfEmpty=false nothing is sent when there are no new entries.
   * Returns whether a message was sent.
   */
  maybeSendAppend(to: ReplicaId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      ents = this.log.entries(pr.next, this.maxMsgSize);
    } catch (e) {
      if (e instanceof RaftError && e.code === 'COMPACTED') return this.#maybeSendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const last = ents[ents.length - 1];
    this.send({
      type: MessageType.App,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    });
    pr.sentCommit = Math.max(pr.sentCommit, Math.min(this.log.committed, last?.index ?? prevIndex));
    pr.sentEntries(last?.index ?? prevIndex, ents.length);
    return true;
  }

  /** §7: the follower needs entries that were compacted: send the latest snapshot instead. */
  #maybeSendSnapshot(to: ReplicaId, pr: Progress): boolean {
    if (!pr.recentActive) {
      this.logger.debug({ to }, 'not sending snapshot: follower not recently active');
      return false;
    }
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof RaftError && e.code === 'SNAPSHOT_TEMPORARILY_UNAVAILABLE') {
        this.logger.debug({ to }, 'snapshot temporarily unavailable');
        return false;
      }
      throw e;
    }
    if (snap.metadata.index === 0) {
      // Nothing to send yet: the application has not produced a snapshot (Storage.snapshot contract).
      this.logger.debug({ to }, 'no snapshot available for follower');
      return false;
    }
    pr.becomeSnapshot(snap.metadata.index);
    this.send({ type: MessageType.Snap, to, snapshot: snap });
    return true;
  }

  sendHeartbeat(to: ReplicaId, ctx: Uint8Array | undefined): void {
    const pr = this.progress.get(to);
    if (pr === undefined) return;
    // Never commit beyond what the follower is known to have: its log might not match past `match`.
    const commit = Math.min(pr.match, this.log.committed);
    pr.sentCommit = Math.max(pr.sentCommit, commit);
    this.send({ type: MessageType.Heartbeat, to, commit, ...(ctx === undefined ? {} : { context: ctx }) });
  }

  bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  /**
   * commitNoticesDue: some follower still needs a bare commit notice for the commit index an ack
   * advanced (no append or heartbeat since carried it). Clears the flag when none does.
   */
  commitNoticesDue(): boolean {
    if (!this.commitToBroadcast) return false;
    if (this.state === StateRole.Leader) {
      for (const [id, pr] of this.progress) {
        if (id !== this.id && this.#needsCommitNotice(pr)) return true;
      }
    }
    this.commitToBroadcast = false;
    return false;
  }

  /**
   * flushCommit tells each follower the commit index an ack advanced, unless an append or
   * heartbeat sent since (e.g. with the entries of a later proposal) carried it already. The later
   * a driver calls it, the more often the notice rides on such an append and costs nothing.
   */
  flushCommit(): void {
    if (!this.commitToBroadcast) return;
    this.commitToBroadcast = false;
    if (this.state !== StateRole.Leader) return;
    for (const [id, pr] of this.progress) {
      if (id !== this.id && this.#needsCommitNotice(pr)) this.maybeSendAppend(id, true);
    }
  }

  #needsCommitNotice(pr: Progress): boolean {
    return pr.sentCommit < Math.min(this.log.committed, pr.next - 1);
  }

  bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingRequestCtx();
    for (const id of this.progress.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ---------------------------------------------------------------- commit

  /** committedIndexByQuorum: the highest index replicated on a majority of voters. */
  #quorumMatchIndex(): number {
    const matches = this.voters().map((id) => (this.progress.get(id) as Progress).match);
    if (matches.length === 0) return 0;
    matches.sort((a, b) => b - a);
    return matches[this.quorum() - 1] ?? 0;
  }

  /**
   * maybeCommit advances the commit index to the quorum match index, but only if that entry is
   * from the current term: older entries are committed indirectly (§5.4.2). Returns whether it did.
   */
  maybeCommit(): boolean {
    const committed = this.log.maybeCommit(this.#quorumMatchIndex(), this.term);
    if (committed) this.#releasePendingReadIndexMessages();
    return committed;
  }

  /** committedEntryInCurrentTerm: the leader has committed an entry of its own term (§6.4, §8). */
  committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  // ---------------------------------------------------------------- role transitions

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.#resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes = new Map();
    this.campaignAfterApply = false;
    const last = this.log.lastIndex();
    for (const [id, pr] of this.progress) {
      const fresh = new Progress(last + 1, this.maxInflight, pr.isLearner);
      // Only what is durable counts toward the quorum (thesis §10.2.1); see handlePersisted.
      if (id === this.id) fresh.match = this.log.persistedLastIndex();
      this.progress.set(id, fresh);
    }
    this.pendingConfIndex = 0;
    this.pendingReadIndexMessages = [];
    this.commitToBroadcast = false;
    this.readOnly.reset();
  }

  /** §5.2: election timeouts are randomized in [electionTimeout, 2*electionTimeout) to split votes rarely. */
  #resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.#rng() * this.electionTimeout);
  }

  becomeFollower(term: number, lead: ReplicaId): void {
    this.#stepFn = (m) => this.#stepFollower(m);
    this.#reset(term);
    this.#tickFn = () => this.#tickElection();
    this.lead = lead;
    this.state = StateRole.Follower;
    this.logger.debug({ term, lead }, 'became follower');
  }

  becomeCandidate(): void {
    if (this.state === StateRole.Leader) throw new Error('raft: invalid transition leader -> candidate');
    this.#stepFn = (m) => this.#stepCandidate(m);
    this.#reset(this.term + 1);
    this.#tickFn = () => this.#tickElection();
    this.vote = this.id;
    this.state = StateRole.Candidate;
    this.logger.debug({ term: this.term }, 'became candidate');
  }

  /** becomePreCandidate: a pre-election does not bump the term or change the vote (thesis §9.6). */
  becomePreCandidate(): void {
    if (this.state === StateRole.Leader) throw new Error('raft: invalid transition leader -> pre-candidate');
    this.#stepFn = (m) => this.#stepCandidate(m);
    this.votes = new Map();
    this.#tickFn = () => this.#tickElection();
    this.lead = NONE;
    this.state = StateRole.PreCandidate;
    this.logger.debug({ term: this.term }, 'became pre-candidate');
  }

  /** becomeLeader appends an empty entry of the new term so earlier entries can commit (§5.4.2, §8). */
  becomeLeader(): void {
    if (this.state === StateRole.Follower) throw new Error('raft: invalid transition follower -> leader');
    this.#stepFn = (m) => this.#stepLeader(m);
    this.#reset(this.term);
    this.#tickFn = () => this.#tickHeartbeat();
    this.lead = this.id;
    this.state = StateRole.Leader;
    const self = this.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    const index = this.log.lastIndex() + 1;
    // Single-server changes are only safe once the leader has committed an entry of its own term
    // (Ongaro, raft-dev 2015): block conf changes until the no-op below is applied.
    this.pendingConfIndex = index;
    this.appendEntry([{ term: this.term, index, type: EntryType.Normal, data: new Uint8Array() }]);
    this.logger.info({ term: this.term }, 'became leader');
  }

  /**
   * appendEntry appends entries (index/term already set) to the leader's log. The leader does NOT
   * count itself for them here: it does once they are handed to the application for persistence
   * (acknowledgeOwnEntries, from RawNode.ready), so that no commit index computed with its own
   * not-yet-durable entries leaves in a message the application may send before its write
   * (Ready.earlyMessages, Raft thesis §10.2.1).
   */
  appendEntry(ents: Entry[]): void {
    this.log.append(ents);
  }

  /**
   * acknowledgeOwnEntries: the leader's entries up to (index, term) are being handed to the
   * application in a Ready, which persists them before it applies anything or sends any message
   * generated from now on. The leader counts itself for them (thesis §10.2.1: the leader is part of
   * the commit quorum only for entries it has persisted); a commit this enables is told to the
   * followers by messages that wait for that persistence.
   */
  acknowledgeOwnEntries(index: number, term: number): void {
    if (this.state !== StateRole.Leader) return;
    if (this.log.maybeTerm(index) !== term) return;
    const self = this.progress.get(this.id);
    if (self === undefined || !self.maybeUpdate(index)) return;
    if (this.maybeCommit()) this.bcastAppend();
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    this.#tickFn();
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  #tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(this.#local(MessageType.Hup));
    }
  }

  #tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(this.#local(MessageType.CheckQuorum));
      // §3.10: a transfer that did not finish within an election timeout is aborted.
      if (this.state === StateRole.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateRole.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(this.#local(MessageType.Beat));
    }
  }

  #local(type: MessageType): Message {
    return localMessage(type, this.id, this.id);
  }

  // ---------------------------------------------------------------- elections

  /** hup starts an election (a pre-election first when preVote is on), if allowed. */
  hup(transfer: boolean): void {
    if (this.state === StateRole.Leader) return;
    if (!this.promotable()) {
      this.logger.warn({}, 'not promotable: cannot campaign');
      return;
    }
    // A node must not campaign with unapplied conf changes: it may not know its real config.
    const pending = this.log.nextEnts(NO_LIMIT).some((e) => e.type === EntryType.ConfChange);
    if (pending) {
      this.logger.warn({}, 'cannot campaign: pending conf change not applied');
      // A leader that removed itself sends TimeoutNow together with the commit of its removal.
      if (transfer) this.campaignAfterApply = true;
      return;
    }
    if (this.preVote && !transfer) this.#campaign('pre');
    else this.#campaign(transfer ? 'transfer' : 'election');
  }

  #campaign(kind: 'pre' | 'election' | 'transfer'): void {
    let term: number;
    let voteType: MessageType;
    if (kind === 'pre') {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    const result = this.poll(this.id, this.id, true);
    if (result === 'won') {
      // Single-voter group: won outright.
      if (kind === 'pre') this.#campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of this.voters()) {
      if (id === this.id) continue;
      this.send({
        type: voteType,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        ...(kind === 'transfer' ? { context: CAMPAIGN_TRANSFER } : {}),
      });
    }
  }

  /** poll records a vote and returns the election outcome so far. */
  poll(id: ReplicaId, _from: ReplicaId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.voters()) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = this.quorum();
    if (yes >= q) return 'won';
    if (no > this.voters().length - q) return 'lost';
    return 'pending';
  }

  /** maybeCampaignAfterApply runs a transfer campaign deferred by hup() once conf changes are applied. */
  maybeCampaignAfterApply(): void {
    if (!this.campaignAfterApply || this.state === StateRole.Leader) return;
    if (this.log.nextEnts(NO_LIMIT).some((e) => e.type === EntryType.ConfChange)) return;
    this.campaignAfterApply = false;
    this.hup(true);
  }

  // ---------------------------------------------------------------- step

  /** step is the entry point for every message, local or remote (term rules of §5.1 first). */
  step(m: Message): void {
    if (m.term === 0) {
      // local message (or a forwarded ReadIndex / TransferLeader)
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Leader lease (thesis §4.2.3): a replica that heard from a live leader within the minimum
          // election timeout ignores votes, so a partitioned node cannot disrupt the group.
          this.logger.debug({ from: m.from, term: m.term }, 'ignoring vote: leader lease');
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote never changes our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // The term is bumped when the pre-election wins, not on each grant.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader (e.g. after a partition) learns the new term from this response; without it
        // check-quorum/pre-vote could leave a node that can never win an election stuck.
        this.send({ type: MessageType.AppResp, to: m.from });
      } else if (m.type === MessageType.PreVote) {
        this.send({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(false);
        return;
      case MessageType.Vote:
      case MessageType.PreVote: {
        // §5.2, §5.4.1: grant at most one vote per term, and only to a candidate whose log is at
        // least as up to date as ours.
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term);
        const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          this.send({ type: respType, to: m.from, term: m.term });
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ type: respType, to: m.from, term: this.term, reject: true });
        }
        return;
      }
      default:
        this.#stepFn(m);
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        // §6.2 / thesis §3.6.2: step down if a quorum has not been heard from in an election timeout.
        if (!this.#quorumActive()) {
          this.logger.warn({ term: this.term }, 'stepping down: quorum not active');
          this.becomeFollower(this.term, NONE);
        }
        for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
        return;
      case MessageType.ReadIndex:
        this.#handleReadIndex(m);
        return;
      case MessageType.TransferLeader:
        this.#handleTransferLeader(m);
        return;
      default:
        break;
    }
    const pr = this.progress.get(m.from);
    if (pr === undefined) {
      this.logger.debug({ from: m.from }, 'no progress for sender');
      return;
    }
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        if (!m.reject) pr.commitKnown = m.commit;
        this.#handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        pr.commitKnown = m.commit;
        this.#handleHeartbeatResponse(m, pr);
        return;
      case MessageType.SnapStatus:
        if (pr.state !== 'snapshot') return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a heartbeat response (or the next App answer) before probing again.
        pr.probeSent = true;
        return;
      case MessageType.Unreachable:
        // Optimistic replication may have lost messages: fall back to probing.
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
      default:
        return;
    }
  }

  #handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      if (m.index === 0) {
        // The follower has no configuration: it must be initialized by a snapshot (§7).
        if (pr.state !== 'snapshot') this.#maybeSendSnapshot(m.from, pr);
        return;
      }
      // §5.3 with fast backtracking: skip straight to the last index the follower may share.
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      // The follower caught up past the snapshot (or the log it needs is available again).
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      // New entries go now; a bare commit notice waits for flushCommit (it may ride on them or on
      // a later append).
      for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, false);
      this.commitToBroadcast = true;
    } else if (wasPaused) {
      this.maybeSendAppend(m.from, true);
    }
    // Drain as much as the window allows (size-bounded batches).
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.#sendTimeoutNow(m.from);
  }

  #handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    // A full window may be stuck on lost Apps: free one slot so replication can make progress.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex() || pr.sentCommit < this.log.committed) this.maybeSendAppend(m.from, true);
    if (this.readOnly.option !== 'safe' || m.context === undefined || m.context.length === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    let n = 0;
    for (const id of acks) if (this.progress.get(id)?.isLearner === false) n++;
    if (n < this.quorum()) return;
    for (const rs of this.readOnly.advance(m.context)) this.#respondReadIndex(rs.request, rs.index);
  }

  #quorumActive(): boolean {
    let n = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      if (id === this.id || pr.recentActive) n++;
    }
    return n >= this.quorum();
  }

  #stepCandidate(m: Message): void {
    const myVoteResp = this.state === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.#handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        return;
      default:
        break;
    }
    if (m.type !== myVoteResp) return;
    const result = this.poll(m.from, m.from, !m.reject);
    if (result === 'won') {
      if (this.state === StateRole.PreCandidate) {
        this.#campaign('election');
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (result === 'lost') {
      // A rejected pre-vote (or vote) carrying a higher term already made us a follower in step().
      this.becomeFollower(this.term, NONE);
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) {
          this.logger.info({}, 'no leader: dropping leader transfer');
          return;
        }
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.TimeoutNow:
        // §3.10: the leader asks us to start an election at once, bypassing pre-vote and the lease.
        this.logger.info({ from: m.from }, 'received TimeoutNow: campaigning');
        this.hup(true);
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) {
          this.logger.info({}, 'no leader: dropping read index');
          return;
        }
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array() });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  #handleAppendEntries(m: Message): void {
    if (this.progress.size === 0 && this.log.lastIndex() === 0) {
      // Uninitialized replica (joining, no configuration yet): it cannot interpret the log without
      // the group's base configuration, so it asks for a snapshot by rejecting at index 0.
      this.send({ type: MessageType.AppResp, to: m.from, index: 0, reject: true, rejectHint: 0, logTerm: 0 });
      return;
    }
    // Successful answers carry this replica's commit index: the leader quiesces only once every
    // follower has reported the whole log committed (a lost commit notice is resent meanwhile).
    if (m.index < this.log.committed) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed, commit: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: MessageType.AppResp, to: m.from, index: lastNew, commit: this.log.committed });
      return;
    }
    // §5.3: reject, with a hint so the leader can skip a whole term of mismatching entries.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({
      type: MessageType.AppResp,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  #handleHeartbeat(m: Message): void {
    const commit = Math.min(m.commit, this.log.lastIndex());
    if (commit < m.commit) this.logger.warn({ commit: m.commit }, 'heartbeat commit beyond last index; clamped');
    this.log.commitTo(commit);
    this.send({
      type: MessageType.HeartbeatResp,
      to: m.from,
      commit: this.log.committed,
      ...(m.context === undefined ? {} : { context: m.context }),
    });
  }

  #handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    if (this.restore(s)) {
      this.logger.info({ index: s.metadata.index }, 'restored snapshot');
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex(), commit: this.log.committed });
    } else {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed, commit: this.log.committed });
    }
  }

  /**
   * restore installs snapshot `s` (§7) unless it is not newer than our commit index, or our log
   * already contains its last entry (then we just fast-forward the commit index).
   */
  restore(s: Snapshot): boolean {
    const md = s.metadata;
    if (md.index <= this.log.committed) return false;
    if (this.state !== StateRole.Follower) {
      this.logger.warn({}, 'non-follower attempted to restore snapshot');
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const inConfig = md.confState.voters.includes(this.id) || md.confState.learners.includes(this.id);
    if (!inConfig) {
      this.logger.warn({ index: md.index }, 'ignoring snapshot: not in its configuration');
      return false;
    }
    if (this.log.matchTerm(md.index, md.term)) {
      this.log.commitTo(md.index);
      return false;
    }
    this.log.restore(s);
    this.#applyConfState(md.confState);
    return true;
  }

  // ---------------------------------------------------------------- proposals

  /**
   * propose appends commands of one type on the leader, consecutively, and returns where the first
   * landed; ONE broadcast carries them all. Followers do not forward: they throw NOT_LEADER with the
   * leader hint (the application redirects the client).
   */
  propose(type: EntryType, data: readonly Uint8Array[]): { index: number; term: number } {
    if (this.state !== StateRole.Leader) {
      if (this.lead === NONE) throw new RaftError('PROPOSAL_DROPPED', 'no leader');
      throw new RaftError('NOT_LEADER', `not the leader; leader is ${this.lead}`, { leaderId: this.lead });
    }
    if (!this.progress.has(this.id)) throw new RaftError('PROPOSAL_DROPPED', 'this replica was removed');
    if (this.leadTransferee !== NONE) {
      throw new RaftError('TRANSFER_IN_PROGRESS', `leadership transfer to ${this.leadTransferee} in progress`);
    }
    if (data.length === 0) throw new RangeError('propose needs at least one command');
    const index = this.log.lastIndex() + 1;
    if (type === EntryType.ConfChange) {
      if (data.length !== 1) throw new RangeError('one membership change per proposal');
      if (this.pendingConfIndex > this.log.applied) {
        throw new RaftError(
          'CONF_CHANGE_PENDING',
          `conf change at ${this.pendingConfIndex} not applied yet (applied ${this.log.applied})`,
        );
      }
      this.pendingConfIndex = index;
    }
    const term = this.term;
    this.appendEntry(data.map((d, i) => ({ term, index: index + i, type, data: d })));
    this.bcastAppend();
    return { index, term };
  }

  // ---------------------------------------------------------------- membership

  /**
   * applyConfChange applies one committed membership change (single-server change, thesis §4.1;
   * the new configuration takes effect when applied, as in etcd). Returns the new ConfState.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const id = cc.replicaId;
    const existing = this.progress.get(id);
    const last = this.log.lastIndex();
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        if (existing !== undefined) {
          existing.isLearner = false;
        } else {
          this.#addProgress(id, false, last);
        }
        break;
      case ConfChangeType.AddLearner:
        if (existing !== undefined) {
          if (!existing.isLearner && this.voters().length === 1) {
            this.logger.warn({ id }, 'refusing to demote the last voter');
            break;
          }
          existing.isLearner = true;
        } else {
          this.#addProgress(id, true, last);
        }
        break;
      case ConfChangeType.RemoveNode:
        if (existing === undefined) break;
        if (!existing.isLearner && this.voters().length === 1) {
          this.logger.warn({ id }, 'refusing to remove the last voter');
          break;
        }
        this.progress.delete(id);
        break;
    }

    const selfPr = this.progress.get(this.id);
    if (this.state === StateRole.Leader && (selfPr === undefined || selfPr.isLearner)) {
      this.#stepDownAfterRemoval();
      return this.confState();
    }
    if (this.state === StateRole.Leader) {
      // The quorum may have shrunk, letting entries commit; or grown, needing Apps to the new member.
      if (this.maybeCommit()) this.bcastAppend();
      else for (const pid of this.progress.keys()) if (pid !== this.id) this.maybeSendAppend(pid, false);
      if (this.leadTransferee !== NONE && this.progress.get(this.leadTransferee)?.isLearner !== false) {
        this.abortLeaderTransfer();
      }
    }
    return this.confState();
  }

  #addProgress(id: ReplicaId, isLearner: boolean, last: number): void {
    const pr = new Progress(last + 1, this.maxInflight, isLearner);
    // A newly added member counts as active so check-quorum does not trip before it is heard from.
    pr.recentActive = true;
    if (id === this.id) pr.match = Math.min(last, this.log.persistedLastIndex());
    this.progress.set(id, pr);
  }

  /**
   * A leader removed (or demoted) by an applied conf change hands leadership to the most up-to-date
   * remaining voter with TimeoutNow (so the group does not wait an election timeout) and steps down.
   */
  #stepDownAfterRemoval(): void {
    let best: ReplicaId = NONE;
    let bestMatch = -1;
    for (const [id, pr] of this.progress) {
      if (id === this.id || pr.isLearner) continue;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best !== NONE && bestMatch === this.log.lastIndex()) this.#sendTimeoutNow(best);
    this.logger.info({ transferee: best }, 'leader removed from configuration: stepping down');
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- leadership transfer

  #handleTransferLeader(m: Message): void {
    const transferee = m.from;
    const pr = this.progress.get(transferee);
    if (pr === undefined || pr.isLearner) {
      this.logger.debug({ transferee }, 'ignoring transfer to a non-voter');
      return;
    }
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // §3.10: the transfer must finish within one election timeout, or it is aborted (tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.#sendTimeoutNow(transferee);
    else this.maybeSendAppend(transferee, true);
  }

  #sendTimeoutNow(to: ReplicaId): void {
    this.send({ type: MessageType.TimeoutNow, to });
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---------------------------------------------------------------- read index

  #handleReadIndex(m: Message): void {
    if (this.voters().length === 1 && this.progress.get(this.id)?.isLearner === false) {
      this.#respondReadIndex(m, this.log.committed);
      return;
    }
    // §6.4: a new leader does not know the commit index until it commits an entry of its term.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.#sendReadIndexResponse(m);
  }

  #sendReadIndexResponse(m: Message): void {
    if (this.readOnly.option === 'safe') {
      this.readOnly.addRequest(this.log.committed, m);
      this.readOnly.recvAck(this.id, m.context);
      const ctx = m.context;
      for (const id of this.progress.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
      return;
    }
    // leaseBased: check-quorum guarantees no other leader was elected within the lease; this
    // relies on bounded clock drift between replicas (see docs/raft.md).
    this.#respondReadIndex(m, this.log.committed);
  }

  #respondReadIndex(req: Message, index: number): void {
    const ctx = req.context ?? new Uint8Array();
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, requestCtx: ctx });
    } else {
      this.send({ type: MessageType.ReadIndexResp, to: req.from, index, context: ctx });
    }
  }

  #releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.#sendReadIndexResponse(m);
  }
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export { CAMPAIGN_TRANSFER };

/** localMessage builds a message a replica addresses to itself (Hup, Beat, Prop, ...), all other fields zero. */
export function localMessage(type: MessageType, to: ReplicaId, from: ReplicaId): Message {
  return { type, to, from, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
}
