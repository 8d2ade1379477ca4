import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CliContext } from '@omnidict/cli';
import { runCli } from '@omnidict/cli';
import {
  type ClusterFile,
  ephemeralPortFloor,
  freePort,
  isRunning,
  resolveBinary,
} from '../src/launcher/localCluster.js';
import { omnictl } from './capture.js';

const FAKE = path.join(__dirname, 'fixtures', 'fakeBinary.cjs');
const ENV_KEYS = ['OMNIDICT_PD_BIN', 'OMNIDICT_NODE_BIN', 'OMNIDICT_ROUTER_BIN', 'FAKE_FAIL'] as const;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'omnictl-launcher-'));
  process.env.OMNIDICT_PD_BIN = FAKE;
  process.env.OMNIDICT_NODE_BIN = FAKE;
  process.env.OMNIDICT_ROUTER_BIN = FAKE;
});

afterEach(async () => {
  await omnictl(['cluster', 'down', '--dir', dir, '--grace', '2s']);
  for (const k of ENV_KEYS) delete process.env[k];
  await rm(dir, { recursive: true, force: true });
});

function clusterFile(): ClusterFile {
  return JSON.parse(readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as ClusterFile;
}

test('up --detach starts 3 PDs, 3 nodes and a router with the documented flags; down stops them', async () => {
  const up = await omnictl(['cluster', 'up', '--dir', dir, '--detach', '--shards', '4']);
  expect(up.code).toBe(0);
  const file = clusterFile();
  const router = file.processes.find((p) => p.role === 'router')!;
  expect(up.stdout).toContain(`router ${router.address}`);
  expect(up.stdout).toContain(`omnictl --router ${router.address} put hello world`);
  expect(file.processes.map((p) => `${p.role}-${p.id}`)).toEqual([
    'pd-1',
    'pd-2',
    'pd-3',
    'node-1',
    'node-2',
    'node-3',
    'router-1',
  ]);
  for (const p of file.processes) {
    expect(p.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(isRunning(p.pid, p.binary)).toBe(true);
    expect(p.log.startsWith(dir)).toBe(true);
  }
  const pds = file.processes.filter((p) => p.role === 'pd');
  const pdList = pds.map((p) => p.address).join(',');
  expect(pds[0]!.args).toEqual([
    ...['--id', '1', '--listen', pds[0]!.address],
    ...['--peers', pds.map((p) => `${p.id}=${p.raftAddress}`).join(','), '--raft-listen', pds[0]!.raftAddress],
    ...['--data-dir', path.join(dir, 'pd-1'), '--replication', '3', '--shards', '4'],
    ...['--leader-placement', 'gather'],
  ]);
  const node2 = file.processes.find((p) => p.role === 'node' && p.id === 2)!;
  expect(node2.args).toEqual([
    ...['--node-id', '2', '--listen', node2.address, '--advertise', node2.address, '--raft-listen', node2.raftAddress],
    ...['--data-dir', path.join(dir, 'node-2'), '--pd', pdList],
  ]);
  const ports = file.processes.flatMap((p) => [p.address, p.raftAddress ?? []]).flat();
  expect(new Set(ports).size).toBe(ports.length);
  expect(router.args).toEqual([
    '--listen',
    router.address,
    '--pd',
    pdList,
    '--metrics-port',
    String(router.metricsPort),
  ]);
  expect(readFileSync(node2.log, 'utf8')).toContain('fake node-2 started');

  const down = await omnictl(['cluster', 'down', '--dir', dir]);
  expect(down).toMatchObject({ code: 0, stdout: 'stopped 7 processes\n' });
  for (const p of file.processes) expect(isRunning(p.pid, p.binary)).toBe(false);
  expect(readFileSync(node2.log, 'utf8')).toContain('got SIGTERM');
});

test('starting again on the same dir reuses ids and ports; a running cluster is not started twice', async () => {
  expect((await omnictl(['cluster', 'up', '--dir', dir, '--detach'])).code).toBe(0);
  const first = clusterFile();
  const again = await omnictl(['cluster', 'up', '--dir', dir, '--detach']);
  expect(again.code).toBe(6);
  expect(again.stderr).toMatch(/^omnictl: error: a cluster is already running/);
  await omnictl(['cluster', 'down', '--dir', dir]);
  expect((await omnictl(['cluster', 'up', '--dir', dir, '--detach'])).code).toBe(0);
  const second = clusterFile();
  expect(second.processes.map((p) => [p.role, p.id, p.address, p.raftAddress])).toEqual(
    first.processes.map((p) => [p.role, p.id, p.address, p.raftAddress]),
  );
});

test('a process that dies during startup is named, its log tail shown, everything stopped', async () => {
  process.env.FAKE_FAIL = 'node-2';
  const up = await omnictl(['cluster', 'up', '--dir', dir, '--detach']);
  expect(up.code).toBe(1);
  const lines = up.stderr.trimEnd().split('\n');
  expect(lines.at(-1)).toMatch(
    /^omnictl: error: omnidict-node \(node-2, 127\.0\.0\.1:\d+\) exited during startup \(code 1\)/,
  );
  expect(up.stderr).toContain('  | boom: cannot open data dir');
  for (const p of clusterFile().processes) expect(isRunning(p.pid, p.binary)).toBe(false);
});

test('a missing binary is reported before anything starts', async () => {
  process.env.OMNIDICT_ROUTER_BIN = path.join(dir, 'nope', 'main.js');
  const up = await omnictl(['cluster', 'up', '--dir', dir]);
  expect(up.code).toBe(1);
  expect(up.stderr).toBe(
    `omnictl: error: cannot start omnidict-router: ${path.join(dir, 'nope', 'main.js')} does not exist (build it with "pnpm build", or set OMNIDICT_ROUTER_BIN)\n`,
  );
  expect(existsSync(path.join(dir, 'cluster.json'))).toBe(false);
});

test('foreground up stops every process on a signal', async () => {
  let fire: (sig: NodeJS.Signals) => void = () => undefined;
  let out = '';
  const ctx: CliContext = {
    stdout: (c) => {
      out += c.toString();
    },
    stderr: () => undefined,
    readStdin: async () => Buffer.alloc(0),
    stderrIsTTY: false,
    onSignal: (h) => {
      fire = h;
      return () => undefined;
    },
  };
  const running = runCli(['cluster', 'up', '--dir', dir, '--nodes', '1', '--replication', '1', '--pd', '1'], ctx);
  while (!out.includes('Ctrl-C stops it')) await new Promise((r) => setTimeout(r, 50));
  const file = clusterFile();
  expect(file.processes.map((p) => p.role)).toEqual(['pd', 'node', 'router']);
  fire('SIGINT');
  expect(await running).toBe(0);
  for (const p of file.processes) expect(isRunning(p.pid, p.binary)).toBe(false);
});

test('binaries resolve to the sibling packages next to the cli dist dir', () => {
  const cliDist = path.resolve(__dirname, '..', 'dist');
  const env = {};
  expect(resolveBinary('pd', cliDist, env)).toBe(path.resolve(__dirname, '..', '..', 'placement', 'dist', 'main.js'));
  expect(resolveBinary('router', cliDist, env)).toBe(path.resolve(__dirname, '..', '..', 'router', 'dist', 'main.js'));
  expect(resolveBinary('node', cliDist, { OMNIDICT_NODE_BIN: '/x/main.js' })).toBe('/x/main.js');
});

test('cluster down on a dir without a cluster exits 3', async () => {
  const r = await omnictl(['cluster', 'down', '--dir', path.join(dir, 'empty')]);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/^omnictl: error: no cluster in /);
});

test('freePort hands out distinct ports below the ephemeral range, which outgoing connections never take', async () => {
  const floor = ephemeralPortFloor();
  const ports: number[] = [];
  for (let i = 0; i < 100; i++) ports.push(await freePort());
  expect(new Set(ports).size).toBe(ports.length);
  for (const p of ports) {
    expect(p).toBeGreaterThanOrEqual(1024);
    expect(p).toBeLessThan(floor);
  }
});
