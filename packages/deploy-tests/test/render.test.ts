import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { containersOf, KustomizeError, render } from '../src/kustomize.js';
import { find, renderOverlay } from './helpers.js';

describe('kustomize rendering of deploy/k8s', () => {
  it.each([
    ['dev', 'omnidict-dev', 3, 2, 'omnidict:dev'],
    ['prod', 'omnidict', 5, 3, 'registry.example.com/omnidict:0.1.0'],
  ])('%s: namespace, replica counts and image', (overlay, ns, nodes, routers, image) => {
    const rs = renderOverlay(overlay);
    const kinds = rs.map((r) => `${r.kind}/${r.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        'ConfigMap/omnidict-config',
        `Namespace/${ns}`,
        'Service/omnidict-pd',
        'StatefulSet/omnidict-pd',
        'PodDisruptionBudget/omnidict-pd',
        'Service/omnidict-node',
        'StatefulSet/omnidict-node',
        'PodDisruptionBudget/omnidict-node',
        'Service/omnidict-router',
        'Deployment/omnidict-router',
        'PodDisruptionBudget/omnidict-router',
      ].sort(),
    );
    for (const r of rs) {
      if (r.kind === 'Namespace') {
        expect(r.metadata.namespace).toBeUndefined();
        continue;
      }
      expect(r.metadata.namespace).toBe(ns);
      expect(r.metadata.labels?.['app.kubernetes.io/part-of']).toBe('omnidict');
    }
    expect((find(rs, 'StatefulSet', 'omnidict-pd').spec as { replicas: number }).replicas).toBe(3);
    expect((find(rs, 'StatefulSet', 'omnidict-node').spec as { replicas: number }).replicas).toBe(nodes);
    expect((find(rs, 'Deployment', 'omnidict-router').spec as { replicas: number }).replicas).toBe(routers);
    for (const r of rs) for (const c of containersOf(r)) expect(c.image).toBe(image);
  });

  it('labels reach pod templates but never selectors', () => {
    const sts = find(renderOverlay('dev'), 'StatefulSet', 'omnidict-node');
    const spec = sts.spec as {
      selector: { matchLabels: Record<string, string> };
      template: { metadata: { labels: Record<string, string> } };
    };
    expect(spec.template.metadata.labels['app.kubernetes.io/instance']).toBe('omnidict-dev');
    expect(spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'omnidict-node' });
  });

  it('applies JSON 6902 patches: dev drops anti-affinity and sets debug logs; prod adds storage classes', () => {
    const dev = renderOverlay('dev');
    expect((find(dev, 'ConfigMap', 'omnidict-config').data as Record<string, string>)['log-level']).toBe('debug');
    const devNode = find(dev, 'StatefulSet', 'omnidict-node').spec as { template: { spec: { affinity: object } } };
    expect(devNode.template.spec.affinity).toEqual({});
    const prodNode = find(renderOverlay('prod'), 'StatefulSet', 'omnidict-node').spec as {
      volumeClaimTemplates: { spec: { storageClassName?: string } }[];
      template: {
        spec: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: unknown[] } } };
      };
    };
    expect(prodNode.volumeClaimTemplates[0]!.spec.storageClassName).toBe('ssd');
    expect(prodNode.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toHaveLength(
      1,
    );
  });

  it('refuses kustomize features it does not implement and patches that miss', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kz-'));
    writeFileSync(path.join(dir, 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n');
    writeFileSync(path.join(dir, 'kustomization.yaml'), 'resources: [cm.yaml]\nnamePrefix: x-\n');
    expect(() => render(dir)).toThrow(KustomizeError);
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      'resources: [cm.yaml]\npatches:\n  - target: { kind: ConfigMap, name: a }\n    patch: |-\n      - { op: replace, path: /data/missing, value: x }\n',
    );
    expect(() => render(dir)).toThrow(/does not exist/);
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      'resources: [cm.yaml]\npatches:\n  - target: { kind: ConfigMap, name: b }\n    patch: |-\n      - { op: remove, path: /data/k }\n',
    );
    expect(() => render(dir)).toThrow(/matches no resource/);
  });
});
