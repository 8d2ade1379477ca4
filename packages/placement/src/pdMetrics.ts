import { Counter, Histogram, type Registry } from 'prom-client';
import type { PdRequestObserver } from './instrumentUnary.js';

/**
 * Registers PD's RPC metrics (counts and latencies by method and code) and returns the observer to
 * pass as `PdOptions.observeRequest`. The Raft counters come from `registerRaftMetrics`.
 */
export function registerPdRequestMetrics(registry: Registry): PdRequestObserver {
  const requests = new Counter({
    name: 'omnidict_pd_requests_total',
    help: 'PD RPCs answered, by method and outcome code',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'omnidict_pd_request_duration_seconds',
    help: 'PD RPC latency, by method',
    labelNames: ['method'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return (method, code, durationMs) => {
    requests.inc({ method, code });
    latency.observe({ method }, durationMs / 1000);
  };
}
