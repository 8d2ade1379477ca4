/**
 * Child process of `bench:runtime`: one RaftHost on a real classic-level directory and a gRPC
 * transport on 127.0.0.1, driven by the parent over the IPC channel. Never imported by tests.
 */
import { join } from 'node:path';
import type { CommittedEntry, KvReader, SnapshotWriter, StateMachine } from '../runtime/index.js';
import { installRanges, LevelEngine, NetTransport, RaftHost, snapshotRanges } from '../runtime/index.js';
import type { BenchReply, BenchRequest } from './runtimeBenchProtocol.js';

function groupRange(groupId: number): { gte: Uint8Array; lt: Uint8Array } {
  const gte = Buffer.alloc(5);
  gte[0] = 0x01;
  gte.writeUInt32BE(groupId, 1);
  const lt = Buffer.alloc(5);
  lt[0] = 0x01;
  lt.writeUInt32BE(groupId + 1, 1);
  return { gte, lt };
}

/** Bench state machine: stores each command under 0x01‖groupId(u32)‖index(u64). */
class BlobStateMachine implements StateMachine<number> {
  readonly #groupId: number;
  constructor(groupId: number) {
    this.#groupId = groupId;
  }
  applyEntries(
    entries: readonly CommittedEntry[],
    ctx: { batch: { put(k: Uint8Array, v: Uint8Array): void } },
  ): number[] {
    return entries.map((e) => {
      if (e.kind === 'normal') {
        const k = Buffer.alloc(13);
        k[0] = 0x01;
        k.writeUInt32BE(this.#groupId, 1);
        k.writeBigUInt64BE(BigInt(e.index), 5);
        ctx.batch.put(k, e.data);
      }
      return e.index;
    });
  }
  snapshotChunks(view: KvReader, maxChunkBytes: number): AsyncIterable<Uint8Array> {
    return snapshotRanges(view, [groupRange(this.#groupId)], maxChunkBytes);
  }
  installSnapshot(chunks: AsyncIterable<Uint8Array>, writer: SnapshotWriter): Promise<void> {
    return installRanges(chunks, writer, [groupRange(this.#groupId)]);
  }
}

let host: RaftHost | undefined;
let engine: LevelEngine | undefined;
let transport: NetTransport | undefined;

function reply(r: BenchReply): void {
  process.send?.(r);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

async function runLoad(
  groups: number[],
  concurrency: number,
  durationMs: number,
  valueBytes: number,
): Promise<BenchReply> {
  const h = host as RaftHost;
  const e = engine as LevelEngine;
  const value = Buffer.alloc(valueBytes, 7);
  const latencies: number[] = [];
  let committed = 0;
  let errors = 0;
  const syncBefore = e.syncWrites;
  const start = performance.now();
  const deadline = start + durationMs;
  let next = 0;
  async function worker(): Promise<void> {
    while (performance.now() < deadline) {
      const g = groups[next++ % groups.length] as number;
      const t0 = performance.now();
      try {
        await h.propose(g, value);
        latencies.push(performance.now() - t0);
        committed++;
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const elapsedMs = performance.now() - start;
  latencies.sort((a, b) => a - b);
  return {
    type: 'load',
    committed,
    errors,
    elapsedMs,
    leaderSyncWrites: e.syncWrites - syncBefore,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

async function handle(m: BenchRequest): Promise<void> {
  switch (m.type) {
    case 'init': {
      engine = await LevelEngine.open(join(m.dir, `node-${m.nodeId}`));
      transport = new NetTransport({ nodeId: m.nodeId, listenAddress: '127.0.0.1:0' });
      host = await RaftHost.open({
        nodeId: m.nodeId,
        engine,
        transport,
        tickMs: m.tickMs,
        stateMachine: (g) => new BlobStateMachine(g),
      });
      reply({ type: 'ready', port: transport.port });
      return;
    }
    case 'peers':
      for (const [id, addr] of m.peers) if (id !== host?.nodeId) transport?.setPeer(id, addr);
      reply({ type: 'ok' });
      return;
    case 'createGroups': {
      const peers = m.nodes.map((n) => ({ replicaId: n, nodeId: n }));
      for (const g of m.groups) await host?.createGroup({ groupId: g, replicaId: host.nodeId, peers });
      reply({ type: 'ok' });
      return;
    }
    case 'campaign':
      for (const g of m.groups) host?.campaign(g);
      reply({ type: 'ok' });
      return;
    case 'transfer': {
      const h = host as RaftHost;
      for (const g of m.groups) if (h.status(g).role === 'leader') h.transferLeader(g, m.to);
      reply({ type: 'ok' });
      return;
    }
    case 'status': {
      const h = host as RaftHost;
      const led = m.groups.filter((g) => h.status(g).role === 'leader').length;
      reply({ type: 'status', led, active: h.activeGroupCount, syncWrites: engine?.syncWrites ?? 0 });
      return;
    }
    case 'load':
      reply(await runLoad(m.groups, m.concurrency, m.durationMs, m.valueBytes));
      return;
    case 'cpu': {
      const before = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, m.durationMs));
      const used = process.cpuUsage(before);
      const secs = (performance.now() - t0) / 1000;
      reply({
        type: 'cpu',
        cpuMsPerSec: (used.user + used.system) / 1000 / secs,
        active: host?.activeGroupCount ?? -1,
      });
      return;
    }
    case 'stop':
      await host?.close();
      await engine?.close();
      reply({ type: 'ok' });
      process.exit(0);
  }
}

process.on('message', (m: BenchRequest) => {
  handle(m).catch((e: unknown) => {
    reply({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  });
});
