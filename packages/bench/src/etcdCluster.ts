import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { isAlive, run, sleep, stopPids } from './processes.js';

/** One etcd member on 127.0.0.1. */
export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
}

export interface EtcdClusterPlan {
  members: EtcdMember[];
  /** Each member's data lives in `dataRoot/<name>`. */
  dataRoot: string;
  /** `--initial-cluster-token`: distinct per run so members of another run are never joined. */
  token: string;
}

const HOST = '127.0.0.1';

export function clientUrl(m: EtcdMember): string {
  return `http://${HOST}:${m.clientPort}`;
}

export function peerUrl(m: EtcdMember): string {
  return `http://${HOST}:${m.peerPort}`;
}

/**
 * etcdMemberArgs is the command line of one member of a fresh static cluster (etcd's "static"
 * bootstrap: every member is given the whole `--initial-cluster`). Everything listens on 127.0.0.1
 * only. Logging is zap at warn level, so the log files hold only what matters. Durability settings
 * are etcd's defaults (fsync per batch), as OmniDict's are.
 */
export function etcdMemberArgs(plan: EtcdClusterPlan, member: EtcdMember): string[] {
  if (!plan.members.some((m) => m.name === member.name)) {
    throw new Error(`member ${member.name} is not part of the plan`);
  }
  return [
    '--name',
    member.name,
    '--data-dir',
    path.join(plan.dataRoot, member.name),
    '--listen-client-urls',
    clientUrl(member),
    '--advertise-client-urls',
    clientUrl(member),
    '--listen-peer-urls',
    peerUrl(member),
    '--initial-advertise-peer-urls',
    peerUrl(member),
    '--initial-cluster',
    plan.members.map((m) => `${m.name}=${peerUrl(m)}`).join(','),
    '--initial-cluster-token',
    plan.token,
    '--initial-cluster-state',
    'new',
    '--logger',
    'zap',
    '--log-level',
    'warn',
  ];
}

/** etcd 3.4 refuses to start on arm64 unless told this (it is supported from 3.5). */
export function etcdEnv(env: NodeJS.ProcessEnv = process.env, arch: string = process.arch): NodeJS.ProcessEnv {
  return arch === 'arm64' ? { ...env, ETCD_UNSUPPORTED_ARCH: 'arm64' } : env;
}

/** The first executable `name` on PATH (or in the sbin directories), or null. */
export function which(name: string, envPath: string = process.env.PATH ?? ''): string | null {
  const dirs = [...envPath.split(path.delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * ensureEtcd returns the etcd binary: `explicit` if given, else `etcd` on PATH, else it installs
 * Debian's etcd-server with apt-get (through sudo when not root), running `apt-get update` first
 * when the plain install fails (an image without package lists). Every command is printed.
 */
export async function ensureEtcd(
  say: (line: string) => void,
  opts: { explicit?: string; install: boolean },
): Promise<string> {
  if (opts.explicit) return opts.explicit;
  const found = which('etcd');
  if (found) return found;
  if (!opts.install) throw new Error('etcd is not installed (and --no-install was given); install etcd-server');
  if (!which('apt-get')) throw new Error('etcd is not installed and there is no apt-get to install it with');
  const root = process.getuid?.() === 0;
  if (!root && !which('sudo')) throw new Error('etcd is not installed; installing it needs root (or sudo)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = async (args: string[]) => {
    const [cmd, argv] = root ? ['apt-get', args] : ['sudo', ['apt-get', ...args]];
    say(`etcd is not installed; running: ${cmd} ${argv.join(' ')}`);
    await run(cmd, argv, { env, say: (l) => say(`  apt | ${l}`) });
  };
  try {
    await apt(['install', '-y', '--no-install-recommends', 'etcd-server']);
  } catch (err) {
    say(`install failed (${(err as Error).message.split('\n')[0]}); refreshing the package lists first`);
    await apt(['update']);
    await apt(['install', '-y', '--no-install-recommends', 'etcd-server']);
  }
  const installed = which('etcd');
  if (!installed) throw new Error('apt-get installed etcd-server but no etcd binary is on PATH');
  say(`installed ${installed}`);
  return installed;
}

/** A running etcd cluster started by `EtcdCluster.start`. */
export class EtcdCluster {
  private readonly children = new Map<string, ChildProcess>();
  private readonly exits = new Map<string, string>();

  private constructor(
    readonly plan: EtcdClusterPlan,
    readonly binary: string,
  ) {}

  get endpoints(): string[] {
    return this.plan.members.map(clientUrl);
  }

  get pids(): number[] {
    return [...this.children.values()].map((c) => c.pid ?? 0).filter((p) => p > 0);
  }

  logOf(name: string): string {
    return path.join(this.plan.dataRoot, `${name}.log`);
  }

  /**
   * start launches every member and resolves once a linearizable read through the client library
   * succeeds (a leader is elected and a quorum answers). On failure it stops what it started and
   * the error shows the end of the failed member's log. `onStarted` is called as soon as the
   * processes exist, so the caller can register them for cleanup before the wait.
   */
  static async start(
    plan: EtcdClusterPlan,
    binary: string,
    opts: { readyTimeoutMs?: number; onStarted?: (c: EtcdCluster) => void } = {},
  ): Promise<EtcdCluster> {
    const cluster = new EtcdCluster(plan, binary);
    await mkdir(plan.dataRoot, { recursive: true });
    for (const m of plan.members) cluster.spawnMember(m);
    opts.onStarted?.(cluster);
    try {
      await cluster.waitReady(opts.readyTimeoutMs ?? 30_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private spawnMember(m: EtcdMember): void {
    const fd = openSync(this.logOf(m.name), 'a');
    try {
      const child = spawn(this.binary, etcdMemberArgs(this.plan, m), { stdio: ['ignore', fd, fd], env: etcdEnv() });
      child.on('error', (err) => this.exits.set(m.name, err.message));
      child.on('exit', (code, signal) => {
        this.exits.set(m.name, signal ?? `code ${code}`);
        this.children.delete(m.name);
      });
      this.children.set(m.name, child);
    } finally {
      closeSync(fd);
    }
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const client = new Etcd3({ hosts: this.endpoints, dialTimeout: 1000 });
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    try {
      while (Date.now() < deadline) {
        const dead = [...this.exits][0];
        if (dead) {
          const [name, how] = dead;
          throw new Error(
            `etcd member ${name} exited during startup (${how}); ${this.logOf(name)}:\n${readTail(this.logOf(name))}`,
          );
        }
        try {
          await client
            .get('bench:health')
            .options({ deadline: new Date(Date.now() + 1000) })
            .string();
          return;
        } catch (err) {
          last = (err as Error).message;
        }
        await sleep(200);
      }
    } finally {
      client.close();
    }
    throw new Error(`etcd did not answer within ${timeoutMs} ms (${last}); logs in ${this.plan.dataRoot}`);
  }

  /** SIGTERM every member, SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    await stopPids(this.pids, graceMs);
  }

  /** Synchronous last resort. */
  kill(): void {
    for (const pid of this.pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}

function readTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
