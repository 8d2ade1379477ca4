// The history model: what clients did, as seen from the clients, and its JSON file format.
//
// A history is a list of operations on single keys. Each operation has an invocation time and,
// when the client saw an answer, a completion time, both in milliseconds on ONE clock shared by all
// clients of the run (the runner uses `performance.timeOrigin + performance.now()`, so fractions of a
// millisecond are meaningful). The checker relies on real-time order only: if A completed before B
// was invoked, A precedes B.
//
// Outcomes:
// - `ok`: the client got a definite answer; `output` holds it.
// - `failed`: the client got a definite error that guarantees the operation had no effect (a
//   validation error, a rejection before anything was proposed). The checker ignores it.
// - `unknown`: the write timed out, the connection broke, or the server answered with an error that
//   does not say whether the write was applied. It may have taken effect at any instant after its
//   invocation, or never. `completeMs` is absent or ignored: the checker treats it as +infinity, as
//   porcupine does for Jepsen's `:info` operations.
//
// Values are strings. Workloads should write unique values (client id + sequence number) so a read
// names the write it observed; the checker is correct without that but explains less.

/** Operation kinds over a single-key register. */
export type OpKind = 'put' | 'putTtl' | 'get' | 'cas' | 'delete';

export type Outcome = 'ok' | 'failed' | 'unknown';

/** Inputs per kind. `null` means "absent" (no value). */
export interface OpInputs {
  /** Unconditional write. */
  put: { value: string };
  /** Write with a time to live: the value exists until the leader's clock reaches expireAtMs = propose time + ttlMs. */
  putTtl: { value: string; ttlMs: number };
  /** Linearizable read. */
  get: Record<string, never>;
  /** Compare-and-swap on the value: swap to `value` iff the current value equals `expected` (null: absent). */
  cas: { expected: string | null; value: string };
  /** Delete the key. */
  delete: Record<string, never>;
}

/** Outputs per kind, present when the outcome is `ok`. */
export interface OpOutputs {
  put: Record<string, never>;
  putTtl: Record<string, never>;
  get: { value: string | null };
  cas: { swapped: boolean };
  delete: { existed: boolean };
}

interface OperationBase<K extends OpKind> {
  /** Unique within the history; also the index of the operation in `History.ops` once recorded. */
  id: number;
  /** The logical client (one outstanding operation at a time per client). */
  clientId: number;
  key: string;
  kind: K;
  input: OpInputs[K];
  invokeMs: number;
  /** Absent while pending, and for `unknown` outcomes whose client gave up without an answer. */
  completeMs?: number;
  outcome: Outcome;
  /** Present iff outcome is `ok`. */
  output?: OpOutputs[K];
  /** The error text for `failed`/`unknown` outcomes, for humans. */
  error?: string;
}

export type PutOp = OperationBase<'put'>;
export type PutTtlOp = OperationBase<'putTtl'>;
export type GetOp = OperationBase<'get'>;
export type CasOp = OperationBase<'cas'>;
export type DeleteOp = OperationBase<'delete'>;
export type Operation = PutOp | PutTtlOp | GetOp | CasOp | DeleteOp;

export const HISTORY_FORMAT_VERSION = 1;

/** The JSON file: `{ "format": "omnidict-history", "version": 1, "meta": {...}, "ops": [...] }`. */
export interface History {
  format: 'omnidict-history';
  version: number;
  /** Free-form run description: seed, duration, cluster layout, nemesis schedule, ... */
  meta: Record<string, unknown>;
  ops: Operation[];
}

/** A handle returned by `HistoryRecorder.invoke`, passed back on completion. */
export interface PendingOp<K extends OpKind = OpKind> {
  readonly id: number;
  readonly kind: K;
}

/**
 * HistoryRecorder collects operations as clients run them. Clients call `invoke` immediately
 * BEFORE sending a request and one of `ok` / `failed` / `unknown` immediately AFTER the answer (or
 * the error) arrives, so the recorded window contains the real one. Operations never completed
 * (the run ended first) are recorded as `unknown` by `history()`.
 */
export class HistoryRecorder {
  private readonly ops: Operation[] = [];
  private readonly now: () => number;

  constructor(now: () => number = defaultNowMs) {
    this.now = now;
  }

  invoke<K extends OpKind>(clientId: number, key: string, kind: K, input: OpInputs[K]): PendingOp<K> {
    const id = this.ops.length;
    this.ops.push({ id, clientId, key, kind, input, invokeMs: this.now(), outcome: 'unknown' } as Operation);
    return { id, kind };
  }

  ok<K extends OpKind>(pending: PendingOp<K>, output: OpOutputs[K]): void {
    const op = this.pendingOp(pending);
    op.completeMs = this.now();
    op.outcome = 'ok';
    op.output = output as never;
  }

  /** A definite error: the operation certainly had no effect. */
  failed(pending: PendingOp, error: string): void {
    const op = this.pendingOp(pending);
    op.completeMs = this.now();
    op.outcome = 'failed';
    op.error = error;
  }

  /** An indefinite error: the operation may or may not have taken effect. */
  unknown(pending: PendingOp, error: string): void {
    const op = this.pendingOp(pending);
    op.completeMs = this.now();
    op.outcome = 'unknown';
    op.error = error;
  }

  get size(): number {
    return this.ops.length;
  }

  /** A snapshot of the history so far; pending operations appear as `unknown` without `completeMs`. */
  history(meta: Record<string, unknown> = {}): History {
    return {
      format: 'omnidict-history',
      version: HISTORY_FORMAT_VERSION,
      meta,
      ops: this.ops.map((op) => ({ ...op })),
    };
  }

  private pendingOp(pending: PendingOp): Operation {
    const op = this.ops[pending.id];
    if (op === undefined || op.completeMs !== undefined || op.outcome !== 'unknown' || op.error !== undefined) {
      throw new Error(`history: operation ${pending.id} is not pending`);
    }
    return op;
  }
}

function defaultNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The completion time used for ordering: +infinity for unknown outcomes (may take effect any time later). */
export function effectiveCompleteMs(op: Operation): number {
  return op.outcome === 'unknown' || op.completeMs === undefined ? Number.POSITIVE_INFINITY : op.completeMs;
}

/** Serializes a history, one operation per line so diffs and `grep` stay useful. */
export function serializeHistory(history: History): string {
  const ops = history.ops.map((op) => `    ${JSON.stringify(op)}`).join(',\n');
  return (
    `{\n  "format": "omnidict-history",\n  "version": ${history.version},\n` +
    `  "meta": ${JSON.stringify(history.meta)},\n  "ops": [\n${ops}\n  ]\n}\n`
  );
}

const KINDS: ReadonlySet<string> = new Set<OpKind>(['put', 'putTtl', 'get', 'cas', 'delete']);
const OUTCOMES: ReadonlySet<string> = new Set<Outcome>(['ok', 'failed', 'unknown']);

/** Parses and validates a history file's text. Throws an Error naming the first bad operation. */
export function parseHistory(text: string): History {
  const raw = JSON.parse(text) as Partial<History>;
  if (raw.format !== 'omnidict-history') throw new Error('history: not an omnidict-history file');
  if (raw.version !== HISTORY_FORMAT_VERSION) throw new Error(`history: unsupported version ${String(raw.version)}`);
  if (!Array.isArray(raw.ops)) throw new Error('history: ops is not an array');
  raw.ops.forEach((op, index) => {
    const problem = validateOperation(op);
    if (problem !== undefined) throw new Error(`history: op at index ${index}: ${problem}`);
  });
  return { format: 'omnidict-history', version: raw.version, meta: raw.meta ?? {}, ops: raw.ops };
}

function validateOperation(op: Operation): string | undefined {
  if (typeof op !== 'object' || op === null) return 'not an object';
  if (!Number.isInteger(op.id)) return 'id is not an integer';
  if (typeof op.key !== 'string') return 'key is not a string';
  if (!KINDS.has(op.kind)) return `unknown kind ${String(op.kind)}`;
  if (!OUTCOMES.has(op.outcome)) return `unknown outcome ${String(op.outcome)}`;
  if (typeof op.invokeMs !== 'number') return 'invokeMs is not a number';
  if (op.outcome !== 'unknown' && typeof op.completeMs !== 'number') return 'completed op without completeMs';
  if (op.completeMs !== undefined && op.completeMs < op.invokeMs) return 'completeMs before invokeMs';
  if (op.outcome === 'ok' && op.output === undefined) return 'ok op without output';
  const input = op.input as Record<string, unknown>;
  switch (op.kind) {
    case 'put':
      if (typeof input.value !== 'string') return 'put without a string value';
      break;
    case 'putTtl':
      if (typeof input.value !== 'string' || typeof input.ttlMs !== 'number') return 'putTtl needs value and ttlMs';
      break;
    case 'cas':
      if (typeof input.value !== 'string' || (input.expected !== null && typeof input.expected !== 'string')) {
        return 'cas needs expected (string or null) and value';
      }
      break;
    default:
      break;
  }
  return undefined;
}

/** Groups operations by key, preserving order. */
export function partitionByKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (list === undefined) {
      list = [];
      byKey.set(op.key, list);
    }
    list.push(op);
  }
  return byKey;
}

/** One line for humans: `#12 c3 put("a-1") → ok [100.0, 103.2]`, times relative to `originMs`. */
export function describeOperation(op: Operation, originMs = 0): string {
  const complete = op.outcome === 'unknown' ? Number.POSITIVE_INFINITY : (op.completeMs ?? Number.NaN);
  const window = `[${formatMs(op.invokeMs - originMs)}, ${formatMs(complete - originMs)}]`;
  return `#${op.id} c${op.clientId} ${describeCall(op)} ${describeResult(op)} ${window}`;
}

export function describeCall(op: Operation): string {
  switch (op.kind) {
    case 'put':
      return `put(${showValue(op.input.value)})`;
    case 'putTtl':
      return `put(${showValue(op.input.value)}, ttl=${op.input.ttlMs}ms)`;
    case 'get':
      return 'get()';
    case 'cas':
      return `cas(${showValue(op.input.expected)} → ${showValue(op.input.value)})`;
    case 'delete':
      return 'delete()';
  }
}

function describeResult(op: Operation): string {
  if (op.outcome !== 'ok')
    return op.outcome === 'failed' ? 'FAILED (no effect)' : 'UNKNOWN (may or may not have happened)';
  switch (op.kind) {
    case 'get':
      return `→ ${showValue(op.output?.value ?? null)}`;
    case 'cas':
      return op.output?.swapped === true ? '→ swapped' : '→ not swapped';
    case 'delete':
      return op.output?.existed === true ? '→ existed' : '→ was absent';
    default:
      return '→ ok';
  }
}

export function showValue(value: string | null): string {
  return value === null ? 'absent' : JSON.stringify(value);
}

export function formatMs(ms: number): string {
  return Number.isFinite(ms) ? ms.toFixed(1) : '∞';
}
