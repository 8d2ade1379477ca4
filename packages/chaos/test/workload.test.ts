import { KvTwin, OmniClient } from '@omnidict/client';
import { checkLinearizability } from '../src/checker/linearizability.js';
import { checkLostWrites } from '../src/checker/lostWrites.js';
import { HistoryRecorder } from '../src/history.js';
import { Rng } from '../src/rng.js';
import { RegisterWorkload } from '../src/runner/workload.js';

// The workload and recorder against the SDK's in-memory KV twin (a real gRPC server, one process):
// the recorded history must check clean, and injected errors must land in the right outcome.

const seed = Number(process.env.CHAOS_TEST_SEED ?? Math.floor(Math.random() * 1_000_000));

test('the register workload records a linearizable history; errors become failed or unknown', async () => {
  console.log(`workload: seed ${seed} (CHAOS_TEST_SEED=${seed} to rerun)`);
  const twin = await KvTwin.start();
  const client = new OmniClient({ routers: [twin.address], defaultTimeoutMs: 2000, maxRetries: 0 });
  const recorder = new HistoryRecorder();
  const workload = new RegisterWorkload(client, recorder, new Rng(seed), {
    clients: 4,
    keys: 3,
    opTimeoutMs: 2000,
    ttlMs: [5, 50],
  });
  try {
    const running = workload.run();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A write applied but answered with an error: must be recorded as unknown, not failed.
    twin.fail('Put', 'UNAVAILABLE', 3, true);
    twin.fail('CompareAndSwap', 'TIMEOUT', 2, true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    twin.fail('Put', 'INVALID_ARGUMENT', 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    workload.stop();
    await running;
    expect(await workload.finalReads(99, Date.now() + 5000)).toBe(0);
  } finally {
    client.close();
    await twin.stop();
  }
  const history = recorder.history({ seed });
  const outcomes = history.ops.map((op) => op.outcome);
  expect(outcomes.filter((o) => o === 'unknown').length).toBeGreaterThanOrEqual(1);
  expect(history.ops.some((op) => op.outcome === 'failed' && op.error?.startsWith('INVALID_ARGUMENT'))).toBe(true);
  const result = checkLinearizability(history, { ttlSlackMs: 5 });
  const bad = result.keys.find((k) => k.verdict !== 'ok');
  expect(bad?.explanation?.text ?? bad?.reason).toBeUndefined();
  expect(checkLostWrites(history, { ttlSlackMs: 5 })).toMatchObject({ checkedKeys: 3, lost: [] });
});
