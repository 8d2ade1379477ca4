import { registerRaftMetrics } from '@omnidict/raft/runtime';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Store } from './store/store.js';

/**
 * Registers a storage node's metrics: NodeKV request counts and latencies by op and outcome code,
 * and the Raft runtime's counters (fsyncs, applied entries, messages, snapshots). Fsyncs per
 * committed write = omnidict_raft_fsyncs_total / omnidict_raft_applied_entries_total.
 */
export function registerNodeMetrics(registry: Registry, store: Store): void {
  const requests = new Counter({
    name: 'omnidict_node_requests_total',
    help: 'NodeKV requests executed, by op and outcome code',
    labelNames: ['op', 'code'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'omnidict_node_request_duration_seconds',
    help: 'NodeKV request latency on the node, by op',
    labelNames: ['op'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  store.requestObserver = (op, code, durationMs) => {
    requests.inc({ op, code });
    latency.observe({ op }, durationMs / 1000);
  };
  registerRaftMetrics(registry, store.host.stats);
}
