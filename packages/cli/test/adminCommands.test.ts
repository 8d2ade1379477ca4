import { PdTwin } from '@omnidict/client';
import { expectOneErrorLine, omnictl } from './capture.js';

let pd: PdTwin;
let p: string[];

beforeEach(async () => {
  pd = await PdTwin.start(3);
  pd.leaderIndex = 1; // the first address is a follower: every command must follow the hint
  p = ['--pd', pd.addresses.join(',')];
});

afterEach(async () => {
  await pd.stop();
});

test('shard list, node list, operator list, cluster status: tables and --json', async () => {
  const shards = await omnictl([...p, 'shard', 'list']);
  expect(shards).toMatchObject({ code: 0, stderr: '' });
  expect(shards.stdout).toContain('SHARD');
  expect(shards.stdout).toContain('1/11, 2/12, 3/13');
  const shardsJson = JSON.parse((await omnictl([...p, '--json', 'shard', 'list'])).stdout);
  expect(shardsJson).toHaveLength(2);
  expect(shardsJson[1]).toMatchObject({ id: 2, start: 2 ** 31, end: 2 ** 32, leaderNodeId: 1 });

  const nodes = await omnictl([...p, 'node', 'list']);
  expect(nodes.stdout).toContain('127.0.0.1:20161');
  expect(nodes.stdout).toMatch(/down/);
  const nodesJson = JSON.parse((await omnictl([...p, '--json', 'node', 'list'])).stdout);
  expect(nodesJson.map((n: { state: string }) => n.state)).toEqual(['up', 'up', 'up', 'down']);

  const status = await omnictl([...p, 'cluster', 'status']);
  expect(status.stdout).toContain('nodes up');
  expect(status.stdout).toContain('3/4');
  expect(status.stdout).toContain(pd.addresses[1]);
  const statusJson = JSON.parse((await omnictl([...p, '--json', 'cluster', 'status'])).stdout);
  expect(statusJson).toMatchObject({ clusterId: 7, nodesUp: 3, shardCount: 2, pdLeaderAddress: pd.addresses[1] });

  expect((await omnictl([...p, 'operator', 'list'])).stdout).toContain('ID');
  expect(JSON.parse((await omnictl([...p, '--json', 'operator', 'list'])).stdout)).toEqual([]);
});

test('shard move polls the operator to done and exits 0', async () => {
  const move = await omnictl([...p, 'shard', 'move', '1', '--from', '3', '--to', '4', '--poll', '10ms']);
  expect(move.code).toBe(0);
  expect(move.stdout).toBe('operator 1: move shard 1 done (done)\n');
  expect(move.stderr).toContain('move shard 1: add learner (0%)');
  const ops = JSON.parse((await omnictl([...p, '--json', 'operator', 'list'])).stdout);
  expect(ops[0]).toMatchObject({ id: 1, kind: 'move', state: 'done', progress: 1 });
  expect(JSON.parse((await omnictl([...p, '--json', 'operator', 'get', '1'])).stdout).state).toBe('done');
});

test('a failed move exits non-zero with one line; --no-wait returns at once', async () => {
  pd.state.failToNodeId = 4;
  const failed = await omnictl([...p, 'shard', 'move', '2', '--from', '1', '--to', '4', '--poll', '10ms']);
  expect(failed.code).toBe(1);
  expect(failed.stderr.trim().split('\n').pop()).toBe(
    'omnictl: error: operator 1 (move shard 2) failed at step "add learner": target node is down',
  );
  const started = await omnictl([...p, '--json', 'shard', 'transfer-leader', '1', '--to', '2', '--no-wait']);
  expect(JSON.parse(started.stdout)).toMatchObject({ kind: 'transfer-leader', state: 'running' });
  expectOneErrorLine(await omnictl([...p, 'shard', 'split', '1']), 6, /already runs on shard 1/);
});

test('split, node remove, and not-found ids', async () => {
  expect((await omnictl([...p, 'shard', 'split', '2', '--at', '3000000000', '--poll', '10ms'])).stdout).toContain(
    'split shard 2 done',
  );
  expect((await omnictl([...p, 'node', 'remove', '4'])).stdout).toBe('OK (node 4 is being removed)\n');
  expectOneErrorLine(await omnictl([...p, 'node', 'remove', '42']), 3, /node 42 not found/);
  expectOneErrorLine(await omnictl([...p, 'operator', 'get', '77']), 3, /operator 77 not found/);
  expectOneErrorLine(await omnictl([...p, 'shard', 'move', '9', '--from', '1', '--to', '2']), 3, /shard 9/);
});

test('unreachable placement driver: exit 4 naming the addresses', async () => {
  expectOneErrorLine(
    await omnictl(['--pd', '127.0.0.1:1,127.0.0.1:2', 'node', 'list']),
    4,
    /127\.0\.0\.1:1.*127\.0\.0\.1:2/,
  );
});
