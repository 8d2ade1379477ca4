import type { Operation } from '../history.js';
import { describeCall, describeOperation, effectiveCompleteMs, showValue } from '../history.js';

// Turning a failed search into something a person can act on.
//
// The search reports its deepest point: the longest linearizable prefix it found, the op whose
// completion it could not get past ("blocked"), and the register states possible there. The
// explanation names the blocked op, says what the register could hold instead, and shows a window of
// context: every op overlapping the interval from the last write that completed before the blocked
// op was invoked up to the blocked op's completion. That window is where the contradiction lives
// (the blocked op must observe a state produced inside it); it is a heuristic view, not a proof.

/** What the search saw at the deepest point it reached; the raw material of an explanation. */
export interface DeepestPoint {
  /** Ops linearized, in order, on the path that reached the maximum depth. */
  linearized: Operation[];
  /** The op whose return was reached without a way to linearize it. */
  blocked: Operation;
  /** Descriptions of the model states seen at that depth (deduplicated, capped). */
  states: string[];
}

export interface Explanation {
  key: string;
  /** The op whose result no linearization explains. */
  blocked: Operation;
  /** Ops linearized before getting stuck (the longest linearizable prefix found). */
  prefixLength: number;
  /** What the register could hold when the blocked op had to take effect. */
  possibleStates: string[];
  /** One sentence: why. */
  reason: string;
  /** The window of ops around the contradiction, sorted by invocation. */
  window: Operation[];
  /** Multi-line text for humans (includes all of the above). */
  text: string;
}

const MAX_WINDOW = 40;

export function explainViolation(key: string, ops: readonly Operation[], deepest: DeepestPoint): Explanation {
  const blocked = deepest.blocked;
  const blockedEnd = effectiveCompleteMs(blocked);
  const lastWriteBefore = ops
    .filter((op) => op.outcome === 'ok' && op.kind !== 'get' && effectiveCompleteMs(op) < blocked.invokeMs)
    .reduce<Operation | undefined>(
      (best, op) => (best === undefined || op.completeMs! > best.completeMs! ? op : best),
      undefined,
    );
  const windowStart = lastWriteBefore?.invokeMs ?? Number.NEGATIVE_INFINITY;
  let window = ops
    .filter((op) => op.invokeMs <= blockedEnd && effectiveCompleteMs(op) >= windowStart)
    .sort((a, b) => a.invokeMs - b.invokeMs || a.id - b.id);
  const truncated = window.length > MAX_WINDOW;
  if (truncated) {
    // Keep the ops nearest the blocked one.
    const at = window.indexOf(blocked);
    const from = Math.max(0, Math.min(at - MAX_WINDOW / 2, window.length - MAX_WINDOW));
    window = window.slice(from, from + MAX_WINDOW);
  }
  const reason = reasonFor(blocked, ops, deepest);
  const originMs = Math.min(...ops.map((op) => op.invokeMs));
  const lines = [
    `key ${JSON.stringify(key)}: not linearizable`,
    `  ${reason}`,
    `  blocked op: ${describeOperation(blocked, originMs)}`,
    `  longest linearizable prefix: ${deepest.linearized.length} of ${ops.length} ops` +
      (deepest.linearized.length > 0 ? `, ending ${tail(deepest.linearized)}` : ''),
    `  register could hold: ${deepest.states.join(' | ') || '(nothing)'}`,
    `  window (times in ms from the key's first op${truncated ? `; ${MAX_WINDOW} ops nearest the blocked one` : ''}):`,
    ...window.map((op) => `    ${op === blocked ? '>' : ' '} ${describeOperation(op, originMs)}`),
  ];
  return {
    key,
    blocked,
    prefixLength: deepest.linearized.length,
    possibleStates: deepest.states,
    reason,
    window,
    text: lines.join('\n'),
  };
}

function tail(linearized: readonly Operation[]): string {
  return linearized
    .slice(-3)
    .map((op) => `#${op.id} ${describeCall(op)}`)
    .join(', ');
}

function reasonFor(blocked: Operation, ops: readonly Operation[], deepest: DeepestPoint): string {
  const could = deepest.states.join(' or ') || 'nothing consistent';
  if (blocked.kind === 'get' && blocked.output !== undefined) {
    const seen = blocked.output.value;
    if (seen !== null && !ops.some((op) => writtenValue(op) === seen)) {
      return `get #${blocked.id} returned ${showValue(seen)}, a value no operation on this key ever wrote`;
    }
    return (
      `get #${blocked.id} returned ${showValue(seen)}, but in every order consistent with real time ` +
      `the register held ${could} while it ran (stale or lost read)`
    );
  }
  if (blocked.kind === 'cas' && blocked.output !== undefined) {
    const what = blocked.output.swapped ? 'swapped' : 'did not swap';
    return (
      `cas #${blocked.id} expecting ${showValue(blocked.input.expected)} ${what}, but the register held ${could} ` +
      'while it ran (a lost update if two CAS from the same value both swapped)'
    );
  }
  if (blocked.kind === 'delete' && blocked.output !== undefined) {
    const what = blocked.output.existed ? 'found the key' : 'found the key absent';
    return `delete #${blocked.id} ${what}, but the register held ${could} while it ran`;
  }
  return `no order of the operations consistent with real time explains ${describeCall(blocked)} #${blocked.id}`;
}

function writtenValue(op: Operation): string | undefined {
  return op.kind === 'put' || op.kind === 'putTtl' || op.kind === 'cas' ? op.input.value : undefined;
}
