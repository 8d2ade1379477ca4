import type { History, Operation } from '../history.js';
import { describeOperation, effectiveCompleteMs, partitionByKey, showValue } from '../history.js';
import { DEFAULT_TTL_SLACK_MS } from './registerModel.js';

// The lost-acknowledged-write check: after the run, with faults healed, the runner reads every key
// once more. That final read must show the effect of some write that could be the last one:
//
//   a writer is an op that sets the register: put, putTtl, a cas that swapped, a delete (sets absent);
//   unknown-outcome puts, putTtls, cases and deletes count as writers that may have happened;
//   a writer w is a candidate last write unless some acknowledged (ok) writer was invoked after w
//   completed (then that one certainly came later); unknown writers never complete, so they stay
//   candidates;
//   the final read is explained if a candidate wrote the value it returned (a TTL'd value only if it
//   could still be alive: its latest expiry is after the read's invocation), or, for an absent read,
//   if a candidate is a delete, a TTL'd write that could have expired by the read's completion, or
//   no writer was ever acknowledged (the key may never have been written).
//
// A final read left unexplained means an acknowledged write was lost (or an unacknowledged one was
// resurrected). The linearizability check would also reject such a history; this check names the
// loss directly, and still works when the full search runs out of time.

export interface LostWrite {
  key: string;
  finalRead: Operation;
  /** The acknowledged writer that completed last, which the final read should reflect (or a later one). */
  lastAcknowledged: Operation | undefined;
  /** Writers that could have been last. */
  candidates: Operation[];
  text: string;
}

export interface LostWriteReport {
  /** Keys whose final read was checked. */
  checkedKeys: number;
  /** Keys without a final read (no ok get invoked after every acknowledged op on the key completed). */
  keysWithoutFinalRead: string[];
  lost: LostWrite[];
}

export function checkLostWrites(
  history: History | readonly Operation[],
  options: { ttlSlackMs?: number } = {},
): LostWriteReport {
  const slack = options.ttlSlackMs ?? DEFAULT_TTL_SLACK_MS;
  const ops = Array.isArray(history) ? (history as readonly Operation[]) : (history as History).ops;
  const report: LostWriteReport = { checkedKeys: 0, keysWithoutFinalRead: [], lost: [] };
  for (const [key, keyOps] of partitionByKey(ops)) {
    const finalRead = findFinalRead(keyOps);
    if (finalRead === undefined) {
      report.keysWithoutFinalRead.push(key);
      continue;
    }
    report.checkedKeys++;
    const writers = keyOps.filter((op) => op !== finalRead && isWriter(op));
    const acknowledged = writers.filter((op) => op.outcome === 'ok');
    const candidates = writers.filter(
      (w) => !acknowledged.some((later) => later !== w && later.invokeMs > effectiveCompleteMs(w)),
    );
    const seen = finalRead.kind === 'get' ? (finalRead.output?.value ?? null) : null;
    const explained =
      seen === null
        ? acknowledged.length === 0 ||
          candidates.some(
            (w) =>
              w.kind === 'delete' ||
              (w.kind === 'putTtl' && w.invokeMs + w.input.ttlMs - slack <= effectiveCompleteMs(finalRead)),
          )
        : candidates.some(
            (w) =>
              writtenValue(w) === seen &&
              (w.kind !== 'putTtl' || effectiveCompleteMs(w) + w.input.ttlMs + slack > finalRead.invokeMs),
          );
    if (explained) continue;
    const lastAcknowledged = acknowledged.reduce<Operation | undefined>(
      (best, op) => (best === undefined || op.completeMs! > best.completeMs! ? op : best),
      undefined,
    );
    const originMs = Math.min(...keyOps.map((op) => op.invokeMs));
    const text = [
      `key ${JSON.stringify(key)}: lost write — final read returned ${showValue(seen)}`,
      `  final read: ${describeOperation(finalRead, originMs)}`,
      `  last acknowledged write: ${lastAcknowledged === undefined ? '(none)' : describeOperation(lastAcknowledged, originMs)}`,
      '  writes that could have been last:',
      ...candidates.map((op) => `    ${describeOperation(op, originMs)}`),
    ].join('\n');
    report.lost.push({ key, finalRead, lastAcknowledged, candidates, text });
  }
  return report;
}

/** The last ok get on the key, if it was invoked after every other definite op on the key completed. */
function findFinalRead(keyOps: readonly Operation[]): Operation | undefined {
  let last: Operation | undefined;
  for (const op of keyOps) {
    if (op.kind === 'get' && op.outcome === 'ok' && (last === undefined || op.invokeMs > last.invokeMs)) last = op;
  }
  if (last === undefined) return undefined;
  const final = last;
  const quiet = keyOps.every(
    (op) => op === final || op.outcome === 'unknown' || (op.completeMs ?? Number.POSITIVE_INFINITY) < final.invokeMs,
  );
  return quiet ? final : undefined;
}

function isWriter(op: Operation): boolean {
  if (op.outcome === 'failed' || op.kind === 'get') return false;
  if (op.outcome === 'unknown') return true;
  return op.kind !== 'cas' || op.output?.swapped === true;
}

function writtenValue(op: Operation): string | null {
  return op.kind === 'put' || op.kind === 'putTtl' || op.kind === 'cas' ? op.input.value : null;
}
