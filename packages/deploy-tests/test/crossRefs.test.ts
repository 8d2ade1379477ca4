import { acceptedEnv, launchers } from '../src/binaries.js';
import { checkCrossReferences } from '../src/crossRefs.js';
import { type Container, containersOf, type Resource } from '../src/kustomize.js';
import { clone, find, OVERLAYS, ROOT, renderOverlay } from './helpers.js';

function container(rs: Resource[], kind: string, name: string): Container {
  return containersOf(find(rs, kind, name))[0]!;
}

function env(c: Container, name: string) {
  const e = c.env?.find((x) => x.name === name);
  if (!e) throw new Error(`no env ${name}`);
  return e;
}

describe('cross-references of the rendered overlays', () => {
  it.each(OVERLAYS)('%s: every reference resolves', (overlay) => {
    expect(checkCrossReferences(renderOverlay(overlay), ROOT)).toEqual([]);
  });

  it('reads the env names each binary accepts from its main.ts', () => {
    const bins = launchers(ROOT);
    expect([...bins.keys()].sort()).toEqual(['omnictl', 'omnidict-node', 'omnidict-pd', 'omnidict-router']);
    expect([...acceptedEnv(bins.get('omnidict-pd')!, ROOT)]).toEqual(
      expect.arrayContaining(['OMNIDICT_PD_ID', 'OMNIDICT_PEERS', 'OMNIDICT_RAFT_LISTEN', 'OMNIDICT_DATA_DIR']),
    );
    expect([...acceptedEnv(bins.get('omnidict-node')!, ROOT)]).toEqual(
      expect.arrayContaining(['OMNIDICT_NODE_ID', 'OMNIDICT_RAFT_LISTEN', 'OMNIDICT_PD']),
    );
    expect([...acceptedEnv(bins.get('omnidict-router')!, ROOT)]).not.toContain('OMNIDICT_DATA_DIR');
  });

  // Each case breaks one thing in a copy of the dev overlay and expects the matching complaint.
  const cases: [string, (rs: Resource[]) => void, RegExp][] = [
    [
      'an env var the binary does not read',
      (rs) => container(rs, 'Deployment', 'omnidict-router').env!.push({ name: 'OMNIDICT_DATA_DIR', value: '/x' }),
      /env OMNIDICT_DATA_DIR is not read by omnidict-router/,
    ],
    [
      'a probe on a port that is not the gRPC port',
      (rs) => {
        container(rs, 'StatefulSet', 'omnidict-node').readinessProbe!.grpc!.port = 20161;
      },
      /readinessProbe port 20161 is not the gRPC port 20160/,
    ],
    [
      'a probe on no container port',
      (rs) => {
        container(rs, 'Deployment', 'omnidict-router').livenessProbe!.grpc!.port = 7001;
      },
      /livenessProbe port 7001 is not a container port/,
    ],
    [
      'a data dir off the volume',
      (rs) => {
        env(container(rs, 'StatefulSet', 'omnidict-node'), 'OMNIDICT_DATA_DIR').value = '/tmp/node';
      },
      /OMNIDICT_DATA_DIR=\/tmp\/node is on no volume mount/,
    ],
    [
      'a PD address on a port the PD Service does not expose',
      (rs) => {
        const e = env(container(rs, 'Deployment', 'omnidict-router'), 'OMNIDICT_PD');
        e.value = e.value!.replace(/:2379/g, ':2479');
      },
      /OMNIDICT_PD: .*has no (Service )?port 2479|no container port 2479/,
    ],
    [
      'a peer under a Service that does not exist',
      (rs) => {
        const e = env(container(rs, 'StatefulSet', 'omnidict-pd'), 'OMNIDICT_PEERS');
        e.value = e.value!.replace('omnidict-pd-2.omnidict-pd.', 'omnidict-pd-2.omnidict-placement.');
      },
      /no Service 'omnidict-placement'/,
    ],
    [
      'a peer id that is not the ordinal + 1',
      (rs) => {
        const e = env(container(rs, 'StatefulSet', 'omnidict-pd'), 'OMNIDICT_PEERS');
        e.value = e.value!.replace('3=omnidict-pd-2', '4=omnidict-pd-2');
      },
      /OMNIDICT_PEERS has no entry 3=<omnidict-pd-2/,
    ],
    [
      'a pod that the StatefulSet does not have',
      (rs) => {
        (find(rs, 'StatefulSet', 'omnidict-pd').spec as { replicas: number }).replicas = 2;
      },
      /selects no pod 'omnidict-pd-2'/,
    ],
    [
      'a Raft advertise address that leads to the gRPC port',
      (rs) => {
        const e = env(container(rs, 'StatefulSet', 'omnidict-node'), 'OMNIDICT_RAFT_ADVERTISE');
        e.value = e.value!.replace(':20161', ':20160');
      },
      /OMNIDICT_RAFT_ADVERTISE=omnidict-node-0\.omnidict-node\.omnidict-dev\.svc\.cluster\.local:20160 does not lead back/,
    ],
    [
      'a missing ConfigMap key',
      (rs) => {
        delete (find(rs, 'ConfigMap', 'omnidict-config').data as Record<string, string>)['log-level'];
      },
      /ConfigMap omnidict-config has no key 'log-level'/,
    ],
    [
      'a $(VAR) used before it is defined',
      (rs) => {
        const c = container(rs, 'StatefulSet', 'omnidict-node');
        c.env = [...c.env!.filter((e) => e.name !== 'POD_NAME'), ...c.env!.filter((e) => e.name === 'POD_NAME')];
      },
      /OMNIDICT_ADVERTISE: \$\(POD_NAME\) is not defined before it/,
    ],
    [
      'a mandatory setting nobody sets',
      (rs) => {
        container(rs, 'StatefulSet', 'omnidict-node').command = ['omnidict-node'];
      },
      /mandatory OMNIDICT_NODE_ID is not set/,
    ],
    [
      'a Service targetPort no container has',
      (rs) => {
        (find(rs, 'Service', 'omnidict-router').spec as { ports: { targetPort: string }[] }).ports[0]!.targetPort =
          'http';
      },
      /targetPort http is not a container port/,
    ],
    [
      'a StatefulSet with no PodDisruptionBudget',
      (rs) => {
        rs.splice(rs.indexOf(find(rs, 'PodDisruptionBudget', 'omnidict-node')), 1);
      },
      /StatefulSet omnidict-node: no PodDisruptionBudget/,
    ],
    [
      'a grace period too short for a leader transfer',
      (rs) => {
        (
          find(rs, 'StatefulSet', 'omnidict-node').spec as {
            template: { spec: { terminationGracePeriodSeconds: number } };
          }
        ).template.spec.terminationGracePeriodSeconds = 5;
      },
      /terminationGracePeriodSeconds < 30/,
    ],
    [
      'a container without limits',
      (rs) => {
        delete (container(rs, 'StatefulSet', 'omnidict-pd').resources as { limits?: unknown }).limits;
      },
      /resources need both requests and limits/,
    ],
    [
      'a binary the image does not have',
      (rs) => {
        container(rs, 'Deployment', 'omnidict-router').command = ['omnidict-proxy'];
      },
      /runs 'omnidict-proxy', which is not one of the image's launchers/,
    ],
  ];
  it.each(cases)('finds %s', (_what, breakIt, expected) => {
    const rs = clone(renderOverlay('dev'));
    breakIt(rs);
    const problems = checkCrossReferences(rs, ROOT);
    expect(problems.join('\n')).toMatch(expected);
  });
});
