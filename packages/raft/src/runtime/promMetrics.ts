import { Counter, type Registry } from 'prom-client';
import type { HostStats } from './host.js';

const RAFT_COUNTERS: ReadonlyArray<readonly [keyof HostStats, string, string]> = [
  ['turns', 'omnidict_raft_scheduler_turns_total', 'scheduler turns (batches of ready groups handled)'],
  ['syncWrites', 'omnidict_raft_fsyncs_total', 'synced (fsync) batches written by the group-commit scheduler'],
  ['appliedEntries', 'omnidict_raft_applied_entries_total', 'committed entries applied, all groups'],
  ['batchesSent', 'omnidict_raft_message_batches_sent_total', 'transport batches sent to peers'],
  ['messagesSent', 'omnidict_raft_messages_sent_total', 'Raft messages and coalesced heartbeats sent'],
  ['inboundDropped', 'omnidict_raft_inbound_dropped_total', 'inbound messages dropped by full receive queues'],
  ['snapshotsSent', 'omnidict_raft_snapshots_sent_total', 'snapshots streamed to peers'],
  ['snapshotsInstalled', 'omnidict_raft_snapshots_installed_total', 'snapshots installed'],
];

/**
 * Registers a host's runtime counters (`RaftHost.stats`) as Prometheus counters, read at scrape
 * time. Fsyncs per committed write = omnidict_raft_fsyncs_total / omnidict_raft_applied_entries_total.
 */
export function registerRaftMetrics(registry: Registry, stats: Readonly<HostStats>): void {
  for (const [field, name, help] of RAFT_COUNTERS) {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(stats[field]);
      },
    });
  }
}
