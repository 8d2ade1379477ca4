/**
 * Inflights bounds the number of App messages in flight to one follower (flow control in the
 * replicate state). Each entry is the last log index carried by one App message.
 */
export class Inflights {
  readonly #capacity: number;
  #buffer: number[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** add records an App message whose last entry is `index`. Indexes must be increasing. */
  add(index: number): void {
    if (this.full()) throw new Error('inflights: add into a full window');
    this.#buffer.push(index);
  }

  /** freeLE frees every in-flight message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.#buffer.length && (this.#buffer[n] as number) <= index) n++;
    if (n > 0) this.#buffer = this.#buffer.slice(n);
  }

  /** freeFirstOne frees the oldest in-flight message. */
  freeFirstOne(): void {
    this.#buffer = this.#buffer.slice(1);
  }

  full(): boolean {
    return this.#buffer.length >= this.#capacity;
  }

  get count(): number {
    return this.#buffer.length;
  }

  reset(): void {
    this.#buffer = [];
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * Progress is the leader's view of one follower's log (etcd-io/raft tracker/progress.go).
 *
 * - probe: the leader does not know where the follower's log matches; it sends at most one App
 *   per heartbeat interval and walks `next` back on rejection.
 * - replicate: the follower's log is known to match up to `match`; the leader streams Apps
 *   optimistically, bounded by the inflight window.
 * - snapshot: the leader sent a snapshot and waits for it to be applied (reportSnapshot).
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** True if the follower was heard from since the last check-quorum round. */
  recentActive = false;
  /** In probe state: an App was sent and we wait for its answer or the next heartbeat. */
  probeSent = false;
  /** Highest commit index sent to this follower (a commit notice skips it when nothing is new). */
  sentCommit = 0;
  /**
   * Commit index in this follower's latest answer (not a maximum: a restarted follower may report
   * less than before). Quiescence waits for it to cover the whole log.
   */
  commitKnown = 0;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  #resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** becomeProbe: after a snapshot, resume after the snapshot index; otherwise right after match. */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.#resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.#resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** maybeUpdate records an acknowledgement up to `n`; returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * maybeDecrTo handles a rejected App for index `rejected`; `matchHint` is the highest index that
   * may match (from the follower's hint). Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** sentEntries updates the progress after an App carrying entries up to `lastIndex` was sent. */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** isPaused: whether the leader must hold back Apps to this follower for now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
