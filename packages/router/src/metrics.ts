import { Counter, Histogram, Registry } from 'prom-client';

/**
 * RouterMetrics: the router's Prometheus series, on a registry of its own so several routers can
 * live in one process (tests). Latency buckets are in seconds.
 */
export class RouterMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'omnidict_router_requests_total',
    help: 'Public KV requests served, by method and OmniDict result code (OK on success).',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'omnidict_router_request_duration_seconds',
    help: 'Latency of public KV requests, by method and result code.',
    labelNames: ['method', 'code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'omnidict_router_retries_total',
    help: 'Node requests retried, by the reason (error code) that caused the retry.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly nodeBatches = new Counter({
    name: 'omnidict_router_node_batches_total',
    help: 'NodeRequestBatch messages written to storage nodes.',
    registers: [this.registry],
  });
  readonly nodeRequests = new Counter({
    name: 'omnidict_router_node_requests_total',
    help: 'Requests written to storage nodes (inside batches).',
    registers: [this.registry],
  });
  readonly mapRevision = new Counter({
    name: 'omnidict_router_shard_map_updates_total',
    help: 'Shard maps received from PD and applied.',
    registers: [this.registry],
  });

  /** observe records one finished public request. */
  observe(method: string, code: string, seconds: number): void {
    this.requests.inc({ method, code });
    this.latency.observe({ method, code }, seconds);
  }
}
