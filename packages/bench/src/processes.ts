import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends a signal, ignoring a process that is already gone. */
export function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves once every pid is gone. */
export async function stopPids(pids: readonly number[], graceMs: number): Promise<void> {
  for (const pid of pids) signalPid(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids) if (isAlive(pid)) signalPid(pid, 'SIGKILL');
  while (pids.some(isAlive)) await sleep(20);
}

/**
 * run runs a command to completion, streaming its output line by line to `say` (so a user sees
 * what apt-get or the launcher is doing). Rejects with the exit status and the output's last lines.
 */
export function run(
  command: string,
  args: readonly string[],
  opts: { say?: (line: string) => void; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let output = '';
    let partial = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      if (!opts.say) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) opts.say(line);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = opts.timeoutMs === undefined ? null : setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs);
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (partial && opts.say) opts.say(partial);
      if (code === 0) resolve(output);
      else {
        const tail = output.trimEnd().split('\n').slice(-15).join('\n');
        reject(new Error(`${command} ${args.join(' ')} exited with ${signal ?? `code ${code}`}\n${tail}`));
      }
    });
  });
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on every Linux we run on). */
const USER_HZ = 100;

/** CPU time (user + system) a process has used so far, in ms, from /proc/PID/stat. */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may hold spaces): state is field 3,
  // utime field 14, stime field 15 (proc(5)).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return ((utime + stime) * 1000) / USER_HZ;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
