import { checkLinearizability } from '../src/checker/linearizability.js';
import { HistoryRecorder, parseHistory, serializeHistory } from '../src/history.js';

function fakeClock(): () => number {
  let now = 100;
  return () => now++;
}

describe('HistoryRecorder', () => {
  test('records invocation and completion times, outputs and outcomes', () => {
    const recorder = new HistoryRecorder(fakeClock());
    const put = recorder.invoke(1, 'x', 'put', { value: 'a' });
    const get = recorder.invoke(2, 'x', 'get', {});
    recorder.ok(put, {});
    recorder.ok(get, { value: 'a' });
    const cas = recorder.invoke(1, 'x', 'cas', { expected: 'a', value: 'b' });
    recorder.unknown(cas, 'DEADLINE_EXCEEDED');
    const del = recorder.invoke(2, 'x', 'delete', {});
    recorder.failed(del, 'INVALID_ARGUMENT');
    recorder.invoke(3, 'x', 'put', { value: 'c' });
    const { ops } = recorder.history({ seed: 7 });
    expect(ops.map((op) => [op.id, op.invokeMs, op.completeMs, op.outcome])).toEqual([
      [0, 100, 102, 'ok'],
      [1, 101, 103, 'ok'],
      [2, 104, 105, 'unknown'],
      [3, 106, 107, 'failed'],
      [4, 108, undefined, 'unknown'],
    ]);
    expect(ops[1]?.output).toEqual({ value: 'a' });
    expect(ops[2]?.error).toBe('DEADLINE_EXCEEDED');
    expect(checkLinearizability(ops).verdict).toBe('ok');
  });

  test('completing an operation twice is a bug in the caller', () => {
    const recorder = new HistoryRecorder(fakeClock());
    const put = recorder.invoke(1, 'x', 'put', { value: 'a' });
    recorder.ok(put, {});
    expect(() => recorder.unknown(put, 'late')).toThrow('operation 0 is not pending');
  });
});

describe('history file format', () => {
  test('round-trips through JSON, one operation per line', () => {
    const recorder = new HistoryRecorder(fakeClock());
    recorder.ok(recorder.invoke(1, 'x', 'putTtl', { value: 'a', ttlMs: 500 }), {});
    recorder.ok(recorder.invoke(1, 'x', 'get', {}), { value: null });
    const history = recorder.history({ seed: 42 });
    const text = serializeHistory(history);
    expect(text.split('\n').filter((line) => line.includes('"clientId"'))).toHaveLength(2);
    expect(parseHistory(text)).toEqual(history);
  });

  test('rejects malformed files with the offending operation', () => {
    const good = { format: 'omnidict-history', version: 1, meta: {}, ops: [] };
    expect(() => parseHistory('{}')).toThrow('not an omnidict-history file');
    expect(() => parseHistory(JSON.stringify({ ...good, version: 9 }))).toThrow('unsupported version 9');
    const bad = {
      id: 0,
      clientId: 1,
      key: 'x',
      kind: 'put',
      input: {},
      invokeMs: 1,
      completeMs: 2,
      outcome: 'ok',
      output: {},
    };
    expect(() => parseHistory(JSON.stringify({ ...good, ops: [bad] }))).toThrow(
      'op at index 0: put without a string value',
    );
    const early = { ...bad, input: { value: 'a' }, completeMs: 0 };
    expect(() => parseHistory(JSON.stringify({ ...good, ops: [early] }))).toThrow('completeMs before invokeMs');
  });
});
