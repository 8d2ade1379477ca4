import type { Operation } from '../history.js';
import { effectiveCompleteMs, formatMs, showValue } from '../history.js';

// The sequential specification the checker linearizes against: one register per key, holding a
// string or nothing, with put / put-with-TTL / get / compare-and-swap / delete.
//
// TTL model. A put with ttl T is applied by the leader at some instant P inside the client's window
// [invoke, complete]; the leader sets expireAtMs = P + T and every read treats `expireAtMs <= now`
// (the serving leader's clock) as absent. Client and server clocks agree only up to `ttlSlackMs`, so
// the checker knows only that the expiry instant E lies in
//     [invoke + T - slack, complete + T + slack]      (complete = +∞ for an unknown outcome)
// and that the value is present strictly before E and absent from E on. An op at point p in its
// window [invoke, complete] can observe:
// - the value present, if some p < E is possible: hi > invoke;
// - the key absent (expired), if some E ≤ p is possible: lo ≤ complete; from then on the register is
//   absent for good (every later op in the linearization has a later point).
// Observing the value present would also prove E > invoke, but no later op in a real-time-respecting
// order can complete before that invoke, so the bound could never reject anything and is not kept
// (keeping it would only split memoized states).
// The model does not track the linearization points themselves (only the order), so it may accept a
// few histories whose TTL observations are consistent pairwise but not jointly; it never rejects a
// linearizable one.
//
// Unknown outcomes: the op may have happened; the model allows every outcome consistent with the
// state (an unknown cas may or may not have swapped, depending on the state where it is placed).
// "Never happened" is handled by the search, which need not linearize unknown ops at all.
//
// Unobserved values. Given the set of values the key's history ever observes (returned by an ok get,
// or named as a cas's expected value), every other written value behaves the same in every op of
// that history: no get can return it, no cas can match it, delete finds it present. The model stores
// them all as one sentinel, so states that differ only in an unread value are memoized once; and
// unknown-outcome puts of unread values (and unknown deletes) are interchangeable, which the search
// exploits through `symmetryClass`.

/** The register's content: `null` when absent; `expiry` only for a value written with a TTL. */
export interface RegisterState {
  readonly value: string | null;
  readonly expiry?: ExpiryWindow;
}

/** Bounds on the expiry instant E (ms, same clock as the history): present before E, absent from E on. */
export interface ExpiryWindow {
  readonly loMs: number;
  readonly hiMs: number;
}

export interface RegisterModelOptions {
  /** Allowed disagreement between the clients' clock and the leaders' clocks, in ms. */
  ttlSlackMs: number;
  /** The values the history observes; when given, all other values collapse into one sentinel. */
  observedValues?: ReadonlySet<string>;
}

/** The sentinel standing for "a value no operation of this history observes". */
export const UNOBSERVED_VALUE = '\u0000unobserved';

/** The values a key's history observes: outputs of ok gets and expected values of cas. */
export function observedValues(ops: readonly Operation[]): Set<string> {
  const seen = new Set<string>();
  for (const op of ops) {
    if (op.kind === 'get' && op.outcome === 'ok' && op.output?.value != null) seen.add(op.output.value);
    if (op.kind === 'cas' && op.input.expected !== null) seen.add(op.input.expected);
  }
  return seen;
}

export const DEFAULT_TTL_SLACK_MS = 25;

/** A sequential model the search can linearize against. `step` returns every possible next state. */
export interface Model<S> {
  init(): S;
  /** The states the op can lead to from `state` given its recorded result; empty when impossible. */
  step(state: S, op: Operation): S[];
  /** A string identifying the state, equal for equal states (used for memoization). */
  key(state: S): string;
  describe(state: S): string;
  /**
   * Optional symmetry: unknown-outcome ops with the same class name have identical effects from
   * every state, so the search may treat them as interchangeable.
   */
  symmetryClass?(op: Operation): string | undefined;
}

const ABSENT: RegisterState = { value: null };

/** One way the register can look at the op's linearization point, with the state it implies. */
interface View {
  value: string | null;
  state: RegisterState;
}

export class RegisterModel implements Model<RegisterState> {
  private readonly ttlSlackMs: number;
  private readonly observed: ReadonlySet<string> | undefined;

  constructor(options: Partial<RegisterModelOptions> = {}) {
    this.ttlSlackMs = options.ttlSlackMs ?? DEFAULT_TTL_SLACK_MS;
    this.observed = options.observedValues;
  }

  symmetryClass(op: Operation): string | undefined {
    if (op.outcome !== 'unknown' || this.observed === undefined) return undefined;
    if (op.kind === 'delete') return 'delete';
    if (op.kind === 'put' && !this.observed.has(op.input.value)) return 'put';
    if (op.kind === 'cas' && !this.observed.has(op.input.value)) return `cas ${showValue(op.input.expected)}`;
    return undefined;
  }

  private canonical(value: string): string {
    return this.observed === undefined || this.observed.has(value) ? value : UNOBSERVED_VALUE;
  }

  init(): RegisterState {
    return ABSENT;
  }

  step(state: RegisterState, op: Operation): RegisterState[] {
    const definite = op.outcome === 'ok';
    switch (op.kind) {
      case 'put':
        return [{ value: this.canonical(op.input.value) }];
      case 'putTtl': {
        const ttl = op.input.ttlMs;
        const expiry = {
          loMs: op.invokeMs + ttl - this.ttlSlackMs,
          hiMs: effectiveCompleteMs(op) + ttl + this.ttlSlackMs,
        };
        return [{ value: this.canonical(op.input.value), expiry }];
      }
      case 'get': {
        if (!definite) return [state];
        const seen = op.output?.value ?? null;
        return this.views(state, op)
          .filter((view) => view.value === seen)
          .map((view) => view.state);
      }
      case 'cas': {
        const next: RegisterState[] = [];
        for (const view of this.views(state, op)) {
          const swapped = view.value === op.input.expected;
          if (definite && op.output?.swapped !== swapped) continue;
          next.push(swapped ? { value: this.canonical(op.input.value) } : view.state);
        }
        return next;
      }
      case 'delete': {
        const next: RegisterState[] = [];
        for (const view of this.views(state, op)) {
          if (definite && op.output?.existed !== (view.value !== null)) continue;
          next.push(ABSENT);
        }
        return next.length > 1 ? [ABSENT] : next;
      }
    }
  }

  key(state: RegisterState): string {
    if (state.value === null) return '_';
    const value = JSON.stringify(state.value);
    return state.expiry === undefined ? value : `${value}@${state.expiry.loMs}:${state.expiry.hiMs}`;
  }

  describe(state: RegisterState): string {
    if (state.value === null) return 'absent';
    const value = state.value === UNOBSERVED_VALUE ? 'a value no operation read' : showValue(state.value);
    if (state.expiry === undefined) return value;
    return `${value} (expiring between ${formatMs(state.expiry.loMs)} and ${formatMs(state.expiry.hiMs)})`;
  }

  /** How the register can look at some point inside the op's window. */
  private views(state: RegisterState, op: Operation): View[] {
    const expiry = state.expiry;
    if (state.value === null || expiry === undefined) return [{ value: state.value, state }];
    const views: View[] = [];
    if (expiry.hiMs > op.invokeMs) {
      const loMs = Math.max(expiry.loMs, op.invokeMs);
      views.push({
        value: state.value,
        state: loMs === expiry.loMs ? state : { value: state.value, expiry: { loMs, hiMs: expiry.hiMs } },
      });
    }
    if (expiry.loMs <= effectiveCompleteMs(op)) views.push({ value: null, state: ABSENT });
    return views;
  }
}
