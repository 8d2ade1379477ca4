import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/**
 * A minimal kustomize renderer: exactly the features deploy/k8s uses, because npm has no
 * JavaScript implementation of kustomize. Supported kustomization.yaml fields:
 *
 * - `resources`: YAML files (multi-document) and directories holding a kustomization.yaml,
 * - `namespace`: set on every namespaced resource (not on Namespace itself),
 * - `labels` with `includeSelectors: false`: added to metadata.labels, and with
 *   `includeTemplates: true` to pod templates too,
 * - `images`: `name` → `newName` / `newTag` on containers' `image`,
 * - `patches` in JSON 6902 form (a YAML list of add/replace/remove ops) with a `kind`/`name` target.
 *
 * Anything else in a kustomization.yaml is an error, so a feature added to the manifests that this
 * renderer does not know fails the tests instead of rendering wrongly. Order of application follows
 * kustomize: resources (each rendered by its own kustomization first), then patches, namespace,
 * labels and images of this level.
 */
export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  patches?: { target: { kind: string; name: string }; patch: string }[];
}

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images', 'patches']);

/** Kinds that are not namespaced, among those we may render. */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass']);

export class KustomizeError extends Error {
  override readonly name = 'KustomizeError';
}

/** render renders the kustomization in `dir` into a list of resources, in kustomize's order. */
export function render(dir: string): Resource[] {
  const file = path.join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new KustomizeError(`${dir}: no kustomization.yaml`);
  const k = parse(readFileSync(file, 'utf8')) as Kustomization;
  for (const key of Object.keys(k)) {
    if (!KNOWN_FIELDS.has(key)) throw new KustomizeError(`${file}: field '${key}' is not supported by this renderer`);
  }
  let out: Resource[] = [];
  for (const entry of k.resources ?? []) {
    const p = path.resolve(dir, entry);
    if (!existsSync(p)) throw new KustomizeError(`${file}: resource '${entry}' does not exist`);
    out.push(...(statSync(p).isDirectory() ? render(p) : readResources(p)));
  }
  for (const patch of k.patches ?? []) out = applyPatch(out, patch, file);
  if (k.namespace !== undefined) {
    for (const r of out) if (!CLUSTER_SCOPED.has(r.kind)) r.metadata.namespace = k.namespace;
  }
  for (const l of k.labels ?? []) {
    if (l.includeSelectors === true)
      throw new KustomizeError(`${file}: labels.includeSelectors: true is not supported`);
    for (const r of out) {
      r.metadata.labels = { ...(r.metadata.labels ?? {}), ...l.pairs };
      const template = podTemplateOf(r);
      if (l.includeTemplates === true && template) {
        template.metadata ??= {};
        const meta = template.metadata as { labels?: Record<string, string> };
        meta.labels = { ...(meta.labels ?? {}), ...l.pairs };
      }
    }
  }
  for (const image of k.images ?? []) {
    for (const r of out) {
      for (const c of containersOf(r)) {
        const [name, tag] = splitImage(c.image ?? '');
        if (name !== image.name) continue;
        c.image = `${image.newName ?? name}:${image.newTag ?? tag ?? 'latest'}`;
      }
    }
  }
  return out;
}

/** readResources parses a multi-document YAML file of Kubernetes resources. */
export function readResources(file: string): Resource[] {
  const out: Resource[] = [];
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (doc.errors.length > 0) throw new KustomizeError(`${file}: ${doc.errors[0]!.message}`);
    const r = doc.toJS() as Resource | null;
    if (r === null) continue;
    if (typeof r.kind !== 'string' || typeof r.metadata?.name !== 'string') {
      throw new KustomizeError(`${file}: a document without kind or metadata.name`);
    }
    out.push(r);
  }
  return out;
}

function splitImage(image: string): [string, string | undefined] {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? [image.slice(0, colon), image.slice(colon + 1)] : [image, undefined];
}

/** The pod template of a workload (Deployment, StatefulSet, DaemonSet, Job), if any. */
export function podTemplateOf(r: Resource): { metadata?: unknown; spec?: PodSpec } | undefined {
  const spec = r.spec as { template?: { metadata?: unknown; spec?: PodSpec } } | undefined;
  return spec?.template;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  [k: string]: unknown;
}

export interface Probe {
  grpc?: { port: number; service?: string };
  [k: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string };
  };
}

export interface PodSpec {
  containers: Container[];
  volumes?: { name: string; [k: string]: unknown }[];
  terminationGracePeriodSeconds?: number;
  [k: string]: unknown;
}

export function containersOf(r: Resource): Container[] {
  return podTemplateOf(r)?.spec?.containers ?? [];
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface PatchOp {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: Json;
}

function applyPatch(resources: Resource[], p: { target: { kind: string; name: string }; patch: string }, file: string) {
  const targets = resources.filter((r) => r.kind === p.target.kind && r.metadata.name === p.target.name);
  if (targets.length === 0) {
    throw new KustomizeError(`${file}: patch target ${p.target.kind}/${p.target.name} matches no resource`);
  }
  const ops = parse(p.patch) as PatchOp[];
  if (!Array.isArray(ops)) throw new KustomizeError(`${file}: only JSON 6902 patches (a list of ops) are supported`);
  for (const r of targets) for (const op of ops) applyOp(r as unknown as Json, op, `${file} ${p.target.name}`);
  return resources;
}

/** applyOp applies one RFC 6902 operation (add, replace, remove) in place. */
export function applyOp(doc: Json, op: PatchOp, where: string): void {
  const parts = op.path
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.pop();
  if (last === undefined) throw new KustomizeError(`${where}: empty patch path`);
  let node: Json = doc;
  for (const part of parts) {
    const next: Json | undefined = Array.isArray(node)
      ? node[Number(part)]
      : node !== null && typeof node === 'object'
        ? node[part]
        : undefined;
    if (next === undefined) throw new KustomizeError(`${where}: patch path ${op.path} does not exist`);
    node = next;
  }
  if (Array.isArray(node)) {
    const i = last === '-' ? node.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > node.length || (op.op !== 'add' && i >= node.length)) {
      throw new KustomizeError(`${where}: patch path ${op.path}: bad index`);
    }
    if (op.op === 'remove') node.splice(i, 1);
    else if (op.op === 'add') node.splice(i, 0, op.value ?? null);
    else node[i] = op.value ?? null;
    return;
  }
  if (node === null || typeof node !== 'object')
    throw new KustomizeError(`${where}: patch path ${op.path}: not a container`);
  if (op.op !== 'add' && !(last in node)) throw new KustomizeError(`${where}: patch path ${op.path} does not exist`);
  if (op.op === 'remove') delete node[last];
  else node[last] = op.value ?? null;
}
