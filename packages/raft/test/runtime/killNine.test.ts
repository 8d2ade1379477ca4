import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prng } from './cluster.js';

/*
 * Real kill -9: each host runs in a child `node` process (fixtures/killableHost.mjs, which imports the
 * BUILT runtime from dist/ — `pnpm test` builds before jest) on a real classic-level directory. The
 * parent counts a proposal as acknowledged only when the child reported that `propose` resolved,
 * sends SIGKILL in the middle of the load, restarts the process and checks every acknowledged
 * command is there after recovery.
 */
const FIXTURE = join(__dirname, 'fixtures', 'killableHost.mjs');
const DIST = join(__dirname, '..', '..', 'dist', 'runtime', 'index.js');
const TICK_MS = 20;

interface Reply {
  readonly type: string;
  readonly id?: number;
  readonly index?: number;
  readonly code?: string;
  readonly role?: string;
  readonly appliedIndex?: number;
  readonly commitIndex?: number;
  readonly commands?: string[];
}

/** Parent side of one host process. */
class HostProcess {
  readonly nodeId: number;
  child: ChildProcess | undefined;
  #seq = 0;
  readonly #pending = new Map<number, (r: Reply) => void>();
  #stderr = '';

  constructor(nodeId: number) {
    this.nodeId = nodeId;
  }

  async start(args: object): Promise<void> {
    const child = fork(FIXTURE, [JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child = child;
    child.stderr?.on('data', (d: Buffer) => {
      this.#stderr += d.toString();
    });
    const ready = new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`host ${this.nodeId} exited (${code}): ${this.#stderr}`)));
      child.on('message', (m: Reply) => {
        if (m.type === 'ready') resolve();
      });
    });
    child.on('message', (m: Reply) => {
      if (m.id === undefined) return;
      const cb = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      cb?.(m);
    });
    child.once('exit', () => {
      // Everything outstanding on a dead process is unacknowledged.
      for (const cb of this.#pending.values()) cb({ type: 'nack', code: 'KILLED' });
      this.#pending.clear();
    });
    await ready;
  }

  request(msg: { type: string; cmd?: string }): Promise<Reply> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null || !child.connected) {
      return Promise.resolve({ type: 'nack', code: 'KILLED' });
    }
    const id = ++this.#seq;
    return new Promise<Reply>((resolve) => {
      this.#pending.set(id, resolve);
      child.send({ ...msg, id }, (err) => {
        if (err !== null && this.#pending.delete(id)) resolve({ type: 'nack', code: 'KILLED' });
      });
    });
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitUntil<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kill -9 of real host processes (classic-level, gRPC)', () => {
  const procs: HostProcess[] = [];
  let dir: string;

  beforeAll(() => {
    if (!existsSync(DIST)) {
      throw new Error(
        `${DIST} is missing: build the raft package first (pnpm test builds; or npx tsc -b packages/raft)`,
      );
    }
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'omnidict-kill9-'));
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.kill9();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Keeps `concurrency` proposals in flight against `target()` until `stop()` is true; records acks. */
  function runLoad(
    target: () => HostProcess | undefined,
    acked: Set<string>,
    prefix: string,
    concurrency: number,
  ): { stop(): Promise<void> } {
    let stopped = false;
    let seq = 0;
    const worker = async (): Promise<void> => {
      while (!stopped) {
        const p = target();
        if (p === undefined) {
          await sleep(10);
          continue;
        }
        const cmd = `${prefix}-${seq++}`;
        const r = await p.request({ type: 'propose', cmd });
        if (r.type === 'ack') acked.add(cmd);
        else await sleep(5);
      }
    };
    const workers = Array.from({ length: concurrency }, () => worker());
    return {
      stop: async () => {
        stopped = true;
        await Promise.all(workers);
      },
    };
  }

  async function commandsOf(p: HostProcess): Promise<string[]> {
    const r = await p.request({ type: 'commands' });
    if (r.commands === undefined) throw new Error(`host ${p.nodeId}: no commands reply (${r.code})`);
    return r.commands;
  }

  test('single host: every acknowledged proposal survives SIGKILL mid-load, three times', async () => {
    const seed = 4242;
    const rng = prng(seed);
    const port = await freePort();
    const args = { nodeId: 1, dir: join(dir, 'n1'), port, peers: {}, groupId: 7, members: [1], tickMs: TICK_MS };
    const p = new HostProcess(1);
    procs.push(p);
    const acked = new Set<string>();
    for (let round = 0; round < 3; round++) {
      await p.start(args);
      await waitUntil(
        async () => ((await p.request({ type: 'status' })).role === 'leader' ? true : undefined),
        10_000,
        'single host leads',
      );
      const before = acked.size;
      const load = runLoad(() => p, acked, `r${round}`, 32);
      // Kill after some acknowledgements plus a random 0-30 ms, so some proposals are still in flight.
      await waitUntil(async () => (acked.size >= before + 20 ? true : undefined), 10_000, 'first acks');
      await sleep(Math.floor(rng() * 30));
      await p.kill9();
      await load.stop();
    }
    await p.start(args);
    // Recovery first: entries committed before the kill whose apply batch it lost are applied again
    // by the restarted leader; reading before that would report them missing.
    await waitUntil(
      async () => {
        const st = await p.request({ type: 'status' });
        return st.role === 'leader' && (st.appliedIndex ?? 0) >= (st.commitIndex ?? 1) ? true : undefined;
      },
      10_000,
      'the restarted host leads and has applied its log',
    );
    const applied = await commandsOf(p);
    const missing = [...acked].filter((c) => !applied.includes(c));
    expect({ seed, missing }).toEqual({ seed, missing: [] });
    expect(new Set(applied).size).toBe(applied.length);
    expect(acked.size).toBeGreaterThanOrEqual(60);
    await p.stop();
  });

  test('three hosts: SIGKILL of the leader process loses no acknowledged proposal', async () => {
    const seed = 777;
    const rng = prng(seed);
    const nodes = [1, 2, 3];
    const ports = new Map<number, number>();
    for (const n of nodes) ports.set(n, await freePort());
    const argsFor = (n: number) => ({
      nodeId: n,
      dir: join(dir, `n${n}`),
      port: ports.get(n),
      peers: Object.fromEntries(nodes.filter((m) => m !== n).map((m) => [m, ports.get(m)])),
      groupId: 9,
      members: nodes,
      tickMs: TICK_MS,
    });
    const byNode = new Map<number, HostProcess>();
    for (const n of nodes) {
      const p = new HostProcess(n);
      byNode.set(n, p);
      procs.push(p);
    }
    await Promise.all(nodes.map((n) => byNode.get(n)?.start(argsFor(n))));
    const findLeader = async (): Promise<HostProcess | undefined> => {
      for (const p of byNode.values()) if ((await p.request({ type: 'status' })).role === 'leader') return p;
      return undefined;
    };
    let leader: HostProcess | undefined = await waitUntil(findLeader, 15_000, 'a leader');
    const acked = new Set<string>();
    const load = runLoad(() => leader, acked, 'load', 32);
    for (let round = 0; round < 2; round++) {
      const before = acked.size;
      await waitUntil(async () => (acked.size >= before + 30 ? true : undefined), 15_000, `acks in round ${round}`);
      await sleep(Math.floor(rng() * 30));
      const victim = leader as HostProcess;
      leader = undefined;
      await victim.kill9();
      // The survivors elect a leader and the load moves there; then the victim comes back.
      leader = await waitUntil(findLeader, 15_000, 'a new leader');
      const afterFailover = acked.size;
      await waitUntil(async () => (acked.size >= afterFailover + 10 ? true : undefined), 15_000, 'acks after failover');
      await victim.start(argsFor(victim.nodeId));
    }
    await load.stop();
    // A final write through the current leader, then every replica must have all acknowledged commands.
    const final = await waitUntil(
      async () => {
        const l = await findLeader();
        if (l === undefined) return undefined;
        const r = await l.request({ type: 'propose', cmd: 'final' });
        return r.type === 'ack' ? (r.index as number) : undefined;
      },
      15_000,
      'final proposal',
    );
    for (const p of byNode.values()) {
      await waitUntil(
        async () => (((await p.request({ type: 'status' })).appliedIndex ?? 0) >= final ? true : undefined),
        15_000,
        `host ${p.nodeId} applies the final entry`,
      );
      const applied = await commandsOf(p);
      const missing = [...acked].filter((c) => !applied.includes(c));
      expect({ seed, node: p.nodeId, missing }).toEqual({ seed, node: p.nodeId, missing: [] });
      expect(new Set(applied).size).toBe(applied.length);
    }
    expect(acked.size).toBeGreaterThanOrEqual(80);
    for (const p of byNode.values()) await p.stop();
  });
});
