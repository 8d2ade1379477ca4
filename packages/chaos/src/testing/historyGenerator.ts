import type { History, Operation } from '../history.js';
import { HISTORY_FORMAT_VERSION } from '../history.js';
import { Rng } from '../rng.js';

// Generated histories for testing the checker. A linearizable history is made by running a
// sequential execution — op i takes effect at instant i * spacingMs — and then widening each op's
// window to [t - jitter, t + jitter] with independent random jitters, so that ops overlap and the
// checker has to find the order. TTL expiry is exact in the execution (expireAtMs = t + ttl), which
// lies inside the checker's window [invoke + ttl, complete + ttl]. Failed ops are not executed.
// Unknown writes are executed or not at random. The result is linearizable by construction.
//
// Mutations then break it in ways that are non-linearizable by construction (values are unique, so
// a value that was overwritten can never come back):
// - neverWritten: an ok get returns a value nobody wrote;
// - staleRead: an ok get returns the value of a write w1 although another acknowledged write w2 was
//   invoked after w1 completed and completed before the get was invoked;
// - duplicateCas: a second cas from the same expected value also swaps, invoked after the first
//   one completed (a lost update).

export interface GenerateOptions {
  seed: number;
  ops: number;
  keys: number;
  clients: number;
  /** Distance between consecutive linearization points. */
  spacingMs: number;
  /** Each side of an op's window extends up to this far from its linearization point. */
  maxJitterMs: number;
  /** Fraction of writes that are puts with a TTL, and the TTL range (ms). */
  ttlFraction: number;
  ttlMs: [number, number];
  /** Fractions of ops whose outcome is failed (not executed) and unknown (executed or not). */
  failedFraction: number;
  unknownFraction: number;
}

export const DEFAULT_GENERATE_OPTIONS: GenerateOptions = {
  seed: 1,
  ops: 1000,
  keys: 5,
  clients: 8,
  spacingMs: 1,
  maxJitterMs: 4,
  ttlFraction: 0.1,
  ttlMs: [2, 40],
  failedFraction: 0.02,
  unknownFraction: 0.03,
};

interface SimState {
  value: string | null;
  expireAtMs?: number;
}

export function generateLinearizableHistory(overrides: Partial<GenerateOptions> = {}): History {
  const options: GenerateOptions = { ...DEFAULT_GENERATE_OPTIONS, ...overrides };
  const rng = new Rng(options.seed);
  const state = new Map<string, SimState>();
  const ops: Operation[] = [];
  let sequence = 0;
  // Each client has one operation outstanding at a time, as real clients do, so the number of
  // clients bounds the concurrency (unknown outcomes aside: their windows never close).
  const busyUntilMs = new Array<number>(options.clients).fill(0);
  let t = 1000;
  for (let i = 0; i < options.ops; i++) {
    t += options.spacingMs;
    let free = busyUntilMs.flatMap((busy, client) => (busy < t ? [client] : []));
    if (free.length === 0) {
      t = Math.min(...busyUntilMs) + options.spacingMs;
      free = busyUntilMs.flatMap((busy, client) => (busy < t ? [client] : []));
    }
    const clientId = rng.pick(free);
    const key = `k${rng.int(options.keys)}`;
    // The op takes effect at t, so its window must hold t: invoked after the client's previous op
    // completed (busy < t for a free client), but never after t itself.
    const invokeMs = Math.max(
      t - rng.float() * options.maxJitterMs,
      Math.min(t, busyUntilMs[clientId]! + options.spacingMs / 100),
    );
    const completeMs = t + rng.float() * options.maxJitterMs;
    busyUntilMs[clientId] = completeMs;
    const current = readAt(state.get(key) ?? { value: null }, t);
    const value = `v${clientId}-${sequence++}`;
    const roll = rng.float();
    const outcomeRoll = rng.float();
    const outcome =
      outcomeRoll < options.failedFraction
        ? 'failed'
        : outcomeRoll < options.failedFraction + options.unknownFraction
          ? 'unknown'
          : 'ok';
    const executes = outcome === 'ok' || (outcome === 'unknown' && rng.chance(0.5));
    const base = { id: i, clientId, key, invokeMs, completeMs, outcome } as const;
    let op: Operation;
    if (roll < 0.4) {
      op = { ...base, kind: 'get', input: {}, output: { value: current } };
    } else if (roll < 0.65) {
      if (rng.chance(options.ttlFraction / 0.25)) {
        const ttlMs = rng.between(options.ttlMs[0], options.ttlMs[1]);
        op = { ...base, kind: 'putTtl', input: { value, ttlMs }, output: {} };
        if (executes) state.set(key, { value, expireAtMs: t + ttlMs });
      } else {
        op = { ...base, kind: 'put', input: { value }, output: {} };
        if (executes) state.set(key, { value });
      }
    } else if (roll < 0.9) {
      // Mostly expect the current value (swaps), sometimes a stale or absent one (fails).
      const expected = rng.chance(0.7)
        ? current
        : rng.chance(0.5)
          ? null
          : `v${rng.int(options.clients)}-${rng.int(sequence)}`;
      const swapped = expected === current;
      op = { ...base, kind: 'cas', input: { expected, value }, output: { swapped } };
      if (executes && swapped) state.set(key, { value });
    } else {
      op = { ...base, kind: 'delete', input: {}, output: { existed: current !== null } };
      if (executes) state.set(key, { value: null });
    }
    if (outcome !== 'ok') {
      delete op.output;
      if (outcome === 'unknown' && rng.chance(0.5)) delete op.completeMs;
    }
    ops.push(op);
  }
  return { format: 'omnidict-history', version: HISTORY_FORMAT_VERSION, meta: { generator: options }, ops };
}

function readAt(state: SimState, t: number): string | null {
  if (state.value === null) return null;
  return state.expireAtMs !== undefined && state.expireAtMs <= t ? null : state.value;
}

export type MutationKind = 'neverWritten' | 'staleRead' | 'duplicateCas';

export interface Mutation {
  kind: MutationKind;
  history: History;
  /** The op that was changed or added. */
  opId: number;
  description: string;
}

/** Applies one mutation chosen with `rng`; undefined when the history offers no place for it. */
export function mutateHistory(history: History, kind: MutationKind, rng: Rng): Mutation | undefined {
  const ops = history.ops.map((op) => ({ ...op }) as Operation);
  const gets = ops.filter((op) => op.kind === 'get' && op.outcome === 'ok');
  const withOps = (changed: Operation[], opId: number, description: string): Mutation => ({
    kind,
    history: { ...history, ops: changed },
    opId,
    description,
  });
  switch (kind) {
    case 'neverWritten': {
      if (gets.length === 0) return undefined;
      const get = rng.pick(gets);
      get.output = { value: 'never-written' };
      return withOps(ops, get.id, `get #${get.id} now returns a value nobody wrote`);
    }
    case 'staleRead': {
      const writers = ops.filter(
        (op) =>
          op.outcome === 'ok' &&
          (op.kind === 'put' ||
            op.kind === 'putTtl' ||
            op.kind === 'delete' ||
            (op.kind === 'cas' && op.output?.swapped === true)),
      );
      for (const get of rng.chance(0.5) ? gets : [...gets].reverse()) {
        const before = writers.filter((w) => w.key === get.key && w.completeMs! < get.invokeMs);
        for (const w2 of [...before].reverse()) {
          const w1 = before.find(
            (w) =>
              w.kind !== 'delete' && w.completeMs! < w2.invokeMs && (w.input as { value: string }).value !== undefined,
          );
          if (w1 === undefined) continue;
          const stale = (w1.input as { value: string }).value;
          if ((get.output as { value: string | null }).value === stale) continue;
          get.output = { value: stale };
          return withOps(ops, get.id, `get #${get.id} now returns ${stale} of #${w1.id}, overwritten by #${w2.id}`);
        }
      }
      return undefined;
    }
    case 'duplicateCas': {
      // Expecting a value (never absent): values are unique, so once swapped away it cannot return.
      const swaps = ops.filter(
        (op) => op.kind === 'cas' && op.outcome === 'ok' && op.output?.swapped === true && op.input.expected !== null,
      );
      if (swaps.length === 0) return undefined;
      const first = rng.pick(swaps);
      if (first.kind !== 'cas') return undefined;
      const id = ops.length;
      ops.push({
        id,
        clientId: first.clientId + 1000,
        key: first.key,
        kind: 'cas',
        input: { expected: first.input.expected, value: `dup-${id}` },
        invokeMs: first.completeMs! + 0.01,
        completeMs: first.completeMs! + 0.02,
        outcome: 'ok',
        output: { swapped: true },
      });
      return withOps(ops, id, `cas #${id} swaps from ${String(first.input.expected)} again after #${first.id} did`);
    }
  }
}
