#!/usr/bin/env node
/**
 * docker:dry-run: executes deploy/Dockerfile's stages without Docker (no daemon, no base image),
 * then boots the assembled runtime tree. By hand, from the repository root:
 *
 *   pnpm docker:dry-run [--keep] [--verbose]
 *   (= pnpm --filter @omnidict/deploy-tests run docker:dry-run)
 *
 * Each stage gets a fresh directory standing in for its image's filesystem root. WORKDIR, ENV,
 * COPY (the build context is `git ls-files` minus .dockerignore, matched with Docker's rules by
 * @balena/dockerignore), COPY --from and RUN (bash, in the stage's WORKDIR, with the stage's
 * environment) act on it; the image paths the Dockerfile names (IMAGE_PATHS) are rewritten to their
 * place under it. This machine's node and pnpm stand in for the base image's. Not emulated, and said
 * so in the output: `npm install -g pnpm@…` (the pnpm here is used), `chown` and COPY --chown
 * (ownership), USER (everything runs as the invoking user), EXPOSE/VOLUME/CMD (recorded only).
 *
 * The runtime tree is then checked: its size and node_modules/.pnpm (no devDependencies), each
 * launcher's --help, and one PD + one node + one router (the dev overlay cut down to one replica
 * each, started by LocalCluster from the runtime tree) serving an `omnictl` put and get.
 *
 * Needs bash, git, cp, du and the npm registry (the build stage's `pnpm install` fills an empty
 * store, as a real build does). Temporary directories are removed unless --keep; --verbose streams
 * the RUN output. Exit codes: 0 ok, 1 a step failed, 2 usage.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dockerignore from '@balena/dockerignore';
import { launchers, repoRoot } from './binaries.js';
import { parseDockerfile } from './dockerfile.js';
import { containersOf, type Resource, render } from './kustomize.js';
import { LocalCluster } from './localFromManifests.js';

/** Absolute image paths that RUN and ENV text may name: each moves under the stage's root. */
const IMAGE_PATHS = ['/usr/local/bin', '/var/lib/omnidict', '/pnpm', '/src', '/app'];
/** node:20-slim's PATH and HOME (its node and npm live in /usr/local/bin; here the host's are appended). */
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const BASE_HOME = '/root';
/** Paths a RUN may name that are not the image's files. */
const HOST_PATHS = new Set(['/dev/null', '/dev/stdout', '/dev/stderr']);
/** Build-only packages: the runtime tree must hold none of them. */
const isDevOnly = (name: string) =>
  ['jest', 'typescript', 'turbo'].includes(name) ||
  name.startsWith('turbo-') ||
  name.startsWith('@swc/') ||
  name.startsWith('@biomejs/');
/** Marker the RUN prelude's stand-ins print, so skipped commands are reported. */
const SKIP_MARK = '#dry-run-skipped#';
const PRELUDE = `chown() { echo "${SKIP_MARK} chown $*" >&2; }\n`;

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const IMAGE_PATH_RE = new RegExp(`(^|[\\s=:"'(])(${IMAGE_PATHS.map(esc).join('|')})(?=$|[\\s/:"';)&|])`, 'g');
const ABSOLUTE_RE = /(^|[\s=:"'(])(\/[^\s:"';)&|]*)/g;

class StepFailure extends Error {
  constructor(
    message: string,
    readonly detail = '',
  ) {
    super(message);
  }
}

interface Options {
  keep: boolean;
  verbose: boolean;
}

/** One stage's stand-in filesystem root and state. */
interface StageFs {
  name: string;
  root: string;
  env: Record<string, string>;
  /** WORKDIR as an image path. */
  workdir: string;
}

interface Context {
  dir: string;
  /** Relative POSIX paths, after .dockerignore. */
  files: string[];
  tracked: number;
  /** Untracked paths Docker would also send (gitignored or not), .dockerignore applied. */
  untracked: string[];
}

interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  /** stdout and stderr as they arrived. */
  all: string;
}

const started = performance.now();
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const oneLine = (s: string, max = 96) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};
const counts = { ok: 0, skip: 0, warn: 0 };

function say(status: 'ok' | 'skip' | 'info' | 'warn' | 'FAIL', where: string, text: string, ms?: number): void {
  if (status === 'ok' || status === 'skip' || status === 'warn') counts[status]++;
  const time = ms === undefined ? '' : ` (${secs(ms)})`;
  process.stdout.write(`${status.padEnd(4)}  ${where.padEnd(9)}  ${text}${time}\n`);
}

/** The image path `p` (relative to the stage's WORKDIR) on this machine. */
function hostPath(s: StageFs, p: string): string {
  return path.join(s.root, path.posix.resolve(s.workdir, p));
}

/** Rewrites the image paths in Dockerfile text (a RUN command, an ENV value) to the stage's root. */
function toHost(text: string, root: string): string {
  return text.replace(IMAGE_PATH_RE, (_m, pre: string, p: string) => `${pre}${root}${p}`);
}

/** `$VAR` and `${VAR}` from the stage's environment, as Docker expands ENV, WORKDIR and COPY. */
function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_m, a: string | undefined, b: string | undefined) => env[(a ?? b)!] ?? '',
  );
}

/** ENV's `K=V ...` pairs (values may be quoted) or its legacy `K V` form; values expanded and rewritten. */
function parseEnv(args: string, s: StageFs): [string, string][] {
  const value = (raw: string): string => {
    if (raw.startsWith("'")) return toHost(raw.slice(1, -1), s.root);
    const text = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    return expandVars(toHost(text, s.root), s.env);
  };
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$/.exec(args);
  if (legacy && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) return [[legacy[1]!, value(legacy[2]!)]];
  const out: [string, string][] = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)\s*/y;
  const text = args.trim();
  while (re.lastIndex < text.length) {
    const m = re.exec(text);
    if (!m) throw new StepFailure(`ENV ${args}: cannot parse at '${text.slice(re.lastIndex)}'`);
    out.push([m[1]!, value(m[2]!)]);
  }
  return out;
}

interface CopyArgs {
  from: string | undefined;
  chown: string | undefined;
  chmod: string | undefined;
  sources: string[];
  dest: string;
}

function parseCopy(args: string): CopyArgs {
  const words = args.trim().split(/\s+/);
  const flags = new Map<string, string>();
  while (words[0]?.startsWith('--')) {
    const m = /^--(from|chown|chmod)=(.+)$/.exec(words.shift()!);
    if (!m) throw new StepFailure(`COPY ${args}: only --from, --chown and --chmod are supported by this dry run`);
    flags.set(m[1]!, m[2]!);
  }
  if (words[0]?.startsWith('[')) throw new StepFailure(`COPY ${args}: the JSON form is not supported by this dry run`);
  const dest = words.pop();
  if (dest === undefined || words.length === 0) throw new StepFailure(`COPY ${args}: want sources and a destination`);
  return { from: flags.get('from'), chown: flags.get('chown'), chmod: flags.get('chmod'), sources: words, dest };
}

/** Runs a command, collecting its output; with `tee`, also streams it to this process's stdout. */
function exec(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; tee?: boolean },
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let all = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      all += b.toString();
      if (opts.tee) process.stdout.write(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      all += b.toString();
      if (opts.tee) process.stdout.write(b);
    });
    child.on('error', (err) => resolve({ code: null, signal: null, stdout, all: `${all}${err.message}\n` }));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, all }));
  });
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new StepFailure(`${cmd} ${args.join(' ')} failed`, `${r.stderr ?? ''}${r.error ?? ''}`);
  return r.stdout;
}

/** The build context: tracked files (`git ls-files`) present in the work tree, minus .dockerignore. */
function buildContext(root: string): Context {
  const ignoreFile = path.join(root, '.dockerignore');
  const ig = dockerignore.default().add(existsSync(ignoreFile) ? readFileSync(ignoreFile, 'utf8') : '');
  const ls = (...args: string[]) =>
    sh('git', ['-C', root, 'ls-files', '-z', ...args])
      .split('\0')
      .filter((f) => f !== '');
  const tracked = ls().filter((f) => {
    try {
      lstatSync(path.join(root, f));
      return true;
    } catch {
      return false; // deleted in the work tree: Docker would not see it either
    }
  });
  const untracked = ls('--others', '--directory').filter((f) => !ig.ignores(f.replace(/\/$/, '')));
  return { dir: root, files: ig.filter(tracked), tracked: tracked.length, untracked };
}

/** Copies one context file (or symlink) to `to`, with the context's mode unless `--chmod`. */
function copyEntry(from: string, to: string, chmod: number | undefined): void {
  mkdirSync(path.dirname(to), { recursive: true });
  const st = lstatSync(from);
  try {
    if (!lstatSync(to).isDirectory()) rmSync(to);
  } catch {
    // `to` does not exist yet
  }
  if (st.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
  else {
    copyFileSync(from, to);
    chmodSync(to, chmod ?? st.mode & 0o7777);
  }
}

function copyFromContext(ctx: Context, c: CopyArgs, destAbs: string, destIsDir: boolean): number {
  const mode = c.chmod === undefined ? undefined : Number.parseInt(c.chmod, 8);
  let n = 0;
  for (const src of c.sources) {
    if (/[*?[]/.test(src)) throw new StepFailure(`COPY ${src}: wildcards are not supported by this dry run`);
    const rel = path.posix.normalize(src).replace(/^\/+/, '').replace(/\/+$/, '');
    const prefix = rel === '.' || rel === '' ? '' : `${rel}/`;
    if (prefix !== '' && ctx.files.includes(rel)) {
      copyEntry(path.join(ctx.dir, rel), destIsDir ? path.join(destAbs, path.posix.basename(rel)) : destAbs, mode);
      n++;
      continue;
    }
    const under = ctx.files.filter((f) => f.startsWith(prefix));
    if (under.length === 0) {
      throw new StepFailure(`COPY ${src}: not in the build context (missing, untracked or in .dockerignore)`);
    }
    for (const f of under) copyEntry(path.join(ctx.dir, f), path.join(destAbs, f.slice(prefix.length)), mode);
    n += under.length;
  }
  return n;
}

function copyFromStage(from: StageFs, c: CopyArgs, destAbs: string, destIsDir: boolean): void {
  for (const src of c.sources) {
    const abs = path.join(from.root, path.posix.resolve('/', src));
    if (!existsSync(abs)) throw new StepFailure(`COPY --from=${from.name} ${src}: no such path in stage ${from.name}`);
    let to = destAbs;
    if (statSync(abs).isDirectory()) {
      mkdirSync(destAbs, { recursive: true });
      sh('cp', ['-a', `${abs}/.`, `${destAbs}/`]);
    } else {
      to = destIsDir ? path.join(destAbs, path.basename(abs)) : destAbs;
      mkdirSync(path.dirname(to), { recursive: true });
      sh('cp', ['-a', abs, to]);
    }
    if (c.chmod !== undefined) sh('chmod', ['-R', c.chmod, to]);
  }
}

function which(name: string, env: Record<string, string>): string {
  const r = spawnSync('bash', ['-c', 'command -v "$0"', name], { encoding: 'utf8', env });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** node:20-slim's environment with its paths under `root`, and the host's node and pnpm appended. */
function baseEnv(root: string, hostPnpm: string): Record<string, string> {
  const dirs = toHost(BASE_PATH, root).split(':');
  for (const d of [path.dirname(process.execPath), path.dirname(hostPnpm)]) if (!dirs.includes(d)) dirs.push(d);
  const home = path.join(root, BASE_HOME);
  mkdirSync(home, { recursive: true });
  return { PATH: dirs.join(':'), HOME: home };
}

/**
 * The dev overlay cut down to one PD, one node and one router: one replica each, OMNIDICT_PEERS and
 * OMNIDICT_PD keep their first entry (pd-0, i.e. PD 1), shards get one replica. The rest is as written.
 */
function onePerRole(resources: Resource[]): Resource[] {
  const out = JSON.parse(JSON.stringify(resources)) as Resource[];
  for (const r of out) {
    if (r.kind !== 'StatefulSet' && r.kind !== 'Deployment') continue;
    (r.spec as { replicas?: number }).replicas = 1;
    for (const c of containersOf(r)) {
      for (const e of c.env ?? []) {
        if ((e.name === 'OMNIDICT_PEERS' || e.name === 'OMNIDICT_PD') && e.value) e.value = e.value.split(',')[0]!;
        if (e.name === 'OMNIDICT_REPLICATION') e.value = '1';
      }
    }
  }
  return out;
}

/** Package name of a node_modules/.pnpm entry (`name@1.2.3...`, `@scope+name@1.2.3...`). */
function pnpmEntryName(entry: string): string {
  const at = entry.indexOf('@', entry.startsWith('@') ? 1 : 0);
  return (at > 0 ? entry.slice(0, at) : entry).replace('+', '/');
}

function du(p: string): number {
  return Number(sh('du', ['-sb', p]).split('\t')[0]);
}

async function main(opts: Options, tmp: string, live: { cluster: LocalCluster | undefined }): Promise<void> {
  const repo = repoRoot();
  const dockerfile = path.join(repo, 'deploy', 'Dockerfile');
  const stages = parseDockerfile(dockerfile);
  say(
    'info',
    'parse',
    `deploy/Dockerfile: ${stages.length} stages (${stages.map((s) => `${s.name ?? '?'} from ${s.image}`).join(', ')})`,
  );
  const ctx = buildContext(repo);
  say(
    'info',
    'context',
    `${ctx.tracked} tracked files (git ls-files), ${ctx.tracked - ctx.files.length} in .dockerignore: ${ctx.files.length} in the context`,
  );
  if (ctx.untracked.length > 0) {
    say(
      'info',
      'context',
      `not copied: ${ctx.untracked.length} untracked path(s) a real build would also send: ${oneLine(ctx.untracked.join(' '), 120)}`,
    );
  }
  say('info', 'tmp', `stage roots under ${tmp}`);
  const hostPnpm = which('pnpm', { PATH: process.env.PATH ?? BASE_PATH });
  if (hostPnpm === '') throw new StepFailure('pnpm is not on PATH');

  const done = new Map<string, StageFs>();
  let runtime: StageFs | undefined;
  for (const [i, stage] of stages.entries()) {
    const name = stage.name ?? String(i);
    if (done.has(stage.image)) throw new StepFailure(`FROM ${stage.image}: a stage as base is not supported`);
    const root = path.join(tmp, `${i}-${name}`);
    mkdirSync(root, { recursive: true });
    const s: StageFs = { name, root, env: baseEnv(root, hostPnpm), workdir: '/' };
    const major = /^node:(\d+)/.exec(stage.image)?.[1];
    const here = process.versions.node.split('.')[0];
    say(
      major === here ? 'ok' : 'warn',
      name,
      `FROM ${stage.image}: fresh root ${path.basename(root)}/, not pulled; this machine's node v${process.versions.node} and pnpm stand in`,
    );
    for (const [n, ins] of stage.instructions.entries()) {
      const t0 = performance.now();
      const text = `${ins.op} ${ins.args}`;
      switch (ins.op) {
        case 'WORKDIR': {
          s.workdir = path.posix.resolve(s.workdir, expandVars(ins.args.trim(), s.env));
          mkdirSync(hostPath(s, '.'), { recursive: true });
          say('ok', name, text);
          break;
        }
        case 'ENV': {
          for (const [k, v] of parseEnv(ins.args, s)) s.env[k] = v;
          say('ok', name, oneLine(text));
          break;
        }
        case 'COPY': {
          const c = parseCopy(expandVars(ins.args, s.env));
          const destAbs = hostPath(s, c.dest);
          const destIsDir = c.dest.endsWith('/') || c.sources.length > 1 || existsSync(destAbs);
          let what: string;
          if (c.from !== undefined) {
            const from = done.get(c.from);
            if (!from) throw new StepFailure(`${text}: no earlier stage '${c.from}'`);
            copyFromStage(from, c, destAbs, destIsDir);
            what = `from stage ${from.name}`;
          } else {
            what = `${copyFromContext(ctx, c, destAbs, destIsDir)} file(s) from the context`;
          }
          say('ok', name, `${oneLine(text, 80)}: ${what}`, performance.now() - t0);
          if (c.chown !== undefined) {
            say('skip', name, `--chown=${c.chown}: ownership is not emulated (files belong to the invoking user)`);
          }
          break;
        }
        case 'RUN': {
          const cmd = ins.args.trim();
          const pin = /^npm\s+(?:install|i)\s+(?:-g|--global)\s+pnpm@(\S+)$/.exec(cmd);
          if (pin) {
            const r = await exec('pnpm', ['--version'], { cwd: hostPath(s, '.'), env: s.env });
            const version = r.stdout.trim();
            const found = which('pnpm', s.env);
            say(
              version === pin[1] ? 'skip' : 'warn',
              name,
              `${text}: pnpm is already present (${found} ${version}${version === pin[1] ? '' : `, not ${pin[1]}`})`,
            );
            break;
          }
          const host = toHost(cmd, s.root);
          const stray = [...host.matchAll(ABSOLUTE_RE)]
            .map((m) => m[2]!)
            .filter((p) => !p.startsWith(`${tmp}/`) && !HOST_PATHS.has(p));
          if (stray.length > 0) {
            throw new StepFailure(
              `${oneLine(text)}: names image path(s) ${stray.join(', ')} this dry run does not map (IMAGE_PATHS); not run on this machine`,
            );
          }
          const r = await exec('bash', ['-c', PRELUDE + host], {
            cwd: hostPath(s, '.'),
            env: s.env,
            tee: opts.verbose,
          });
          const log = path.join(root, `RUN-${String(n).padStart(2, '0')}.log`);
          writeFileSync(log, r.all);
          if (r.code !== 0) {
            throw new StepFailure(
              `${oneLine(text)}: exit ${r.signal ?? r.code} after ${secs(performance.now() - t0)}`,
              tail(
                r.all
                  .split('\n')
                  .filter((l) => !l.startsWith(SKIP_MARK))
                  .join('\n'),
              ),
            );
          }
          say('ok', name, oneLine(text), performance.now() - t0);
          for (const l of r.all.split('\n')) {
            if (l.startsWith(SKIP_MARK)) {
              say('skip', name, `${l.slice(SKIP_MARK.length).trim()}: ownership is not emulated (no such user here)`);
            }
          }
          break;
        }
        case 'USER':
          say('skip', name, `${text}: not emulated, the checks below run as ${os.userInfo().username}`);
          break;
        case 'EXPOSE':
        case 'VOLUME':
        case 'CMD':
        case 'ENTRYPOINT':
        case 'LABEL':
        case 'STOPSIGNAL':
          say('info', name, `${oneLine(text)}: image metadata, recorded only`);
          break;
        default:
          throw new StepFailure(`${oneLine(text)}: instruction not supported by this dry run`);
      }
    }
    done.set(name, s);
    runtime = s;
  }
  if (!runtime) throw new StepFailure('the Dockerfile has no stage');
  const rt = runtime;
  const app = hostPath(rt, '.');

  // The runtime tree: size, packages, no build-only dependency.
  const t1 = performance.now();
  const parts = ['node_modules', 'packages'].map((p) => `${p} ${mib(du(path.join(app, p)))}`).join(', ');
  say('ok', 'size', `runtime ${rt.workdir}: ${mib(du(app))} (${parts}); whole stage root ${mib(du(rt.root))}`);
  const store = path.join(app, 'node_modules', '.pnpm');
  if (!existsSync(store)) throw new StepFailure(`${rt.workdir}/node_modules/.pnpm does not exist`);
  const entries = readdirSync(store, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.'))
    .map((e) => e.name);
  const names = new Set(entries.map(pnpmEntryName));
  say(
    'ok',
    'size',
    `node_modules/.pnpm: ${entries.length} packages (${names.size} distinct names)`,
    performance.now() - t1,
  );
  const dev = [...names].filter(isDevOnly).sort();
  if (dev.length > 0) {
    throw new StepFailure(`build-only packages in the runtime tree: ${dev.join(', ')}`);
  }
  say('ok', 'deps', 'no jest, typescript, turbo, @swc/*, @biomejs/* in the runtime node_modules');
  const declared = new Set<string>();
  for (const dir of ['.', ...readdirSync(path.join(repo, 'packages')).map((p) => path.join('packages', p))]) {
    const file = path.join(repo, dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { devDependencies?: Record<string, string> };
    for (const d of Object.keys(pkg.devDependencies ?? {})) declared.add(d);
  }
  const otherDev = [...declared].filter((d) => names.has(d)).sort();
  say(
    'info',
    'deps',
    `other devDependencies of the workspace present (may be another package's dependency): ${otherDev.join(', ') || 'none'}`,
  );
  for (let dir = path.dirname(tmp); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'node_modules'))) {
      say('warn', 'deps', `${dir}/node_modules exists: modules missing from the runtime tree could resolve from it`);
    }
    if (path.dirname(dir) === dir) break;
  }

  // The launchers, by name from the image's PATH, as `docker run IMAGE NAME --help` would.
  const env = { ...rt.env };
  if (env.NODE_ENV !== 'production') {
    say('warn', 'launch', `the runtime stage does not set NODE_ENV=production (${env.NODE_ENV ?? 'unset'}); using it`);
    env.NODE_ENV = 'production';
  }
  const bins = [...launchers(repo).keys()];
  for (const bin of bins) {
    const t0 = performance.now();
    const found = which(bin, env);
    if (!found.startsWith(`${rt.root}/`)) {
      throw new StepFailure(`${bin}: not on the runtime stage's PATH (found '${found || 'nothing'}')`);
    }
    const r = await exec(bin, ['--help'], { cwd: app, env });
    const first = r.stdout.split('\n').find((l) => l.startsWith('Usage: '));
    if (r.code !== 0 || !first) {
      throw new StepFailure(`${bin} --help: exit ${r.signal ?? r.code}, no usage line`, tail(r.all));
    }
    say(
      'ok',
      'launch',
      `${bin} --help (${path.relative(rt.root, found)}, NODE_ENV=production): ${first}`,
      performance.now() - t0,
    );
  }

  // One PD, one node and one router from the runtime tree, with the manifests' environment.
  const t2 = performance.now();
  const resources = onePerRole(render(path.join(repo, 'deploy', 'k8s', 'overlays', 'dev')));
  live.cluster = await LocalCluster.start({
    resources,
    dir: path.join(tmp, 'volumes'),
    root: app,
    image: { env, workdir: app },
    readyTimeoutMs: 60_000,
    log: (l) => say('ok', 'cluster', oneLine(l.replace(/ \(log .*\)$/, ''), 110)),
  });
  const cluster = live.cluster;
  say('ok', 'cluster', `ready: ${cluster.processes.map((p) => p.pod.name).join(', ')}`, performance.now() - t2);
  if (existsSync('/proc/self/cmdline')) {
    // The launchers exec node, so each child's pid is the node process: its entry script must be
    // under the runtime tree, not this checkout.
    const scripts = cluster.processes.map((p) => {
      const argv = readFileSync(`/proc/${p.child.pid}/cmdline`, 'utf8').split('\0');
      const script = argv.find((a) => a.endsWith('.js')) ?? argv.join(' ');
      if (!script.startsWith(`${app}/`)) throw new StepFailure(`${p.pod.name} runs ${script}, not the runtime tree`);
      return `${path.basename(argv[0] ?? '')} ${path.relative(rt.root, script)}`;
    });
    say('ok', 'cluster', `processes run from the runtime tree: ${scripts.join(', ')}`);
  }
  const router = cluster.address('omnidict-router', 7000);
  const key = `docker-dry-run:${process.pid}`;
  const value = 'hello from the runtime tree';
  const t3 = performance.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const r = await exec('omnictl', ['--router', router, 'put', key, value], { cwd: app, env });
    if (r.code === 0) break;
    if (performance.now() - t3 > 60_000) {
      throw new StepFailure(`omnictl put: exit ${r.signal ?? r.code} after ${attempts} attempts`, tail(r.all));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  say(
    'ok',
    'cluster',
    `omnictl --router ${router} put ${key} '${value}' (${attempts} attempt(s))`,
    performance.now() - t3,
  );
  const t4 = performance.now();
  const got = await exec('omnictl', ['--router', router, 'get', key], { cwd: app, env });
  if (got.code !== 0 || got.stdout.trim() !== value) {
    throw new StepFailure(`omnictl get ${key}: exit ${got.code}, got '${got.stdout.trim()}'`, tail(got.all));
  }
  say('ok', 'cluster', `omnictl --router ${router} get ${key}: '${got.stdout.trim()}'`, performance.now() - t4);
  const t5 = performance.now();
  await cluster.stop(15_000);
  const exits = cluster.processes.map((p) => `${p.pod.name} ${p.exit}`);
  const unclean = cluster.processes.filter((p) => p.exit !== 'code 0');
  if (unclean.length > 0) throw new StepFailure(`stop: not every process exited cleanly: ${exits.join(', ')}`);
  say('ok', 'cluster', `stopped (SIGTERM): ${exits.join(', ')}`, performance.now() - t5);

  process.stdout.write(
    `docker dry-run OK: ${stages.length} stages, ${counts.ok} steps ok, ${counts.skip} skipped, ${counts.warn} warnings; ` +
      `${bins.length} launchers; 1 PD + 1 node + 1 router served put/get; runtime ${mib(du(app))}, ` +
      `${entries.length} packages, no devDependencies; ${secs(performance.now() - started)}\n`,
  );
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { keep: false, verbose: false };
  for (const a of argv) {
    if (a === '--keep') opts.keep = true;
    else if (a === '--verbose') opts.verbose = true;
    else {
      process.stderr.write('usage: dockerDryRun.js [--keep] [--verbose]\n');
      process.exit(a === '--help' || a === '-h' ? 0 : 2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'omnidict-docker-dry-run-'));
const live: { cluster: LocalCluster | undefined } = { cluster: undefined };
const cleanup = async (): Promise<void> => {
  await live.cluster?.stop(2000);
  if (opts.keep) process.stdout.write(`kept: ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  void cleanup().finally(() => process.exit(130));
});
main(opts, tmp, live).then(
  () => cleanup().then(() => process.exit(0)),
  async (err: unknown) => {
    const detail = err instanceof StepFailure ? err.detail : err instanceof Error ? (err.stack ?? '') : '';
    say('FAIL', 'dry-run', err instanceof Error ? err.message : String(err));
    if (detail.trim() !== '') process.stdout.write(`${detail.replace(/^/gm, '      | ')}\n`);
    await cleanup();
    process.stdout.write(
      `docker dry-run FAILED after ${secs(performance.now() - started)} (${counts.ok} steps ok)${opts.keep ? '' : '; --keep keeps the stage roots and logs'}\n`,
    );
    process.exit(1);
  },
);
