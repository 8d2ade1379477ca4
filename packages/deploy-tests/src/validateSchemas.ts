import type { Resource } from './kustomize.js';

interface Model {
  validate(): void;
}
type ModelClass = new (data: unknown) => Model;

/**
 * validateSchemas validates every resource against the Kubernetes OpenAPI schema compiled into
 * `kubernetes-models` (types, required fields, enums, int-or-string; the schemas allow unknown
 * fields, so a misspelt optional field is not caught here). The model is looked up by apiVersion
 * and kind: `apps/v1` StatefulSet is `kubernetes-models/apps/v1`'s StatefulSet. Returns one line per
 * invalid resource. ESM only (kubernetes-models ships no CommonJS): jest tests reach it through
 * `node dist/main.js validate`.
 */
export async function validateSchemas(resources: Resource[]): Promise<string[]> {
  const problems: string[] = [];
  for (const r of resources) {
    const where = `${r.kind} ${r.metadata.name}`;
    if (typeof r.apiVersion !== 'string' || !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(r.apiVersion)) {
      problems.push(`${where}: bad apiVersion '${r.apiVersion}'`);
      continue;
    }
    let mod: Record<string, unknown>;
    try {
      mod = (await import(`kubernetes-models/${r.apiVersion}`)) as Record<string, unknown>;
    } catch {
      problems.push(`${where}: unknown apiVersion '${r.apiVersion}'`);
      continue;
    }
    const Kind = mod[r.kind] as ModelClass | undefined;
    if (typeof Kind !== 'function') {
      problems.push(`${where}: ${r.apiVersion} has no kind '${r.kind}'`);
      continue;
    }
    try {
      new Kind(r).validate();
    } catch (err) {
      problems.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}
