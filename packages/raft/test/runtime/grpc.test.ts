import type { Logger, NodeId, RaftHost as RaftHostT } from '@omnidict/raft/runtime';
import { GrpcTransport, MemoryEngine, RaftHost } from '@omnidict/raft/runtime';
import { CommandLogStateMachine, readCommands } from './testStateMachine.js';

/** Set DEBUG_RT=1 (or 2 for debug level) to print host logs. */
function mkLogger(b: object): Logger {
  const log = (lvl: string) => (o: object, m: string) => {
    if (lvl !== 'debug' || process.env.DEBUG_RT === '2')
      process.stdout.write(`${lvl} ${JSON.stringify({ ...b, ...o })} ${m}\n`);
  };
  return {
    child: (c: object) => mkLogger({ ...b, ...c }),
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
  };
}

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('RaftHost over the real gRPC transport (127.0.0.1)', () => {
  const hosts = new Map<NodeId, RaftHostT>();
  const transports = new Map<NodeId, GrpcTransport>();
  const engines = new Map<NodeId, MemoryEngine>();
  afterEach(async () => {
    for (const h of hosts.values()) await h.close();
    hosts.clear();
    transports.clear();
  });

  async function startHost(nodeId: NodeId, opts: { lag?: number } = {}): Promise<void> {
    const t = new GrpcTransport({ nodeId, listenAddress: '127.0.0.1:0', reconnectBaseMs: 20, reconnectMaxMs: 200 });
    let engine = engines.get(nodeId);
    if (engine === undefined) {
      engine = new MemoryEngine();
      engines.set(nodeId, engine);
    } else {
      engine.reopen();
    }
    const host = await RaftHost.open({
      nodeId,
      engine,
      transport: t,
      tickMs: 20,
      logLagEntries: opts.lag ?? 512,
      snapshotChunkBytes: 256,
      stateMachine: (g) => new CommandLogStateMachine(g),
      ...(process.env.DEBUG_RT ? { logger: mkLogger({ nodeId }) } : {}),
    });
    hosts.set(nodeId, host);
    transports.set(nodeId, t);
    // Everyone learns everyone's (possibly new) port.
    for (const [a, ta] of transports)
      for (const [b, tb] of transports) if (a !== b) ta.setPeer(b, `127.0.0.1:${tb.port}`);
  }

  test('three hosts replicate 8 groups over one stream per peer, with snapshots, across a restart', async () => {
    for (const n of [1, 2, 3]) await startHost(n, { lag: 4 });
    const peers = [1, 2, 3].map((n) => ({ replicaId: n, nodeId: n }));
    for (let g = 1; g <= 8; g++)
      for (const n of [1, 2, 3]) await hosts.get(n)!.createGroup({ groupId: g, replicaId: n, peers });
    const leaderOf = (g: number): RaftHostT | undefined =>
      [...hosts.values()].find((h) => h.hasGroup(g) && h.status(g).role === 'leader');
    await waitUntil(() => [1, 2, 3, 4, 5, 6, 7, 8].every((g) => leaderOf(g) !== undefined), 10_000, 'leaders');
    const results = await Promise.all(
      [1, 2, 3, 4, 5, 6, 7, 8].flatMap((g) =>
        Array.from({ length: 5 }, (_, i) => leaderOf(g)!.propose(g, Buffer.from(`g${g}-${i}`))),
      ),
    );
    expect(results).toHaveLength(40);
    // Stop node 3, write enough that its log position is truncated away, restart it on a new port.
    const h3 = hosts.get(3)!;
    hosts.delete(3);
    transports.delete(3);
    await h3.close();
    const g1Leader = async (): Promise<RaftHostT> => {
      await waitUntil(() => leaderOf(1) !== undefined, 10_000, 'leader of 1');
      return leaderOf(1)!;
    };
    for (let i = 0; i < 20; i++) await (await g1Leader()).propose(1, Buffer.from(`late-${i}`));
    await startHost(3, { lag: 4 });
    const target = (await g1Leader()).status(1).appliedIndex;
    await waitUntil(() => hosts.get(3)!.status(1).appliedIndex >= target, 15_000, 'node 3 catch-up');
    const cmds = await readCommands(engines.get(3)!, 1);
    expect(cmds).toEqual([
      ...Array.from({ length: 5 }, (_, i) => `g1-${i}`),
      ...Array.from({ length: 20 }, (_, i) => `late-${i}`),
    ]);
    expect(hosts.get(3)!.stats.snapshotsInstalled).toBeGreaterThanOrEqual(1);
  }, 40_000);
});
