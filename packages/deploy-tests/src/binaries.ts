import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Container } from './kustomize.js';

/**
 * repoRoot finds the repository root: `$OMNIDICT_REPO` if set, else the nearest directory at or
 * above the working directory holding pnpm-workspace.yaml.
 */
export function repoRoot(): string {
  if (process.env.OMNIDICT_REPO) return path.resolve(process.env.OMNIDICT_REPO);
  for (let dir = process.cwd(); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return dir;
    if (path.dirname(dir) === dir) throw new Error('not inside the OmniDict repository (no pnpm-workspace.yaml above)');
  }
}

/** A launcher of the image (deploy/docker/bin/NAME) and the package entry script it runs. */
export interface Launcher {
  name: string;
  /** Path of the launcher script. */
  file: string;
  /** Entry script relative to the repository root, e.g. packages/storage-node/dist/main.js. */
  entry: string;
  /** The entry's TypeScript source (same path under src/, .ts). */
  source: string;
}

/** launchers lists deploy/docker/bin: each script must `exec node "${OMNIDICT_HOME:-/app}/<entry>"`. */
export function launchers(root = repoRoot()): Map<string, Launcher> {
  const dir = path.join(root, 'deploy', 'docker', 'bin');
  const out = new Map<string, Launcher>();
  for (const name of readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    const m = /exec node "\$\{OMNIDICT_HOME:-\/app\}\/(packages\/[a-z-]+\/dist\/[a-zA-Z]+\.js)" "\$@"/.exec(
      readFileSync(file, 'utf8'),
    );
    if (!m)
      throw new Error(`${file}: not a launcher (want exec node "\${OMNIDICT_HOME:-/app}/packages/<pkg>/dist/x.js")`);
    const entry = m[1]!;
    out.set(name, { name, file, entry, source: entry.replace('/dist/', '/src/').replace(/\.js$/, '.ts') });
  }
  return out;
}

/**
 * acceptedEnv lists the OMNIDICT_* variables a binary reads, from its main.ts: every commander
 * option's `.env('OMNIDICT_X')` twin.
 */
export function acceptedEnv(launcher: Launcher, root = repoRoot()): Set<string> {
  const file = path.join(root, launcher.source);
  if (!existsSync(file)) throw new Error(`${launcher.name}: ${file} does not exist`);
  const text = readFileSync(file, 'utf8');
  return new Set([...text.matchAll(/\.env\(\s*'(OMNIDICT_[A-Z0-9_]+)'\s*,?\s*\)/g)].map((m) => m[1]!));
}

/**
 * binaryOf names the launcher a container runs: `command[0]`, or for `sh -c '... exec NAME'`
 * wrappers the NAME after the last `exec`.
 */
export function binaryOf(c: Container): string | undefined {
  const cmd = c.command ?? [];
  if (cmd[0] === 'sh' || cmd[0] === '/bin/sh') {
    const m = /exec\s+([A-Za-z0-9_-]+)/.exec(cmd[cmd.length - 1] ?? '');
    return m?.[1];
  }
  return cmd[0];
}

/** Variables the manifests may set that no binary reads: inputs of $(VAR) expansion and the wrappers. */
export const HELPER_ENV = new Set(['POD_NAME', 'POD_NAMESPACE', 'POD_IP']);
