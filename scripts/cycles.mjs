#!/usr/bin/env node
// Fails when the import graph of any package has a cycle or breaks a layering rule
// (.dependency-cruiser.cjs). Runs on TypeScript sources through dependency-cruiser's swc parser,
// since TypeScript 7 has no compiler API.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
try {
  execFileSync(
    join(root, 'node_modules', '.bin', 'depcruise'),
    ['--config', '.dependency-cruiser.cjs', '--output-type', 'err', 'packages/*/src'],
    { cwd: root, stdio: 'inherit' },
  );
} catch {
  console.error('import rules broken (see above)');
  process.exit(1);
}
