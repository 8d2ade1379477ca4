import { performance } from 'node:perf_hooks';
import { type CasExpectation, type CasResult, OmniError } from '@omnidict/client';
import { seededRng } from '@omnidict/raft';
import { uniform, zipfian } from './zipfian.js';

export type Workload = 'put' | 'get' | 'mixed' | 'cas';
export type Distribution = 'uniform' | 'zipfian';

/**
 * What a benchmark drives: an OmniClient, a Pipeline, or any other KV store behind an adapter (the
 * etcd comparison in @omnidict/bench). `get` must be the store's linearizable read. Only the cas
 * workload needs `cas`.
 */
export interface BenchTarget {
  put(key: string, value: Uint8Array): Promise<unknown>;
  get(key: string): Promise<unknown>;
  cas?(key: string, expect: CasExpectation, value: Uint8Array): Promise<CasResult>;
}

/** Optional callbacks of runBench. */
export interface BenchHooks {
  onProgress?: (p: BenchProgress) => void;
  progressEveryMs?: number;
  stopSignal?: Promise<void>;
  /** The code a failed operation is counted under; default: OmniError's code, else INTERNAL. */
  errorCode?: (err: unknown) => string;
}

export interface BenchOptions {
  workload: Workload;
  /** Fraction of gets in the mixed workload. */
  readRatio: number;
  concurrency: number;
  valueSizeBytes: number;
  keys: number;
  /** Stop after this long (at least one of durationMs and ops is given). */
  durationMs?: number;
  /** Stop after this many operations. */
  ops?: number;
  distribution: Distribution;
  keyPrefix: string;
  seed: number;
}

export interface BenchProgress {
  elapsedMs: number;
  ops: number;
  errors: number;
}

export interface BenchResult {
  workload: Workload;
  distribution: Distribution;
  readRatio: number | null;
  concurrency: number;
  valueSizeBytes: number;
  keys: number;
  seed: number;
  ops: number;
  errors: number;
  errorsByCode: Record<string, number>;
  /** The first error message seen for each code, with how long that operation had run (ms). */
  firstErrors: Record<string, { message: string; afterMs: number }>;
  /** cas workload: swaps that lost a race (not errors). */
  casConflicts: number;
  elapsedMs: number;
  opsPerSec: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
}

export function benchKey(opts: Pick<BenchOptions, 'keyPrefix'>, i: number): string {
  return `${opts.keyPrefix}${String(i).padStart(8, '0')}`;
}

/**
 * runBench runs a closed-loop benchmark: `concurrency` workers, each issuing its next operation when
 * the previous one answers, until the duration or op count is reached or `stop()` is called. Latency
 * is measured per successful operation; failures are counted by code.
 */
export async function runBench(target: BenchTarget, opts: BenchOptions, hooks: BenchHooks = {}): Promise<BenchResult> {
  const cas = opts.workload === 'cas' ? target.cas?.bind(target) : undefined;
  if (opts.workload === 'cas' && !cas) throw new OmniError('INVALID_ARGUMENT', 'this target has no compare-and-swap');
  const errorCode = hooks.errorCode ?? ((err: unknown) => (err instanceof OmniError ? err.code : 'INTERNAL'));
  const rand = seededRng(opts.seed);
  const pick = opts.distribution === 'zipfian' ? zipfian(opts.keys, rand) : uniform(opts.keys, rand);
  const value = Buffer.alloc(opts.valueSizeBytes, 0x61);
  const modIndexes = new Map<number, number>();
  const latencies: number[] = [];
  const errorsByCode: Record<string, number> = {};
  const firstErrors: Record<string, { message: string; afterMs: number }> = {};
  let errors = 0;
  let issued = 0;
  let casConflicts = 0;
  let stopped = false;
  const start = performance.now();
  void hooks.stopSignal?.then(() => {
    stopped = true;
  });
  const timer = opts.durationMs === undefined ? null : setTimeout(() => (stopped = true), opts.durationMs);
  const progress = hooks.onProgress
    ? setInterval(
        () => hooks.onProgress?.({ elapsedMs: performance.now() - start, ops: latencies.length, errors }),
        hooks.progressEveryMs ?? 1000,
      )
    : null;

  const one = async (i: number): Promise<void> => {
    const key = benchKey(opts, i);
    const read = opts.workload === 'get' || (opts.workload === 'mixed' && rand() < opts.readRatio);
    if (cas) {
      const known = modIndexes.get(i);
      const r = await cas(key, known === undefined ? { expectAbsent: true } : { expectedModIndex: known }, value);
      if (r.swapped) modIndexes.set(i, r.modIndex);
      else {
        casConflicts++;
        if (r.current) modIndexes.set(i, r.current.modIndex);
        else modIndexes.delete(i);
      }
    } else if (read) await target.get(key);
    else await target.put(key, value);
  };

  const worker = async () => {
    while (!stopped && (opts.ops === undefined || issued < opts.ops)) {
      issued++;
      const i = pick();
      const t0 = performance.now();
      try {
        await one(i);
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        const code = errorCode(err);
        errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
        firstErrors[code] ??= {
          message: err instanceof Error ? err.message : String(err),
          afterMs: round(performance.now() - t0),
        };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    if (timer) clearTimeout(timer);
    if (progress) clearInterval(progress);
  }
  const elapsedMs = performance.now() - start;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
  const sum = latencies.reduce((a, b) => a + b, 0);
  return {
    workload: opts.workload,
    distribution: opts.distribution,
    readRatio: opts.workload === 'mixed' ? opts.readRatio : null,
    concurrency: opts.concurrency,
    valueSizeBytes: opts.valueSizeBytes,
    keys: opts.keys,
    seed: opts.seed,
    ops: latencies.length,
    errors,
    errorsByCode,
    firstErrors,
    casConflicts,
    elapsedMs: round(elapsedMs),
    opsPerSec: round(latencies.length / (elapsedMs / 1000)),
    latencyMs: {
      mean: round(latencies.length ? sum / latencies.length : 0),
      p50: q(0.5),
      p90: q(0.9),
      p99: q(0.99),
      max: round(latencies[latencies.length - 1] ?? 0),
    },
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
