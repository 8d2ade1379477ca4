import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OVERLAYS, ROOT } from './helpers.js';

// kubernetes-models is ESM only, so schema validation runs in the built CLI (the test command
// builds before jest): node packages/deploy-tests/dist/main.js validate ... --json
const CLI = path.join(ROOT, 'packages', 'deploy-tests', 'dist', 'main.js');

interface Report {
  resources: number;
  schema: string[];
  crossRefs: string[];
}

function validate(args: string[]): { code: number | null; report: Report } {
  const r = spawnSync(process.execPath, [CLI, 'validate', ...args, '--json'], { cwd: ROOT, encoding: 'utf8' });
  if (!r.stdout) throw new Error(`validate printed nothing: ${r.stderr}`);
  return { code: r.status, report: JSON.parse(r.stdout) as Report };
}

describe('Kubernetes schema validation (kubernetes-models)', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
  });

  it.each(OVERLAYS)('%s: every rendered resource is valid', (overlay) => {
    const { code, report } = validate([overlay]);
    expect(report).toEqual({ resources: 11, schema: [], crossRefs: [] });
    expect(code).toBe(0);
  });

  it('rejects wrong types, missing required fields and unknown kinds', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'schema-')), 'bad.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: apps/v1',
        'kind: StatefulSet',
        'metadata: { name: bad-port }',
        'spec:',
        '  serviceName: x',
        '  selector: { matchLabels: { a: b } }',
        '  template:',
        '    metadata: { labels: { a: b } }',
        "    spec: { containers: [{ name: c, image: i, ports: [{ containerPort: 'grpc' }] }] }",
        '---',
        'apiVersion: v1',
        'kind: Service',
        'metadata: { name: bad-service }',
        'spec: { ports: [{ name: grpc }] }',
        '---',
        'apiVersion: policy/v1',
        'kind: PodDisruptionBudgets',
        'metadata: { name: bad-kind }',
      ].join('\n'),
    );
    const { code, report } = validate(['--file', file]);
    expect(code).toBe(1);
    expect(report.schema).toEqual([
      expect.stringMatching(/^StatefulSet bad-port: .*containerPort must be integer/),
      expect.stringMatching(/^Service bad-service: .*must have required property port/),
      "PodDisruptionBudgets bad-kind: policy/v1 has no kind 'PodDisruptionBudgets'",
    ]);
  });

  it('renders an overlay as YAML that kubectl could apply', () => {
    const out = execFileSync(process.execPath, [CLI, 'render', 'prod'], { cwd: ROOT, encoding: 'utf8' });
    expect(out.split('\n---\n')).toHaveLength(11);
    expect(out).toContain('kind: StatefulSet');
  });
});
