// End-to-end harness: real processes started by the built launcher (`omnictl cluster up --detach`),
// stopped by `omnictl cluster down`. A test owns its cluster from `E2eCluster.start` to `stop`;
// `stop` must run in afterAll even when the test failed, and kills whatever `cluster down` left.
//
// Clusters of different test files are serialised through a lock directory in the temp dir, so two
// jest workers never run two 7-process clusters at once on a small machine.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OmniClient, PdClient } from '@omnidict/client';
import type { pdpb } from '@omnidict/proto';
import { ringPosition } from '@omnidict/proto';
import type { ClusterFile, ProcessRecord, Role } from '../../src/launcher/localCluster.js';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');
export const CLI_MAIN = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js');
const BUILT = ['cli', 'placement', 'storage-node', 'router'].map((dir) =>
  path.join(REPO_ROOT, 'packages', dir, 'dist', 'main.js'),
);
const LOCK_DIR = path.join(os.tmpdir(), 'omnidict-e2e.lock');

/** Throws (never skips) when a binary the e2e tests run has not been built. */
export function requireBuiltBinaries(): void {
  const missing = BUILT.filter((b) => !existsSync(b));
  if (missing.length > 0) {
    throw new Error(`end-to-end tests run the built binaries; missing ${missing.join(', ')}: run "pnpm build" first`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  input?: string | Buffer;
  timeoutMs?: number;
}

/** Runs `node packages/cli/dist/main.js ...args` and collects its output; kills it after `timeoutMs`. */
export function omnictl(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    if (!opts.env?.OMNIDICT_ROUTER) delete env.OMNIDICT_ROUTER;
    if (!opts.env?.OMNIDICT_PD) delete env.OMNIDICT_PD;
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdin.on('error', () => {
      // the command may exit before reading its stdin
    });
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The omnictl error contract: exactly one `omnictl: error:` line on stderr and the documented exit code. */
export function expectOneErrorLine(r: CliResult, code: number, fragment?: string | RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect({ code: r.code, lines: lines.length }).toEqual({ code, lines: 1 });
  expect(lines[0]).toMatch(/^omnictl: error: \S/);
  if (fragment !== undefined) expect(lines[0]).toMatch(fragment);
  expect(r.stdout).toBe('');
}

/**
 * waitFor polls `probe` until it returns a value other than undefined/false, or throws once
 * `timeoutMs` passed, naming what was awaited and the probe's last error.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false>,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms (last: ${last})`);
}

/** True when `pid` is alive and still runs `binary` (a reused pid is not ours). */
export function isRunning(pid: number, binary: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(binary);
  } catch {
    return false;
  }
}

async function acquireLock(): Promise<void> {
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(path.join(LOCK_DIR, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(path.join(LOCK_DIR, 'pid'), 'utf8'));
    } catch {
      // the owner has not written its pid yet
    }
    let ageMs = 0;
    try {
      ageMs = Date.now() - statSync(LOCK_DIR).mtimeMs;
    } catch {
      continue;
    }
    let ownerAlive = owner > 0;
    if (ownerAlive) {
      try {
        process.kill(owner, 0);
      } catch {
        ownerAlive = false;
      }
    }
    // A lock without a live owner is stale (its jest worker died); a pid-less one only after a while.
    if ((owner > 0 && !ownerAlive) || (owner === 0 && ageMs > 10_000)) {
      rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    await sleep(250);
  }
}

function releaseLock(): void {
  try {
    if (Number(readFileSync(path.join(LOCK_DIR, 'pid'), 'utf8')) === process.pid) {
      rmSync(LOCK_DIR, { recursive: true, force: true });
    }
  } catch {
    // not held
  }
}

/** The last lines of a process's log, for failure messages. */
export function logTail(p: ProcessRecord, lines = 15): string {
  try {
    return readFileSync(p.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A cluster started by the launcher in a fresh temp dir. */
export class E2eCluster {
  private constructor(readonly dir: string) {}

  /** Starts `cluster up --dir <tmp> --detach ...flags`; on failure stops what started and throws its output. */
  static async start(name: string, flags: string[] = []): Promise<E2eCluster> {
    const cluster = await E2eCluster.reserve(name);
    const r = await omnictl(['cluster', 'up', '--dir', cluster.dir, '--detach', ...flags], { timeoutMs: 120_000 });
    if (r.code !== 0) {
      await cluster.stop();
      throw new Error(`cluster up failed (exit ${r.code ?? r.signal}):\n${r.stderr}${r.stdout}`);
    }
    return cluster;
  }

  /**
   * reserve checks the binaries, takes the e2e lock and makes an empty directory, for a test that
   * runs `cluster up` itself; `stop` releases both.
   */
  static async reserve(name: string): Promise<E2eCluster> {
    requireBuiltBinaries();
    await acquireLock();
    return new E2eCluster(await mkdtemp(path.join(os.tmpdir(), `omnidict-e2e-${name}-`)));
  }

  /** DIR/cluster.json as it is now (restarts write new pids to it). */
  get file(): ClusterFile {
    return JSON.parse(readFileSync(path.join(this.dir, 'cluster.json'), 'utf8')) as ClusterFile;
  }

  processes(role?: Role): ProcessRecord[] {
    return this.file.processes.filter((p) => role === undefined || p.role === role);
  }

  process(role: Role, id: number): ProcessRecord {
    const p = this.processes(role).find((q) => q.id === id);
    if (!p) throw new Error(`no ${role}-${id} in ${this.dir}/cluster.json`);
    return p;
  }

  get routerAddress(): string {
    return this.process('router', 1).address;
  }

  get pdAddresses(): string {
    return this.processes('pd')
      .map((p) => p.address)
      .join(',');
  }

  /** Environment for omnictl KV and admin commands against this cluster. */
  get env(): Record<string, string> {
    return { OMNIDICT_ROUTER: this.routerAddress, OMNIDICT_PD: this.pdAddresses };
  }

  client(defaultTimeoutMs = 5000): OmniClient {
    return new OmniClient({ routers: this.routerAddress, defaultTimeoutMs });
  }

  pd(defaultTimeoutMs = 10_000): PdClient {
    return new PdClient({ pd: this.pdAddresses, defaultTimeoutMs });
  }

  /** omnictl with OMNIDICT_ROUTER / OMNIDICT_PD pointing at this cluster. */
  cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
    return omnictl(args, { ...opts, env: { ...this.env, ...opts.env } });
  }

  /** kill -9, then waits until the pid is gone. */
  async kill9(p: ProcessRecord): Promise<void> {
    process.kill(p.pid, 'SIGKILL');
    await waitFor(
      `${p.role}-${p.id} (pid ${p.pid}) to exit after SIGKILL`,
      10_000,
      async () => !isRunning(p.pid, p.binary),
      20,
    );
  }

  /**
   * restart starts a process again from its cluster.json command line (same id, ports and data
   * directory), appending to the same log, and records the new pid so `cluster down` stops it.
   */
  restart(p: ProcessRecord): ProcessRecord {
    const fd = openSync(p.log, 'a');
    let pid: number | undefined;
    try {
      const child = spawn(process.execPath, [p.binary, ...p.args], {
        stdio: ['ignore', fd, fd],
        detached: true,
        env: { ...process.env, OMNIDICT_LOG_LEVEL: process.env.OMNIDICT_LOG_LEVEL ?? 'info' },
      });
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(fd);
    }
    if (pid === undefined) throw new Error(`cannot restart ${p.role}-${p.id}`);
    const file = this.file;
    const rec = file.processes.find((q) => q.role === p.role && q.id === p.id)!;
    rec.pid = pid;
    writeFileSync(path.join(this.dir, 'cluster.json'), `${JSON.stringify(file, null, 2)}\n`);
    return rec;
  }

  /**
   * stop runs `cluster down`, SIGKILLs anything it left running, releases the lock and removes the
   * directory (kept when OMNIDICT_E2E_KEEP is set, for reading the logs).
   */
  async stop(): Promise<void> {
    try {
      if (existsSync(path.join(this.dir, 'cluster.json'))) {
        const r = await omnictl(['cluster', 'down', '--dir', this.dir, '--grace', '5s'], { timeoutMs: 60_000 });
        if (r.code !== 0) console.log(`cluster down in ${this.dir} exited ${r.code}: ${r.stderr}`);
        for (const p of this.processes()) {
          if (isRunning(p.pid, p.binary)) {
            console.log(`${p.role}-${p.id} (pid ${p.pid}) survived cluster down; killing it`);
            process.kill(p.pid, 'SIGKILL');
          }
        }
      }
    } finally {
      releaseLock();
      if (process.env.OMNIDICT_E2E_KEEP) console.log(`kept ${this.dir}`);
      else rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * waitSettled waits until every shard has a leader and no operator runs (the bootstrap `create`
 * operators finish a little after the router first answers), so a manual operator is not refused
 * with CONFLICT.
 */
export async function waitSettled(pd: PdClient, timeoutMs = 30_000): Promise<pdpb.ShardRoute[]> {
  return waitFor('every shard to have a leader and no operator to run', timeoutMs, async () => {
    const status = await pd.clusterStatus();
    const routes = await pd.listShards();
    return status.operatorsRunning === 0 && routes.every((r) => r.leaderNodeId > 0) ? routes : undefined;
  });
}

/** The shard whose range holds `key`'s ring position. */
export function shardOf(routes: pdpb.ShardRoute[], key: string): number {
  const pos = ringPosition(key);
  const r = routes.find((s) => s.shard && pos >= s.shard.start && pos < s.shard.end);
  if (!r?.shard) throw new Error(`no shard holds position ${pos} of ${JSON.stringify(key)}`);
  return r.shard.id;
}

/** One acknowledged put of a `Writer`. */
export interface Ack {
  key: string;
  value: string;
  issuedMs: number;
  ackedMs: number;
}

/**
 * Writer runs `concurrency` loops of SDK puts of unique keys (`<prefix>-<n>`) until stopped,
 * recording every acknowledged write; failures are counted by OmniError code and retried with a new
 * key (a failed write may or may not have happened, so it is never checked).
 */
export class Writer {
  readonly acked: Ack[] = [];
  readonly failures = new Map<string, number>();
  private next = 0;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly client: OmniClient,
    private readonly prefix: string,
    private readonly concurrency = 4,
    private readonly timeoutMs = 3000,
  ) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) this.loops.push(this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  get failureSummary(): string {
    return [...this.failures].map(([code, n]) => `${code}×${n}`).join(', ') || 'none';
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const key = `${this.prefix}-${this.next++}`;
      const value = `value of ${key}`;
      const issuedMs = Date.now();
      try {
        await this.client.put(key, value, { timeoutMs: this.timeoutMs });
        this.acked.push({ key, value, issuedMs, ackedMs: Date.now() });
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'non-OmniError';
        this.failures.set(code, (this.failures.get(code) ?? 0) + 1);
        await sleep(20);
      }
    }
  }
}

/** Reads every acknowledged write back (batches of 200) and returns those missing or different. */
export async function findLost(client: OmniClient, acked: readonly Ack[]): Promise<string[]> {
  const lost: string[] = [];
  for (let i = 0; i < acked.length; i += 200) {
    const chunk = acked.slice(i, i + 200);
    const startedMs = Date.now();
    const got = await client
      .batchGet(
        chunk.map((a) => a.key),
        { timeoutMs: 15_000 },
      )
      .catch((err: Error) => {
        throw new Error(
          `reading back acknowledged writes ${i}..${i + chunk.length - 1} failed after ${Date.now() - startedMs} ms: ${err.message}`,
        );
      });
    chunk.forEach((a, j) => {
      const g = got[j];
      if (!g || g.value.toString() !== a.value)
        lost.push(`${a.key}: ${g ? JSON.stringify(g.value.toString()) : 'absent'}`);
    });
  }
  return lost;
}
