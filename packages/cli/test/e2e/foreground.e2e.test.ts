// `omnictl cluster up` in the foreground: Ctrl-C (SIGINT) stops every child process, and starting
// again on the same directory keeps the data, the ids and the ports. Closing the terminal (SIGHUP,
// with the output gone) stops them too.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { CLI_MAIN, E2eCluster, expectOneErrorLine, isRunning, omnictl, waitFor } from './harness.js';

// The root jest config runs packages as projects, where a project's testTimeout does not apply.
jest.setTimeout(120_000);

let cluster: E2eCluster;
let foreground: ChildProcessWithoutNullStreams | undefined;

type Exit = { code: number | null; signal: NodeJS.Signals | null };

beforeAll(async () => {
  cluster = await E2eCluster.reserve('foreground');
}, 300_000);

afterAll(async () => {
  if (foreground && foreground.exitCode === null && foreground.signalCode === null) foreground.kill('SIGKILL');
  await cluster?.stop();
}, 120_000);

/** Starts `omnictl cluster up` in the foreground on the reserved dir, collecting its output. */
function startForeground() {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.OMNIDICT_ROUTER;
  delete env.OMNIDICT_PD;
  const child = spawn(process.execPath, [CLI_MAIN, 'cluster', 'up', '--dir', cluster.dir, '--shards', '2'], { env });
  foreground = child;
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => {
    out.stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    out.stderr += chunk.toString();
  });
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, out, exited };
}

/** The launcher's exit after `sig`, or a failure after 60 s. */
async function exitAfter(exited: Promise<Exit>, sig: string, stderr: () => string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the launcher did not exit within 60 s of ${sig}; stderr: ${stderr()}`)),
        60_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

test('SIGINT stops every process; cluster up again on the same dir keeps the data', async () => {
  const { child, out, exited } = startForeground();
  await waitFor(`"cluster is up" from the foreground launcher (stderr: ${out.stderr})`, 90_000, async () =>
    out.stdout.includes('cluster is up') ? true : undefined,
  );
  expect(out.stdout).toContain('running in the foreground; Ctrl-C stops it');
  const first = cluster.processes();
  expect(first).toHaveLength(7);
  for (const p of first) expect(isRunning(p.pid, p.binary)).toBe(true);

  // A second launcher on the same directory is refused while the first runs.
  expectOneErrorLine(
    await omnictl(['cluster', 'up', '--dir', cluster.dir, '--detach'], { timeoutMs: 60_000 }),
    6,
    /a cluster is already running in/,
  );
  expect(cluster.processes().map((p) => p.pid)).toEqual(first.map((p) => p.pid));

  const client = cluster.client();
  try {
    await client.batchPut(Array.from({ length: 50 }, (_, i) => ({ key: `fg-${i}`, value: `v${i}` })));
  } finally {
    client.close();
  }

  const stopStartMs = Date.now();
  child.kill('SIGINT');
  const exit = await exitAfter(exited, 'SIGINT', () => out.stderr);
  const stopMs = Date.now() - stopStartMs;
  expect(exit).toEqual({ code: 0, signal: null });
  expect(out.stderr).toContain('SIGINT: stopping the cluster');
  expect(out.stderr).toContain('cluster stopped');
  const alive = first.filter((p) => isRunning(p.pid, p.binary)).map((p) => `${p.role}-${p.id} pid ${p.pid}`);
  expect(alive).toEqual([]);

  expect(await omnictl(['cluster', 'down', '--dir', cluster.dir])).toMatchObject({
    code: 0,
    stdout: 'no process of that cluster was running\n',
  });
  expectOneErrorLine(await omnictl(['cluster', 'down', '--dir', `${cluster.dir}/nothing-here`]), 3, /no cluster in/);

  const again = await cluster.cli(['cluster', 'up', '--dir', cluster.dir, '--detach'], { timeoutMs: 120_000 });
  expect(again.code).toBe(0);
  const second = cluster.processes();
  expect(second.map((p) => `${p.role}-${p.id} ${p.address} ${p.raftAddress ?? ''}`)).toEqual(
    first.map((p) => `${p.role}-${p.id} ${p.address} ${p.raftAddress ?? ''}`),
  );
  const reader = cluster.client();
  try {
    const got = await reader.batchGet(
      Array.from({ length: 50 }, (_, i) => `fg-${i}`),
      { timeoutMs: 15_000 },
    );
    expect(got.map((g) => g?.value.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
  } finally {
    reader.close();
  }
  console.log(`foreground cluster: SIGINT stopped all 7 processes in ${stopMs} ms; data kept across restart`);
}, 240_000);

test('SIGHUP with the output gone (terminal closed) stops every process', async () => {
  // The previous test leaves the cluster running detached (3: nothing to stop when run alone).
  expect([0, 3]).toContain((await omnictl(['cluster', 'down', '--dir', cluster.dir], { timeoutMs: 60_000 })).code);
  const { child, out, exited } = startForeground();
  await waitFor('"cluster is up" from the foreground launcher', 90_000, async () =>
    out.stdout.includes('cluster is up') ? true : undefined,
  );
  const procs = cluster.processes();
  expect(procs).toHaveLength(7);
  // Nobody reads the launcher's output any more: its writes fail (EPIPE here, EIO on a closed pty).
  child.stdout.destroy();
  child.stderr.destroy();
  child.kill('SIGHUP');
  expect(await exitAfter(exited, 'SIGHUP', () => out.stderr)).toEqual({ code: 0, signal: null });
  const alive = procs.filter((p) => isRunning(p.pid, p.binary)).map((p) => `${p.role}-${p.id} pid ${p.pid}`);
  expect(alive).toEqual([]);
}, 180_000);
