import { type CliContext, runCli } from '@omnidict/cli';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs omnictl in-process with captured output; `stdin` feeds `-` values. */
export async function omnictl(args: string[], opts: { stdin?: string; tty?: boolean } = {}): Promise<RunResult> {
  const out: Buffer[] = [];
  let err = '';
  const ctx: CliContext = {
    stdout: (chunk) => {
      out.push(Buffer.from(chunk));
    },
    stderr: (chunk) => {
      err += chunk;
    },
    readStdin: async () => Buffer.from(opts.stdin ?? ''),
    stderrIsTTY: opts.tty ?? false,
  };
  const code = await runCli(args, ctx);
  const stdoutBytes = Buffer.concat(out);
  return { code, stdout: stdoutBytes.toString(), stderr: err, stdoutBytes };
}

/** Asserts the omnictl error contract: exactly one `omnictl: error:` line on stderr, nothing on stdout. */
export function expectOneErrorLine(r: RunResult, code: number, fragment?: string | RegExp): void {
  expect({ code: r.code, stderr: r.stderr }).toEqual({
    code,
    stderr: expect.stringMatching(/^omnictl: error: [^\n]+\n$/),
  });
  expect(r.stdout).toBe('');
  if (fragment !== undefined) expect(r.stderr).toMatch(fragment);
}
