import path from 'node:path';
import { type EtcdClusterPlan, etcdEnv, etcdMemberArgs } from '../src/etcdCluster.js';

const plan: EtcdClusterPlan = {
  members: [
    { name: 'etcd-1', clientPort: 20001, peerPort: 30001 },
    { name: 'etcd-2', clientPort: 20002, peerPort: 30002 },
    { name: 'etcd-3', clientPort: 20003, peerPort: 30003 },
  ],
  dataRoot: '/tmp/run/etcd',
  token: 'bench-42',
};

/** The flags of a command line as a map (every etcd flag here takes a value). */
function flags(args: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i]!;
    expect(flag.startsWith('--')).toBe(true);
    expect(m.has(flag)).toBe(false);
    m.set(flag, args[i + 1]!);
  }
  return m;
}

test('every member gets the same static initial cluster and token, and a fresh cluster state', () => {
  const lines = plan.members.map((m) => flags(etcdMemberArgs(plan, m)));
  for (const f of lines) {
    expect(f.get('--initial-cluster')).toBe(
      'etcd-1=http://127.0.0.1:30001,etcd-2=http://127.0.0.1:30002,etcd-3=http://127.0.0.1:30003',
    );
    expect(f.get('--initial-cluster-token')).toBe('bench-42');
    expect(f.get('--initial-cluster-state')).toBe('new');
  }
});

test('a member listens and advertises its own ports on 127.0.0.1 only, with data in its own directory', () => {
  const f = flags(etcdMemberArgs(plan, plan.members[1]!));
  expect(f.get('--name')).toBe('etcd-2');
  expect(f.get('--data-dir')).toBe(path.join('/tmp/run/etcd', 'etcd-2'));
  expect(f.get('--listen-client-urls')).toBe('http://127.0.0.1:20002');
  expect(f.get('--advertise-client-urls')).toBe('http://127.0.0.1:20002');
  expect(f.get('--listen-peer-urls')).toBe('http://127.0.0.1:30002');
  expect(f.get('--initial-advertise-peer-urls')).toBe('http://127.0.0.1:30002');
});

test('the name in --name is the one --initial-cluster gives its peer URL', () => {
  for (const m of plan.members) {
    const f = flags(etcdMemberArgs(plan, m));
    const entries = new Map(
      f
        .get('--initial-cluster')!
        .split(',')
        .map((e) => e.split('=') as [string, string]),
    );
    expect(entries.get(f.get('--name')!)).toBe(f.get('--initial-advertise-peer-urls'));
  }
});

test('a member outside the plan is refused', () => {
  expect(() => etcdMemberArgs(plan, { name: 'etcd-9', clientPort: 1, peerPort: 2 })).toThrow(/not part of the plan/);
});

test('etcd 3.4 is told arm64 is allowed only on arm64', () => {
  expect(etcdEnv({ PATH: '/bin' }, 'arm64')).toEqual({ PATH: '/bin', ETCD_UNSUPPORTED_ARCH: 'arm64' });
  expect(etcdEnv({ PATH: '/bin' }, 'x64')).toEqual({ PATH: '/bin' });
});
