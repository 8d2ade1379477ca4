#!/usr/bin/env node
/**
 * omnidict-node: a storage node hosting many shard replicas over one LSM. Every flag has an
 * OMNIDICT_* environment twin (flags win). Runs on load; SIGTERM/SIGINT shut down gracefully
 * (leaderships handed over first).
 */
import { fileURLToPath } from 'node:url';
import { createReflection, type MetricsServer, serveMetrics } from '@omnidict/proto';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { DEFAULT_MAX_VALUE_BYTES } from './kv/buildCommand.js';
import { registerNodeMetrics } from './nodeMetrics.js';
import { startNode } from './nodeServer.js';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
  return n;
};

const program = new Command('omnidict-node')
  .description('OmniDict storage node: shard replicas (Raft groups) over one classic-level LSM.')
  .addOption(
    new Option('--node-id <id>', 'this node’s id (unique, > 0)')
      .argParser(int('--node-id'))
      .env('OMNIDICT_NODE_ID')
      .makeOptionMandatory(),
  )
  .addOption(
    new Option('--listen <host:port>', 'address for NodeKV, NodeAdmin, health, reflection')
      .default('127.0.0.1:7100')
      .env('OMNIDICT_LISTEN'),
  )
  .addOption(
    new Option('--advertise <host:port>', 'address other processes use to reach --listen').env('OMNIDICT_ADVERTISE'),
  )
  .addOption(
    new Option('--raft-listen <host:port>', 'address of the Raft transport (peers connect here)')
      .default('127.0.0.1:7200')
      .env('OMNIDICT_RAFT_LISTEN'),
  )
  .addOption(
    new Option('--raft-advertise <host:port>', 'address other nodes use to reach --raft-listen').env(
      'OMNIDICT_RAFT_ADVERTISE',
    ),
  )
  .addOption(
    new Option('--pd-heartbeat-ms <ms>', 'PD node and shard heartbeat period')
      .default(1000)
      .argParser(int('--pd-heartbeat-ms'))
      .env('OMNIDICT_PD_HEARTBEAT_MS'),
  )
  .addOption(
    new Option('--data-dir <dir>', 'directory of the node’s LSM').env('OMNIDICT_DATA_DIR').makeOptionMandatory(),
  )
  .addOption(new Option('--pd <addresses>', 'comma-separated addresses of ALL PD replicas').env('OMNIDICT_PD'))
  .addOption(
    new Option('--max-value-bytes <bytes>', 'largest value accepted')
      .default(DEFAULT_MAX_VALUE_BYTES)
      .argParser(int('--max-value-bytes'))
      .env('OMNIDICT_MAX_VALUE_BYTES'),
  )
  .addOption(
    new Option('--metrics-port <port>', 'Prometheus /metrics port (0 = off)')
      .default(0)
      .argParser(int('--metrics-port'))
      .env('OMNIDICT_METRICS_PORT'),
  )
  .addOption(
    new Option('--proto-root <dir>', 'directory of the .proto files, for reflection').env('OMNIDICT_PROTO_ROOT'),
  )
  .addOption(
    new Option(
      '--no-lease-reads',
      'confirm every linearizable read with a ReadIndex round instead of a clock-checked leader lease',
    ).env('OMNIDICT_NO_LEASE_READS'),
  )
  .addOption(
    new Option('--log-level <level>', 'pino log level')
      .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info')
      .env('OMNIDICT_LOG_LEVEL'),
  );

program.parse();
const opts = program.opts<{
  nodeId: number;
  listen: string;
  advertise?: string;
  raftListen: string;
  raftAdvertise?: string;
  pdHeartbeatMs: number;
  dataDir: string;
  pd?: string;
  maxValueBytes: number;
  metricsPort: number;
  protoRoot?: string;
  leaseReads: boolean;
  logLevel: string;
}>();

const logger = pino({ level: opts.logLevel, base: { service: 'omnidict-node' } });
const reflection = createReflection(['omnidict/node/v1/node.proto'], {
  resolveFrom: fileURLToPath(import.meta.url),
  protoRoot: opts.protoRoot,
});
if ('error' in reflection) logger.warn({ err: reflection.error }, 'server reflection disabled');

try {
  const handle = await startNode({
    nodeId: opts.nodeId,
    listen: opts.listen,
    raftListen: opts.raftListen,
    ...(opts.advertise !== undefined ? { advertise: opts.advertise } : {}),
    ...(opts.raftAdvertise !== undefined ? { raftAdvertise: opts.raftAdvertise } : {}),
    pd: (opts.pd ?? '')
      .split(',')
      .map((a) => a.trim())
      .filter((a) => a !== ''),
    pdHeartbeatMs: opts.pdHeartbeatMs,
    dataDir: opts.dataDir,
    maxValueBytes: opts.maxValueBytes,
    raft: { leaseReads: opts.leaseReads },
    logger,
    ...('add' in reflection ? { addReflection: reflection.add } : {}),
  });
  if (handle.pd === undefined) logger.warn({}, 'no --pd given: the node will not register with a placement driver');
  logger.info(
    { nodeId: opts.nodeId, address: handle.address, raftAddress: handle.raftAddress, pd: opts.pd ?? '' },
    'omnidict-node started',
  );
  let metricsServer: MetricsServer | undefined;
  if (opts.metricsPort > 0) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    new Gauge({
      name: 'omnidict_node_shard_replicas',
      help: 'shard replicas hosted by this node',
      registers: [registry],
      collect() {
        this.set(handle.store.replicas.size);
      },
    });
    registerNodeMetrics(registry, handle.store);
    new Gauge({
      name: 'omnidict_node_shard_leaders',
      help: 'shards this node leads',
      registers: [registry],
      collect() {
        const host = handle.store.host;
        this.set(host.groupIds().filter((id) => host.isLeader(id)).length);
      },
    });
    metricsServer = await serveMetrics(registry, opts.metricsPort);
  }
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down: transferring leaderships');
    void metricsServer?.close();
    handle.close().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
} catch (e) {
  logger.fatal({ err: e }, 'storage node failed to start');
  process.exit(1);
}
