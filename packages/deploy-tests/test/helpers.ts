import path from 'node:path';
import { repoRoot } from '../src/binaries.js';
import { type Resource, render } from '../src/kustomize.js';

export const ROOT = repoRoot();
export const OVERLAYS = ['dev', 'prod'] as const;

export function renderOverlay(name: string): Resource[] {
  return render(path.join(ROOT, 'deploy', 'k8s', 'overlays', name));
}

export function find(resources: Resource[], kind: string, name: string): Resource {
  const r = resources.find((x) => x.kind === kind && x.metadata.name === name);
  if (!r) throw new Error(`no ${kind} ${name}`);
  return r;
}

/** A deep copy, for tests that break one thing. */
export function clone(resources: Resource[]): Resource[] {
  return JSON.parse(JSON.stringify(resources)) as Resource[];
}
