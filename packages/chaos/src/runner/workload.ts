import type { OmniClient } from '@omnidict/client';
import { OmniError } from '@omnidict/client';
import type { HistoryRecorder, OpOutputs, PendingOp } from '../history.js';
import type { Rng } from '../rng.js';

// The register workload: concurrent logical clients, each with one operation outstanding at a
// time, over a small key set so operations collide. Every value written is unique
// (`c<client>-<seq>`), so a read names the write it saw. CAS expects the value the client last
// saw for the key (often stale on purpose). TTL writes use short TTLs so reads race with expiry.
//
// Outcome classification (the checker's soundness depends on it):
// - a read that errors is `failed` (it had no effect either way);
// - a write that errors with INVALID_ARGUMENT or TOO_LARGE is `failed` (rejected before proposing);
// - any other write error — TIMEOUT, UNAVAILABLE, NOT_LEADER, STALE_EPOCH, a broken connection —
//   is `unknown`: the router may have forwarded it and the shard may have committed it.

export interface WorkloadOptions {
  clients: number;
  keys: number;
  opTimeoutMs: number;
  ttlMs: [number, number];
}

const DEFINITE_WRITE_ERRORS = new Set(['INVALID_ARGUMENT', 'TOO_LARGE']);

export function keyName(index: number): string {
  return `chaos-${index}`;
}

export class RegisterWorkload {
  private stopped = false;
  private sequence = 0;

  constructor(
    private readonly client: OmniClient,
    private readonly recorder: HistoryRecorder,
    private readonly rng: Rng,
    private readonly options: WorkloadOptions,
  ) {}

  /** Runs every client until `stop()`; resolves when all have finished their current operation. */
  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.options.clients }, (_, clientId) => this.runClient(clientId)));
  }

  stop(): void {
    this.stopped = true;
  }

  /** One linearizable read of every key, retried until it succeeds or `deadlineMs` passes. */
  async finalReads(clientId: number, deadlineMs: number): Promise<number> {
    let unread = 0;
    for (let k = 0; k < this.options.keys; k++) {
      let done = false;
      while (!done && Date.now() < deadlineMs) {
        done = await this.get(clientId, keyName(k));
        if (!done) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      if (!done) unread++;
    }
    return unread;
  }

  private async runClient(clientId: number): Promise<void> {
    const lastSeen = new Map<string, string | null>();
    while (!this.stopped) {
      const key = keyName(this.rng.int(this.options.keys));
      const value = `c${clientId}-${this.sequence++}`;
      const roll = this.rng.float();
      if (roll < 0.4) {
        await this.get(clientId, key, lastSeen);
      } else if (roll < 0.6) {
        const pending = this.recorder.invoke(clientId, key, 'put', { value });
        await this.write(
          pending,
          () => this.client.put(key, value, { timeoutMs: this.options.opTimeoutMs }),
          () => ({}),
        );
        lastSeen.set(key, value);
      } else if (roll < 0.7) {
        const ttlMs = this.rng.between(this.options.ttlMs[0], this.options.ttlMs[1]);
        const pending = this.recorder.invoke(clientId, key, 'putTtl', { value, ttlMs });
        await this.write(
          pending,
          () => this.client.put(key, value, { ttlMs, timeoutMs: this.options.opTimeoutMs }),
          () => ({}),
        );
      } else if (roll < 0.9) {
        const expected = this.rng.chance(0.8) ? (lastSeen.get(key) ?? null) : null;
        const pending = this.recorder.invoke(clientId, key, 'cas', { expected, value });
        const expectation = expected === null ? { expectAbsent: true as const } : { expectedValue: expected };
        await this.write(
          pending,
          () => this.client.cas(key, expectation, value, { timeoutMs: this.options.opTimeoutMs }),
          (result) => {
            lastSeen.set(key, result.swapped ? value : (result.current?.value.toString() ?? null));
            return { swapped: result.swapped };
          },
        );
      } else {
        const pending = this.recorder.invoke(clientId, key, 'delete', {});
        await this.write(
          pending,
          () => this.client.delete(key, { timeoutMs: this.options.opTimeoutMs }),
          (existed) => ({ existed }),
        );
        lastSeen.set(key, null);
      }
    }
  }

  private async get(clientId: number, key: string, lastSeen?: Map<string, string | null>): Promise<boolean> {
    const pending = this.recorder.invoke(clientId, key, 'get', {});
    try {
      const result = await this.client.get(key, { timeoutMs: this.options.opTimeoutMs });
      const value = result === null ? null : result.value.toString();
      this.recorder.ok(pending, { value });
      lastSeen?.set(key, value);
      return true;
    } catch (err) {
      this.recorder.failed(pending, describeError(err));
      return false;
    }
  }

  private async write<K extends 'put' | 'putTtl' | 'cas' | 'delete', R>(
    pending: PendingOp<K>,
    call: () => Promise<R>,
    output: (result: R) => OpOutputs[K],
  ): Promise<void> {
    try {
      const result = await call();
      this.recorder.ok(pending, output(result));
    } catch (err) {
      const code = err instanceof OmniError ? err.code : undefined;
      if (code !== undefined && DEFINITE_WRITE_ERRORS.has(code)) this.recorder.failed(pending, describeError(err));
      else this.recorder.unknown(pending, describeError(err));
    }
  }
}

function describeError(err: unknown): string {
  if (err instanceof OmniError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
