#!/usr/bin/env node
// The whole test command (`pnpm test`): generated code is fresh, every package builds (turbo),
// sources and tests type-check (tsc -b), lint/format (Biome), no import cycles (dependency-cruiser),
// then every jest test of every package in one run. Ends with the plain line `N passed, N failed`
// computed from jest's --json output, and exits non-zero if anything failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const jestArgs = process.argv.slice(2);

const steps = [
  ['generated code is fresh', process.execPath, [join(root, 'scripts', 'gen.mjs'), '--check']],
  ['build (turbo)', bin('turbo'), ['run', 'build', '--output-logs=errors-only']],
  ['type-check sources and tests', bin('tsc'), ['-b']],
  ['type-check tests', bin('tsc'), ['-p', 'tsconfig.tests.json']],
  ['lint and format (biome)', bin('biome'), ['check', '.']],
  ['import cycles and layering', process.execPath, [join(root, 'scripts', 'cycles.mjs')]],
];

const failedSteps = [];
for (const [title, cmd, args] of steps) {
  console.log(`\n== ${title}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failedSteps.push(title);
}

console.log('\n== jest (all packages)');
const results = join(root, '.jest-results.json');
rmSync(results, { force: true });
const jest = spawnSync(
  bin('jest'),
  ['--config', 'jest.config.cjs', '--json', `--outputFile=${results}`, '--maxWorkers=2', ...jestArgs],
  { cwd: root, stdio: 'inherit' },
);

let passed = 0;
let failed = 0;
if (existsSync(results)) {
  const json = JSON.parse(readFileSync(results, 'utf8'));
  passed = json.numPassedTests;
  failed = json.numFailedTests;
  // A suite that fails to load has no failed tests but is still a failure.
  if (json.numRuntimeErrorTestSuites > 0)
    failedSteps.push(`${json.numRuntimeErrorTestSuites} test suite(s) failed to run`);
  if (json.numTotalTests === 0) failedSteps.push('jest ran no test');
} else {
  failedSteps.push('jest produced no results');
}
if (jest.status !== 0 && failed === 0) failedSteps.push(`jest exited with ${jest.status}`);

if (failedSteps.length > 0) console.log(`\nfailed: ${failedSteps.join('; ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failedSteps.length > 0 || failed > 0 ? 1 : 0);
