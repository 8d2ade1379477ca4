import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type BenchOptions,
  type BenchResult,
  benchKey,
  type LeaderPlacement,
  runBench,
  type Workload,
} from '@omnidict/cli';
import { PdClient } from '@omnidict/client';
import type { Cleanup } from './cleanup.js';
import { EtcdCluster, type EtcdClusterPlan, ensureEtcd, etcdEnv } from './etcdCluster.js';
import { downDir, killDir, OmniCluster } from './omniCluster.js';
import { cpuTimeMs, freePort, run, sleep } from './processes.js';
import { etcdSubject, type OmniClientMode, omniSubject, type Subject } from './subjects.js';
import type { Cell, ShardCell } from './table.js';

export type SystemName = 'etcd' | 'omnidict';

export interface CompareOptions {
  systems: SystemName[];
  workloads: Workload[];
  concurrency: number[];
  durationMs: number;
  /** Warm-up per system (mixed workload, 16 clients) before its first measured cell. */
  warmupMs: number;
  valueSizeBytes: number;
  keys: number;
  readRatio: number;
  /** Shards of the OmniDict cluster used for the comparison table. */
  omniShards: number;
  omniClient: OmniClientMode;
  /** Shard counts of the scaling table (empty: no table), leaders gathered on one node (the default)... */
  shardCounts: number[];
  /** ...and shard counts measured again with leaders balanced across the nodes. */
  balancedShardCounts: number[];
  shardConcurrency: number;
  /** Shards of the idle-CPU measurement (0: skip). */
  idleShards: number;
  idleSampleMs: number;
  /**
   * Wait after an OmniDict cluster answers before measuring it: PD still balances leaders right
   * after startup, and cells measured during those moves vary a lot.
   */
  settleMs: number;
  /** Wait after the idle cluster is up before sampling (elections, first PD reports). */
  idleSettleMs: number;
  seed: number;
  cliMain: string;
  etcdBinary?: string;
  install: boolean;
  keep: boolean;
}

export interface IdleCpu {
  shards: number;
  sampleMs: number;
  /** Per storage node: CPU used over the sample as a percentage of one core. */
  nodes: { id: number; cpuPercent: number }[];
  error?: string;
}

export interface CompareReport {
  startedAt: string;
  machine: { cpus: number; cpuModel: string; memGiB: number; node: string; platform: string };
  options: Omit<CompareOptions, 'cliMain'>;
  etcdVersion: string | null;
  cells: Cell[];
  shardCells: ShardCell[];
  idle: IdleCpu | null;
}

/** Every key of the key space, for preloading the read workloads. */
export function allKeys(opts: Pick<BenchOptions, 'keyPrefix'>, n: number): string[] {
  return Array.from({ length: n }, (_, i) => benchKey(opts, i));
}

export function benchOptions(
  o: CompareOptions,
  workload: Workload,
  concurrency: number,
  durationMs: number,
): BenchOptions {
  return {
    workload,
    readRatio: o.readRatio,
    concurrency,
    valueSizeBytes: o.valueSizeBytes,
    keys: o.keys,
    durationMs,
    distribution: 'uniform',
    keyPrefix: 'bench:',
    seed: o.seed,
  };
}

/**
 * CompareRun carries out `bench:compare`: each system alone on the machine in turn (etcd, then
 * OmniDict), every workload at every concurrency through the same engine, then the shard-scaling
 * and idle-CPU measurements on fresh OmniDict clusters. Everything it starts is registered with
 * `cleanup` before it is waited on.
 */
export class CompareRun {
  private readonly root: Promise<string>;
  private readonly started: number[] = [];

  constructor(
    private readonly o: CompareOptions,
    private readonly cleanup: Cleanup,
    private readonly say: (line: string) => void,
  ) {
    this.root = mkdtemp(path.join(os.tmpdir(), 'omnidict-compare-'));
  }

  /** Every server pid this run started so far (etcd members, OmniDict processes). */
  startedPids(): number[] {
    return [...this.started];
  }

  /** The run's working directory (clusters' data and logs), removed at the end unless `keep`. */
  workDir(): Promise<string> {
    return this.root;
  }

  private get aborted(): boolean {
    return this.cleanup.abortedBy !== null;
  }

  async run(): Promise<CompareReport> {
    const root = await this.root;
    this.say(`working directory ${root}`);
    // Registered first, so it runs last: after every cluster in it has stopped, even on Ctrl-C.
    this.cleanup.add({
      name: `working directory ${root}`,
      stop: async () => {
        if (this.o.keep) this.say(`kept ${root}`);
        else await rm(root, { recursive: true, force: true });
      },
      kill: () => {
        if (!this.o.keep) rmSync(root, { recursive: true, force: true });
      },
    });
    const report: CompareReport = {
      startedAt: new Date().toISOString(),
      machine: machine(),
      options: withoutCliMain(this.o),
      etcdVersion: null,
      cells: [],
      shardCells: [],
      idle: null,
    };
    try {
      if (this.o.systems.includes('etcd')) report.cells.push(...(await this.runEtcd(root, report)));
      if (this.o.systems.includes('omnidict') && !this.aborted) report.cells.push(...(await this.runOmni(root)));
      for (const shards of this.o.shardCounts) {
        if (this.aborted) break;
        report.shardCells.push(await this.runShards(root, shards, 'gather'));
      }
      for (const shards of this.o.balancedShardCounts) {
        if (this.aborted) break;
        report.shardCells.push(await this.runShards(root, shards, 'balance'));
      }
      if (this.o.idleShards > 0 && !this.aborted) report.idle = await this.runIdle(root);
    } finally {
      await this.cleanup.stopAll();
    }
    return report;
  }

  private async runEtcd(root: string, report: CompareReport): Promise<Cell[]> {
    const binary = await ensureEtcd(this.say, {
      install: this.o.install,
      ...(this.o.etcdBinary ? { explicit: this.o.etcdBinary } : {}),
    });
    report.etcdVersion = await etcdVersion(binary);
    const members = [];
    for (let i = 1; i <= 3; i++)
      members.push({ name: `etcd-${i}`, clientPort: await freePort(), peerPort: await freePort() });
    const plan: EtcdClusterPlan = { members, dataRoot: path.join(root, 'etcd'), token: `bench-${Date.now()}` };
    this.say(`starting etcd ${report.etcdVersion ?? ''} (3 members: ${members.map((m) => m.clientPort).join(', ')})`);
    let unregister: () => void = () => undefined;
    const cluster = await EtcdCluster.start(plan, binary, {
      onStarted: (c) => {
        unregister = this.cleanup.add({ name: 'etcd cluster', stop: () => c.stop(), kill: () => c.kill() });
      },
    });
    this.started.push(...cluster.pids);
    try {
      return await this.measure(etcdSubject(cluster.endpoints));
    } finally {
      this.say('stopping etcd');
      await cluster.stop();
      unregister();
    }
  }

  /** Starts an OmniDict cluster in `root/name` through the launcher, registered for cleanup. */
  private async omniUp(
    root: string,
    name: string,
    shards: number,
    leaderPlacement?: LeaderPlacement,
  ): Promise<{ cluster: OmniCluster; down(): Promise<void> }> {
    const dir = path.join(root, name);
    const leaders = leaderPlacement === undefined ? '' : `, leaders ${leaderPlacement}`;
    this.say(`starting OmniDict (3 PD, 3 nodes, 1 router, ${shards} shards${leaders}) in ${dir}`);
    const unregister = this.cleanup.add({
      name: `OmniDict cluster ${dir}`,
      stop: () => downDir(this.o.cliMain, dir),
      kill: () => killDir(dir),
    });
    const cluster = await OmniCluster.up(this.o.cliMain, dir, shards, this.say, undefined, leaderPlacement);
    this.started.push(...cluster.pids());
    if (this.o.settleMs > 0) {
      this.say(`letting it settle for ${this.o.settleMs} ms`);
      await Promise.race([sleep(this.o.settleMs), this.cleanup.aborted]);
    }
    return {
      cluster,
      down: async () => {
        this.say(`stopping OmniDict (${shards} shards)`);
        await cluster.down();
        unregister();
      },
    };
  }

  private async runOmni(root: string): Promise<Cell[]> {
    const { cluster, down } = await this.omniUp(root, 'omnidict', this.o.omniShards);
    try {
      return await this.measure(omniSubject(cluster, this.o.omniClient, Math.max(...this.o.concurrency)));
    } finally {
      await down();
    }
  }

  /** Every workload × concurrency against one subject; a failing cell is recorded, not fatal. */
  private async measure(subject: Subject): Promise<Cell[]> {
    const cells: Cell[] = [];
    try {
      const value = Buffer.alloc(this.o.valueSizeBytes, 0x61);
      if (this.o.workloads.some((w) => w !== 'put')) {
        this.say(`${subject.name}: preloading ${this.o.keys} keys`);
        await subject.preload(allKeys({ keyPrefix: 'bench:' }, this.o.keys), value);
      }
      if (this.o.warmupMs > 0) {
        // Both paths, the same for every system: half puts, half the mixed workload, 16 clients.
        this.say(`${subject.name}: warming up for ${this.o.warmupMs} ms (put, then mixed)`);
        const half = Math.max(1, Math.round(this.o.warmupMs / 2));
        await this.bench(subject, benchOptions(this.o, 'put', 16, half));
        await this.bench(subject, benchOptions(this.o, 'mixed', 16, half));
      }
      for (const workload of this.o.workloads) {
        for (const concurrency of this.o.concurrency) {
          if (this.aborted) return cells;
          cells.push(await this.cell(subject, workload, concurrency));
        }
      }
    } finally {
      subject.close();
    }
    return cells;
  }

  private async cell(subject: Subject, workload: Workload, concurrency: number): Promise<Cell> {
    const cell: Cell = { system: subject.name, workload, concurrency, result: null };
    try {
      cell.result = await this.bench(subject, benchOptions(this.o, workload, concurrency, this.o.durationMs));
      const r = cell.result;
      this.say(
        `${subject.name} ${workload} ×${concurrency}: ${Math.round(r.opsPerSec)} ops/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms${r.errors ? `, ${r.errors} errors (${describeErrors(r)})` : ''}`,
      );
    } catch (err) {
      cell.error = (err as Error).message;
      this.say(`${subject.name} ${workload} ×${concurrency}: failed: ${cell.error}`);
    }
    return cell;
  }

  private bench(subject: Subject, opts: BenchOptions): Promise<BenchResult> {
    return runBench(subject.target, opts, { stopSignal: this.cleanup.aborted, errorCode: subject.errorCode });
  }

  /** One shard-table row: a fresh cluster with `shards` shards and PD's leader placement `leaders`. */
  private async runShards(root: string, shards: number, leaders: LeaderPlacement): Promise<ShardCell> {
    const cell: ShardCell = { shards, leaders, concurrency: this.o.shardConcurrency, result: null };
    let started: Awaited<ReturnType<CompareRun['omniUp']>> | null = null;
    try {
      started = await this.omniUp(root, `shards-${shards}-${leaders}`, shards, leaders);
      const subject = omniSubject(started.cluster, this.o.omniClient, this.o.shardConcurrency);
      try {
        if (this.o.warmupMs > 0) await this.bench(subject, benchOptions(this.o, 'put', 16, this.o.warmupMs));
        cell.result = await this.bench(
          subject,
          benchOptions(this.o, 'put', this.o.shardConcurrency, this.o.durationMs),
        );
        this.say(
          `OmniDict put ×${this.o.shardConcurrency} with ${shards} shards (leaders ${leaders}): ${Math.round(cell.result.opsPerSec)} ops/s`,
        );
      } finally {
        subject.close();
      }
    } catch (err) {
      cell.error = (err as Error).message.split('\n')[0] ?? 'failed';
      this.say(`OmniDict with ${shards} shards: failed: ${(err as Error).message}`);
    } finally {
      await started?.down();
    }
    return cell;
  }

  /**
   * Waits until PD has run no operator for PD_QUIET_MS (at most PD_QUIET_TIMEOUT_MS); returns the
   * time waited. A PD that cannot be asked counts as quiet only after the timeout.
   */
  private async waitPdQuiet(pdAddresses: string[]): Promise<number> {
    const pd = new PdClient({ pd: pdAddresses, defaultTimeoutMs: 2000 });
    const t0 = performance.now();
    let quietSince: number | undefined;
    try {
      while (!this.aborted && performance.now() - t0 < PD_QUIET_TIMEOUT_MS) {
        const running = await pd.clusterStatus().then(
          (s) => s.operatorsRunning,
          () => undefined,
        );
        const now = performance.now();
        if (running === 0) {
          quietSince ??= now;
          if (now - quietSince >= PD_QUIET_MS) return quietSince - t0;
        } else quietSince = undefined;
        await Promise.race([sleep(500), this.cleanup.aborted]);
      }
      return performance.now() - t0;
    } finally {
      pd.close();
    }
  }

  /**
   * runIdle starts a cluster with `idleShards` shards, waits until PD runs no operator, lets it
   * settle (elections, PD reports), then samples each storage node's CPU time over `idleSampleMs`
   * with no client traffic.
   */
  private async runIdle(root: string): Promise<IdleCpu> {
    const idle: IdleCpu = { shards: this.o.idleShards, sampleMs: this.o.idleSampleMs, nodes: [] };
    let started: Awaited<ReturnType<CompareRun['omniUp']>> | null = null;
    try {
      started = await this.omniUp(root, `idle-${this.o.idleShards}`, this.o.idleShards);
      // Idle means PD has stopped moving things too: with many shards, some first elections are
      // won before the chosen replica exists, and PD then transfers those leaders a few at a time.
      const quietMs = await this.waitPdQuiet(started.cluster.pdAddresses);
      this.say(`idle ${this.o.idleShards} shards: PD scheduled nothing more after ${(quietMs / 1000).toFixed(1)} s`);
      const settleMs = this.o.idleSettleMs;
      this.say(
        `idle ${this.o.idleShards} shards: settling ${settleMs / 1000} s, then sampling ${this.o.idleSampleMs / 1000} s`,
      );
      await Promise.race([sleep(settleMs), this.cleanup.aborted]);
      const nodes = started.cluster.file.processes.filter((p) => p.role === 'node');
      const before = nodes.map((p) => cpuTimeMs(p.pid));
      const t0 = performance.now();
      await Promise.race([sleep(this.o.idleSampleMs), this.cleanup.aborted]);
      const elapsed = performance.now() - t0;
      idle.sampleMs = Math.round(elapsed);
      idle.nodes = nodes.map((p, i) => ({
        id: p.id,
        cpuPercent: Math.round(((cpuTimeMs(p.pid) - before[i]!) / elapsed) * 1000) / 10,
      }));
      this.say(
        `idle ${this.o.idleShards} shards: ${idle.nodes.map((n) => `node-${n.id} ${n.cpuPercent}%`).join(', ')}`,
      );
    } catch (err) {
      idle.error = (err as Error).message.split('\n')[0] ?? 'failed';
      this.say(`idle measurement failed: ${(err as Error).message}`);
    } finally {
      await started?.down();
    }
    return idle;
  }
}

/** How long PD must report no operator running, polled twice a second, to count as quiet. */
const PD_QUIET_MS = 2000;
/** Longest wait for a quiet PD before the idle sample starts anyway. */
const PD_QUIET_TIMEOUT_MS = 180_000;

async function etcdVersion(binary: string): Promise<string | null> {
  try {
    const out = await run(binary, ['--version'], { env: etcdEnv() });
    return /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? null;
  } catch {
    return null;
  }
}

function withoutCliMain(o: CompareOptions): Omit<CompareOptions, 'cliMain'> {
  const { cliMain: _cliMain, ...rest } = o;
  return rest;
}

function machine(): CompareReport['machine'] {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

/** "TIMEOUT×2, first after 10012 ms: …" for a cell's log line. */
function describeErrors(r: BenchResult): string {
  return Object.entries(r.errorsByCode)
    .map(([code, n]) => {
      const first = r.firstErrors[code];
      return `${code}×${n}${first ? `, first after ${first.afterMs} ms: ${first.message}` : ''}`;
    })
    .join('; ');
}
