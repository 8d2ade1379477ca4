#!/usr/bin/env node
/**
 * omnidict-router: serves omnidict.v1.KV for a cluster. Every flag has an OMNIDICT_* environment
 * twin (flags win). Runs on load.
 */
import { fileURLToPath } from 'node:url';
import { createReflection } from '@omnidict/proto';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import type { Logger } from './logger.js';
import { startRouter } from './startRouter.js';
import { DEFAULT_MAX_VALUE_BYTES } from './validation.js';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
  return n;
};

const program = new Command('omnidict-router')
  .description('Stateless gRPC front door of an OmniDict cluster (omnidict.v1.KV).')
  .addOption(
    new Option('--listen <host:port>', 'address to serve KV on').default('127.0.0.1:7000').env('OMNIDICT_LISTEN'),
  )
  .addOption(
    new Option('--pd <addresses>', 'comma-separated addresses of ALL PD replicas')
      .env('OMNIDICT_PD')
      .makeOptionMandatory(),
  )
  .addOption(
    new Option('--metrics-port <port>', 'Prometheus /metrics port (0 = off)')
      .default(0)
      .argParser(int('--metrics-port'))
      .env('OMNIDICT_METRICS_PORT'),
  )
  .addOption(
    new Option('--max-value-bytes <bytes>', 'largest value accepted')
      .default(DEFAULT_MAX_VALUE_BYTES)
      .argParser(int('--max-value-bytes'))
      .env('OMNIDICT_MAX_VALUE_BYTES'),
  )
  .addOption(
    new Option('--default-timeout-ms <ms>', 'deadline for calls that carry none')
      .default(10_000)
      .argParser(int('--default-timeout-ms'))
      .env('OMNIDICT_DEFAULT_TIMEOUT_MS'),
  )
  .addOption(
    new Option('--proto-root <dir>', 'directory of the .proto files, for server reflection').env('OMNIDICT_PROTO_ROOT'),
  )
  .addOption(
    new Option('--log-level <level>', 'pino log level')
      .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info')
      .env('OMNIDICT_LOG_LEVEL'),
  );

program.parse();
const opts = program.opts<{
  listen: string;
  pd: string;
  metricsPort: number;
  maxValueBytes: number;
  defaultTimeoutMs: number;
  protoRoot?: string;
  logLevel: string;
}>();

const logger = pino({ level: opts.logLevel, base: { service: 'omnidict-router' } });
const pdAddresses = opts.pd
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '');

const reflection = createReflection(['omnidict/v1/kv.proto'], {
  resolveFrom: fileURLToPath(import.meta.url),
  protoRoot: opts.protoRoot,
});
if ('error' in reflection) logger.warn({ err: reflection.error }, 'server reflection disabled');

try {
  const handle = await startRouter({
    listen: opts.listen,
    pdAddresses,
    metricsPort: opts.metricsPort,
    maxValueBytes: opts.maxValueBytes,
    defaultTimeoutMs: opts.defaultTimeoutMs,
    logger: logger as unknown as Logger,
    ...('add' in reflection ? { addReflection: reflection.add } : {}),
  });
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
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
  logger.fatal({ err: e }, 'router failed to start');
  process.exit(1);
}
