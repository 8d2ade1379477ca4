import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { OmniClient, OmniError } from '@omnidict/client';
import pino from 'pino';

export type Role = 'pd' | 'node' | 'router';

/** One launched process as recorded in DIR/cluster.json. */
export interface ProcessRecord {
  role: Role;
  id: number;
  /** gRPC address (`127.0.0.1:port`). */
  address: string;
  /** PD and node: the Raft transport address (PD `--peers` entries, node `--raft-listen`). */
  raftAddress?: string;
  /** Router only: the Prometheus metrics port. */
  metricsPort?: number;
  pid: number;
  /** Absolute path of the log file (stdout and stderr). */
  log: string;
  dataDir?: string;
  binary: string;
  args: string[];
}

/** DIR/cluster.json: enough to stop the cluster and to restart it with the same ids and ports. */
export interface ClusterFile {
  version: 1;
  dir: string;
  shards: number;
  replication: number;
  startedAtMs: number;
  processes: ProcessRecord[];
}

/** omnidict-pd --leader-placement values (the PD's flag; see docs/design.md). */
export const LEADER_PLACEMENTS = ['gather', 'balance'] as const;
export type LeaderPlacement = (typeof LEADER_PLACEMENTS)[number];

export interface ClusterUpOptions {
  dir: string;
  pdCount: number;
  nodes: number;
  shards: number;
  replication: number;
  /**
   * PD's leader placement (omnidict-pd --leader-placement). Default `gather`: the processes share
   * this host's cores, so spreading leaders over them spreads no load (docs/design.md).
   */
  leaderPlacement?: LeaderPlacement;
  /** How long to wait for the router to answer. */
  readyTimeoutMs: number;
  /** Where the binaries are looked up from (packages/cli/dist). */
  cliDir: string;
  env?: NodeJS.ProcessEnv;
  /** Progress lines for the user. */
  say(line: string): void;
}

export const BINARIES: Record<Role, { name: string; pkg: string; dir: string; env: string }> = {
  pd: { name: 'omnidict-pd', pkg: '@omnidict/placement', dir: 'placement', env: 'OMNIDICT_PD_BIN' },
  node: { name: 'omnidict-node', pkg: '@omnidict/storage-node', dir: 'storage-node', env: 'OMNIDICT_NODE_BIN' },
  router: { name: 'omnidict-router', pkg: '@omnidict/router', dir: 'router', env: 'OMNIDICT_ROUTER_BIN' },
};

/**
 * resolveBinary finds a role's entry script: `$OMNIDICT_*_BIN` if set; else the workspace sibling
 * packages/<dir>/dist/main.js next to the cli's own dist dir; else the installed package's `bin`
 * resolved from the cli's location. Returns the first candidate (for the error) when none exists.
 */
export function resolveBinary(role: Role, cliDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const b = BINARIES[role];
  const override = env[b.env];
  if (override) return path.resolve(override);
  const sibling = path.resolve(cliDir, '..', '..', b.dir, 'dist', 'main.js');
  if (existsSync(sibling)) return sibling;
  try {
    const req = createRequire(path.join(cliDir, 'noop.js'));
    const pkgJson = req.resolve(`${b.pkg}/package.json`);
    const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin?: Record<string, string> | string };
    const rel = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.[b.name];
    if (rel) return path.resolve(path.dirname(pkgJson), rel);
  } catch {
    // not installed as a package: the sibling path is reported
  }
  return sibling;
}

/** The cli's dist dir when not told: the real path of the running script (bin links resolved). */
export function defaultCliDir(): string {
  const script = process.argv[1];
  return script ? path.dirname(realpathSync(script)) : process.cwd();
}

/** Lowest port `freePort` picks from; below it are well-known and registered service ports. */
const PORT_FLOOR = 10_000;
/** Ports handed out by this process, so one plan never gets the same port twice. */
const handedOut = new Set<number>();

/**
 * The first port of the kernel's ephemeral range (`ip_local_port_range` on Linux; the IANA 49152
 * elsewhere). Outgoing connections of ANY process take their local port from that range, so a
 * port found free there can be taken by a connection before the child binds it (EADDRINUSE).
 */
export function ephemeralPortFloor(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 0) return low;
  } catch {
    // not Linux
  }
  return 49_152;
}

function canBind(port: number): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', () => resolve(0));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(bound));
    });
  });
}

/**
 * Finds a free TCP port on 127.0.0.1 for a child to listen on: a random one that binds now, below
 * the ephemeral range (see `ephemeralPortFloor`) and never one this process handed out before;
 * binding port 0 is the fallback when that range is too small.
 */
export async function freePort(): Promise<number> {
  const ceiling = ephemeralPortFloor();
  if (ceiling - PORT_FLOOR >= 1000) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const port = PORT_FLOOR + Math.floor(Math.random() * (ceiling - PORT_FLOOR));
      if (handedOut.has(port)) continue;
      if ((await canBind(port)) === port) {
        handedOut.add(port);
        return port;
      }
    }
  }
  for (;;) {
    const port = await canBind(0);
    if (port === 0) throw new OmniError('UNAVAILABLE', 'cannot bind any port on 127.0.0.1');
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export function clusterFilePath(dir: string): string {
  return path.join(dir, 'cluster.json');
}

export async function readClusterFile(dir: string): Promise<ClusterFile | null> {
  try {
    return JSON.parse(await readFile(clusterFilePath(dir), 'utf8')) as ClusterFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new OmniError('INVALID_ARGUMENT', `cannot read ${clusterFilePath(dir)}: ${(err as Error).message}`);
  }
}

async function writeClusterFile(file: ClusterFile): Promise<void> {
  const target = clusterFilePath(file.dir);
  await writeFile(`${target}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  await rename(`${target}.tmp`, target);
}

/** True when `pid` is alive and (on Linux) still runs `binary`, so a reused pid is never signalled. */
export function isRunning(pid: number, binary?: string): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (binary && existsSync(`/proc/${pid}/cmdline`)) {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(binary);
    } catch {
      return false;
    }
  }
  return true;
}

/** The last `lines` lines of a log file, for a startup failure report. */
export function tailFile(file: string, lines = 20): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text === '' ? '(log is empty)' : text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

/** The planned processes: reused from cluster.json when present, otherwise fresh ids and ports. */
async function plan(opts: ClusterUpOptions, previous: ClusterFile | null): Promise<ProcessRecord[]> {
  const dir = path.resolve(opts.dir);
  const bins = {
    pd: resolveBinary('pd', opts.cliDir, opts.env),
    node: resolveBinary('node', opts.cliDir, opts.env),
    router: resolveBinary('router', opts.cliDir, opts.env),
  };
  const prev = (role: Role, id: number) => previous?.processes.find((p) => p.role === role && p.id === id);
  const address = async (role: Role, id: number) => prev(role, id)?.address ?? `127.0.0.1:${await freePort()}`;
  const pdCount = previous ? previous.processes.filter((p) => p.role === 'pd').length || opts.pdCount : opts.pdCount;
  const nodeCount = previous ? previous.processes.filter((p) => p.role === 'node').length || opts.nodes : opts.nodes;
  const shards = previous?.shards ?? opts.shards;
  const replication = previous?.replication ?? opts.replication;

  const raftAddress = async (role: Role, id: number) => prev(role, id)?.raftAddress ?? `127.0.0.1:${await freePort()}`;

  const pds: ProcessRecord[] = [];
  for (let id = 1; id <= pdCount; id++) {
    pds.push({
      role: 'pd',
      id,
      address: await address('pd', id),
      raftAddress: await raftAddress('pd', id),
      pid: 0,
      log: '',
      binary: bins.pd,
      args: [],
    });
  }
  const pdList = pds.map((p) => p.address).join(',');
  const peers = pds.map((p) => `${p.id}=${p.raftAddress}`).join(',');
  for (const p of pds) {
    p.dataDir = path.join(dir, `pd-${p.id}`);
    p.log = path.join(dir, 'logs', `pd-${p.id}.log`);
    p.args = ['--id', String(p.id), '--listen', p.address, '--peers', peers, '--raft-listen', p.raftAddress!];
    p.args.push('--data-dir', p.dataDir, '--replication', String(replication), '--shards', String(shards));
    p.args.push('--leader-placement', opts.leaderPlacement ?? 'gather');
  }
  const nodes: ProcessRecord[] = [];
  for (let id = 1; id <= nodeCount; id++) {
    const addr = await address('node', id);
    const raft = await raftAddress('node', id);
    const dataDir = path.join(dir, `node-${id}`);
    nodes.push({
      role: 'node',
      id,
      address: addr,
      raftAddress: raft,
      pid: 0,
      dataDir,
      log: path.join(dir, 'logs', `node-${id}.log`),
      binary: bins.node,
      args: ['--node-id', String(id), '--listen', addr, '--advertise', addr, '--raft-listen', raft],
    });
    nodes[nodes.length - 1]!.args.push('--data-dir', dataDir, '--pd', pdList);
  }
  const routerAddr = await address('router', 1);
  const metricsPort = prev('router', 1)?.metricsPort ?? (await freePort());
  const router: ProcessRecord = {
    role: 'router',
    id: 1,
    address: routerAddr,
    metricsPort,
    pid: 0,
    log: path.join(dir, 'logs', 'router-1.log'),
    binary: bins.router,
    args: ['--listen', routerAddr, '--pd', pdList, '--metrics-port', String(metricsPort)],
  };
  return [...pds, ...nodes, router];
}

function label(p: ProcessRecord): string {
  return `${BINARIES[p.role].name} (${p.role}-${p.id}, ${p.address})`;
}

/**
 * LocalCluster runs PD replicas, storage nodes and a router as child processes on 127.0.0.1, all
 * data and logs under one directory, recorded in DIR/cluster.json.
 */
export class LocalCluster {
  private readonly children = new Map<ProcessRecord, ChildProcess>();
  /** How each exited child ended (`code 1`, `SIGKILL`). */
  private readonly exits = new Map<ProcessRecord, string>();
  private stopping = false;
  /** Set once the router answered; later exits are reported as they happen. */
  private ready = false;

  /** Launcher events (spawn, exit, stop) as pino JSON in DIR/logs/launcher.log. */
  private readonly log: pino.Logger;

  private constructor(
    readonly file: ClusterFile,
    private readonly say: (line: string) => void,
  ) {
    this.log = pino(
      { base: { component: 'launcher', dir: file.dir } },
      pino.destination({ dest: path.join(file.dir, 'logs', 'launcher.log'), sync: true }),
    );
  }

  get routerAddress(): string {
    return this.file.processes.find((p) => p.role === 'router')!.address;
  }

  get pdAddresses(): string {
    return this.file.processes
      .filter((p) => p.role === 'pd')
      .map((p) => p.address)
      .join(',');
  }

  /**
   * up starts every process (PDs first, then nodes, then the router) and waits until the router
   * answers a KV call. If any process exits or is missing first, everything started is stopped and
   * the error names the binary and shows the tail of its log.
   */
  static async up(opts: ClusterUpOptions): Promise<LocalCluster> {
    const dir = path.resolve(opts.dir);
    await mkdir(path.join(dir, 'logs'), { recursive: true });
    const previous = await readClusterFile(dir);
    const alive = previous?.processes.filter((p) => isRunning(p.pid, p.binary)) ?? [];
    if (alive.length > 0) {
      throw new OmniError(
        'CONFLICT',
        `a cluster is already running in ${dir} (${alive.map((p) => `${p.role}-${p.id} pid ${p.pid}`).join(', ')}); run "omnictl cluster down --dir ${opts.dir}" first`,
      );
    }
    const processes = await plan(opts, previous);
    for (const p of processes) {
      if (!existsSync(p.binary)) {
        throw new OmniError(
          'INTERNAL',
          `cannot start ${BINARIES[p.role].name}: ${p.binary} does not exist (build it with "pnpm build", or set ${BINARIES[p.role].env})`,
        );
      }
    }
    const file: ClusterFile = {
      version: 1,
      dir,
      shards: previous?.shards ?? opts.shards,
      replication: previous?.replication ?? opts.replication,
      startedAtMs: Date.now(),
      processes,
    };
    const cluster = new LocalCluster(file, opts.say);
    try {
      for (const p of processes) {
        if (p.dataDir) await mkdir(p.dataDir, { recursive: true });
        cluster.spawn(p, opts.env ?? process.env);
        await writeClusterFile(file);
      }
      opts.say(`started ${processes.length} processes; waiting for the router at ${cluster.routerAddress}`);
      await cluster.waitReady(opts.readyTimeoutMs);
      cluster.ready = true;
    } catch (err) {
      await cluster.stop(2000);
      throw err;
    }
    return cluster;
  }

  private spawn(p: ProcessRecord, env: NodeJS.ProcessEnv): void {
    const fd = openSync(p.log, 'a');
    try {
      // detached: children get their own process group, so a terminal's Ctrl-C reaches only omnictl,
      // which then stops them in order; with --detach they outlive it.
      const child = spawn(process.execPath, [p.binary, ...p.args], {
        stdio: ['ignore', fd, fd],
        detached: true,
        env: { ...env, OMNIDICT_LOG_LEVEL: env.OMNIDICT_LOG_LEVEL ?? 'info' },
      });
      if (child.pid === undefined) throw new OmniError('INTERNAL', `cannot start ${label(p)}: spawn failed`);
      p.pid = child.pid;
      this.children.set(p, child);
      this.log.info({ role: p.role, id: p.id, pid: p.pid, address: p.address, args: p.args }, 'started');
      child.on('exit', (code, signal) => {
        this.children.delete(p);
        this.exits.set(p, signal ?? `code ${code}`);
        this.log.info({ role: p.role, id: p.id, pid: p.pid, code, signal }, 'exited');
        if (!this.stopping && this.ready) {
          this.say(`${label(p)} exited (${signal ?? `code ${code}`}); log: ${p.log}`);
        }
      });
    } finally {
      closeSync(fd);
    }
  }

  /** Polls the router with `exists` until it answers; fails fast when a child dies. */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const client = new OmniClient({ routers: this.routerAddress, defaultTimeoutMs: 1000, maxRetries: 0 });
    try {
      let last: unknown = null;
      while (Date.now() < deadline) {
        const dead = this.file.processes.find((p) => !this.children.has(p));
        if (dead) {
          this.showTail(dead);
          throw new OmniError(
            'INTERNAL',
            `${label(dead)} exited during startup (${this.exits.get(dead) ?? 'unknown'}); see ${dead.log}`,
          );
        }
        try {
          await client.exists('omnictl:health');
          return;
        } catch (err) {
          last = err;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      const router = this.file.processes.find((p) => p.role === 'router')!;
      this.showTail(router);
      throw new OmniError(
        'TIMEOUT',
        `the router at ${router.address} did not answer within ${timeoutMs} ms (${last instanceof Error ? last.message : 'no answer'}); see ${router.log}`,
      );
    } finally {
      client.close();
    }
  }

  /** Shows the end of a process's log, indented, ahead of the one error line. */
  private showTail(p: ProcessRecord): void {
    const lines = tailFile(p.log).split('\n');
    this.say(`last lines of ${p.log}:\n${lines.map((l) => `  | ${l}`).join('\n')}`);
  }

  /** Lets omnictl exit while the children keep running (--detach). */
  detach(): void {
    for (const child of this.children.values()) child.unref();
  }

  /** Stops the router, then nodes, then PDs: SIGTERM, and SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.log.info({ graceMs }, 'stopping');
    await stopProcesses(this.file.processes, graceMs, this.say);
  }

  /** Resolves when every child has exited. */
  async exited(): Promise<void> {
    while (this.children.size > 0) await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * stopProcesses stops recorded processes in reverse start order (router, nodes, PDs): SIGTERM to
 * each live one, wait up to `graceMs`, then SIGKILL what is left. Used by `cluster up`'s Ctrl-C
 * handler and by `cluster down`.
 */
export async function stopProcesses(
  processes: ProcessRecord[],
  graceMs: number,
  say: (line: string) => void,
): Promise<number> {
  let stopped = 0;
  for (const role of ['router', 'node', 'pd'] as const) {
    const group = processes.filter((p) => p.role === role && isRunning(p.pid, p.binary));
    for (const p of group) signal(p.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (group.some((p) => isRunning(p.pid, p.binary)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const p of group) {
      if (isRunning(p.pid, p.binary)) {
        say(`${label(p)} did not stop within ${graceMs} ms; killing pid ${p.pid}`);
        signal(p.pid, 'SIGKILL');
      }
      stopped++;
    }
  }
  return stopped;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** `cluster down`: stops what DIR/cluster.json lists. Returns how many processes were running. */
export async function clusterDown(dir: string, graceMs: number, say: (line: string) => void): Promise<number> {
  const file = await readClusterFile(path.resolve(dir));
  if (!file)
    throw new OmniError('NOT_FOUND', `no cluster in ${dir} (${clusterFilePath(path.resolve(dir))} does not exist)`);
  return stopProcesses(file.processes, graceMs, say);
}
