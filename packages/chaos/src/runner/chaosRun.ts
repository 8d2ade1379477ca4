import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OmniClient, PdClient } from '@omnidict/client';
import { embedRouter } from '@omnidict/router';
import { checkLinearizability } from '../checker/linearizability.js';
import { checkLostWrites } from '../checker/lostWrites.js';
import { HistoryRecorder, serializeHistory } from '../history.js';
import { Rng } from '../rng.js';
import { LocalCluster, sleep } from './localCluster.js';
import type { FaultKind } from './nemesis.js';
import { Nemesis } from './nemesis.js';
import { RegisterWorkload } from './workload.js';

// One chaos run: start a local cluster, run the register workload and the nemesis side by side for
// `durationMs`, heal, read every key once more, check the history, stop the cluster. The history is
// written to DIR/history.json; DIR is removed after a clean run unless `keep` is set.

export interface ChaosOptions {
  seed: number;
  durationMs: number;
  clients: number;
  keys: number;
  nodes: number;
  pds: number;
  shards: number;
  opTimeoutMs: number;
  ttlSlackMs: number;
  faults: FaultKind[];
  cliMain: string;
  keep: boolean;
  /** Clients route in process (`embedRouter`) instead of through the router process. */
  embedded?: boolean;
  log: (line: string) => void;
}

export interface ChaosReport {
  ops: number;
  faults: number;
  anomalies: number;
  lost: number;
  /** Keys the search could not decide within its budget. */
  undecided: number;
  historyPath: string;
  dir: string;
}

export const ALL_FAULTS: FaultKind[] = ['kill', 'pause', 'partition', 'split', 'transfer', 'move'];

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log;
  const rng = new Rng(options.seed);
  const workloadRng = new Rng(rng.nextUint32());
  const nemesisRng = new Rng(rng.nextUint32());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'omnidict-chaos-'));
  log(`chaos: seed ${options.seed}, ${options.durationMs / 1000}s, cluster in ${dir}`);
  const cluster = await LocalCluster.up(options.cliMain, dir, {
    nodes: options.nodes,
    pds: options.pds,
    shards: options.shards,
  });
  const embedded = options.embedded ? embedRouter({ pdAddresses: cluster.pdAddresses() }) : null;
  const client =
    embedded?.client({ defaultTimeoutMs: options.opTimeoutMs }) ??
    new OmniClient({
      routers: cluster.routerAddresses(),
      defaultTimeoutMs: options.opTimeoutMs,
      maxRetries: 3,
    });
  if (embedded) log('chaos: clients route in process (embedRouter), not through the router');
  const pd = new PdClient({ pd: cluster.pdAddresses() });
  const recorder = new HistoryRecorder();
  const workload = new RegisterWorkload(client, recorder, workloadRng, {
    clients: options.clients,
    keys: options.keys,
    opTimeoutMs: options.opTimeoutMs,
    ttlMs: [100, 2000],
  });
  const nemesis = new Nemesis(
    cluster,
    pd,
    nemesisRng,
    { intervalMs: [1000, 3000], faultMs: [500, 4000], kinds: options.faults },
    log,
  );
  const historyPath = path.join(dir, 'history.json');
  try {
    const running = Promise.all([workload.run(), options.faults.length > 0 ? nemesis.run() : Promise.resolve()]);
    await sleep(options.durationMs);
    nemesis.stop();
    workload.stop();
    await running;
    // Everything is healed by now (each fault heals itself before run() returns); let the
    // cluster re-elect and catch up, then read every key once more.
    for (const p of cluster.processes()) cluster.signal(p, 'SIGCONT');
    await sleep(2000);
    const unread = await workload.finalReads(options.clients, Date.now() + 30_000);
    if (unread > 0) log(`chaos: ${unread} keys could not be read after healing (no final read for them)`);

    const history = recorder.history({
      seed: options.seed,
      durationMs: options.durationMs,
      clients: options.clients,
      keys: options.keys,
      layout: { nodes: options.nodes, pds: options.pds, shards: options.shards },
      faults: nemesis.faults,
    });
    writeFileSync(historyPath, serializeHistory(history));
    const outcomes = { ok: 0, failed: 0, unknown: 0 };
    for (const op of history.ops) outcomes[op.outcome]++;
    log(`chaos: ${history.ops.length} ops (${outcomes.ok} ok, ${outcomes.failed} failed, ${outcomes.unknown} unknown)`);

    const lin = checkLinearizability(history, { ttlSlackMs: options.ttlSlackMs, timeBudgetMsPerKey: 60_000 });
    const lost = checkLostWrites(history, { ttlSlackMs: options.ttlSlackMs });
    log(`chaos: checked ${lin.keys.length} keys in ${lin.elapsedMs.toFixed(0)} ms: ${lin.verdict}`);
    for (const key of lin.keys) {
      if (key.verdict === 'violation') log(key.explanation?.text ?? `key ${key.key}: violation`);
      if (key.verdict === 'unknown') log(`key ${JSON.stringify(key.key)}: undecided: ${key.reason ?? ''}`);
    }
    for (const loss of lost.lost) log(loss.text);
    const report: ChaosReport = {
      ops: history.ops.length,
      faults: nemesis.faults.length,
      anomalies: lin.keys.filter((k) => k.verdict === 'violation').length,
      lost: lost.lost.length,
      undecided: lin.keys.filter((k) => k.verdict === 'unknown').length,
      historyPath,
      dir,
    };
    return report;
  } finally {
    nemesis.close();
    client.close();
    embedded?.close();
    pd.close();
    await cluster.down().catch((err: Error) => log(`chaos: cluster down failed: ${err.message}`));
  }
}

/** Removes the run's directory (cluster data, logs, history). */
export function removeRunDir(report: ChaosReport): void {
  rmSync(report.dir, { recursive: true, force: true });
}
