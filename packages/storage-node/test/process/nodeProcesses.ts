import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type PdHandle, startPd } from '@omnidict/placement';
import { nodepb, type pdpb } from '@omnidict/proto';
import { TestPdClient } from '../cluster/pdCluster.js';
import { sleep, unary } from '../cluster/testCluster.js';

/** The BUILT node binary: `pnpm test` (and the verify command) run `tsc -b` before jest. */
export const NODE_MAIN = join(__dirname, '..', '..', 'dist', 'main.js');

export function requireBuiltNode(): void {
  if (!existsSync(NODE_MAIN)) {
    throw new Error(
      `${NODE_MAIN} is missing: these tests spawn the built omnidict-node. Run \`npx tsc -b\` at the repo root ` +
        '(or `pnpm test` in packages/storage-node, which builds first).',
    );
  }
}

/** A free TCP port on 127.0.0.1 (bound then released), so a restart can reuse the same args. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface NodeProcess {
  readonly nodeId: number;
  readonly args: string[];
  readonly address: string;
  readonly dir: string;
  child: ChildProcess;
  /** Parsed pino lines from stdout. */
  readonly logs: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * ProcessCluster: one PD replica in this process (startPd) and storage nodes as REAL child processes
 * of `dist/main.js`. Everything it starts, `close()` stops (SIGKILL for nodes still running).
 */
export class ProcessCluster {
  readonly nodes = new Map<number, NodeProcess>();
  readonly pdClient = new TestPdClient([]);
  readonly #admins = new Map<number, nodepb.NodeAdminClient>();
  readonly #dirs: string[] = [];
  pd!: PdHandle;

  static async start(nodeCount: number, shards: number): Promise<ProcessCluster> {
    requireBuiltNode();
    const c = new ProcessCluster();
    c.pd = await startPd({
      id: 1,
      listen: '127.0.0.1:0',
      peers: new Map([[1, '127.0.0.1:0']]),
      raftListen: '127.0.0.1:0',
      tickMs: 20,
      scheduleIntervalMs: 100,
      replicationFactor: 3,
      initialShards: shards,
      downTimeoutMs: 60_000,
      scheduler: { replaceDownAfterMs: 600_000, maxOperators: 4 },
      operators: { retryMs: 200 },
    });
    c.pdClient.addresses = [c.pd.address];
    for (let id = 1; id <= nodeCount; id++) await c.spawnNode(id);
    return c;
  }

  async spawnNode(nodeId: number): Promise<NodeProcess> {
    const dir = mkdtempSync(join(tmpdir(), `omnidict-proc${nodeId}-`));
    this.#dirs.push(dir);
    const [port, raftPort] = [await freePort(), await freePort()];
    const args = [
      NODE_MAIN,
      '--node-id',
      String(nodeId),
      '--listen',
      `127.0.0.1:${port}`,
      '--raft-listen',
      `127.0.0.1:${raftPort}`,
      '--data-dir',
      dir,
      '--pd',
      this.pd.address,
      '--pd-heartbeat-ms',
      '200',
      '--log-level',
      'info',
    ];
    const n: NodeProcess = {
      nodeId,
      args,
      address: `127.0.0.1:${port}`,
      dir,
      logs: [],
      child: undefined as unknown as ChildProcess,
      exited: Promise.resolve({ code: null, signal: null }),
    };
    this.#launch(n);
    this.nodes.set(nodeId, n);
    return n;
  }

  #launch(n: NodeProcess): void {
    const child = spawn(process.execPath, n.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          n.logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a pino line
        }
      }
    });
    child.stderr?.on('data', () => {});
    n.child = child;
    n.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Starts a stopped node again with exactly the same arguments (same data dir and ports). */
  restart(nodeId: number): NodeProcess {
    const n = this.node(nodeId);
    this.#admins.get(nodeId)?.close();
    this.#admins.delete(nodeId);
    n.logs.length = 0;
    this.#launch(n);
    return n;
  }

  node(nodeId: number): NodeProcess {
    const n = this.nodes.get(nodeId);
    if (n === undefined) throw new Error(`no node ${nodeId}`);
    return n;
  }

  admin(nodeId: number): nodepb.NodeAdminClient {
    let a = this.#admins.get(nodeId);
    if (a === undefined) {
      a = new nodepb.NodeAdminClient(this.node(nodeId).address, grpc.credentials.createInsecure());
      this.#admins.set(nodeId, a);
    }
    return a;
  }

  /** ListShards of one node, or undefined when it does not answer within 2 s. */
  async listShards(nodeId: number): Promise<nodepb.ListShardsResponse | undefined> {
    const deadline = new Date(Date.now() + 2000);
    return unary<nodepb.ListShardsResponse>((cb) =>
      this.admin(nodeId).listShards({}, new grpc.Metadata(), { deadline }, cb),
    ).catch(() => undefined);
  }

  shardMap(): Promise<pdpb.ShardMap> {
    return this.pdClient.call<pdpb.ShardMap>((c, cb) => c.getShardMap({}, cb));
  }

  /** Waits for PD's shard map to hold `shards` shards, each with `replicas` replicas and a leader. */
  async waitForMap(shards: number, replicas: number, timeoutMs = 30_000): Promise<pdpb.ShardMap> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const map = await this.shardMap().catch(() => undefined);
      if (
        map !== undefined &&
        map.routes.length === shards &&
        map.routes.every((r) => r.leaderNodeId !== 0 && r.shard?.replicas.length === replicas)
      ) {
        return map;
      }
      if (Date.now() > end) throw new Error(`shard map not ready: ${JSON.stringify(map?.routes.length)}`);
      await sleep(100);
    }
  }

  async close(): Promise<void> {
    this.pdClient.close();
    for (const a of this.#admins.values()) a.close();
    for (const n of this.nodes.values()) {
      if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
      await n.exited;
    }
    await this.pd.close();
    for (const d of this.#dirs) rmSync(d, { recursive: true, force: true });
  }
}
