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
