/**
 * Clock is the runtime's only access to wall time. Only the host's scheduler (ticks, liveness) and
 * the transports' reconnect backoff use it; the Raft core never does.
 */
export interface Clock {
  nowMs(): number;
  /** Calls `fn` once after `delayMs`. Returns a cancel function. */
  setTimeout(fn: () => void, delayMs: number): () => void;
  /** Calls `fn` every `periodMs` until cancelled. */
  setInterval(fn: () => void, periodMs: number): () => void;
}

/** systemClock: real time. Timers are unref'd so an idle host does not keep a process alive by itself. */
export const systemClock: Clock = {
  nowMs: () => performance.timeOrigin + performance.now(),
  setTimeout(fn, delayMs) {
    const t = setTimeout(fn, delayMs);
    t.unref();
    return () => clearTimeout(t);
  },
  setInterval(fn, periodMs) {
    const t = setInterval(fn, periodMs);
    t.unref();
    return () => clearInterval(t);
  },
};

interface ManualTimer {
  readonly id: number;
  dueMs: number;
  readonly periodMs: number;
  readonly fn: () => void;
}

/** ManualClock is the in-memory twin: time moves only when a test calls `advance`. */
export class ManualClock implements Clock {
  #nowMs: number;
  #nextId = 1;
  #timers = new Map<number, ManualTimer>();

  constructor(startMs = 1_000_000) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  setTimeout(fn: () => void, delayMs: number): () => void {
    return this.#add(fn, delayMs, 0);
  }

  setInterval(fn: () => void, periodMs: number): () => void {
    return this.#add(fn, periodMs, Math.max(1, periodMs));
  }

  /** advance moves time forward by `ms`, firing due timers in due order (synchronously). */
  advance(ms: number): void {
    const target = this.#nowMs + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers.values()) {
        if (t.dueMs <= target && (next === undefined || t.dueMs < next.dueMs)) next = t;
      }
      if (next === undefined) break;
      this.#nowMs = Math.max(this.#nowMs, next.dueMs);
      if (next.periodMs > 0) next.dueMs += next.periodMs;
      else this.#timers.delete(next.id);
      next.fn();
    }
    this.#nowMs = target;
  }

  #add(fn: () => void, delayMs: number, periodMs: number): () => void {
    const id = this.#nextId++;
    this.#timers.set(id, { id, dueMs: this.#nowMs + Math.max(0, delayMs), periodMs, fn });
    return () => {
      this.#timers.delete(id);
    };
  }
}
