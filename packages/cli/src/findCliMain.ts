import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** Finds packages/cli/dist/main.js walking up from each start directory (the repo root holds it). */
export function findCliMain(startDirs: readonly string[]): string | undefined {
  for (const start of startDirs) {
    let dir = path.resolve(start);
    while (true) {
      const candidate = path.join(dir, 'packages', 'cli', 'dist', 'main.js');
      if (existsSync(candidate)) return candidate;
      const parent = path.dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return undefined;
}

/** The packages whose binaries a local cluster runs (omnictl's launcher starts them by path). */
const BINARY_PACKAGES = ['packages/cli', 'packages/placement', 'packages/storage-node', 'packages/router'];

/**
 * buildBinaries runs `tsc -b` over the packages a local cluster runs, from the repository root, so
 * an end-to-end test run on its own never meets a stale or missing build. A failed build throws with
 * the compiler's first 30 lines.
 */
export function buildBinaries(repoRoot: string): void {
  try {
    execFileSync(
      process.execPath,
      [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', ...BINARY_PACKAGES],
      {
        cwd: repoRoot,
        stdio: 'pipe',
      },
    );
  } catch (err) {
    const output = `${(err as { stdout?: Buffer }).stdout?.toString() ?? ''}`;
    throw new Error(`building ${BINARY_PACKAGES.join(' ')} failed:\n${output.split('\n').slice(0, 30).join('\n')}`);
  }
}
