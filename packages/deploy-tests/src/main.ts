#!/usr/bin/env node
/**
 * deploy-tests CLI, run from anywhere in the repository (after `pnpm build`):
 *
 *   node packages/deploy-tests/dist/main.js render dev            # the overlay as YAML
 *   node packages/deploy-tests/dist/main.js validate dev [--json] # schemas + cross-references
 *   node packages/deploy-tests/dist/main.js validate --file x.yaml --json   # schemas of one file
 *   node packages/deploy-tests/dist/main.js up dev [--dir DIR]    # boot the overlay locally
 *
 * An overlay is a name under deploy/k8s/overlays or a directory. Exit codes: 0 ok, 1 problems
 * found or startup failed, 2 usage.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from './binaries.js';
import { checkCrossReferences } from './crossRefs.js';
import { type Resource, readResources, render } from './kustomize.js';
import { LocalCluster } from './localFromManifests.js';
import { validateSchemas } from './validateSchemas.js';

function overlayDir(arg: string | undefined): string {
  if (!arg) usage();
  if (existsSync(path.join(arg, 'kustomization.yaml'))) return path.resolve(arg);
  return path.join(repoRoot(), 'deploy', 'k8s', 'overlays', arg);
}

function usage(): never {
  process.stderr.write('usage: main.js render|validate|up <overlay> [--json] [--file FILE] [--dir DIR]\n');
  process.exit(2);
}

async function main(): Promise<number> {
  const [cmd, ...rest] = process.argv.slice(2);
  const flag = (name: string) => {
    const i = rest.indexOf(name);
    if (i < 0) return undefined;
    const v = rest[i + 1];
    rest.splice(i, 2);
    return v;
  };
  const json = rest.includes('--json');
  if (json) rest.splice(rest.indexOf('--json'), 1);
  if (cmd === 'render') {
    const resources = render(overlayDir(rest[0]));
    process.stdout.write(resources.map((r) => stringify(r)).join('---\n'));
    return 0;
  }
  if (cmd === 'validate') {
    const file = flag('--file');
    const resources: Resource[] = file ? readResources(file) : render(overlayDir(rest[0]));
    const schema = await validateSchemas(resources);
    const crossRefs = file ? [] : checkCrossReferences(resources);
    if (json) process.stdout.write(`${JSON.stringify({ resources: resources.length, schema, crossRefs })}\n`);
    else {
      for (const p of [...schema, ...crossRefs]) process.stdout.write(`${p}\n`);
      process.stdout.write(`${resources.length} resources, ${schema.length + crossRefs.length} problems\n`);
    }
    return schema.length + crossRefs.length === 0 ? 0 : 1;
  }
  if (cmd === 'up') {
    const dir = flag('--dir') ?? mkdtempSync(path.join(os.tmpdir(), 'omnidict-k8s-'));
    const cluster = await LocalCluster.start({
      resources: render(overlayDir(rest[0])),
      dir,
      log: (l) => process.stdout.write(`${l}\n`),
    });
    process.stdout.write(`ready: router Service omnidict-router:7000 is ${cluster.address('omnidict-router', 7000)}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await cluster.stop();
    return 0;
  }
  usage();
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`deploy-tests: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
