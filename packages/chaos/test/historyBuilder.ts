import type { Operation, Outcome } from '../src/history.js';

// A small DSL for hand-written histories: times are [invokeMs, completeMs]; `null` completion means
// the client never heard back (outcome unknown).

type Window = [number, number | null];

export class HistoryBuilder {
  readonly ops: Operation[] = [];
  private key = 'x';

  onKey(key: string): this {
    this.key = key;
    return this;
  }

  put(clientId: number, value: string, window: Window, outcome: Outcome = 'ok'): this {
    return this.add({ clientId, kind: 'put', input: { value }, output: {} }, window, outcome);
  }

  putTtl(clientId: number, value: string, ttlMs: number, window: Window, outcome: Outcome = 'ok'): this {
    return this.add({ clientId, kind: 'putTtl', input: { value, ttlMs }, output: {} }, window, outcome);
  }

  get(clientId: number, value: string | null, window: Window, outcome: Outcome = 'ok'): this {
    return this.add({ clientId, kind: 'get', input: {}, output: { value } }, window, outcome);
  }

  cas(
    clientId: number,
    expected: string | null,
    value: string,
    swapped: boolean,
    window: Window,
    outcome: Outcome = 'ok',
  ): this {
    return this.add({ clientId, kind: 'cas', input: { expected, value }, output: { swapped } }, window, outcome);
  }

  del(clientId: number, existed: boolean, window: Window, outcome: Outcome = 'ok'): this {
    return this.add({ clientId, kind: 'delete', input: {}, output: { existed } }, window, outcome);
  }

  private add(
    partial: Pick<Operation, 'clientId' | 'kind' | 'input' | 'output'>,
    [invokeMs, completeMs]: Window,
    outcome: Outcome,
  ): this {
    const resolved: Outcome = completeMs === null ? 'unknown' : outcome;
    const op = { id: this.ops.length, key: this.key, invokeMs, outcome: resolved, ...partial } as Operation;
    if (completeMs !== null) op.completeMs = completeMs;
    if (resolved !== 'ok') delete op.output;
    this.ops.push(op);
    return this;
  }
}

export function history(): HistoryBuilder {
  return new HistoryBuilder();
}
