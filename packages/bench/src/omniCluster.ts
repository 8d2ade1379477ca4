import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LeaderPlacement } from '@omnidict/cli';
import { isAlive, run, stopPids } from './processes.js';

/** The parts of DIR/cluster.json (written by `omnictl cluster up`) the benchmark reads. */
export interface OmniClusterFile {
  shards: number;
  processes: { role: 'pd' | 'node' | 'router'; id: number; address: string; pid: number; log: string }[];
}

/**
 * The `omnictl cluster up` command line (after the node binary) for a benchmark cluster; without
 * `leaderPlacement`, the launcher's default.
 */
export function clusterUpArgs(
  cliMain: string,
  dir: string,
  shards: number,
  leaderPlacement?: LeaderPlacement,
): string[] {
  return [
    cliMain,
    'cluster',
    'up',
    '--dir',
    dir,
    '--detach',
    '--shards',
    String(shards),
    ...(leaderPlacement === undefined ? [] : ['--leader-placement', leaderPlacement]),
    '--ready-timeout',
    '120s',
  ];
}

/**
 * OmniCluster is a local OmniDict cluster (3 PD, 3 nodes, 1 router) started through the launcher,
 * `omnictl cluster up --detach`, and stopped with `omnictl cluster down`, so the benchmark measures
 * exactly what users start.
 */
export class OmniCluster {
  private constructor(
    readonly dir: string,
    private readonly cliMain: string,
    readonly file: OmniClusterFile,
  ) {}

  /**
   * up starts the cluster and waits until the router answers (the launcher does the waiting).
   * `onSpawning` is called before the launcher runs so the caller can register the directory for
   * cleanup: the launcher writes each pid to cluster.json as it starts it.
   */
  static async up(
    cliMain: string,
    dir: string,
    shards: number,
    say: (line: string) => void,
    onSpawning?: (dir: string) => void,
    leaderPlacement?: LeaderPlacement,
  ): Promise<OmniCluster> {
    onSpawning?.(dir);
    await run(process.execPath, clusterUpArgs(cliMain, dir, shards, leaderPlacement), {
      say: (l) => say(`  omnictl | ${l}`),
    });
    return new OmniCluster(dir, cliMain, readClusterFile(dir)!);
  }

  get routerAddress(): string {
    return this.file.processes.find((p) => p.role === 'router')!.address;
  }

  get pdAddresses(): string[] {
    return this.file.processes.filter((p) => p.role === 'pd').map((p) => p.address);
  }

  pids(role?: 'pd' | 'node' | 'router'): number[] {
    return this.file.processes.filter((p) => role === undefined || p.role === role).map((p) => p.pid);
  }

  /** `omnictl cluster down --dir DIR`; SIGKILLs any process it left behind. */
  async down(): Promise<void> {
    await downDir(this.cliMain, this.dir);
  }
}

export function readClusterFile(dir: string): OmniClusterFile | null {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as OmniClusterFile;
  } catch {
    return null;
  }
}

/** Stops whatever DIR/cluster.json lists: the launcher's `cluster down`, then SIGKILL leftovers. */
export async function downDir(cliMain: string, dir: string): Promise<void> {
  const file = readClusterFile(dir);
  if (!file) return;
  try {
    await run(process.execPath, [cliMain, 'cluster', 'down', '--dir', dir, '--grace', '5s'], { timeoutMs: 60_000 });
  } finally {
    await stopPids(file.processes.map((p) => p.pid).filter(isAlive), 1000);
  }
}

/** Synchronous last resort: SIGKILL every live pid DIR/cluster.json lists. */
export function killDir(dir: string): void {
  for (const p of readClusterFile(dir)?.processes ?? []) if (isAlive(p.pid)) process.kill(p.pid, 'SIGKILL');
}
