import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// A handle on a local cluster started by the omnictl launcher (`cluster up --dir DIR --detach`).
// The launcher writes DIR/cluster.json; this module reads it to find each process, and kills,
// pauses and restarts processes itself. A restarted process gets the same binary and arguments (so
// the same id, ports and data directory) and its new pid is written back to cluster.json, so that
// `cluster down --dir DIR` still stops everything.

export type ProcessRole = 'pd' | 'node' | 'router';

/** One entry of DIR/cluster.json's `processes`, as the launcher writes it. */
export interface ClusterProcess {
  role: ProcessRole;
  id: number;
  address: string;
  raftAddress?: string;
  pid: number;
  log: string;
  binary: string;
  args: string[];
}

interface ClusterFile {
  processes: ClusterProcess[];
  [field: string]: unknown;
}

export interface ClusterLayout {
  nodes: number;
  pds: number;
  shards: number;
}

export class LocalCluster {
  private readonly file: ClusterFile;

  private constructor(
    readonly dir: string,
    private readonly cliMain: string,
  ) {
    this.file = JSON.parse(readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as ClusterFile;
  }

  /** Runs `omnictl cluster up --dir DIR --detach`; rejects with the launcher's output if it fails. */
  static async up(cliMain: string, dir: string, layout: ClusterLayout): Promise<LocalCluster> {
    const args = [
      cliMain,
      'cluster',
      'up',
      '--dir',
      dir,
      '--detach',
      '--nodes',
      String(layout.nodes),
      '--pd-count',
      String(layout.pds),
      '--shards',
      String(layout.shards),
    ];
    await runNode(args, 120_000);
    return new LocalCluster(dir, cliMain);
  }

  processes(role?: ProcessRole): ClusterProcess[] {
    return this.file.processes.filter((p) => role === undefined || p.role === role);
  }

  routerAddresses(): string[] {
    return this.processes('router').map((p) => p.address);
  }

  pdAddresses(): string[] {
    return this.processes('pd').map((p) => p.address);
  }

  signal(p: ClusterProcess, signal: NodeJS.Signals): void {
    try {
      process.kill(p.pid, signal);
    } catch (err) {
      // Already gone (e.g. it crashed by itself); the caller's restart brings it back.
      console.error(`chaos: ${signal} to ${p.role}-${p.id} (pid ${p.pid}) failed: ${(err as Error).message}`);
    }
  }

  /** kill -9, then wait until the pid is gone. */
  async kill9(p: ClusterProcess): Promise<void> {
    this.signal(p, 'SIGKILL');
    for (let i = 0; i < 100 && isAlive(p.pid); i++) await sleep(20);
  }

  /** Starts the process again with the same command line; appends to the same log. */
  restart(p: ClusterProcess): void {
    const fd = openSync(p.log, 'a');
    try {
      const child = spawn(process.execPath, [p.binary, ...p.args], {
        stdio: ['ignore', fd, fd],
        detached: true,
        env: { ...process.env, OMNIDICT_LOG_LEVEL: process.env.OMNIDICT_LOG_LEVEL ?? 'info' },
      });
      if (child.pid === undefined) throw new Error(`cannot restart ${p.role}-${p.id}`);
      child.unref();
      p.pid = child.pid;
      writeFileSync(path.join(this.dir, 'cluster.json'), `${JSON.stringify(this.file, null, 2)}\n`);
    } finally {
      closeSync(fd);
    }
  }

  /** Runs `omnictl cluster down --dir DIR`. */
  async down(): Promise<void> {
    for (const p of this.processes()) this.signal(p, 'SIGCONT');
    await runNode([this.cliMain, 'cluster', 'down', '--dir', this.dir], 60_000);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function runNode(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`node ${args.slice(1).join(' ')} exited with ${signal ?? code}:\n${output}`));
    });
  });
}
