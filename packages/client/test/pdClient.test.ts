import { OmniError, PdClient, PdTwin } from '@omnidict/client';

let pd: PdTwin;

beforeEach(async () => {
  pd = await PdTwin.start(3);
});

afterEach(async () => {
  await pd.stop();
});

test('follows a NOT_LEADER hint to the leader and remembers it', async () => {
  pd.leaderIndex = 2;
  const c = new PdClient({ pd: pd.addresses, defaultTimeoutMs: 3000 });
  try {
    const nodes = await c.listNodes();
    expect(nodes.map((n) => n.id)).toEqual([1, 2, 3, 4]);
    expect(c.leaderAddress).toBe(pd.addresses[2]);
    expect(pd.callCount(pd.addresses[0]!)).toBe(1);
    expect(pd.callCount(pd.addresses[1]!)).toBe(0);
    await c.listShards();
    expect(pd.callCount(pd.addresses[0]!)).toBe(1);
    pd.leaderIndex = 1;
    const status = await c.clusterStatus();
    expect(status.pdLeaderId).toBe(2);
    expect(c.leaderAddress).toBe(pd.addresses[1]);
  } finally {
    c.close();
  }
});

test('skips an unreachable replica and tries the next', async () => {
  pd.leaderIndex = 0;
  const c = new PdClient({ pd: ['127.0.0.1:1', ...pd.addresses], defaultTimeoutMs: 3000 });
  try {
    expect((await c.getShardMap()).routes).toHaveLength(2);
  } finally {
    c.close();
  }
});

test('all replicas unreachable: UNAVAILABLE naming the addresses', async () => {
  const c = new PdClient({ pd: '127.0.0.1:1,127.0.0.1:2', defaultTimeoutMs: 3000 });
  try {
    const err = (await c.listNodes().catch((e: unknown) => e)) as OmniError;
    expect(err).toBeInstanceOf(OmniError);
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toContain('127.0.0.1:1');
    expect(err.message).toContain('127.0.0.1:2');
  } finally {
    c.close();
  }
});

test('operators: move, poll to done, conflicts and not-found are typed', async () => {
  const c = new PdClient({ pd: pd.addresses });
  try {
    const op = await c.moveReplica(1, 3, 4);
    expect(op.kind).toBe('move');
    await expect(c.splitShard(1)).rejects.toMatchObject({ code: 'CONFLICT' });
    let info = op;
    while (info.state <= 1) info = await c.getOperator(op.id);
    expect(info.state).toBe(2);
    expect((await c.listOperators()).map((o) => o.id)).toEqual([op.id]);
    await expect(c.getOperator(999)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(c.transferLeader(42, 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await c.removeNode(4);
    expect((await c.listNodes()).find((n) => n.id === 4)?.state).toBe(2);
  } finally {
    c.close();
  }
});
