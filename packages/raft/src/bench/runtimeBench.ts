/**
 * `pnpm --filter @omnidict/raft run bench:runtime`: three RaftHosts as separate child processes on
 * 127.0.0.1 with real classic-level directories (temp dirs, removed at the end). Prints, for 1 and
 * 64 groups under concurrent proposals, committed proposals/s, fsyncs per committed write and
 * p50/p99 commit latency; then the CPU one host spends per second with 1,000 idle groups.
 */
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchReply, BenchRequest } from './runtimeBenchProtocol.js';

const here = dirname(fileURLToPath(import.meta.url));
const NODES = [1, 2, 3];
const TICK_MS = 100;
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 128);
const VALUE_BYTES = 128;

class Child {
  readonly proc: ChildProcess;
  #pending: Array<(r: BenchReply) => void> = [];

  constructor() {
    this.proc = fork(join(here, 'runtimeBenchHost.js'), [], {
      execArgv:
        process.env.BENCH_CHILD_CPU_PROF_DIR === undefined
          ? []
          : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CHILD_CPU_PROF_DIR}`],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (r: BenchReply) => {
      if (r.type === 'error') {
        console.error(`bench host error: ${r.message}`);
        process.exitCode = 1;
      }
      this.#pending.shift()?.(r);
    });
  }

  call(m: BenchRequest): Promise<BenchReply> {
    return new Promise((resolve) => {
      this.#pending.push(resolve);
      this.proc.send(m);
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until every group has a leader; with `on`, until that host leads them all (moving leaders to it). */
async function waitLeaders(children: Child[], groups: number[], on?: { child: Child; nodeId: number }): Promise<void> {
  for (let i = 0; i < 600; i++) {
    let led = 0;
    let ledByTarget = 0;
    for (const c of children) {
      const s = await c.call({ type: 'status', groups });
      if (s.type !== 'status') continue;
      led += s.led;
      if (c === on?.child) ledByTarget = s.led;
    }
    if (on === undefined ? led === groups.length : ledByTarget === groups.length) return;
    if (on !== undefined && i % 10 === 5) {
      for (const c of children) if (c !== on.child) await c.call({ type: 'transfer', groups, to: on.nodeId });
    }
    await sleep(100);
  }
  throw new Error('leaders not elected');
}

async function syncTotal(children: Child[], groups: number[]): Promise<number> {
  let total = 0;
  for (const c of children) {
    const s = await c.call({ type: 'status', groups });
    if (s.type === 'status') total += s.syncWrites;
  }
  return total;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'omnidict-runtime-bench-'));
  const children = NODES.map(() => new Child());
  try {
    const ports: number[] = [];
    for (const [i, c] of children.entries()) {
      const r = await c.call({ type: 'init', nodeId: NODES[i] as number, dir, tickMs: TICK_MS });
      if (r.type !== 'ready') throw new Error('init failed');
      ports.push(r.port);
    }
    const peers = NODES.map((n, i): [number, string] => [n, `127.0.0.1:${ports[i]}`]);
    for (const c of children) await c.call({ type: 'peers', peers });
    const leader = children[0] as Child;
    console.log(
      `runtime bench: 3 host processes, classic-level, gRPC on 127.0.0.1, ${CONCURRENCY} concurrent proposals of ${VALUE_BYTES} B, ${DURATION_MS} ms per run`,
    );
    console.log('groups | committed/s | fsyncs/commit (leader) | fsyncs/commit (3 hosts) | p50 ms | p99 ms');
    let nextGroup = 1;
    for (const count of [1, 64]) {
      const groups = Array.from({ length: count }, () => nextGroup++);
      for (const c of children) await c.call({ type: 'createGroups', groups, nodes: NODES });
      await leader.call({ type: 'campaign', groups });
      await waitLeaders(children, groups, { child: leader, nodeId: 1 });
      const syncBefore = await syncTotal(children, groups);
      const r = await leader.call({
        type: 'load',
        groups,
        concurrency: CONCURRENCY,
        durationMs: DURATION_MS,
        valueBytes: VALUE_BYTES,
      });
      const syncAfter = await syncTotal(children, groups);
      if (r.type !== 'load') throw new Error('load failed');
      const perSec = (r.committed / r.elapsedMs) * 1000;
      console.log(
        `${String(count).padStart(6)} | ${perSec.toFixed(0).padStart(11)} | ${(r.leaderSyncWrites / Math.max(1, r.committed)).toFixed(3).padStart(22)} | ${((syncAfter - syncBefore) / Math.max(1, r.committed)).toFixed(3).padStart(23)} | ${r.p50Ms.toFixed(2).padStart(6)} | ${r.p99Ms.toFixed(2).padStart(6)}${r.errors > 0 ? `  (${r.errors} errors)` : ''}`,
      );
    }
    const idle = Array.from({ length: 1000 }, () => nextGroup++);
    for (const c of children) await c.call({ type: 'createGroups', groups: idle, nodes: NODES });
    await leader.call({ type: 'campaign', groups: idle });
    await waitLeaders(children, idle);
    // Let every group quiesce, then measure.
    for (let i = 0; i < 100; i++) {
      const s = await leader.call({ type: 'status', groups: [] });
      if (s.type === 'status' && s.active === 0) break;
      await sleep(100);
    }
    const cpu = await leader.call({ type: 'cpu', durationMs: 5_000 });
    const follower = await (children[1] as Child).call({ type: 'cpu', durationMs: 5_000 });
    if (cpu.type === 'cpu' && follower.type === 'cpu') {
      console.log(
        `idle: 1,000+ quiesced groups: leader host ${cpu.cpuMsPerSec.toFixed(2)} ms CPU/s (${cpu.active} groups ticking), follower host ${follower.cpuMsPerSec.toFixed(2)} ms CPU/s (${follower.active} ticking)`,
      );
    }
  } finally {
    for (const c of children) {
      const exited = new Promise((r) => c.proc.once('exit', r));
      await Promise.race([c.call({ type: 'stop' }), sleep(3_000)]);
      // A child under --cpu-prof writes its profile while exiting: give it time.
      await Promise.race([exited, sleep(10_000)]);
      c.proc.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
