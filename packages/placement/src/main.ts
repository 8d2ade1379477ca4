#!/usr/bin/env node
import path from 'node:path';
import { createReflection, type MetricsServer, serveMetrics } from '@omnidict/proto';
import { registerRaftMetrics } from '@omnidict/raft/runtime';
import { Command, Option } from 'commander';
import pino from 'pino';
import { collectDefaultMetrics, register } from 'prom-client';
import { registerPdRequestMetrics } from './pdMetrics.js';
import type { PdLoggerFull } from './pdServer.js';
import { startPd } from './pdServer.js';
import { LEADER_PLACEMENTS, type LeaderPlacement } from './scheduler/clusterView.js';

/**
 * omnidict-pd: one placement driver replica. Every flag has an OMNIDICT_* environment twin.
 * Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 startup failure.
 */
function parsePeers(s: string): Map<number, string> {
  const peers = new Map<number, string>();
  for (const part of s.split(',').filter(Boolean)) {
    const [id, address] = part.split('=');
    const n = Number(id);
    if (!Number.isInteger(n) || n <= 0 || !address) throw new Error(`bad --peers entry '${part}' (want id=host:port)`);
    peers.set(n, address);
  }
  return peers;
}

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${v}`);
  return n;
};

async function main(): Promise<void> {
  const program = new Command('omnidict-pd')
    .description('OmniDict placement driver replica')
    .addOption(
      new Option('--id <n>', 'this PD replica id (one of --peers)')
        .env('OMNIDICT_PD_ID')
        .argParser(int)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--listen <host:port>', 'PD gRPC service address').env('OMNIDICT_LISTEN').default('0.0.0.0:2379'),
    )
    .addOption(new Option('--advertise <host:port>', 'PD service address given to clients').env('OMNIDICT_ADVERTISE'))
    .addOption(
      new Option('--peers <list>', 'Raft addresses of ALL PD replicas: id=host:port,...')
        .env('OMNIDICT_PEERS')
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--raft-listen <host:port>', 'Raft transport listen address (default: own --peers entry)').env(
        'OMNIDICT_RAFT_LISTEN',
      ),
    )
    .addOption(
      new Option('--data-dir <dir>', 'classic-level data directory').env('OMNIDICT_DATA_DIR').makeOptionMandatory(),
    )
    .addOption(
      new Option('--replication <n>', 'replicas per shard').env('OMNIDICT_REPLICATION').argParser(int).default(3),
    )
    .addOption(new Option('--shards <n>', 'initial shard count').env('OMNIDICT_SHARDS').argParser(int).default(8))
    .addOption(
      new Option('--down-timeout-ms <ms>', 'node heartbeat timeout before it is marked down')
        .env('OMNIDICT_DOWN_TIMEOUT_MS')
        .argParser(int)
        .default(10_000),
    )
    .addOption(
      new Option('--replace-after-ms <ms>', 'replace replicas of a node down this long')
        .env('OMNIDICT_REPLACE_AFTER_MS')
        .argParser(int)
        .default(30_000),
    )
    .addOption(
      new Option('--max-operators <n>', 'operators running at once')
        .env('OMNIDICT_MAX_OPERATORS')
        .argParser(int)
        .default(4),
    )
    .addOption(
      new Option(
        '--leader-placement <policy>',
        'shard leaders: balance = even counts across nodes; gather = all on one node (nodes sharing one host)',
      )
        .env('OMNIDICT_LEADER_PLACEMENT')
        .choices(LEADER_PLACEMENTS)
        .default('balance'),
    )
    .addOption(
      new Option('--metrics-port <port>', 'Prometheus /metrics port (0 = off)')
        .env('OMNIDICT_METRICS_PORT')
        .argParser(int)
        .default(0),
    )
    .addOption(
      new Option('--proto-root <dir>', 'directory of the .proto files, for reflection').env('OMNIDICT_PROTO_ROOT'),
    )
    .addOption(new Option('--log-level <level>').env('OMNIDICT_LOG_LEVEL').default('info'));
  program.parse();
  const o = program.opts<{
    id: number;
    listen: string;
    advertise?: string;
    peers: string;
    raftListen?: string;
    dataDir: string;
    replication: number;
    shards: number;
    downTimeoutMs: number;
    replaceAfterMs: number;
    maxOperators: number;
    leaderPlacement: LeaderPlacement;
    metricsPort: number;
    protoRoot?: string;
    logLevel: string;
  }>();

  const logger = pino({ level: o.logLevel, base: { service: 'omnidict-pd' } });
  const observeRequest = o.metricsPort > 0 ? registerPdRequestMetrics(register) : undefined;
  const pd = await startPd({
    id: o.id,
    ...(observeRequest !== undefined ? { observeRequest } : {}),
    listen: o.listen,
    ...(o.advertise !== undefined ? { advertise: o.advertise } : {}),
    peers: parsePeers(o.peers),
    ...(o.raftListen !== undefined ? { raftListen: o.raftListen } : {}),
    dataDir: o.dataDir,
    replicationFactor: o.replication,
    initialShards: o.shards,
    downTimeoutMs: o.downTimeoutMs,
    scheduler: {
      maxOperators: o.maxOperators,
      replaceDownAfterMs: o.replaceAfterMs,
      leaderPlacement: o.leaderPlacement,
    },
    logger: logger as unknown as PdLoggerFull,
    configureServer: (server) => {
      const reflection = createReflection(['omnidict/pd/v1/pd.proto'], {
        resolveFrom: path.resolve(process.argv[1] ?? path.join(process.cwd(), 'main.js')),
        protoRoot: o.protoRoot,
      });
      if ('add' in reflection) reflection.add(server);
      else logger.warn({ err: reflection.error }, 'gRPC reflection unavailable');
    },
  });

  let metrics: MetricsServer | undefined;
  if (o.metricsPort > 0) {
    collectDefaultMetrics({ prefix: 'omnidict_pd_' });
    registerRaftMetrics(register, pd.raftStats);
    metrics = await serveMetrics(register, o.metricsPort);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void metrics?.close();
    pd.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`omnidict-pd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
