import type { raftpb } from '@omnidict/proto';
import { MessageType } from '@omnidict/raft';

/**
 * MatchTracker learns each follower's match index from the append responses this node receives
 * (a non-rejecting AppResp carries the follower's last index that matches the sender's log, the
 * value the Raft core's progress tracker records; a learner that installed a snapshot answers with
 * the snapshot index). PD needs it in shard heartbeats (`replica_match`) to decide when a new
 * learner has caught up.
 *
 * Why not the runtime: `RaftHost.status()` does not expose the leader's progress. This tap reads
 * the same messages the core steps, so it is an observer, never a second source of truth; entries
 * of an older term are ignored (a new leader starts from what the followers tell it).
 */
export class MatchTracker {
  /** groupId → { term of the responses, replicaId → highest acknowledged index }. */
  readonly #groups = new Map<number, { term: number; match: Map<number, number> }>();

  /** Records every append response in an inbound batch (must not throw: it runs on the receive path). */
  observe(batch: raftpb.MessageBatch): void {
    for (const gm of batch.messages) {
      const m = gm.message;
      if (m === undefined || m.type !== MessageType.AppResp || m.reject) continue;
      let g = this.#groups.get(gm.groupId);
      if (g === undefined || m.term > g.term) {
        g = { term: m.term, match: new Map() };
        this.#groups.set(gm.groupId, g);
      }
      if (m.term < g.term) continue;
      if (m.index > (g.match.get(m.from) ?? 0)) g.match.set(m.from, m.index);
    }
  }

  /** Match index per replica id heard in `term` (empty when nothing of that term was heard). */
  matchOf(groupId: number, term: number): Map<number, number> {
    const g = this.#groups.get(groupId);
    return g !== undefined && g.term === term ? g.match : new Map();
  }

  forget(groupId: number): void {
    this.#groups.delete(groupId);
  }
}
