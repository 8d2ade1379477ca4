import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { freePort } from '@omnidict/cli';
import { repoRoot } from './binaries.js';
import type { Container, Resource } from './kustomize.js';
import { ADDRESS_RE, expand, type Pod, resolveEnv, Topology } from './topology.js';

/**
 * localFromManifests boots the processes a rendered overlay describes on this machine, with exactly
 * the environment and command the kubelet would give each container, so the manifests' own
 * configuration is what forms the cluster. The only rewrites, applied consistently everywhere:
 *
 * - every `host:port` in an env value that leads to a pod's container port (per {@link Topology}:
 *   per-pod DNS names under headless Services, Service names, the pod IP, `0.0.0.0`) becomes
 *   `127.0.0.1:<free port>`, one free port per (pod, container port);
 * - an env value equal to one of the container's ports (OMNIDICT_METRICS_PORT) becomes its free port;
 * - paths under a volume mount move under `<dir>/<pod>/<volume>`.
 *
 * Commands run as written (after $(VAR) expansion) with deploy/docker/bin first on PATH, the same
 * launchers the image puts in /usr/local/bin, and OMNIDICT_HOME pointing at this checkout; or, with
 * `image`, with that image's environment and working directory (an image tree assembled elsewhere).
 */
export interface LocalClusterOptions {
  resources: Resource[];
  /** Scratch directory for volumes and logs. */
  dir: string;
  root?: string;
  /**
   * The image the containers run, instead of this checkout: its environment (PATH with the
   * launchers, NODE_ENV, OMNIDICT_HOME, ...) and its working directory. The manifest's env wins.
   */
  image?: { env: Record<string, string>; workdir: string };
  /** Time to wait for every readiness probe to pass. */
  readyTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface LocalProcess {
  pod: Pod;
  container: Container;
  /** argv as spawned. */
  argv: string[];
  /** The environment from the manifest, after rewriting (not including PATH/HOME). */
  env: Record<string, string>;
  logFile: string;
  child: ChildProcess;
  exit: string | undefined;
}

export class LocalCluster {
  private stopped = false;

  private constructor(
    readonly topology: Topology,
    readonly processes: LocalProcess[],
    private readonly ports: Map<string, number>,
  ) {}

  /** The local address a manifest address (as dialled from inside the cluster) maps to. */
  address(host: string, port: number): string {
    const from = this.topology.pods[0]!;
    const r = this.topology.resolve(from, host, port);
    if (typeof r === 'string') throw new Error(r);
    return `127.0.0.1:${this.ports.get(`${r.pod.name}:${r.containerPort}`)}`;
  }

  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const root = opts.root ?? repoRoot();
    const say = opts.log ?? (() => {});
    const topology = new Topology(opts.resources);
    const ports = new Map<string, number>();
    for (const pod of topology.pods) {
      for (const c of pod.containers) {
        for (const p of c.ports ?? []) ports.set(`${pod.name}:${p.containerPort}`, await freePort());
      }
    }
    mkdirSync(path.join(opts.dir, 'logs'), { recursive: true });
    const plans: Omit<LocalProcess, 'child' | 'exit'>[] = [];
    for (const pod of topology.pods) {
      for (const c of pod.containers) plans.push(plan(topology, ports, pod, c, opts.dir));
    }
    const cluster = new LocalCluster(topology, [], ports);
    try {
      for (const p of plans) {
        const fd = openSync(p.logFile, 'a');
        const child = spawn(p.argv[0]!, p.argv.slice(1), {
          stdio: ['ignore', fd, fd],
          ...(opts.image ? { cwd: opts.image.workdir } : {}),
          env: {
            ...(opts.image?.env ?? {
              PATH: `${path.join(root, 'deploy', 'docker', 'bin')}${path.delimiter}${process.env.PATH ?? ''}`,
              NODE_ENV: 'production',
              OMNIDICT_HOME: root,
            }),
            HOME: path.join(opts.dir, p.pod.name),
            HOSTNAME: p.pod.name,
            ...p.env,
          },
        });
        closeSync(fd);
        const lp: LocalProcess = { ...p, child, exit: undefined };
        child.on('exit', (code, signal) => {
          lp.exit = signal ?? `code ${code}`;
        });
        cluster.processes.push(lp);
        say(`started ${p.pod.name}/${p.container.name}: ${p.argv.join(' ')} (log ${p.logFile})`);
      }
      await cluster.waitReady(opts.readyTimeoutMs ?? 60_000);
    } catch (err) {
      await cluster.stop(2000);
      throw err;
    }
    return cluster;
  }

  /** Polls every container's gRPC readiness probe until all answer SERVING, as the kubelet would. */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set(this.processes.filter((p) => p.container.readinessProbe?.grpc));
    while (pending.size > 0) {
      for (const p of pending) {
        if (p.exit !== undefined) {
          throw new Error(
            `${p.pod.name}/${p.container.name} exited (${p.exit}) before it was ready:\n${tail(p.logFile)}`,
          );
        }
        const port = this.ports.get(`${p.pod.name}:${p.container.readinessProbe!.grpc!.port}`);
        if ((await grpcHealth(`127.0.0.1:${port}`, 1000)) === 'SERVING') pending.delete(p);
      }
      if (pending.size === 0) return;
      if (Date.now() > deadline) {
        const names = [...pending].map((p) => p.pod.name);
        throw new Error(`not ready within ${timeoutMs} ms: ${names.join(', ')}\n${tail([...pending][0]!.logFile)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * stop sends SIGTERM to every process (routers, then nodes, then PDs: the reverse of the data
   * path), waits up to each pod's terminationGracePeriodSeconds (at most `graceMs`), then SIGKILLs
   * whatever is left. Resolves when every process has exited.
   */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const rank = (p: LocalProcess) => {
      const component = p.pod.labels['app.kubernetes.io/component'];
      return component === 'router' ? 0 : component === 'placement-driver' ? 2 : 1;
    };
    const groups = [0, 1, 2].map((r) => this.processes.filter((p) => rank(p) === r));
    for (const group of groups) {
      const live = group.filter((p) => p.exit === undefined);
      for (const p of live) p.child.kill('SIGTERM');
      const deadline = Date.now() + graceMs;
      while (live.some((p) => p.exit === undefined) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const p of live) if (p.exit === undefined) p.child.kill('SIGKILL');
      while (live.some((p) => p.exit === undefined)) await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function plan(
  topology: Topology,
  ports: Map<string, number>,
  pod: Pod,
  c: Container,
  dir: string,
): Omit<LocalProcess, 'child' | 'exit'> {
  const resolved = resolveEnv(topology, pod, c);
  if (resolved.problems.length > 0) throw new Error(`${pod.name}/${c.name}: ${resolved.problems.join('; ')}`);
  const mounts = (c.volumeMounts ?? []).map((m) => ({
    from: m.mountPath.replace(/\/$/, ''),
    to: path.join(dir, pod.name, m.name),
  }));
  const ownPorts = new Set((c.ports ?? []).map((p) => p.containerPort));
  const rewrite = (value: string): string => {
    if (/^\d+$/.test(value) && ownPorts.has(Number(value))) return String(ports.get(`${pod.name}:${value}`));
    for (const m of mounts) {
      if (value === m.from || value.startsWith(`${m.from}/`)) {
        mkdirSync(m.to, { recursive: true });
        return m.to + value.slice(m.from.length);
      }
    }
    return value.replace(ADDRESS_RE, (_whole, host: string, port: string) => {
      const r = topology.resolve(pod, host, Number(port));
      if (typeof r === 'string') throw new Error(`${pod.name}/${c.name}: ${r}`);
      return `127.0.0.1:${ports.get(`${r.pod.name}:${r.containerPort}`)}`;
    });
  };
  const env: Record<string, string> = {};
  for (const [k, v] of resolved.vars) env[k] = rewrite(v);
  // The kubelet expands $(VAR) in command and args with the container's (unrewritten) variables.
  const vars = new Map(resolved.vars);
  const argv = [...(c.command ?? []), ...(c.args ?? [])].map((s) => expand(s, vars));
  if (argv.length === 0) throw new Error(`${pod.name}/${c.name}: no command (the image's CMD is --help)`);
  return { pod, container: c, argv, env, logFile: path.join(dir, 'logs', `${pod.name}-${c.name}.log`) };
}

/** Health status of the overall server (`service: ''`), or 'UNREACHABLE'. */
export function grpcHealth(address: string, timeoutMs: number): Promise<string> {
  const statuses = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve) => {
    // HealthCheckRequest{service: ''} encodes as zero bytes; the answer is field 1, a varint.
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        client.close();
        if (err || !res) resolve('UNREACHABLE');
        else resolve(statuses[res[0] === 0x08 ? (res[1] ?? 0) : 0] ?? 'UNKNOWN');
      },
    );
  });
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
