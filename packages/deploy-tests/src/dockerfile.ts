import { readFileSync } from 'node:fs';

/** One `FROM image [AS name]` stage of a Dockerfile and its instructions (continuations joined). */
export interface Stage {
  image: string;
  name: string | undefined;
  instructions: { op: string; args: string }[];
}

/** parseDockerfile splits a Dockerfile into stages; ARG defaults before the first FROM are substituted. */
export function parseDockerfile(file: string): Stage[] {
  const lines = readFileSync(file, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    const rest = m[2]!;
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=');
      if (k && v !== undefined) args.set(k, v);
      continue;
    }
    if (op === 'FROM') {
      const [image = '', as, name] = rest.split(/\s+/);
      const resolved = image.replace(/\$\{?([A-Z_]+)\}?/g, (w, k: string) => args.get(k) ?? w);
      stages.push({ image: resolved, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
      continue;
    }
    stages.at(-1)?.instructions.push({ op, args: rest });
  }
  return stages;
}
