import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { launchers } from '../src/binaries.js';
import { parseDockerfile } from '../src/dockerfile.js';
import { ROOT } from './helpers.js';

// Docker is not available where these tests run: the image is checked by reading it.
const stages = parseDockerfile(path.join(ROOT, 'deploy', 'Dockerfile'));
const final = stages.at(-1)!;
const run = (stage: (typeof stages)[number]) => stage.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);

describe('deploy/Dockerfile', () => {
  it('is multi-stage on node:20-slim', () => {
    expect(stages.map((s) => s.name)).toEqual(['manifests', 'build', 'runtime']);
    for (const s of stages) expect(s.image).toBe('node:20-slim');
  });

  it('builds with a frozen lockfile and keeps production dependencies only', () => {
    const build = run(stages[1]!).join('\n');
    expect(build).toMatch(/pnpm install --frozen-lockfile/);
    expect(build).toMatch(/pnpm exec tsc -b/);
    expect(build).toMatch(/pnpm install --prod --frozen-lockfile/);
    // The runtime stage installs nothing: it copies the pruned tree.
    expect(run(final).join('\n')).not.toMatch(/pnpm|npm install/);
    expect(final.instructions.filter((i) => i.op === 'COPY' && i.args.includes('--from=build'))).not.toHaveLength(0);
  });

  it('runs as a non-root user', () => {
    const users = final.instructions.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
  });

  it('puts a launcher on PATH for each binary, each running a built entry script', () => {
    const copy = final.instructions.find((i) => i.op === 'COPY' && i.args.includes('deploy/docker/bin/'));
    expect(copy?.args).toMatch(/\/usr\/local\/bin\/$/);
    const bins = launchers(ROOT);
    for (const [name, l] of bins) {
      expect(copy?.args).toContain(`deploy/docker/bin/${name}`);
      expect(statSync(l.file).mode & 0o111).not.toBe(0);
      // The test command builds before jest, so the entry must exist as a built file.
      expect(existsSync(path.join(ROOT, l.entry))).toBe(true);
      expect(readFileSync(path.join(ROOT, l.entry), 'utf8')).toMatch(/^#!\/usr\/bin\/env node/);
    }
    expect([...bins.keys()]).toEqual(expect.arrayContaining(['omnidict-pd', 'omnidict-node', 'omnidict-router']));
  });

  it('installs from every workspace package.json and the lockfile before copying the sources', () => {
    const keep = run(stages[0]!).join('\n');
    for (const name of ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml'])
      expect(keep).toContain(`! -name ${name}`);
    const ops = stages[1]!.instructions.map((i) => `${i.op} ${i.args}`);
    const manifests = ops.indexOf('COPY --from=manifests /src ./');
    const install = ops.indexOf('RUN pnpm install --frozen-lockfile');
    const sources = ops.indexOf('COPY . .');
    expect(manifests).toBeGreaterThanOrEqual(0);
    expect(install).toBeGreaterThan(manifests);
    expect(sources).toBeGreaterThan(install);
  });

  it('has a .dockerignore that keeps node_modules and build output out of the context', () => {
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
  });
});
