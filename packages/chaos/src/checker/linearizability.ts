import type { History, Operation } from '../history.js';
import { effectiveCompleteMs, partitionByKey } from '../history.js';
import type { DeepestPoint, Explanation } from './explain.js';
import { explainViolation } from './explain.js';
import type { Model, RegisterModelOptions, RegisterState } from './registerModel.js';
import { observedValues, RegisterModel } from './registerModel.js';

// Linearizability checking by the Wing–Gong search with Lowe's memoization, as porcupine does it.
//
// Per key (P-compositionality: a history is linearizable iff each key's sub-history is), the
// operations become call and return events sorted by time (calls before returns at equal times, so
// touching windows count as concurrent). The search walks a doubly linked list of events: at a call
// it tries to linearize that op now (the model must accept its result); success lifts the call and
// its return out of the list and restarts from the head. Reaching a return means the op owning it
// must already have been linearized: backtrack to the last choice. A cache of (set of linearized
// ops, model state) prunes configurations already explored.
//
// Operations the search receives: `ok` ops, and `unknown` ops that may write (their return sits at
// +∞, so they can be linearized anywhere after their invocation, or never: the search succeeds as
// soon as every `ok` op is linearized). `failed` ops and unknown reads have no effect and are dropped.
//
// States are sets (the power-set construction porcupine uses for nondeterministic models): the step
// of a set is the union of the steps of its members.

export type Verdict = 'ok' | 'violation' | 'unknown';

export interface KeyResult {
  key: string;
  verdict: Verdict;
  /** Operations considered (after dropping failed ops and unknown reads). */
  opCount: number;
  /** Search steps taken; a measure of the work done. */
  steps: number;
  elapsedMs: number;
  /** For `violation`: the explanation. For `unknown`: why the search stopped. */
  explanation?: Explanation;
  reason?: string;
}

export interface CheckResult {
  /** `violation` if any key has one; otherwise `unknown` if any key ran out of time; else `ok`. */
  verdict: Verdict;
  keys: KeyResult[];
  elapsedMs: number;
}

export interface CheckOptions extends Partial<RegisterModelOptions> {
  /** Search time budget per key; when exceeded the key's verdict is `unknown`. Default 10 s. */
  timeBudgetMsPerKey?: number;
  /** Clock for the budget (injectable for tests). */
  nowMs?: () => number;
}

/** Checks a whole history for linearizability against the register model, key by key. */
export function checkLinearizability(history: History | readonly Operation[], options: CheckOptions = {}): CheckResult {
  const nowMs = options.nowMs ?? (() => performance.now());
  const started = nowMs();
  const ops = Array.isArray(history) ? (history as readonly Operation[]) : (history as History).ops;
  const keys: KeyResult[] = [];
  for (const [key, keyOps] of partitionByKey(ops)) {
    const model = new RegisterModel({
      ...(options.ttlSlackMs === undefined ? {} : { ttlSlackMs: options.ttlSlackMs }),
      observedValues: observedValues(keyOps),
    });
    keys.push(checkKey(key, keyOps, model, options.timeBudgetMsPerKey ?? 10_000, nowMs));
  }
  keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const verdict: Verdict = keys.some((k) => k.verdict === 'violation')
    ? 'violation'
    : keys.some((k) => k.verdict === 'unknown')
      ? 'unknown'
      : 'ok';
  return { verdict, keys, elapsedMs: nowMs() - started };
}

/** The operations the search must consider: ok ops, and unknown ops that may have written. */
export function relevantOps(ops: readonly Operation[]): Operation[] {
  return ops.filter((op) => op.outcome === 'ok' || (op.outcome === 'unknown' && op.kind !== 'get'));
}

export interface SearchOutcome<S> {
  verdict: Verdict;
  steps: number;
  /** For `ok`: ops in linearization order (definite ops and the unknown ops that were placed). */
  linearization?: Operation[];
  deepest?: DeepestPoint;
  finalStates?: S[];
}

const NIL = -1;

/**
 * searchLinearization decides whether `ops` (one key; ok and possibly-effective unknown ops only)
 * can be linearized from the model's initial state. Stops with `unknown` once `deadlineMs` passes.
 */
export function searchLinearization<S>(
  ops: readonly Operation[],
  model: Model<S>,
  deadlineMs: number,
  nowMs: () => number,
): SearchOutcome<S> {
  const n = ops.length;
  const definiteCount = ops.reduce((count, op) => count + (op.outcome === 'ok' ? 1 : 0), 0);
  if (definiteCount === 0) return { verdict: 'ok', steps: 0, linearization: [] };

  // Events: node 2i is op i's call, 2i+1 its return; node 2n is the list head.
  const events: { node: number; timeMs: number; isCall: boolean }[] = [];
  ops.forEach((op, i) => {
    events.push({ node: 2 * i, timeMs: op.invokeMs, isCall: true });
    events.push({ node: 2 * i + 1, timeMs: effectiveCompleteMs(op), isCall: false });
  });
  events.sort((a, b) => a.timeMs - b.timeMs || (a.isCall === b.isCall ? a.node - b.node : a.isCall ? -1 : 1));
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(NIL);
  const prev = new Int32Array(2 * n + 1).fill(NIL);
  let last = head;
  for (const event of events) {
    next[last] = event.node;
    prev[event.node] = last;
    last = event.node;
  }

  const lift = (call: number): void => {
    const ret = call + 1;
    next[prev[call]!] = next[call]!;
    prev[next[call]!] = prev[call]!; // a call is always followed by at least its return
    next[prev[ret]!] = next[ret]!;
    if (next[ret] !== NIL) prev[next[ret]!] = prev[ret]!;
  };
  const unlift = (call: number): void => {
    const ret = call + 1;
    next[prev[ret]!] = ret;
    if (next[ret] !== NIL) prev[next[ret]!] = ret;
    next[prev[call]!] = call;
    prev[next[call]!] = call;
  };

  // The cache holds explored configurations (linearized set, state set). Definite and unknown ops
  // are kept apart: a configuration is pruned when one with the SAME definite ops, the same states
  // and a SUBSET of its unknown ops was already reached. That is sound because unknown ops never
  // need to be linearized and their returns (at +∞) block nothing, so whatever completes the bigger
  // configuration also completes the smaller one. Definite-op sets are hashed with Zobrist words.
  const zobrist = new Uint32Array(2 * n);
  let seed = 0x9e3779b9;
  for (let i = 0; i < zobrist.length; i++) {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    zobrist[i] = (t ^ (t >>> 14)) >>> 0;
  }
  const words = Math.ceil(n / 32);
  const definite = new Uint32Array(words);
  const unknown = new Uint32Array(words);
  const isDefinite = ops.map((op) => op.outcome === 'ok');
  // A blind write's effect does not depend on the state. An unknown op directly followed by an
  // unknown blind write could just as well never have happened (the blind write hides it), so the
  // search never places an unknown blind write right after another unknown op: that removes the
  // exponential number of orders of pending unknown writes without losing any linearization.
  const blind = ops.map((op) => op.kind === 'put' || op.kind === 'putTtl' || op.kind === 'delete');
  let hashA = 0;
  let hashB = 0;
  // Unknown ops of one symmetry class are interchangeable: only how many of them were placed
  // matters. A configuration that placed no more of each class (and a subset of the other unknown
  // ops) subsumes one that placed more, since any completion of the latter can use the former's
  // unplaced class members (all already invoked) in their stead.
  const classIds = new Map<string, number>();
  const symmetry = ops.map((op) => {
    const name = op.outcome === 'ok' ? undefined : model.symmetryClass?.(op);
    if (name === undefined) return undefined;
    if (!classIds.has(name)) classIds.set(name, classIds.size);
    return classIds.get(name);
  });
  const placed = new Int32Array(classIds.size);
  const cache = new Map<string, { definite: Uint32Array; unknown: Uint32Array; placed: Int32Array }[]>();
  const stateSetKey = (states: S[]): string => {
    if (states.length === 1) return model.key(states[0]!);
    return states
      .map((s) => model.key(s))
      .sort()
      .join('|');
  };
  const step = (states: S[], op: Operation): S[] => {
    if (states.length === 1) return model.step(states[0]!, op);
    const seen = new Map<string, S>();
    for (const state of states) {
      for (const nextState of model.step(state, op)) seen.set(model.key(nextState), nextState);
    }
    return [...seen.values()];
  };

  interface Frame {
    call: number;
    states: S[];
  }
  const calls: Frame[] = [];
  const topIsUnknown = (): boolean => {
    const top = calls[calls.length - 1];
    return top !== undefined && !isDefinite[top.call / 2];
  };
  let states: S[] = [model.init()];
  let linearizedDefinite = 0;
  // Candidates at a node are the calls before the first return in the list. Pass 1 tries the
  // definite ones, pass 2 the unknown ones: placing unknown ops lazily keeps their sets small, so
  // the subset pruning above bites.
  let entry = next[head]!;
  let unknownPass = false;
  let steps = 0;
  let deepest: DeepestPoint | undefined;
  let deepestDepth = -1;
  const deepestStates = new Set<string>();

  while (true) {
    steps++;
    if ((steps & 0xfff) === 0 && nowMs() > deadlineMs) return { verdict: 'unknown', steps };
    if (entry === NIL) {
      // Only reachable if every return was passed, which cannot happen before all ok ops are placed.
      break;
    }
    if (entry % 2 === 0) {
      const opIndex = entry / 2;
      if (isDefinite[opIndex] === unknownPass || (unknownPass && blind[opIndex] && topIsUnknown())) {
        entry = next[entry]!;
        continue;
      }
      const op = ops[opIndex]!;
      const nextStates = step(states, op);
      if (nextStates.length > 0) {
        const word = opIndex >>> 5;
        const bit = 1 << (opIndex & 31);
        const symmetryClass = symmetry[opIndex];
        const bits = unknownPass ? unknown : definite;
        if (symmetryClass === undefined) bits[word]! |= bit;
        else placed[symmetryClass]!++;
        const a = unknownPass ? hashA : hashA ^ zobrist[2 * opIndex]!;
        const b = unknownPass ? hashB : hashB ^ zobrist[2 * opIndex + 1]!;
        const cacheKey = `${a}:${b}:${stateSetKey(nextStates)}`;
        let bucket = cache.get(cacheKey);
        const seen =
          bucket?.some(
            (c) => equalBits(c.definite, definite) && subsetBits(c.unknown, unknown) && atMost(c.placed, placed),
          ) ?? false;
        if (!seen) {
          if (bucket === undefined) {
            bucket = [];
            cache.set(cacheKey, bucket);
          }
          bucket.push({ definite: definite.slice(), unknown: unknown.slice(), placed: placed.slice() });
          calls.push({ call: entry, states });
          states = nextStates;
          hashA = a;
          hashB = b;
          if (!unknownPass) linearizedDefinite++;
          lift(entry);
          if (linearizedDefinite === definiteCount) {
            return { verdict: 'ok', steps, linearization: calls.map((f) => ops[f.call / 2]!), finalStates: states };
          }
          entry = next[head]!;
          unknownPass = false;
          continue;
        }
        if (symmetryClass === undefined) bits[word]! &= ~bit;
        else placed[symmetryClass]!--;
      }
      entry = next[entry]!;
      continue;
    }
    if (!unknownPass) {
      unknownPass = true;
      entry = next[head]!;
      continue;
    }
    // A return of an op not yet linearized, with every candidate tried: this path is dead.
    if (linearizedDefinite > deepestDepth) {
      deepestDepth = linearizedDefinite;
      deepestStates.clear();
      deepest = {
        linearized: calls.map((f) => ops[f.call / 2]!),
        blocked: ops[(entry - 1) / 2]!,
        states: [],
      };
    }
    if (linearizedDefinite === deepestDepth && deepestStates.size < 8) {
      for (const state of states) deepestStates.add(model.describe(state));
    }
    const frame = calls.pop();
    if (frame === undefined) break;
    const opIndex = frame.call / 2;
    unknownPass = !isDefinite[opIndex];
    if (unknownPass) {
      const symmetryClass = symmetry[opIndex];
      if (symmetryClass === undefined) unknown[opIndex >>> 5]! &= ~(1 << (opIndex & 31));
      else placed[symmetryClass]!--;
    } else {
      definite[opIndex >>> 5]! &= ~(1 << (opIndex & 31));
      hashA ^= zobrist[2 * opIndex]!;
      hashB ^= zobrist[2 * opIndex + 1]!;
      linearizedDefinite--;
    }
    states = frame.states;
    unlift(frame.call);
    entry = next[frame.call]!;
  }
  if (deepest !== undefined) deepest.states = [...deepestStates];
  return deepest === undefined ? { verdict: 'violation', steps } : { verdict: 'violation', steps, deepest };
}

function equalBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when a[i] <= b[i] for every i. */
function atMost(a: Int32Array, b: Int32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i]! > b[i]!) return false;
  return true;
}

/** True when every bit of `a` is set in `b`. */
function subsetBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i]! & ~b[i]!) !== 0) return false;
  return true;
}

function checkKey(
  key: string,
  keyOps: readonly Operation[],
  model: Model<RegisterState>,
  budgetMs: number,
  nowMs: () => number,
): KeyResult {
  const started = nowMs();
  const ops = relevantOps(keyOps);
  const outcome = searchLinearization(ops, model, started + budgetMs, nowMs);
  const result: KeyResult = {
    key,
    verdict: outcome.verdict,
    opCount: ops.length,
    steps: outcome.steps,
    elapsedMs: nowMs() - started,
  };
  if (outcome.verdict === 'unknown') {
    result.reason = `search exceeded its budget of ${budgetMs} ms after ${outcome.steps} steps over ${ops.length} ops`;
  } else if (outcome.verdict === 'violation' && outcome.deepest !== undefined) {
    result.explanation = explainViolation(key, ops, outcome.deepest);
  }
  return result;
}
