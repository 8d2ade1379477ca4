#!/usr/bin/env node
// `pnpm gen` regenerates packages/proto/src/gen from the .proto files with buf + ts-proto (both
// from the npm registry). `pnpm gen:check` generates into a scratch directory and fails if the
// committed code differs, so stale generated code cannot pass the test command.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'packages', 'proto');
const buf = join(root, 'node_modules', '.bin', 'buf');
const check = process.argv.includes('--check');

function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

function run(args) {
  try {
    execFileSync(buf, args, { cwd: protoDir, stdio: 'inherit' });
  } catch {
    console.error(`buf ${args[0]} failed (see above)`);
    process.exit(1);
  }
}

run(['lint']);
if (!check) {
  rmSync(join(protoDir, 'src', 'gen'), { recursive: true, force: true });
  run(['generate']);
  console.log('generated packages/proto/src/gen');
} else {
  const scratch = mkdtempSync(join(tmpdir(), 'omnidict-gen-'));
  try {
    run(['generate', '-o', scratch]);
    const fresh = join(scratch, 'src', 'gen');
    const committed = join(protoDir, 'src', 'gen');
    const a = listFiles(fresh)
      .map((p) => relative(fresh, p))
      .sort();
    const b = listFiles(committed)
      .map((p) => relative(committed, p))
      .sort();
    const stale = [];
    for (const f of new Set([...a, ...b])) {
      if (!a.includes(f) || !b.includes(f)) stale.push(f);
      else if (!readFileSync(join(fresh, f)).equals(readFileSync(join(committed, f)))) stale.push(f);
    }
    if (stale.length > 0) {
      console.error(`generated code is stale (run \`pnpm gen\` and commit): ${stale.join(', ')}`);
      process.exit(1);
    }
    console.log('generated code is up to date');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
